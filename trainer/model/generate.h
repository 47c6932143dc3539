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

// One nucleus draw from a row of V probabilities (softmax(logits / temperature) in float64),
// with the row's generator. The draw is the exponential race that torch::multinomial(kept, 1)
// runs over the probabilities sorted in descending order (ties: lower token id first) and cut at
// top_p (a position is kept while the mass before it is below top_p): position i gets
// q_i = -log(1 - u_i) from u_i, the generator's next 64-bit number cut to 53 bits, V draws per
// call in position order, and the first position with the largest kept_i / q_i wins. Written
// out here so that it needs no sort of the whole row (the winner is almost always among the most
// probable tokens, which a bound checks) and no torch op per row; on LibTorch 1.13 it gives
// multinomial's choice bit for bit (tests/test_generate.cpp). Throws when p holds NaN or a
// negative value.
class NucleusSampler {
 public:
  int pick(const double* p, int64_t V, double top_p, at::Generator& gen);

 private:
  std::vector<int64_t> order_;
  std::vector<double> q_;
};

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
