// DPO-family preference losses on per-sequence log-probs (see preference.h for the formulas).
#include "trainer/objective/preference.h"

#include <cmath>
#include <sstream>
#include <utility>

#include "datasets/base/util.h"

namespace ethos {

namespace {

const std::vector<std::pair<PreferenceObjective, std::string>> kObjectiveNames = {
    {PreferenceObjective::dpo, "dpo"},       {PreferenceObjective::ipo, "ipo"},
    {PreferenceObjective::robust, "robust"}, {PreferenceObjective::conservative, "conservative"},
    {PreferenceObjective::simpo, "simpo"},   {PreferenceObjective::rpo, "rpo"},
};

std::string valid_names() {
  std::string out;
  for (const auto& [objective, name] : kObjectiveNames) out += (out.empty() ? "" : ", ") + name;
  return out;
}

std::string num(double v) {
  std::ostringstream s;
  s << v;
  return s.str();
}

bool uses_label_smoothing(PreferenceObjective o) {
  return o == PreferenceObjective::robust || o == PreferenceObjective::conservative;
}

// A [N] tensor of the batch: defined, 1-D, floating, N entries.
void check_vector(const torch::Tensor& t, const char* name, int64_t n) {
  const std::string where = std::string("preference batch: ") + name;
  if (!t.defined()) throw Error(where + " is missing: pass a [N] tensor (N = " + std::to_string(n) + " pairs)");
  if (t.dim() != 1 || t.size(0) != n) {
    throw Error(where + " has shape " + c10::str(t.sizes()) + ", expected [" +
                std::to_string(n) + "] (one entry per pair, like policy_chosen)");
  }
  if (!t.is_floating_point()) {
    throw Error(where + " must be a floating-point tensor, got " + c10::str(t.scalar_type()));
  }
}

// Token counts as the log-probs' dtype; every count must be >= 1 (an empty answer has no
// per-token log-prob: drop the pair or give it a token).
torch::Tensor token_counts(const torch::Tensor& t, const char* name, const torch::Tensor& like) {
  check_vector(t, name, like.size(0));
  const double smallest = t.min().item<double>();
  if (!(smallest >= 1)) {  // also catches NaN
    throw Error(std::string("preference batch: ") + name + " has a count of " + num(smallest) +
                ": every answer needs at least one completion token (drop empty answers from the data)");
  }
  return t.to(like.scalar_type());
}

void check_batch(const PreferenceBatch& b, PreferenceObjective o) {
  if (!b.policy_chosen.defined()) throw Error("preference batch: policy_chosen is missing: pass a [N] tensor");
  if (b.policy_chosen.dim() != 1 || b.policy_chosen.size(0) == 0) {
    throw Error("preference batch: policy_chosen has shape " + c10::str(b.policy_chosen.sizes()) +
                ", expected [N] with N >= 1 pairs");
  }
  const int64_t n = b.policy_chosen.size(0);
  check_vector(b.policy_chosen, "policy_chosen", n);
  check_vector(b.policy_rejected, "policy_rejected", n);
  if (o != PreferenceObjective::simpo) {
    check_vector(b.ref_chosen, "ref_chosen", n);
    check_vector(b.ref_rejected, "ref_rejected", n);
  }
}

}  // namespace

PreferenceObjective preference_objective_from_string(const std::string& name) {
  for (const auto& [objective, known] : kObjectiveNames) {
    if (known == name) return objective;
  }
  throw Error("unknown preference objective '" + name + "': valid objectives are " + valid_names());
}

std::string preference_objective_name(PreferenceObjective objective) {
  for (const auto& [known, name] : kObjectiveNames) {
    if (known == objective) return name;
  }
  throw Error("preference objective with value " + std::to_string(static_cast<int>(objective)) +
              " has no name: valid objectives are " + valid_names());
}

std::vector<std::string> problems(const PreferenceOptions& o) {
  std::vector<std::string> out;
  const std::string objective = preference_objective_name(o.objective);
  if (!(o.beta > 0) || !std::isfinite(o.beta)) out.push_back("beta = " + num(o.beta) + " must be a finite number > 0");
  const double e = o.label_smoothing;
  if (!(e >= 0 && e < 0.5)) {
    out.push_back("label_smoothing = " + num(e) + " must be in [0, 0.5) (the assumed share of flipped labels)");
  } else if (e != 0 && !uses_label_smoothing(o.objective)) {
    out.push_back("label_smoothing = " + num(e) + " has no effect with objective " + objective +
                  ": set label_smoothing only with objective robust or conservative, or set it to 0");
  }
  if (!(o.simpo_gamma >= 0) || !std::isfinite(o.simpo_gamma)) {
    out.push_back("simpo_gamma = " + num(o.simpo_gamma) + " must be a finite number >= 0 (the target reward margin)");
  }
  if (!(o.rpo_alpha >= 0) || !std::isfinite(o.rpo_alpha)) {
    out.push_back("rpo_alpha = " + num(o.rpo_alpha) + " must be a finite number >= 0 (the weight of the NLL term)");
  }
  return out;
}

PreferenceOutput preference_loss(const PreferenceBatch& b, const PreferenceOptions& o) {
  const auto found = problems(o);
  if (!found.empty()) {
    std::string msg = "preference options (objective " + preference_objective_name(o.objective) + "):";
    for (const auto& p : found) msg += "\n  " + p;
    throw Error(msg);
  }
  check_batch(b, o.objective);
  const auto& pc = b.policy_chosen;  // [N]
  const auto& pr = b.policy_rejected;
  const double beta = o.beta, e = o.label_smoothing;

  torch::Tensor losses, chosen_reward, rejected_reward;  // [N] each
  switch (o.objective) {
    case PreferenceObjective::ipo: {
      const auto nc = token_counts(b.chosen_tokens, "chosen_tokens", pc);
      const auto nr = token_counts(b.rejected_tokens, "rejected_tokens", pc);
      const auto chosen = (pc - b.ref_chosen) / nc, rejected = (pr - b.ref_rejected) / nr;
      losses = (chosen - rejected - 1.0 / (2.0 * beta)).pow(2);
      chosen_reward = beta * chosen;
      rejected_reward = beta * rejected;
      break;
    }
    case PreferenceObjective::simpo: {
      chosen_reward = beta * pc / token_counts(b.chosen_tokens, "chosen_tokens", pc);
      rejected_reward = beta * pr / token_counts(b.rejected_tokens, "rejected_tokens", pc);
      losses = -torch::log_sigmoid(chosen_reward - rejected_reward - o.simpo_gamma);
      break;
    }
    default: {  // dpo, conservative, robust, rpo: functions of z = beta h
      chosen_reward = beta * (pc - b.ref_chosen);
      rejected_reward = beta * (pr - b.ref_rejected);
      const auto z = chosen_reward - rejected_reward;
      if (o.objective == PreferenceObjective::conservative) {
        losses = -(1 - e) * torch::log_sigmoid(z) - e * torch::log_sigmoid(-z);
      } else if (o.objective == PreferenceObjective::robust) {
        losses = (-(1 - e) * torch::log_sigmoid(z) + e * torch::log_sigmoid(-z)) / (1 - 2 * e);
      } else {
        losses = -torch::log_sigmoid(z);
      }
      if (o.objective == PreferenceObjective::rpo) {
        if (b.chosen_nll.defined()) {
          check_vector(b.chosen_nll, "chosen_nll", pc.size(0));
          losses = losses + o.rpo_alpha * b.chosen_nll;
        } else {
          losses = losses + o.rpo_alpha * (-pc / token_counts(b.chosen_tokens, "chosen_tokens", pc));
        }
      }
    }
  }
  PreferenceOutput out;
  out.loss = losses.mean();
  out.chosen_reward = chosen_reward.detach();
  out.rejected_reward = rejected_reward.detach();
  const auto diff = out.chosen_reward - out.rejected_reward;  // [N]
  out.accuracy = (diff > 0).to(torch::kDouble).mean().item<double>();
  out.margin = diff.to(torch::kDouble).mean().item<double>();
  return out;
}

torch::Tensor sequence_logprobs(const torch::Tensor& logits, const torch::Tensor& targets,
                                const torch::Tensor& weights) {
  if (!logits.defined() || logits.dim() != 3) {
    throw Error("sequence_logprobs: logits must be [R,T,V], got " +
                (logits.defined() ? c10::str(logits.sizes()) : std::string("an undefined tensor")));
  }
  const int64_t R = logits.size(0), T = logits.size(1), V = logits.size(2);
  const auto expected = std::vector<int64_t>{R, T};
  if (!targets.defined() || targets.sizes() != c10::IntArrayRef(expected) || targets.scalar_type() != torch::kLong) {
    throw Error("sequence_logprobs: targets must be an int64 [R,T] = " + c10::str(c10::IntArrayRef(expected)) +
                " tensor matching logits " + c10::str(logits.sizes()) +
                (targets.defined() ? ", got " + c10::str(targets.scalar_type()) + " " + c10::str(targets.sizes())
                                   : ""));
  }
  if (!weights.defined() || weights.sizes() != c10::IntArrayRef(expected)) {
    throw Error("sequence_logprobs: weights must be [R,T] = " + c10::str(c10::IntArrayRef(expected)) +
                " (1 on completion tokens, 0 elsewhere)" +
                (weights.defined() ? ", got " + c10::str(weights.sizes()) : ""));
  }
  // [R,T]: ignored positions read token 0, so any placeholder there stays in range.
  const auto safe = torch::where(weights != 0, targets, torch::zeros_like(targets));
  if (safe.numel() > 0 && (safe.min().item<int64_t>() < 0 || safe.max().item<int64_t>() >= V)) {
    throw Error("sequence_logprobs: a weighted target token id is outside [0, " + std::to_string(V) +
                "): token ids must be below the vocabulary size of the logits");
  }
  const auto x = logits.scalar_type() == torch::kDouble ? logits : logits.to(torch::kFloat);  // [R,T,V]
  const auto picked = x.gather(2, safe.unsqueeze(2)).squeeze(2);   // [R,T]
  const auto token_logprobs = picked - x.logsumexp(2);             // [R,T]
  return (token_logprobs * weights.to(x.scalar_type())).sum(1);    // [R]
}

}  // namespace ethos
