// Generation: the KV-cached path equals re-running the full forward; sampling is seeded,
// reproducible and leaves the global generator alone; top-p and stop ids behave; the CPU
// attention kernel equals the matmul attention; caches of prompt chunks stack into one.
#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>
#include <torch/version.h>

#include "catch.h"
#include <algorithm>
#include <array>
#include <cmath>
#include <set>

#include "datasets/base/util.h"
#include "trainer/compat.h"
#include "trainer/model/attention_cpu.h"
#include "trainer/model/generate.h"

using namespace ethos;
using ethos_catch::Contains;

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

CATCH_TEST_CASE("the KV cache grows in place while decoding, and a copied cache does not write into its twin") {
  Llama m = random_model(9);
  torch::NoGradGuard no_grad;  // as generation runs: views keep a reference to their store here
  const auto prompt = torch::randint(0, kVocab, {2, 5}, torch::kInt64);
  KVCache cache;
  m->extend(prompt, cache);
  m->extend(torch::randint(0, kVocab, {2, 1}, torch::kInt64), cache);  // the first step may grow the store
  const void* store = cache.k_store[0].data_ptr();
  const int64_t capacity = cache.k_store[0].size(2);
  CATCH_REQUIRE(capacity >= 12);
  int64_t moved = 0;  // steps after which the store is elsewhere: the cache was copied
  for (int64_t s = cache.length(); s < capacity; ++s) {
    m->extend(torch::randint(0, kVocab, {2, 1}, torch::kInt64), cache);
    moved += cache.k_store[0].data_ptr() != store;
  }
  CATCH_CHECK(moved == 0);
  CATCH_CHECK(cache.length() == capacity);

  // a copied cache shares its twin's stores: each then continues with its own tokens, as a fresh
  // cache would, and a's next step still sees its own keys after b wrote the same slot
  const auto seq = torch::randint(0, kVocab, {2, 7}, torch::kInt64), x1 = torch::randint(0, kVocab, {2, 1}, torch::kInt64);
  const auto ta = torch::randint(0, kVocab, {2, 1}, torch::kInt64), tb = (ta + 1) % kVocab, tc = (ta + 2) % kVocab;
  KVCache a;
  m->extend(seq, a);
  m->extend(x1, a);
  KVCache b = a;
  const auto la = m->extend(ta, a);
  const auto lb = m->extend(tb, b);
  const auto la2 = m->extend(tc, a);
  auto fresh = [&](const std::vector<torch::Tensor>& steps) {
    KVCache c;
    m->extend(seq, c);
    m->extend(x1, c);
    torch::Tensor out;
    for (const auto& t : steps) out = m->extend(t, c);
    return out;
  };
  CATCH_CHECK(torch::allclose(la, fresh({ta}), 1e-6, 1e-6));
  CATCH_CHECK(torch::allclose(lb, fresh({tb}), 1e-6, 1e-6));
  CATCH_CHECK(torch::allclose(la2, fresh({ta, tc}), 1e-6, 1e-6));
  CATCH_CHECK(!torch::allclose(la, lb, 1e-6, 1e-6));  // the two continuations do differ
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

namespace {

// probs sorted (stable, descending) and cut at top_p: the kept probabilities and their token ids.
std::pair<torch::Tensor, torch::Tensor> sorted_kept(const torch::Tensor& probs, double top_p) {
  const auto sorted = probs.sort(/*stable=*/true, /*dim=*/-1, /*descending=*/true);
  const auto& sp = std::get<0>(sorted);
  return {sp.masked_fill(sp.cumsum(0) - sp >= top_p, 0.0), std::get<1>(sorted)};
}

// The draw as the torch ops write it: torch::multinomial(kept, 1) with the row's generator
// (what generation did before NucleusSampler).
int multinomial_draw(const torch::Tensor& probs, double top_p, at::Generator& gen) {
  const auto [kept, order] = sorted_kept(probs, top_p);
  return static_cast<int>(order[torch::multinomial(kept, 1, false, gen).item<int64_t>()].item<int64_t>());
}

// The same race written with torch ops and the documented clocks q_i = -log(1 - u_i).
int race_draw(const torch::Tensor& probs, double top_p, at::Generator& gen) {
  const auto [kept, order] = sorted_kept(probs, top_p);
  auto* g = at::check_generator<at::CPUGeneratorImpl>(gen);
  std::vector<double> q(probs.size(0));
  for (auto& v : q) v = -std::log(1.0 - static_cast<double>(g->random64() & ((uint64_t{1} << 53) - 1)) * 0x1.0p-53);
  const auto ratio = kept / torch::tensor(q, torch::kFloat64);
  return static_cast<int>(order[ratio.argmax().item<int64_t>()].item<int64_t>());
}

}  // namespace

CATCH_TEST_CASE("NucleusSampler: the same token as the sort-and-multinomial draw, and the generator moves on alike") {
  // flat rows (the tail often matters: the full sort), peaked rows (the head decides), exact ties,
  // vocabularies below and above the head of 64, top_p 1 and a real nucleus
  torch::manual_seed(11);
  NucleusSampler sampler;
  int64_t rows = 0, agree_race = 0, agree_multinomial = 0;
  for (int64_t V : {7, 64, 300, 2048})
    for (double scale : {0.05, 1.0, 4.0, 15.0})
      for (double top_p : {1.0, 0.9, 0.3}) {
        auto logits = torch::randn({40, V}, torch::kFloat64) * scale;
        logits.index_put_({torch::indexing::Slice(0, 5), torch::indexing::Slice(0, std::min<int64_t>(V, 10))}, 0.5);  // ties
        const auto probs = torch::softmax(logits / 0.7, -1).contiguous();
        for (int64_t r = 0; r < probs.size(0); ++r) {
          const uint64_t seed = 1000 * rows + 7;
          at::Generator g_fast = at::make_generator<at::CPUGeneratorImpl>(seed);
          at::Generator g_race = at::make_generator<at::CPUGeneratorImpl>(seed);
          at::Generator g_multi = at::make_generator<at::CPUGeneratorImpl>(seed);
          int fast = -1;
          for (int k = 0; k < 3; ++k) {  // three draws in a row from the same generator
            fast = sampler.pick(probs.data_ptr<double>() + r * V, V, top_p, g_fast);
            agree_race += fast == race_draw(probs[r], top_p, g_race);
            agree_multinomial += fast == multinomial_draw(probs[r], top_p, g_multi);
            ++rows;
          }
          CATCH_REQUIRE(at::check_generator<at::CPUGeneratorImpl>(g_fast)->random64() ==
                        at::check_generator<at::CPUGeneratorImpl>(g_race)->random64());
        }
      }
  CATCH_CHECK(agree_race == rows);
#if TORCH_VERSION_MAJOR < 2
  // On Debian's LibTorch 1.13 multinomial is this race with these clocks: generation's samples
  // are the ones the torch ops gave before NucleusSampler.
  CATCH_CHECK(agree_multinomial == rows);
#else
  (void)agree_multinomial;  // later LibTorch's multinomial draws otherwise: only the race is pinned
#endif
  std::vector<double> bad = {0.5, std::nan(""), 0.5};
  at::Generator g = at::make_generator<at::CPUGeneratorImpl>(1);
  CATCH_CHECK_THROWS_WITH(sampler.pick(bad.data(), 3, 1.0, g), Contains("NaN or a negative value (token 1)"));
}

namespace {

// Additive mask [B,1,T,S] for T new queries after S - T slots: query t (slot S - T + t) sees
// the slots up to its own that are real in its row (real [B,S]), and always itself.
torch::Tensor causal_mask(const torch::Tensor& real, int64_t T) {
  const int64_t S = real.size(1);
  const auto key = torch::arange(S).view({1, 1, S}), query = torch::arange(S - T, S).view({1, T, 1});
  const auto allowed = ((key <= query) & real.unsqueeze(1)) | (key == query);
  return torch::zeros(allowed.sizes()).masked_fill(allowed.logical_not(), -INFINITY).unsqueeze(1);
}

}  // namespace

CATCH_TEST_CASE("attention_cpu equals the matmul attention: few and many queries, padding, holes, GQA, any head size") {
  torch::NoGradGuard no_grad;
  torch::manual_seed(3);
  double worst = 0;
  // (rows, query heads, kv heads, new queries, slots, head size): S not a multiple of 8; head
  // sizes below, at and between multiples of 8; decoding (T <= 4) and prompt-like blocks
  const std::vector<std::array<int64_t, 6>> shapes = {{3, 4, 2, 1, 13, 16},  {2, 4, 4, 4, 9, 12},   {3, 8, 2, 5, 5, 16},
                                                      {2, 4, 2, 37, 45, 20}, {4, 2, 1, 100, 131, 64}, {1, 6, 3, 17, 17, 7},
                                                      {2, 4, 1, 9, 70, 40}};
  for (const auto& [B, H, K, T, S, D] : shapes) {
    CATCH_CAPTURE(B, H, K, T, S, D);
    const auto q = torch::randn({B, H, T, D}) * 2, k = torch::randn({B, K, S, D}) * 2, v = torch::randn({B, K, S, D});
    // row 0 whole; row 1 left-padded by 3; further rows with holes scattered before the queries
    auto real = torch::ones({B, S}, torch::kBool);
    if (B > 1) real[1].narrow(0, 0, std::min<int64_t>(3, S - T)).fill_(false);
    for (int64_t b = 2; b < B; ++b) real[b] = torch::rand({S}) > 0.3;
    const auto mask = causal_mask(real, T);
    CATCH_REQUIRE(attention_cpu_applies(q, k, mask));
    const auto got = attention_cpu(q, k, v, mask), want = compat::attention(q, k, v, mask);
    const double diff = (got - want).abs().max().item<double>();
    worst = std::max(worst, diff);
    CATCH_CHECK(diff < 1e-5);
    // a key/value view with strides of a cache store (capacity beyond S), as decoding passes them
    const auto store_k = torch::randn({B, K, S + 11, D}), store_v = torch::randn({B, K, S + 11, D});
    store_k.narrow(2, 0, S).copy_(k);
    store_v.narrow(2, 0, S).copy_(v);
    CATCH_CHECK((attention_cpu(q, store_k.narrow(2, 0, S), store_v.narrow(2, 0, S), mask) - got).abs().max().item<double>() == 0);
  }
  CATCH_WARN("largest difference to the matmul attention: " << worst);
}

CATCH_TEST_CASE("prompts run in chunks of rows and stacked into one cache decode as one left-padded batch") {
  torch::NoGradGuard no_grad;
  Llama m = random_model(21, /*tied=*/true);
  const std::vector<std::vector<int>> prompts = {{4}, {6, 6, 1}, {1, 5, 9, 2, 7, 3, 8}, {2, 9, 9, 9, 9, 9, 9, 9, 9, 1}, {3, 3}};
  auto prefill = [&](size_t from, size_t to, KVCache& cache) {
    std::vector<const std::vector<int>*> rows;
    for (size_t i = from; i < to; ++i) rows.push_back(&prompts[i]);
    const LeftPadded in = left_pad_rows(rows);
    return m->extend(in.tokens, cache, in.real, /*last_only=*/true).select(1, 0);
  };
  KVCache whole;
  const auto last_whole = prefill(0, prompts.size(), whole);
  std::vector<KVCache> parts(3);
  const auto last_parts = torch::cat({prefill(0, 2, parts[0]), prefill(2, 4, parts[1]), prefill(4, 5, parts[2])}, 0);
  KVCache stacked = KVCache::stack_rows(parts);
  CATCH_CHECK(stacked.rows() == 5);
  CATCH_CHECK(stacked.length() == 10);  // the longest part's; the others padded with holes
  CATCH_CHECK(torch::equal(stacked.next_pos, whole.next_pos));
  CATCH_CHECK((last_parts - last_whole).abs().max().item<double>() < 1e-5);
  // four more tokens decoded one at a time and then a block of three, on both caches
  auto next = last_whole.argmax(-1).unsqueeze(1);
  for (int step = 0; step < 4; ++step) {
    const auto a = m->extend(next, whole).select(1, 0), b = m->extend(next, stacked).select(1, 0);
    CATCH_CHECK((a - b).abs().max().item<double>() < 1e-5);
    next = a.argmax(-1).unsqueeze(1);
  }
  const auto block = torch::tensor({7, 1, 2}, torch::kInt64).unsqueeze(0).expand({5, 3}).contiguous();
  CATCH_CHECK((m->extend(block, whole) - m->extend(block, stacked)).abs().max().item<double>() < 1e-5);
  CATCH_CHECK_THROWS_WITH(KVCache::stack_rows({}), Contains("no caches"));
  CATCH_CHECK_THROWS_WITH(KVCache::stack_rows({whole, KVCache()}), Contains("same layer count"));
}
