// AdamW, decay mask, lr schedule and gradient clipping (see optim.h). The reference update
// follows torch.optim.AdamW's single-tensor path op for op, so results match it to rounding.
// On CUDA with LibTorch 2.x the update runs through at::_fused_adamw_ instead (ETHOS_TORCH_2).
#include "trainer/optim.h"

#include <cmath>
#include <set>

#include "datasets/base/util.h"
#include "trainer/compat.h"

namespace ethos {

constexpr double kPi = 3.14159265358979323846;

AdamW::AdamW(std::vector<std::pair<std::string, torch::Tensor>> params, std::vector<bool> decay, AdamWOptions opt)
    : params_(std::move(params)), decay_(std::move(decay)), opt_(opt) {
  if (decay_.size() != params_.size()) {
    throw Error("AdamW: decay mask has " + std::to_string(decay_.size()) + " entries for " +
                std::to_string(params_.size()) + " parameters");
  }
  if (!(opt_.beta1 >= 0 && opt_.beta1 < 1 && opt_.beta2 >= 0 && opt_.beta2 < 1 && opt_.eps >= 0 &&
        opt_.weight_decay >= 0)) {
    throw Error("AdamW: need 0 <= beta1, beta2 < 1, eps >= 0 and weight_decay >= 0 (got beta1=" +
                std::to_string(opt_.beta1) + ", beta2=" + std::to_string(opt_.beta2) + ", eps=" +
                std::to_string(opt_.eps) + ", weight_decay=" + std::to_string(opt_.weight_decay) + ")");
  }
  std::set<std::string> names;
  torch::NoGradGuard no_grad;
  for (const auto& [name, p] : params_) {
    if (!p.defined()) throw Error("AdamW: parameter '" + name + "' is an undefined tensor");
    if (!names.insert(name).second) throw Error("AdamW: parameter name '" + name + "' appears twice");
    exp_avg_.push_back(torch::zeros_like(p));
    exp_avg_sq_.push_back(torch::zeros_like(p));
  }
}

#if ETHOS_TORCH_2
namespace {

// LibTorch 2.x on CUDA: one fused kernel call for a group of parameters sharing a weight decay.
// Not exercised by CI (the Debian build is 1.13 CPU); the kernel computes the same update as
// AdamW::step_reference. It reads the step count from a float tensor per parameter.
void fused_adamw_group(const std::vector<torch::Tensor>& ps, const std::vector<torch::Tensor>& gs,
                       const std::vector<torch::Tensor>& ms, const std::vector<torch::Tensor>& vs, int64_t step,
                       double lr, double weight_decay, const AdamWOptions& o) {
  const torch::Tensor t = torch::full({}, static_cast<double>(step), ps.front().options().dtype(torch::kFloat));
  const std::vector<torch::Tensor> steps(ps.size(), t);
  at::_fused_adamw_(ps, gs, ms, vs, /*max_exp_avg_sqs=*/{}, steps, lr, o.beta1, o.beta2, weight_decay, o.eps,
                    /*amsgrad=*/false, /*maximize=*/false);
}

}  // namespace
#endif

void AdamW::step(double lr) {
  torch::NoGradGuard no_grad;
  ++step_;
#if ETHOS_TORCH_2
  if (!params_.empty() && compat::fused_adamw_supported(params_.front().second.device())) {
    for (bool decay : {true, false}) {
      std::vector<torch::Tensor> ps, gs, ms, vs;
      for (size_t i = 0; i < params_.size(); ++i) {
        const torch::Tensor& g = params_[i].second.grad();
        if (decay_[i] != decay || !g.defined()) continue;
        ps.push_back(params_[i].second);
        gs.push_back(g);
        ms.push_back(exp_avg_[i]);
        vs.push_back(exp_avg_sq_[i]);
      }
      if (!ps.empty()) fused_adamw_group(ps, gs, ms, vs, step_, lr, decay ? opt_.weight_decay : 0.0, opt_);
    }
    return;
  }
#endif
  step_reference(lr);
}

// torch.optim.AdamW's single-tensor update, op for op.
void AdamW::step_reference(double lr) {
  const double t = static_cast<double>(step_);
  const double bias1 = 1.0 - std::pow(opt_.beta1, t);
  const double bias2_sqrt = std::sqrt(1.0 - std::pow(opt_.beta2, t));
  for (size_t i = 0; i < params_.size(); ++i) {
    torch::Tensor p = params_[i].second;
    const torch::Tensor& g = p.grad();
    if (!g.defined()) continue;
    if (decay_[i] && opt_.weight_decay != 0) p.mul_(1.0 - lr * opt_.weight_decay);
    exp_avg_[i].mul_(opt_.beta1).add_(g, 1.0 - opt_.beta1);
    exp_avg_sq_[i].mul_(opt_.beta2).addcmul_(g, g, 1.0 - opt_.beta2);
    const torch::Tensor denom = (exp_avg_sq_[i].sqrt() / bias2_sqrt).add_(opt_.eps);
    p.addcdiv_(exp_avg_[i], denom, -lr / bias1);
  }
}

void AdamW::zero_grad() {
  for (auto& [name, p] : params_) p.mutable_grad() = torch::Tensor();
}

std::vector<std::pair<std::string, torch::Tensor>> AdamW::state_tensors() const {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (size_t i = 0; i < params_.size(); ++i) {
    out.emplace_back(params_[i].first + ".exp_avg", exp_avg_[i]);
    out.emplace_back(params_[i].first + ".exp_avg_sq", exp_avg_sq_[i]);
  }
  return out;
}

void AdamW::load_state(const std::map<std::string, torch::Tensor>& tensors, int64_t step_count) {
  if (step_count < 0) throw Error("AdamW state: step count " + std::to_string(step_count) + " is negative");
  // Check everything before touching any moment, so a bad checkpoint leaves the optimizer as it was.
  const auto expected = state_tensors();
  check_moments(expected, tensors);
  torch::NoGradGuard no_grad;
  for (const auto& [name, moment] : expected) moment.copy_(tensors.at(name));
  step_ = step_count;
}

void check_moments(const std::vector<std::pair<std::string, torch::Tensor>>& expected,
                   const std::map<std::string, torch::Tensor>& tensors) {
  std::set<std::string> known;
  for (const auto& [name, moment] : expected) {
    known.insert(name);
    auto it = tensors.find(name);
    if (it == tensors.end()) {
      throw Error("AdamW state: missing '" + name + "'; the optimizer state does not belong to this model");
    }
    if (it->second.sizes() != moment.sizes()) {
      throw Error("AdamW state: '" + name + "' has shape " + c10::str(it->second.sizes()) + " but the parameter has " +
                  c10::str(moment.sizes()) + "; the optimizer state does not belong to this model");
    }
  }
  for (const auto& [name, tensor] : tensors) {
    if (!known.count(name)) {
      throw Error("AdamW state: unexpected entry '" + name + "' (no such parameter in this model)");
    }
  }
}

std::vector<bool> default_decay_mask(const std::vector<std::pair<std::string, torch::Tensor>>& params,
                                     bool decay_everything) {
  static const std::string suffix = ".weight";
  std::vector<bool> mask;
  for (const auto& [name, p] : params) {
    const bool is_weight = name.size() >= suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
    const bool is_embedding = name.find("embed_tokens") != std::string::npos;
    mask.push_back(decay_everything || (is_weight && p.dim() >= 2 && !is_embedding));
  }
  return mask;
}

double lr_multiplier(const ScheduleOptions& o, int64_t step) {
  if (o.kind != "cosine" && o.kind != "linear" && o.kind != "constant") {
    throw Error("schedule: unknown kind '" + o.kind + "' (use cosine, linear or constant)");
  }
  if (o.warmup_steps < 0 || o.total_steps < 1 || !(o.min_lr_ratio >= 0 && o.min_lr_ratio <= 1) || step < 0) {
    throw Error("schedule: need warmup_steps >= 0, total_steps >= 1, 0 <= min_lr_ratio <= 1 and step >= 0 (got " +
                std::to_string(o.warmup_steps) + ", " + std::to_string(o.total_steps) + ", " +
                std::to_string(o.min_lr_ratio) + ", step " + std::to_string(step) + ")");
  }
  if (step < o.warmup_steps) return static_cast<double>(step + 1) / static_cast<double>(o.warmup_steps);
  if (o.kind == "constant") return 1.0;
  const int64_t span = o.total_steps - 1 - o.warmup_steps;  // decay steps after warmup
  const double progress =
      span > 0 ? std::min(1.0, static_cast<double>(step - o.warmup_steps) / static_cast<double>(span))
               : (step == o.warmup_steps ? 0.0 : 1.0);
  const double shape = o.kind == "cosine" ? 0.5 * (1.0 + std::cos(kPi * progress)) : 1.0 - progress;
  return o.min_lr_ratio + (1.0 - o.min_lr_ratio) * shape;
}

double clip_grad_norm(const std::vector<std::pair<std::string, torch::Tensor>>& params, double max_norm) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> norms;
  for (const auto& [name, p] : params) {
    if (p.grad().defined()) norms.push_back(p.grad().norm(2).to(torch::kFloat));
  }
  if (norms.empty()) return 0.0;
  const double total = torch::stack(norms).norm(2).item<double>();  // one host sync
  if (max_norm > 0 && std::isfinite(total) && total > max_norm) {
    const double scale = max_norm / (total + 1e-6);
    for (const auto& [name, p] : params) {
      if (p.grad().defined()) p.grad().mul_(scale);
    }
  }
  return total;
}

}  // namespace ethos
