// JSONL dataset records (README.md "Dataset formats"). Every line is validated on read;
// a bad line is an ethos::Error naming file:line and the field.
//   document      {"text": str}
//   demonstration {"messages": [{"role","content"}...]} | {"prompt": str, "response": str}
//   explained     demonstration fields + {"rationale": str}   (rationale precedes the action)
//   preference    {"prompt": str | "messages": [...], "chosen": str, "rejected": str,
//                  optional "rationale": str (the reason for the chosen answer, rendered as a
//                  rationale span before it, like an explained record's)}
// Optional on every kind: "id" (str), "tags" (object of str -> str|number), "system" (str,
// prepended as a system message). A "kind" field, if present, must match the file's kind.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace ethos {

enum class RecordKind { document, demonstration, explained, preference };
const char* to_string(RecordKind k);
RecordKind record_kind_from_string(const std::string& s);  // throws Error listing valid kinds

struct Message {
  std::string role;  // "system" | "user" | "assistant"
  std::string content;
};

struct Record {
  RecordKind kind = RecordKind::document;
  std::string where;                 // "file:line", for error messages downstream
  std::string id;
  std::string text;                  // document
  std::vector<Message> messages;     // demonstration/explained: the last message is the assistant target
                                     // preference: the prompt conversation (no assistant answer)
  std::string rationale;             // explained: reason for the last assistant message;
                                     // preference (optional): reason for the chosen answer
  std::string chosen, rejected;      // preference
  nlohmann::json tags = nlohmann::json::object();
};

// Parses one JSON line. `where` is "file:line" and prefixes every error.
Record parse_record(const std::string& line, RecordKind kind, const std::string& where);
// Reads a whole JSONL file (blank lines skipped). Errors name file:line and field.
std::vector<Record> read_records(const std::string& path, RecordKind kind);

}  // namespace ethos
