// safetensors: the header and data checks of SafetensorsFile::parse and every tensor's copy out
// (get), then the model.safetensors.index.json reader.
#include "tests/fuzz/common.h"
#include "trainer/model/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  ethos::fuzz::expect_clean([&] {
    const auto file = ethos::SafetensorsFile::parse(bytes, "fuzz.safetensors");
    for (const auto& e : file.entries()) {
      const torch::Tensor t = file.get(e.name);
      if (t.numel() != 0 && t.sizes().vec() != e.shape) std::abort();
    }
  });
  ethos::fuzz::expect_clean([&] { ethos::parse_weight_index(bytes, "model.safetensors.index.json"); });
  return 0;
}
