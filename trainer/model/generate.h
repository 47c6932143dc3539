// Sampling with a KV cache: greedy (temperature 0), temperature, top-p.
#pragma once
#include <cstdint>
#include <vector>

#include "trainer/model/llama.h"

namespace ethos {

struct SampleOptions {
  int max_new_tokens = 64;
  double temperature = 0.0;  // 0 = greedy
  double top_p = 1.0;
  uint64_t seed = 0;
  std::vector<int> stop_ids;  // generation stops after emitting one of these
};

// Continues each prompt; returns only the new tokens (stop token included if hit).
// Prompts in one call may differ in length (left-aligned, processed per prompt).
std::vector<std::vector<int>> generate(Llama& model, const std::vector<std::vector<int>>& prompts,
                                       const SampleOptions& opt);

// All prompts continue together: left-padded to one length, one forward per step for the whole
// batch (rows that stopped idle along). Row i samples with its own generator seeded seeds[i], so
// a row's output does not depend on the other rows; greedy rows ignore the seed. Equal to
// generate() up to float rounding (batched shapes); seeds.size() must equal prompts.size().
std::vector<std::vector<int>> generate_batch(Llama& model, const std::vector<std::vector<int>>& prompts,
                                             const SampleOptions& opt, const std::vector<uint64_t>& seeds);

// Rows left-padded to one length: tokens [B,P] int64 and real [B,P] bool (false on padding).
struct LeftPadded {
  torch::Tensor tokens, real;
};
LeftPadded left_pad_rows(const std::vector<const std::vector<int>*>& rows);

// The decoding loop of generate_batch on rows whose prompts are already in `cache`: last [B,V]
// holds each row's logits after its final prompt token (e.g. from Llama::extend with
// last_only). Rows that stop become holes in the cache while the others go on.
std::vector<std::vector<int>> continue_batch(Llama& model, KVCache& cache, torch::Tensor last, const SampleOptions& opt,
                                             const std::vector<uint64_t>& seeds);

}  // namespace ethos
