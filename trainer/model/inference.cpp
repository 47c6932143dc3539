#include "trainer/model/inference.h"

#include <filesystem>

#include "trainer/model/weights.h"
#include "trainer/trainer.h"

namespace ethos {

InferenceModel load_for_inference(const std::string& dir, const std::string& tokenizer_path) {
  InferenceModel m;
  m.tokenizer_path = resolve_tokenizer_path(tokenizer_path.empty() ? dir : tokenizer_path);
  m.tokenizer = load_tokenizer(m.tokenizer_path);
  m.model = load_model(dir);
  check_vocab(m.model, *m.tokenizer, m.tokenizer_path);
  m.model->eval();
  return m;
}

}  // namespace ethos
