// The rows of the one forward that scores the chosen and rejected answers of preference pairs
// together (the pairs themselves, tokenized and ordered: datasets/sampling/pairs.h).
//
// Row layout of a micro-batch of N pairs (R = 2N rows, T = the longest pair's length - 1):
//   rows 0..N-1   prompt + chosen       rows N..2N-1   prompt + rejected
// right-padded; inputs seq[0..L-2], targets seq[1..L-1]. logp_weights are 1 on completion
// targets (the answer incl. its <|end|>, and a chosen rationale span), 0 on prompt and padding,
// so prompt tokens never enter a log-prob. nll_weights carry the chosen answer's SFT weights.
#pragma once
#include <torch/torch.h>

#include <vector>

#include "datasets/sampling/pairs.h"
#include "trainer/model/llama.h"

namespace ethos {

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
