// Preference pairs for DPO-family training: tokenized pairs, their seeded order across epochs,
// and the rows of the one forward that scores chosen and rejected together.
//
// Row layout of a micro-batch of N pairs (R = 2N rows, T = the longest pair's length - 1):
//   rows 0..N-1   prompt + chosen       rows N..2N-1   prompt + rejected
// right-padded; inputs seq[0..L-2], targets seq[1..L-1]. logp_weights are 1 on completion
// targets (the answer incl. its <|end|>, and a chosen rationale span), 0 on prompt and padding,
// so prompt tokens never enter a log-prob. nll_weights carry the chosen answer's SFT weights.
#pragma once
#include <torch/torch.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "datasets/chat_template.h"
#include "trainer/model/llama.h"

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

struct PairRows {
  torch::Tensor inputs, targets, positions, doc_ids;    // int64 [2N, T]
  torch::Tensor logp_weights, nll_weights;              // float [2N, T]
  torch::Tensor chosen_tokens, rejected_tokens;         // float [N] completion lengths
  std::vector<size_t> index;                            // the pairs' indices in the pool
  int64_t real_tokens = 0;                              // non-padding tokens of all rows
};
PairRows pair_rows(const std::vector<PairExample>& pool, const std::vector<size_t>& index,
                   const torch::Device& device = torch::kCPU);

struct PairLogprobs {
  torch::Tensor chosen, rejected;  // [N] summed completion log-probs
  torch::Tensor chosen_nll;        // [N] weighted mean NLL of the chosen answer (RPO)
};
// One forward over all 2N rows.
PairLogprobs pair_logprobs(Llama& model, const PairRows& rows);

}  // namespace ethos
