// YamlAt: typed access to YAML with file:line and key-path error messages.
#include "datasets/base/yaml.h"

#include <cerrno>
#include <cstdlib>

#include "datasets/base/limits.h"
#include "datasets/base/util.h"

namespace ethos {
namespace {

std::string join_path(const std::string& base, const std::string& key) { return base.empty() ? key : base + "." + key; }

int line_of(const YAML::Node& n, int fallback) {
  const YAML::Mark m = n.Mark();
  return m.line >= 0 ? m.line + 1 : fallback;
}

}  // namespace

// Walks the document as its readers will, aliases expanded, with a budget: anchors and aliases
// let a few lines stand for billions of nodes (or a cycle), and every reader copies what it walks.
void check_yaml_expansion(const YAML::Node& root, const std::string& file) {
  const uint64_t max_nodes = limit_value(kMaxYamlNodes), max_depth = limit_value(kMaxNestingDepth);
  std::vector<std::pair<YAML::Node, uint64_t>> todo{{root, 1}};
  uint64_t nodes = 0;
  while (!todo.empty()) {
    auto [n, depth] = todo.back();
    todo.pop_back();
    if (++nodes > max_nodes)
      throw Error(file + ":" + std::to_string(line_of(n, 1)) + ": the YAML document expands to more than " +
                  std::to_string(max_nodes) + " nodes once its aliases (*name) are followed (" + limit_hint(kMaxYamlNodes) +
                  "); an alias of an alias of a list multiplies, so check the anchors (&name) near this line");
    if (depth > max_depth)
      throw Error(file + ":" + std::to_string(line_of(n, 1)) + ": YAML nested more than " + std::to_string(max_depth) +
                  " levels deep, or an alias (*name) sits inside its own anchor (&name) (" +
                  limit_hint(kMaxNestingDepth) + ")");
    if (n.IsMap()) {
      for (const auto& kv : n) {
        todo.emplace_back(kv.first, depth + 1);
        todo.emplace_back(kv.second, depth + 1);
      }
    } else if (n.IsSequence()) {
      for (const auto& item : n) todo.emplace_back(item, depth + 1);
    }
  }
}

YAML::Node parse_yaml(const std::string& text, const std::string& file) {
  const uint64_t max_bytes = limit_value(kMaxConfigBytes);
  if (text.size() > max_bytes)
    throw Error(file + ": YAML text of " + human_bytes(text.size()) + " is longer than a configuration should be (" +
                limit_hint(kMaxConfigBytes) + ")");
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    throw Error(file + ":" + std::to_string(e.mark.line + 1) + ": YAML syntax error at column " +
                std::to_string(e.mark.column + 1) + ": " + e.msg);
  }
  check_yaml_expansion(root, file);
  return root;
}

YAML::Node load_yaml_file(const std::string& path) {
  return parse_yaml(read_text_file(path, kMaxConfigBytes, "YAML file"), path);
}

YamlAt::YamlAt(YAML::Node node, std::string file, std::string path, int line)
    : node_(std::move(node)), file_(std::move(file)), path_(std::move(path)), line_(line) {}

YamlAt YamlAt::load_file(const std::string& path) {
  const YAML::Node root = load_yaml_file(path);
  return YamlAt(root, path, "", line_of(root, 1));
}

std::string YamlAt::where() const { return file_ + ":" + std::to_string(line_) + ": " + (path_.empty() ? "(top level)" : path_); }

void YamlAt::fail(const std::string& what) const { throw Error(where() + ": " + what); }

bool YamlAt::has(const std::string& key) const { return node_.IsMap() && node_[key]; }

bool YamlAt::is_null() const { return node_.IsNull(); }

std::optional<YamlAt> YamlAt::find(const std::string& key) const {
  if (node_.IsNull()) return std::nullopt;
  if (!node_.IsMap()) fail("expected a map (key: value lines), got " + std::string(node_.IsSequence() ? "a list" : "a scalar"));
  const YAML::Node child = node_[key];
  if (!child) return std::nullopt;
  return YamlAt(child, file_, join_path(path_, key), line_of(child, line_));
}

YamlAt YamlAt::at(const std::string& key) const {
  auto c = find(key);
  if (!c) fail("missing key \"" + key + "\"");
  return *c;
}

std::vector<std::pair<std::string, YamlAt>> YamlAt::entries() const {
  auto out = entries_or_none();
  if (out.empty()) fail("empty map; give at least one entry (or remove the key)");
  return out;
}

std::vector<std::pair<std::string, YamlAt>> YamlAt::entries_or_none() const {
  if (node_.IsNull()) return {};
  if (!node_.IsMap()) fail("expected a map (key: value lines)");
  std::vector<std::pair<std::string, YamlAt>> out;
  for (const auto& kv : node_) {
    // A key that is itself a list or map ("? [a, b]: v", "{a: 1}: v") names nothing here (found by tests/fuzz).
    if (!kv.first.IsScalar())
      YamlAt(kv.first, file_, path_, line_of(kv.first, line_)).fail("a map key must be a plain name, not a list or map");
    const std::string key = kv.first.Scalar();
    out.emplace_back(key, YamlAt(kv.second, file_, join_path(path_, key), line_of(kv.first, line_)));
  }
  return out;
}

std::vector<YamlAt> YamlAt::items() const {
  if (!node_.IsSequence()) fail("expected a list ([a, b] or lines starting with -)");
  if (node_.size() == 0) fail("empty list; give at least one entry (or remove the key)");
  std::vector<YamlAt> out;
  for (size_t i = 0; i < node_.size(); ++i)
    out.emplace_back(node_[i], file_, path_ + "[" + std::to_string(i) + "]", line_of(node_[i], line_));
  return out;
}

std::string YamlAt::text() const {
  if (!node_.IsScalar()) fail("expected a text value");
  const std::string s = node_.as<std::string>();
  if (trim(s).empty()) fail("empty text");
  return s;
}

std::vector<std::string> YamlAt::texts() const {
  std::vector<std::string> out;
  for (const auto& item : items()) out.push_back(item.text());
  return out;
}

double YamlAt::number() const {
  const std::string s = text();
  char* end = nullptr;
  errno = 0;
  const double v = std::strtod(s.c_str(), &end);
  if (errno || end == s.c_str() || *end) fail("expected a number, got \"" + s + "\"");
  return v;
}

long YamlAt::integer() const {
  const std::string s = text();
  char* end = nullptr;
  errno = 0;
  const long v = std::strtol(s.c_str(), &end, 10);
  if (errno || end == s.c_str() || *end) fail("expected a whole number, got \"" + s + "\"");
  return v;
}

bool YamlAt::flag() const {
  const std::string s = text();
  if (s == "true" || s == "on" || s == "yes") return true;
  if (s == "false" || s == "off" || s == "no") return false;
  fail("expected true or false, got \"" + s + "\"");
}

void YamlAt::only_keys(const std::vector<std::string>& allowed) const {
  for (const auto& [key, child] : entries_or_none()) {
    bool ok = false;
    for (const auto& a : allowed) ok = ok || a == key;
    if (ok) continue;
    child.fail("unknown key" + in_parens(did_you_mean(key, allowed)) + "; valid keys here: " + join(allowed));
  }
}

}  // namespace ethos
