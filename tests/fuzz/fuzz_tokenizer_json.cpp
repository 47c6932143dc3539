// Hugging Face tokenizer.json (a file users download with a model): the input is a tokenizer.json,
// a tokenizer_config.json and a text, separated by "----" lines. Loading checks every key it
// reads; a tokenizer that loads must encode the text and decode the ids it gave.
#include "datasets/tokenizer/bpe.h"
#include "tests/fuzz/common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto p = ethos::fuzz::parts(data, size, 3);
  ethos::fuzz::expect_clean([&] {
    auto tok = ethos::ByteLevelBpeTokenizer::parse(p[0], "tokenizer.json", p[1]);
    const std::vector<int> ids = tok->encode(p[2]);
    for (int id : ids)
      if (id < 0 || id >= tok->vocab_size()) std::abort();  // every id it gives is one it can decode
    tok->decode(ids);
  });
  return 0;
}
