// Template parsing, checking and rendering (syntax in template.h).
#include "datasets/world/template.h"

#include <algorithm>
#include <cctype>

#include "datasets/base/util.h"
#include "datasets/world/text.h"

namespace ethos {
namespace {

bool valid_name(const std::string& n) {
  if (n.empty() || !(std::isalpha(static_cast<unsigned char>(n[0])) || n[0] == '_')) return false;
  return std::all_of(n.begin(), n.end(), [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; });
}

std::string key_of(const std::string& name) {  // {Ai} -> ai
  std::string k = name;
  if (!k.empty()) k[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(k[0])));
  return k;
}

}  // namespace

Template Template::parse(const std::string& source, const std::string& where) {
  Template t;
  t.source_ = source;
  t.where_ = where;
  auto fail = [&](const std::string& msg) {
    throw Error(where + ": " + msg + " in template \"" + source +
                "\" (syntax: {variable}, [option a|option b]; { } [ ] are not allowed as literal text)");
  };
  std::vector<Seg>* cur = &t.segs_;   // where segments go: the top level or the current option
  Seg* choice = nullptr;               // the open [..], if any
  std::string lit;
  auto flush = [&] {
    if (lit.empty()) return;
    Seg s;
    s.text = lit;
    cur->push_back(s);
    lit.clear();
  };
  for (size_t i = 0; i < source.size(); ++i) {
    const char c = source[i];
    if (c == '{') {
      const size_t close = source.find('}', i);
      if (close == std::string::npos) fail("unclosed {");
      const std::string name = source.substr(i + 1, close - i - 1);
      if (!valid_name(name)) fail("bad variable name {" + name + "}");
      flush();
      Seg s;
      s.kind = Seg::variable;
      s.text = name;
      cur->push_back(s);
      i = close;
    } else if (c == '}') {
      fail("stray }");
    } else if (c == '[') {
      if (choice) fail("nested [ (alternatives cannot contain further [..])");
      flush();
      Seg s;
      s.kind = Seg::choice;
      s.options.emplace_back();
      t.segs_.push_back(s);
      choice = &t.segs_.back();
      cur = &choice->options.back();
    } else if (c == '|' && choice) {
      flush();
      choice->options.emplace_back();
      cur = &choice->options.back();
    } else if (c == ']') {
      if (!choice) fail("stray ]");
      flush();
      choice = nullptr;
      cur = &t.segs_;
    } else {
      lit += c;
    }
  }
  if (choice) fail("unclosed [");
  flush();
  return t;
}

void Template::collect(const std::vector<Seg>& segs, std::vector<std::string>& out) {
  for (const Seg& s : segs) {
    if (s.kind == Seg::variable) {
      const std::string k = key_of(s.text);
      if (std::find(out.begin(), out.end(), k) == out.end()) out.push_back(k);
    } else if (s.kind == Seg::choice) {
      for (const auto& o : s.options) collect(o, out);
    }
  }
}

std::vector<std::string> Template::variables() const {
  std::vector<std::string> out;
  collect(segs_, out);
  return out;
}

void Template::check(const std::set<std::string>& allowed, const std::string& context) const {
  for (const std::string& v : variables()) {
    if (allowed.count(v)) continue;
    const std::vector<std::string> names(allowed.begin(), allowed.end());
    const std::string near = nearest(v, names);
    // A template variable is suggested as it is written, {name}, not quoted.
    throw Error(where_ + ": unknown template variable {" + v + "}" + in_parens(near.empty() ? "" : "did you mean {" + near + "}?") +
                " in \"" + source_ + "\". Variables available in " + context + ": " + join(names) +
                ". Fix the name, or add a pool of that name under pools:.");
  }
}

void Template::render_segs(const std::vector<Seg>& segs, const Vars& vars, WorldRng& rng, const std::string& where,
                           std::string& out) {
  for (const Seg& s : segs) {
    switch (s.kind) {
      case Seg::literal: out += s.text; break;
      case Seg::variable: {
        auto it = vars.find(key_of(s.text));
        if (it == vars.end())
          throw Error(where + ": template variable {" + s.text + "} has no value where this template is used");
        out += std::isupper(static_cast<unsigned char>(s.text[0])) ? capitalize(it->second) : it->second;
        break;
      }
      case Seg::choice: render_segs(s.options[rng.below(s.options.size())], vars, rng, where, out); break;
    }
  }
}

std::string Template::render(const Vars& vars, WorldRng& rng) const {
  std::string out;
  render_segs(segs_, vars, rng, where_, out);
  return out;
}

}  // namespace ethos
