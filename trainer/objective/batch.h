// Packed batches as tensors, and the token-weighted loss shared by training and evaluation.
#pragma once
#include <torch/torch.h>

#include "datasets/sampling/packing.h"

namespace ethos {

struct BatchTensors {
  torch::Tensor inputs, targets, positions, doc_ids;  // int64 [B,T]
  torch::Tensor weights;                              // float [B,T]
  int64_t real_tokens = 0;                            // non-padding input tokens
};
BatchTensors to_tensors(const PackedBatch& b, const torch::Device& device = torch::kCPU);

// log p(target) per position, in float32 (lower-precision logits are upcast).
// logits [B,T,V], targets [B,T] int64 -> [B,T].
torch::Tensor token_logprobs(const torch::Tensor& logits, const torch::Tensor& targets);

// Sum over tokens of weight * -log p(target). logits [B,T,V], targets/weights [B,T] -> scalar.
torch::Tensor weighted_nll_sum(const torch::Tensor& logits, const torch::Tensor& targets, const torch::Tensor& weights);

}  // namespace ethos
