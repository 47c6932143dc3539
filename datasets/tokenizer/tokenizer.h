// Tokenizers. The seam is the abstract Tokenizer (the chat template and data code
// depend only on it); SentencePieceTokenizer (tokenizer.model) and ByteLevelBpeTokenizer
// (Hugging Face tokenizer.json, bpe.h) are the real ones; load_tokenizer picks by the file.
// sentencepiece itself lives
// behind a dlopen()ed C interface (spm_capi.h) because its bundled protobuf clashes with
// libtorch's (README.md, stack note 3).
#pragma once
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ethos {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  virtual std::vector<int> encode(std::string_view text) const = 0;
  virtual std::string decode(const std::vector<int>& ids) const = 0;
  // -1 when `piece` is not in the vocabulary (never silently maps to <unk>).
  virtual int piece_to_id(std::string_view piece) const = 0;
  virtual std::string id_to_piece(int id) const = 0;
  virtual int vocab_size() const = 0;
  virtual int bos_id() const = 0;  // -1 if the model has none
  virtual int eos_id() const = 0;
  virtual int unk_id() const = 0;
  // Content hash of the tokenizer definition (for checkpoint/caching checks).
  virtual std::string content_hash() const = 0;
  virtual std::string path() const = 0;  // the file it was loaded from ("" when built from text)
};

// Loads `path` by what it is: a tokenizer.json (a name ending in .json) as byte-level BPE, any
// other file as a sentencepiece model, a directory by the file in it (tokenizer.model first,
// then tokenizer.json). Throws Error naming the path and what to point at otherwise.
std::unique_ptr<Tokenizer> load_tokenizer(const std::string& path);
// `path` itself when it is a file; for a directory the tokenizer file in it (as load_tokenizer
// picks it); a directory with neither is an Error.
std::string resolve_tokenizer_path(const std::string& path);
// The tokenizer file in directory `dir` as resolve_tokenizer_path picks it, or "" when it has none.
std::string find_tokenizer_file(const std::string& dir);
// The files that make up the tokenizer at `path` and the names a model directory or checkpoint
// keeps them under: {path, "tokenizer.model"}, or {path, "tokenizer.json"} plus
// tokenizer_config.json beside it when there is one (it names BOS and EOS).
std::vector<std::pair<std::string, std::string>> tokenizer_files(const std::string& path);

struct TokenizerTrainOptions {
  std::vector<std::string> input_files;  // plain text, one sentence/document per line
  std::string model_path;                // where the .model goes (a .vocab is written beside it)
  std::string model_type = "bpe";        // "bpe" or "unigram"
  int vocab_size = 1000;
  bool byte_fallback = true;
  double character_coverage = 1.0;
  std::vector<std::string> user_defined_symbols;  // e.g. chat role and rationale markers
  int num_threads = 1;
  int max_sentence_length = 16384;
};

class SentencePieceTokenizer : public Tokenizer {
 public:
  // Throws ethos::Error naming the path when the file is missing or not a sentencepiece model.
  static std::unique_ptr<SentencePieceTokenizer> load(const std::string& model_path);
  // Trains a model and writes it to options.model_path (deterministic for a given input).
  static void train(const TokenizerTrainOptions& options);

  ~SentencePieceTokenizer() override;
  SentencePieceTokenizer(const SentencePieceTokenizer&) = delete;  // owns the loaded model
  SentencePieceTokenizer& operator=(const SentencePieceTokenizer&) = delete;
  std::vector<int> encode(std::string_view text) const override;
  std::string decode(const std::vector<int>& ids) const override;
  int piece_to_id(std::string_view piece) const override;
  std::string id_to_piece(int id) const override;
  int vocab_size() const override;
  int bos_id() const override;
  int eos_id() const override;
  int unk_id() const override;
  std::string content_hash() const override { return hash_; }
  std::string path() const override { return path_; }

 private:
  SentencePieceTokenizer() = default;
  void* handle_ = nullptr;  // opaque spm_capi handle
  std::string path_, hash_;
};

}  // namespace ethos
