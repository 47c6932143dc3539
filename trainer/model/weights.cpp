// Model directories in Hugging Face format. Saving writes config.json and either one
// model.safetensors or shards model-0000k-of-0000n.safetensors plus model.safetensors.index.json
// ({"metadata": {"total_size": bytes}, "weight_map": {tensor: file}}), as save_pretrained does.
// Loading checks every tensor's presence and shape against the model built from config.json.
#include "trainer/model/weights.h"

#include <cstdio>
#include <filesystem>
#include <algorithm>
#include <map>
#include <set>

#include "datasets/base/limits.h"
#include "datasets/base/util.h"
#include "trainer/model/safetensors.h"

namespace ethos {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

constexpr const char* kSingleFile = "model.safetensors";
constexpr const char* kIndexFile = "model.safetensors.index.json";
constexpr const char* kAdapterConfig = "adapter_config.json";
constexpr const char* kAdapterWeights = "adapter_model.safetensors";

std::string in_dir(const std::string& dir, const std::string& name) { return (fs::path(dir) / name).string(); }

std::string shape_str(c10::IntArrayRef shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

std::string list_str(const std::vector<std::string>& names) {
  std::string s;
  for (size_t i = 0; i < names.size() && i < 10; ++i) s += (i ? ", " : "") + names[i];
  if (names.size() > 10) s += ", ... (" + std::to_string(names.size()) + " in all)";
  return s;
}

// The safetensors files of a model directory, from the index when there is one.
std::vector<std::string> weight_files(const std::string& dir) {
  const std::string index_path = in_dir(dir, kIndexFile);
  if (file_exists(index_path)) {
    std::vector<std::string> paths;
    for (const auto& f : parse_weight_index(read_text_file(index_path, kMaxConfigBytes, "safetensors index"), index_path)) {
      paths.push_back(in_dir(dir, f));
      if (!file_exists(paths.back())) throw Error(index_path + ": shard " + f + " listed in weight_map is missing from " + dir);
    }
    return paths;
  }
  const std::string single = in_dir(dir, kSingleFile);
  if (!file_exists(single))
    throw Error(dir + ": no " + kSingleFile + " or " + kIndexFile + "; a model directory needs its weights in "
                "safetensors format (pickle .bin checkpoints are not loaded)");
  return {single};
}

// Groups tensors into shards of at most max_bytes each (a larger tensor gets a shard of its own).
std::vector<NamedTensors> shard(const NamedTensors& tensors, size_t max_bytes) {
  std::vector<NamedTensors> shards(1);
  size_t bytes = 0;
  for (const auto& t : tensors) {
    const size_t n = t.second.nbytes();
    if (!shards.back().empty() && bytes + n > max_bytes) {
      shards.emplace_back();
      bytes = 0;
    }
    shards.back().push_back(t);
    bytes += n;
  }
  return shards;
}

std::string shard_name(size_t k, size_t n) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "model-%05zu-of-%05zu.safetensors", k, n);
  return buf;
}

}  // namespace

torch::ScalarType model_dtype(const std::string& name, const std::string& where) {
  if (name == "float32") return torch::kFloat32;
  if (name == "bfloat16") return torch::kBFloat16;
  if (name == "float16") return torch::kHalf;
  throw Error(where + ": \"" + name + "\" is not a model dtype; use one of " + join(model_dtypes(), ", ") +
              in_parens(did_you_mean(name, model_dtypes())));
}

const char* model_dtype_name(torch::ScalarType t) {
  switch (t) {
    case torch::kBFloat16: return "bfloat16";
    case torch::kHalf: return "float16";
    case torch::kDouble: return "float64";
    default: return "float32";
  }
}

ModelConfig read_model_config(const std::string& dir) {
  const std::string path = in_dir(dir, "config.json");
  if (!file_exists(path))
    throw Error(path + " not found: a model directory needs a Hugging Face config.json next to its weights");
  json j;
  try {
    j = parse_json(read_text_file(path, kMaxConfigBytes, "model config.json"), path);
  } catch (const json::exception& e) {
    throw Error(path + ": not valid JSON (" + e.what() + ")");
  }
  return ModelConfig::from_hf_json(j, path);
}

void load_weights(Llama& model, const std::string& dir) {
  if (is_adapter_dir(dir) && model->has_lora()) return load_adapter_weights(model, dir);
  torch::NoGradGuard no_grad;
  std::map<std::string, torch::Tensor> expected;
  for (auto& [name, p] : model->hf_parameters()) expected.emplace(name, p);
  const bool tied = model->config().tie_word_embeddings;
  std::set<std::string> loaded;
  std::vector<std::string> unexpected;
  for (const auto& path : weight_files(dir)) {
    const auto file = SafetensorsFile::read(path);
    for (const auto& e : file.entries()) {
      const auto it = expected.find(e.name);
      if (it == expected.end()) {
        // HF ignores these too: rotary buffers some exporters keep, and lm_head of a tied model.
        if (ends_with(e.name, "rotary_emb.inv_freq") || (tied && e.name == "lm_head.weight")) continue;
        unexpected.push_back(e.name + " (" + fs::path(path).filename().string() + ")");
        continue;
      }
      torch::Tensor& p = it->second;
      if (!p.sizes().equals(e.shape))
        throw Error(path + ": tensor '" + e.name + "' has shape " + shape_str(e.shape) + " but the model expects " +
                    shape_str(p.sizes()) + "; the weights do not match " + in_dir(dir, "config.json"));
      if (!c10::isFloatingType(e.dtype))
        throw Error(path + ": tensor '" + e.name + "' has non-floating dtype " + c10::toString(e.dtype) +
                    "; model weights must be F32, F16, BF16 or F64");
      p.copy_(file.get(e.name));  // converts dtype and device
      loaded.insert(e.name);
    }
  }
  if (!unexpected.empty())
    throw Error(dir + ": tensors the model (config.json) does not have: " + list_str(unexpected) +
                "; the weights belong to a different architecture or config");
  std::vector<std::string> missing;
  for (const auto& item : expected)
    if (!loaded.count(item.first)) missing.push_back(item.first + " " + shape_str(item.second.sizes()));
  if (!missing.empty())
    throw Error(dir + ": tensors missing from the weights: " + list_str(missing) +
                "; the checkpoint is incomplete or does not match config.json");
}

Llama load_model(const std::string& dir, torch::ScalarType dtype) {
  if (is_adapter_dir(dir)) {
    std::string base;
    const LoraConfig lora = read_adapter_config(dir, &base);
    if (!fs::is_directory(base))
      throw Error(in_dir(dir, kAdapterConfig) + ": base_model_name_or_path \"" + base + "\" is not a model directory on "
                  "this machine; put the base model there (or edit the field to where it is)");
    Llama model = load_model(base, dtype);
    model->add_lora(lora, base);
    load_adapter_weights(model, dir);
    return model;
  }
  Llama model(read_model_config(dir), /*default_init=*/false, dtype);  // every weight is loaded next (or an error)
  load_weights(model, dir);
  return model;
}

void save_model(Llama& model, const std::string& dir, size_t max_shard_bytes) {
  if (!fs::is_directory(dir)) throw Error("save_model: directory " + dir + " does not exist; create it first");
  NamedTensors tensors;
  size_t total = 0;
  for (auto& [name, p] : model->hf_parameters()) {
    tensors.emplace_back(name, p.detach());
    total += p.nbytes();
  }
  json config = model->config().to_hf_json();
  config["torch_dtype"] = model_dtype_name(tensors.front().second.scalar_type());
  write_file_atomic(in_dir(dir, "config.json"), config.dump(2) + "\n");

  const std::map<std::string, std::string> metadata{{"format", "pt"}};
  std::error_code ignored;
  if (total <= max_shard_bytes) {
    write_safetensors(in_dir(dir, kSingleFile), tensors, metadata);
    fs::remove(in_dir(dir, kIndexFile), ignored);  // a stale index would take precedence on load
    return;
  }
  const auto shards = shard(tensors, max_shard_bytes);
  json weight_map = json::object();
  for (size_t k = 0; k < shards.size(); ++k) {
    const std::string name = shard_name(k + 1, shards.size());
    write_safetensors(in_dir(dir, name), shards[k], metadata);
    for (const auto& t : shards[k]) weight_map[t.first] = name;
  }
  const json index{{"metadata", {{"total_size", total}}}, {"weight_map", weight_map}};
  write_file_atomic(in_dir(dir, kIndexFile), index.dump(2) + "\n");
  fs::remove(in_dir(dir, kSingleFile), ignored);
}

// ---- LoRA adapters ------------------------------------------------------------------------

bool is_adapter_dir(const std::string& dir) { return file_exists(in_dir(dir, kAdapterConfig)); }

void save_adapter(Llama& model, const std::string& dir) {
  if (!fs::is_directory(dir)) throw Error("save_adapter: directory " + dir + " does not exist; create it first");
  const LoraConfig& lora = model->lora_config();
  NamedTensors tensors;
  for (auto& [name, p] : model->lora_parameters()) tensors.emplace_back(name, p.detach());
  const std::string base = model->lora_base().empty() ? "" : fs::absolute(model->lora_base()).lexically_normal().string();
  // The keys PEFT (0.7 and later) writes for plain LoRA; older readers reject keys they do not know.
  const json config{{"peft_type", "LORA"},
                    {"task_type", "CAUSAL_LM"},
                    {"base_model_name_or_path", base},
                    {"revision", nullptr},
                    {"inference_mode", true},
                    {"r", lora.rank},
                    {"lora_alpha", lora.alpha},
                    {"lora_dropout", lora.dropout},
                    {"target_modules", lora.targets},
                    {"bias", "none"},
                    {"fan_in_fan_out", false},
                    {"modules_to_save", nullptr},
                    {"init_lora_weights", true},
                    {"layers_to_transform", nullptr},
                    {"layers_pattern", nullptr},
                    {"rank_pattern", json::object()},
                    {"alpha_pattern", json::object()},
                    {"use_rslora", false}};
  write_safetensors(in_dir(dir, kAdapterWeights), tensors, {{"format", "pt"}});
  write_file_atomic(in_dir(dir, kAdapterConfig), config.dump(2) + "\n");
}

void save_trained_weights(Llama& model, const std::string& dir) {
  if (model->has_lora()) save_adapter(model, dir);
  else save_model(model, dir);
}

LoraConfig read_adapter_config(const std::string& dir, std::string* base) {
  const std::string path = in_dir(dir, kAdapterConfig);
  return parse_adapter_config(read_text_file(path, kMaxConfigBytes, "adapter config"), path, base);
}

LoraConfig parse_adapter_config(const std::string& text, const std::string& path, std::string* base) {
  json j;
  try {
    j = parse_json(text, path);
  } catch (const json::exception& e) {
    throw Error(path + ": not valid JSON (" + e.what() + ")");
  }
  if (!j.is_object()) throw Error(path + ": expected a JSON object (PEFT's adapter_config.json)");
  auto unsupported = [&](const std::string& key, const std::string& why) {
    throw Error(path + ": \"" + key + "\": " + j[key].dump() + " is not supported: " + why);
  };
  if (!j.contains("peft_type") || j["peft_type"] != "LORA")
    throw Error(path + ": \"peft_type\" must be \"LORA\" (found " + (j.contains("peft_type") ? j["peft_type"].dump() : "nothing") + ")");
  LoraConfig c;
  auto number = [&](const char* key, bool integer) -> json {
    if (!j.contains(key) || !(integer ? j[key].is_number_integer() : j[key].is_number()))
      throw Error(path + ": \"" + key + "\" must be " + (integer ? "an integer" : "a number") + ", found " +
                  (j.contains(key) ? j[key].dump() : "nothing"));
    return j[key];
  };
  c.rank = number("r", true).get<int64_t>();
  c.alpha = number("lora_alpha", false).get<double>();
  c.dropout = j.contains("lora_dropout") ? number("lora_dropout", false).get<double>() : 0.0;
  if (!j.contains("target_modules") || !j["target_modules"].is_array())
    throw Error(path + ": \"target_modules\" must be a list of projection names (a regex string is not supported), found " +
                (j.contains("target_modules") ? j["target_modules"].dump() : "nothing"));
  c.targets.clear();
  for (const auto& t : j["target_modules"]) {
    if (!t.is_string()) throw Error(path + ": \"target_modules\" holds " + t.dump() + ", not a name");
    c.targets.push_back(t.get<std::string>());
  }
  if (j.contains("bias") && j["bias"] != "none") unsupported("bias", "ethos trains adapters without biases (\"none\")");
  for (const char* key : {"fan_in_fan_out", "use_rslora", "use_dora"})
    if (j.contains(key) && j[key] != false) unsupported(key, "ethos reads plain LoRA adapters");
  for (const char* key : {"modules_to_save", "layers_to_transform", "layer_replication"})
    if (j.contains(key) && !j[key].is_null()) unsupported(key, "ethos adapts every layer's projections only");
  for (const char* key : {"rank_pattern", "alpha_pattern"})
    if (j.contains(key) && !(j[key].is_null() || (j[key].is_object() && j[key].empty())))
      unsupported(key, "ethos uses one rank and alpha for every projection");
  const auto problems = c.problems();
  if (!problems.empty()) throw Error(path + ": " + join(problems, "; "));
  if (base) {
    if (!j.contains("base_model_name_or_path") || !j["base_model_name_or_path"].is_string())
      throw Error(path + ": \"base_model_name_or_path\" must name the base model's directory");
    *base = j["base_model_name_or_path"].get<std::string>();
  }
  return c;
}

void load_adapter_weights(Llama& model, const std::string& dir) {
  torch::NoGradGuard no_grad;
  const std::string path = in_dir(dir, kAdapterWeights);
  if (!file_exists(path)) throw Error(dir + ": no " + kAdapterWeights + " beside " + kAdapterConfig);
  const auto file = SafetensorsFile::read(path);
  std::vector<std::string> missing;
  std::set<std::string> expected;
  for (auto& [name, p] : model->lora_parameters()) {
    expected.insert(name);
    if (!file.contains(name)) {
      missing.push_back(name + " " + shape_str(p.sizes()));
      continue;
    }
    const auto t = file.get(name);
    if (!t.sizes().equals(p.sizes()))
      throw Error(path + ": tensor '" + name + "' has shape " + shape_str(t.sizes()) + " but the adapter config and the "
                  "base model give " + shape_str(p.sizes()));
    if (!c10::isFloatingType(t.scalar_type())) throw Error(path + ": tensor '" + name + "' is not a floating-point tensor");
    p.copy_(t);
  }
  std::vector<std::string> unexpected;
  for (const auto& e : file.entries())
    if (!expected.count(e.name)) unexpected.push_back(e.name);
  if (!missing.empty()) throw Error(path + ": tensors missing from the adapter: " + list_str(missing));
  if (!unexpected.empty())
    throw Error(path + ": tensors the adapter config does not describe: " + list_str(unexpected) +
                " (ethos reads PEFT LoRA names: base_model.model.model.layers.N.<self_attn|mlp>.<proj>.lora_<A|B>.weight)");
}

}  // namespace ethos
