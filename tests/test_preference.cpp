// Preference objectives (trainer/objective/preference.h): DPO starts at ln 2; every objective's loss,
// gradients and rewards against an independent PyTorch reference (tests/reference/preference_ref.py,
// golden tests/golden/preference.json, and live when /usr/bin/python3 has torch) and against
// central finite differences; sequence_logprobs against a brute-force sum; option and batch
// validation; accuracy/margin on a hand-built batch; each objective learns a tiny preference set.
#include <torch/torch.h>

#include "catch.h"
#include <nlohmann/json.hpp>

#include <cmath>

#include "datasets/base/util.h"
#include "tests/helpers.h"
#include "trainer/objective/preference.h"

using ethos::PreferenceBatch;
using ethos::PreferenceObjective;
using ethos::PreferenceOptions;
using ethos_catch::Contains;
using nlohmann::json;

namespace {

const std::vector<std::string> kObjectives = {"dpo", "ipo", "robust", "conservative", "simpo", "rpo"};

torch::Tensor doubles(const json& values) {
  return torch::tensor(values.get<std::vector<double>>(), torch::kFloat64);
}

// The reference problem's batch; policy log-probs are fresh leaves with grad.
PreferenceBatch reference_batch(const json& inputs) {
  return {doubles(inputs["policy_chosen"]).requires_grad_(true),
          doubles(inputs["policy_rejected"]).requires_grad_(true),
          doubles(inputs["ref_chosen"]),
          doubles(inputs["ref_rejected"]),
          doubles(inputs["chosen_tokens"]),
          doubles(inputs["rejected_tokens"])};
}

PreferenceOptions reference_options(const json& ref, const std::string& name) {
  PreferenceOptions o;
  o.objective = ethos::preference_objective_from_string(name);
  o.beta = ref["beta"].get<double>();
  o.label_smoothing = ref["objectives"][name]["label_smoothing"].get<double>();
  o.simpo_gamma = ref["simpo_gamma"].get<double>();
  o.rpo_alpha = ref["rpo_alpha"].get<double>();
  return o;
}

double max_abs_diff(const torch::Tensor& got, const json& want) {
  return (got.detach().to(torch::kFloat64) - doubles(want)).abs().max().item<double>();
}

// Loss, gradients w.r.t. the policy log-probs and rewards of every objective vs the reference.
void compare_with_reference(const json& ref) {
  const double tol = 1e-6;
  for (const auto& name : kObjectives) {
    CATCH_INFO("objective " << name);
    const json& want = ref["objectives"][name];
    const PreferenceBatch batch = reference_batch(ref["inputs"]);
    const auto out = ethos::preference_loss(batch, reference_options(ref, name));
    out.loss.backward();
    CATCH_CHECK(std::abs(out.loss.item<double>() - want["loss"].get<double>()) <= tol);
    CATCH_CHECK(max_abs_diff(batch.policy_chosen.grad(), want["grad_policy_chosen"]) <= tol);
    CATCH_CHECK(max_abs_diff(batch.policy_rejected.grad(), want["grad_policy_rejected"]) <= tol);
    CATCH_CHECK(max_abs_diff(out.chosen_reward, want["chosen_reward"]) <= tol);
    CATCH_CHECK(max_abs_diff(out.rejected_reward, want["rejected_reward"]) <= tol);
  }
}

json golden() {
  return json::parse(ethos::read_file(ethos::test::source_dir() + "/tests/golden/preference.json"));
}

double loss_value(const PreferenceBatch& b, const PreferenceOptions& o) {
  torch::NoGradGuard no_grad;
  return ethos::preference_loss(b, o).loss.item<double>();
}

}  // namespace

CATCH_TEST_CASE("DPO loss is ln 2 when the policy equals the reference") {
  torch::manual_seed(5);
  for (const auto dtype : {torch::kFloat32, torch::kFloat64}) {
    const auto chosen = -50 * torch::rand({7}, dtype), rejected = -50 * torch::rand({7}, dtype);
    const auto tokens = torch::full({7}, 4.0, dtype);
    PreferenceBatch b{chosen.clone().requires_grad_(true), rejected.clone().requires_grad_(true), chosen, rejected,
                      tokens, tokens};
    PreferenceOptions o;
    o.beta = 0.3;
    const auto out = ethos::preference_loss(b, o);
    CATCH_CHECK(std::abs(out.loss.item<double>() - std::log(2.0)) <= 1e-7);
    CATCH_CHECK(out.accuracy == 0.0);  // ties are not wins
    CATCH_CHECK(out.margin == 0.0);
  }
}

CATCH_TEST_CASE("preference losses and gradients match the PyTorch reference (golden)") {
  compare_with_reference(golden());
}

CATCH_TEST_CASE("preference losses and gradients match the PyTorch reference (live Python reference)") {
  if (!ethos::test::python_torch_available()) {
    CATCH_WARN("/usr/bin/python3 cannot import torch: live reference skipped (the golden test still ran)");
    return;
  }
  const auto result =
      ethos::test::run("/usr/bin/python3 " + ethos::test::source_dir() + "/tests/reference/preference_ref.py");
  CATCH_INFO(result.output);
  CATCH_REQUIRE(result.status == 0);
  compare_with_reference(json::parse(result.output));
}

CATCH_TEST_CASE("preference gradients match central finite differences") {
  const json ref = golden();
  const double step = 1e-6, tol = 1e-6;
  for (const auto& name : kObjectives) {
    CATCH_INFO("objective " << name);
    const auto options = reference_options(ref, name);
    const PreferenceBatch batch = reference_batch(ref["inputs"]);
    ethos::preference_loss(batch, options).loss.backward();
    for (const bool chosen : {true, false}) {
      const torch::Tensor& x = chosen ? batch.policy_chosen : batch.policy_rejected;
      for (int64_t i = 0; i < x.size(0); ++i) {
        CATCH_INFO((chosen ? "policy_chosen[" : "policy_rejected[") << i << "]");
        auto shifted = [&](double delta) {
          PreferenceBatch b = batch;
          auto moved = x.detach().clone();
          moved[i].add_(delta);
          (chosen ? b.policy_chosen : b.policy_rejected) = moved;
          return loss_value(b, options);
        };
        const double numeric = (shifted(step) - shifted(-step)) / (2 * step);
        CATCH_CHECK(std::abs(numeric - x.grad()[i].item<double>()) <= tol);
      }
    }
  }
}

CATCH_TEST_CASE("sequence_logprobs sums the weighted target log-probs") {
  torch::manual_seed(11);
  const int64_t R = 3, T = 4, V = 5;
  const auto logits = (3 * torch::randn({R, T, V}, torch::kFloat64)).requires_grad_(true);
  auto targets = torch::randint(0, V, {R, T}, torch::kLong);
  const auto weights = torch::tensor({{0., 1., 1., 1.}, {0., 0., 1., 0.}, {1., 1., 1., 1.}}, torch::kFloat64);
  targets[0][0] = -100;  // a placeholder at an ignored position must not be read
  targets[1][3] = 99;

  const auto got = ethos::sequence_logprobs(logits, targets, weights);
  CATCH_REQUIRE(got.sizes() == c10::IntArrayRef({R}));
  const auto l = logits.detach();
  for (int64_t r = 0; r < R; ++r) {
    double want = 0;
    for (int64_t t = 0; t < T; ++t) {
      if (weights[r][t].item<double>() == 0) continue;
      double z = 0;
      for (int64_t v = 0; v < V; ++v) z += std::exp(l[r][t][v].item<double>());
      want += l[r][t][targets[r][t].item<int64_t>()].item<double>() - std::log(z);
    }
    CATCH_CHECK(std::abs(got[r].item<double>() - want) <= 1e-12);
  }
  // d sum / d logits = weight * (onehot(target) - softmax): zero at ignored positions.
  got.sum().backward();
  const auto onehot = torch::one_hot(torch::where(weights != 0, targets, torch::zeros_like(targets)), V);
  const auto want_grad = weights.unsqueeze(2) * (onehot.to(torch::kFloat64) - torch::softmax(l, 2));
  CATCH_CHECK((logits.grad() - want_grad).abs().max().item<double>() <= 1e-12);
  // float32 and bfloat16 logits are computed in float32.
  const auto as_float = ethos::sequence_logprobs(l.to(torch::kFloat32), targets, weights);
  CATCH_CHECK(as_float.scalar_type() == torch::kFloat32);
  CATCH_CHECK((as_float.to(torch::kFloat64) - got.detach()).abs().max().item<double>() <= 1e-5);
  CATCH_CHECK(ethos::sequence_logprobs(l.to(torch::kBFloat16), targets, weights).scalar_type() == torch::kFloat32);

  auto bad = targets.clone();
  bad[2][1] = V;  // weighted position, out of the vocabulary
  CATCH_REQUIRE_THROWS_WITH(ethos::sequence_logprobs(l, bad, weights), Contains("outside [0, 5)"));
  CATCH_REQUIRE_THROWS_WITH(ethos::sequence_logprobs(l, targets.slice(1, 0, 3), weights), Contains("targets must be"));
  CATCH_REQUIRE_THROWS_WITH(ethos::sequence_logprobs(l, targets.to(torch::kInt), weights), Contains("int64"));
  CATCH_REQUIRE_THROWS_WITH(ethos::sequence_logprobs(l, targets, weights.slice(0, 0, 2)), Contains("weights must be"));
  CATCH_REQUIRE_THROWS_WITH(ethos::sequence_logprobs(l[0], targets, weights), Contains("logits must be [R,T,V]"));
}

CATCH_TEST_CASE("preference options: problems and objective names") {
  CATCH_CHECK(ethos::problems(PreferenceOptions{}).empty());
  for (const auto& name : kObjectives) {
    CATCH_CHECK(ethos::preference_objective_name(ethos::preference_objective_from_string(name)) == name);
  }
  CATCH_REQUIRE_THROWS_WITH(ethos::preference_objective_from_string("dpo2"),
                            Contains("unknown preference objective 'dpo2'") &&
                                Contains("dpo, ipo, robust, conservative, simpo, rpo"));

  PreferenceOptions o;
  o.label_smoothing = 0.1;  // with dpo
  auto found = ethos::problems(o);
  CATCH_REQUIRE(found.size() == 1);
  CATCH_CHECK_THAT(found[0], Contains("label_smoothing") && Contains("objective dpo") &&
                                 Contains("set label_smoothing only with objective robust or conservative"));
  for (const auto objective : {PreferenceObjective::robust, PreferenceObjective::conservative}) {
    o.objective = objective;
    CATCH_CHECK(ethos::problems(o).empty());
  }

  o.objective = PreferenceObjective::robust;
  o.label_smoothing = 0.5;  // rDPO divides by 1-2e
  found = ethos::problems(o);
  CATCH_REQUIRE(found.size() == 1);
  CATCH_CHECK_THAT(found[0], Contains("label_smoothing = 0.5") && Contains("[0, 0.5)"));
  o.label_smoothing = -0.1;
  CATCH_CHECK(ethos::problems(o).size() == 1);

  PreferenceOptions many;
  many.beta = 0;
  many.label_smoothing = 0.2;
  many.simpo_gamma = -1;
  many.rpo_alpha = std::nan("");
  found = ethos::problems(many);  // every problem at once
  CATCH_REQUIRE(found.size() == 4);
  CATCH_CHECK_THAT(found[0], Contains("beta = 0") && Contains("> 0"));
  CATCH_CHECK_THAT(found[1], Contains("label_smoothing"));
  CATCH_CHECK_THAT(found[2], Contains("simpo_gamma"));
  CATCH_CHECK_THAT(found[3], Contains("rpo_alpha"));
  many.beta = -1;
  CATCH_CHECK_THAT(ethos::problems(many)[0], Contains("beta = -1"));

  const auto t = torch::zeros({2}, torch::kFloat64);
  CATCH_REQUIRE_THROWS_WITH(ethos::preference_loss({t, t, t, t, t + 1, t + 1}, many),
                            Contains("preference options") && Contains("beta = -1") && Contains("rpo_alpha"));
}

CATCH_TEST_CASE("preference batch validation") {
  const auto t = torch::zeros({3}, torch::kFloat64), ones = torch::ones({3}, torch::kFloat64);
  PreferenceOptions o;
  CATCH_REQUIRE_THROWS_WITH(ethos::preference_loss({t, t, torch::Tensor(), t, ones, ones}, o),
                            Contains("ref_chosen is missing"));
  CATCH_REQUIRE_THROWS_WITH(ethos::preference_loss({t, t.slice(0, 0, 2), t, t, ones, ones}, o),
                            Contains("policy_rejected has shape [2], expected [3]"));
  CATCH_REQUIRE_THROWS_WITH(ethos::preference_loss({t.slice(0, 0, 0), t, t, t, ones, ones}, o),
                            Contains("N >= 1"));
  CATCH_REQUIRE_THROWS_WITH(ethos::preference_loss({t, t.to(torch::kLong), t, t, ones, ones}, o),
                            Contains("policy_rejected must be a floating-point"));
  o.objective = PreferenceObjective::simpo;  // reference-free: undefined refs are fine
  CATCH_CHECK(std::isfinite(ethos::preference_loss({t, t, {}, {}, ones, ones}, o).loss.item<double>()));
  const auto empty_answer = torch::tensor({3.0, 0.0, 2.0}, torch::kFloat64);
  CATCH_REQUIRE_THROWS_WITH(ethos::preference_loss({t, t, {}, {}, ones, empty_answer}, o),
                            Contains("rejected_tokens has a count of 0") && Contains("at least one completion token"));
  o.objective = PreferenceObjective::rpo;
  CATCH_REQUIRE_THROWS_WITH(ethos::preference_loss({t, t, t, t, {}, ones}, o), Contains("chosen_tokens is missing"));
}

CATCH_TEST_CASE("accuracy and margin on a constructed batch") {
  // beta (policy - ref): chosen [0.5, -1, 0.25, 2], rejected [0, 0, 0.25, 1] -> wins on pairs 0 and 3
  // (pair 2 is a tie), margin = mean(0.5, -1, 0, 1) = 0.125.
  const auto d = [](std::vector<double> v) { return torch::tensor(v, torch::kFloat64); };
  const auto ref = d({-10, -20, -5, -8});
  PreferenceBatch b{ref + d({1, -2, 0.5, 4}), ref + d({0, 0, 0.5, 2}), ref, ref, d({2, 4, 1, 8}), d({2, 2, 1, 4})};
  PreferenceOptions o;
  o.beta = 0.5;
  auto out = ethos::preference_loss(b, o);
  CATCH_CHECK(out.accuracy == 0.5);
  CATCH_CHECK(std::abs(out.margin - 0.125) <= 1e-12);
  CATCH_CHECK((out.chosen_reward - d({0.5, -1, 0.25, 2})).abs().max().item<double>() <= 1e-12);
  CATCH_CHECK(!out.chosen_reward.requires_grad());

  // simpo: beta policy / tokens. chosen [-2.25, -2.75, -2.25, -0.25], rejected [-2.5, -5, -2.25, -0.75]
  // -> wins on pairs 0, 1, 3; margin = mean(0.25, 2.25, 0, 0.5) = 0.75.
  o.objective = PreferenceObjective::simpo;
  out = ethos::preference_loss(b, o);
  CATCH_CHECK(out.accuracy == 0.75);
  CATCH_CHECK(std::abs(out.margin - 0.75) <= 1e-12);
}

CATCH_TEST_CASE("each objective learns a tiny preference set") {
  // Per pair a free "model": logits [N,T=2,V=3] shared by its chosen and rejected answers. The
  // reference is the starting policy, so DPO-family rewards start tied (accuracy 0).
  const int64_t N = 4, T = 2, V = 3;
  const auto chosen = torch::tensor({{0, 1}, {2, 2}, {1, 0}, {0, 2}}, torch::kLong);     // [N,T]
  const auto rejected = torch::tensor({{1, 1}, {0, 2}, {2, 1}, {1, 0}}, torch::kLong);   // [N,T]
  const auto chosen_w = torch::tensor({{1., 1.}, {1., 0.}, {1., 1.}, {1., 1.}});        // [N,T]
  const auto rejected_w = torch::tensor({{1., 1.}, {1., 1.}, {1., 0.}, {1., 1.}});      // [N,T]
  for (const auto& name : kObjectives) {
    CATCH_INFO("objective " << name);
    torch::manual_seed(3);
    const auto logits = (0.5 * torch::randn({N, T, V})).requires_grad_(true);
    torch::Tensor ref_chosen, ref_rejected;
    {
      torch::NoGradGuard no_grad;
      ref_chosen = ethos::sequence_logprobs(logits, chosen, chosen_w);
      ref_rejected = ethos::sequence_logprobs(logits, rejected, rejected_w);
    }
    PreferenceOptions o;
    o.objective = ethos::preference_objective_from_string(name);
    o.beta = 0.5;
    if (name == "robust" || name == "conservative") o.label_smoothing = 0.1;
    torch::optim::SGD sgd({logits}, torch::optim::SGDOptions(/*lr=*/1.0));
    ethos::PreferenceOutput out;
    double first_loss = 0;
    for (int step = 0; step < 100; ++step) {
      PreferenceBatch b{ethos::sequence_logprobs(logits, chosen, chosen_w),
                        ethos::sequence_logprobs(logits, rejected, rejected_w),
                        ref_chosen, ref_rejected, chosen_w.sum(1), rejected_w.sum(1)};
      out = ethos::preference_loss(b, o);
      if (step == 0) first_loss = out.loss.item<double>();
      sgd.zero_grad();
      out.loss.backward();
      sgd.step();
    }
    CATCH_CHECK(out.accuracy == 1.0);
    CATCH_CHECK(out.margin > 0);
    CATCH_CHECK(out.loss.item<double>() < first_loss);
  }
}
