#include "launch/ablate.h"

#include <yaml-cpp/yaml.h>

#include <chrono>
#include <filesystem>
#include <iostream>
#include <set>

#include "datasets/base/util.h"
#include "datasets/base/yaml.h"
#include "eval/report/report.h"
#include "eval/score/suite_hook.h"
#include "trainer/config.h"
#include "trainer/dist/env.h"
#include "trainer/trainer.h"

#include <nlohmann/json.hpp>

namespace fs = std::filesystem;

namespace ethos {
namespace {

std::string run_dir_of(const AblationMatrix& m, const std::string& recipe, int64_t seed) {
  return (fs::path(m.out) / fs::path(recipe).stem() / ("seed" + std::to_string(seed))).string();
}

std::vector<std::string> run_overrides(const AblationMatrix& m, const std::string& recipe, int64_t seed) {
  std::vector<std::string> o = m.overrides;
  o.push_back("seed=" + std::to_string(seed));
  o.push_back("out_dir=" + run_dir_of(m, recipe, seed));
  return o;
}

}  // namespace

std::vector<AblationCell> ablation_cells(const AblationMatrix& m) {
  std::vector<AblationCell> cells;
  for (int64_t seed : m.seeds)
    for (const auto& recipe : m.recipes)
      cells.push_back({recipe, fs::path(recipe).stem().string(), seed, run_dir_of(m, recipe, seed),
                       run_overrides(m, recipe, seed)});
  return cells;
}

void write_ablation_manifest(const AblationMatrix& m) {
  nlohmann::json cells = nlohmann::json::array();
  for (const auto& c : ablation_cells(m))
    cells.push_back({{"recipe", c.stem}, {"seed", c.seed}, {"dir", fs::path(c.dir).lexically_relative(m.out).string()}});
  fs::create_directories(m.out);
  write_file_atomic((fs::path(m.out) / "ablation.json").string(),
                    nlohmann::json{{"name", m.name}, {"matrix", m.path}, {"cells", cells}}.dump(1) + "\n");
}

AblationMatrix load_matrix(const std::string& path, const std::vector<std::string>& extra) {
  const YAML::Node y = load_yaml_file(path);
  const std::vector<std::string> keys = {"name", "out", "recipes", "seeds", "overrides"};
  std::vector<std::string> problems;
  for (const auto& kv : y) {
    const std::string k = kv.first.as<std::string>();
    if (std::find(keys.begin(), keys.end(), k) == keys.end()) {
      const std::string near = nearest(k, keys);  // unquoted here: a matrix key reads as a word
      problems.push_back(path + ":" + std::to_string(kv.first.Mark().line + 1) + ": " + k + ": unknown key" +
                         in_parens(near.empty() ? "" : "did you mean " + near + "?") + "; valid keys: " + join(keys));
    }
  }
  AblationMatrix m;
  m.path = path;
  try {
    m.name = y["name"] ? y["name"].as<std::string>() : fs::path(path).stem().string();
    m.out = y["out"] ? y["out"].as<std::string>() : "runs/" + m.name;
    if (y["recipes"])
      for (const auto& r : y["recipes"]) m.recipes.push_back((fs::path(path).parent_path() / r.as<std::string>()).string());
    if (y["seeds"])
      for (const auto& s : y["seeds"]) m.seeds.push_back(s.as<int64_t>());
    if (y["overrides"])
      for (const auto& o : y["overrides"]) m.overrides.push_back(o.as<std::string>());
  } catch (const YAML::Exception& e) {
    problems.push_back(path + ":" + std::to_string(e.mark.line + 1) + ": " + e.msg +
                       " (recipes: a list of recipe files, seeds: a list of integers, overrides: a list of key=value)");
  }
  m.overrides.insert(m.overrides.end(), extra.begin(), extra.end());
  if (m.recipes.empty()) problems.push_back(path + ": recipes: list at least one recipe file");
  if (m.seeds.empty()) problems.push_back(path + ": seeds: list at least one seed, e.g. [0, 1, 2]");
  std::set<std::string> stems;
  for (const auto& r : m.recipes)
    if (!stems.insert(fs::path(r).stem().string()).second)
      problems.push_back(path + ": recipes: two recipes are named " + fs::path(r).stem().string() +
                         " (runs are stored by file stem; rename one)");
  if (problems.empty()) {
    for (const auto& r : m.recipes) {
      try {
        load_recipe(r, run_overrides(m, r, m.seeds.front()));
      } catch (const Error& e) {
        problems.push_back(std::string("recipe ") + r + ":\n" + e.what());
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

namespace {
std::ostream& null_stream() {  // writes go nowhere
  static std::ostream none(nullptr);
  return none;
}
}  // namespace

int run_ablation(const AblationMatrix& m, const AblateOptions& opt) {
  // Under `ethos launch` every rank runs the same loop: each run is one data-parallel job of
  // all ranks (train() joins them); rank 0 alone talks and writes the report.
  const bool main = dist_env().rank == 0;
  std::ostream& say = main ? std::cerr : null_stream();
  const size_t total = m.recipes.size() * m.seeds.size();
  say << "[ablate] " << m.name << ": " << m.recipes.size() << " recipes x " << m.seeds.size() << " seeds = "
            << total << " runs into " << m.out << std::endl;
  size_t n = 0;
  const auto t0 = std::chrono::steady_clock::now();
  // Seeds outermost: a shared stage (e.g. pre-training) is trained by the first recipe of each
  // seed and reused by the rest.
  if (!opt.dry_run && main) write_ablation_manifest(m);
  for (const auto& cell : ablation_cells(m)) {
    ++n;
    say << "[ablate] run " << n << "/" << total << ": " << cell.recipe << " seed " << cell.seed << " -> " << cell.dir
        << std::endl;
    if (opt.dry_run) continue;
    const Recipe r = load_recipe(cell.recipe, cell.overrides);
    EvalHookList hooks;  // after every checkpoint: held-out loss, then the scenario suites
    add_recipe_hooks(hooks, r);
    train(r, hooks.empty() ? nullptr : &hooks);
  }
  if (opt.dry_run) return 0;
  const double minutes = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / 60;
  say << "[ablate] " << total << " runs done in " << minutes << " min" << std::endl;
  return opt.report && main ? run_report(m.out) : 0;
}

}  // namespace ethos
