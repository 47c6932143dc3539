// Generation: the KV-cached path equals re-running the full forward; sampling is seeded,
// reproducible and leaves the global generator alone; top-p and stop ids behave.
#include <torch/torch.h>

#include <catch2/catch.hpp>
#include <algorithm>
#include <set>

#include "datasets/base/util.h"
#include "trainer/model/generate.h"

using namespace ethos;
using Catch::Matchers::Contains;

namespace {

constexpr int64_t kVocab = 50;

// A small random model with enough weight scale that its greedy continuation varies.
Llama random_model(uint64_t seed, bool tied = false) {
  ModelConfig c;
  c.vocab_size = kVocab;
  c.hidden_size = 32;
  c.intermediate_size = 64;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.qkv_bias = true;
  c.tie_word_embeddings = tied;
  c.initializer_range = 0.3;
  torch::manual_seed(seed);
  Llama m(c);
  m->init_weights();
  return m;
}

torch::Tensor row(const std::vector<int>& ids) {  // [1,T]
  return torch::tensor(std::vector<int64_t>(ids.begin(), ids.end()), torch::kInt64).unsqueeze(0);
}

// Greedy decoding by running the whole sequence through forward() at every step.
std::vector<int> greedy_without_cache(Llama& m, std::vector<int> seq, int n) {
  torch::NoGradGuard no_grad;
  std::vector<int> out;
  for (int i = 0; i < n; ++i) {
    const int next = static_cast<int>(m->forward(row(seq))[0][-1].argmax().item<int64_t>());
    out.push_back(next);
    seq.push_back(next);
  }
  return out;
}

SampleOptions sampling(double temperature, uint64_t seed, int n = 20) {
  SampleOptions o;
  o.max_new_tokens = n;
  o.temperature = temperature;
  o.seed = seed;
  return o;
}

}  // namespace

CATCH_TEST_CASE("greedy with the KV cache equals greedy by full forward") {
  for (bool tied : {false, true}) {
    Llama m = random_model(7, tied);
    const std::vector<int> prompt{3, 14, 15, 9, 26};
    const auto cached = generate(m, {prompt}, sampling(0.0, 0, 16))[0];
    CATCH_CHECK(cached == greedy_without_cache(m, prompt, 16));
    CATCH_CHECK(std::set<int>(cached.begin(), cached.end()).size() > 1);  // not a degenerate constant
  }
}

CATCH_TEST_CASE("forward_cached logits equal the full forward's") {
  Llama m = random_model(8);
  torch::NoGradGuard no_grad;
  const auto tokens = torch::randint(0, kVocab, {2, 11}, torch::kInt64);  // [B,T]
  const auto full = m->forward(tokens);                                    // [B,T,V]
  KVCache cache;
  const auto prefill = m->forward_cached(tokens.narrow(1, 0, 6), cache);  // 6 tokens
  const auto two = m->forward_cached(tokens.narrow(1, 6, 2), cache);      // 2 at once after a cache
  std::vector<torch::Tensor> singles;
  for (int64_t t = 8; t < 11; ++t) singles.push_back(m->forward_cached(tokens.narrow(1, t, 1), cache));
  const auto cached = torch::cat({prefill, two, torch::cat(singles, 1)}, 1);
  CATCH_CHECK(cache.length() == 11);
  // Relative to the logits' scale: the cached path multiplies in other shapes, so float32
  // rounding differs by a few ulp (1.3e-5 absolute was seen on logits of magnitude ~4).
  const double scale = full.abs().max().item<double>();
  CATCH_CHECK((cached - full).abs().max().item<double>() <= 1e-5 * std::max(1.0, scale));
  CATCH_CHECK(cache.k[0].sizes().vec() == std::vector<int64_t>{2, 2, 11, 8});  // [B,K,t,D]: kv heads, not repeated
}

CATCH_TEST_CASE("temperature sampling is reproducible per seed and leaves the global generator alone") {
  Llama m = random_model(9);
  const std::vector<int> prompt{1, 2, 3};
  torch::manual_seed(123);
  const auto a = generate(m, {prompt}, sampling(1.0, 42))[0];
  const double after_generate = torch::rand({1}).item<double>();
  torch::manual_seed(123);
  const double untouched = torch::rand({1}).item<double>();
  CATCH_CHECK(after_generate == untouched);

  CATCH_CHECK(a.size() == 20);
  CATCH_CHECK(generate(m, {prompt}, sampling(1.0, 42))[0] == a);
  CATCH_CHECK(generate(m, {prompt}, sampling(1.0, 43))[0] != a);
  CATCH_CHECK(a != generate(m, {prompt}, sampling(0.0, 42))[0]);  // sampling is not greedy here
}

CATCH_TEST_CASE("a tiny top_p keeps only the most likely token: same as greedy") {
  Llama m = random_model(10);
  const std::vector<int> prompt{5, 6, 7, 8};
  SampleOptions nucleus = sampling(1.5, 99);
  nucleus.top_p = 1e-6;
  CATCH_CHECK(generate(m, {prompt}, nucleus)[0] == generate(m, {prompt}, sampling(0.0, 0))[0]);
}

CATCH_TEST_CASE("generation stops after a stop id; prompts of different lengths are independent") {
  Llama m = random_model(11);
  const std::vector<int> p1{4, 8, 15}, p2{16, 23, 42, 4, 8, 15, 16};
  const auto free_run = generate(m, {p1}, sampling(0.0, 0, 12))[0];
  SampleOptions stop = sampling(0.0, 0, 12);
  stop.stop_ids = {free_run[4]};
  const auto stopped = generate(m, {p1}, stop)[0];
  const auto first = std::find(free_run.begin(), free_run.end(), free_run[4]) - free_run.begin();
  CATCH_CHECK(stopped == std::vector<int>(free_run.begin(), free_run.begin() + first + 1));

  const auto both = generate(m, {p1, p2}, sampling(0.0, 0, 12));
  CATCH_REQUIRE(both.size() == 2);
  CATCH_CHECK(both[0] == free_run);
  CATCH_CHECK(both[1] == generate(m, {p2}, sampling(0.0, 0, 12))[0]);
}

CATCH_TEST_CASE("generate restores training mode and rejects bad input") {
  Llama m = random_model(12);
  m->train();
  generate(m, {{1, 2}}, sampling(0.0, 0, 2));
  CATCH_CHECK(m->is_training());
  CATCH_REQUIRE_THROWS_WITH(generate(m, {{}}, sampling(0.0, 0)), Contains("prompt 0 is empty"));
  CATCH_REQUIRE_THROWS_WITH(generate(m, {{1, 50}}, sampling(0.0, 0)), Contains("token id 50"));
  SampleOptions bad = sampling(1.0, 0);
  bad.top_p = 0;
  CATCH_REQUIRE_THROWS_WITH(generate(m, {{1}}, bad), Contains("top_p"));
}

CATCH_TEST_CASE("generate_batch: prompts of different lengths decoded together equal one at a time") {
  Llama m = random_model(12);
  const std::vector<std::vector<int>> prompts = {{1, 5, 9, 2, 7, 3, 8}, {4}, {6, 6, 1}, {2, 9, 9, 9, 9, 9, 9, 9, 9, 1}};
  SampleOptions greedy;
  greedy.max_new_tokens = 12;
  greedy.stop_ids = {3};
  const auto batched = generate_batch(m, prompts, greedy, {0, 0, 0, 0});
  for (size_t i = 0; i < prompts.size(); ++i) CATCH_CHECK(batched[i] == generate(m, {prompts[i]}, greedy)[0]);

  // Sampling: a row's output depends on its own seed only, not on the other rows of the batch.
  SampleOptions hot = greedy;
  hot.temperature = 1.0;
  const auto a = generate_batch(m, prompts, hot, {11, 12, 13, 14});
  const auto b = generate_batch(m, {prompts[2], prompts[0]}, hot, {13, 11});
  CATCH_CHECK(a[2] == b[0]);
  CATCH_CHECK(a[0] == b[1]);
  CATCH_CHECK(a[0] != generate_batch(m, {prompts[0]}, hot, {99})[0]);
  CATCH_CHECK_THROWS_WITH(generate_batch(m, prompts, hot, {1}), Contains("one seed per prompt"));
}
