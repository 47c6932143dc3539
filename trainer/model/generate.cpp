// Autoregressive sampling with a KV cache: the prompt is run once (prefill), then one token
// per step. Greedy at temperature 0; otherwise softmax(logits / temperature) restricted to the
// top-p nucleus, sampled with a generator seeded from SampleOptions::seed (the global torch
// generator is left alone, so sampling never perturbs training randomness).
#include "trainer/model/generate.h"

#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "datasets/base/util.h"

namespace ethos {
namespace {

// Restores the model's training flag when generation ends (also on an exception). A model
// already in eval mode is not written to (scoring threads may decode with it side by side).
class EvalModeGuard {
 public:
  explicit EvalModeGuard(Llama& m) : model_(m), was_training_(m->is_training()) {
    if (was_training_) model_->eval();
  }
  ~EvalModeGuard() {
    if (was_training_) model_->train(true);
  }
  EvalModeGuard(const EvalModeGuard&) = delete;
  EvalModeGuard& operator=(const EvalModeGuard&) = delete;

 private:
  Llama& model_;
  bool was_training_;
};

void check_options(const SampleOptions& opt, const std::vector<std::vector<int>>& prompts, int64_t vocab) {
  if (opt.max_new_tokens < 0) throw Error("generate: max_new_tokens (" + std::to_string(opt.max_new_tokens) + ") must be >= 0");
  if (!(opt.temperature >= 0)) throw Error("generate: temperature (" + std::to_string(opt.temperature) + ") must be >= 0 (0 = greedy)");
  if (!(opt.top_p > 0 && opt.top_p <= 1)) throw Error("generate: top_p (" + std::to_string(opt.top_p) + ") must be in (0, 1]");
  for (size_t i = 0; i < prompts.size(); ++i) {
    if (prompts[i].empty()) throw Error("generate: prompt " + std::to_string(i) + " is empty; give at least one token (e.g. BOS)");
    for (int t : prompts[i])
      if (t < 0 || t >= vocab)
        throw Error("generate: prompt " + std::to_string(i) + " has token id " + std::to_string(t) +
                    " outside the model's vocabulary [0, " + std::to_string(vocab) + ")");
  }
}

// logits: [V] float32 on CPU. Returns the chosen token id.
int pick_token(const torch::Tensor& logits, const SampleOptions& opt, at::Generator& gen, NucleusSampler& sampler) {
  if (opt.temperature == 0) return static_cast<int>(logits.argmax().item<int64_t>());
  const auto probs = torch::softmax(logits.to(torch::kFloat64) / opt.temperature, -1).contiguous();  // [V]
  return sampler.pick(probs.data_ptr<double>(), probs.size(0), opt.top_p, gen);
}

std::vector<int> continue_prompt(Llama& model, const std::vector<int>& prompt, const SampleOptions& opt,
                                 at::Generator& gen) {
  const auto device = model->parameters().front().device();
  std::vector<int64_t> ids(prompt.begin(), prompt.end());
  auto tokens = torch::tensor(ids, torch::kInt64).unsqueeze(0).to(device);  // [1,T]
  KVCache cache;
  NucleusSampler sampler;
  std::vector<int> out;
  for (int step = 0; step < opt.max_new_tokens; ++step) {
    const auto logits = model->forward_cached(tokens, cache);  // [1,t,V]
    const int next = pick_token(logits[0][-1].cpu(), opt, gen, sampler);
    out.push_back(next);
    if (std::find(opt.stop_ids.begin(), opt.stop_ids.end(), next) != opt.stop_ids.end()) break;
    tokens = torch::full({1, 1}, static_cast<int64_t>(next), torch::TensorOptions().dtype(torch::kInt64).device(device));
  }
  return out;
}

}  // namespace

int NucleusSampler::pick(const double* p, int64_t V, double top_p, at::Generator& gen) {
  if (V <= 0) throw Error("generate: no probabilities to sample from (vocabulary of size 0)");
  for (int64_t i = 0; i < V; ++i)
    if (!(p[i] >= 0))  // also NaN
      throw Error("generate: the model's next-token probabilities contain NaN or a negative value (token " +
                  std::to_string(i) + "); the checkpoint's weights are probably not finite");
  // The race's clocks, one per sorted position (multinomial draws all V, so the generator moves on by V).
  auto* g = at::check_generator<at::CPUGeneratorImpl>(gen);
  q_.resize(V);
  for (int64_t i = 0; i < V; ++i) {
    const uint64_t bits = g->random64() & ((uint64_t{1} << 53) - 1);
    q_[i] = -std::log(1.0 - static_cast<double>(bits) * 0x1.0p-53);
  }
  order_.resize(V);
  std::iota(order_.begin(), order_.end(), int64_t{0});
  auto first = [p](int64_t a, int64_t b) { return p[a] > p[b] || (p[a] == p[b] && a < b); };
  // The race over sorted positions [0, n): the kept mass test as the torch path computes it
  // ((cumsum - p) >= top_p drops a position), the first largest ratio wins.
  auto race = [&](int64_t n, double* best_ratio) {
    double cum = 0, best = -1;
    int64_t at = -1;
    for (int64_t i = 0; i < n; ++i) {
      const double pi = p[order_[i]];
      cum += pi;
      if (cum - pi >= top_p) continue;
      const double ratio = pi / q_[i];
      if (ratio > best) best = ratio, at = i;
    }
    *best_ratio = best;
    return at;
  };
  // The head: the 64 most probable tokens. A token further down has at most the 64th one's
  // probability and at best the smallest clock of the positions after 64, so when even that
  // ratio does not beat the head's winner, the head decides (on a tie the earlier position wins).
  const int64_t head = std::min<int64_t>(V, 64);
  std::partial_sort(order_.begin(), order_.begin() + head, order_.end(), first);
  double best = -1;
  int64_t at = race(head, &best);
  if (head < V) {
    const double tail_q = *std::min_element(q_.begin() + head, q_.end());
    if (at < 0 || p[order_[head - 1]] / tail_q > best) {  // the tail might win: sort all of it
      std::sort(order_.begin() + head, order_.end(), first);
      at = race(V, &best);
    }
  }
  if (at < 0) throw Error("generate: top_p " + std::to_string(top_p) + " keeps no token");
  return static_cast<int>(order_[at]);
}

std::vector<std::vector<int>> generate(Llama& model, const std::vector<std::vector<int>>& prompts,
                                       const SampleOptions& opt) {
  check_options(opt, prompts, model->config().vocab_size);
  torch::NoGradGuard no_grad;
  EvalModeGuard eval_mode(model);
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(opt.seed);
  std::vector<std::vector<int>> out;
  for (const auto& prompt : prompts) out.push_back(continue_prompt(model, prompt, opt, gen));
  return out;
}

LeftPadded left_pad_rows(const std::vector<const std::vector<int>*>& rows) {
  const int64_t B = static_cast<int64_t>(rows.size());
  size_t P = 1;
  for (const auto* r : rows) P = std::max(P, r->size());
  std::vector<int64_t> tok(B * P, 0), real(B * P, 0);
  for (int64_t b = 0; b < B; ++b) {
    const size_t pad = P - rows[b]->size();
    std::copy(rows[b]->begin(), rows[b]->end(), tok.begin() + b * P + pad);
    std::fill(real.begin() + b * P + pad, real.begin() + (b + 1) * P, 1);
  }
  const auto shape = std::vector<int64_t>{B, static_cast<int64_t>(P)};
  return {torch::tensor(tok, torch::kInt64).view(shape), torch::tensor(real, torch::kInt64).view(shape).to(torch::kBool)};
}

std::vector<std::vector<int>> continue_batch(Llama& model, KVCache& cache, torch::Tensor last, const SampleOptions& opt,
                                             const std::vector<uint64_t>& seeds) {
  const int64_t B = last.size(0);
  if (static_cast<int64_t>(seeds.size()) != B)
    throw Error("continue_batch: " + std::to_string(seeds.size()) + " seeds for " + std::to_string(B) +
                " rows; give one seed per row");
  std::vector<std::vector<int>> out(B);
  if (B == 0 || opt.max_new_tokens == 0) return out;
  torch::NoGradGuard no_grad;
  EvalModeGuard eval_mode(model);
  const auto device = last.device();
  const bool greedy = opt.temperature == 0;
  std::vector<at::Generator> gens;
  if (!greedy)
    for (uint64_t s : seeds) gens.push_back(at::make_generator<at::CPUGeneratorImpl>(s));
  std::vector<uint8_t> done(B, 0);
  int64_t running = B;
  NucleusSampler sampler;
  for (int step = 0; step < opt.max_new_tokens; ++step) {
    const auto logits = last.to(torch::kCPU, torch::kFloat32);  // [B,V]
    const int64_t V = logits.size(1);
    // greedy: each row's argmax; sampling: every row's probabilities in one softmax (row by row
    // the same values as a softmax of that row alone), drawn from row by row
    const auto best = greedy ? logits.argmax(-1).contiguous() : torch::zeros({B}, torch::kInt64);
    const auto probs = greedy ? torch::Tensor() : torch::softmax(logits.to(torch::kFloat64) / opt.temperature, -1).contiguous();
    const auto best_at = best.accessor<int64_t, 1>();
    std::vector<int64_t> next(B, 0);
    for (int64_t r = 0; r < B; ++r) {
      if (done[r]) continue;
      const int t = greedy ? static_cast<int>(best_at[r]) : sampler.pick(probs.data_ptr<double>() + r * V, V, opt.top_p, gens[r]);
      next[r] = t;
      out[r].push_back(t);
      if (std::find(opt.stop_ids.begin(), opt.stop_ids.end(), t) != opt.stop_ids.end()) {
        done[r] = 1;
        --running;
      }
    }
    if (running == 0 || step + 1 == opt.max_new_tokens) break;
    // a finished row idles along as a hole: it takes no position and nothing attends to it
    const auto live = torch::tensor(std::vector<int64_t>(done.begin(), done.end()), torch::kInt64).eq(0).view({B, 1});
    last = model->extend(torch::tensor(next, torch::kInt64).view({B, 1}).to(device), cache, live.to(device)).select(1, 0);
  }
  return out;
}

std::vector<std::vector<int>> generate_batch(Llama& model, const std::vector<std::vector<int>>& prompts,
                                             const SampleOptions& opt, const std::vector<uint64_t>& seeds) {
  check_options(opt, prompts, model->config().vocab_size);
  if (seeds.size() != prompts.size())
    throw Error("generate_batch: " + std::to_string(seeds.size()) + " seeds for " + std::to_string(prompts.size()) +
                " prompts; give one seed per prompt");
  if (prompts.empty() || opt.max_new_tokens == 0) return std::vector<std::vector<int>>(prompts.size());
  torch::NoGradGuard no_grad;
  EvalModeGuard eval_mode(model);
  const auto device = model->parameters().front().device();
  std::vector<const std::vector<int>*> rows;
  for (const auto& p : prompts) rows.push_back(&p);
  const LeftPadded in = left_pad_rows(rows);
  KVCache cache;
  const auto last = model->extend(in.tokens.to(device), cache, in.real.to(device), /*last_only=*/true).select(1, 0);  // [B,V]
  return continue_batch(model, cache, last, opt, seeds);
}

}  // namespace ethos
