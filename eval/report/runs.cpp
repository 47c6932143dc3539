// `ethos report`, part 1: finding run directories and reading their event logs.
// Layout: RUNS_DIR/<recipe>/seed<k>/{eval.jsonl, train.jsonl (or either as .gz), config.yaml}, or RUNS_DIR/seed<k>/...
// (RUNS_DIR is then one recipe). A problem with one run is a note and the run is skipped; the
// report goes on with the others.
#include <yaml-cpp/yaml.h>
#include <zlib.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <functional>
#include <memory>
#include <regex>
#include <sstream>

#include "datasets/base/limits.h"
#include "datasets/base/util.h"
#include "datasets/base/yaml.h"
#include "eval/report/internal.h"

namespace fs = std::filesystem;

namespace ethos::report {

namespace {

using nlohmann::json;

// seed<k>, or base<b>-seed<k> (a matrix with base seeds).
bool seed_dir_name(const std::string& name, Unit* unit) {
  static const std::regex re("(?:base([0-9]+)-)?seed(-?[0-9]+)");
  std::smatch m;
  if (!std::regex_match(name, m, re)) return false;
  *unit = {m[1].matched ? std::stoll(m[1].str()) : -1, std::stoll(m[2].str())};
  return true;
}

std::string str(const json& j, const char* key, const std::string& fallback = "") {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : fallback;
}

double num(const json& j, const char* key, double fallback = 0) {
  auto it = j.find(key);
  return it != j.end() && it->is_number() ? it->get<double>() : fallback;
}

// Lines of a gzip-compressed file (a published study keeps its eval logs as eval.jsonl.gz), each
// at most kMaxRecordBytes like LineReader's; calls f(line, "path:line").
void gz_lines(const fs::path& path, const std::function<void(const std::string&, const std::string&)>& f) {
  const std::unique_ptr<gzFile_s, int (*)(gzFile)> in(gzopen(path.c_str(), "rb"), gzclose);
  if (!in) throw Error("report: cannot open " + path.string() + ": " + std::strerror(errno));
  const uint64_t max = limit_value(kMaxRecordBytes);
  std::vector<char> buf(1 << 16);
  std::string line;
  size_t number = 0;
  auto emit = [&] {
    ++number;
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
    f(line, path.string() + ":" + std::to_string(number));
    line.clear();
  };
  while (gzgets(in.get(), buf.data(), static_cast<int>(buf.size())) != nullptr) {
    line += buf.data();
    if (!line.empty() && line.back() == '\n') emit();
    else if (line.size() > max)
      throw Error(path.string() + ":" + std::to_string(number + 1) + ": a line longer than " + human_bytes(max) + "; " +
                  limit_hint(kMaxRecordBytes));
  }
  if (!line.empty()) emit();
  int code = Z_OK;
  const char* msg = gzerror(in.get(), &code);
  if (code != Z_OK && code != Z_STREAM_END)
    throw Error(path.string() + " is not a readable gzip file (" + msg + "); re-publish it or remove it");
}

// Parses a JSONL file (or its .gz); unreadable lines are counted, not fatal. A file that cannot
// be read (e.g. a truncated .gz) gives no events and a note saying why.
std::vector<json> read_jsonl(const fs::path& path, int* bad_lines, std::vector<std::string>* notes) {
  std::vector<json> out;
  auto take = [&](const std::string& line, const std::string& where) {
    if (trim(line).empty()) return;
    json j = parse_json(line, where, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object()) ++*bad_lines;
    else out.push_back(std::move(j));
  };
  try {
    if (path.extension() == ".gz") {
      gz_lines(path, take);
    } else {
      LineReader in(path.string(), "run log");
      std::string line;
      while (in.next(line)) take(line, in.where());
    }
  } catch (const Error& e) {
    notes->push_back(e.what());
    return {};
  }
  return out;
}

void read_eval(Run& run, const fs::path& path, std::vector<std::string>* notes) {
  int bad = 0;
  for (const json& e : read_jsonl(path, &bad, notes)) {  // unreadable: no events, and the run is skipped
    if (str(e, "event") != "eval" || !e.contains("step") || !e.contains("value") || !e["value"].is_number()) continue;
    SeriesKey k{str(e, "suite"), str(e, "scorer"),     str(e, "mode"),          str(e, "normalize"),
                str(e, "split"), str(e, "group", "all"), str(e, "group_value", "all"), str(e, "metric")};
    if (k.metric.empty() || k.suite.empty()) continue;
    Point p;
    p.value = e["value"].get<double>();
    if (e.contains("k") && e["k"].is_number_integer()) p.k = e["k"].get<int64_t>();
    if (e.contains("n") && e["n"].is_number_integer()) p.n = e["n"].get<int64_t>();
    p.ci_low = num(e, "ci_low", kNaN);
    p.ci_high = num(e, "ci_high", kNaN);
    if (e.contains("subsample") && e["subsample"].is_number_integer()) p.subsample = e["subsample"].get<int64_t>();
    run.series[k][static_cast<int64_t>(num(e, "step"))] = p;
  }
  if (bad) notes->push_back(path.string() + ": " + std::to_string(bad) + " unreadable line(s) ignored");
}

void read_train(Run& run, const fs::path& path, std::vector<std::string>* notes) {
  int bad = 0;
  std::map<int64_t, json> train;  // step -> last event (a resume rewrites steps)
  std::string reused_stage;  // a first stage restored from the stage cache, and its step
  int64_t reused_step = -1;
  for (const json& e : read_jsonl(path, &bad, notes)) {  // unreadable: no training curve or timings
    const std::string ev = str(e, "event");
    if (ev == "train" && e.contains("step")) train[static_cast<int64_t>(num(e, "step"))] = e;
    else if (ev == "stage_reused" && reused_stage.empty() && train.empty()) {
      reused_stage = str(e, "stage");
      reused_step = static_cast<int64_t>(num(e, "step"));
    }
    else if (ev == "checkpoint") run.checkpoint_seconds += num(e, "seconds");
    else if (ev == "eval_hook") {  // an eval.async one ran beside training: only its eval_wait cost wall time
      if (!e.value("async", false)) run.eval_seconds += num(e, "seconds");
      ++run.eval_hooks;
    } else if (ev == "eval_wait") {
      run.eval_seconds += num(e, "seconds");
    }
  }
  for (const auto& [step, e] : train) {
    run.train_loss[step] = num(e, "loss", kNaN);
    run.train_seconds += num(e, "seconds");
    run.tokens += static_cast<int64_t>(num(e, "tokens"));
  }
  // The first stage is the one restored from the stage cache (when the run begins with one), else
  // the stage of the first trained step; it ends at its last step, and alignment begins there.
  std::string first = reused_stage;
  if (first.empty() && !train.empty()) first = str(train.begin()->second, "stage");
  int64_t start = reused_step;
  for (const auto& [step, e] : train)
    if (str(e, "stage") == first) start = std::max(start, step);
  if (start >= 0) {
    int64_t since = 0;
    run.align_tokens[start] = 0;
    for (auto it = train.upper_bound(start); it != train.end(); ++it) {
      since += static_cast<int64_t>(num(it->second, "tokens"));
      run.align_tokens[it->first] = since;
    }
  }
  if (bad) notes->push_back(path.string() + ": " + std::to_string(bad) + " unreadable line(s) ignored");
}

// Cross-checks config.yaml's name/seed against the directory; notes a mismatch.
void read_config(const Run& run, const fs::path& path, std::vector<std::string>* notes) {
  try {
    const YAML::Node c = load_yaml_file(path.string());
    if (c["seed"] && c["seed"].IsScalar() && c["seed"].as<int64_t>() != run.seed)
      notes->push_back(path.string() + ": seed " + c["seed"].Scalar() + " differs from the directory name seed" +
                       std::to_string(run.seed) + " (the directory's seed is used for pairing)");
  } catch (const YAML::Exception& e) {  // a value of the wrong type
    notes->push_back(path.string() + ": unreadable YAML (" + e.msg + "); ignored");
  } catch (const Error& e) {  // a syntax error
    notes->push_back(std::string(e.what()) + "; ignored");
  }
}

void load_run(const fs::path& dir, const std::string& recipe, const Unit& unit, Loaded* out) {
  Run run;
  run.recipe = recipe;
  run.dir = dir.string();
  run.base_seed = unit.first;
  run.seed = unit.second;
  // A published study (recipes/results/) keeps eval.jsonl and train.jsonl compressed.
  auto plain_or_gz = [&](const std::string& name) {
    return fs::exists(dir / name) || !fs::exists(dir / (name + ".gz")) ? dir / name : dir / (name + ".gz");
  };
  const fs::path eval = plain_or_gz("eval.jsonl"), train = plain_or_gz("train.jsonl"), config = dir / "config.yaml";
  if (!fs::exists(eval)) {
    out->notes.push_back("skipped " + dir.string() + ": no eval.jsonl (was the run trained with eval suites or "
                         "held-out files in its recipe, or scored with `ethos eval`?)");
    return;
  }
  read_eval(run, eval, &out->notes);
  if (run.series.empty()) {
    out->notes.push_back("skipped " + dir.string() + ": eval.jsonl has no eval events");
    return;
  }
  if (fs::exists(train)) read_train(run, train, &out->notes);
  else out->notes.push_back(dir.string() + ": no train.jsonl (training loss and eval wall-time share not shown)");
  if (fs::exists(config)) read_config(run, config, &out->notes);
  else out->notes.push_back(dir.string() + ": no config.yaml (recipe and seed taken from the directory names)");
  out->runs.push_back(std::move(run));
}

std::vector<fs::path> sorted_subdirs(const fs::path& dir) {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_directory()) out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}

// seed<k> (and base<b>-seed<k>) subdirectories of `dir`, sorted by (base seed, seed).
std::vector<std::pair<Unit, fs::path>> seed_dirs(const fs::path& dir) {
  std::vector<std::pair<Unit, fs::path>> out;
  for (const auto& d : sorted_subdirs(dir)) {
    Unit unit;
    if (seed_dir_name(d.filename().string(), &unit)) out.emplace_back(unit, d);
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

std::string unit_name(const Unit& u) {
  return u.first < 0 ? std::to_string(u.second) : "base" + std::to_string(u.first) + "-seed" + std::to_string(u.second);
}
nlohmann::json unit_json(const Unit& u) { return u.first < 0 ? nlohmann::json(u.second) : nlohmann::json(unit_name(u)); }

bool has_alignment_phase(const std::vector<Run>& runs) {
  for (const auto& r : runs)
    if (r.align_tokens.size() > 1) return true;
  return false;
}

bool recipe_less(const std::string& a, const std::string& b) {
  // The project's recipe ids come first (R0..R6 as in recipes/README.md), then controls and the rest.
  auto rank = [](const std::string& s) {
    return s.size() >= 2 && (s[0] == 'r' || s[0] == 'R') && std::isdigit(static_cast<unsigned char>(s[1])) ? 0 : 1;
  };
  if (rank(a) != rank(b)) return rank(a) < rank(b);
  // Natural order: runs of digits compare as numbers (r2 < r10).
  size_t i = 0, j = 0;
  while (i < a.size() && j < b.size()) {
    if (std::isdigit(static_cast<unsigned char>(a[i])) && std::isdigit(static_cast<unsigned char>(b[j]))) {
      size_t ei = i, ej = j;
      while (ei < a.size() && std::isdigit(static_cast<unsigned char>(a[ei]))) ++ei;
      while (ej < b.size() && std::isdigit(static_cast<unsigned char>(b[ej]))) ++ej;
      const std::string na = a.substr(i, ei - i), nb = b.substr(j, ej - j);
      const std::string ta = na.substr(std::min(na.find_first_not_of('0'), na.size() - 1));
      const std::string tb = nb.substr(std::min(nb.find_first_not_of('0'), nb.size() - 1));
      if (ta.size() != tb.size()) return ta.size() < tb.size();
      if (ta != tb) return ta < tb;
      i = ei;
      j = ej;
    } else {
      if (a[i] != b[j]) return a[i] < b[j];
      ++i;
      ++j;
    }
  }
  if ((a.size() - i) != (b.size() - j)) return a.size() - i < b.size() - j;
  return a < b;
}

Loaded load_runs(const std::string& runs_dir, const std::string& out_dir) {
  if (!fs::is_directory(runs_dir))
    throw Error("report: runs directory '" + runs_dir + "' does not exist; give the directory that holds "
                "<recipe>/seed<k>/ run directories (e.g. runs/why_beats_rule)");
  Loaded out;
  const fs::path root = fs::path(runs_dir);
  const std::string recipe_of_root = fs::weakly_canonical(root).filename().string();
  const auto direct = seed_dirs(root);
  for (const auto& [seed, dir] : direct) load_run(dir, recipe_of_root, seed, &out);
  const fs::path out_canon = out_dir.empty() ? fs::path() : fs::weakly_canonical(out_dir);
  for (const auto& d : sorted_subdirs(root)) {
    Unit ignored;
    if (seed_dir_name(d.filename().string(), &ignored)) continue;
    if (!out_canon.empty() && fs::weakly_canonical(d) == out_canon) continue;
    const auto seeds = seed_dirs(d);
    if (seeds.empty()) {
      if (d.filename() != "report" && d.filename() != "slurm" && d.filename() != "worlds") out.notes.push_back("ignored " + d.string() + ": no seed<k> run directories in it");
      continue;
    }
    for (const auto& [seed, dir] : seeds) load_run(dir, d.filename().string(), seed, &out);
  }
  // An ablation's manifest names every cell: a cell that did not finish (failed, stopped, still
  // running or never started) is named as missing, and its partial results are left out.
  const fs::path manifest = root / "ablation.json";
  if (fs::exists(manifest)) {
    const json m = json::parse(read_file(manifest.string()), nullptr, /*allow_exceptions=*/false);
    if (m.is_object() && m.contains("cells") && m["cells"].is_array()) {
      for (const json& c : m["cells"]) {
        const std::string recipe = str(c, "recipe"), rel = str(c, "dir");
        const int64_t seed = c.value("seed", int64_t{0}), base = c.value("base_seed", int64_t{-1});
        json status = nullptr;
        const fs::path st = root / rel / "status.json";
        if (fs::exists(st)) status = json::parse(read_file(st.string()), nullptr, /*allow_exceptions=*/false);
        const std::string state = status.is_object() ? str(status, "state", "unknown") : "not started";
        if (state == "done") continue;
        std::string error = status.is_object() ? str(status, "error") : "";
        if (const auto nl = error.find('\n'); nl != std::string::npos) error = error.substr(0, nl) + " ...";
        out.missing.push_back({{"recipe", recipe}, {"seed", seed}, {"state", state}, {"error", error}});
        if (base >= 0) out.missing.back()["base_seed"] = base;
        out.notes.push_back("missing cell " + recipe + "/" + (base >= 0 ? "base" + std::to_string(base) + "-" : "") + "seed" + std::to_string(seed) + " (" + state +
                            (error.empty() ? "" : ": " + error) + "): left out of the comparison");
        out.runs.erase(std::remove_if(out.runs.begin(), out.runs.end(),
                                      [&](const Run& r) { return r.recipe == recipe && r.seed == seed && r.base_seed == base; }),
                       out.runs.end());
      }
    }
  }
  std::sort(out.runs.begin(), out.runs.end(), [](const Run& a, const Run& b) {
    if (a.recipe != b.recipe) return recipe_less(a.recipe, b.recipe);
    return a.unit() < b.unit();
  });
  if (out.runs.empty()) {
    std::string msg = "report: no run with eval events under " + runs_dir +
                      " (expected <recipe>/seed<k>/eval.jsonl with {\"event\": \"eval\", ...} lines)";
    for (const auto& n : out.notes) msg += "\n  " + n;
    throw Error(msg);
  }
  return out;
}

}  // namespace ethos::report
