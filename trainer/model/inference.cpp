#include "trainer/model/inference.h"

#include <filesystem>

#include "datasets/base/yaml.h"
#include "datasets/chat_template.h"
#include "trainer/model/weights.h"
#include "trainer/trainer.h"

namespace ethos {

namespace {

// A scalar of DIR's config.yaml (the recipe the checkpoint was trained with) at key[.subkey];
// "" when the file or the key is absent.
std::string recipe_value(const std::string& dir, const char* key, const char* subkey = nullptr) {
  const std::string cfg = (std::filesystem::path(dir) / "config.yaml").string();
  if (!std::filesystem::exists(cfg)) return "";
  const YAML::Node root = load_yaml_file(cfg);
  const YAML::Node node = subkey ? (root[key] && root[key].IsMap() ? root[key][subkey] : YAML::Node()) : root[key];
  return node && node.IsScalar() ? node.as<std::string>() : "";
}

}  // namespace

InferenceModel load_for_inference(const std::string& dir, const std::string& tokenizer_path, const std::string& dtype) {
  InferenceModel m;
  m.tokenizer_path = resolve_tokenizer_path(tokenizer_path.empty() ? dir : tokenizer_path);
  m.tokenizer = load_tokenizer(m.tokenizer_path);
  m.model = load_model(dir, inference_dtype(dir, dtype));
  check_vocab(m.model, *m.tokenizer, m.tokenizer_path);
  m.model->eval();
  return m;
}

torch::ScalarType inference_dtype(const std::string& dir, const std::string& requested) {
  if (!requested.empty()) return model_dtype(requested, "--dtype");
  const std::string recorded = recipe_value(dir, "model", "dtype");
  return recorded.empty() ? torch::kFloat32 : model_dtype(recorded, dir + "/config.yaml: model.dtype");
}

std::string inference_chat_template(const std::string& dir, const Tokenizer& tok, const std::string& requested) {
  std::string format = requested.empty() ? "auto" : requested;
  if (format == "auto") {  // the template the checkpoint was trained with
    const std::string recorded = recipe_value(dir, "chat_template");
    if (!recorded.empty()) format = recorded;
  }
  return ChatTemplate::resolve(format, tok, dir);
}

}  // namespace ethos
