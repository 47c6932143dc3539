// PEFT adapter_config.json (a file users download with an adapter): parse_adapter_config's
// checks of every key it reads.
#include "tests/fuzz/common.h"
#include "trainer/model/weights.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  ethos::fuzz::expect_clean([&] {
    std::string base;
    const ethos::LoraConfig c = ethos::parse_adapter_config(text, "adapter_config.json", &base);
    if (!c.problems().empty()) std::abort();  // what it returns is valid
  });
  return 0;
}
