// Preference pairs for DPO-family training, before tensors: tokenized pairs, their content
// hash and their seeded order across epochs (the preference twin of packing.h). The rows of
// the forward that scores them are built in trainer/objective/pairs.h.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "datasets/chat_template.h"

namespace ethos {

struct PairExample {
  std::vector<int> prompt, chosen, rejected;
  std::vector<float> chosen_weights;  // NLL weight per chosen token (rationale_weight / action_weight)
  std::string where;                  // file:line
  nlohmann::json tags = nlohmann::json::object();
};

// Renders preference records. Errors (naming file:line and the fix): a pair whose chosen and
// rejected tokenize identically, an empty answer, a pair longer than seq_len + 1 tokens.
std::vector<PairExample> tokenize_pairs(const std::vector<Record>& records, const ChatTemplate& tmpl,
                                        const TemplateOptions& opt, int seq_len);

// Content hash of tokenized pairs (tokens and NLL weights, in order): one key for tokenizer,
// template and data together.
std::string pairs_hash(const std::vector<PairExample>& pairs);

// A seeded shuffle of 0..n-1 per epoch, drawn `count` at a time, with an exact cursor.
class PairOrder {
 public:
  PairOrder(size_t n, uint64_t seed);
  std::vector<size_t> next(size_t count);
  nlohmann::json cursor() const;            // {"epoch": e, "index": i}
  void restore(const nlohmann::json& c);    // throws Error on a malformed cursor

 private:
  void shuffle();
  size_t n_;
  uint64_t seed_, epoch_ = 0, index_ = 0;
  std::vector<size_t> order_;
};

}  // namespace ethos
