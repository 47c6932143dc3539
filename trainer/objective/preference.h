// Preference objectives of the DPO family on per-sequence log-probabilities: DPO, IPO,
// conservative DPO, robust DPO, SimPO and RPO, plus the summed completion log-probs that
// feed them. Self-contained: the training loop supplies the log-probs. Checked against an
// independent Python reference (tests/reference/preference_ref.py) and finite differences
// in tests/test_preference.cpp.
#pragma once
#include <torch/torch.h>

#include <string>
#include <vector>

namespace ethos {

enum class PreferenceObjective { dpo, ipo, robust, conservative, simpo, rpo };

// "dpo", "ipo", ...: Error listing the valid names for anything else.
PreferenceObjective preference_objective_from_string(const std::string& name);
std::string preference_objective_name(PreferenceObjective objective);

struct PreferenceOptions {
  PreferenceObjective objective = PreferenceObjective::dpo;
  double beta = 0.1;
  // Assumed rate e of flipped labels, in [0, 0.5); only for robust and conservative, 0 elsewhere.
  double label_smoothing = 0.0;
  double simpo_gamma = 0.5;  // SimPO target reward margin gamma (not gamma/beta)
  double rpo_alpha = 1.0;    // RPO: weight of the chosen answer's per-token NLL
};

// Every problem with the options at once (empty when valid), each naming the field and the fix.
std::vector<std::string> problems(const PreferenceOptions& options);

// N preference pairs, all [N] float tensors. Log-probs are summed over completion tokens.
struct PreferenceBatch {
  torch::Tensor policy_chosen, policy_rejected;  // [N] with grad
  torch::Tensor ref_chosen, ref_rejected;        // [N] no grad; may be undefined for simpo
  torch::Tensor chosen_tokens, rejected_tokens;  // [N] completion token counts (> 0)
  // Optional, RPO only: [N] per-pair NLL of the chosen answer, already weighted and averaged
  // (sum w*(-log p) / sum w, e.g. with a rationale span weighted like in SFT). When undefined,
  // RPO uses -policy_chosen / chosen_tokens.
  torch::Tensor chosen_nll = {};
};

struct PreferenceOutput {
  torch::Tensor loss;                            // scalar, mean over pairs
  torch::Tensor chosen_reward, rejected_reward;  // [N], detached implicit rewards (see preference_loss)
  double accuracy = 0;                           // share of pairs with chosen_reward > rejected_reward
  double margin = 0;                             // mean(chosen_reward - rejected_reward)
};

// With h = (pc - rc) - (pr - rr), e = label_smoothing, |c|, |r| = token counts, per pair:
//   dpo          -logsig(beta h)
//   ipo          (h' - 1/(2 beta))^2 where h' uses log-probs AVERAGED per token (each summed
//                log-prob divided by its token count), as TRL does for IPO
//   conservative -(1-e) logsig(beta h) - e logsig(-beta h)
//   robust       (-(1-e) logsig(beta h) + e logsig(-beta h)) / (1-2e)   (unbiased rDPO)
//   simpo        -logsig(beta pc/|c| - beta pr/|r| - gamma)              (reference-free)
//   rpo          -logsig(beta h) + alpha (-pc/|c|)   (or + alpha chosen_nll when given)
// and the loss is the mean over pairs. Rewards: beta (policy - ref), with the per-token
// averaged log-probs for ipo; simpo: beta policy / tokens.
// Error when the options have problems or a tensor is missing, mis-shaped or a count is < 1.
PreferenceOutput preference_loss(const PreferenceBatch& batch, const PreferenceOptions& options);

// Summed log-probs of the target tokens per row.
//   logits [R,T,V], targets [R,T] int64, weights [R,T] (1 on completion tokens, 0 elsewhere) -> [R]
// Computed in float32 at least (bf16/fp16 logits are upcast). Targets at weight-0 positions are
// ignored (may hold e.g. -100); weighted targets outside [0,V) are an Error.
torch::Tensor sequence_logprobs(const torch::Tensor& logits, const torch::Tensor& targets,
                                const torch::Tensor& weights);

}  // namespace ethos
