// Llama model: parity with the independent Python reference (tests/reference/llama_ref.py) on
// logits, loss and every parameter gradient; document isolation in packed rows; Hugging Face
// parameter names; config.json mapping.
#include <torch/torch.h>

#include "catch.h"
#include <filesystem>
#include <set>

#include "datasets/base/util.h"
#include "tests/helpers.h"
#include "trainer/model/llama.h"
#include "trainer/model/weights.h"
#include "trainer/model/safetensors.h"

using namespace ethos;
using json = nlohmann::json;

namespace {

constexpr double kParityTol = 1e-5;  // abs, float32

std::string golden(const std::string& file) { return test::source_dir() + "/tests/golden/" + file; }

torch::Tensor int_rows(const json& rows) {  // [B][T] -> int64 [B,T]
  std::vector<int64_t> flat;
  for (const auto& row : rows)
    for (const auto& v : row) flat.push_back(v.get<int64_t>());
  return torch::tensor(flat, torch::kInt64).view({static_cast<int64_t>(rows.size()), -1});
}

double max_abs_diff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kFloat64) - b.to(torch::kFloat64)).abs().max().item<double>();
}

struct Output {
  torch::Tensor logits;  // [B,T,V]
  double loss;
};

// Forward + mean cross entropy over labels != -100 + backward.
Output loss_and_backward(Llama& model, const json& input) {
  model->zero_grad();
  const auto logits = model->forward(int_rows(input["tokens"]), int_rows(input["positions"]), int_rows(input["doc_ids"]));
  const auto loss = torch::nn::functional::cross_entropy(
      logits.reshape({-1, logits.size(-1)}), int_rows(input["labels"]).reshape({-1}),
      torch::nn::functional::CrossEntropyFuncOptions().ignore_index(-100));
  loss.backward();
  return {logits.detach(), loss.item<double>()};
}

// Compares logits, loss and each gradient of `model` (after loss_and_backward) with `expected`
// (tensors "logits", "grad.<name>"; loss given separately).
void check_against(Llama& model, const json& input, const SafetensorsFile& expected, double expected_loss) {
  const Output out = loss_and_backward(model, input);
  CATCH_CHECK(max_abs_diff(out.logits, expected.get("logits")) <= kParityTol);
  CATCH_CHECK(std::abs(out.loss - expected_loss) <= kParityTol);
  std::set<std::string> grads;
  for (const auto& e : expected.entries())
    if (e.name.rfind("grad.", 0) == 0) grads.insert(e.name.substr(5));
  std::set<std::string> params;
  for (auto& [name, p] : model->hf_parameters()) {
    params.insert(name);
    CATCH_INFO("gradient of " << name);
    CATCH_REQUIRE(p.grad().defined());
    CATCH_CHECK(max_abs_diff(p.grad(), expected.get("grad." + name)) <= kParityTol);
  }
  CATCH_CHECK(grads == params);
}

Llama model_from_golden(const json& record, const SafetensorsFile& file) {
  Llama model(ModelConfig::from_hf_json(record["config"], "golden config"));
  torch::NoGradGuard no_grad;
  for (auto& [name, p] : model->hf_parameters()) p.copy_(file.get(name));
  return model;
}

// A small random model whose norms and biases are not at their initial 1 / 0.
Llama random_model(ModelConfig cfg, uint64_t seed) {
  torch::manual_seed(seed);
  cfg.initializer_range = 0.2;
  Llama model(cfg);
  model->init_weights();
  torch::NoGradGuard no_grad;
  for (auto& [name, p] : model->hf_parameters()) p.add_(torch::randn_like(p) * 0.1);
  return model;
}

ModelConfig small_config() {
  ModelConfig c;
  c.vocab_size = 50;
  c.hidden_size = 32;
  c.intermediate_size = 64;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.max_position_embeddings = 64;
  return c;
}

}  // namespace

CATCH_TEST_CASE("Llama matches the Python reference goldens (logits, loss, all gradients)") {
  for (const std::string name : {"gqa", "tied", "qwen2"}) {
    CATCH_SECTION(name) {
      const json record = json::parse(read_file(golden("llama_" + name + ".json")));
      const auto file = SafetensorsFile::read(golden("llama_" + name + ".safetensors"));
      Llama model = model_from_golden(record, file);
      check_against(model, record["input"], file, record["loss"].get<double>());
    }
  }
}

CATCH_TEST_CASE("Llama matches the Python reference run live on weights ethos saved") {
  if (!test::python_torch_available()) {
    CATCH_WARN("skipped: /usr/bin/python3 cannot import torch");
    return;
  }
  for (const std::string name : {"gqa", "tied", "qwen2"}) {
    CATCH_SECTION(name) {
      const json record = json::parse(read_file(golden("llama_" + name + ".json")));
      Llama model = random_model(ModelConfig::from_hf_json(record["config"], "golden config"), 11);
      const std::string dir = test::fresh_dir("model_live_" + name);
      save_model(model, dir);
      test::write_text(dir + "/input.json", record["input"].dump());
      const auto r = test::run("/usr/bin/python3 " + test::source_dir() + "/tests/reference/llama_ref.py run --config " +
                               dir + "/config.json --weights " + dir + "/model.safetensors --input " + dir +
                               "/input.json --out " + dir + "/out.safetensors");
      CATCH_INFO(r.output);
      CATCH_REQUIRE(r.status == 0);
      const auto out = SafetensorsFile::read(dir + "/out.safetensors");
      check_against(model, record["input"], out, out.get("loss").item<double>());
    }
  }
}

CATCH_TEST_CASE("packed documents do not see each other") {
  Llama model = random_model(small_config(), 3);
  torch::NoGradGuard no_grad;
  const int64_t A = 6, Bn = 9;
  const auto doc_a = torch::randint(0, 50, {A}, torch::kInt64);
  const auto doc_b = torch::randint(0, 50, {Bn}, torch::kInt64);
  const auto positions = torch::cat({torch::arange(A), torch::arange(Bn)}).unsqueeze(0);
  const auto doc_ids = torch::cat({torch::zeros({A}, torch::kInt64), torch::ones({Bn}, torch::kInt64)}).unsqueeze(0);
  const auto packed = model->forward(torch::cat({doc_a, doc_b}).unsqueeze(0), positions, doc_ids);  // [1,A+B,V]
  const auto b_logits = packed.narrow(1, A, Bn);

  const auto other_a = (doc_a + 7) % 50;
  const auto changed = model->forward(torch::cat({other_a, doc_b}).unsqueeze(0), positions, doc_ids);
  CATCH_CHECK(max_abs_diff(changed.narrow(1, 0, A), packed.narrow(1, 0, A)) > 1e-3);  // docA did change
  CATCH_CHECK(max_abs_diff(changed.narrow(1, A, Bn), b_logits) <= 1e-6);

  const auto alone = model->forward(doc_b.unsqueeze(0));  // positions 0.., one document
  CATCH_CHECK(max_abs_diff(alone, b_logits) <= 1e-5);
}

CATCH_TEST_CASE("a padding token (doc id -1) gets finite logits") {
  Llama model = random_model(small_config(), 4);
  torch::NoGradGuard no_grad;
  const auto tokens = torch::tensor({{5, 6, 7, 0}}, torch::kInt64);
  const auto logits = model->forward(tokens, torch::tensor({{0, 1, 2, 0}}, torch::kInt64),
                                     torch::tensor({{0, 0, 0, -1}}, torch::kInt64));
  CATCH_CHECK(torch::isfinite(logits).all().item<bool>());
}

CATCH_TEST_CASE("named parameters are exactly Hugging Face's names") {
  auto expected_names = [](bool tied) {
    std::vector<std::string> n{"model.embed_tokens.weight"};
    for (int i = 0; i < 2; ++i) {
      const std::string p = "model.layers." + std::to_string(i) + ".";
      for (const char* s : {"self_attn.q_proj.weight", "self_attn.k_proj.weight", "self_attn.v_proj.weight",
                            "self_attn.o_proj.weight", "mlp.gate_proj.weight", "mlp.up_proj.weight",
                            "mlp.down_proj.weight", "input_layernorm.weight", "post_attention_layernorm.weight"})
        n.push_back(p + s);
    }
    n.push_back("model.norm.weight");
    if (!tied) n.push_back("lm_head.weight");
    std::sort(n.begin(), n.end());
    return n;
  };
  for (bool tied : {false, true}) {
    ModelConfig c = small_config();
    c.tie_word_embeddings = tied;
    Llama model(c);
    std::vector<std::string> names;
    int64_t count = 0;
    for (auto& [name, p] : model->hf_parameters()) {
      names.push_back(name);
      count += p.numel();
    }
    std::sort(names.begin(), names.end());
    CATCH_CHECK(names == expected_names(tied));
    CATCH_CHECK(count == c.num_parameters());
    CATCH_CHECK(model->buffers().empty());
  }
}

CATCH_TEST_CASE("biases and num_parameters follow qkv_bias / o_bias") {
  ModelConfig c = small_config();
  c.qkv_bias = true;
  Llama qwen(c);
  std::set<std::string> names;
  int64_t count = 0;
  for (auto& [name, p] : qwen->hf_parameters()) {
    names.insert(name);
    count += p.numel();
  }
  CATCH_CHECK(names.count("model.layers.1.self_attn.k_proj.bias") == 1);
  CATCH_CHECK(names.count("model.layers.1.self_attn.o_proj.bias") == 0);
  CATCH_CHECK(count == c.num_parameters());
  c.o_bias = true;
  CATCH_CHECK(Llama(c)->named_parameters().contains("model.layers.0.self_attn.o_proj.bias"));
}

CATCH_TEST_CASE("init_weights: normal(0, initializer_range), ones for norms, zeros for biases") {
  ModelConfig c = small_config();
  c.qkv_bias = true;
  c.vocab_size = 500;
  torch::manual_seed(1);
  Llama a(c);
  a->init_weights();
  auto params = a->named_parameters();
  const double sd = params["model.embed_tokens.weight"].std().item<double>();
  CATCH_CHECK(std::abs(sd - 0.02) < 0.002);
  CATCH_CHECK(torch::equal(params["model.norm.weight"], torch::ones({32})));
  CATCH_CHECK(params["model.layers.0.self_attn.q_proj.bias"].abs().sum().item<double>() == 0.0);
  torch::manual_seed(1);
  Llama b(c);
  b->init_weights();
  CATCH_CHECK(torch::equal(b->named_parameters()["lm_head.weight"], params["lm_head.weight"]));
}

CATCH_TEST_CASE("ModelConfig from/to Hugging Face config.json") {
  CATCH_SECTION("round trip, Llama and Qwen2 forms") {
    for (bool qwen2 : {false, true}) {
      ModelConfig c = small_config();
      c.qkv_bias = qwen2;
      c.tie_word_embeddings = true;
      c.rope_theta = 5e5;
      const json j = c.to_hf_json();
      CATCH_CHECK(j["model_type"] == (qwen2 ? "qwen2" : "llama"));
      CATCH_CHECK(j["architectures"][0] == (qwen2 ? "Qwen2ForCausalLM" : "LlamaForCausalLM"));
      CATCH_CHECK(j["hidden_act"] == "silu");
      const ModelConfig back = ModelConfig::from_hf_json(j, "x");
      CATCH_CHECK(back.to_hf_json() == j);
      CATCH_CHECK(back.qkv_bias == qwen2);
      CATCH_CHECK(!back.o_bias);
    }
  }
  CATCH_SECTION("a real-style Llama config with attention_bias and a list of eos ids") {
    const json j = json::parse(R"({"model_type": "llama", "vocab_size": 128, "hidden_size": 64, "intermediate_size": 96,
      "num_hidden_layers": 2, "num_attention_heads": 8, "num_key_value_heads": 2, "attention_bias": true,
      "rope_scaling": null, "eos_token_id": [7, 9], "bos_token_id": 5, "rms_norm_eps": 1e-6})");
    const auto c = ModelConfig::from_hf_json(j, "cfg.json");
    CATCH_CHECK(c.qkv_bias);
    CATCH_CHECK(c.o_bias);
    CATCH_CHECK(c.eos_token_id == 7);
    CATCH_CHECK(c.kv_heads() == 2);
    CATCH_CHECK(c.dim_per_head() == 8);
  }
  json base = small_config().to_hf_json();
  CATCH_SECTION("unknown model_type") {
    base["model_type"] = "gpt2";
    CATCH_REQUIRE_THROWS_WITH(ModelConfig::from_hf_json(base, "cfg.json"),
                              ethos_catch::Contains("cfg.json") && ethos_catch::Contains("gpt2"));
  }
  CATCH_SECTION("rope_scaling is refused") {
    base["rope_scaling"] = {{"type", "linear"}, {"factor", 2.0}};
    CATCH_REQUIRE_THROWS_WITH(ModelConfig::from_hf_json(base, "cfg.json"), ethos_catch::Contains("not supported yet"));
  }
  CATCH_SECTION("a field of the wrong type names the field") {
    base["num_hidden_layers"] = "2";
    CATCH_REQUIRE_THROWS_WITH(ModelConfig::from_hf_json(base, "cfg.json"),
                              ethos_catch::Contains("cfg.json") && ethos_catch::Contains("num_hidden_layers") &&
                                  ethos_catch::Contains("integer"));
  }
  CATCH_SECTION("inconsistent sizes are all reported") {
    base["num_key_value_heads"] = 3;
    base["vocab_size"] = 0;
    CATCH_REQUIRE_THROWS_WITH(ModelConfig::from_hf_json(base, "cfg.json"),
                              ethos_catch::Contains("multiple of num_key_value_heads") &&
                                  ethos_catch::Contains("vocab_size (0)"));
  }
}

CATCH_TEST_CASE("forward rejects token ids outside the vocabulary") {
  Llama model(small_config());
  CATCH_REQUIRE_THROWS_WITH(model->forward(torch::tensor({{1, 50}}, torch::kInt64)),
                            ethos_catch::Contains("token id 50") && ethos_catch::Contains("vocab"));
}

CATCH_TEST_CASE("a bfloat16 model runs and stays close to its float32 self") {
  Llama model = random_model(small_config(), 5);
  torch::NoGradGuard no_grad;
  const auto tokens = torch::randint(0, 50, {2, 10}, torch::kInt64);
  const auto ref = model->forward(tokens);
  model->to(torch::kBFloat16);
  const auto low = model->forward(tokens);
  CATCH_CHECK(low.scalar_type() == torch::kFloat32);
  const double scale = ref.abs().max().item<double>();
  CATCH_INFO("max |logit| " << scale << ", max bf16 error " << max_abs_diff(low, ref));
  CATCH_CHECK(max_abs_diff(low, ref) <= 0.05 * scale);  // bf16 keeps ~3 significant digits
  CATCH_CHECK(max_abs_diff(low, ref) > 0);
}
