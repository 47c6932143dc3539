#include "trainer/model/inference.h"

#include <filesystem>

#include "datasets/base/yaml.h"
#include "datasets/chat_template.h"
#include "trainer/model/weights.h"
#include "trainer/trainer.h"

namespace ethos {

InferenceModel load_for_inference(const std::string& dir, const std::string& tokenizer_path, const std::string& dtype) {
  InferenceModel m;
  m.tokenizer_path = resolve_tokenizer_path(tokenizer_path.empty() ? dir : tokenizer_path);
  m.tokenizer = load_tokenizer(m.tokenizer_path);
  m.model = dtype.empty() ? load_model(dir, model_dtype(inference_dtype(dir), dir + "/config.yaml: model.dtype"))
                          : load_model(dir, model_dtype(dtype, "--dtype"));
  check_vocab(m.model, *m.tokenizer, m.tokenizer_path);
  m.model->eval();
  return m;
}

std::string inference_dtype(const std::string& dir) {
  const std::string cfg = (std::filesystem::path(dir) / "config.yaml").string();
  if (!std::filesystem::exists(cfg)) return "float32";
  const YAML::Node node = load_yaml_file(cfg);
  const YAML::Node dtype = node["model"] ? node["model"]["dtype"] : YAML::Node();
  return dtype && dtype.IsScalar() ? dtype.as<std::string>() : "float32";
}

std::string inference_chat_template(const std::string& dir, const Tokenizer& tok, const std::string& requested) {
  std::string format = requested.empty() ? "auto" : requested;
  const std::string cfg = (std::filesystem::path(dir) / "config.yaml").string();
  if (format == "auto" && std::filesystem::exists(cfg)) {  // the template the checkpoint was trained with
    const YAML::Node node = load_yaml_file(cfg);
    if (node["chat_template"] && node["chat_template"].IsScalar()) format = node["chat_template"].as<std::string>();
  }
  return ChatTemplate::resolve(format, tok, dir);
}

}  // namespace ethos
