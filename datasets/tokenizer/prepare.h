// A recipe's tokenizer (its `tokenizer:` section) made ready before training: the model file
// as it is, or one trained from the recipe's own text files first.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace ethos {

struct TokenizerSection {
  std::string path;                      // tokenizer.model or tokenizer.json to load (relative paths: to the CWD)
  std::vector<std::string> train_files;  // if `path` does not exist and these are set: train it first
  std::string model_type = "bpe";        // bpe | unigram
  int64_t vocab_size = 1000;
  bool byte_fallback = true;
};

// Makes sure t.path exists, training it from t.train_files when it does not (JSONL files
// contribute every string they contain), or when <path>.sources says it was trained from
// other files or options. Returns the path.
std::string prepare_tokenizer(const TokenizerSection& t, int threads);

}  // namespace ethos
