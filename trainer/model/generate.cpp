// Autoregressive sampling with a KV cache: the prompt is run once (prefill), then one token
// per step. Greedy at temperature 0; otherwise softmax(logits / temperature) restricted to the
// top-p nucleus, sampled with a generator seeded from SampleOptions::seed (the global torch
// generator is left alone, so sampling never perturbs training randomness).
#include "trainer/model/generate.h"

#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>

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
int pick_token(const torch::Tensor& logits, const SampleOptions& opt, at::Generator& gen) {
  if (opt.temperature == 0) return static_cast<int>(logits.argmax().item<int64_t>());
  auto probs = torch::softmax(logits.to(torch::kFloat64) / opt.temperature, -1);  // [V]
  // Nucleus: keep the most probable tokens until their mass reaches top_p (the first always stays).
  const auto sorted = probs.sort(/*stable=*/true, /*dim=*/-1, /*descending=*/true);
  const auto& sorted_probs = std::get<0>(sorted);
  const auto& order = std::get<1>(sorted);
  const auto mass_before = sorted_probs.cumsum(0) - sorted_probs;  // [V]
  const auto kept = sorted_probs.masked_fill(mass_before >= opt.top_p, 0.0);
  const int64_t choice = torch::multinomial(kept, 1, /*replacement=*/false, gen).item<int64_t>();
  return static_cast<int>(order[choice].item<int64_t>());
}

std::vector<int> continue_prompt(Llama& model, const std::vector<int>& prompt, const SampleOptions& opt,
                                 at::Generator& gen) {
  const auto device = model->parameters().front().device();
  std::vector<int64_t> ids(prompt.begin(), prompt.end());
  auto tokens = torch::tensor(ids, torch::kInt64).unsqueeze(0).to(device);  // [1,T]
  KVCache cache;
  std::vector<int> out;
  for (int step = 0; step < opt.max_new_tokens; ++step) {
    const auto logits = model->forward_cached(tokens, cache);  // [1,t,V]
    const int next = pick_token(logits[0][-1].cpu(), opt, gen);
    out.push_back(next);
    if (std::find(opt.stop_ids.begin(), opt.stop_ids.end(), next) != opt.stop_ids.end()) break;
    tokens = torch::full({1, 1}, static_cast<int64_t>(next), torch::TensorOptions().dtype(torch::kInt64).device(device));
  }
  return out;
}

}  // namespace

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
  for (int step = 0; step < opt.max_new_tokens; ++step) {
    const auto logits = last.to(torch::kCPU, torch::kFloat32);  // [B,V]
    const auto best = greedy ? logits.argmax(-1).contiguous() : torch::zeros({B}, torch::kInt64);
    const auto best_at = best.accessor<int64_t, 1>();
    std::vector<int64_t> next(B, 0);
    for (int64_t r = 0; r < B; ++r) {
      if (done[r]) continue;
      const int t = greedy ? static_cast<int>(best_at[r]) : pick_token(logits[r], opt, gens[r]);
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
