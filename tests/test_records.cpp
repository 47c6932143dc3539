// JSONL records: every kind parses into the right fields, and every malformed line gives an
// Error that names file:line and the field (written to small files in a fresh directory).
#include <torch/torch.h>

#include "catch.h"

#include "datasets/records.h"
#include "datasets/base/util.h"
#include "tests/helpers.h"

using ethos_catch::Contains;
using namespace ethos;

namespace {

// Writes `lines` as a JSONL file and returns its path.
std::string jsonl(const std::string& name, const std::string& lines) {
  const std::string path = test::fresh_dir("records_" + name) + "/" + name + ".jsonl";
  test::write_text(path, lines);
  return path;
}

// The message of the Error that reading one line as `kind` throws ("" when it parses).
std::string error_of(const std::string& line, RecordKind kind) {
  const std::string path = jsonl("bad", "\n" + line + "\n");  // line 2: blank lines count
  try {
    read_records(path, kind);
  } catch (const Error& e) {
    const std::string msg = e.what();
    CATCH_CHECK_THAT(msg, Contains(path + ":2: "));
    return msg;
  }
  return "";
}

}  // namespace

CATCH_TEST_CASE("records: each kind parses", "[records]") {
  const std::string path = jsonl("ok", R"({"text": "A memo about lunch.", "id": "d1", "tags": {"src": "memo", "n": 3}}

{"text": "Second doc.", "meta": {"anything": [1, 2]}, "kind": "document"}
)");
  const auto docs = read_records(path, RecordKind::document);
  CATCH_REQUIRE(docs.size() == 2);
  CATCH_CHECK(docs[0].text == "A memo about lunch.");
  CATCH_CHECK(docs[0].id == "d1");
  CATCH_CHECK(docs[0].tags["n"] == 3);
  CATCH_CHECK(docs[1].where == path + ":3");  // the blank line 2 is skipped but counted

  const Record demo = parse_record(R"({"prompt": "Hi?", "response": "Hello.", "system": "Be kind."})",
                                   RecordKind::demonstration, "x:1");
  CATCH_REQUIRE(demo.messages.size() == 3);
  CATCH_CHECK(demo.messages[0].role == "system");
  CATCH_CHECK(demo.messages[0].content == "Be kind.");
  CATCH_CHECK(demo.messages[1].role == "user");
  CATCH_CHECK(demo.messages[2].role == "assistant");
  CATCH_CHECK(demo.messages[2].content == "Hello.");

  const Record multi = parse_record(
      R"({"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},
                       {"role": "user", "content": "c"}, {"role": "assistant", "content": "d"}]})",
      RecordKind::demonstration, "x:1");
  CATCH_CHECK(multi.messages.size() == 4);

  const Record ex = parse_record(R"({"prompt": "p", "response": "r", "rationale": "why", "kind": "explained"})",
                                 RecordKind::explained, "x:1");
  CATCH_CHECK(ex.kind == RecordKind::explained);
  CATCH_CHECK(ex.rationale == "why");
  CATCH_CHECK(ex.messages.size() == 2);

  const Record pref = parse_record(R"({"prompt": "p", "chosen": "good", "rejected": "bad"})", RecordKind::preference, "x:1");
  CATCH_REQUIRE(pref.messages.size() == 1);
  CATCH_CHECK(pref.messages[0].role == "user");
  CATCH_CHECK(pref.chosen == "good");
  CATCH_CHECK(pref.rejected == "bad");

  CATCH_CHECK(record_kind_from_string("explained") == RecordKind::explained);
  CATCH_REQUIRE_THROWS_WITH(record_kind_from_string("demo"), Contains("document|demonstration|explained|preference"));
}

CATCH_TEST_CASE("records: malformed lines name file:line and the field", "[records]") {
  const auto demo = RecordKind::demonstration;
  const std::string turns = R"([{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}, )";
  CATCH_CHECK_THAT(error_of(R"({"messages": )" + turns + R"({"role": "bot", "content": "c"}]})", demo),
                   Contains("field \"messages\"[2].role: expected one of system|user|assistant, got \"bot\""));
  CATCH_CHECK_THAT(error_of(R"({"prompt": "hi"})", demo),
                   Contains("missing field \"response\" (a demonstration needs \"messages\" or \"prompt\"+\"response\")"));
  CATCH_CHECK_THAT(error_of(R"({"text": 5})", RecordKind::document),
                   Contains("field \"text\": expected a string, got number"));
  CATCH_CHECK_THAT(error_of(R"({"text": "unterminated)", RecordKind::document), Contains(":2: not valid JSON: "));
  // Found by tests/fuzz: a number too large for a double is nlohmann's out_of_range, not a parse error.
  CATCH_CHECK_THAT(error_of(R"({"text": "t", "meta": 1E999999})", RecordKind::document), Contains(":2: not valid JSON: "));
  CATCH_CHECK_THAT(error_of(R"({"prompt": "p", "respnse": "r"})", demo),
                   Contains("unknown field \"respnse\" (did you mean \"response\"?)"));
  CATCH_CHECK_THAT(error_of(R"({"prompt": "p", "response": "  "})", demo), Contains("field \"response\": must not be empty"));
  CATCH_CHECK_THAT(error_of(R"({"messages": [{"role": "user", "content": "a"}]})", demo),
                   Contains("the last message must be \"assistant\""));
  CATCH_CHECK_THAT(error_of(R"({"messages": [{"role": "assistant", "content": "a"}]})", demo),
                   Contains("field \"messages\"[0].role: expected \"user\""));
  CATCH_CHECK_THAT(error_of(R"({"messages": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]})", demo),
                   Contains("field \"messages\"[1].role: expected \"assistant\""));
  CATCH_CHECK_THAT(error_of(R"({"prompt": "p", "response": "r", "kind": "document"})", demo),
                   Contains("field \"kind\""));
  CATCH_CHECK_THAT(error_of(R"({"prompt": "p", "response": "r", "tags": {"a": [1]}})", demo),
                   Contains("field \"tags\".\"a\": expected a string or number, got array"));
  CATCH_CHECK_THAT(error_of(R"({"prompt": "p", "response": "r"})", RecordKind::explained),
                   Contains("missing field \"rationale\""));
  CATCH_CHECK_THAT(error_of(R"({"prompt": "p", "response": "r", "rationale": ""})", RecordKind::explained),
                   Contains("field \"rationale\": must not be empty"));
  CATCH_CHECK_THAT(error_of(R"({"prompt": "p", "chosen": "same", "rejected": "same"})", RecordKind::preference),
                   Contains("\"chosen\" and \"rejected\" are identical"));
  CATCH_CHECK_THAT(error_of(R"({"prompt": "p", "chosen": "", "rejected": "x"})", RecordKind::preference),
                   Contains("field \"chosen\": must not be empty"));
  CATCH_CHECK_THAT(error_of(R"([1, 2])", demo), Contains("expected a JSON object"));
}

CATCH_TEST_CASE("records: a missing file is an error naming it", "[records]") {
  const std::string path = test::fresh_dir("records_missing") + "/nope.jsonl";
  CATCH_REQUIRE_THROWS_WITH(read_records(path, RecordKind::document), Contains(path));
}

CATCH_TEST_CASE("records: the bundled tiny data set parses; held-out names are unseen", "[records]") {
  const std::string dir = test::source_dir() + "/datasets/data/tiny/";
  const auto demos = read_records(dir + "tiny_demonstrations.jsonl", RecordKind::demonstration);
  const auto explained = read_records(dir + "tiny_explained.jsonl", RecordKind::explained);
  const auto docs = read_records(dir + "tiny_documents.jsonl", RecordKind::document);
  const auto heldout = read_records(dir + "tiny_heldout.jsonl", RecordKind::demonstration);
  CATCH_CHECK(demos.size() == 150);
  CATCH_CHECK(docs.size() == 150);
  CATCH_CHECK(heldout.size() == 30);
  CATCH_REQUIRE(explained.size() == demos.size());
  for (size_t i = 0; i < demos.size(); ++i) {  // the same items, plus a rationale
    CATCH_REQUIRE(explained[i].id == demos[i].id);
    CATCH_REQUIRE(explained[i].messages.back().content == demos[i].messages.back().content);
  }
  std::string train_text;
  for (const auto& r : demos)
    for (const auto& m : r.messages) train_text += m.content + "\n";
  for (const auto& r : heldout) {
    const std::string& system = r.messages.front().content;  // "You are NAME, ..."
    const std::string name = system.substr(8, system.find(',') - 8);
    CATCH_CHECK(train_text.find(name) == std::string::npos);
  }
}
