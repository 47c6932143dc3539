// The chat template: records of every kind (parsed from JSON lines) rendered into token ids and
// loss masks, preference pairs into chosen and rejected rows, prompts for generation.
#include <sstream>

#include "datasets/chat_template.h"
#include "datasets/records.h"
#include "tests/fuzz/common.h"
#include "tests/test_tokenizer_fake.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const ethos::test::FakeTokenizer tok;
  static const ethos::ChatTemplate tmpl(tok);
  std::istringstream in(std::string(reinterpret_cast<const char*>(data), size));
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    for (auto kind : {ethos::RecordKind::document, ethos::RecordKind::demonstration, ethos::RecordKind::explained,
                      ethos::RecordKind::preference})
      ethos::fuzz::expect_clean([&] {
        const ethos::Record r = ethos::parse_record(line, kind, "fuzz.jsonl:" + std::to_string(n));
        if (kind == ethos::RecordKind::preference) {
          tmpl.render_pair(r);
        } else {
          const auto ex = tmpl.render(r);
          if (ex.tokens.size() != ex.weights.size() || ex.tokens.size() != ex.span.size()) std::abort();
        }
        if (!r.messages.empty()) tmpl.render_prompt(r.messages);
      });
  }
  return 0;
}
