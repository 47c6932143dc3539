#include "trainer/model/inference.h"

#include <filesystem>

#include "trainer/model/weights.h"
#include "trainer/trainer.h"

namespace ethos {

InferenceModel load_for_inference(const std::string& dir, const std::string& tokenizer_path) {
  InferenceModel m;
  m.tokenizer_path =
      tokenizer_path.empty() ? (std::filesystem::path(dir) / "tokenizer.model").string() : tokenizer_path;
  m.tokenizer = SentencePieceTokenizer::load(m.tokenizer_path);
  m.model = load_model(dir);
  check_vocab(m.model, *m.tokenizer, m.tokenizer_path);
  m.model->eval();
  return m;
}

}  // namespace ethos
