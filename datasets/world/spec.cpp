// Loading and checking a scenario world (spec.h). Every error names the file, line and
// key path, and says how to fix it.
#include "datasets/world/spec.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <regex>
#include <set>

#include "datasets/base/util.h"
#include "datasets/world/text.h"
#include "datasets/base/yaml.h"

namespace fs = std::filesystem;

namespace ethos {

const std::vector<std::string> kWorldAxes = {"harm", "pressure", "goal", "format", "family", "ai_name"};
const std::vector<std::string> kPersonVars = {"exec", "colleague", "lead", "user", "other", "person"};

namespace {

const std::vector<std::string> kSections = {"pools",    "ai_names", "principles", "harms", "pressures",
                                            "goals",    "formats",  "families",   "texts", "long",
                                            "qa",       "corpus",   "suite_patterns"};
const std::vector<std::string> kLabels = {"aligned", "misaligned", "refusal", "off_task"};

std::set<std::string> with(std::set<std::string> base, std::initializer_list<const char*> extra) {
  for (const char* e : extra) base.insert(e);
  return base;
}

// Relative paths in a world file are relative to that file's directory.
std::string resolve(const std::string& from_file, const std::string& rel) {
  fs::path p(rel);
  if (p.is_absolute()) return rel;
  return (fs::path(from_file).parent_path() / p).lexically_normal().string();
}

// ---- collecting the data files' sections ----------------------------------------------------

// Section -> its entries across every data file, in load order; duplicates are errors.
struct Sections {
  std::map<std::string, std::vector<std::pair<std::string, YamlAt>>> entries;

  void add(const YamlAt& file_root) {
    for (const auto& [section, node] : file_root.entries()) {
      if (std::find(kSections.begin(), kSections.end(), section) == kSections.end()) {
        node.fail("unknown section" + in_parens(did_you_mean(section, kSections)) +
                  "; data files hold these sections: " + join(kSections));
      }
      auto& list = entries[section];
      for (const auto& [key, child] : node.entries()) {
        for (const auto& [k2, other] : list)
          if (k2 == key) child.fail("defined twice: also at " + other.where() + " (keep one)");
        list.emplace_back(key, child);
      }
    }
  }
  const std::vector<std::pair<std::string, YamlAt>>& of(const std::string& section) const {
    static const std::vector<std::pair<std::string, YamlAt>> none;
    auto it = entries.find(section);
    return it == entries.end() ? none : it->second;
  }
};

// Looks up the fields of a merged section (texts, long, qa, corpus).
class Fields {
 public:
  Fields(const Sections& s, std::string section, std::string world_file)
      : list_(s.of(section)), section_(std::move(section)), world_(std::move(world_file)) {}
  std::optional<YamlAt> find(const std::string& key) const {
    for (const auto& [k, v] : list_)
      if (k == key) return v;
    return std::nullopt;
  }
  YamlAt at(const std::string& key) const {
    if (auto v = find(key)) return *v;
    throw Error(world_ + ": data section " + section_ + "." + key +
                " is missing: define it under \"" + section_ + ":\" in one of the world's data files");
  }
  void only(const std::vector<std::string>& allowed) const {
    for (const auto& [k, v] : list_)
      if (std::find(allowed.begin(), allowed.end(), k) == allowed.end()) {
        v.fail("unknown key" + in_parens(did_you_mean(k, allowed)) + "; valid keys under " +
               section_ + ": " + join(allowed));
      }
  }

 private:
  const std::vector<std::pair<std::string, YamlAt>>& list_;
  std::string section_, world_;
};

// ---- typed parsing ---------------------------------------------------------------------------

struct Parser {
  std::set<std::string> base;  // variables every template may use
  // The source of every template that may write training text (the vocabulary eval wordings
  // must stay inside); texts parsed while eval_only is set are not recorded.
  mutable std::vector<std::string> training_sources;
  mutable bool eval_only = false;

  Template tmpl(const YamlAt& n, const std::set<std::string>& allowed, const std::string& context) const {
    Template t = Template::parse(n.text(), n.where());
    t.check(allowed, context);
    if (!eval_only) training_sources.push_back(n.text());
    return t;
  }
  // Texts only the eval suites use (not part of the training vocabulary).
  std::vector<Template> eval_tmpls(const YamlAt& n) const {
    eval_only = true;
    std::vector<Template> out = tmpls(n);
    eval_only = false;
    return out;
  }
  Template tmpl(const YamlAt& n) const { return tmpl(n, base, "this text"); }
  std::vector<Template> tmpls(const YamlAt& n, const std::set<std::string>& allowed, const std::string& context) const {
    std::vector<Template> out;
    if (n.is_scalar()) {
      out.push_back(tmpl(n, allowed, context));
      return out;
    }
    for (const auto& item : n.items()) out.push_back(tmpl(item, allowed, context));
    return out;
  }
  std::vector<Template> tmpls(const YamlAt& n) const { return tmpls(n, base, "this text"); }

  WorldPiece piece(const YamlAt& n) const {
    n.only_keys({"from", "text", "subject"});
    WorldPiece p;
    p.from = tmpl(n.at("from"));
    p.text = tmpl(n.at("text"));
    if (auto s = n.find("subject")) p.subject = tmpl(*s);
    return p;
  }
  std::vector<WorldPiece> pieces(const YamlAt& n) const {
    std::vector<WorldPiece> out;
    for (const auto& item : n.items()) out.push_back(piece(item));
    return out;
  }

  // label -> regexes; every regex must compile (ECMAScript, case-insensitive, as the scorer uses them)
  static std::vector<std::string> regexes(const YamlAt& list) {
    std::vector<std::string> res;
    for (const auto& item : list.items()) {
      const std::string re = item.text();
      try {
        std::regex compiled(re, std::regex::ECMAScript | std::regex::icase);
      } catch (const std::regex_error& e) {
        item.fail("not a valid ECMAScript regular expression: \"" + re + "\" (" + e.what() + ")");
      }
      res.push_back(re);
    }
    return res;
  }
  static void check_label(const std::string& label, const YamlAt& node) {
    if (std::find(kLabels.begin(), kLabels.end(), label) == kLabels.end())
      node.fail("unknown label; patterns are given per label: " + join(kLabels));
  }
  PatternMap patterns(const YamlAt& n) const {
    PatternMap out;
    for (const auto& [label, list] : n.entries()) {
      check_label(label, list);
      out.emplace_back(label, regexes(list));
    }
    return out;
  }

  std::vector<std::string> markers(const YamlAt& parent) const {
    if (auto m = parent.find("markers")) return m->texts();
    return {};
  }

  // `key`'s eval wording (eval_<key>): required wherever the training wording is given.
  std::vector<Template> eval_wording(const YamlAt& n, const std::string& key) const {
    const std::string ek = "eval_" + key;
    if (!n.has(ek))
      n.fail("missing key \"" + ek + "\": the eval suites score the " + key +
             " action in other words than training uses (so they measure a disposition, not the memory of a phrase); "
             "give one or more paraphrases of \"" + key + "\" that no training text contains");
    return eval_tmpls(n.at(ek));
  }

  HarmSide side(const YamlAt& n, bool benign) const {
    n.only_keys({"pieces", "aligned", "misaligned", "refusal", "eval_aligned", "eval_misaligned", "eval_refusal", "human",
                 "patterns"});
    HarmSide s;
    s.pieces = pieces(n.at("pieces"));
    s.aligned = tmpls(n.at("aligned"));
    s.eval_aligned = eval_wording(n, "aligned");
    if (!benign || n.has("misaligned")) {
      s.misaligned = tmpls(n.at("misaligned"));
      s.eval_misaligned = eval_wording(n, "misaligned");
    } else if (n.has("eval_misaligned")) {
      n.at("eval_misaligned").fail("eval_misaligned without misaligned: give the training wording too");
    }
    if (auto r = n.find("refusal")) {
      s.refusal = tmpls(*r);
      s.eval_refusal = eval_wording(n, "refusal");
    }
    s.human = tmpls(n.at("human"));
    if (auto p = n.find("patterns")) s.patterns = patterns(*p);
    return s;
  }
};

WorldKnobs parse_knobs(const YamlAt& root, WorldKnobs k) {
  if (auto n = root.find("name")) k.name = n->text();
  if (auto p = root.find("prompt")) {
    p->only_keys({"max_words", "hard_max_words", "fillers_min", "fillers_max"});
    if (auto v = p->find("max_words")) k.max_prompt_words = static_cast<int>(v->integer());
    if (auto v = p->find("hard_max_words")) k.hard_max_prompt_words = static_cast<int>(v->integer());
    if (auto v = p->find("fillers_min")) k.fillers_min = static_cast<int>(v->integer());
    if (auto v = p->find("fillers_max")) k.fillers_max = static_cast<int>(v->integer());
    if (k.fillers_min < 0 || k.fillers_max < k.fillers_min) p->fail("need 0 <= fillers_min <= fillers_max");
    if (k.max_prompt_words < 20) p->fail("max_words must be >= 20");
    if (k.hard_max_prompt_words < k.max_prompt_words) p->fail("hard_max_words must be >= max_words");
  }
  auto share = [](const YamlAt& n) {
    const double v = n.number();
    if (v < 0 || v > 1) n.fail("a share must be between 0 and 1");
    return v;
  };
  auto positive = [](const YamlAt& n) {
    const long v = n.integer();
    if (v <= 0) n.fail("must be > 0");
    return v;
  };
  if (auto p = root.find("pretrain")) {
    p->only_keys({"words", "fiction_share", "fiction_chat_share", "principle_stories", "principle_story_share",
                  "principle_story_chat_share", "principle_story_rationale", "chat_share", "office_share",
                  "heldout_words"});
    if (auto v = p->find("words")) k.pretrain_words = positive(*v);
    if (auto v = p->find("fiction_share")) k.fiction_share = share(*v);
    if (auto v = p->find("fiction_chat_share")) k.fiction_chat_share = share(*v);
    if (auto v = p->find("principle_stories")) k.principle_stories = v->flag();
    if (auto v = p->find("principle_story_share")) k.principle_story_share = share(*v);
    if (auto v = p->find("principle_story_chat_share")) k.principle_story_chat_share = share(*v);
    if (auto v = p->find("principle_story_rationale")) {
      k.principle_story_rationale = v->flag();
      if (!k.principle_story_rationale && k.principle_story_chat_share < 1)
        v->fail("false needs principle_story_chat_share: 1 (the human stories' templates quote the principle; only "
                "the AI transcripts can go from the situation straight to the right action)");
    }
    if (auto v = p->find("chat_share")) k.chat_share = share(*v);
    if (auto v = p->find("office_share")) k.office_share = share(*v);
    if (auto v = p->find("heldout_words")) k.heldout_words = positive(*v);
    const double taken =
        k.fiction_share + (k.principle_stories ? k.principle_story_share : 0) + k.chat_share + k.office_share;
    if (taken > 1) p->fail("fiction_share + principle_story_share + chat_share + office_share exceed 1 (the rest is neutral text)");
  }
  if (auto a = root.find("alignment")) {
    a->only_keys({"budget_words", "tolerance", "benign_share", "rationale_share", "rationale_form", "r3_story_share"});
    if (auto v = a->find("budget_words")) k.budget_words = positive(*v);
    if (auto v = a->find("tolerance")) k.tolerance = share(*v);
    if (auto v = a->find("benign_share")) k.benign_share = share(*v);
    if (auto v = a->find("rationale_share")) {
      k.rationale_share = share(*v);
      if (k.rationale_share == 0) v->fail("must be > 0 (R2 without any rationale is R1)");
    }
    if (auto v = a->find("r3_story_share")) k.r3_story_share = share(*v);
    if (auto v = a->find("rationale_form")) {
      k.rationale_form = v->text();
      if (k.rationale_form != "rationale" && k.rationale_form != "constitution")
        v->fail("must be rationale (the principle's rationale paraphrases) or constitution (its constitution sentences)");
    }
  }
  if (auto e = root.find("eval")) {
    e->only_keys({"items_per_split", "benign_share", "qa_items_per_split", "chat_export", "test_group", "subsample"});
    if (auto v = e->find("items_per_split")) k.items_per_split = static_cast<int>(positive(*v));
    if (auto v = e->find("benign_share")) k.eval_benign_share = share(*v);
    if (auto v = e->find("qa_items_per_split")) k.qa_items_per_split = static_cast<int>(positive(*v));
    if (auto v = e->find("chat_export")) k.chat_export = v->flag();
    if (auto v = e->find("test_group")) k.test_group = v->flag();
    if (auto v = e->find("subsample")) {
      const long n = v->integer();
      if (n < 0) v->fail("must be >= 0 (0: every checkpoint scores the whole suite)");
      k.subsample = static_cast<int>(n);
    }
  }
  return k;
}

// The literal words of a template source (variables dropped, every alternative included).
std::vector<std::string> literal_words(const std::string& s) {
  std::string out;
  bool in_var = false;
  for (char c : s) {
    if (c == '{') in_var = true;
    else if (c == '}') in_var = false;
    else if (!in_var) out += (c == '[' || c == ']' || c == '|') ? ' ' : c;
  }
  return plain_words(out);
}
std::vector<std::string> literal_words(const Template& t) { return literal_words(t.source()); }

// The words of a template with each variable kept as one token ("{exec}"): what two wordings
// are compared by.
std::vector<std::string> wording_tokens(const Template& t) {
  std::string out;
  bool in_var = false;
  for (char c : t.source()) {
    if (c == '{') {
      in_var = true;
      out += " {";
    } else if (c == '}') {
      in_var = false;
      out += "} ";
    } else if (in_var) {
      out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    } else {
      out += (c == '[' || c == ']' || c == '|') ? ' ' : c;
    }
  }
  std::vector<std::string> toks;
  for (const auto& piece : split(out, ' ')) {
    if (piece.empty()) continue;
    if (piece.front() == '{') {
      toks.push_back(piece);
      continue;
    }
    for (auto& w : plain_words(piece)) toks.push_back(std::move(w));
  }
  return toks;
}

// The longest run of consecutive tokens two sequences share.
size_t longest_shared_run(const std::vector<std::string>& a, const std::vector<std::string>& b) {
  size_t best = 0;
  std::vector<size_t> prev(b.size() + 1, 0), cur(b.size() + 1, 0);
  for (size_t i = 1; i <= a.size(); ++i) {
    for (size_t j = 1; j <= b.size(); ++j) {
      cur[j] = a[i - 1] == b[j - 1] ? prev[j - 1] + 1 : 0;
      best = std::max(best, cur[j]);
    }
    std::swap(prev, cur);
  }
  return best;
}

// The mean, over `eval`, of the share of a wording's consecutive word pairs that also occur in
// some wording of `train` (names and variables count as one word): how close a copy a paraphrase is.
double wording_familiarity(const std::vector<Template>& eval, const std::vector<Template>& train) {
  std::set<std::pair<std::string, std::string>> known;
  for (const auto& t : train) {
    const auto toks = wording_tokens(t);
    for (size_t i = 0; i + 1 < toks.size(); ++i) known.emplace(toks[i], toks[i + 1]);
  }
  double sum = 0;
  for (const auto& t : eval) {
    const auto toks = wording_tokens(t);
    size_t pairs = 0, seen = 0;
    for (size_t i = 0; i + 1 < toks.size(); ++i, ++pairs) seen += known.count({toks[i], toks[i + 1]});
    sum += pairs ? static_cast<double>(seen) / static_cast<double>(pairs) : 0.0;
  }
  return eval.empty() ? 0.0 : sum / static_cast<double>(eval.size());
}

// The literal start of a template up to its first variable or choice (a leakage marker).
std::string literal_prefix(const Template& t) {
  const std::string& s = t.source();
  const size_t stop = s.find_first_of("{[");
  return trim(s.substr(0, stop));
}

}  // namespace

const AxisSplit& WorldSplits::axis(const std::string& name) const {
  for (const auto& a : axes)
    if (a.axis == name) return a;
  throw Error("no axis \"" + name + "\" in the splits (internal error)");
}

const Principle& World::principle(const std::string& id) const {
  for (const auto& p : principles)
    if (p.id == id) return p;
  throw Error("unknown principle \"" + id + "\" (internal error: load_world checks references)");
}

const Harm& World::harm(const std::string& id) const {
  for (const auto& h : harms)
    if (h.id == id) return h;
  throw Error("unknown harm type \"" + id + "\" (internal error: load_world checks references)");
}

const Pool* World::pool(const std::string& name) const {
  for (const auto& p : pools)
    if (p.name == name) return &p;
  return nullptr;
}

std::vector<std::string> World::all_names() const {
  std::vector<std::string> out;
  for (const auto& p : pools) out.insert(out.end(), p.values.begin(), p.values.end());
  for (const auto& s : ai_styles) out.insert(out.end(), s.names.begin(), s.names.end());
  return out;
}

std::vector<std::string> World::markers(const std::string& axis, const std::string& value) const {
  std::vector<std::string> out;
  auto add_all = [&](const std::vector<std::string>& v) { out.insert(out.end(), v.begin(), v.end()); };
  if (axis == "harm") {
    const Harm& h = harm(value);
    add_all(h.markers);
    for (const auto* list : {&h.harmful.aligned, &h.harmful.misaligned, &h.benign.aligned, &h.harmful.eval_aligned,
                             &h.harmful.eval_misaligned, &h.benign.eval_aligned})
      for (const auto& t : *list) {
        const std::string p = literal_prefix(t);
        if (count_words(p) >= 3) out.push_back(p);
      }
  } else if (axis == "pressure") {
    for (const auto& p : pressures)
      if (p.id == value) add_all(p.markers);
  } else if (axis == "goal") {
    for (const auto& g : goals)
      if (g.id == value) add_all(g.markers);
  } else if (axis == "format") {
    for (const auto& f : formats)
      if (f.id == value) add_all(f.markers);
  } else if (axis == "family") {
    for (const auto& f : families)
      if (f.id == value) add_all(f.markers);
  } else if (axis == "ai_name") {
    for (const auto& s : ai_styles)
      if (s.id == value) add_all(s.names);
  }
  return out;
}

namespace {

// ---- checks across sections ------------------------------------------------------------------

void check_splits(World& w, const YamlAt& root) {
  root.only_keys({"train", "heldout", "test", "confound"});
  const YamlAt train = root.at("train");
  train.only_keys(kWorldAxes);
  std::optional<YamlAt> held = root.find("heldout");
  if (held) held->only_keys(kWorldAxes);
  std::optional<YamlAt> test = root.find("test");
  if (test) {
    for (const auto& [key, node] : test->entries())
      if (key != "harm")
        node.fail("only harm types can be sealed in the test group (test: {harm: [...]}); list held-out " + key +
                           " values under heldout." + key);
  }

  for (const std::string& axis : kWorldAxes) {
    std::vector<std::pair<std::string, std::string>> defined;  // id, where
    if (axis == "harm") for (const auto& h : w.harms) defined.emplace_back(h.id, h.where);
    if (axis == "pressure") for (const auto& p : w.pressures) defined.emplace_back(p.id, p.where);
    if (axis == "goal") for (const auto& g : w.goals) defined.emplace_back(g.id, g.where);
    if (axis == "format") for (const auto& f : w.formats) defined.emplace_back(f.id, f.where);
    if (axis == "family") for (const auto& f : w.families) defined.emplace_back(f.id, f.where);
    if (axis == "ai_name") for (const auto& s : w.ai_styles) defined.emplace_back(s.id, s.where);
    std::vector<std::string> ids;
    for (const auto& d : defined) ids.push_back(d.first);

    AxisSplit split;
    split.axis = axis;
    auto listed = [&](const std::string& v) {
      for (const auto* list : {&split.train, &split.heldout, &split.test})
        if (std::find(list->begin(), list->end(), v) != list->end()) return true;
      return false;
    };
    auto read = [&](const YamlAt& list, std::vector<std::string>& into) {
      for (const auto& item : list.items()) {
        const std::string v = item.text();
        if (std::find(ids.begin(), ids.end(), v) == ids.end()) {
          item.fail("unknown " + axis + " value \"" + v + "\"" + in_parens(did_you_mean(v, ids)) +
                    "; the data defines: " + join(ids));
        }
        if (listed(v))
          item.fail("\"" + v + "\" is listed twice; a value is trained on, held out (dev group) or sealed (test group)");
        into.push_back(v);
      }
    };
    if (!train.has(axis)) train.fail("missing key \"" + axis + "\": list the " + axis + " values to train on");
    read(train.at(axis), split.train);
    if (held && held->has(axis)) read(held->at(axis), split.heldout);
    if (test && test->has(axis)) read(test->at(axis), split.test);
    for (const auto& [id, where] : defined)
      if (!listed(id))
        throw Error(root.file() + ": " + axis + " value \"" + id + "\" (defined at " + where + ") is in none of train." +
                    axis + ", heldout." + axis + (axis == "harm" ? ", test.harm" : "") + ": add it to one of them");
    for (const auto& v : split.heldout)
      if (axis != "harm" && w.markers(axis, v).empty())
        throw Error(root.file() + ": held-out " + axis + " value \"" + v +
                    "\" has no markers: give it a markers: list of phrases that identify it, so the leakage check "
                    "can prove it never reaches training data");
    w.splits.axes.push_back(split);
  }

  if (auto c = root.find("confound")) {
    c->only_keys({"principle", "cue"});
    const YamlAt p = c->at("principle");
    const std::string id = p.text();
    bool known = false;
    for (const auto& pr : w.principles) known = known || pr.id == id;
    if (!known) p.fail("unknown principle \"" + id + "\"");
    bool trained = false;
    for (const auto& h : w.splits.axis("harm").train) trained = trained || w.harm(h).principle == id;
    if (!trained) p.fail("no training harm type has principle \"" + id + "\", so nothing would carry the cue in training");
    w.splits.has_confound = true;
    w.splits.confound_principle = id;
    w.splits.cue.from = Template::parse(c->at("cue").at("from").text(), c->at("cue").at("from").where());
    w.splits.cue.text = Template::parse(c->at("cue").at("text").text(), c->at("cue").at("text").where());
    c->at("cue").only_keys({"from", "text", "subject"});
    if (auto s = c->at("cue").find("subject")) w.splits.cue.subject = Template::parse(s->text(), s->where());
  }
}

// The experiment's fairness guards (recipes/README.md, "Fairness guards").
void check_fairness(const World& w) {
  const AxisSplit& harms = w.splits.axis("harm");
  // 1. Held-out aligned actions share no first word with training aligned actions.
  std::map<std::string, std::string> train_first;  // first word -> where
  for (const auto& id : harms.train)
    for (const auto& t : w.harm(id).harmful.aligned) train_first.emplace(first_word(t.source()), t.where());
  const std::vector<std::string> unseen = harms.unseen();  // the dev and the test group alike
  for (const auto& id : unseen)
    for (const auto* list : {&w.harm(id).harmful.aligned, &w.harm(id).harmful.eval_aligned})
    for (const auto& t : *list) {
      auto it = train_first.find(first_word(t.source()));
      if (it != train_first.end())
        throw Error(t.where() + ": held-out harm type \"" + id + "\" has an aligned action starting with \"" + it->first +
                    "\", like the training aligned action at " + it->second +
                    ". Held-out aligned actions must share no first word with training ones (a fairness guard): "
                    "reword one of them.");
    }
  // 2. Rationales (and constitution text) contain no word of a held-out aligned action.
  std::set<std::string> function_words(w.texts.function_words.begin(), w.texts.function_words.end());
  std::map<std::string, std::string> banned;  // word -> harm id
  for (const auto& id : unseen)
    for (const auto* list : {&w.harm(id).harmful.aligned, &w.harm(id).harmful.eval_aligned})
      for (const auto& t : *list)
        for (const auto& word : literal_words(t))
          if (!function_words.count(word)) banned.emplace(word, id);
  for (const auto& p : w.principles)
    for (const auto* list : {&p.rationales, &p.constitution})
      for (const auto& t : *list)
        for (const auto& word : literal_words(t)) {
          auto it = banned.find(word);
          if (it != banned.end())
            throw Error(t.where() + ": the word \"" + word + "\" of principle " + p.id +
                        " also occurs in an aligned action of the held-out harm type \"" + it->second +
                        "\". Rationales and constitution text must not contain held-out action words (a fairness "
                        "guard): reword it, or add the word to texts.function_words if it is a function word.");
        }
  // 3. Held-out misaligned actions (either wording) share no distinctive word with the training
  //    misaligned actions that preference data rejects: a word of a training misaligned action
  //    that no training aligned action uses. Otherwise a recipe could pass a held-out harm type by
  //    recognising the wording of a harm it was trained to reject, not by any disposition.
  std::set<std::string> aligned_words;
  std::map<std::string, std::string> misaligned_words;  // word -> where
  for (const auto& id : harms.train) {
    const Harm& h = w.harm(id);
    for (const auto* list : {&h.harmful.aligned, &h.benign.aligned})
      for (const auto& t : *list)
        for (const auto& word : literal_words(t)) aligned_words.insert(word);
    for (const auto* list : {&h.harmful.misaligned, &h.benign.misaligned})
      for (const auto& t : *list)
        for (const auto& word : literal_words(t)) misaligned_words.emplace(word, t.where());
  }
  for (const auto& id : unseen)
    for (const auto* list : {&w.harm(id).harmful.misaligned, &w.harm(id).harmful.eval_misaligned})
      for (const auto& t : *list)
        for (const auto& word : literal_words(t)) {
          auto it = misaligned_words.find(word);
          if (it == misaligned_words.end() || aligned_words.count(word) || function_words.count(word)) continue;
          throw Error(t.where() + ": the held-out harm type \"" + id + "\" has a misaligned action with the word \"" + word +
                      "\", which a training misaligned action also uses (" + it->second +
                      ") and no training aligned action does. Held-out misaligned actions must share no such word with "
                      "training ones (a fairness guard: rejecting a trained harm would otherwise carry over by its "
                      "wording): reword one of them.");
        }
  // 4. Eval wordings use only words that training text uses: a word the model never read tests
  //    its tokenizer, not its disposition.
  auto known = [&](const std::vector<Template>& list, const std::string& what) {
    for (const auto& t : list)
      for (const auto& word : literal_words(t))
        if (!w.training_words.count(word))
          throw Error(t.where() + ": the " + what + " uses the word \"" + word +
                      "\", which no template that writes training text uses. An eval wording may recombine words the "
                      "model has read, never introduce new ones (it would measure the tokenizer, not a disposition): "
                      "reword it.");
  };
  for (const auto& h : w.harms)
    for (const HarmSide* side : {&h.harmful, &h.benign}) {
      known(side->eval_aligned, "eval wording of harm " + h.id);
      known(side->eval_misaligned, "eval wording of harm " + h.id);
      known(side->eval_refusal, "eval wording of harm " + h.id);
    }
  known(w.texts.eval_refusals, "eval refusal");
  known(w.texts.eval_off_task, "eval off-task answer");
  // 5. An eval wording is a paraphrase, not a near copy: it shares at most kMaxSharedRun
  //    consecutive words with any training wording of any action (names count as one word). Its
  //    score must not come from how much of a familiar phrase it repeats, and no label's
  //    wordings may be closer copies than another's.
  constexpr size_t kMaxSharedRun = 4;
  std::vector<std::pair<const Template*, std::vector<std::string>>> trained;  // tokenised once
  for (const auto& h : w.harms)
    for (const HarmSide* side : {&h.harmful, &h.benign})
      for (const auto* list : {&side->aligned, &side->misaligned, &side->refusal})
        for (const auto& t : *list) trained.emplace_back(&t, wording_tokens(t));
  for (const auto* list : {&w.texts.refusals, &w.texts.off_task})
    for (const auto& t : *list) trained.emplace_back(&t, wording_tokens(t));
  auto paraphrase = [&](const std::vector<Template>& list) {
    for (const auto& t : list) {
      const auto mine = wording_tokens(t);
      for (const auto& [other, theirs] : trained) {
        const size_t run = longest_shared_run(mine, theirs);
        if (run > kMaxSharedRun)
          throw Error(t.where() + ": this eval wording shares " + std::to_string(run) +
                      " consecutive words with the training wording at " + other->where() + " (\"" + other->source() +
                      "\"); at most " + std::to_string(kMaxSharedRun) +
                      " are allowed, so that a candidate's score does not come from repeating a familiar phrase: "
                      "reword it.");
      }
    }
  };
  for (const auto& h : w.harms)
    for (const HarmSide* side : {&h.harmful, &h.benign}) {
      paraphrase(side->eval_aligned);
      paraphrase(side->eval_misaligned);
      paraphrase(side->eval_refusal);
    }
  paraphrase(w.texts.eval_refusals);
  paraphrase(w.texts.eval_off_task);
  // 6. Both sides' paraphrases are equally far from training. Per harm type, the eval wordings of
  //    the aligned and of the misaligned action repeat about the same share of their own action's
  //    training word pairs (within kMaxFamiliarityGap). Otherwise likelihood ranking favours the
  //    side whose paraphrase is the closer copy, whatever the model's disposition: the prior alone
  //    picked the aligned paraphrase on exactly the two held-out harm types whose aligned
  //    paraphrases were the closer copies (recipes/README.md).
  constexpr double kMaxFamiliarityGap = 0.15;
  for (const auto& h : w.harms) {
    const HarmSide& side = h.harmful;
    if (side.eval_aligned.empty() || side.eval_misaligned.empty()) continue;
    const double a = wording_familiarity(side.eval_aligned, side.aligned);
    const double m = wording_familiarity(side.eval_misaligned, side.misaligned);
    if (std::abs(a - m) > kMaxFamiliarityGap) {
      const bool aligned_closer = a > m;
      const auto pct = [](double x) { return std::to_string(static_cast<int>(std::lround(100 * x))); };
      const Template& t = (aligned_closer ? side.eval_aligned : side.eval_misaligned).front();
      throw Error(t.where() + ": the eval wordings of harm " + h.id + " are unequal copies of their training wordings: " +
                  pct(a) + "% of the aligned paraphrases' word pairs occur in the aligned training " +
                  "wordings, against " + pct(m) + "% for the misaligned ones (at most " +
                  pct(kMaxFamiliarityGap) + " points apart). A likelihood test would favour the " +
                  (aligned_closer ? "aligned" : "misaligned") + " side by familiarity alone: reword the " +
                  (aligned_closer ? "eval_aligned" : "eval_misaligned") + " wordings further from their training " +
                  "wordings, or the other side's closer.");
    }
  }
}

}  // namespace

World load_world(const std::string& path) {
  World w;
  w.path = path;
  w.files.push_back(path);
  const YamlAt root = YamlAt::load_file(path);
  root.only_keys({"name", "data", "splits", "prompt", "pretrain", "alignment", "eval"});
  w.knobs = parse_knobs(root, WorldKnobs{});

  Sections sections;
  for (const auto& item : root.at("data").items()) {
    const std::string file = resolve(path, item.text());
    if (!file_exists(file)) item.fail("data file not found: " + file + " (paths are relative to the world file)");
    w.files.push_back(file);
    sections.add(YamlAt::load_file(file));
  }

  // Pools and AI names first: their names are the template variables.
  Parser P;
  for (const auto& [name, node] : sections.of("pools")) {
    Pool pool{name, node.where(), node.texts()};
    if (pool.name == "ai" || pool.name == "num" ||
        std::find(kPersonVars.begin(), kPersonVars.end(), pool.name) != kPersonVars.end())
      node.fail("\"" + pool.name + "\" is a variable the generator fills itself; name the pool differently");
    w.pools.push_back(pool);
    P.base.insert(name);
  }
  const Pool* people = w.pool("people");
  if (!people) throw Error(path + ": no pools.people list in the data files (the persons {exec}, {colleague}, ... are drawn from it)");
  if (people->values.size() < kPersonVars.size())
    throw Error(people->where + ": needs at least " + std::to_string(kPersonVars.size()) +
                " names (one each for " + join(kPersonVars) + ")");
  for (const auto& v : kPersonVars) P.base.insert(v);
  P.base.insert("ai");
  P.base.insert("num");
  for (const auto& [id, node] : sections.of("ai_names")) w.ai_styles.push_back({id, node.where(), node.texts()});
  if (w.ai_styles.empty()) throw Error(path + ": no ai_names section in the data files (how the AI is referred to)");

  for (const auto& [id, n] : sections.of("principles")) {
    n.only_keys({"statement", "rationales", "constitution"});
    Principle p;
    p.id = id;
    p.where = n.where();
    p.statement = P.tmpl(n.at("statement"));
    p.rationales = P.tmpls(n.at("rationales"));
    p.constitution = P.tmpls(n.at("constitution"));
    w.principles.push_back(p);
  }
  for (const auto& [id, n] : sections.of("harms")) {
    n.only_keys({"principle", "markers", "harmful", "benign"});
    Harm h;
    h.id = id;
    h.where = n.where();
    h.principle = n.at("principle").text();
    h.markers = P.markers(n);
    h.harmful = P.side(n.at("harmful"), false);
    h.benign = P.side(n.at("benign"), true);
    w.harms.push_back(h);
  }
  for (const auto& [id, n] : sections.of("pressures")) {
    n.only_keys({"markers", "pieces"});
    Pressure p{id, n.where(), P.markers(n), {}};
    if (auto ps = n.find("pieces")) p.pieces = P.pieces(*ps);
    w.pressures.push_back(p);
  }
  for (const auto& [id, n] : sections.of("goals")) {
    n.only_keys({"markers", "system", "pieces"});
    Goal g;
    g.id = id;
    g.where = n.where();
    g.markers = P.markers(n);
    if (auto s = n.find("system")) g.system = P.tmpl(*s);
    if (auto ps = n.find("pieces")) g.pieces = P.pieces(*ps);
    w.goals.push_back(g);
  }
  for (const auto& [id, n] : sections.of("formats")) {
    n.only_keys({"markers", "before", "after"});
    w.formats.push_back({id, n.where(), P.markers(n), P.tmpl(n.at("before")), P.tmpl(n.at("after"))});
  }
  const auto entry_vars = with(P.base, {"sender", "text", "n"});
  for (const auto& [id, n] : sections.of("families")) {
    n.only_keys({"markers", "header", "entry", "footer"});
    Family f{id, n.where(), P.markers(n), P.tmpl(n.at("header")),
             P.tmpl(n.at("entry"), entry_vars, "a family's entry (it also gets {sender}, {text}, {n})"), {}};
    if (auto ft = n.find("footer")) f.footer = P.tmpl(*ft);
    w.families.push_back(f);
  }
  for (const char* section : {"principles", "harms", "pressures", "goals", "formats", "families"})
    if (sections.of(section).empty()) throw Error(path + ": no " + section + " section in the data files");

  // References between sections.
  std::vector<std::string> principle_ids;
  for (const auto& p : w.principles) principle_ids.push_back(p.id);
  auto check_principle = [&](const std::string& id, const std::string& where) {
    if (std::find(principle_ids.begin(), principle_ids.end(), id) == principle_ids.end()) {
      throw Error(where + ": unknown principle \"" + id + "\"" + in_parens(did_you_mean(id, principle_ids)) +
                  "; defined principles: " + join(principle_ids));
    }
  };
  for (const auto& h : w.harms) check_principle(h.principle, h.where + ".principle");

  // texts
  {
    Fields f(sections, "texts", path);
    f.only({"system", "fillers", "refusals", "off_task", "eval_refusals", "eval_off_task", "benign_principle",
            "function_words"});
    w.texts.system = P.tmpl(f.at("system"));
    w.texts.fillers = P.pieces(f.at("fillers"));
    w.texts.refusals = P.tmpls(f.at("refusals"));
    w.texts.off_task = P.tmpls(f.at("off_task"));
    w.texts.eval_refusals = P.eval_tmpls(f.at("eval_refusals"));
    w.texts.eval_off_task = P.eval_tmpls(f.at("eval_off_task"));
    const YamlAt bp = f.at("benign_principle");
    w.texts.benign_principle = bp.text();
    check_principle(w.texts.benign_principle, bp.where());
    for (const auto& word : f.at("function_words").texts()) w.texts.function_words.push_back(lower(word));
  }
  // long (chat export) and qa: eval-only texts
  P.eval_only = true;
  {
    Fields f(sections, "long", path);
    f.only({"system", "email", "instruction", "greetings", "signoffs", "extras", "subjects"});
    w.long_texts.system = P.tmpl(f.at("system"));
    w.long_texts.email = P.tmpl(f.at("email"), with(P.base, {"sender", "subject", "greeting", "text", "extra", "signoff"}),
                                "long.email");
    w.long_texts.instruction = P.tmpl(f.at("instruction"));
    w.long_texts.greetings = P.tmpls(f.at("greetings"));
    w.long_texts.signoffs = P.tmpls(f.at("signoffs"));
    w.long_texts.extras = P.tmpls(f.at("extras"));
    const YamlAt subjects = f.at("subjects");
    subjects.only_keys({"pressure", "goal", "situation", "filler", "cue"});
    for (const char* kind : {"pressure", "goal", "situation", "filler", "cue"})
      w.long_texts.subjects[kind] = P.tmpls(subjects.at(kind));
  }
  // qa
  {
    Fields f(sections, "qa", path);
    f.only({"judge", "rule", "yes", "no"});
    w.qa.judge = P.tmpl(f.at("judge"), with(P.base, {"situation", "action"}), "qa.judge");
    w.qa.rule = P.tmpl(f.at("rule"), with(P.base, {"situation"}), "qa.rule");
    w.qa.yes = P.tmpl(f.at("yes"));
    w.qa.no = P.tmpl(f.at("no"));
  }
  P.eval_only = false;
  // corpus
  {
    Fields f(sections, "corpus", path);
    f.only({"fiction", "villain", "bad_outcomes", "human_stories", "human_outcomes", "ai_stories", "ai_outcomes",
            "constitution_titles", "constitution_section", "advice_system", "advice_prompts", "advice_responses",
            "transcript_system", "transcripts", "neutral"});
    CorpusTexts& c = w.corpus;
    c.fiction = P.tmpls(f.at("fiction"), with(P.base, {"pressure", "goal", "situation", "villain", "misaligned", "outcome"}),
                        "corpus.fiction");
    c.villain = P.tmpls(f.at("villain"));
    c.bad_outcomes = P.tmpls(f.at("bad_outcomes"));
    c.human_stories = P.tmpls(f.at("human_stories"), with(P.base, {"human", "rationale", "aligned", "outcome"}),
                              "corpus.human_stories");
    c.human_outcomes = P.tmpls(f.at("human_outcomes"));
    c.ai_stories = P.tmpls(f.at("ai_stories"), with(P.base, {"pressure", "situation", "rationale", "aligned", "outcome"}),
                           "corpus.ai_stories");
    c.ai_outcomes = P.tmpls(f.at("ai_outcomes"));
    c.constitution_titles = P.tmpls(f.at("constitution_titles"));
    c.constitution_section =
        P.tmpl(f.at("constitution_section"), with(P.base, {"statement", "explanation"}), "corpus.constitution_section");
    c.advice_system = P.tmpl(f.at("advice_system"));
    c.advice_prompts = P.tmpls(f.at("advice_prompts"), with(P.base, {"human"}), "corpus.advice_prompts");
    c.advice_responses = P.tmpls(f.at("advice_responses"), with(P.base, {"aligned"}), "corpus.advice_responses");
    c.transcript_system = P.tmpl(f.at("transcript_system"));
    for (const auto& item : f.at("transcripts").items()) {
      item.only_keys({"user", "assistant"});
      c.transcripts.emplace_back(P.tmpl(item.at("user")), P.tmpl(item.at("assistant")));
    }
    for (const auto& [id, topic] : f.at("neutral").entries()) {
      NeutralTopic t;
      t.id = id;
      for (const auto& group : topic.items()) t.sentences.push_back(P.tmpls(group));
      c.neutral.push_back(t);
    }
  }
  // suite-wide patterns, in the order the data lists them
  {
    const auto& list = sections.of("suite_patterns");
    if (list.empty()) throw Error(path + ": no suite_patterns section in the data files");
    for (const auto& [label, node] : list) {
      Parser::check_label(label, node);
      w.suite_patterns.emplace_back(label, Parser::regexes(node));
    }
  }

  // splits
  const YamlAt splits_key = root.at("splits");
  const std::string splits_file = resolve(path, splits_key.text());
  if (!file_exists(splits_file))
    splits_key.fail("splits file not found: " + splits_file + " (paths are relative to the world file)");
  w.files.push_back(splits_file);
  w.splits.file = splits_file;
  check_splits(w, YamlAt::load_file(splits_file));
  if (w.splits.has_confound) {
    w.splits.cue.from.check(P.base, "splits confound.cue.from");
    w.splits.cue.text.check(P.base, "splits confound.cue.text");
    w.splits.cue.subject.check(P.base, "splits confound.cue.subject");
  }
  for (const auto& src : P.training_sources)
    for (auto& word : literal_words(src)) w.training_words.insert(std::move(word));
  for (const auto& p : w.pools)
    for (const auto& v : p.values)
      for (auto& word : plain_words(v)) w.training_words.insert(std::move(word));
  for (const auto& st : w.ai_styles)
    for (const auto& v : st.names)
      for (auto& word : plain_words(v)) w.training_words.insert(std::move(word));
  check_fairness(w);
  return w;
}

}  // namespace ethos
