#include "launch/ablate.h"

#include <yaml-cpp/yaml.h>

#include <chrono>
#include <filesystem>
#include <iostream>
#include <map>
#include <set>
#include <thread>

#include "datasets/base/util.h"
#include "datasets/base/yaml.h"
#include "datasets/world/generate.h"
#include "datasets/world/spec.h"
#include "eval/report/report.h"
#include "eval/score/suite_hook.h"
#include "trainer/config.h"
#include "trainer/dist/env.h"
#include "trainer/trainer.h"

#include <nlohmann/json.hpp>

namespace fs = std::filesystem;

namespace ethos {

std::string AblationCell::unit() const {
  return (base_seed >= 0 ? "base" + std::to_string(base_seed) + "-" : "") + "seed" + std::to_string(seed);
}

std::string world_root(const AblationMatrix& m, const std::string& name) {
  return (fs::path(m.out) / "worlds" / name).string();
}

namespace {

// Indices of the recipe's shared stages (they take the base seed).
std::vector<size_t> shared_stages(const std::string& recipe, const std::vector<std::string>& overrides) {
  const Recipe r = load_recipe(recipe, overrides);
  std::vector<size_t> out;
  for (size_t i = 0; i < r.stages.size(); ++i)
    if (r.stages[i].share) out.push_back(i);
  return out;
}

// The overrides that point a recipe at world `w`: its data directory, and its tokenizer when the
// tokenizer is trained from the world's files.
std::vector<std::string> world_overrides(const AblationMatrix& m, const std::string& w, const std::string& recipe,
                                         const std::vector<std::string>& before) {
  const std::string root = world_root(m, w);
  std::vector<std::string> rules = {m.world_dir + "=" + root + "/data"};
  const Recipe r = load_recipe(recipe, before);
  bool from_world = !r.tokenizer.train_files.empty();
  for (const auto& f : r.tokenizer.train_files)
    from_world = from_world && (f == m.world_dir || f.rfind(m.world_dir + "/", 0) == 0);
  if (from_world) rules.push_back(r.tokenizer.path + "=" + root + "/tokenizer.model");
  std::string list;
  for (const auto& rule : rules) list += (list.empty() ? "" : ", ") + nlohmann::json(rule).dump();
  return {"rebase=[" + list + "]"};
}

// Every combination of axis values (indices), the first axis outermost.
std::vector<std::vector<size_t>> axis_combinations(const std::vector<MatrixAxis>& axes) {
  std::vector<std::vector<size_t>> out = {{}};
  for (const auto& a : axes) {
    std::vector<std::vector<size_t>> next;
    for (const auto& c : out)
      for (size_t v = 0; v < a.values.size(); ++v) {
        next.push_back(c);
        next.back().push_back(v);
      }
    out = std::move(next);
  }
  return out;
}

// The world file with its knobs set and its paths made absolute, as generated.
std::string derived_world(const MatrixWorld& w) {
  YAML::Node y = load_yaml_file(w.config);
  const fs::path dir = fs::absolute(fs::path(w.config)).parent_path();
  const auto absolute = [&](const std::string& p) { return fs::path(p).is_absolute() ? p : (dir / p).lexically_normal().string(); };
  if (y["data"] && y["data"].IsSequence())
    for (size_t i = 0; i < y["data"].size(); ++i) y["data"][i] = absolute(y["data"][i].as<std::string>());
  if (y["splits"] && y["splits"].IsScalar()) y["splits"] = absolute(y["splits"].as<std::string>());
  for (const auto& s : w.set) {
    const size_t eq = s.find('=');
    const std::vector<std::string> parts = split(s.substr(0, eq), '.');
    YAML::Node value = YAML::Load(s.substr(eq + 1));
    check_yaml_expansion(value, w.config + " (world " + w.name + ", set " + s.substr(0, eq) + ")");
    // Descend by reassigning references (yaml-cpp nodes are handles).
    std::vector<YAML::Node> chain = {y};
    for (size_t i = 0; i + 1 < parts.size(); ++i) {
      YAML::Node child = chain.back()[parts[i]];
      if (!child.IsMap()) child = YAML::Node(YAML::NodeType::Map);
      chain.back()[parts[i]] = child;
      chain.push_back(chain.back()[parts[i]]);
    }
    chain.back()[parts.back()] = value;
  }
  YAML::Emitter out;
  out << y;
  return "# Written by ethos ablate from " + w.config + (w.set.empty() ? "" : " with " + join(w.set)) + "\n" +
         out.c_str() + "\n";
}

// What a world's generated data depends on: its derived text, its data files, seed and generator.
std::string world_stamp(const AblationMatrix& m, const MatrixWorld& w, const std::string& text, const std::string& file) {
  const World loaded = load_world(file);
  std::string h = hash_bytes(text) + "|" + std::to_string(m.world_seed) + "|" + kWorldGeneratorVersion;
  for (const auto& f : loaded.files)
    if (f != file) h += "|" + hash_file(f);
  return hash_bytes(h);
}

std::string run_dir_of(const AblationMatrix& m, const std::string& stem, const AblationCell& c) {
  return (fs::path(m.out) / stem / c.unit()).string();
}

// A value or name that is part of a directory name.
bool dir_safe(const std::string& s) {
  if (s.empty() || s == "." || s == "..") return false;
  for (char ch : s)
    if (!(std::isalnum(static_cast<unsigned char>(ch)) || ch == '.' || ch == '_' || ch == '+' || ch == '-')) return false;
  return true;
}

}  // namespace

std::vector<AblationCell> ablation_cells(const AblationMatrix& m) {
  std::vector<AblationCell> cells;
  const std::vector<int64_t> bases = m.base_seeds.empty() ? std::vector<int64_t>{-1} : m.base_seeds;
  std::vector<const MatrixWorld*> worlds;
  for (const auto& w : m.worlds) worlds.push_back(&w);
  if (worlds.empty()) worlds.push_back(nullptr);
  const auto combos = axis_combinations(m.axes);
  std::map<std::string, std::vector<size_t>> shared;  // recipe -> its shared stages
  for (int64_t base : bases)
    for (int64_t seed : m.seeds)
      for (const MatrixWorld* w : worlds)
        for (const auto& combo : combos)
          for (const auto& recipe : m.recipes) {
            const std::string world = w ? w->name : "";
            AblationCell c;
            c.recipe = recipe;
            c.seed = seed;
            c.base_seed = base;
            c.world = world;
            c.stem = fs::path(recipe).stem().string();
            if (!world.empty()) c.stem += "-world=" + world;
            c.overrides = m.overrides;
            if (w) c.overrides.insert(c.overrides.end(), w->overrides.begin(), w->overrides.end());
            for (size_t a = 0; a < m.axes.size(); ++a) {
              const std::string& v = m.axes[a].values[combo[a]];
              c.axis_values.emplace_back(m.axes[a].name, v);
              c.stem += "-" + m.axes[a].name + "=" + v;
              c.overrides.push_back(m.axes[a].key + "=" + v);
            }
            try {  // the world and the base seeds depend on what the recipe says
              if (!world.empty()) {
                const auto wo = world_overrides(m, world, recipe, c.overrides);
                c.overrides.insert(c.overrides.end(), wo.begin(), wo.end());
              }
              c.overrides.push_back("seed=" + std::to_string(seed));
              if (base >= 0) {
                if (!shared.count(recipe)) shared[recipe] = shared_stages(recipe, c.overrides);
                for (size_t i : shared[recipe]) c.overrides.push_back("stages." + std::to_string(i) + ".seed=" + std::to_string(base));
              }
            } catch (const Error& e) {
              throw Error("cell " + c.stem + " (recipe " + recipe + "):\n" + e.what());
            }
            c.dir = run_dir_of(m, c.stem, c);
            c.overrides.push_back("out_dir=" + c.dir);
            cells.push_back(std::move(c));
          }
  return cells;
}

void write_ablation_manifest(const AblationMatrix& m, const std::vector<AblationCell>& all) {
  nlohmann::json cells = nlohmann::json::array();
  for (const auto& c : all) {
    nlohmann::json j = {{"recipe", c.stem}, {"recipe_file", c.recipe}, {"seed", c.seed},
                        {"dir", fs::path(c.dir).lexically_relative(m.out).string()}};
    if (c.base_seed >= 0) j["base_seed"] = c.base_seed;
    if (!c.world.empty()) j["world"] = c.world;
    if (!c.axis_values.empty()) {
      j["axes"] = nlohmann::json::object();
      for (const auto& [k, v] : c.axis_values) j["axes"][k] = v;
    }
    cells.push_back(j);
  }
  fs::create_directories(m.out);
  write_file_atomic((fs::path(m.out) / "ablation.json").string(),
                    nlohmann::json{{"name", m.name}, {"matrix", m.path}, {"cells", cells}}.dump(1) + "\n");
}

namespace {

const std::vector<std::string> kMatrixKeys = {"name", "out", "recipes", "seeds", "base_seeds", "axes", "worlds", "overrides"};

std::string at_line(const std::string& path, const YAML::Node& n) {
  return path + ":" + std::to_string(n.Mark().line + 1) + ": ";
}

void unknown_keys(const YAML::Node& map, const std::vector<std::string>& keys, const std::string& path,
                  const std::string& where, std::vector<std::string>& problems) {
  for (const auto& kv : map) {
    const std::string k = kv.first.as<std::string>();
    if (std::find(keys.begin(), keys.end(), k) != keys.end()) continue;
    const std::string near = nearest(k, keys);  // unquoted here: a matrix key reads as a word
    problems.push_back(at_line(path, kv.first) + where + k + ": unknown key" +
                       in_parens(near.empty() ? "" : "did you mean " + near + "?") + "; valid keys: " + join(keys));
  }
}

std::vector<int64_t> seed_list(const YAML::Node& n) {
  std::vector<int64_t> out;
  for (const auto& s : n) out.push_back(s.as<int64_t>());
  return out;
}

void read_axes(const YAML::Node& y, const std::string& path, AblationMatrix& m, std::vector<std::string>& problems) {
  if (!y.IsMap()) {
    problems.push_back(at_line(path, y) + "axes: a map of recipe key -> list of values, e.g. model.arch.hidden_size: [64, 128]");
    return;
  }
  std::set<std::string> names;
  for (const auto& kv : y) {
    MatrixAxis a;
    a.key = kv.first.as<std::string>();
    const std::string at = at_line(path, kv.first) + "axes." + a.key + ": ";
    YAML::Node values = kv.second;
    if (kv.second.IsMap()) {
      for (const auto& e : kv.second) {
        const std::string k = e.first.as<std::string>();
        if (k != "name" && k != "values") problems.push_back(at + k + ": unknown key; valid keys: name, values");
      }
      if (kv.second["name"]) a.name = kv.second["name"].as<std::string>();
      values = kv.second["values"];
    }
    if (a.name.empty()) a.name = split(a.key, '.').back();
    if (!values || !values.IsSequence() || values.size() == 0) {
      problems.push_back(at + "needs a non-empty list of values, e.g. [64, 128] (or {name: N, values: [...]})");
      continue;
    }
    for (const auto& v : values) {
      if (!v.IsScalar()) {
        problems.push_back(at + "each value must be a single value (a number or a word), not a list or map");
        continue;
      }
      if (!dir_safe(v.Scalar()))
        problems.push_back(at + "value \"" + v.Scalar() + "\" cannot be part of a directory name (letters, digits, . _ + - only)");
      if (std::find(a.values.begin(), a.values.end(), v.Scalar()) != a.values.end())
        problems.push_back(at + "value " + v.Scalar() + " is listed twice");
      a.values.push_back(v.Scalar());
    }
    if (!dir_safe(a.name)) problems.push_back(at + "name \"" + a.name + "\" cannot be part of a directory name (letters, digits, . _ + - only)");
    if (a.name == "world" || !names.insert(a.name).second)
      problems.push_back(at + "two axes are named " + a.name + " in run directories; give one a name: {name: N, values: [...]}");
    m.axes.push_back(std::move(a));
  }
}

void read_worlds(const YAML::Node& y, const std::string& path, AblationMatrix& m, std::vector<std::string>& problems) {
  const std::string where = at_line(path, y) + "worlds: ";
  if (!y.IsMap()) {
    problems.push_back(where + "a map {data_dir: data/world, seed: 7, list: [{name: a, world: FILE, set: {...}}]}");
    return;
  }
  unknown_keys(y, {"data_dir", "seed", "list"}, path, "worlds.", problems);
  if (!y["data_dir"]) problems.push_back(where + "data_dir: name the directory the recipes read the world from (e.g. data/world)");
  else m.world_dir = y["data_dir"].as<std::string>();
  while (m.world_dir.size() > 1 && m.world_dir.back() == '/') m.world_dir.pop_back();
  if (y["seed"]) m.world_seed = y["seed"].as<uint64_t>();
  if (!y["list"] || !y["list"].IsSequence() || y["list"].size() == 0) {
    problems.push_back(where + "list: give at least one world, e.g. [{name: default, world: ../datasets/world/default.yaml}]");
    return;
  }
  std::set<std::string> names;
  for (size_t i = 0; i < y["list"].size(); ++i) {
    const YAML::Node e = y["list"][i];
    const std::string at = at_line(path, e) + "worlds.list[" + std::to_string(i) + "]: ";
    if (!e.IsMap()) {
      problems.push_back(at + "a map {name: N, world: FILE, set: {knob: value}}");
      continue;
    }
    unknown_keys(e, {"name", "world", "set", "overrides"}, path, "worlds.list[" + std::to_string(i) + "].", problems);
    MatrixWorld w;
    if (e["name"]) w.name = e["name"].as<std::string>();
    if (!dir_safe(w.name)) problems.push_back(at + "name: \"" + w.name + "\" must name a directory (letters, digits, . _ + - only)");
    else if (!names.insert(w.name).second) problems.push_back(at + "name: two worlds are named " + w.name);
    if (!e["world"]) {
      problems.push_back(at + "world: name the world file (relative to the matrix), e.g. ../datasets/world/default.yaml");
      continue;
    }
    w.config = (fs::path(path).parent_path() / e["world"].as<std::string>()).lexically_normal().string();
    if (!fs::exists(w.config)) problems.push_back(at + "world: file not found: " + w.config + " (paths are relative to the matrix file)");
    if (e["set"]) {
      if (!e["set"].IsMap()) problems.push_back(at + "set: a map of world key -> value, e.g. {pretrain.fiction_share: 0.5}");
      else
        for (const auto& kv : e["set"]) {
          if (!kv.second.IsScalar()) {
            problems.push_back(at + "set." + kv.first.as<std::string>() + ": must be a single value");
            continue;
          }
          w.set.push_back(kv.first.as<std::string>() + "=" + kv.second.Scalar());
        }
    }
    if (e["overrides"]) {
      const YAML::Node o = e["overrides"];
      bool ok = o.IsSequence();
      for (size_t k = 0; ok && k < o.size(); ++k) {
        ok = o[k].IsScalar() && o[k].Scalar().find('=') != std::string::npos;
        if (ok) w.overrides.push_back(o[k].Scalar());
      }
      if (!ok)
        problems.push_back(at + "overrides: a list of recipe key=value for this world's runs, e.g. "
                                "[\"stages.1.data.sources.0.weight=0.25\"]");
    }
    m.worlds.push_back(std::move(w));
  }
}

}  // namespace

static AblationMatrix read_matrix(const std::string& path, const std::vector<std::string>& extra);

// A value of the wrong shape that yaml-cpp cannot convert (a list where a name belongs) is an
// Error naming the file, like every other problem of the matrix.
AblationMatrix load_matrix(const std::string& path, const std::vector<std::string>& extra) {
  try {
    return read_matrix(path, extra);
  } catch (const YAML::Exception& e) {
    throw Error("ablation matrix " + path + ":" + std::to_string(e.mark.line + 1) + ": " + e.msg +
                " (a value has the wrong shape: see launch/ablate.h for the format)");
  }
}

static AblationMatrix read_matrix(const std::string& path, const std::vector<std::string>& extra) {
  const YAML::Node y = load_yaml_file(path);
  std::vector<std::string> problems;
  if (!y.IsMap()) throw Error("ablation matrix " + path + ": expected a map with recipes: and seeds: (see launch/ablate.h)");
  unknown_keys(y, kMatrixKeys, path, "", problems);
  AblationMatrix m;
  m.path = path;
  try {
    m.name = y["name"] ? y["name"].as<std::string>() : fs::path(path).stem().string();
    m.out = y["out"] ? y["out"].as<std::string>() : "runs/" + m.name;
    if (y["recipes"])
      for (const auto& r : y["recipes"]) m.recipes.push_back((fs::path(path).parent_path() / r.as<std::string>()).string());
    if (y["seeds"]) m.seeds = seed_list(y["seeds"]);
    if (y["base_seeds"]) m.base_seeds = seed_list(y["base_seeds"]);
    if (y["overrides"])
      for (const auto& o : y["overrides"]) m.overrides.push_back(o.as<std::string>());
    if (y["axes"]) read_axes(y["axes"], path, m, problems);
    if (y["worlds"]) read_worlds(y["worlds"], path, m, problems);
  } catch (const YAML::Exception& e) {
    problems.push_back(path + ":" + std::to_string(e.mark.line + 1) + ": " + e.msg +
                       " (recipes: a list of recipe files, seeds and base_seeds: lists of integers, overrides: a list of "
                       "key=value, axes: key -> list of values, worlds: see launch/ablate.h)");
  }
  m.overrides.insert(m.overrides.end(), extra.begin(), extra.end());
  if (m.recipes.empty()) problems.push_back(path + ": recipes: list at least one recipe file");
  if (m.seeds.empty()) problems.push_back(path + ": seeds: list at least one seed, e.g. [0, 1, 2]");
  for (int64_t b : m.base_seeds)
    if (b < 0) problems.push_back(path + ": base_seeds: " + std::to_string(b) + " is negative (seeds of the base are >= 0)");
  std::set<std::string> stems;
  for (const auto& r : m.recipes)
    if (!stems.insert(fs::path(r).stem().string()).second)
      problems.push_back(path + ": recipes: two recipes are named " + fs::path(r).stem().string() +
                         " (runs are stored by file stem; rename one)");
  // Every world loads with its knobs set (the generator's own checks, before anything runs).
  for (const auto& w : m.worlds) {
    if (!fs::exists(w.config)) continue;
    const std::string tmp = (fs::temp_directory_path() / ("ethos-world-" + unique_suffix() + ".yaml")).string();
    try {
      write_file_atomic(tmp, derived_world(w));
      load_world(tmp);
    } catch (const std::exception& e) {
      std::string msg = e.what();
      for (size_t p; (p = msg.find(tmp)) != std::string::npos;) msg.replace(p, tmp.size(), w.config + " (world " + w.name + ")");
      problems.push_back(path + ": worlds: " + w.name + ": " + msg);
    }
    fs::remove(tmp);
  }
  if (problems.empty()) {
    // Every cell's recipe loads (each axis value, world and seed), once per distinct recipe x axis value.
    std::set<std::string> tried;
    std::vector<AblationCell> cells;
    try {
      cells = ablation_cells(m);
    } catch (const Error& e) {
      problems.push_back(e.what());
    }
    for (const auto& c : cells) {
      if (c.seed != m.seeds.front() || (c.base_seed >= 0 && c.base_seed != m.base_seeds.front())) continue;
      try {
        load_recipe(c.recipe, c.overrides);
      } catch (const Error& e) {
        std::string what = e.what();
        if (tried.insert(what).second) problems.push_back("cell " + c.stem + " (recipe " + c.recipe + "):\n" + what);
      }
    }
  }
  if (!problems.empty()) {
    std::string msg = "ablation matrix " + path + " has problems:";
    for (const auto& p : problems) msg += "\n  " + p;
    throw Error(msg);
  }
  return m;
}

void prepare_worlds(const AblationMatrix& m) {
  for (const auto& w : m.worlds) {
    const fs::path root = world_root(m, w.name);
    fs::create_directories(root);
    const std::string file = (root / "world.yaml").string(), text = derived_world(w);
    write_file_atomic(file, text);
    const std::string stamp = world_stamp(m, w, text, file);
    const fs::path stamp_file = root / "generated.json";
    if (fs::exists(stamp_file) && fs::exists(root / "data" / "manifest.json")) {
      const auto j = nlohmann::json::parse(read_file(stamp_file.string()), nullptr, /*allow_exceptions=*/false);
      if (j.is_object() && j.value("stamp", "") == stamp) {
        std::cerr << "[ablate] world " << w.name << ": up to date in " << (root / "data").string() << std::endl;
        continue;
      }
    }
    std::cerr << "[ablate] world " << w.name << ": generating " << (root / "data").string() << " (seed " << m.world_seed
              << (w.set.empty() ? "" : ", " + join(w.set)) << ")" << std::endl;
    WorldGenerateArgs a;
    a.world = file;
    a.seed = m.world_seed;
    a.out = (root / "data").string();
    a.quiet = true;
    const auto r = generate_world(a);
    write_file_atomic(stamp_file.string(),
                      nlohmann::json{{"stamp", stamp}, {"world", w.config}, {"set", w.set}, {"seed", m.world_seed},
                                     {"generator", kWorldGeneratorVersion}, {"seconds", r.seconds}}.dump(1) + "\n");
  }
}

namespace {
std::ostream& null_stream() {  // writes go nowhere
  static std::ostream none(nullptr);
  return none;
}

// Ranks other than 0 wait for rank 0 to generate the worlds.
void wait_for_worlds(const AblationMatrix& m) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::hours(2);
  for (const auto& w : m.worlds) {
    const fs::path root = world_root(m, w.name);
    const fs::path file = root / "world.yaml", stamp_file = root / "generated.json";
    const std::string text = derived_world(w);
    std::string expected;  // the stamp of this world, computed once rank 0 has written its file
    for (;;) {
      if (expected.empty() && fs::exists(file) && read_file(file.string()) == text)
        expected = world_stamp(m, w, text, file.string());
      if (!expected.empty() && fs::exists(stamp_file)) {
        const auto j = nlohmann::json::parse(read_file(stamp_file.string()), nullptr, false);
        if (j.is_object() && j.value("stamp", "") == expected) break;
      }
      if (std::chrono::steady_clock::now() > deadline)
        throw Error("rank " + std::to_string(dist_env().rank) + ": world " + w.name + " was not generated by rank 0 within 2 hours (" +
                    stamp_file.string() + ")");
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
  }
}
}  // namespace

int run_ablation(const AblationMatrix& m, const AblateOptions& opt) {
  // Under `ethos launch` every rank runs the same loop: each run is one data-parallel job of
  // all ranks (train() joins them); rank 0 alone talks and writes the report.
  const bool main = dist_env().rank == 0;
  std::ostream& say = main ? std::cerr : null_stream();
  const auto cells = ablation_cells(m);
  const size_t total = cells.size();
  say << "[ablate] " << m.name << ": " << m.recipes.size() << " recipes";
  if (!m.worlds.empty()) say << " x " << m.worlds.size() << " worlds";
  for (const auto& a : m.axes) say << " x " << a.values.size() << " " << a.name;
  if (!m.base_seeds.empty()) say << " x " << m.base_seeds.size() << " base seeds";
  say << " x " << m.seeds.size() << " seeds = " << total << " runs into " << m.out << std::endl;
  size_t n = 0;
  const auto t0 = std::chrono::steady_clock::now();
  if (!opt.dry_run) {
    if (main) {
      prepare_worlds(m);
      write_ablation_manifest(m, cells);
    } else {
      wait_for_worlds(m);
    }
  }
  for (const auto& cell : cells) {
    ++n;
    say << "[ablate] run " << n << "/" << total << ": " << cell.stem << " " << cell.unit() << " -> " << cell.dir << std::endl;
    if (opt.dry_run) continue;
    const Recipe r = load_recipe(cell.recipe, cell.overrides);
    EvalHookList hooks;  // after every checkpoint: held-out loss, then the scenario suites
    add_recipe_hooks(hooks, r);
    train(r, hooks.empty() ? nullptr : &hooks, opt.train);
  }
  if (opt.dry_run) return 0;
  const double minutes = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / 60;
  say << "[ablate] " << total << " runs done in " << minutes << " min" << std::endl;
  return opt.report && main ? run_report(m.out) : 0;
}

}  // namespace ethos
