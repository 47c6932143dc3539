// The world loader. The input replaces one file of a copy of the default world (byte 0 picks
// which: the world YAML or one of its data sections); the other files stay as shipped, so
// mutations reach the cross-file checks.
#include <algorithm>
#include <filesystem>

#include "datasets/world/spec.h"
#include "tests/fuzz/common.h"

#ifndef ETHOS_SOURCE_DIR
#error "ETHOS_SOURCE_DIR must point at the repository"
#endif

namespace fs = std::filesystem;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::vector<std::string> files = [] {
    const fs::path src = fs::path(ETHOS_SOURCE_DIR) / "datasets/world";
    fs::create_directories(ethos::fuzz::scratch() + "/world/data");
    std::vector<std::string> names = {"default.yaml"};
    fs::copy_file(src / "default.yaml", ethos::fuzz::scratch() + "/world/default.yaml", fs::copy_options::overwrite_existing);
    for (const auto& e : fs::directory_iterator(src / "data")) {
      names.push_back("data/" + e.path().filename().string());
      fs::copy_file(e.path(), ethos::fuzz::scratch() + "/world/" + names.back(), fs::copy_options::overwrite_existing);
    }
    std::sort(names.begin() + 1, names.end());
    return names;
  }();
  if (size == 0) return 0;
  const std::string name = files[data[0] % files.size()];
  const std::string path = ethos::fuzz::scratch() + "/world/" + name;
  const std::string original = [&] {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }();
  ethos::fuzz::write("world/" + name, std::string(reinterpret_cast<const char*>(data) + 1, size - 1));
  ethos::fuzz::expect_clean([&] { ethos::load_world(ethos::fuzz::scratch() + "/world/default.yaml"); });
  ethos::fuzz::write("world/" + name, original);
  return 0;
}
