// The reference model of DPO-family training, in two forms:
//  - cached: log-probs of every pair under the reference, computed once and stored in
//    <cache_dir>/reference/<key>.safetensors. The key is the content hash of the reference
//    weights, the tokenizer, the chat template version and the tokenized pairs, so every run
//    that shares them (seeds and recipes of an ablation) reuses one file, and a change to any
//    of them is a miss. A file that fails to parse or whose checksum disagrees is recomputed.
//  - live: a frozen copy (eval mode, no gradients) that scores each micro-batch.
#pragma once
#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

#include "trainer/model/llama.h"
#include "trainer/objective/pairs.h"

namespace ethos {

// Bumped when the chat template's rendering changes (part of the cache key).
constexpr const char* kTemplateVersion = "ethos-chat-v1";

// Content hash of a model's weights (names, dtypes, shapes, values), in memory.
std::string weights_hash(Llama& model);

std::string reference_cache_key(const std::string& weights_hash, const std::string& tokenizer_hash,
                                const std::string& pairs_hash);

struct ReferenceCacheResult {
  torch::Tensor chosen, rejected;  // [pairs] float32, CPU
  std::string path;
  bool hit = false;
  std::string note;                // why a present file was not used ("" if none)
};

// Loads the cached log-probs for `key`, or computes them with `reference` (batch_size pairs
// per forward), stores them atomically and returns them.
ReferenceCacheResult cached_reference_logprobs(const std::string& cache_dir, const std::string& key,
                                               Llama& reference, const std::vector<PairExample>& pairs,
                                               int64_t batch_size, const torch::Device& device);

// Log-probs of every pair under `model`, without gradients (batch_size pairs per forward).
void compute_pair_logprobs(Llama& model, const std::vector<PairExample>& pairs, int64_t batch_size,
                           const torch::Device& device, torch::Tensor& chosen, torch::Tensor& rejected);

}  // namespace ethos
