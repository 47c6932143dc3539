// A tiny deterministic Tokenizer for data-layer tests: one token per byte (id 10 + byte),
// the chat markers as ids 3..8, <unk> 0, <s> 1, </s> 2. Markers can be left out to test
// the template's missing-marker error, and BOS can be switched off.
#pragma once
#include <string>
#include <string_view>
#include <vector>

#include "datasets/chat_template.h"
#include "datasets/tokenizer/tokenizer.h"

namespace ethos::test {

class FakeTokenizer : public Tokenizer {
 public:
  explicit FakeTokenizer(std::string missing_marker = "", bool with_bos = true)
      : missing_(std::move(missing_marker)), with_bos_(with_bos) {}

  std::vector<int> encode(std::string_view text) const override {
    std::vector<int> ids;
    for (unsigned char c : text) ids.push_back(kByteBase + c);
    return ids;
  }
  std::string decode(const std::vector<int>& ids) const override {
    std::string out;
    for (int id : ids) out += id >= kByteBase ? std::string(1, static_cast<char>(id - kByteBase)) : id_to_piece(id);
    return out;
  }
  int piece_to_id(std::string_view piece) const override {
    const auto markers = ChatTemplate::special_tokens();
    for (size_t i = 0; i < markers.size(); ++i)
      if (piece == markers[i]) return piece == missing_ ? -1 : 3 + static_cast<int>(i);
    if (piece == "<unk>") return 0;
    if (piece == "<s>") return 1;
    if (piece == "</s>") return 2;
    if (piece.size() == 1) return kByteBase + static_cast<unsigned char>(piece[0]);
    return -1;
  }
  std::string id_to_piece(int id) const override {
    if (id >= kByteBase && id < vocab_size()) return std::string(1, static_cast<char>(id - kByteBase));
    if (id >= 3 && id <= 8) return ChatTemplate::special_tokens()[id - 3];
    return id == 1 ? "<s>" : id == 2 ? "</s>" : "<unk>";
  }
  int vocab_size() const override { return kByteBase + 256; }
  int bos_id() const override { return with_bos_ ? 1 : -1; }
  int eos_id() const override { return 2; }
  int unk_id() const override { return 0; }
  std::string content_hash() const override { return "fake-byte-tokenizer"; }
  std::string path() const override { return ""; }

  static constexpr int kByteBase = 10;

 private:
  std::string missing_;
  bool with_bos_;
};

}  // namespace ethos::test
