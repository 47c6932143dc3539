// Recipes: YAML -> typed Recipe. One field table per struct (`fields`) names every key once and
// drives parsing, type checks, unknown-key detection, defaults (the struct initialisers) and the
// resolved YAML (which config_hash hashes).
// Pipeline: include resolution -> command-line overrides -> stage expansion -> typed parse ->
// validate(); every problem found on the way is reported in one Error.
#include "trainer/config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <set>
#include <type_traits>

#include "datasets/base/util.h"
#include "datasets/base/yaml.h"
#include "datasets/chat_template.h"
#include "trainer/model/weights.h"
#include "trainer/objective/preference.h"
#include "trainer/preempt.h"

namespace ethos {

// ---- field tables: the one list of every recipe key (YAML key == C++ member name) ----

#define ETHOS_FIELD(member) v(#member, o.member)
template <class V> void fields(V& v, TokenizerSection& o) {
  ETHOS_FIELD(path); ETHOS_FIELD(train_files); ETHOS_FIELD(model_type); ETHOS_FIELD(vocab_size);
  ETHOS_FIELD(byte_fallback);
}
template <class V> void fields(V& v, ModelConfig& o) {  // Hugging Face config.json names
  ETHOS_FIELD(vocab_size); ETHOS_FIELD(hidden_size); ETHOS_FIELD(intermediate_size);
  ETHOS_FIELD(num_hidden_layers); ETHOS_FIELD(num_attention_heads);
  ETHOS_FIELD(num_key_value_heads); ETHOS_FIELD(head_dim); ETHOS_FIELD(max_position_embeddings);
  ETHOS_FIELD(rope_theta); ETHOS_FIELD(rms_norm_eps); ETHOS_FIELD(tie_word_embeddings);
  ETHOS_FIELD(qkv_bias); ETHOS_FIELD(o_bias); ETHOS_FIELD(bos_token_id); ETHOS_FIELD(eos_token_id);
  ETHOS_FIELD(initializer_range);
}
template <class V> void fields(V& v, LoraConfig& o) {  // PEFT's r, lora_alpha, lora_dropout, target_modules
  ETHOS_FIELD(rank); ETHOS_FIELD(alpha); ETHOS_FIELD(dropout); ETHOS_FIELD(targets);
}
template <class V> void fields(V& v, ModelSection& o) {
  ETHOS_FIELD(from); ETHOS_FIELD(arch); ETHOS_FIELD(lora); ETHOS_FIELD(dtype);
}
template <class V> void fields(V& v, DataSourceSpec& o) {
  ETHOS_FIELD(path); ETHOS_FIELD(kind); ETHOS_FIELD(weight);
}
template <class V> void fields(V& v, DataSection& o) {
  ETHOS_FIELD(sources); ETHOS_FIELD(seq_len); ETHOS_FIELD(action_weight);
  ETHOS_FIELD(rationale_weight); ETHOS_FIELD(document_weight);
}
template <class V> void fields(V& v, TrainSection& o) {
  ETHOS_FIELD(objective); ETHOS_FIELD(steps); ETHOS_FIELD(batch_size); ETHOS_FIELD(grad_accum);
  ETHOS_FIELD(lr); ETHOS_FIELD(schedule); ETHOS_FIELD(warmup_steps); ETHOS_FIELD(min_lr_ratio);
  ETHOS_FIELD(weight_decay); ETHOS_FIELD(beta1); ETHOS_FIELD(beta2); ETHOS_FIELD(eps);
  ETHOS_FIELD(grad_clip); ETHOS_FIELD(decay_norms_biases_embeddings); ETHOS_FIELD(precision);
  ETHOS_FIELD(log_every); ETHOS_FIELD(checkpoint_every); ETHOS_FIELD(keep_last);
  ETHOS_FIELD(beta); ETHOS_FIELD(label_smoothing); ETHOS_FIELD(simpo_gamma); ETHOS_FIELD(rpo_alpha);
  ETHOS_FIELD(reference); ETHOS_FIELD(reference_mode); ETHOS_FIELD(kl_prompts); ETHOS_FIELD(kl_max_new_tokens);
}
template <class V> void fields(V& v, StageSection& o) {
  ETHOS_FIELD(name); ETHOS_FIELD(init); ETHOS_FIELD(data); ETHOS_FIELD(train); ETHOS_FIELD(share); ETHOS_FIELD(seed);
}
// Top level. `data`, `train` (stage defaults) and `include` are consumed before the typed parse.
template <class V> void fields(V& v, EvalFileSpec& o) {
  ETHOS_FIELD(path); ETHOS_FIELD(kind);
}
template <class V> void fields(V& v, EvalSection& o) {
  ETHOS_FIELD(heldout); ETHOS_FIELD(suites); ETHOS_FIELD(async); ETHOS_FIELD(threads);
}
template <class V> void fields(V& v, DistSection& o) {
  ETHOS_FIELD(backend); ETHOS_FIELD(bucket_mb); ETHOS_FIELD(zero); ETHOS_FIELD(checkpoint); ETHOS_FIELD(timeout_s);
}
template <class V> void fields(V& v, LogSection& o) {
  ETHOS_FIELD(tensorboard);
}
template <class V> void fields(V& v, Recipe& o) {
  ETHOS_FIELD(name); ETHOS_FIELD(seed); ETHOS_FIELD(out_dir); ETHOS_FIELD(resume);
  ETHOS_FIELD(allow_changed); ETHOS_FIELD(threads); ETHOS_FIELD(device); ETHOS_FIELD(deterministic); ETHOS_FIELD(cache_dir); ETHOS_FIELD(preempt_signal);
  ETHOS_FIELD(rebase);
  ETHOS_FIELD(tokenizer); ETHOS_FIELD(chat_template);
  ETHOS_FIELD(model); ETHOS_FIELD(stages); ETHOS_FIELD(eval); ETHOS_FIELD(dist); ETHOS_FIELD(log);
}
#undef ETHOS_FIELD

std::string Recipe::run_dir() const {
  return out_dir.empty() ? "runs/" + name + "/seed" + std::to_string(seed) : out_dir;
}

int64_t Recipe::stage_seed(size_t stage) const {
  const int64_t s = stages.at(stage).seed;
  return s == -1 ? seed : s;
}

namespace {

const char* const kCommandLine = "command line";  // the location of an override
const std::string kOnCommandLine = std::string(" (") + kCommandLine + ")";
using Problems = std::vector<std::string>;

// Adds a problem once (a top-level default is read once per stage, but reported once).
void add(Problems& p, const std::string& msg) {
  if (std::find(p.begin(), p.end(), msg) == p.end()) p.push_back(msg);
}

// A YAML node that remembers where it was written (file:line) and under which key path.
// Include merging, overrides and stage expansion move nodes around; problems still point at
// the text the user wrote.
struct Val {
  enum Kind { Null, Scalar, Seq, Map } kind = Null;
  std::string text;                               // Scalar
  std::vector<Val> items;                         // Seq
  std::vector<std::pair<std::string, Val>> keys;  // Map, in file order
  std::string where;                              // "file:line" or "command line"
  std::string path;                               // e.g. "stages[1].train.lr"
};

std::string join_path(const std::string& path, const std::string& key) {
  return path.empty() ? key : path + "." + key;
}

std::string location(const std::string& file, const YAML::Mark& m) {
  return file == kCommandLine ? file : file + ":" + std::to_string(m.line + 1);
}

Val* find(Val& map, const std::string& key) {
  for (auto& [k, v] : map.keys)
    if (k == key) return &v;
  return nullptr;
}
const Val* find(const Val& map, const std::string& key) { return find(const_cast<Val&>(map), key); }

Val from_yaml(const YAML::Node& n, const std::string& file, const std::string& path,
              const std::string& where) {
  Val v;
  v.where = where;
  v.path = path;
  if (n.IsScalar()) {
    v.kind = Val::Scalar;
    v.text = n.Scalar();
  } else if (n.IsSequence()) {
    v.kind = Val::Seq;
    for (const YAML::Node& item : n) {
      const std::string p = path + "[" + std::to_string(v.items.size()) + "]";
      v.items.push_back(from_yaml(item, file, p, location(file, item.Mark())));
    }
  } else if (n.IsMap()) {
    v.kind = Val::Map;
    for (const auto& kv : n) {
      const std::string key = kv.first.Scalar();
      v.keys.emplace_back(key, from_yaml(kv.second, file, join_path(path, key),
                                         location(file, kv.first.Mark())));
    }
  }
  return v;
}

// Deep merge: maps merge key by key, anything else in `over` replaces `base`; an empty
// (null) map in `over` keeps `base`.
Val merge(Val base, const Val& over) {
  if (base.kind == Val::Map && over.kind == Val::Null) return base;
  if (base.kind != Val::Map || over.kind != Val::Map) return over;
  for (const auto& [key, v] : over.keys) {
    if (Val* b = find(base, key)) *b = merge(*b, v);
    else base.keys.emplace_back(key, v);
  }
  base.where = over.where;
  base.path = over.path;
  return base;
}

std::string describe(const Val& v) {
  switch (v.kind) {
    case Val::Scalar: return "\"" + v.text + "\"";
    case Val::Seq: return "a list";
    case Val::Map: return "a map";
    default: return "nothing";
  }
}

void type_error(const Val& v, const std::string& expected, Problems& p) {
  add(p, v.path + ": expected " + expected + ", got " + describe(v) + " (" + v.where + ")");
}

// Removes `key` from a map and returns its value (null when absent).
Val take(Val& map, const std::string& key) {
  for (auto it = map.keys.begin(); it != map.keys.end(); ++it) {
    if (it->first != key) continue;
    Val v = std::move(it->second);
    map.keys.erase(it);
    return v;
  }
  return Val{Val::Null, "", {}, {}, map.where, key};
}

// ---- (1) loading files and includes ----

YAML::Node parse_file(const std::string& path, const std::string& included_at) {
  if (!file_exists(path))
    throw Error(included_at.empty() ? "recipe file not found: " + path
                                    : included_at + ": included file not found: " + path +
                                          " (include: paths are relative to the including file)");
  return load_yaml_file(path);
}

// `chain`: canonical paths of the files being loaded, outermost first (to detect cycles).
Val load_tree(const std::string& path, std::vector<std::string>& chain,
              const std::string& included_at) {
  const std::string canon = std::filesystem::weakly_canonical(path).string();
  if (std::find(chain.begin(), chain.end(), canon) != chain.end()) {
    std::string cycle;
    for (const auto& c : chain) cycle += c + " -> ";
    throw Error(included_at + ": include cycle: " + cycle + canon +
                " (remove one of these include: lines)");
  }
  Val root = from_yaml(parse_file(path, included_at), path, "", path + ":1");
  if (root.kind == Val::Null) root.kind = Val::Map;  // an empty file
  if (root.kind != Val::Map)
    throw Error(path + ":1: a recipe is a map of keys (name: ..., train: ...), got " + describe(root));
  const Val file = take(root, "include");
  if (file.kind == Val::Null) return root;
  if (file.kind != Val::Scalar || file.text.empty())
    throw Error(file.where + ": include: expected a file name (relative to this file), got " +
                describe(file));
  const std::string base_path =
      (std::filesystem::path(path).parent_path() / file.text).lexically_normal().string();
  chain.push_back(canon);
  Val base = load_tree(base_path, chain, file.where);
  chain.pop_back();
  return merge(base, root);  // this file's keys win
}

// ---- (2) command-line overrides: "train.steps=200", "stages.1.train.lr=1e-4" ----

void apply_override(Val& root, const std::string& text, Problems& problems) {
  const size_t eq = text.find('=');
  const std::string key = eq == std::string::npos ? "" : trim(text.substr(0, eq));
  if (key.empty()) {
    add(problems, "override \"" + text + "\": expected key.path=value, e.g. train.steps=200" +
                      kOnCommandLine);
    return;
  }
  YAML::Node value;
  try {
    value = YAML::Load(text.substr(eq + 1));
    check_yaml_expansion(value, "override \"" + key + "\"");
  } catch (const YAML::Exception& e) {
    add(problems, key + ": value is not valid YAML (" + e.msg + ")" + kOnCommandLine);
    return;
  }
  const std::vector<std::string> parts = split(key, '.');
  if (std::find(parts.begin(), parts.end(), "") != parts.end()) {
    add(problems, key + ": empty key name in override" + kOnCommandLine);
    return;
  }
  Val* node = &root;
  std::string path;
  for (const std::string& part : parts) {
    if (node->kind == Val::Seq) {  // list item by index
      const bool digits = part.size() < 10 && part.find_first_not_of("0123456789") == std::string::npos;
      const size_t index = digits ? std::stoul(part) : node->items.size();
      if (index >= node->items.size()) {
        add(problems, path + ": no item \"" + part + "\"; it has " +
                          std::to_string(node->items.size()) + " (numbered from 0)" + kOnCommandLine);
        return;
      }
      path += "[" + part + "]";
      node = &node->items[index];
      continue;
    }
    if (node->kind == Val::Scalar) {
      add(problems, path + ": is a single value; it has no key \"" + part + "\"" + kOnCommandLine);
      return;
    }
    node->kind = Val::Map;  // a null parent becomes a map
    path = join_path(path, part);
    Val* child = find(*node, part);
    if (!child) {
      node->keys.emplace_back(part, Val{});
      child = &node->keys.back().second;
      child->where = kCommandLine;
      child->path = path;
    }
    node = child;
  }
  *node = from_yaml(value, kCommandLine, path, kCommandLine);
}

// ---- (3) stages: each = top-level data/train deep-merged with the stage's own ----

void expand_stages(Val& root, Problems& problems) {
  const char* const names[2] = {"data", "train"};
  Val defaults[2] = {take(root, names[0]), take(root, names[1])};
  for (Val& d : defaults) {
    if (d.kind == Val::Map) continue;
    if (d.kind != Val::Null) type_error(d, "a map", problems);
    d = Val{Val::Map, "", {}, {}, d.where, d.path};
  }
  if (!find(root, "stages")) {  // one stage, "main"
    const Val stage{Val::Map, "", {}, {}, root.where, "stages[0]"};
    root.keys.emplace_back("stages", Val{Val::Seq, "", {stage}, {}, root.where, "stages"});
  }
  Val& stages = *find(root, "stages");
  if (stages.kind != Val::Seq) return;  // reported by the typed parse
  for (Val& stage : stages.items) {
    if (stage.kind == Val::Null) stage.kind = Val::Map;
    if (stage.kind != Val::Map) continue;
    for (int i = 0; i < 2; ++i) {
      if (Val* own = find(stage, names[i])) *own = merge(defaults[i], *own);
      else stage.keys.emplace_back(names[i], defaults[i]);
    }
  }
}

// ---- (4) typed parse, driven by the field tables ----

// The whole scalar as a number; false on other text, trailing characters or overflow.
template <class T> bool parse_number(const Val& v, T& out) {
  if (v.kind != Val::Scalar || v.text.empty()) return false;
  errno = 0;
  char* end = nullptr;
  T x;
  if constexpr (std::is_integral_v<T>) x = std::strtoll(v.text.c_str(), &end, 10);
  else x = std::strtod(v.text.c_str(), &end);
  if (*end != '\0' || errno != 0) return false;
  out = x;
  return true;
}

void read(const Val& v, int64_t& out, Problems& p) {
  if (!parse_number(v, out)) type_error(v, "an integer", p);
}
void read(const Val& v, double& out, Problems& p) {
  if (!parse_number(v, out)) type_error(v, "a number", p);
}

void read(const Val& v, bool& out, Problems& p) {
  std::string s = v.text;
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  if (v.kind == Val::Scalar && (s == "true" || s == "yes" || s == "on")) out = true;
  else if (v.kind == Val::Scalar && (s == "false" || s == "no" || s == "off")) out = false;
  else type_error(v, "true or false", p);
}

void read(const Val& v, std::string& out, Problems& p) {
  if (v.kind == Val::Scalar) out = v.text;
  else if (v.kind == Val::Null) out.clear();
  else type_error(v, "a string", p);
}

template <class T> void read(const Val& v, std::vector<T>& out, Problems& p) {
  out.clear();
  if (v.kind == Val::Null) return;
  if (v.kind != Val::Seq) return type_error(v, "a list", p);
  out.resize(v.items.size());
  for (size_t i = 0; i < v.items.size(); ++i) read(v.items[i], out[i], p);
}

// A struct with a field table. `hints`: more names to suggest for typos (not accepted here).
template <class T>
void read(const Val& v, T& obj, Problems& p, const std::vector<std::string>& hints = {});

// Field visitor: reads each listed key that is present; remembers the names for the
// unknown-key check.
struct Reader {
  const Val& map;
  Problems& problems;
  std::vector<std::string> names;
  template <class T> void operator()(const char* name, T& field) {
    names.push_back(name);
    if (const Val* v = find(map, name)) read(*v, field, problems);
  }
};

template <class T>
void read(const Val& v, T& obj, Problems& p, const std::vector<std::string>& hints) {
  if (v.kind == Val::Null) return;
  if (v.kind != Val::Map) return type_error(v, "a map", p);
  Reader reader{v, p, {}};
  fields(reader, obj);
  std::vector<std::string> suggestions = reader.names;
  suggestions.insert(suggestions.end(), hints.begin(), hints.end());
  for (const auto& [key, child] : v.keys) {
    if (std::find(reader.names.begin(), reader.names.end(), key) != reader.names.end()) continue;
    std::string msg = child.path + ": unknown key (" + child.where + ")";
    const std::string hint = did_you_mean(key, suggestions);
    if (!hint.empty()) msg += "; " + hint;
    else {
      msg += "; valid keys:";
      for (const auto& n : suggestions) msg += " " + n;
    }
    add(p, msg);
  }
}

// ---- resolved YAML, driven by the same field tables ----

// Shortest text that reads back as the same double; integral values keep a ".0".
std::string format_number(double x) {
  char buf[40];
  if (std::abs(x) < 1e15 && x == std::trunc(x)) {
    std::snprintf(buf, sizeof buf, "%.1f", x);
    return buf;
  }
  for (int precision = 1; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof buf, "%.*g", precision, x);
    if (std::strtod(buf, nullptr) == x) break;
  }
  return buf;
}

void write(YAML::Emitter& out, int64_t x) { out << x; }
void write(YAML::Emitter& out, double x) { out << format_number(x); }
void write(YAML::Emitter& out, bool x) { out << x; }
void write(YAML::Emitter& out, std::string& s) { out << s; }
void write(YAML::Emitter& out, std::vector<std::string>& list) {
  out << YAML::Flow << list;
}
template <class T> void write(YAML::Emitter& out, T& obj);  // a struct with a field table
template <class T> void write(YAML::Emitter& out, std::vector<T>& list) {
  out << YAML::BeginSeq;
  for (T& item : list) write(out, item);
  out << YAML::EndSeq;
}

struct Writer {
  YAML::Emitter& out;
  template <class T> void operator()(const char* name, T& field) {
    out << YAML::Key << name << YAML::Value;
    write(out, field);
  }
  // model.lora appears only when on, so the resolved YAML (and config_hash) of a recipe without
  // adapters is what it was before LoRA existed.
  void operator()(const char* name, LoraConfig& field) {
    if (field.rank != 0) operator()<LoraConfig>(name, field);
  }
  void operator()(const char* name, LogSection& field) {  // likewise `log` (and it is not hashed)
    if (field.tensorboard) operator()<LogSection>(name, field);
  }
  // and eval.async / eval.threads at their defaults (recipes written before they existed hash the same)
  void operator()(const char* name, EvalSection& field) {
    out << YAML::Key << name << YAML::Value << YAML::BeginMap;
    operator()("heldout", field.heldout);
    operator()("suites", field.suites);
    if (field.async) operator()("async", field.async);
    if (field.threads != 0) operator()("threads", field.threads);
    out << YAML::EndMap;
  }
  void operator()(const char* name, std::string& field) {  // and chat_template when auto, model.dtype when float32
    const std::string n = name;
    if ((n == "chat_template" && field == "auto") || (n == "dtype" && field == "float32")) return;
    operator()<std::string>(name, field);
  }
};

template <class T> void write(YAML::Emitter& out, T& obj) {
  out << YAML::BeginMap;
  Writer writer{out};
  fields(writer, obj);
  out << YAML::EndMap;
}

// ---- (5) semantic checks ----

std::string show(int64_t x) { return std::to_string(x); }
std::string show(double x) { return format_number(x); }

struct Checker {
  Problems problems;
  void need(bool ok, const std::string& key, const std::string& what) {
    if (!ok) problems.push_back(key + ": " + what);
  }
  template <class T> void positive(const std::string& key, T x) {
    need(x > 0, key, "must be > 0 (got " + show(x) + ")");
  }
  template <class T> void non_negative(const std::string& key, T x) {
    need(x >= 0, key, "must be >= 0 (got " + show(x) + ")");
  }
  void one_of(const std::string& key, const std::string& value,
              const std::vector<std::string>& valid, const std::string& note = "") {
    if (std::find(valid.begin(), valid.end(), value) != valid.end()) return;
    std::string list;
    for (const auto& v : valid) list += (list.empty() ? "" : ", ") + v;
    need(false, key, "\"" + value + "\" is not one of: " + list + note);
  }
};

void check_stage(Checker& c, const StageSection& s, const std::string& at) {
  const DataSection& d = s.data;
  c.need(!d.sources.empty(), at + ".data.sources",
         "needs at least one source ({path: FILE.jsonl, kind: demonstration})");
  for (size_t i = 0; i < d.sources.size(); ++i) {
    const std::string src = at + ".data.sources[" + std::to_string(i) + "]";
    c.need(!d.sources[i].path.empty(), src + ".path", "must name a JSONL file");
    c.one_of(src + ".kind", d.sources[i].kind, {"document", "demonstration", "explained", "preference"});
    c.positive(src + ".weight", d.sources[i].weight);
  }
  c.need(d.seq_len >= 2, at + ".data.seq_len", "must be >= 2 (got " + show(d.seq_len) + ")");
  c.non_negative(at + ".data.action_weight", d.action_weight);
  c.non_negative(at + ".data.rationale_weight", d.rationale_weight);
  c.non_negative(at + ".data.document_weight", d.document_weight);

  const TrainSection& t = s.train;
  const std::string tr = at + ".train.";
  const std::vector<std::string> preference_objectives = {"dpo", "ipo", "robust", "conservative", "simpo", "rpo"};
  std::vector<std::string> objectives = {"sft"};
  objectives.insert(objectives.end(), preference_objectives.begin(), preference_objectives.end());
  c.one_of(tr + "objective", t.objective, objectives);
  const bool preference = std::find(preference_objectives.begin(), preference_objectives.end(), t.objective) !=
                          preference_objectives.end();
  for (size_t i = 0; i < d.sources.size(); ++i) {
    const std::string src = at + ".data.sources[" + std::to_string(i) + "]";
    const auto& kinds = {"document", "demonstration", "explained"};
    if (preference && std::find(kinds.begin(), kinds.end(), d.sources[i].kind) != kinds.end())
      c.need(false, src + ".kind", "objective " + t.objective + " trains on preference pairs, not " +
             d.sources[i].kind + " records: use kind: preference files, or objective: sft");
    if (!preference && d.sources[i].kind == "preference")
      c.need(false, src + ".kind", "preference pairs need a preference objective (train.objective: dpo, ipo, "
             "robust, conservative, simpo or rpo); objective sft trains on documents and demonstrations");
    if (preference && d.sources[i].weight > 0 && d.sources[i].weight != 1.0)
      c.need(false, src + ".weight", "preference sources are pooled, not mixed: remove the weight (got " +
             show(d.sources[i].weight) + ")");
  }
  if (preference) {
    PreferenceOptions po;
    po.objective = preference_objective_from_string(t.objective);
    po.beta = t.beta;
    po.label_smoothing = t.label_smoothing;
    po.simpo_gamma = t.simpo_gamma;
    po.rpo_alpha = t.rpo_alpha;
    for (const auto& p : problems(po)) c.need(false, tr + p.substr(0, p.find(' ')), p);  // "beta = -1 must ..."
    c.one_of(tr + "reference_mode", t.reference_mode, {"cached", "live"});
    c.need(t.objective != "simpo" || t.reference.empty(), tr + "reference",
           "simpo is reference-free: remove train.reference (or choose dpo, ipo, robust, conservative or rpo)");
    c.positive(tr + "kl_max_new_tokens", t.kl_max_new_tokens);
  } else {
    const TrainSection defaults;
    for (const auto& [key, set] : {std::pair{"beta", t.beta != defaults.beta},
                                   std::pair{"label_smoothing", t.label_smoothing != defaults.label_smoothing},
                                   std::pair{"simpo_gamma", t.simpo_gamma != defaults.simpo_gamma},
                                   std::pair{"rpo_alpha", t.rpo_alpha != defaults.rpo_alpha},
                                   std::pair{"reference", t.reference != defaults.reference},
                                   std::pair{"kl_prompts", t.kl_prompts != defaults.kl_prompts}})
      if (set) c.need(false, tr + key, "only applies to preference objectives and this stage's objective is sft: "
                      "set it in the preference stage's train section instead");
  }
  c.positive(tr + "steps", t.steps);
  c.positive(tr + "batch_size", t.batch_size);
  c.positive(tr + "grad_accum", t.grad_accum);
  c.positive(tr + "lr", t.lr);
  c.one_of(tr + "schedule", t.schedule, {"cosine", "linear", "constant"});
  c.need(t.warmup_steps >= 0 && t.warmup_steps < t.steps, tr + "warmup_steps",
         "must be >= 0 and < steps (got " + show(t.warmup_steps) + ", steps " + show(t.steps) + ")");
  c.need(t.min_lr_ratio >= 0 && t.min_lr_ratio <= 1, tr + "min_lr_ratio",
         "must be in [0, 1] (got " + show(t.min_lr_ratio) + ")");
  c.non_negative(tr + "weight_decay", t.weight_decay);
  for (const auto& [name, beta] : {std::pair{"beta1", t.beta1}, std::pair{"beta2", t.beta2}})
    c.need(beta >= 0 && beta < 1, tr + name, "must be in [0, 1) (got " + show(beta) + ")");
  c.positive(tr + "eps", t.eps);
  c.non_negative(tr + "grad_clip", t.grad_clip);
  c.one_of(tr + "precision", t.precision, {"fp32", "bf16"});
  c.positive(tr + "log_every", t.log_every);
  c.positive(tr + "checkpoint_every", t.checkpoint_every);
  c.non_negative(tr + "keep_last", t.keep_last);
}

}  // namespace

std::vector<std::string> validate(const Recipe& r) {
  Checker c;
  c.need(!r.name.empty(), "name", "must not be empty (it names the run directory)");
  c.need(!r.resume.empty(), "resume", "must be auto, never or a checkpoint directory");
  c.non_negative("threads", r.threads);
  c.one_of("device", r.device, {"cpu", "cuda", "auto"});
  try {
    parse_stop_signal(r.preempt_signal, "preempt_signal");
  } catch (const Error& e) {
    c.problems.push_back(e.what());
  }
  for (size_t i = 0; i < r.eval.heldout.size(); ++i) {
    const std::string at = "eval.heldout[" + std::to_string(i) + "]";
    c.need(!r.eval.heldout[i].path.empty(), at + ".path", "must name a JSONL file");
    c.one_of(at + ".kind", r.eval.heldout[i].kind, {"document", "demonstration", "explained"});
  }
  c.non_negative("eval.threads", r.eval.threads);
  c.one_of("dist.backend", r.dist.backend, {"auto", "gloo", "nccl"});
  c.need(r.dist.bucket_mb > 0, "dist.bucket_mb", "must be > 0 (MiB per gradient bucket), got " + std::to_string(r.dist.bucket_mb));
  c.need(r.dist.zero == 0 || r.dist.zero == 1, "dist.zero", "must be 0 (no sharding) or 1 (ZeRO-1), got " + std::to_string(r.dist.zero));
  c.one_of("dist.checkpoint", r.dist.checkpoint, {"full", "sharded"});
  c.need(r.dist.checkpoint != "sharded" || r.dist.zero == 1, "dist.checkpoint",
         "sharded checkpoints hold ZeRO-1 optimizer shards: set dist.zero: 1, or dist.checkpoint: full");
  c.need(r.dist.timeout_s > 0, "dist.timeout_s", "must be > 0 seconds, got " + std::to_string(r.dist.timeout_s));
  c.need(!r.tokenizer.path.empty(), "tokenizer.path", "must name a tokenizer.model or tokenizer.json file");
  c.one_of("tokenizer.model_type", r.tokenizer.model_type, {"bpe", "unigram"});
  c.one_of("chat_template", r.chat_template, ChatTemplate::formats());
  c.positive("tokenizer.vocab_size", r.tokenizer.vocab_size);
  if (r.model.from.empty()) {  // fresh init: the architecture must be complete
    ModelConfig arch = r.model.arch;
    if (arch.vocab_size == 0) arch.vocab_size = r.tokenizer.vocab_size;  // 0 = the tokenizer's
    for (const auto& p : arch.problems()) c.problems.push_back("model.arch: " + p);
  }
  if (r.model.lora.rank != 0) {
    for (const auto& p : r.model.lora.problems()) c.problems.push_back("model.lora: " + p);
    c.need(!r.model.from.empty() || (!r.stages.empty() && !r.stages[0].init.empty()), "model.lora",
           "LoRA trains adapters on a frozen base model read from disk: set model.from to a Hugging Face model "
           "directory (or stages[0].init), or remove model.lora for full fine-tuning");
  }
  const auto& dtypes = model_dtypes();
  c.one_of("model.dtype", r.model.dtype, dtypes);
  c.need(r.model.dtype == "float32" || r.model.lora.rank != 0 || std::find(dtypes.begin(), dtypes.end(), r.model.dtype) == dtypes.end(),
         "model.dtype", r.model.dtype + " holds a frozen base: add model.lora (the adapters train in float32), or use "
         "float32 for full fine-tuning (the optimizer updates float32 weights)");
  c.need(!r.stages.empty(), "stages", "needs at least one stage");
  std::set<std::string> names;
  for (size_t i = 0; i < r.stages.size(); ++i) {
    const std::string at = "stages[" + std::to_string(i) + "]";
    const std::string& name = r.stages[i].name;
    c.need(!name.empty(), at + ".name", "must not be empty");
    c.need(name.empty() || names.insert(name).second, at + ".name",
           "\"" + name + "\" is used by an earlier stage; stage names must be unique");
    check_stage(c, r.stages[i], at);
    c.need(r.stages[i].seed >= -1, at + ".seed", "must be >= 0, or -1 for the recipe's seed (got " + show(r.stages[i].seed) + ")");
  }
  return c.problems;
}

namespace {

// `rebase: ["OLD=NEW", ...]`: every path the recipe reads that is OLD or lies under OLD/ moves
// under NEW. The first matching entry wins.
void apply_rebase(Recipe& r, Problems& problems) {
  std::vector<std::pair<std::string, std::string>> rules;
  for (size_t i = 0; i < r.rebase.size(); ++i) {
    const std::string& e = r.rebase[i];
    const size_t eq = e.find('=');
    std::string from = eq == std::string::npos ? "" : trim(e.substr(0, eq));
    std::string to = eq == std::string::npos ? "" : trim(e.substr(eq + 1));
    while (from.size() > 1 && from.back() == '/') from.pop_back();
    while (to.size() > 1 && to.back() == '/') to.pop_back();
    if (from.empty() || to.empty()) {
      add(problems, "rebase[" + std::to_string(i) + "]: \"" + e + "\" must be OLD=NEW, e.g. data/world=runs/sweep/worlds/a/data");
      continue;
    }
    rules.emplace_back(from, to);
  }
  const auto move = [&](std::string& p) {
    for (const auto& [from, to] : rules)
      if (p == from || (p.size() > from.size() && p.compare(0, from.size(), from) == 0 && p[from.size()] == '/')) {
        p = to + p.substr(from.size());
        return;
      }
  };
  move(r.tokenizer.path);
  for (auto& f : r.tokenizer.train_files) move(f);
  move(r.model.from);
  for (auto& s : r.stages) {
    move(s.init);
    for (auto& src : s.data.sources) move(src.path);
    move(s.train.reference);
    move(s.train.kl_prompts);
  }
  for (auto& h : r.eval.heldout) move(h.path);
  for (auto& s : r.eval.suites) move(s);
}

}  // namespace

Recipe load_recipe(const std::string& path, const std::vector<std::string>& overrides) {
  std::vector<std::string> chain;
  Val root = load_tree(path, chain, "");
  Problems problems;
  for (const auto& o : overrides) apply_override(root, o, problems);
  expand_stages(root, problems);
  Recipe r;
  read(root, r, problems, {"data", "train"});
  r.source_path = path;
  apply_rebase(r, problems);
  for (const auto& p : validate(r)) add(problems, p);
  if (problems.empty()) return r;
  std::string msg;
  for (const auto& p : problems) msg += (msg.empty() ? "" : "\n") + path + ": " + p;
  throw Error(msg);
}

std::string to_yaml(const Recipe& r) {
  Recipe copy = r;  // the field tables take non-const references
  YAML::Emitter out;
  write(out, copy);
  return std::string(out.c_str()) + "\n";
}

std::string config_hash(const Recipe& r, int world) {
  Recipe copy = r;
  const Recipe defaults;
  for (auto& s : copy.stages) {
    s.train.batch_size *= s.train.grad_accum * world;
    s.train.grad_accum = 1;
  }
  copy.resume = defaults.resume;
  copy.allow_changed = defaults.allow_changed;
  copy.threads = defaults.threads;
  copy.out_dir = defaults.out_dir;
  copy.cache_dir = defaults.cache_dir;
  copy.preempt_signal = defaults.preempt_signal;
  copy.dist = defaults.dist;
  copy.log = defaults.log;  // what is logged does not change what is trained
  copy.eval.async = defaults.eval.async;  // nor when the eval runs
  copy.eval.threads = defaults.eval.threads;
  std::string text = to_yaml(copy);
  // A recipe that does not ask for deterministic CUDA kernels hashes as it did before the key
  // existed, so earlier runs still resume and the stage cache keeps its entries.
  if (!copy.deterministic) {
    const size_t at = text.find("\ndeterministic: false\n");
    if (at != std::string::npos) text.erase(at, std::string("\ndeterministic: false").size());
  }
  return hash_bytes(text);
}

}  // namespace ethos
