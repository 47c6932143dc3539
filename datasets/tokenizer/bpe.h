// Hugging Face `tokenizer.json` byte-level BPE (GPT-2, Llama 3, Qwen2 style), written from the
// format's description:
//   1. added tokens (`added_tokens`) are cut out of the raw text first, leftmost-longest;
//   2. the rest is normalised (`normalizer`: none, NFC, NFKC, NFD, NFKD, or a sequence of them);
//   3. pre-tokenised (`pre_tokenizer`: ByteLevel with or without GPT-2's regex, Split by a regex
//      or a string with any `behavior`, or a Sequence of those); regexes run under PCRE2 with
//      Unicode classes (\p{L}, \p{N}, \s);
//   4. each piece's UTF-8 bytes become printable characters (GPT-2's byte-to-unicode map:
//      a space is "Ġ", a newline "Ċ") and are merged pairwise by the rank of `model.merges`,
//      lowest rank first, leftmost on ties (`ignore_merges`: a piece that is itself in the
//      vocabulary is taken whole).
// encode() adds no BOS/EOS (callers add them, as with sentencepiece); bos_id()/eos_id() come
// from tokenizer_config.json beside the file when it names them, else from the post-processor
// (BOS) and the usual end-of-text names (EOS).
// Everything else a tokenizer.json may hold (WordPiece/Unigram models, byte_fallback,
// Metaspace, other normalisers) is refused with an error naming the key, not approximated.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "datasets/tokenizer/tokenizer.h"

namespace ethos {

class ByteLevelBpeTokenizer : public Tokenizer {
 public:
  // `path` is a tokenizer.json; `where` names it in errors. Throws Error on anything malformed.
  static std::unique_ptr<ByteLevelBpeTokenizer> load(const std::string& path);
  // The same from text (fuzzing, tests); `config_json` is tokenizer_config.json's text or empty.
  static std::unique_ptr<ByteLevelBpeTokenizer> parse(const std::string& json_text, const std::string& where,
                                                      const std::string& config_json = "");
  ~ByteLevelBpeTokenizer() override;

  std::vector<int> encode(std::string_view text) const override;
  std::string decode(const std::vector<int>& ids) const override;
  int piece_to_id(std::string_view piece) const override;
  std::string id_to_piece(int id) const override;
  int vocab_size() const override { return static_cast<int>(id_to_token_.size()); }
  int bos_id() const override { return bos_; }
  int eos_id() const override { return eos_; }
  int unk_id() const override { return unk_; }
  std::string content_hash() const override { return hash_; }
  std::string path() const override { return path_; }

  struct Impl;  // pre-tokeniser steps and compiled regexes (bpe.cpp)

 private:
  ByteLevelBpeTokenizer();
  void bpe(const std::string& mapped, std::vector<int>& out) const;
  void encode_segment(std::string_view text, std::vector<int>& out) const;

  std::string path_, hash_;
  std::unordered_map<std::string, int> vocab_;  // model vocabulary and added tokens, by content
  std::vector<std::string> id_to_token_;        // "" where an id is unused
  std::vector<bool> added_;                     // ids of added tokens (decoded as their content)
  // (left id << 32 | right id) -> (rank, merged id)
  std::unordered_map<uint64_t, std::pair<int, int>> merges_;
  std::vector<int> byte_id_;  // the id of each byte's mapped character, -1 if not in the vocabulary
  bool ignore_merges_ = false;
  int bos_ = -1, eos_ = -1, unk_ = -1;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ethos
