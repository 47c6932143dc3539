// Optimizer and schedule: AdamW + clipping + schedule against torch.optim.AdamW numbers
// (tests/reference/adamw_ref.py, golden tests/golden/optim_adamw.json, and live when
// /usr/bin/python3 has torch), hand-computed schedule values and clip norms, a bitwise
// resume through saved optimizer state, and the decay mask on Llama names.
#include <torch/torch.h>

#include "catch.h"
#include <nlohmann/json.hpp>

#include <cmath>

#include "datasets/base/util.h"
#include "tests/helpers.h"
#include "trainer/optim.h"
#include "trainer/model/safetensors.h"

using ethos::AdamW;
using ethos::ScheduleOptions;
using ethos_catch::Contains;
using Params = std::vector<std::pair<std::string, torch::Tensor>>;

namespace {

// The fixed problem of adamw_ref.py: same names, shapes and formulas (values exact in float32).
const std::vector<std::pair<std::string, std::vector<int64_t>>> kShapes = {
    {"model.layers.0.mlp.up_proj.weight", {4, 3}},
    {"model.layers.0.input_layernorm.weight", {3}},
    {"model.embed_tokens.weight", {5, 3}},
};
const ScheduleOptions kSchedule{"cosine", /*warmup_steps=*/2, /*total_steps=*/5, /*min_lr_ratio=*/0.1};
const ethos::AdamWOptions kAdamW{/*lr=*/1e-2, /*beta1=*/0.9, /*beta2=*/0.95, /*eps=*/1e-8, /*weight_decay=*/0.1};
constexpr double kBaseLr = 1e-2, kMaxNorm = 1.0;

torch::Tensor formula_tensor(const std::vector<int64_t>& shape, int64_t mul, int64_t add, int64_t mod, int64_t shift,
                             double div) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  std::vector<float> v;
  for (int64_t k = 0; k < n; ++k) v.push_back(static_cast<float>(((k * mul + add) % mod - shift) / div));
  return torch::tensor(v).reshape(shape);
}

Params make_params() {
  Params out;
  for (size_t i = 0; i < kShapes.size(); ++i) {
    auto p = formula_tensor(kShapes[i].second, 5, 3 * static_cast<int64_t>(i) + 1, 11, 5, 4.0);
    out.emplace_back(kShapes[i].first, p.requires_grad_(true));
  }
  return out;
}

void set_grads(const Params& params, int64_t step) {
  for (size_t i = 0; i < params.size(); ++i) {
    params[i].second.mutable_grad() =
        formula_tensor(kShapes[i].second, 7, step * 13 + 3 * static_cast<int64_t>(i), 17, 8, 8.0);
  }
}

struct Trace {
  std::vector<double> lrs, norms;
};

// Steps [from, to) of the reference problem: grads -> clip -> scheduled lr -> step.
void run_steps(AdamW& opt, int64_t from, int64_t to, Trace* trace = nullptr) {
  for (int64_t s = from; s < to; ++s) {
    set_grads(opt.params(), s);
    const double norm = ethos::clip_grad_norm(opt.params(), kMaxNorm);
    const double lr = kBaseLr * ethos::lr_multiplier(kSchedule, s);
    opt.step(lr);
    if (trace) {
      trace->lrs.push_back(lr);
      trace->norms.push_back(norm);
    }
  }
}

void require_close(const nlohmann::json& expected, const torch::Tensor& got, double tol) {
  const auto want = expected.get<std::vector<double>>();
  const auto flat = got.detach().to(torch::kDouble).reshape({-1});
  CATCH_REQUIRE(static_cast<int64_t>(want.size()) == flat.numel());
  double worst = 0;
  for (size_t k = 0; k < want.size(); ++k) worst = std::max(worst, std::abs(flat[k].item<double>() - want[k]));
  CATCH_CHECK(worst <= tol);
}

// Compares a 5-step ethos run with the reference JSON: lrs, grad norms, params and moments.
void compare_with_reference(const nlohmann::json& ref) {
  Params params = make_params();
  AdamW opt(params, ethos::default_decay_mask(params, false), kAdamW);
  Trace trace;
  run_steps(opt, 0, kSchedule.total_steps, &trace);
  CATCH_CHECK(opt.step_count() == 5);
  const auto lrs = ref["lrs"].get<std::vector<double>>();
  const auto norms = ref["grad_norms"].get<std::vector<double>>();
  CATCH_REQUIRE(lrs.size() == trace.lrs.size());
  for (size_t s = 0; s < lrs.size(); ++s) {
    CATCH_CHECK(std::abs(trace.lrs[s] - lrs[s]) <= 1e-15);
    CATCH_CHECK(std::abs(trace.norms[s] - norms[s]) <= 1e-6 * norms[s]);
  }
  const auto state = opt.state_tensors();
  for (size_t i = 0; i < params.size(); ++i) {
    const std::string& name = params[i].first;
    CATCH_INFO("parameter " << name);
    require_close(ref["params"][name], params[i].second, 1e-6);
    require_close(ref["exp_avg"][name], state[2 * i].second, 1e-6);
    require_close(ref["exp_avg_sq"][name], state[2 * i + 1].second, 1e-6);
  }
}

}  // namespace

CATCH_TEST_CASE("AdamW + clipping + schedule match torch.optim.AdamW (golden)") {
  const auto ref =
      nlohmann::json::parse(ethos::read_file(ethos::test::source_dir() + "/tests/golden/optim_adamw.json"));
  compare_with_reference(ref);
}

CATCH_TEST_CASE("AdamW + clipping + schedule match torch.optim.AdamW (live Python reference)") {
  if (!ethos::test::python_torch_available()) {
    CATCH_WARN("/usr/bin/python3 cannot import torch: live reference skipped (the golden test still ran)");
    return;
  }
  const auto result =
      ethos::test::run("/usr/bin/python3 " + ethos::test::source_dir() + "/tests/reference/adamw_ref.py");
  CATCH_INFO(result.output);
  CATCH_REQUIRE(result.status == 0);
  compare_with_reference(nlohmann::json::parse(result.output));
}

CATCH_TEST_CASE("lr schedule values at chosen steps") {
  const double tol = 1e-12;
  ScheduleOptions o{"cosine", /*warmup_steps=*/10, /*total_steps=*/110, /*min_lr_ratio=*/0.1};
  CATCH_CHECK(std::abs(ethos::lr_multiplier(o, 0) - 0.1) < tol);   // (0+1)/10
  CATCH_CHECK(std::abs(ethos::lr_multiplier(o, 4) - 0.5) < tol);   // (4+1)/10
  CATCH_CHECK(std::abs(ethos::lr_multiplier(o, 9) - 1.0) < tol);   // end of warmup
  CATCH_CHECK(std::abs(ethos::lr_multiplier(o, 10) - 1.0) < tol);  // decay starts at 1
  CATCH_CHECK(std::abs(ethos::lr_multiplier(o, 109) - 0.1) < tol);  // last step: min
  CATCH_CHECK(std::abs(ethos::lr_multiplier(o, 500) - 0.1) < tol);  // past the end: stays at min

  o.total_steps = 111;  // 100 decay steps: progress = (s-10)/100
  CATCH_CHECK(std::abs(ethos::lr_multiplier(o, 60) - 0.55) < tol);                   // 0.1 + 0.9*0.5
  CATCH_CHECK(std::abs(ethos::lr_multiplier(o, 35) - 0.8681980515339464) < tol);      // 0.1 + 0.45*(1+cos(pi/4))
  o.kind = "linear";
  CATCH_CHECK(std::abs(ethos::lr_multiplier(o, 60) - 0.55) < tol);
  CATCH_CHECK(std::abs(ethos::lr_multiplier(o, 35) - 0.775) < tol);  // 1 - 0.9*0.25
  CATCH_CHECK(std::abs(ethos::lr_multiplier(o, 110) - 0.1) < tol);
  o.kind = "constant";
  CATCH_CHECK(std::abs(ethos::lr_multiplier(o, 5) - 0.6) < tol);
  CATCH_CHECK(std::abs(ethos::lr_multiplier(o, 80) - 1.0) < tol);

  CATCH_CHECK(ethos::lr_multiplier({"cosine", 0, 1, 0.1}, 0) == 1.0);  // a single step runs at full lr
  CATCH_CHECK(std::abs(ethos::lr_multiplier({"cosine", 0, 3, 0.0}, 1) - 0.5) < tol);  // halfway, min 0
  CATCH_REQUIRE_THROWS_WITH(ethos::lr_multiplier({"cosin", 0, 10, 0.1}, 0), Contains("unknown kind 'cosin'"));
  CATCH_REQUIRE_THROWS_AS(ethos::lr_multiplier({"cosine", 0, 0, 0.1}, 0), ethos::Error);
}

CATCH_TEST_CASE("clip_grad_norm matches a hand computation") {
  Params params = {{"a", torch::zeros({2}, torch::kFloat).requires_grad_(true)},
                   {"b", torch::zeros({1}, torch::kFloat).requires_grad_(true)},
                   {"no_grad", torch::zeros({3}, torch::kFloat).requires_grad_(true)}};
  auto set = [&] {
    params[0].second.mutable_grad() = torch::tensor({3.0f, 4.0f});  // norm 5
    params[1].second.mutable_grad() = torch::tensor({12.0f});       // norm 12 -> global sqrt(25+144) = 13
  };
  set();
  CATCH_CHECK(std::abs(ethos::clip_grad_norm(params, 0.0) - 13.0) < 1e-6);  // no clipping
  CATCH_CHECK(params[1].second.grad().item<float>() == 12.0f);
  CATCH_CHECK(std::abs(ethos::clip_grad_norm(params, 20.0) - 13.0) < 1e-6);  // below the limit
  CATCH_CHECK(params[1].second.grad().item<float>() == 12.0f);

  CATCH_CHECK(std::abs(ethos::clip_grad_norm(params, 6.5) - 13.0) < 1e-6);  // scale 6.5/13 = 0.5
  CATCH_CHECK(std::abs(params[0].second.grad()[0].item<float>() - 1.5) < 1e-6);
  CATCH_CHECK(std::abs(params[0].second.grad()[1].item<float>() - 2.0) < 1e-6);
  CATCH_CHECK(std::abs(params[1].second.grad()[0].item<float>() - 6.0) < 1e-6);
  CATCH_CHECK(std::abs(ethos::clip_grad_norm(params, 0.0) - 6.5) < 1e-5);
  CATCH_CHECK(!params[2].second.grad().defined());
  CATCH_CHECK(ethos::clip_grad_norm({{"x", torch::zeros({2})}}, 1.0) == 0.0);  // no grads at all
}

CATCH_TEST_CASE("optimizer state save/load resumes bitwise") {
  Params straight = make_params();
  AdamW uninterrupted(straight, ethos::default_decay_mask(straight, false), kAdamW);
  run_steps(uninterrupted, 0, 5);

  Params first = make_params();
  AdamW before(first, ethos::default_decay_mask(first, false), kAdamW);
  run_steps(before, 0, 2);
  // Through the checkpoint format: safetensors bytes, then a fresh optimizer on copied params.
  const auto file = ethos::SafetensorsFile::parse(ethos::serialize_safetensors(before.state_tensors()), "opt");
  std::map<std::string, torch::Tensor> saved;
  for (const auto& e : file.entries()) saved[e.name] = file.get(e.name);
  Params second;
  for (const auto& [name, p] : first) second.emplace_back(name, p.detach().clone().requires_grad_(true));
  AdamW after(second, ethos::default_decay_mask(second, false), kAdamW);
  after.load_state(saved, before.step_count());
  CATCH_CHECK(after.step_count() == 2);
  run_steps(after, 2, 5);

  for (size_t i = 0; i < straight.size(); ++i) {
    CATCH_INFO("parameter " << straight[i].first);
    CATCH_CHECK(torch::equal(straight[i].second, second[i].second));
  }

  CATCH_SECTION("bad state is an error naming the entry") {
    auto missing = saved;
    missing.erase("model.embed_tokens.weight.exp_avg_sq");
    CATCH_REQUIRE_THROWS_WITH(after.load_state(missing, 2), Contains("missing 'model.embed_tokens.weight.exp_avg_sq'"));
    auto misshaped = saved;
    misshaped["model.layers.0.input_layernorm.weight.exp_avg"] = torch::zeros({4});
    CATCH_REQUIRE_THROWS_WITH(after.load_state(misshaped, 2),
                              Contains("'model.layers.0.input_layernorm.weight.exp_avg' has shape [4]"));
    auto extra = saved;
    extra["lm_head.weight.exp_avg"] = torch::zeros({2});
    CATCH_REQUIRE_THROWS_WITH(after.load_state(extra, 2), Contains("unexpected entry 'lm_head.weight.exp_avg'"));
  }
}

CATCH_TEST_CASE("AdamW skips params without grad, zero_grad clears grads") {
  Params params = {{"w.weight", torch::ones({2, 2}).requires_grad_(true)}, {"v.weight", torch::ones({2, 2}).requires_grad_(true)}};
  AdamW opt(params, {true, true}, {1e-2, 0.9, 0.95, 1e-8, 0.5});
  params[0].second.mutable_grad() = torch::ones({2, 2});
  opt.step(1e-2);
  CATCH_CHECK(torch::equal(params[1].second, torch::ones({2, 2})));  // no grad: untouched, even by decay
  // first step: decay 1 - 1e-2*0.5, then Adam moves by lr * 1/(1+eps) = 1e-2
  CATCH_CHECK(std::abs(params[0].second[0][0].item<double>() - (0.995 - 1e-2)) < 1e-6);
  opt.zero_grad();
  CATCH_CHECK(!params[0].second.grad().defined());
  CATCH_REQUIRE_THROWS_AS(AdamW(params, {true}, {}), ethos::Error);
}

CATCH_TEST_CASE("default decay mask on Llama-style names") {
  const Params params = {
      {"model.embed_tokens.weight", torch::zeros({8, 4})},
      {"model.layers.0.input_layernorm.weight", torch::zeros({4})},
      {"model.layers.0.self_attn.q_proj.weight", torch::zeros({4, 4})},
      {"model.layers.0.self_attn.q_proj.bias", torch::zeros({4})},
      {"model.norm.weight", torch::zeros({4})},
      {"lm_head.weight", torch::zeros({8, 4})},
  };
  CATCH_CHECK(ethos::default_decay_mask(params, false) == std::vector<bool>{false, false, true, false, false, true});
  CATCH_CHECK(ethos::default_decay_mask(params, true) == std::vector<bool>(6, true));
}
