// Optimizer and learning-rate schedule: AdamW with decoupled weight decay, the decay-group
// rule for Llama-style parameter names, warmup + cosine/linear/constant schedule, and
// global-norm gradient clipping. Same math as torch.optim.AdamW and
// torch.nn.utils.clip_grad_norm_ (tests/test_optim.cpp checks against them).
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace ethos {

struct AdamWOptions {
  double lr = 1e-3, beta1 = 0.9, beta2 = 0.95, eps = 1e-8, weight_decay = 0.0;
};

// AdamW with decoupled weight decay (Loshchilov & Hutter), same math as torch.optim.AdamW:
//   p -= lr*wd*p (only for params in the decay group); m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
//   p -= lr * (m/(1-b1^t)) / (sqrt(v/(1-b2^t)) + eps)
// One step counter t for all parameters (torch keeps one per parameter; they agree whenever
// every parameter has a gradient at every step, as in ethos's training loop).
class AdamW {
 public:
  // params: (name, tensor) in a fixed order; decay[i] says whether params[i] gets weight decay.
  AdamW(std::vector<std::pair<std::string, torch::Tensor>> params, std::vector<bool> decay, AdamWOptions opt);
  // Uses each param's .grad(); params without grad are skipped; t increments once per call.
  void step(double lr);
  void zero_grad();  // sets grads to undefined (torch's set_to_none)
  int64_t step_count() const { return step_; }
  // State for checkpoints: "<name>.exp_avg", "<name>.exp_avg_sq" (the live tensors; the step
  // count travels separately).
  std::vector<std::pair<std::string, torch::Tensor>> state_tensors() const;
  // Copies moments in; Error naming any missing, mis-shaped or unexpected entry.
  void load_state(const std::map<std::string, torch::Tensor>& tensors, int64_t step_count);
  const std::vector<std::pair<std::string, torch::Tensor>>& params() const { return params_; }

 private:
  void step_reference(double lr);

  std::vector<std::pair<std::string, torch::Tensor>> params_;
  std::vector<bool> decay_;
  AdamWOptions opt_;
  std::vector<torch::Tensor> exp_avg_, exp_avg_sq_;  // same shapes as params_
  int64_t step_ = 0;
};

// Errors naming any entry of `tensors` that is missing, shaped unlike its `expected` moment, or
// unexpected (AdamW::load_state's check, also used for whole moments cut into ZeRO-1 shards).
void check_moments(const std::vector<std::pair<std::string, torch::Tensor>>& expected,
                   const std::map<std::string, torch::Tensor>& tensors);

// Decay group default: weight decay only for 2-D+ weight matrices that are not embeddings and
// not norms: name ends in ".weight", tensor dim >= 2, and name does not contain "embed_tokens"
// (lm_head.weight IS decayed). decay_everything=true puts every parameter in the decay group.
std::vector<bool> default_decay_mask(const std::vector<std::pair<std::string, torch::Tensor>>& params,
                                     bool decay_everything);

struct ScheduleOptions {
  std::string kind = "cosine";  // cosine | linear | constant
  int64_t warmup_steps = 0, total_steps = 1;
  double min_lr_ratio = 0.1;
};
// lr multiplier in (0, 1] for step s (0-based, the step about to be taken): linear warmup
// (s < warmup: (s+1)/warmup), then cosine or linear decay from 1 at s=warmup to min_lr_ratio
// at s=total_steps-1 (and min_lr_ratio after it); "constant" = 1 after warmup.
// Error on an unknown kind or out-of-range options.
double lr_multiplier(const ScheduleOptions& o, int64_t step);

// Clips by the global L2 norm over all grads, as torch.nn.utils.clip_grad_norm_ (scale
// max_norm/(norm+1e-6) when norm > max_norm). Returns the norm before clipping; max_norm <= 0
// means no clipping (the norm is still returned). A non-finite norm is returned, grads untouched.
double clip_grad_norm(const std::vector<std::pair<std::string, torch::Tensor>>& params, double max_norm);

}  // namespace ethos
