// A YAML node that knows where it was written (file, line, key path), so every problem in a
// world file is reported as "file:line: key.path: what is wrong, and how to fix it".
#pragma once
#include <yaml-cpp/yaml.h>

#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace ethos {

// The one way ethos parses YAML text: a syntax error becomes an Error worded the same for every
// file kind, "file:line: YAML syntax error at column C: what yaml-cpp saw".
YAML::Node parse_yaml(const std::string& text, const std::string& file);
YAML::Node load_yaml_file(const std::string& path);
// Errors (naming `file` and the line) when the document, its aliases followed, has more nodes than
// kMaxYamlNodes or nests deeper than kMaxNestingDepth (datasets/base/limits.h). parse_yaml runs it;
// code that calls YAML::Load itself (command-line values) runs it on what it parsed.
void check_yaml_expansion(const YAML::Node& root, const std::string& file);  // read_file (Error names a missing path) + parse_yaml

class YamlAt {
 public:
  YamlAt(YAML::Node node, std::string file, std::string path, int line);
  // Parses a file; a syntax error is an Error naming file:line.
  static YamlAt load_file(const std::string& path);

  const std::string& file() const { return file_; }
  const std::string& path() const { return path_; }  // key path, e.g. harms.blackmail.aligned[1]
  int line() const { return line_; }
  std::string where() const;                         // "file:line: path"
  [[noreturn]] void fail(const std::string& what) const;

  bool is_map() const { return node_.IsMap(); }
  bool is_list() const { return node_.IsSequence(); }
  bool is_scalar() const { return node_.IsScalar(); }
  bool is_null() const;
  bool has(const std::string& key) const;
  YamlAt at(const std::string& key) const;                  // required key
  std::optional<YamlAt> find(const std::string& key) const;  // optional key
  // Map entries in file order. Fails unless this is a map; fails on an empty map.
  std::vector<std::pair<std::string, YamlAt>> entries() const;
  // The same, but null or {} give no entries instead of an error.
  std::vector<std::pair<std::string, YamlAt>> entries_or_none() const;
  // List items. Fails unless this is a list; an empty list is an error (omit the key instead).
  std::vector<YamlAt> items() const;
  std::string text() const;                 // a non-empty scalar
  std::vector<std::string> texts() const;   // a non-empty list of non-empty scalars
  double number() const;
  long integer() const;
  bool flag() const;
  // Fails on the first key not in `allowed`, naming the nearest valid key.
  void only_keys(const std::vector<std::string>& allowed) const;

 private:
  YAML::Node node_;
  std::string file_, path_;
  int line_;
};

}  // namespace ethos
