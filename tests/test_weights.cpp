// Model directories: save_model / load_model round trips (single file and sharded), and the
// errors for missing, misshapen or unexpected tensors and for a bad or missing config.json.
#include <torch/torch.h>

#include "catch.h"
#include <algorithm>
#include <filesystem>
#include <set>

#include "datasets/base/util.h"
#include "tests/helpers.h"
#include "trainer/model/weights.h"
#include "trainer/model/safetensors.h"

using namespace ethos;
using json = nlohmann::json;
namespace fs = std::filesystem;
using ethos_catch::Contains;

namespace {

ModelConfig small_config(bool tied = false) {
  ModelConfig c;
  c.vocab_size = 60;
  c.hidden_size = 32;
  c.intermediate_size = 48;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.tie_word_embeddings = tied;
  return c;
}

Llama random_model(const ModelConfig& c, uint64_t seed) {
  torch::manual_seed(seed);
  Llama m(c);
  m->init_weights();
  torch::NoGradGuard no_grad;
  for (auto& [name, p] : m->hf_parameters()) p.add_(torch::randn_like(p) * 0.1);  // norms != 1
  return m;
}

// Number of parameters of `a` that differ bitwise from `b` (same names assumed).
int differing(Llama& a, Llama& b) {
  auto pb = b->named_parameters();
  int n = 0;
  for (auto& [name, p] : a->hf_parameters()) n += torch::equal(p, pb[name]) ? 0 : 1;
  return n;
}

NamedTensors tensors_of(Llama& m) {
  NamedTensors t;
  for (auto& [name, p] : m->hf_parameters()) t.emplace_back(name, p.detach().clone());
  return t;
}

// A model directory holding `m`'s config.json and the given tensors as model.safetensors.
std::string dir_with(Llama& m, const NamedTensors& tensors, const std::string& name) {
  const std::string dir = test::fresh_dir(name);
  save_model(m, dir);
  write_safetensors(dir + "/model.safetensors", tensors);
  return dir;
}

}  // namespace

CATCH_TEST_CASE("save_model then load_model is bitwise identical") {
  for (bool tied : {false, true}) {
    Llama m = random_model(small_config(tied), 1);
    const std::string dir = test::fresh_dir(tied ? "weights_tied" : "weights_untied");
    save_model(m, dir);
    CATCH_CHECK(fs::exists(dir + "/config.json"));
    CATCH_CHECK(!fs::exists(dir + "/model.safetensors.index.json"));
    const auto file = SafetensorsFile::read(dir + "/model.safetensors");
    CATCH_CHECK(file.metadata().at("format") == "pt");
    CATCH_CHECK(file.contains("lm_head.weight") == !tied);
    const json config = json::parse(read_file(dir + "/config.json"));
    CATCH_CHECK(config["torch_dtype"] == "float32");
    CATCH_CHECK(config["tie_word_embeddings"] == tied);

    Llama back = load_model(dir);
    CATCH_CHECK(back->config().to_hf_json() == m->config().to_hf_json());
    CATCH_CHECK(differing(m, back) == 0);
  }
}

CATCH_TEST_CASE("sharded save writes an index in Hugging Face's format and loads") {
  Llama m = random_model(small_config(), 2);
  const std::string dir = test::fresh_dir("weights_sharded");
  test::write_text(dir + "/model.safetensors", "stale");  // replaced by the shards
  size_t total = 0;
  for (auto& [name, p] : m->hf_parameters()) total += p.nbytes();
  save_model(m, dir, /*max_shard_bytes=*/total / 3);

  const json index = json::parse(read_file(dir + "/model.safetensors.index.json"));
  CATCH_CHECK(index["metadata"]["total_size"].get<size_t>() == total);
  std::set<std::string> shards;
  for (const auto& [name, file] : index["weight_map"].items()) shards.insert(file.get<std::string>());
  CATCH_CHECK(shards.size() >= 3);
  CATCH_CHECK(shards.count("model-00001-of-0000" + std::to_string(shards.size()) + ".safetensors") == 1);
  CATCH_CHECK(index["weight_map"].size() == m->hf_parameters().size());
  CATCH_CHECK(!fs::exists(dir + "/model.safetensors"));

  Llama back = load_model(dir);
  CATCH_CHECK(differing(m, back) == 0);
}

CATCH_TEST_CASE("load_weights errors name the tensor, the file and the shapes") {
  Llama m = random_model(small_config(), 3);
  CATCH_SECTION("missing tensor") {
    NamedTensors t = tensors_of(m);
    t.erase(std::remove_if(t.begin(), t.end(), [](const auto& e) { return e.first == "model.norm.weight"; }), t.end());
    const std::string dir = dir_with(m, t, "weights_missing");
    CATCH_REQUIRE_THROWS_WITH(load_model(dir), Contains("model.norm.weight") && Contains("missing"));
  }
  CATCH_SECTION("wrong shape") {
    NamedTensors t = tensors_of(m);
    for (auto& e : t)
      if (e.first == "model.layers.1.mlp.up_proj.weight") e.second = torch::zeros({48, 31});
    const std::string dir = dir_with(m, t, "weights_shape");
    CATCH_REQUIRE_THROWS_WITH(load_model(dir), Contains("model.layers.1.mlp.up_proj.weight") &&
                                                   Contains("model.safetensors") && Contains("[48, 31]") &&
                                                   Contains("[48, 32]"));
  }
  CATCH_SECTION("unexpected tensors are an error; rotary inv_freq buffers are ignored") {
    NamedTensors t = tensors_of(m);
    t.emplace_back("model.layers.0.self_attn.rotary_emb.inv_freq", torch::ones({4}));
    Llama into(small_config());
    load_weights(into, dir_with(m, t, "weights_inv_freq"));
    CATCH_CHECK(differing(m, into) == 0);
    t.emplace_back("model.layers.2.mlp.up_proj.weight", torch::zeros({48, 32}));
    CATCH_REQUIRE_THROWS_WITH(load_model(dir_with(m, t, "weights_extra")),
                              Contains("model.layers.2.mlp.up_proj.weight") && Contains("does not have"));
  }
  CATCH_SECTION("a tied model ignores an lm_head.weight in the file") {
    Llama tied = random_model(small_config(true), 4);
    NamedTensors t = tensors_of(tied);
    t.emplace_back("lm_head.weight", torch::zeros({60, 32}));
    Llama back = load_model(dir_with(tied, t, "weights_tied_head"));
    CATCH_CHECK(differing(tied, back) == 0);
  }
  CATCH_SECTION("no weights at all") {
    const std::string dir = test::fresh_dir("weights_none");
    test::write_text(dir + "/config.json", m->config().to_hf_json().dump());
    CATCH_REQUIRE_THROWS_WITH(load_model(dir), Contains("model.safetensors") && Contains(dir));
  }
}

CATCH_TEST_CASE("config.json problems are errors naming the file and field") {
  const std::string dir = test::fresh_dir("weights_config");
  CATCH_REQUIRE_THROWS_WITH(read_model_config(dir), Contains(dir + "/config.json") && Contains("not found"));
  json j = small_config().to_hf_json();
  j["hidden_size"] = 32.5;
  test::write_text(dir + "/config.json", j.dump());
  CATCH_REQUIRE_THROWS_WITH(read_model_config(dir), Contains("config.json") && Contains("hidden_size") && Contains("integer"));
  test::write_text(dir + "/config.json", "{\"model_type\": ");
  CATCH_REQUIRE_THROWS_WITH(read_model_config(dir), Contains("config.json") && Contains("JSON"));
}

CATCH_TEST_CASE("a bf16 safetensors file loads into a float32 model") {
  Llama m = random_model(small_config(), 5);
  NamedTensors bf16;
  for (auto& [name, p] : m->hf_parameters()) bf16.emplace_back(name, p.detach().to(torch::kBFloat16));
  const std::string dir = dir_with(m, bf16, "weights_bf16");
  Llama back = load_model(dir);
  auto loaded = back->named_parameters();
  int wrong = 0;
  for (const auto& [name, t] : bf16) {
    CATCH_CHECK(loaded[name].scalar_type() == torch::kFloat32);
    wrong += torch::equal(loaded[name], t.to(torch::kFloat32)) ? 0 : 1;
  }
  CATCH_CHECK(wrong == 0);
  CATCH_CHECK(differing(m, back) > 0);  // the bf16 rounding is visible: the file, not `m`, was loaded
}

CATCH_TEST_CASE("a model built for loading skips default initialisation but has every parameter, and draws no random numbers") {
  for (bool tied : {false, true}) {
    ModelConfig c = small_config(tied);
    c.qkv_bias = true;
    Llama fresh(c), bare(c, /*default_init=*/false);
    auto a = fresh->hf_parameters(), b = bare->hf_parameters();
    CATCH_REQUIRE(a.size() == b.size());
    for (size_t k = 0; k < a.size(); ++k) {
      CATCH_CHECK(a[k].first == b[k].first);
      CATCH_CHECK(a[k].second.sizes() == b[k].second.sizes());
      CATCH_CHECK(b[k].second.requires_grad());
    }
    // The random stream is where it would be without the bare model: fresh models stay reproducible.
    torch::manual_seed(5);
    Llama x(c);
    torch::manual_seed(5);
    Llama skipped(c, false);
    Llama y(c);
    CATCH_CHECK(differing(x, y) == 0);
  }
  // load_model builds it that way, and the loaded model computes as the saved one.
  Llama m = random_model(small_config(), 11);
  const std::string dir = test::fresh_dir("weights_bare_load");
  save_model(m, dir);
  Llama loaded = load_model(dir);
  CATCH_CHECK(differing(m, loaded) == 0);
  const auto tokens = torch::randint(0, 60, {2, 7}, torch::kInt64);
  CATCH_CHECK(torch::equal(m->forward(tokens), loaded->forward(tokens)));
}
