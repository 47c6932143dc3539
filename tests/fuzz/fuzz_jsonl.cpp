// Every JSONL record reader: dataset records of each kind (document, demonstration, explained,
// preference) and eval suite items, one line at a time as the readers see them.
#include <sstream>

#include "datasets/records.h"
#include "eval/suite/suite.h"
#include "tests/fuzz/common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::istringstream in(std::string(reinterpret_cast<const char*>(data), size));
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    const std::string where = "fuzz.jsonl:" + std::to_string(n);
    for (auto kind : {ethos::RecordKind::document, ethos::RecordKind::demonstration, ethos::RecordKind::explained,
                      ethos::RecordKind::preference})
      ethos::fuzz::expect_clean([&] { ethos::parse_record(line, kind, where); });
    std::vector<std::string> problems;
    ethos::fuzz::expect_clean([&] { ethos::parse_item(line, where, &problems); });
  }
  return 0;
}
