// The recipe loader: include resolution, command-line overrides, stage expansion, typed parse and
// validation. Input: recipe.yaml ---- base.yaml (which the recipe may include) ---- overrides,
// one key=value per line.
#include "tests/fuzz/common.h"
#include "trainer/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto p = ethos::fuzz::parts(data, size, 3);
  const std::string recipe = ethos::fuzz::write("recipe.yaml", p[0]);
  ethos::fuzz::write("base.yaml", p[1]);
  std::vector<std::string> overrides;
  std::string line;
  for (char c : p[2]) {
    if (c != '\n') line += c;
    else if (!line.empty()) overrides.push_back(line), line.clear();
  }
  if (!line.empty()) overrides.push_back(line);
  ethos::fuzz::expect_clean([&] {
    const ethos::Recipe r = ethos::load_recipe(recipe, overrides);
    ethos::validate(r);
    ethos::to_yaml(r);
  });
  return 0;
}
