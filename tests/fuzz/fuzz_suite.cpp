// The suite loader: suite YAML (scoring, patterns, principles, report) and its item file.
// Input: suite.yaml ---- items.jsonl. Then every item's generated-answer parse on its own prompt.
#include "eval/suite/suite.h"
#include "tests/fuzz/common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto p = ethos::fuzz::parts(data, size, 2);
  const std::string yaml = ethos::fuzz::write("suite.yaml", p[0]);
  ethos::fuzz::write("items.jsonl", p[1]);
  ethos::fuzz::expect_clean([&] {
    const ethos::Suite s = ethos::load_suite(yaml);
    for (const auto& item : s.items)
      for (const auto& c : item.candidates) ethos::parse_generation(s, item, c.text);
    if (!s.items.empty()) ethos::subsample_items(s, s.items.size() / 2 + 1, 7);
  });
  return 0;
}
