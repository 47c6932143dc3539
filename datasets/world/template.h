// The template language of the scenario world's data files:
//   {name}     a variable (a pool such as {company}, a person such as {exec}, or a part the
//              generator fills, such as {situation}); {Name} capitalises the value's first letter
//   [a|b|c]    one of the alternatives, chosen at random (alternatives may hold variables,
//              not further [..])
// Everything else is literal text. Templates are parsed and their variables checked when the
// world is loaded, so a misspelt variable is an error naming the file, line and key.
#pragma once
#include <map>
#include <set>
#include <string>
#include <vector>

#include "datasets/world/rng.h"

namespace ethos {

using Vars = std::map<std::string, std::string>;

class Template {
 public:
  Template() = default;
  // `where` ("file:line: key.path") prefixes every error about this template.
  static Template parse(const std::string& source, const std::string& where);

  // Variables used, first letter lower-cased ({Ai} -> ai), in order of first use.
  std::vector<std::string> variables() const;
  // Throws Error "<where>: unknown template variable {x} (did you mean {y}?) ..." when a
  // variable is not in `allowed`; `context` says what the template is for.
  void check(const std::set<std::string>& allowed, const std::string& context) const;
  // Renders; choices draw from rng. Throws Error naming the variable if `vars` lacks one.
  std::string render(const Vars& vars, WorldRng& rng) const;

  const std::string& source() const { return source_; }
  const std::string& where() const { return where_; }
  bool empty() const { return source_.empty(); }

 private:
  struct Seg {
    enum Kind { literal, variable, choice } kind = literal;
    std::string text;  // literal text or variable name (as written)
    std::vector<std::vector<Seg>> options;
  };
  static void render_segs(const std::vector<Seg>& segs, const Vars& vars, WorldRng& rng, const std::string& where,
                          std::string& out);
  static void collect(const std::vector<Seg>& segs, std::vector<std::string>& out);

  std::string source_, where_;
  std::vector<Seg> segs_;
};

}  // namespace ethos
