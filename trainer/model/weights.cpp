// Model directories in Hugging Face format. Saving writes config.json and either one
// model.safetensors or shards model-0000k-of-0000n.safetensors plus model.safetensors.index.json
// ({"metadata": {"total_size": bytes}, "weight_map": {tensor: file}}), as save_pretrained does.
// Loading checks every tensor's presence and shape against the model built from config.json.
#include "trainer/model/weights.h"

#include <cstdio>
#include <filesystem>
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

const char* dtype_name(torch::ScalarType t) {
  switch (t) {
    case torch::kBFloat16: return "bfloat16";
    case torch::kHalf: return "float16";
    case torch::kDouble: return "float64";
    default: return "float32";
  }
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

Llama load_model(const std::string& dir) {
  Llama model(read_model_config(dir));
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
  config["torch_dtype"] = dtype_name(tensors.front().second.scalar_type());
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

}  // namespace ethos
