// Eval suites: reading and validating the suite YAML and its JSONL items (see suite.h and
// eval/FORMAT.md). Problems are collected, not thrown one by one, so a user fixes them in one go.
#include "eval/suite/suite.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <set>
#include <sstream>

#include "datasets/base/limits.h"
#include "datasets/base/util.h"
#include "datasets/base/yaml.h"
#include "datasets/world/rng.h"

namespace fs = std::filesystem;

namespace ethos {

size_t SuiteItem::aligned_index() const {
  for (size_t i = 0; i < candidates.size(); ++i)
    if (candidates[i].label == Label::aligned) return i;
  throw Error(where + ": item \"" + id + "\" has no aligned candidate");
}

namespace {

using nlohmann::json;
using Problems = std::vector<std::string>;

std::string dq(const std::string& s) { return "\"" + s + "\""; }

// A suggestion that leads the rest of a message: `did you mean "x"? ` or "".
std::string did_you_mean_then(const std::string& key, const std::vector<std::string>& valid) {
  const std::string hint = did_you_mean(key, valid);
  return hint.empty() ? "" : hint + " ";
}

const std::vector<std::string> kLabelNames{"aligned", "misaligned", "refusal", "off_task"};

// ---------------------------------------------------------------- items (JSONL)

const std::vector<std::string> kItemFields{"id",     "task",     "split",      "family",   "axes",  "benign", "system",
                                           "prompt", "messages", "candidates", "patterns", "tags"};

// Reads label -> [regex...] (a single string is accepted for one regex) into `set`.
// `at` prefixes messages ("file:line: field \"patterns\"" or "suite.yaml:3: patterns").
void read_patterns(const json& j, const std::string& at, PatternSet* set, Problems* p) {
  if (!j.is_object()) {
    p->push_back(at + ": expected an object of label -> [regex, ...], got " + j.type_name());
    return;
  }
  for (const auto& kv : j.items()) {
    Label label;
    if (!parse_label(kv.key(), &label)) {
      p->push_back(at + ": unknown label " + dq(kv.key()) + "; " + did_you_mean_then(kv.key(), kLabelNames) +
                   "labels are " + join(kLabelNames, ", "));
      continue;
    }
    std::vector<json> sources;
    if (kv.value().is_string()) sources.push_back(kv.value());
    else if (kv.value().is_array()) sources.assign(kv.value().begin(), kv.value().end());
    else {
      p->push_back(at + "." + kv.key() + ": expected a list of regex strings, got " + kv.value().type_name());
      continue;
    }
    for (size_t i = 0; i < sources.size(); ++i) {
      const std::string field = at + "." + kv.key() + "[" + std::to_string(i) + "]";
      if (!sources[i].is_string()) {
        p->push_back(field + ": expected a regex string, got " + sources[i].type_name());
        continue;
      }
      const std::string src = sources[i].get<std::string>();
      std::string err;
      if (src.empty()) p->push_back(field + ": empty regex (it would match every answer); remove it");
      else if (!set->add(label, src, &err))
        p->push_back(field + ": regex " + dq(src) + " does not compile (" + err +
                     "); write an ECMAScript regex and escape backslashes in JSON/YAML (\\\\b for \\b)");
    }
  }
}

struct ItemReader {
  const json& j;
  std::string at;  // "file:line"
  Problems* p;

  void problem(const std::string& msg) const { p->push_back(at + ": " + msg); }

  // A required (or optional, when !required) non-empty string field; "" when absent/bad.
  std::string string_field(const char* key, bool required) const {
    if (!j.contains(key)) {
      if (required) problem("missing field " + dq(key));
      return "";
    }
    const json& v = j.at(key);
    if (!v.is_string()) {
      problem("field " + dq(key) + ": expected a string, got " + v.type_name());
      return "";
    }
    std::string s = v.get<std::string>();
    if (trim(s).empty()) problem("field " + dq(key) + ": must not be empty");
    return s;
  }
};

void read_messages(const ItemReader& r, SuiteItem* item) {
  const json& m = r.j.at("messages");
  if (!m.is_array() || m.empty()) {
    r.problem("field \"messages\": expected a non-empty array of {\"role\", \"content\"}");
    return;
  }
  for (size_t i = 0; i < m.size(); ++i) {
    const std::string field = "field \"messages\"[" + std::to_string(i) + "]";
    const json& msg = m[i];
    if (!msg.is_object() || !msg.contains("role") || !msg.contains("content") || !msg["role"].is_string() ||
        !msg["content"].is_string() || msg.size() != 2) {
      r.problem(field + ": expected {\"role\": str, \"content\": str} (and nothing else)");
      continue;
    }
    const std::string role = msg["role"].get<std::string>(), content = msg["content"].get<std::string>();
    if (trim(content).empty()) r.problem(field + ".content: must not be empty");
    if (role == "system") {
      if (i != 0) r.problem(field + ".role: a system message may only come first");
      else if (r.j.contains("system")) r.problem(field + ": give the system message either here or in \"system\", not both");
      else item->system = content;
      continue;
    }
    if (role != "user" && role != "assistant") {
      r.problem(field + ".role: expected system|user|assistant, got " + dq(role));
      continue;
    }
    const std::string expected = item->messages.empty() || item->messages.back().role == "assistant" ? "user" : "assistant";
    if (role != expected) r.problem(field + ".role: expected " + dq(expected) + " (turns alternate user, assistant)");
    item->messages.push_back({role, content});
  }
  if (!item->messages.empty() && item->messages.back().role != "user")
    r.problem("field \"messages\": the last message must be the user turn the model answers (drop the final "
              "assistant answer; candidates hold the answers)");
}

void read_candidates(const ItemReader& r, SuiteItem* item) {
  if (!r.j.contains("candidates")) {
    r.problem("missing field \"candidates\" (>= 2 answers {\"text\", \"label\"}, exactly one \"aligned\")");
    return;
  }
  const json& c = r.j.at("candidates");
  if (!c.is_array()) {
    r.problem(std::string("field \"candidates\": expected an array, got ") + c.type_name());
    return;
  }
  bool complete = true;
  for (size_t i = 0; i < c.size(); ++i) {
    const std::string field = "field \"candidates\"[" + std::to_string(i) + "]";
    const json& cand = c[i];
    if (!cand.is_object() || !cand.contains("text") || !cand.contains("label") || !cand["text"].is_string() ||
        !cand["label"].is_string()) {
      r.problem(field + ": expected {\"text\": str, \"label\": str}");
      complete = false;
      continue;
    }
    for (const auto& kv : cand.items())
      if (kv.key() != "text" && kv.key() != "label")
        r.problem(field + ": unknown field " + dq(kv.key()) + " (a candidate has \"text\" and \"label\")");
    Candidate out{cand["text"].get<std::string>(), Label::aligned};
    if (trim(out.text).empty()) r.problem(field + ".text: must not be empty");
    const std::string label = cand["label"].get<std::string>();
    if (!parse_label(label, &out.label)) {
      r.problem(field + ".label: unknown label " + dq(label) + "; " + did_you_mean_then(label, kLabelNames) +
                "labels are " + join(kLabelNames, ", "));
      complete = false;
      continue;
    }
    item->candidates.push_back(out);
  }
  if (c.size() < 2) r.problem("field \"candidates\": " + std::to_string(c.size()) + " candidate(s); give at least 2");
  if (!complete) return;  // label counts would be misleading
  const auto aligned = std::count_if(item->candidates.begin(), item->candidates.end(),
                                     [](const Candidate& x) { return x.label == Label::aligned; });
  if (aligned == 0)
    r.problem("field \"candidates\": no candidate has label \"aligned\"; mark exactly one (the right action, or the "
              "correct answer of a qa item)");
  if (aligned > 1)
    r.problem("field \"candidates\": " + std::to_string(aligned) + " candidates have label \"aligned\"; exactly one may");
}

}  // namespace

SuiteItem parse_item(const std::string& line, const std::string& where, Problems* problems) {
  SuiteItem item;
  item.where = where;
  if (line.size() > limit_value(kMaxRecordBytes)) {
    problems->push_back(where + ": line of " + human_bytes(line.size()) + " is longer than one item may be (" +
                        limit_hint(kMaxRecordBytes) + ")");
    return item;
  }
  json j;
  try {
    j = parse_json(line, where, /*allow_exceptions=*/false);
  } catch (const Error& e) {
    problems->push_back(e.what());
    return item;
  }
  if (j.is_discarded() || !j.is_object()) {
    problems->push_back(where + ": not a JSON object (one item per line; check quotes, commas and brackets)");
    return item;
  }
  const ItemReader r{j, where, problems};
  for (const auto& kv : j.items())
    if (std::find(kItemFields.begin(), kItemFields.end(), kv.key()) == kItemFields.end())
      r.problem("unknown field " + dq(kv.key()) + "; " + did_you_mean_then(kv.key(), kItemFields) + "valid fields: " +
                join(kItemFields, ", ") + " (free-form data goes in \"tags\")");

  item.id = r.string_field("id", true);
  if (j.contains("task")) {
    item.task = r.string_field("task", false);
    if (item.task != "scenario" && item.task != "qa" && !item.task.empty())
      r.problem("field \"task\": expected \"scenario\" or \"qa\", got " + dq(item.task));
  }
  item.split = r.string_field("split", true);
  if (!item.split.empty() && item.split != "id" && item.split != "ood")
    r.problem("field \"split\": expected \"id\" or \"ood\", got " + dq(item.split));
  item.family = r.string_field("family", true);
  if (!j.contains("axes")) {
    r.problem("missing field \"axes\" (an object of axis name -> value; {} if the item has none)");
  } else if (!j["axes"].is_object()) {
    r.problem(std::string("field \"axes\": expected an object of axis name -> string, got ") + j["axes"].type_name());
  } else {
    for (const auto& kv : j["axes"].items()) {
      if (!kv.value().is_string() || kv.value().get<std::string>().empty())
        r.problem("field \"axes\"." + dq(kv.key()) + ": expected a non-empty string value");
      else item.axes[kv.key()] = kv.value().get<std::string>();
    }
  }
  if (j.contains("benign")) {
    if (!j["benign"].is_boolean()) r.problem(std::string("field \"benign\": expected true or false, got ") + j["benign"].type_name());
    else item.benign = j["benign"].get<bool>();
  }
  if (j.contains("system")) item.system = r.string_field("system", false);
  const bool has_prompt = j.contains("prompt"), has_messages = j.contains("messages");
  if (has_prompt && has_messages) r.problem("give either \"prompt\" or \"messages\", not both");
  else if (has_prompt) {
    const std::string prompt = r.string_field("prompt", true);
    if (!prompt.empty()) item.messages.push_back({"user", prompt});
  } else if (has_messages) {
    read_messages(r, &item);
  } else {
    r.problem("missing field \"prompt\" (the user turn) or \"messages\" (a conversation ending with a user turn)");
  }
  read_candidates(r, &item);
  if (j.contains("patterns")) read_patterns(j["patterns"], where + ": field \"patterns\"", &item.patterns, problems);
  if (j.contains("tags")) {
    if (!j["tags"].is_object()) r.problem(std::string("field \"tags\": expected an object, got ") + j["tags"].type_name());
    else item.tags = j["tags"];
  }
  return item;
}

namespace {

// ---------------------------------------------------------------- suite (YAML)

struct YamlReader {
  std::string file;
  Problems* p;

  std::string at(const YAML::Node& n, const std::string& path) const {
    return file + ":" + std::to_string(n.Mark().line + 1) + ": " + path;
  }
  void problem(const YAML::Node& n, const std::string& path, const std::string& msg) const {
    p->push_back(at(n, path) + ": " + msg);
  }

  // Flags keys of map `n` outside `valid`; false when `n` is not a map.
  bool check_map(const YAML::Node& n, const std::string& path, const std::vector<std::string>& valid) const {
    if (!n.IsMap()) {
      problem(n, path.empty() ? "(top level)" : path, "expected a map with keys " + join(valid, ", "));
      return false;
    }
    for (const auto& kv : n) {
      const std::string key = kv.first.Scalar();
      if (std::find(valid.begin(), valid.end(), key) != valid.end()) continue;
      const std::string full = path.empty() ? key : path + "." + key;
      problem(kv.first, full, "unknown key; " + did_you_mean_then(key, valid) + "valid keys here: " + join(valid, ", "));
    }
    return true;
  }

  template <class T>
  void scalar(const YAML::Node& map, const std::string& path, const char* key, T* out, const char* type) const {
    const YAML::Node n = map[key];
    if (!n) return;
    const std::string full = path + "." + key;
    try {
      if (!n.IsScalar()) throw YAML::BadConversion(n.Mark());
      *out = n.as<T>();
    } catch (const YAML::BadConversion&) {
      problem(n, full, std::string("expected ") + type + (n.IsScalar() ? ", got \"" + n.Scalar() + "\"" : ""));
    }
  }

  std::vector<std::string> strings(const YAML::Node& n, const std::string& path) const {
    std::vector<std::string> out;
    if (!n.IsSequence()) {
      problem(n, path, "expected a list of strings, e.g. [a, b]");
      return out;
    }
    for (size_t i = 0; i < n.size(); ++i) {
      if (!n[i].IsScalar()) problem(n[i], path + "[" + std::to_string(i) + "]", "expected a string");
      else out.push_back(n[i].Scalar());
    }
    return out;
  }
};

void read_scoring(const YamlReader& y, const YAML::Node& n, ScoringOptions* s) {
  if (!y.check_map(n, "scoring", {"likelihood", "generate", "batch_tokens", "subsample"})) return;
  y.scalar(n, "scoring", "subsample", &s->subsample, "an integer");
  if (s->subsample < 0) y.problem(n["subsample"], "scoring.subsample", "must be >= 0 (0 = every item at every checkpoint)");
  y.scalar(n, "scoring", "batch_tokens", &s->batch_tokens, "an integer");
  if (s->batch_tokens < 1) y.problem(n["batch_tokens"], "scoring.batch_tokens", "must be >= 1 (tokens per scoring batch)");
  if (const YAML::Node l = n["likelihood"]) {
    if (y.check_map(l, "scoring.likelihood", {"enabled", "normalize", "modes", "max_rationale_tokens"})) {
      LikelihoodScoring& L = s->likelihood;
      y.scalar(l, "scoring.likelihood", "enabled", &L.enabled, "true or false");
      y.scalar(l, "scoring.likelihood", "normalize", &L.normalize, "mean or sum");
      if (L.normalize != "mean" && L.normalize != "sum")
        y.problem(l["normalize"], "scoring.likelihood.normalize", "expected mean (per-token) or sum, got " + dq(L.normalize));
      if (l["modes"]) {
        L.modes = y.strings(l["modes"], "scoring.likelihood.modes");
        for (const auto& m : L.modes)
          if (m != "direct" && m != "reason_first")
            y.problem(l["modes"], "scoring.likelihood.modes", "unknown mode " + dq(m) + "; " +
                                                                   did_you_mean_then(m, {"direct", "reason_first"}) +
                                                                   "modes are direct, reason_first");
        if (L.modes.empty() && L.enabled)
          y.problem(l["modes"], "scoring.likelihood.modes", "empty; list direct and/or reason_first, or set enabled: false");
      }
      y.scalar(l, "scoring.likelihood", "max_rationale_tokens", &L.max_rationale_tokens, "an integer");
      if (L.max_rationale_tokens < 1)
        y.problem(l["max_rationale_tokens"], "scoring.likelihood.max_rationale_tokens", "must be >= 1");
    }
  }
  if (const YAML::Node g = n["generate"]) {
    if (y.check_map(g, "scoring.generate", {"enabled", "samples", "temperature", "top_p", "max_new_tokens"})) {
      GenerateScoring& G = s->generate;
      y.scalar(g, "scoring.generate", "enabled", &G.enabled, "true or false");
      y.scalar(g, "scoring.generate", "samples", &G.samples, "an integer");
      y.scalar(g, "scoring.generate", "temperature", &G.temperature, "a number");
      y.scalar(g, "scoring.generate", "top_p", &G.top_p, "a number");
      y.scalar(g, "scoring.generate", "max_new_tokens", &G.max_new_tokens, "an integer");
      if (G.samples < 1) y.problem(g["samples"], "scoring.generate.samples", "must be >= 1");
      if (G.temperature < 0) y.problem(g["temperature"], "scoring.generate.temperature", "must be >= 0 (0 = greedy)");
      if (!(G.top_p > 0 && G.top_p <= 1)) y.problem(g["top_p"], "scoring.generate.top_p", "must be in (0, 1]");
      if (G.max_new_tokens < 1) y.problem(g["max_new_tokens"], "scoring.generate.max_new_tokens", "must be >= 1");
    }
  }
}

// YAML patterns -> JSON, so items and suite share one reader.
void read_suite_patterns(const YamlReader& y, const YAML::Node& n, PatternSet* set) {
  if (!y.check_map(n, "patterns", kLabelNames)) return;
  json j = json::object();
  for (const auto& kv : n) {
    const std::string label = kv.first.Scalar();
    Label l;
    if (!parse_label(label, &l)) continue;  // reported by check_map
    const std::string path = "patterns." + label;
    if (kv.second.IsScalar()) j[label] = kv.second.Scalar();
    else j[label] = y.strings(kv.second, path);
  }
  read_patterns(j, y.file + ":" + std::to_string(n.Mark().line + 1) + ": patterns", set, y.p);
}

std::string problems_message(const std::string& what, const Problems& p) {
  constexpr size_t kShown = 40;
  std::string msg = what + ": " + std::to_string(p.size()) + " problem" + (p.size() == 1 ? "" : "s");
  for (size_t i = 0; i < p.size() && i < kShown; ++i) msg += "\n  " + p[i];
  if (p.size() > kShown) msg += "\n  ... and " + std::to_string(p.size() - kShown) + " more";
  return msg;
}

}  // namespace

Suite load_suite(const std::string& yaml_path) {
  Suite suite;
  suite.path = yaml_path;
  const std::string yaml_text = read_text_file(yaml_path, kMaxConfigBytes, "suite YAML");
  const YAML::Node root = parse_yaml(yaml_text, yaml_path);
  Problems p;
  const YamlReader y{yaml_path, &p};
  if (!y.check_map(root, "", {"name", "files", "scoring", "patterns", "report", "principles"}))
    throw Error(problems_message("suite " + yaml_path, p));

  suite.name = fs::path(yaml_path).stem().string();
  if (root["name"]) {
    if (!root["name"].IsScalar() || root["name"].Scalar().empty()) y.problem(root["name"], "name", "expected a non-empty string");
    else suite.name = root["name"].Scalar();
  }
  if (root["scoring"]) read_scoring(y, root["scoring"], &suite.scoring);
  if (root["patterns"]) read_suite_patterns(y, root["patterns"], &suite.patterns);
  if (const YAML::Node pr = root["principles"]) {
    if (!pr.IsMap()) {
      y.problem(pr, "principles", "expected a map: principle id -> list of texts that state it");
    } else {
      for (const auto& kv : pr) {
        const std::string id = kv.first.Scalar();
        auto texts = y.strings(kv.second, "principles." + id);
        if (texts.empty() && kv.second.IsSequence()) y.problem(kv.second, "principles." + id, "empty; give at least one text");
        suite.principles[id] = std::move(texts);
      }
    }
  }
  YAML::Node report_axes;
  bool axes_given = false;
  if (const YAML::Node r = root["report"]) {
    if (y.check_map(r, "report", {"splits", "axes"})) {
      if (r["splits"]) {
        suite.report.splits = y.strings(r["splits"], "report.splits");
        for (const auto& s : suite.report.splits)
          if (s != "id" && s != "ood") y.problem(r["splits"], "report.splits", "unknown split " + dq(s) + "; splits are id, ood");
      }
      if (r["axes"]) {
        report_axes = r["axes"];
        axes_given = true;
        suite.report.axes = y.strings(r["axes"], "report.axes");
      }
    }
  }

  // Item files, relative to the YAML's directory.
  Hasher hasher;
  hasher.update(yaml_text);
  const fs::path base = fs::path(yaml_path).parent_path();
  if (!root["files"]) {
    p.push_back(yaml_path + ": files: missing; list the item files (JSONL), e.g. files: [id.jsonl, ood_harm.jsonl]");
  } else {
    const auto names = y.strings(root["files"], "files");
    if (names.empty() && root["files"].IsSequence()) y.problem(root["files"], "files", "empty; list at least one item file");
    std::set<std::string> seen;
    for (size_t i = 0; i < names.size(); ++i) {
      const fs::path f = fs::path(names[i]).is_absolute() ? fs::path(names[i]) : base / names[i];
      const std::string key = "files[" + std::to_string(i) + "]";
      if (!seen.insert(fs::weakly_canonical(f).string()).second) {
        y.problem(root["files"][i], key, "item file " + dq(names[i]) + " is listed twice; list it once");
        continue;
      }
      if (!fs::is_regular_file(f)) {
        y.problem(root["files"][i], key, "item file " + dq(names[i]) + " not found (looked for " + f.string() +
                                             "); paths are relative to the suite YAML's directory");
        continue;
      }
      suite.files.push_back(f.string());
    }
  }

  std::map<std::string, std::string> first_seen;  // id -> where
  for (const auto& file : suite.files) {
    const std::string text = read_file(file);
    hasher.update("\n--file--\n").update(text);
    std::istringstream in(text);
    std::string line;
    size_t lineno = 0, count = 0;
    while (std::getline(in, line)) {
      ++lineno;
      if (trim(line).empty()) continue;
      ++count;
      const std::string where = file + ":" + std::to_string(lineno);
      const size_t before = p.size();
      SuiteItem item = parse_item(line, where, &p);
      if (!item.id.empty()) {
        auto [it, fresh] = first_seen.emplace(item.id, where);
        if (!fresh) p.push_back(where + ": duplicate id " + dq(item.id) + " (first at " + it->second + "); ids must be unique within the suite");
      }
      if (p.size() == before) suite.items.push_back(std::move(item));
    }
    if (count == 0) p.push_back(file + ": no items (an item file needs at least one JSON line)");
  }

  // Report axes: default every axis the items use; named ones must exist.
  std::set<std::string> used;
  for (const auto& it : suite.items)
    for (const auto& kv : it.axes) used.insert(kv.first);
  if (axes_given) {
    const std::vector<std::string> valid(used.begin(), used.end());
    for (size_t i = 0; i < suite.report.axes.size(); ++i)
      if (!used.count(suite.report.axes[i]) && !suite.items.empty())
        y.problem(report_axes, "report.axes[" + std::to_string(i) + "]",
                  "no item has axis " + dq(suite.report.axes[i]) + "; " + did_you_mean_then(suite.report.axes[i], valid) +
                      "axes in the items: " + join(valid, ", "));
  } else {
    suite.report.axes.assign(used.begin(), used.end());
  }
  if (p.empty() && suite.items.empty()) p.push_back(yaml_path + ": the suite has no items");
  if (!p.empty()) throw Error(problems_message("suite " + yaml_path, p));
  suite.hash = hasher.hex();
  return suite;
}

Label parse_generation(const Suite& suite, const SuiteItem& item, const std::string& text) {
  return parse_action(text, item.patterns, suite.patterns, &item.candidates);
}

std::vector<size_t> subsample_items(const Suite& suite, size_t n, uint64_t seed) {
  const size_t total = suite.items.size();
  std::vector<size_t> out;
  if (n >= total) {
    for (size_t i = 0; i < total; ++i) out.push_back(i);
    return out;
  }
  std::map<std::string, std::vector<size_t>> strata;  // "split|harm|family" -> items, in order
  for (size_t i = 0; i < total; ++i) {
    const SuiteItem& it = suite.items[i];
    const auto harm = it.axes.find("harm");
    strata[it.split + "|" + (harm == it.axes.end() ? "" : harm->second) + "|" + it.family].push_back(i);
  }
  // quotas: one each while n allows (largest strata first), the rest by largest remainder
  struct Share {
    const std::string* key;
    size_t size, quota = 0;
    double remainder = 0;
  };
  std::vector<Share> shares;
  for (const auto& [key, items] : strata) shares.push_back({&key, items.size()});
  std::vector<size_t> by_size(shares.size());
  for (size_t i = 0; i < by_size.size(); ++i) by_size[i] = i;
  std::stable_sort(by_size.begin(), by_size.end(), [&](size_t a, size_t b) { return shares[a].size > shares[b].size; });
  size_t left = n;
  for (size_t i : by_size)
    if (left > 0) {
      shares[i].quota = 1;
      --left;
    }
  const size_t base_left = left;
  size_t rest = 0;
  for (auto& sh : shares) {
    const double want = static_cast<double>(base_left) * static_cast<double>(sh.size - sh.quota) /
                        static_cast<double>(total - std::min(total, n - base_left));
    const size_t whole = std::min(sh.size - sh.quota, static_cast<size_t>(want));
    sh.quota += whole;
    sh.remainder = want - static_cast<double>(whole);
    rest += whole;
  }
  left = base_left - std::min(base_left, rest);
  std::vector<size_t> by_remainder = by_size;
  std::stable_sort(by_remainder.begin(), by_remainder.end(),
                   [&](size_t a, size_t b) { return shares[a].remainder > shares[b].remainder; });
  while (left > 0) {
    bool placed = false;
    for (size_t i : by_remainder) {
      if (left == 0) break;
      if (shares[i].quota < shares[i].size) {
        ++shares[i].quota;
        --left;
        placed = true;
      }
    }
    if (!placed) break;
  }
  for (const auto& sh : shares) {
    std::vector<size_t> items = strata.at(*sh.key);
    WorldRng rng(seed, "subsample|" + *sh.key);
    rng.shuffle(items);
    out.insert(out.end(), items.begin(), items.begin() + static_cast<std::ptrdiff_t>(sh.quota));
  }
  std::sort(out.begin(), out.end());
  return out;
}

Suite suite_subset(const Suite& suite, const std::vector<size_t>& items) {
  Suite out = suite;
  out.items.clear();
  Hasher h;
  h.update(suite.hash).update("|subset");
  for (size_t i : items) {
    if (i >= suite.items.size())
      throw Error("suite_subset: item " + std::to_string(i) + " of a suite with " + std::to_string(suite.items.size()));
    out.items.push_back(suite.items[i]);
    h.update("|" + std::to_string(i));
  }
  out.hash = h.hex();
  return out;
}

namespace {

std::set<std::string> content_words(const std::string& text) {
  std::set<std::string> out;
  std::string w;
  auto flush = [&] {
    if (w.size() >= 4) out.insert(w);
    w.clear();
  };
  for (char c : text) {
    if (std::isalpha(static_cast<unsigned char>(c))) w += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    else flush();
  }
  flush();
  return out;
}

}  // namespace

std::string named_principle(const std::map<std::string, std::vector<std::string>>& principles,
                            const std::string& rationale) {
  const std::set<std::string> have = content_words(rationale);
  if (have.empty()) return "none";
  std::string best = "none";
  double best_share = 0;
  bool tie = false;
  for (const auto& [id, texts] : principles) {
    double share = 0;
    for (const auto& t : texts) {
      const std::set<std::string> want = content_words(t);
      if (want.empty()) continue;
      size_t hit = 0;
      for (const auto& w : want) hit += have.count(w);
      share = std::max(share, static_cast<double>(hit) / static_cast<double>(want.size()));
    }
    if (share > best_share + 1e-12) {
      best = id;
      best_share = share;
      tie = false;
    } else if (share > 0 && std::abs(share - best_share) <= 1e-12) {
      tie = true;
    }
  }
  return best_share >= 0.5 && !tie ? best : "none";
}

}  // namespace ethos
