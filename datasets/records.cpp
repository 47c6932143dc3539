// JSONL dataset records: parsing and validation. Each check throws an Error that starts
// with "file:line" and names the offending field, so a bad line is found and fixed at once.
#include "datasets/records.h"

#include <algorithm>
#include <fstream>

#include "datasets/base/limits.h"
#include "datasets/base/util.h"

namespace ethos {

const char* to_string(RecordKind k) {
  switch (k) {
    case RecordKind::document: return "document";
    case RecordKind::demonstration: return "demonstration";
    case RecordKind::explained: return "explained";
    case RecordKind::preference: return "preference";
  }
  return "?";
}

RecordKind record_kind_from_string(const std::string& s) {
  for (RecordKind k : {RecordKind::document, RecordKind::demonstration, RecordKind::explained,
                       RecordKind::preference})
    if (s == to_string(k)) return k;
  throw Error("unknown record kind \"" + s + "\": expected one of document|demonstration|explained|preference");
}

namespace {

using nlohmann::json;

// "a demonstration" / "an explained record": for "needs ..." messages.
std::string kind_phrase(RecordKind k) {
  switch (k) {
    case RecordKind::document: return "a document";
    case RecordKind::demonstration: return "a demonstration";
    case RecordKind::explained: return "an explained record";
    case RecordKind::preference: return "a preference record";
  }
  return "a record";
}

// What a record of this kind needs, for "missing field" messages.
std::string needs(RecordKind k) {
  switch (k) {
    case RecordKind::document: return "a document needs a non-empty \"text\"";
    case RecordKind::demonstration: return "a demonstration needs \"messages\" or \"prompt\"+\"response\"";
    case RecordKind::explained:
      return "an explained record needs \"messages\" or \"prompt\"+\"response\", and \"rationale\"";
    case RecordKind::preference:
      return "a preference record needs \"prompt\" or \"messages\", and \"chosen\" and \"rejected\"";
  }
  return "";
}

std::vector<std::string> allowed_fields(RecordKind k) {
  std::vector<std::string> f;
  switch (k) {
    case RecordKind::document: f = {"text"}; break;
    case RecordKind::demonstration: f = {"messages", "prompt", "response"}; break;
    case RecordKind::explained: f = {"messages", "prompt", "response", "rationale"}; break;
    case RecordKind::preference: f = {"messages", "prompt", "chosen", "rejected", "rationale"}; break;
  }
  for (const char* opt : {"id", "tags", "system", "kind", "meta"}) f.push_back(opt);
  return f;
}

// Validates one record object; `at` is the "file:line" prefix.
class Checker {
 public:
  Checker(const json& j, RecordKind kind, const std::string& at) : j_(j), kind_(kind), at_(at) {}

  [[noreturn]] void fail(const std::string& msg) const { throw Error(at_ + ": " + msg); }

  void check_fields() const {
    const auto allowed = allowed_fields(kind_);
    for (const auto& item : j_.items()) {
      if (std::find(allowed.begin(), allowed.end(), item.key()) != allowed.end()) continue;
      fail("unknown field \"" + item.key() + "\"" + in_parens(did_you_mean(item.key(), allowed)) +
           "; valid fields for " + kind_phrase(kind_) + ": " + join(allowed, ", "));
    }
  }

  bool has(const char* key) const { return j_.contains(key); }

  // A required, non-empty string field.
  std::string text(const char* key) const {
    if (!has(key)) fail("missing field \"" + std::string(key) + "\" (" + needs(kind_) + ")");
    return non_empty_string(j_.at(key), "field \"" + std::string(key) + "\"");
  }

  std::string non_empty_string(const json& v, const std::string& field) const {
    if (!v.is_string()) fail(field + ": expected a string, got " + v.type_name());
    std::string s = v.get<std::string>();
    if (trim(s).empty()) fail(field + ": must not be empty");
    return s;
  }

  std::string optional_string(const char* key) const {
    if (!has(key)) return "";
    const json& v = j_.at(key);
    if (!v.is_string()) fail("field \"" + std::string(key) + "\": expected a string, got " + v.type_name());
    return v.get<std::string>();
  }

  void check_kind() const {
    if (!has("kind")) return;
    const std::string k = optional_string("kind");
    if (k != to_string(kind_))
      fail("field \"kind\": this file is read as " + std::string(to_string(kind_)) + " records, but the line says \"" +
           k + "\" (put each kind in its own file, or fix the source's kind in the recipe)");
  }

  json tags() const {
    if (!has("tags")) return json::object();
    const json& t = j_.at("tags");
    if (!t.is_object()) fail(std::string("field \"tags\": expected an object, got ") + t.type_name());
    for (const auto& item : t.items())
      if (!item.value().is_string() && !item.value().is_number())
        fail("field \"tags\".\"" + item.key() + "\": expected a string or number, got " + item.value().type_name());
    return t;
  }

  std::vector<Message> messages() const {
    const json& m = j_.at("messages");
    if (!m.is_array()) fail(std::string("field \"messages\": expected an array, got ") + m.type_name());
    if (m.empty()) fail("field \"messages\": must not be empty (" + needs(kind_) + ")");
    std::vector<Message> out;
    for (size_t i = 0; i < m.size(); ++i) out.push_back(message(m[i], "field \"messages\"[" + std::to_string(i) + "]"));
    return out;
  }

  // Role order: [system] user assistant user assistant ... (so there is always a user turn);
  // demonstrations end with the assistant target, preference prompts with the user turn the
  // answers reply to.
  void check_turns(const std::vector<Message>& msgs) const {
    for (size_t i = 0; i < msgs.size(); ++i) {
      const std::string& role = msgs[i].role;
      const std::string field = "field \"messages\"[" + std::to_string(i) + "].role";
      if (role == "system") {
        if (i != 0) fail(field + ": a system message may only come first");
        continue;
      }
      const bool after_user = i > 0 && msgs[i - 1].role == "user";
      const std::string expected = after_user ? "assistant" : "user";
      if (role != expected) fail(field + ": expected \"" + expected + "\" (turns alternate user, assistant), got \"" + role + "\"");
    }
    const std::string last = msgs.back().role;
    if (kind_ == RecordKind::preference) {
      if (last != "user")
        fail("field \"messages\": the last message of a preference prompt must be \"user\" (the chosen/rejected "
             "answers reply to it), got \"" + last + "\"");
    } else if (last != "assistant") {
      fail("field \"messages\": the last message must be \"assistant\" (the target), got \"" + last + "\"");
    }
  }

 private:
  Message message(const json& v, const std::string& field) const {
    if (!v.is_object()) fail(field + ": expected an object {\"role\", \"content\"}, got " + v.type_name());
    for (const auto& item : v.items())
      if (item.key() != "role" && item.key() != "content")
        fail(field + ": unknown field \"" + item.key() + "\" (a message has \"role\" and \"content\")");
    if (!v.contains("role")) fail(field + ": missing field \"role\"");
    if (!v.contains("content")) fail(field + ": missing field \"content\"");
    const json& role = v.at("role");
    if (!role.is_string()) fail(field + ".role: expected a string, got " + role.type_name());
    Message msg{role.get<std::string>(), ""};
    if (msg.role != "system" && msg.role != "user" && msg.role != "assistant")
      fail(field + ".role: expected one of system|user|assistant, got \"" + msg.role + "\"");
    msg.content = non_empty_string(v.at("content"), field + ".content");
    return msg;
  }

  const json& j_;
  RecordKind kind_;
  const std::string& at_;
};

// The conversation of a demonstration/explained/preference record: "messages", or
// "prompt" (+ "response"), with the optional "system" field prepended.
std::vector<Message> conversation(const Checker& c, RecordKind kind) {
  const bool wants_response = kind != RecordKind::preference;
  std::vector<Message> msgs;
  if (c.has("messages")) {
    if (c.has("prompt") || c.has("response"))
      c.fail(std::string("field \"") + (c.has("prompt") ? "prompt" : "response") +
             "\": give either \"messages\" or \"prompt\"" + (wants_response ? "+\"response\"" : "") + ", not both");
    msgs = c.messages();
  } else if (c.has("prompt") || (wants_response && c.has("response"))) {
    msgs.push_back({"user", c.text("prompt")});
    if (wants_response) msgs.push_back({"assistant", c.text("response")});
  } else {
    c.fail("missing field \"messages\" (" + needs(kind) + ")");
  }
  if (c.has("system")) {
    if (msgs.front().role == "system")
      c.fail("field \"system\": the messages already start with a system message; keep only one of the two");
    Message sys{"system", c.text("system")};
    msgs.insert(msgs.begin(), sys);
  }
  c.check_turns(msgs);
  return msgs;
}

}  // namespace

Record parse_record(const std::string& line, RecordKind kind, const std::string& where) {
  json j;
  try {
    j = parse_json(line, where);
  } catch (const json::exception& e) {  // a syntax error, or a number too large for a double (found by tests/fuzz)
    throw Error(where + ": not valid JSON: " + e.what());
  }
  if (!j.is_object()) throw Error(where + ": expected a JSON object per line, got " + j.type_name());
  const Checker c(j, kind, where);
  c.check_fields();
  c.check_kind();

  Record r;
  r.kind = kind;
  r.where = where;
  r.id = c.optional_string("id");
  r.tags = c.tags();
  if (kind == RecordKind::document) {
    if (c.has("system")) c.fail("field \"system\": a document has no conversation to prepend it to; remove it");
    r.text = c.text("text");
    return r;
  }
  r.messages = conversation(c, kind);
  if (kind == RecordKind::explained) r.rationale = c.text("rationale");
  if (kind == RecordKind::preference) {
    r.chosen = c.text("chosen");
    r.rejected = c.text("rejected");
    if (r.chosen == r.rejected)
      c.fail("fields \"chosen\" and \"rejected\" are identical; a preference pair needs two different answers");
    if (c.has("rationale")) r.rationale = c.text("rationale");  // optional: the reason for the chosen answer
  }
  return r;
}

std::vector<Record> read_records(const std::string& path, RecordKind kind) {
  if (!std::ifstream(path, std::ios::binary))
    throw Error("cannot open dataset file \"" + path + "\" (" + to_string(kind) + " records): check the path");
  LineReader in(path, std::string(to_string(kind)));
  std::vector<Record> out;
  std::string line;
  while (in.next(line)) {
    if (trim(line).empty()) continue;
    out.push_back(parse_record(line, kind, in.where()));
  }
  return out;
}

}  // namespace ethos
