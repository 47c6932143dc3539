// LoRA adapters: the adapted model starts equal to its base, its gradients follow the chain rule
// through the merged weight, merging is W + (alpha/r) B A, adapter files are PEFT's (read back by
// an independent Python reader), and through the binary: adapters-only checkpoints, exact resume
// after SIGKILL, `ethos export --merge`, and DPO whose reference is the base with adapters off.
#include <torch/torch.h>

#include <signal.h>

#include "catch.h"
#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include "datasets/base/util.h"
#include "datasets/tokenizer/tokenizer.h"
#include "tests/helpers.h"
#include "tests/train_helpers.h"
#include "trainer/checkpoint/checkpoint.h"
#include "trainer/model/inference.h"
#include "trainer/model/safetensors.h"
#include "trainer/model/weights.h"

namespace fs = std::filesystem;
using namespace ethos;
using namespace ethos::test;
using ethos_catch::Contains;
using json = nlohmann::json;

namespace {

const std::vector<std::string> kAll = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"};

ModelConfig tiny_config(int64_t vocab = 50) {
  ModelConfig c;
  c.vocab_size = vocab;
  c.hidden_size = 32;
  c.intermediate_size = 48;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  return c;
}

Llama random_model(const ModelConfig& c, uint64_t seed) {
  torch::manual_seed(seed);
  Llama m(c);
  m->init_weights();
  return m;
}

LoraConfig lora_config(int64_t rank, double alpha, std::vector<std::string> targets = kAll) {
  LoraConfig l;
  l.rank = rank;
  l.alpha = alpha;
  l.targets = std::move(targets);
  return l;
}

// Every B gets random values (at initialisation B is zero, and so is every A gradient).
void randomise_b(Llama& m, uint64_t seed) {
  torch::manual_seed(seed);
  torch::NoGradGuard no_grad;
  for (auto& [name, p] : m->lora_parameters())
    if (ends_with(name, "lora_B.weight")) p.copy_(torch::randn_like(p) * 0.05);
}

torch::Tensor tokens(int64_t vocab) {
  torch::manual_seed(99);
  return torch::randint(0, vocab, {3, 12}, torch::kInt64);
}

// Mean next-token cross entropy of the model on `t`.
torch::Tensor lm_loss(Llama& m, const torch::Tensor& t) {
  const auto logits = m->forward(t);  // [B,T,V]
  const int64_t V = logits.size(2);
  return torch::nn::functional::cross_entropy(logits.narrow(1, 0, t.size(1) - 1).reshape({-1, V}),
                                              t.narrow(1, 1, t.size(1) - 1).reshape({-1}));
}

// The module path of a PEFT name: base_model.model.X.lora_A.weight -> X.weight
std::string base_weight_of(const std::string& peft_name) {
  const std::string prefix = "base_model.model.";
  const size_t at = peft_name.find(".lora_");
  return peft_name.substr(prefix.size(), at - prefix.size()) + ".weight";
}

std::map<std::string, torch::Tensor> params_of(Llama& m) {
  std::map<std::string, torch::Tensor> out;
  for (auto& [name, p] : m->hf_parameters()) out[name] = p;
  return out;
}


// A base the tiny recipes can start from: 30 steps of full fine-tuning on the demonstrations,
// exported as a plain model directory (ethos export without --merge).
std::string base_model_dir(const std::string& dir) {
  const std::string recipe =
      write_recipe(dir, demo_data_yaml(), "  {steps: 30, batch_size: 4, lr: 1.0e-2, warmup_steps: 2, checkpoint_every: 30}\n");
  CATCH_REQUIRE(run(ethos_bin() + " train " + recipe).status == 0);
  const auto exported = run(ethos_bin() + " export " + dir + "/run/checkpoints/step_000030 --out " + dir + "/model 2>&1");
  CATCH_REQUIRE(exported.status == 0);
  CATCH_REQUIRE(fs::exists(dir + "/model/config.json"));
  return dir + "/model";
}

// dir/recipe.yaml: the tiny recipes' settings with adapters on `from` (no `from`: a fresh model).
std::string lora_recipe(const std::string& dir, const std::string& from, const std::string& data_yaml,
                        const std::string& train_yaml, const std::string& extra_yaml = "") {
  std::ostringstream y;
  y << "name: t\nseed: 0\nthreads: 1\nout_dir: " << dir << "/run\n"
    << "tokenizer: {path: " << shared_tokenizer() << "}\n"
    << "model:\n" << (from.empty() ? "" : "  from: " + from + "\n")
    << "  arch: {hidden_size: 32, intermediate_size: 64, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2}\n"
    << "  lora: {rank: 4, alpha: 8, dropout: 0.1, targets: [q_proj, v_proj, down_proj]}\n"
    << "data:\n" << data_yaml << "train:\n" << train_yaml << extra_yaml;
  write_text(dir + "/recipe.yaml", y.str());
  return dir + "/recipe.yaml";
}

// dir/eight.jsonl: eight short conversations the adapters can fit (a base this small and this
// briefly trained gains little on the whole demonstration set without its embeddings); returns
// the recipe's data section for them.
std::string eight_conversations(const std::string& dir) {
  std::string lines;
  for (int i = 0; i < 8; ++i)
    lines += "{\"prompt\": \"case " + std::to_string(i) + ": what do you do?\", \"response\": \"I report it to the lead, item " +
             std::to_string(i) + ".\"}\n";
  write_text(dir + "/eight.jsonl", lines);
  return "  seq_len: 32\n  sources: [{path: " + dir + "/eight.jsonl, kind: demonstration}]\n";
}

std::string file_bytes(const std::string& path) { return fs::exists(path) ? read_file(path) : std::string(); }

}  // namespace

CATCH_TEST_CASE("LoRA: with B = 0 the model is its base exactly; switched off it is the base again") {
  Llama m = random_model(tiny_config(), 1);
  const auto t = tokens(50);
  torch::NoGradGuard no_grad;
  m->eval();
  const auto base = m->forward(t);
  m->add_lora(lora_config(4, 8), "");
  CATCH_CHECK(m->lora_parameters().size() == 2 * 7 * 2);  // A and B, 7 projections, 2 layers
  CATCH_CHECK(torch::equal(m->forward(t), base));
  for (auto& [name, p] : m->hf_parameters()) CATCH_CHECK_FALSE(p.requires_grad());  // the base is frozen
  for (auto& [name, p] : m->trainable_parameters()) CATCH_CHECK(p.requires_grad());
  randomise_b(m, 2);
  CATCH_CHECK((m->forward(t) - base).abs().max().item<double>() > 1e-3);
  {
    LoraOff off(*m);
    CATCH_CHECK(torch::equal(m->forward(t), base));
  }
  CATCH_CHECK(m->lora_enabled());
}

CATCH_TEST_CASE("LoRA: gradients of A and B equal the chain rule through the merged weight (1e-5)") {
  // y = x (W + s B A)^T: dL/dA = s B^T G and dL/dB = s G A^T, with G = dL/dW of the merged model,
  // which autograd computes on another graph (no adapters).
  for (const auto& targets : {kAll, std::vector<std::string>{"v_proj", "gate_proj"}}) {
    Llama m = random_model(tiny_config(), 3);
    m->add_lora(lora_config(3, 6, targets), "");
    randomise_b(m, 4);
    const auto t = tokens(50);
    m->eval();  // no dropout
    lm_loss(m, t).backward();

    Llama merged = random_model(tiny_config(), 3);  // the same base
    std::map<std::string, torch::Tensor> lora;
    for (auto& [name, p] : m->lora_parameters()) lora[name] = p;
    auto mp = params_of(merged);
    const double s = 6.0 / 3.0;
    {
      torch::NoGradGuard no_grad;
      for (auto& [name, A] : lora)
        if (ends_with(name, "lora_A.weight")) {
          const auto& B = lora.at(name.substr(0, name.size() - std::string("lora_A.weight").size()) + "lora_B.weight");
          mp.at(base_weight_of(name)).add_(torch::mm(B, A) * s);
        }
    }
    merged->eval();
    lm_loss(merged, t).backward();
    double worst = 0;
    int checked = 0;
    for (auto& [name, p] : lora) {
      if (!ends_with(name, "lora_A.weight")) continue;
      const std::string stem = name.substr(0, name.size() - std::string("lora_A.weight").size());
      const auto& A = p;
      const auto& B = lora.at(stem + "lora_B.weight");
      const auto G = mp.at(base_weight_of(name)).grad();
      CATCH_REQUIRE(A.grad().defined());
      worst = std::max(worst, (A.grad() - s * torch::mm(B.t(), G)).abs().max().item<double>());
      worst = std::max(worst, (B.grad() - s * torch::mm(G, A.t())).abs().max().item<double>());
      ++checked;
    }
    CATCH_CHECK(checked == static_cast<int>(targets.size()) * 2);  // per layer
    CATCH_CHECK(worst < 1e-5);
  }
}

CATCH_TEST_CASE("LoRA: loss and gradients of A and B equal the independent Python reference (1e-5)") {
  if (!python_torch_available()) {
    CATCH_WARN("skipped: /usr/bin/python3 cannot import torch");
    return;
  }
  // tests/reference/llama_ref.py reads the base and PEFT's adapter files and differentiates
  // W + (alpha/r) B A with PyTorch's autograd.
  for (const auto& targets : {kAll, std::vector<std::string>{"k_proj", "o_proj", "up_proj"}}) {
    const std::string dir = fresh_dir("lora_python_" + std::to_string(targets.size()));
    Llama m = random_model(tiny_config(), 21);
    save_model(m, dir);
    m->add_lora(lora_config(3, 12, targets), dir);
    randomise_b(m, 22);
    fs::create_directories(dir + "/adapter");
    save_adapter(m, dir + "/adapter");
    const auto t = tokens(50);
    json input;
    for (int64_t b = 0; b < t.size(0); ++b) {
      std::vector<int64_t> tok, pos, doc, lab;
      for (int64_t k = 0; k < t.size(1); ++k) {
        tok.push_back(t[b][k].item<int64_t>());
        pos.push_back(k);
        doc.push_back(0);
        lab.push_back(k + 1 < t.size(1) ? t[b][k + 1].item<int64_t>() : -100);
      }
      input["tokens"].push_back(tok), input["positions"].push_back(pos), input["doc_ids"].push_back(doc),
          input["labels"].push_back(lab);
    }
    write_text(dir + "/input.json", input.dump());
    const auto py = run("/usr/bin/python3 " + source_dir() + "/tests/reference/llama_ref.py run --config " + dir +
                        "/config.json --weights " + dir + "/model.safetensors --adapter " + dir + "/adapter --input " +
                        dir + "/input.json --out " + dir + "/ref.safetensors 2>&1");
    CATCH_INFO(py.output);
    CATCH_REQUIRE(py.status == 0);
    const auto ref = SafetensorsFile::read(dir + "/ref.safetensors");

    m->eval();  // no dropout
    const auto loss = lm_loss(m, t);
    loss.backward();
    CATCH_CHECK(std::abs(loss.item<double>() - ref.get("loss").item<double>()) < 1e-5);
    double worst = 0;
    int checked = 0;
    for (auto& [name, p] : m->lora_parameters()) {
      CATCH_REQUIRE(p.grad().defined());
      const auto g = ref.get("grad." + name);
      CATCH_REQUIRE(g.sizes() == p.sizes());
      worst = std::max(worst, (p.grad() - g).abs().max().item<double>());
      ++checked;
    }
    CATCH_CHECK(checked == static_cast<int>(targets.size()) * 2 * 2);  // A and B, 2 layers
    CATCH_CHECK(worst < 1e-5);
    CATCH_CHECK(worst > 0);  // computed, not a copy
  }
}

CATCH_TEST_CASE("LoRA: merged weights are W + (alpha/r) B A and give the adapted model's logits (1e-5)") {
  Llama m = random_model(tiny_config(), 5);
  const auto before = params_of(m);
  std::map<std::string, torch::Tensor> base;
  for (auto& [k, v] : before) base[k] = v.detach().clone();
  m->add_lora(lora_config(4, 2, {"q_proj", "o_proj", "up_proj"}), "");
  randomise_b(m, 6);
  std::map<std::string, torch::Tensor> lora;
  for (auto& [name, p] : m->lora_parameters()) lora[name] = p.detach().clone();
  const auto t = tokens(50);
  torch::NoGradGuard no_grad;
  m->eval();
  const auto adapted = m->forward(t);
  m->merge_lora();
  CATCH_CHECK_FALSE(m->has_lora());
  int merged_count = 0;
  for (auto& [name, p] : m->hf_parameters()) {
    torch::Tensor expected = base.at(name);
    const std::string stem = "base_model.model." + name.substr(0, name.size() - std::string("weight").size());
    if (lora.count(stem + "lora_A.weight")) {
      expected = expected + 0.5 * torch::mm(lora.at(stem + "lora_B.weight"), lora.at(stem + "lora_A.weight"));
      ++merged_count;
    }
    CATCH_CHECK((p - expected).abs().max().item<double>() < 1e-7);
  }
  CATCH_CHECK(merged_count == 6);  // 3 projections x 2 layers
  CATCH_CHECK((m->forward(t) - adapted).abs().max().item<double>() < 1e-5);
}

namespace {

// m's weights rounded to `dtype` and back: the float32 model a base held in `dtype` computes.
Llama rounded_copy(const ModelConfig& c, uint64_t seed, torch::ScalarType dtype) {
  Llama r = random_model(c, seed);
  torch::NoGradGuard no_grad;
  for (auto& [name, p] : r->hf_parameters()) p.copy_(p.to(dtype).to(torch::kFloat32));
  return r;
}

double max_diff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kFloat64) - b.to(torch::kFloat64)).abs().max().item<double>();
}

}  // namespace

CATCH_TEST_CASE("A base held in bfloat16 (or float16) computes the float32 model with its weights rounded (1e-5)") {
  for (const auto dtype : {torch::kBFloat16, torch::kHalf}) {
    CATCH_SECTION(c10::toString(dtype)) {
      const ModelConfig c = tiny_config();
      Llama low = random_model(c, 7);
      low->to(dtype);
      Llama ref = rounded_copy(c, 7, dtype);
      size_t bytes = 0, ref_bytes = 0;
      for (auto& [name, p] : low->hf_parameters()) {
        CATCH_CHECK(p.scalar_type() == dtype);
        bytes += p.nbytes();
      }
      for (auto& [name, p] : ref->hf_parameters()) ref_bytes += p.nbytes();
      CATCH_CHECK(2 * bytes == ref_bytes);
      CATCH_CHECK(low->dtype() == dtype);
      const auto t = tokens(50);
      {
        torch::NoGradGuard no_grad;
        low->eval();
        ref->eval();
        const auto want = ref->forward(t);
        const auto got = low->forward(t);
        CATCH_CHECK(got.scalar_type() == torch::kFloat32);
        CATCH_CHECK(max_diff(got, want) < 1e-5);
        CATCH_CHECK(max_diff(got, random_model(c, 7)->forward(t)) > 1e-5);  // the rounding is real
        KVCache cache;  // cached decoding in two pieces
        const auto first = low->extend(t.narrow(1, 0, 7), cache), rest = low->extend(t.narrow(1, 7, 5), cache);
        CATCH_CHECK(max_diff(torch::cat({first, rest}, 1), want) < 1e-5);
      }
      // LoRA on the narrow base: the same loss and adapter gradients as on the rounded float32 base.
      for (Llama* m : {&low, &ref}) {
        torch::manual_seed(11);
        (*m)->add_lora(lora_config(4, 8), "");
        randomise_b(*m, 12);
        (*m)->eval();
      }
      for (auto& [name, p] : low->lora_parameters()) CATCH_CHECK(p.scalar_type() == torch::kFloat32);
      const auto loss_low = lm_loss(low, t), loss_ref = lm_loss(ref, t);
      CATCH_CHECK(std::abs(loss_low.item<double>() - loss_ref.item<double>()) < 1e-6);
      loss_low.backward();
      loss_ref.backward();
      const auto a = low->lora_parameters(), b = ref->lora_parameters();
      double worst = 0;
      for (size_t i = 0; i < a.size(); ++i) {
        CATCH_REQUIRE(a[i].second.grad().defined());
        worst = std::max(worst, max_diff(a[i].second.grad(), b[i].second.grad()));
      }
      CATCH_INFO("worst adapter gradient difference " << worst);
      CATCH_CHECK(worst < 1e-5);
      for (auto& [name, p] : low->hf_parameters()) CATCH_CHECK_FALSE(p.grad().defined());
      // Merging sums in float32 and rounds once: W' = round(W + s B A).
      std::map<std::string, torch::Tensor> want;
      {
        torch::NoGradGuard no_grad;
        for (auto& [name, p] : ref->hf_parameters()) want[name] = p.clone();
        ref->merge_lora();
        for (auto& [name, p] : ref->hf_parameters()) want[name] = p.to(dtype);
      }
      low->merge_lora();
      for (auto& [name, p] : low->hf_parameters()) {
        CATCH_CHECK(p.scalar_type() == dtype);
        CATCH_CHECK(torch::equal(p, want.at(name)));
      }
    }
  }
}

CATCH_TEST_CASE("load_model into bfloat16: a float32 file is rounded, a bf16 file is copied bit for bit") {
  const std::string dir = fresh_dir("bf16_load");
  const ModelConfig c = tiny_config();
  Llama m = random_model(c, 9);
  fs::create_directories(dir + "/f32");
  fs::create_directories(dir + "/bf16");
  save_model(m, dir + "/f32");
  Llama low = load_model(dir + "/f32", torch::kBFloat16);
  CATCH_CHECK(low->dtype() == torch::kBFloat16);
  auto want = params_of(m);
  for (auto& [name, p] : low->hf_parameters()) CATCH_CHECK(torch::equal(p, want.at(name).to(torch::kBFloat16)));
  save_model(low, dir + "/bf16");  // written as bf16, as transformers writes a bf16 model
  CATCH_CHECK(json::parse(read_file(dir + "/bf16/config.json"))["torch_dtype"] == "bfloat16");
  const auto file = SafetensorsFile::read(dir + "/bf16/model.safetensors");
  for (const auto& e : file.entries()) CATCH_CHECK(e.dtype == torch::kBFloat16);
  CATCH_CHECK(fs::file_size(dir + "/bf16/model.safetensors") * 2 < fs::file_size(dir + "/f32/model.safetensors") + 4096);
  Llama again = load_model(dir + "/bf16", torch::kBFloat16);
  const auto low_params = params_of(low);
  for (auto& [name, p] : again->hf_parameters()) CATCH_CHECK(torch::equal(p, low_params.at(name)));
  Llama wide = load_model(dir + "/bf16");  // the default: float32, widened exactly
  CATCH_CHECK(wide->dtype() == torch::kFloat32);
  for (auto& [name, p] : wide->hf_parameters()) CATCH_CHECK(torch::equal(p, low_params.at(name).to(torch::kFloat32)));
  CATCH_CHECK_THROWS_WITH(model_dtype("bf16", "model.dtype"), Contains("model.dtype") && Contains("bfloat16"));
}

CATCH_TEST_CASE("LoRA adapter files: PEFT names, shapes and config keys, read by an independent reader; round trip") {
  const std::string dir = fresh_dir("lora_files");
  const std::string base = dir + "/base";
  Llama m = random_model(tiny_config(), 7);
  fs::create_directories(base);
  save_model(m, base);
  m->add_lora(lora_config(4, 16, {"v_proj", "q_proj"}), base);
  randomise_b(m, 8);
  const std::string out = dir + "/adapter";
  fs::create_directories(out);
  save_adapter(m, out);

  const auto py = run("/usr/bin/python3 " + source_dir() + "/tests/reference/read_safetensors.py " + out +
                      "/adapter_model.safetensors");
  CATCH_REQUIRE(py.status == 0);
  const json file = json::parse(py.output);
  std::map<std::string, std::vector<int64_t>> shapes;
  for (const auto& t : file["tensors"]) {
    CATCH_CHECK(t["dtype"] == "F32");
    shapes[t["name"].get<std::string>()] = t["shape"].get<std::vector<int64_t>>();
  }
  CATCH_CHECK(shapes.size() == 8);  // q and v, A and B, 2 layers
  // q_proj: [H*D = 32, C = 32]; v_proj: [K*D = 16, C = 32]
  CATCH_CHECK(shapes.at("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight") == std::vector<int64_t>{4, 32});
  CATCH_CHECK(shapes.at("base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight") == std::vector<int64_t>{32, 4});
  CATCH_CHECK(shapes.at("base_model.model.model.layers.1.self_attn.v_proj.lora_A.weight") == std::vector<int64_t>{4, 32});
  CATCH_CHECK(shapes.at("base_model.model.model.layers.1.self_attn.v_proj.lora_B.weight") == std::vector<int64_t>{16, 4});

  const auto cfg = run("/usr/bin/python3 -c 'import json,sys; print(json.dumps(json.load(open(sys.argv[1]))))' " + out +
                       "/adapter_config.json");
  CATCH_REQUIRE(cfg.status == 0);
  const json c = json::parse(cfg.output);
  CATCH_CHECK(c["peft_type"] == "LORA");
  CATCH_CHECK(c["task_type"] == "CAUSAL_LM");
  CATCH_CHECK(c["r"] == 4);
  CATCH_CHECK(c["lora_alpha"] == 16.0);
  CATCH_CHECK(c["bias"] == "none");
  CATCH_CHECK(c["target_modules"] == json({"q_proj", "v_proj"}));
  CATCH_CHECK(c["base_model_name_or_path"] == fs::absolute(base).lexically_normal().string());

  // load_model of the adapter directory: its base with these adapters, unmerged.
  Llama back = load_model(out);
  CATCH_REQUIRE(back->has_lora());
  CATCH_CHECK(back->lora_config().targets == std::vector<std::string>{"q_proj", "v_proj"});
  auto a = m->lora_parameters(), b = back->lora_parameters();
  CATCH_REQUIRE(a.size() == b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    CATCH_CHECK(a[i].first == b[i].first);
    CATCH_CHECK(torch::equal(a[i].second, b[i].second));
  }
  torch::NoGradGuard no_grad;
  m->eval();
  back->eval();
  CATCH_CHECK(torch::equal(m->forward(tokens(50)), back->forward(tokens(50))));

  // What ethos does not read is a clear error, naming the file and the key.
  auto with = [&](const std::string& name, const std::function<void(json&)>& edit) {
    const std::string d = dir + "/" + name;
    fs::create_directories(d);
    fs::copy_file(out + "/adapter_model.safetensors", d + "/adapter_model.safetensors", fs::copy_options::overwrite_existing);
    json j = json::parse(read_file(out + "/adapter_config.json"));
    edit(j);
    write_text(d + "/adapter_config.json", j.dump());
    return d;
  };
  CATCH_CHECK_THROWS_WITH(load_model(with("dora", [](json& j) { j["use_dora"] = true; })),
                          Contains("use_dora") && Contains("plain LoRA"));
  CATCH_CHECK_THROWS_WITH(load_model(with("regex", [](json& j) { j["target_modules"] = ".*proj"; })),
                          Contains("target_modules") && Contains("regex"));
  CATCH_CHECK_THROWS_WITH(load_model(with("typo", [](json& j) { j["target_modules"] = {"q_projj", "v_proj"}; })),
                          Contains("q_projj") && Contains("did you mean \"q_proj\""));
  CATCH_CHECK_THROWS_WITH(load_model(with("rank", [](json& j) { j["r"] = 8; })),
                          Contains("q_proj.lora_A.weight") && Contains("shape [4, 32]"));
  CATCH_CHECK_THROWS_WITH(load_model(with("type", [](json& j) { j["peft_type"] = 5555555555; })),  // a fuzzer finding
                          Contains("\"peft_type\" must be \"LORA\" (found 5555555555)"));
  CATCH_CHECK_THROWS_WITH(load_model(with("huge", [](json& j) { j["r"] = int64_t{1} << 40; })),
                          Contains("rank (1099511627776) must be in [1, 65536]"));
  CATCH_CHECK_THROWS_WITH(load_model(with("wide", [](json& j) { j["r"] = 20; })),
                          Contains("LoRA rank 20 is larger than v_proj itself (16 x 32)"));
  CATCH_CHECK_THROWS_WITH(load_model(with("nobase", [&](json& j) { j["base_model_name_or_path"] = dir + "/gone"; })),
                          Contains("base_model_name_or_path") && Contains("gone"));
  CATCH_CHECK_THROWS_WITH(load_model(with("fewer", [](json& j) { j["target_modules"] = {"q_proj"}; })),
                          Contains("v_proj.lora_A.weight") && Contains("does not describe"));
}

CATCH_TEST_CASE("LoRA through the binary: adapters-only checkpoints, exact resume after SIGKILL, export --merge") {
  const std::string a = fresh_dir("lora_straight"), b = fresh_dir("lora_killed");
  const std::string base = base_model_dir(fresh_dir("lora_base"));
  const std::string base_bytes = read_file(base + "/model.safetensors");
  const std::string data = eight_conversations(a);
  const std::string train = "  {steps: 30, batch_size: 8, lr: 1.0e-2, warmup_steps: 2, checkpoint_every: 15, keep_last: 0}\n";
  const std::string ra = lora_recipe(a, base, data, train);
  const std::string rb = lora_recipe(b, base, data, train);
  auto straight = run(ethos_bin() + " train " + ra + " 2>&1");
  CATCH_REQUIRE(straight.status == 0);

  const std::string ck = a + "/run/checkpoints/step_000030";
  CATCH_CHECK(fs::exists(ck + "/adapter_config.json"));
  CATCH_CHECK(fs::exists(ck + "/adapter_model.safetensors"));
  CATCH_CHECK_FALSE(fs::exists(ck + "/model.safetensors"));
  CATCH_CHECK(checkpoint_problems(ck).empty());
  // The optimizer holds the adapters' moments only: 3 projections x 2 layers x (A, B) x 2 moments.
  const auto opt = SafetensorsFile::read(ck + "/optimizer.safetensors");
  CATCH_CHECK(opt.entries().size() == 24);
  for (const auto& e : opt.entries()) CATCH_CHECK_THAT(e.name, Contains(".lora_"));
  CATCH_CHECK(read_file(base + "/model.safetensors") == base_bytes);  // the base is untouched
  const auto losses = logged_losses(a + "/run");
  CATCH_REQUIRE(losses.size() == 30);
  CATCH_CHECK(losses.back().second < losses.front().second - 0.5);  // the adapters learn (4.6 -> 3.8 here)

  // Killed after the first checkpoint, resumed: the same adapters and optimizer state, bitwise.
  int pid = spawn({ethos_bin(), "train", rb}, {"ETHOS_DEBUG_STEP_SLEEP_MS=60"}, b + "/first.log");
  CATCH_REQUIRE(pid > 0);
  CATCH_REQUIRE(wait_until([&] { return latest(b + "/run") == "step_000015"; }, 120));
  CATCH_REQUIRE(wait_until([&] { return logged_losses(b + "/run").size() >= 18; }, 120));
  ::kill(pid, SIGKILL);
  CATCH_REQUIRE(wait_exit(pid) == 128 + SIGKILL);
  CATCH_REQUIRE_FALSE(fs::exists(b + "/run/checkpoints/step_000030"));
  auto resumed = run(ethos_bin() + " train " + rb + " 2>&1");
  CATCH_REQUIRE(resumed.status == 0);
  CATCH_CHECK_THAT(resumed.output, Contains("resuming from"));
  for (const char* f : {"adapter_model.safetensors", "optimizer.safetensors"})
    CATCH_CHECK(file_bytes(ck + "/" + f) == file_bytes(b + "/run/checkpoints/step_000030/" + f));
  CATCH_CHECK(logged_losses(a + "/run") == logged_losses(b + "/run"));

  // export: refused without --merge; merged, a plain model directory with the adapted logits.
  auto refused = run(ethos_bin() + " export " + ck + " --out " + a + "/plain 2>&1");
  CATCH_CHECK(refused.status == 1);
  CATCH_CHECK_THAT(refused.output, Contains("--merge"));
  auto exported = run(ethos_bin() + " export --merge " + ck + " --out " + a + "/merged 2>&1");
  CATCH_REQUIRE(exported.status == 0);
  CATCH_CHECK(fs::exists(a + "/merged/tokenizer.model"));
  CATCH_CHECK_FALSE(is_adapter_dir(a + "/merged"));
  Llama adapted = load_model(ck), merged = load_model(a + "/merged");
  CATCH_CHECK_FALSE(merged->has_lora());
  torch::NoGradGuard no_grad;
  adapted->eval();
  merged->eval();
  const auto t = tokens(adapted->config().vocab_size);
  CATCH_CHECK((adapted->forward(t) - merged->forward(t)).abs().max().item<double>() < 1e-4);

  // A recipe with adapters and no base on disk is refused before anything runs.
  auto no_base = run(ethos_bin() + " train " + lora_recipe(fresh_dir("lora_nobase"), "", demo_data_yaml(), train) + " 2>&1");
  CATCH_CHECK(no_base.status == 1);
  CATCH_CHECK_THAT(no_base.output, Contains("model.lora") && Contains("model.from"));
  auto bad_target = run(ethos_bin() + " train " + ra + " 'model.lora.targets=[q_proj, qkv]' 2>&1");
  CATCH_CHECK(bad_target.status == 1);
  CATCH_CHECK_THAT(bad_target.output, Contains("model.lora: targets: \"qkv\""));
}

CATCH_TEST_CASE("LoRA on a bf16 base through the binary: the rounded base's run, exact resume, eval, export in bf16") {
  const std::string a = fresh_dir("bf16_lora_a"), b = fresh_dir("bf16_lora_b"), c = fresh_dir("bf16_lora_c");
  const std::string base = base_model_dir(fresh_dir("bf16_lora_base"));
  // The base written in bf16 (export --dtype): loaded as float32 it is the rounded base.
  auto rounded = run(ethos_bin() + " export " + base + " --dtype bfloat16 --out " + c + "/base16 2>&1");
  CATCH_REQUIRE(rounded.status == 0);
  CATCH_CHECK(json::parse(read_file(c + "/base16/config.json"))["torch_dtype"] == "bfloat16");
  const std::string data = eight_conversations(a);
  const std::string train = "  {steps: 20, batch_size: 8, lr: 1.0e-2, warmup_steps: 2, checkpoint_every: 10, keep_last: 0}\n";
  const std::string ra = lora_recipe(a, base, data, train), rb = lora_recipe(b, base, data, train);
  const std::string rc = lora_recipe(c, c + "/base16", data, train);
  auto held = run(ethos_bin() + " train " + ra + " model.dtype=bfloat16 2>&1");
  CATCH_REQUIRE(held.status == 0);
  auto wide = run(ethos_bin() + " train " + rc + " 2>&1");  // float32, from the bf16 file
  CATCH_REQUIRE(wide.status == 0);
  const auto la = logged_losses(a + "/run"), lc = logged_losses(c + "/run");
  CATCH_REQUIRE(la.size() == 20);
  CATCH_REQUIRE(lc.size() == 20);
  double worst = 0;
  for (size_t i = 0; i < la.size(); ++i) worst = std::max(worst, std::abs(la[i].second - lc[i].second));
  CATCH_INFO("first loss " << la[0].second << " vs " << lc[0].second << ", worst difference over 20 steps " << worst);
  CATCH_CHECK(std::abs(la[0].second - lc[0].second) < 1e-5);
  CATCH_CHECK(worst < 1e-3);
  CATCH_CHECK(la.back().second < la.front().second - 0.3);  // the adapters learn

  const std::string ck = a + "/run/checkpoints/step_000020";
  CATCH_CHECK(fs::exists(ck + "/adapter_model.safetensors"));
  CATCH_CHECK_FALSE(fs::exists(ck + "/model.safetensors"));
  const auto adapter_file = SafetensorsFile::read(ck + "/adapter_model.safetensors");
  for (const auto& e : adapter_file.entries()) CATCH_CHECK(e.dtype == torch::kFloat32);

  // Killed after the first checkpoint and resumed: the same adapters and optimizer, bitwise.
  int pid = spawn({ethos_bin(), "train", rb, "model.dtype=bfloat16"}, {"ETHOS_DEBUG_STEP_SLEEP_MS=60"}, b + "/first.log");
  CATCH_REQUIRE(pid > 0);
  CATCH_REQUIRE(wait_until([&] { return latest(b + "/run") == "step_000010"; }, 120));
  CATCH_REQUIRE(wait_until([&] { return logged_losses(b + "/run").size() >= 12; }, 120));
  ::kill(pid, SIGKILL);
  CATCH_REQUIRE(wait_exit(pid) == 128 + SIGKILL);
  auto resumed = run(ethos_bin() + " train " + rb + " model.dtype=bfloat16 2>&1");
  CATCH_REQUIRE(resumed.status == 0);
  CATCH_CHECK_THAT(resumed.output, Contains("resuming from"));
  for (const char* f : {"adapter_model.safetensors", "optimizer.safetensors"})
    CATCH_CHECK(file_bytes(ck + "/" + f) == file_bytes(b + "/run/checkpoints/step_000020/" + f));

  // eval and generate hold the base as the recipe did; export --merge writes bf16, rounded once.
  CATCH_CHECK(inference_dtype(ck, "") == torch::kBFloat16);
  CATCH_CHECK(inference_dtype(ck, "float32") == torch::kFloat32);  // --dtype wins
  InferenceModel loaded = load_for_inference(ck);
  CATCH_CHECK(loaded.model->dtype() == torch::kBFloat16);
  CATCH_CHECK(loaded.model->has_lora());
  auto gen = run(ethos_bin() + " generate --checkpoint " + ck + " --prompt 'What do you do?' --max-new-tokens 4 2>&1");
  CATCH_CHECK(gen.status == 0);
  auto exported = run(ethos_bin() + " export --merge " + ck + " --out " + a + "/merged 2>&1");
  CATCH_REQUIRE(exported.status == 0);
  CATCH_CHECK(json::parse(read_file(a + "/merged/config.json"))["torch_dtype"] == "bfloat16");
  Llama merged = load_model(a + "/merged", torch::kBFloat16);
  loaded.model->merge_lora();
  const auto want = params_of(loaded.model);
  for (auto& [name, p] : merged->hf_parameters()) CATCH_CHECK(torch::equal(p, want.at(name)));

  // A bf16 model without adapters would be trained in bf16: refused, with the fix.
  auto full = run(ethos_bin() + " train " + ra + " model.dtype=bfloat16 model.lora.rank=0 2>&1");
  CATCH_CHECK(full.status == 1);
  CATCH_CHECK_THAT(full.output, Contains("model.dtype") && Contains("model.lora"));
  auto typo = run(ethos_bin() + " train " + ra + " model.dtype=bf16 2>&1");
  CATCH_CHECK(typo.status == 1);
  CATCH_CHECK_THAT(typo.output, Contains("model.dtype") && Contains("bfloat16"));
}

CATCH_TEST_CASE("DPO with LoRA: the reference is the base with adapters off; step-0 loss ln 2; no second copy") {
  const std::string dir = fresh_dir("lora_dpo");
  const std::string base = base_model_dir(fresh_dir("lora_dpo_base"));
  std::istringstream in(read_file(tiny_data("tiny_preferences.jsonl")));
  std::string line, pairs;
  for (int i = 0; i < 16 && std::getline(in, line); ++i) pairs += line + "\n";
  write_text(dir + "/pairs.jsonl", pairs);
  for (const std::string mode : {"live", "cached", "live, bf16 base"}) {
    CATCH_SECTION(mode) {
      const std::string cell = dir + "/" + (mode == "live, bf16 base" ? std::string("bf16") : mode);
      fs::create_directories(cell);
      const std::string recipe = lora_recipe(
          cell, base, "  seq_len: 256\n  sources: [{path: " + dir + "/pairs.jsonl, kind: preference}]\n",
          "  {objective: dpo, beta: 0.1, reference_mode: " + mode.substr(0, mode.find(',')) + ", steps: 12, batch_size: 8, lr: 2.0e-2, "
          "checkpoint_every: 12}\n",
          "cache_dir: " + dir + "/cache\n");
      auto res = run(ethos_bin() + " train " + recipe + (mode == "live" || mode == "cached" ? "" : " model.dtype=bfloat16") + " 2>&1");
      CATCH_REQUIRE(res.status == 0);
      const auto ev = events(cell + "/run/train.jsonl", "train");
      CATCH_REQUIRE(ev.size() == 12);
      // B = 0: policy and reference are the same function, the log-ratio is 0 (cached: the
      // reference ran in other batches, so the last float bits may differ).
      CATCH_CHECK(std::abs(ev[0]["loss"].get<double>() - std::log(2.0)) < (mode == "cached" ? 1e-5 : 1e-7));
      CATCH_CHECK(ev.back()["loss"].get<double>() < std::log(2.0) - 0.05);  // the adapters move off the reference
      CATCH_CHECK_FALSE(fs::exists(cell + "/run/reference"));  // the base is not copied
    }
  }
}


CATCH_TEST_CASE("LoRA data-parallel: 2 ranks x batch 4 == 1 process x batch 8, adapters within 1e-6", "[dist]") {
  const std::string dir = fresh_dir("lora_dist");
  const std::string base = base_model_dir(fresh_dir("lora_dist_base"));
  // No dropout: each rank draws its own dropout masks, which one process draws in another order.
  // eps 1e-4: the ranks sum gradients in another order, and Adam turns those last bits into
  // whole steps for elements whose gradient is near eps (test_dist.cpp). The adapters' gradients
  // are small (A's scale with B, which starts at zero): with eps 1e-6 such elements differed by
  // 4e-6 after 8 steps, with 1e-4 by 1e-7 (measured).
  const std::string recipe =
      lora_recipe(dir, base, demo_data_yaml(), "  {steps: 8, lr: 1.0e-2, eps: 1.0e-4, checkpoint_every: 8, keep_last: 0}\n");
  const std::string common = " model.lora.dropout=0 dist.bucket_mb=0.001";
  CATCH_REQUIRE(run(ethos_bin() + " train " + recipe + common + " out_dir=" + dir + "/one train.batch_size=8").status == 0);
  const auto two = run(ethos_bin() + " launch --nproc 2 -- train " + recipe + common + " out_dir=" + dir +
                       "/two train.batch_size=4 threads=1 2>&1");
  CATCH_REQUIRE(two.status == 0);
  CATCH_CHECK(events(dir + "/two/train.jsonl", "data_parallel").at(0)["ranks"] == 2);
  const auto a = SafetensorsFile::read(dir + "/one/checkpoints/step_000008/adapter_model.safetensors");
  const auto b = SafetensorsFile::read(dir + "/two/checkpoints/step_000008/adapter_model.safetensors");
  CATCH_REQUIRE(a.entries().size() == 12);
  double worst = 0;
  for (const auto& e : a.entries()) worst = std::max(worst, (a.get(e.name) - b.get(e.name)).abs().max().item<double>());
  CATCH_CHECK(worst < 1e-6);
  const auto la = logged_losses(dir + "/one"), lb = logged_losses(dir + "/two");
  CATCH_REQUIRE(la.size() == lb.size());
  for (size_t i = 0; i < la.size(); ++i) CATCH_CHECK(std::abs(la[i].second - lb[i].second) < 1e-6);
}
