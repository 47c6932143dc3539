// A trained model loaded for inference (`ethos generate`, `ethos eval`): a checkpoint or a
// Hugging Face model directory, with the tokenizer it was trained with.
#pragma once
#include <memory>
#include <string>

#include "datasets/tokenizer/tokenizer.h"
#include "trainer/model/llama.h"

namespace ethos {

struct InferenceModel {
  Llama model{nullptr};                               // in eval mode
  std::unique_ptr<Tokenizer> tokenizer;
  std::string tokenizer_path;
};

// Loads DIR's weights and its tokenizer (DIR/tokenizer.model unless `tokenizer_path` names
// another) and checks that they belong together (check_vocab). Errors name the file and the fix.
// dtype (--dtype): what the weights are held in, as inference_dtype resolves it.
InferenceModel load_for_inference(const std::string& dir, const std::string& tokenizer_path = "",
                                  const std::string& dtype = "");

// The dtype to hold DIR's model in: `requested` (--dtype) unless it is empty, else model.dtype of
// DIR's config.yaml (its recipe), else float32. A name that is not a dtype is an Error naming
// where it came from.
torch::ScalarType inference_dtype(const std::string& dir, const std::string& requested);

// The chat template family to talk to DIR's model in: `requested` (--chat-template) unless it is
// empty or auto, else the one DIR's config.yaml (its recipe) names, resolved against the
// tokenizer and DIR's config.json as ChatTemplate::resolve does.
std::string inference_chat_template(const std::string& dir, const Tokenizer& tok, const std::string& requested);

}  // namespace ethos
