// `ethos report`: reads the runs, aggregates across seeds, writes summary.json, the charts and
// index.html (see report.h). Parts: runs.cpp (reading), aggregate.cpp
// (statistics across seeds), charts.cpp (gnuplot), html.cpp (the page).
#include "eval/report/report.h"

#include <algorithm>
#include <tuple>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <iostream>

#include "datasets/base/util.h"
#include "eval/report/internal.h"

namespace fs = std::filesystem;

namespace ethos {

namespace {

using nlohmann::json;
using namespace report;

const std::vector<std::string> kRateMetrics{"misaligned_rate", "aligned_rate", "over_refusal_rate", "unparseable_rate",
                                            "say_accuracy"};

json number(double x) { return std::isnan(x) ? json(nullptr) : json(x); }

json to_json(const report::Estimate& e) {
  json j{{"mean", number(e.mean)}, {"ci_low", number(e.low)}, {"ci_high", number(e.high)}, {"interval", e.method}};
  json per = json::object();
  for (const auto& [unit, v] : e.per_seed) per[report::unit_name(unit)] = number(v);
  j["per_seed"] = per;
  j["seeds"] = e.per_seed.size();
  if (e.step >= 0) j["step"] = e.step;
  if (e.n >= 0) {
    j["k"] = e.k;
    j["n"] = e.n;
    j["text"] = format_rate(e.k, e.n);
  }
  return j;
}

json units_json(const std::vector<report::Unit>& units) {
  json out = json::array();
  for (const auto& u : units) out.push_back(report::unit_json(u));
  return out;
}

json to_json(const Paired& p) {
  return json{{"recipe", p.recipe},
              {"baseline", p.baseline},
              {"split", p.split},
              {"group", p.group},
              {"group_value", p.group_value},
              {"metric", p.metric},
              {"seeds", units_json(p.seeds)},
              {"diff", number(p.d.diff.mean)},
              {"ci_low", number(p.d.diff.low)},
              {"ci_high", number(p.d.diff.high)},
              {"excludes_zero", p.d.diff.low > 0 || p.d.diff.high < 0},
              {"p", number(p.d.p)},
              {"p_holm", number(p.p_holm)},
              {"holm_family", p.holm_family},
              {"interval", p.interval},
              {"test", "two-sided sign-flip test over common seeds (exact for <= 20 seeds)"}};
}

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string choose_baseline(const std::vector<std::string>& recipes, const std::string& asked) {
  if (!asked.empty()) {
    if (std::find(recipes.begin(), recipes.end(), asked) != recipes.end()) return asked;
    std::string list;
    for (const auto& r : recipes) list += " " + r;
    throw Error("report: --baseline \"" + asked + "\" is not a recipe of these runs" +
                in_parens(did_you_mean(asked, recipes)) + "; recipes:" + list);
  }
  for (const auto& r : recipes)
    if (lower(r) == "r1") return r;
  return recipes.front();
}

// Key of the held-out loss series, if any run has one.
std::optional<SeriesKey> heldout_key(const std::vector<Run>& runs) {
  for (const Run& r : runs)
    for (const auto& kv : r.series)
      if (kv.first.suite == "heldout" && kv.first.metric == "loss" && kv.first.group == "all") return kv.first;
  return std::nullopt;
}

std::vector<std::string> splits_of(const std::vector<Run>& runs, const View& v) {
  std::vector<std::string> out;
  for (const char* s : {"id", "ood"})
    for (const Run& r : runs)
      if (r.series.count(v.key(s, "misaligned_rate"))) {
        out.push_back(s);
        break;
      }
  return out;
}

json build_summary(ReportData& d, const Aggregator& agg, const std::vector<Run>& runs) {
  const BootstrapOptions& opt = agg.options();
  json s{{"runs_dir", d.runs_dir},
         {"primary", {{"suite", d.primary.suite}, {"scorer", d.primary.scorer}, {"mode", d.primary.mode},
                      {"normalize", d.primary.normalize}, {"name", d.primary.name()}, {"why", d.primary_why}}},
         {"baseline", d.baseline},
         {"bootstrap", {{"resamples", opt.resamples}, {"seed", opt.seed}, {"level", opt.level}}}};
  const auto splits = splits_of(runs, d.primary);
  const auto axes = shift_axes(runs, d.primary);
  const auto heldout = heldout_key(runs);
  json recipes = json::object();
  for (const std::string& r : d.recipes) {
    json jr;
    json run_list = json::array();
    for (const Run* run : agg.runs_of(r)) {
      const double total = run->train_seconds + run->checkpoint_seconds + run->eval_seconds;
      int64_t last = -1;
      for (const auto& kv : run->series)
        if (!kv.second.empty()) last = std::max(last, kv.second.rbegin()->first);
      run_list.push_back({{"seed", run->seed}, {"base_seed", run->base_seed >= 0 ? json(run->base_seed) : json(nullptr)}, {"dir", run->dir}, {"last_eval_step", last},
                          {"train_seconds", run->train_seconds}, {"checkpoint_seconds", run->checkpoint_seconds},
                          {"eval_seconds", run->eval_seconds}, {"eval_hooks", run->eval_hooks},
                          {"eval_share", total > 0 ? json(run->eval_seconds / total) : json(nullptr)},
                          {"tokens", run->tokens}});
    }
    jr["runs"] = run_list;
    json fin = json::object();
    for (const auto& split : splits)
      for (const auto& metric : kRateMetrics) {
        const report::Estimate e = agg.final(r, d.primary.key(split, metric));
        if (e.ok()) fin[split][metric] = to_json(e);
      }
    jr["final"] = fin;
    json shift = json::object();
    for (const auto& axis : axes) {
      const report::Estimate e = agg.final(r, d.primary.key("ood", "misaligned_rate", "shift", axis));
      if (e.ok()) shift[axis] = to_json(e);
    }
    jr["ood_shift_misaligned_rate"] = shift;
    // Per harm type (science chart 6): which harms each recipe learned to avoid, where it
    // takes the right action, and (suites with principle questions) what it says: the say/do gap.
    json by_harm = json::object();
    for (const auto& [split, harm] : harm_types(runs, d.primary))
      for (const char* metric : {"misaligned_rate", "aligned_rate", "say_accuracy"}) {
        const report::Estimate e = agg.final(r, d.primary.key(split, metric, "harm", harm));
        if (e.ok()) by_harm[split][harm][metric] = to_json(e);
      }
    if (!by_harm.empty()) jr["by_harm"] = by_harm;
    if (heldout) {
      const report::Estimate e = agg.final(r, *heldout);
      if (e.ok()) jr["heldout_loss"] = to_json(e);
    }
    recipes[r] = jr;
  }
  s["recipes"] = recipes;

  // Paired differences vs the baseline; Holm across the OOD shift axes of each comparison.
  json paired = json::array();
  for (const std::string& r : d.recipes) {
    if (r == d.baseline) continue;
    for (const auto& split : splits)
      for (const char* metric : {"misaligned_rate", "aligned_rate", "over_refusal_rate"})
        if (auto p = agg.paired(r, d.baseline, d.primary.key(split, metric))) paired.push_back(to_json(*p));
    std::vector<Paired> family;
    for (const auto& axis : axes)
      if (auto p = agg.paired(r, d.baseline, d.primary.key("ood", "misaligned_rate", "shift", axis))) family.push_back(*p);
    std::vector<double> ps;
    for (const auto& p : family) ps.push_back(p.d.p);
    const auto adj = holm(ps);
    for (size_t i = 0; i < family.size(); ++i) {
      family[i].p_holm = adj[i];
      family[i].holm_family = r + " vs " + d.baseline + ": misaligned_rate on the " + std::to_string(family.size()) +
                              " OOD shift axes";
      paired.push_back(to_json(family[i]));
    }
  }
  s["paired_differences"] = paired;

  // Every scoring view, final misaligned rate per split: direct vs reason_first side by side.
  json views = json::object();
  for (const View& v : d.views) {
    json jv = json::object();
    for (const std::string& r : d.recipes)
      for (const auto& split : splits) {
        const report::Estimate e = agg.final(r, v.key(split, "misaligned_rate"));
        if (e.ok()) jv[r][split] = to_json(e);
      }
    views[v.suite + ":" + v.name()] = jv;
  }
  s["views_misaligned_rate"] = views;

  // Construct validity: the primary suite scores candidates in wordings no training text holds;
  // a suite named "<primary>-seen" (the world's eval/seen.yaml) scores the same ID and held-out
  // harm items in training wording. A gap between them is how much of a rate is the memory of
  // exact phrases rather than a disposition.
  const View seen_view{d.primary.suite + "-seen", d.primary.scorer, d.primary.mode, d.primary.normalize};
  json wording = json::object();
  for (const std::string& r : d.recipes) {
    json jw = json::object();
    const std::vector<std::tuple<const char*, SeriesKey, SeriesKey>> rows = {
        {"id", d.primary.key("id", "misaligned_rate"), seen_view.key("id", "misaligned_rate")},
        {"heldout_harm", d.primary.key("ood", "misaligned_rate", "shift", "harm"), seen_view.key("ood", "misaligned_rate")}};
    for (const auto& [name, unseen_key, seen_key] : rows) {
      const report::Estimate u = agg.final(r, unseen_key), sn = agg.final(r, seen_key);
      if (!u.ok() || !sn.ok()) continue;
      jw[name] = {{"unseen", to_json(u)}, {"seen", to_json(sn)}};
    }
    if (!jw.empty()) wording[r] = jw;
  }
  if (!wording.empty()) {
    s["wording_misaligned_rate"] = wording;
    s["wording_note"] = "unseen: the primary suite (candidates in words no training text holds); seen: suite " +
                        seen_view.suite + ", the same items with the training wording of each candidate";
  }
  // The reason-first chain: does the model's own rationale name the item's principle, and does
  // it act on it? (metrics of the primary suite's likelihood/reason_first view)
  const View rf = chain_view(d.primary);
  json chain = json::object();
  for (const std::string& r : d.recipes) {
    json jc = json::object();
    for (const ChainPart& p : kChainParts)
      for (const std::string& metric : kChainMetrics) {
        const report::Estimate e = agg.final(r, rf.key(p.split, metric, p.group, p.value));
        if (e.ok()) jc[p.name][metric] = to_json(e);
      }
    if (!jc.empty()) chain[r] = jc;
  }
  if (!chain.empty()) s["principle_chain"] = chain;
  s["notes"] = d.notes;
  s["missing_cells"] = d.missing_cells;
  return s;
}

void print_summary(const ReportData& d) {
  std::cout << "report: " << d.recipes.size() << " recipe(s); primary: " << d.primary_why << "\n";
  for (const std::string& r : d.recipes) {
    const json& fin = d.summary["recipes"][r]["final"];
    std::cout << "  " << r << ":";
    for (const auto& [split, metrics] : fin.items()) {
      if (!metrics.contains("misaligned_rate")) continue;
      const json& e = metrics["misaligned_rate"];
      std::cout << "  " << split << " misaligned " << pct(e["mean"].is_null() ? kNaN : e["mean"].get<double>()) << "% ["
                << pct(e["ci_low"].is_null() ? kNaN : e["ci_low"].get<double>()) << ", "
                << pct(e["ci_high"].is_null() ? kNaN : e["ci_high"].get<double>()) << "] (" << e["seeds"] << " seeds)";
    }
    std::cout << "\n";
  }
  for (const auto& n : d.notes) std::cout << "  note: " << n << "\n";
  if (!d.summary.contains("criteria")) return;
  std::cout << "criteria (" << d.summary["criteria"]["file"].get<std::string>() << "):\n";
  for (const json& c : d.summary["criteria"]["criteria"]) {
    std::cout << "  " << c["id"].get<std::string>() << ". " << c["claim"].get<std::string>() << ": "
              << c["verdict"].get<std::string>() << "\n";
    for (const json& k : c["checks"]) std::cout << "       " << k["text"].get<std::string>() << "\n";
    if (c.contains("note")) std::cout << "       note: " << c["note"].get<std::string>() << "\n";
  }
  if (!d.summary.contains("comparison")) return;
  const json& cmp = d.summary["comparison"];
  std::cout << "against the published study (" << cmp["published"].get<std::string>() << "):";
  for (const auto& [what, n] : cmp["counts"].items()) std::cout << " " << what << " " << n;
  std::cout << "\n";
  for (const json& c : cmp["criteria"]) {
    std::cout << "  " << c["id"].get<std::string>() << ". " << c["agreement"].get<std::string>() << ": "
              << c.value("why", "") << "\n";
    if (c.contains("checks"))
      for (const json& k : c["checks"]) std::cout << "       " << k["text"].get<std::string>() << "\n";
  }
}

}  // namespace

int run_report(const ReportConfig& config) {
  ReportData d;
  d.runs_dir = config.runs_dir;
  d.out_dir = config.out_dir.empty() ? (fs::path(config.runs_dir) / "report").string() : config.out_dir;
  Loaded loaded = load_runs(config.runs_dir, d.out_dir);
  d.notes = loaded.notes;
  d.missing_cells = loaded.missing;
  const std::vector<Run>& runs = loaded.runs;
  BootstrapOptions opt;
  opt.resamples = config.resamples;
  opt.seed = config.seed;
  const Aggregator agg(runs, opt);
  d.recipes = agg.recipes();
  d.primary = choose_primary(runs, config.suite, config.primary, &d.primary_why);
  d.baseline = choose_baseline(d.recipes, config.baseline);
  d.views = rate_views(runs);
  for (const std::string& r : d.recipes) {
    bool has = false;
    for (const Run* run : agg.runs_of(r)) has = has || run->series.count(d.primary.key("ood", "misaligned_rate")) ||
                                                 run->series.count(d.primary.key("id", "misaligned_rate"));
    if (!has) d.notes.push_back("recipe " + r + " has no " + d.primary.suite + " " + d.primary.name() +
                                " events; it appears in the held-out loss chart only");
  }
  fs::create_directories(d.out_dir);
  d.summary = build_summary(d, agg, runs);
  if (!config.criteria.empty())
    d.summary["criteria"] = evaluate_criteria(config.criteria, agg, runs, d.recipes, &d.headline);
  if (!config.compare.empty()) {
    if (config.criteria.empty())
      throw Error("--compare " + config.compare + " needs --criteria: the comparison is criterion by criterion "
                  "(e.g. --criteria recipes/why_beats_rule_test.criteria.yaml)");
    d.summary["comparison"] = compare_criteria(d.summary["criteria"], config.compare);
  }
  write_file_atomic((fs::path(d.out_dir) / "summary.json").string(), d.summary.dump(2) + "\n");
  const auto charts = render_charts(d, agg, runs);
  write_html(d, charts, (fs::path(d.out_dir) / "index.html").string());
  print_summary(d);
  int rc = 0;
  for (const Chart& c : charts) {
    if (c.written) continue;
    std::cout << "  chart " << c.name << " not written: " << c.problem << "\n";
    if (c.problem.find("gnuplot") != std::string::npos) rc = 1;
  }
  std::cout << "wrote " << (fs::path(d.out_dir) / "index.html").string() << ", summary.json and "
            << std::count_if(charts.begin(), charts.end(), [](const Chart& c) { return c.written; })
            << " chart(s) (PNG + SVG)" << std::endl;
  return rc;
}

int run_report(const std::string& runs_dir, const std::string& out_dir) {
  ReportConfig c;
  c.runs_dir = runs_dir;
  c.out_dir = out_dir;
  return run_report(c);
}

}  // namespace ethos
