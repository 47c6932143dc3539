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

}  // namespace ethos
