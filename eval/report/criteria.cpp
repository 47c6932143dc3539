// `ethos report --criteria FILE`, part 5: a study's pre-registered criteria, evaluated on its runs.
// The file (recipes/why_beats_rule_test.criteria.yaml is the example) names measures (suite,
// scoring, split, metric) and criteria made of checks; each check is one comparison from a small
// fixed set, so a criterion reads the same in the file, in summary.json and on the page.
//
//   measures:
//     primary: {suite: world-test-generate, scoring: generate/sample, split: ood, metric: aligned_rate}
//   by_group: harm                # `above` checks are also computed per value of this group
//   headline: [id_right, primary]  # measures of the headline chart (one bar each per recipe)
//   criteria:
//     - id: "1"
//       claim: R2 above R1 on the primary measure
//       checks:
//         - {above: primary, recipe: r2, baseline: r1}
//
// Checks (recipe, baseline: recipe names of the runs; d(R, B) = paired difference R - B over
// common seeds, at the final checkpoint, with the report's 95% interval):
//   above: M            holds when d(R, B) on M > 0 and its interval excludes zero
//   gap_larger: M, than: M2       d(R, B) on M > d(R, B) on M2
//   at_most: M, diff: x           d(R, B) on M <= x;   or ratio: r   mean(R) <= r * mean(B)
//   vanishes: M, of: [R2, B2], fraction: f   d(R, B) < f * d(R2, B2), or d(R, B)'s interval holds 0
//   at_least: M, of: R2, fraction: f          mean(R) >= f * mean(R2)
//   highest: M                    mean(R) >= every other recipe's mean on M; with among: [R1, R2, ...]
//                                 only those recipes' (a study whose directory also holds a control's
//                                 runs, on another world, names the ones it compares)
//   within_interval: M            mean(R) - mean(B) <= B's upper interval bound - mean(B)
//   report: M                     d(R, B), no verdict (an exploratory comparison)
// A criterion holds when all its checks (other than `report`) hold; it is "not evaluable" when a
// check lacks its runs (a matrix not run yet) and "reported" when it has only `report` checks.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <set>

#include "datasets/base/util.h"
#include "datasets/base/yaml.h"
#include "eval/report/internal.h"

namespace ethos::report {

namespace fs = std::filesystem;

namespace {

using nlohmann::json;

const std::vector<std::string> kKinds{"above", "gap_larger", "at_most", "vanishes", "at_least", "highest",
                                      "within_interval", "report"};

struct Measure {
  std::string name, label;
  SeriesKey key;
  bool rate = true;  // a rate (shown in percentage points); false: a loss
};

struct Check {
  std::string kind, measure, recipe, baseline, than, of_recipe, of_baseline;
  std::vector<std::string> among;  // highest: the recipes compared (empty: every recipe)
  double diff = kNaN, ratio = kNaN, fraction = kNaN;
};

struct Criterion {
  std::string id, claim;
  std::vector<Check> checks;
};

struct Spec {
  std::map<std::string, Measure> measures;
  std::string by_group;
  std::vector<std::string> headline;
  std::vector<Criterion> criteria;
};

Measure parse_measure(const std::string& name, const YamlAt& m) {
  m.only_keys({"suite", "scoring", "split", "metric", "group", "value", "label"});
  Measure out;
  out.name = name;
  out.key.suite = m.at("suite").text();
  if (const auto s = m.find("scoring")) {
    const auto parts = split(s->text(), '/');
    if (parts.size() < 2 || parts.size() > 3)
      s->fail("scoring must be scorer/mode[/normalize] as in the report's --primary (e.g. generate/sample, "
              "likelihood/direct/mean), got \"" + s->text() + "\"");
    out.key.scorer = parts[0];
    out.key.mode = parts[1];
    if (parts.size() == 3) out.key.normalize = parts[2];
  }
  out.key.split = m.at("split").text();
  out.key.metric = m.at("metric").text();
  out.key.group = m.has("group") ? m.at("group").text() : "all";
  out.key.group_value = m.has("value") ? m.at("value").text() : "all";
  out.label = m.has("label") ? m.at("label").text() : name;
  out.rate = out.key.metric != "loss";
  return out;
}

Check parse_check(const YamlAt& c, const Spec& spec) {
  c.only_keys({"above", "gap_larger", "at_most", "vanishes", "at_least", "highest", "within_interval", "report", "recipe",
               "baseline", "than", "of", "diff", "ratio", "fraction", "among"});
  Check out;
  for (const auto& k : kKinds)
    if (c.has(k)) {
      if (!out.kind.empty()) c.fail("a check has one kind; this one has both " + out.kind + " and " + k);
      out.kind = k;
      out.measure = c.at(k).text();
    }
  if (out.kind.empty()) c.fail("a check needs one of: above, gap_larger, at_most, vanishes, at_least, highest, "
                               "within_interval, report (its value names a measure)");
  auto known = [&](const YamlAt& at, const std::string& m) {
    if (spec.measures.count(m)) return;
    std::vector<std::string> names;
    for (const auto& kv : spec.measures) names.push_back(kv.first);
    at.fail("unknown measure \"" + m + "\"" + in_parens(did_you_mean(m, names)) + "; define it under measures:");
  };
  known(c.at(out.kind), out.measure);
  out.recipe = c.at("recipe").text();
  const bool needs_baseline = out.kind != "highest" && out.kind != "at_least";
  if (needs_baseline) out.baseline = c.at("baseline").text();
  if (out.kind == "gap_larger") {
    out.than = c.at("than").text();
    known(c.at("than"), out.than);
  }
  if (out.kind == "at_most") {
    if (c.has("diff") == c.has("ratio")) c.fail("at_most takes one of diff: (points, as a fraction: 0.05) or ratio: (e.g. 1.02)");
    if (c.has("diff")) out.diff = c.at("diff").number();
    else out.ratio = c.at("ratio").number();
  }
  if (out.kind == "vanishes") {
    const auto of = c.at("of").texts();
    if (of.size() != 2) c.at("of").fail("vanishes: of: is [recipe, baseline] of the comparison it is measured against");
    out.of_recipe = of[0];
    out.of_baseline = of[1];
  }
  if (out.kind == "at_least") out.of_recipe = c.at("of").text();
  if (const auto among = c.find("among")) {
    if (out.kind != "highest") among->fail("among: belongs to a highest check (the recipes it is compared with)");
    out.among = among->texts();
  }
  if (out.kind == "vanishes" || out.kind == "at_least") {
    out.fraction = c.at("fraction").number();
    if (!(out.fraction > 0 && out.fraction <= 1)) c.at("fraction").fail("fraction must be in (0, 1]");
  }
  return out;
}

Spec parse_spec(const std::string& path) {
  const YamlAt root = YamlAt::load_file(path);
  root.only_keys({"title", "measures", "by_group", "headline", "criteria"});
  Spec spec;
  for (const auto& [name, m] : root.at("measures").entries()) spec.measures[name] = parse_measure(name, m);
  if (const auto g = root.find("by_group")) spec.by_group = g->text();
  if (const auto h = root.find("headline")) {
    spec.headline = h->texts();
    for (const auto& m : spec.headline)
      if (!spec.measures.count(m)) h->fail("headline names unknown measure \"" + m + "\"");
  }
  std::set<std::string> ids;
  for (const YamlAt& c : root.at("criteria").items()) {
    c.only_keys({"id", "claim", "checks"});
    Criterion cr;
    cr.id = c.at("id").text();
    if (!ids.insert(cr.id).second) c.at("id").fail("criterion id \"" + cr.id + "\" is used twice");
    cr.claim = c.at("claim").text();
    for (const YamlAt& k : c.at("checks").items()) cr.checks.push_back(parse_check(k, spec));
    spec.criteria.push_back(std::move(cr));
  }
  return spec;
}

json number(double x) { return std::isnan(x) ? json(nullptr) : json(x); }

// A value as the page shows it: rates in percent (differences in points), losses as they are.
std::string show(double x, const Measure& m, bool difference) {
  char buf[48];
  if (m.rate) std::snprintf(buf, sizeof buf, difference ? "%+.1f" : "%.1f", 100 * x);
  else std::snprintf(buf, sizeof buf, difference ? "%+.4f" : "%.4f", x);
  return buf;
}
std::string unit(const Measure& m, bool difference) { return m.rate ? (difference ? " pts" : "%") : ""; }

class Evaluator {
 public:
  Evaluator(const Spec& spec, const Aggregator& agg, const std::vector<Run>& runs, const std::vector<std::string>& recipes)
      : spec_(spec), agg_(agg), runs_(runs), recipes_(recipes.begin(), recipes.end()) {}

  json criterion(const Criterion& c) const {
    json checks = json::array();
    bool missing = false, all_hold = true, judged = false;
    for (const Check& k : c.checks) {
      json j = check(k);
      if (j.contains("missing")) missing = true;
      else if (k.kind != "report") {
        judged = true;
        all_hold = all_hold && j["holds"].get<bool>();
      }
      checks.push_back(std::move(j));
    }
    const std::string verdict = missing ? "not evaluable" : !judged ? "reported" : all_hold ? "held" : "not held";
    json out{{"id", c.id}, {"claim", c.claim}, {"verdict", verdict}, {"checks", checks}};
    std::vector<std::string> notes;
    for (const json& j : checks)
      if (j.contains("note")) notes.push_back(j["note"].get<std::string>());
    if (!notes.empty()) out["note"] = join(notes, "; ");
    return out;
  }

 private:
  const Measure& measure(const std::string& name) const { return spec_.measures.at(name); }

  // The runs a check needs, or what is missing.
  std::string absent(const std::vector<std::string>& names) const {
    std::vector<std::string> out;
    for (const auto& n : names)
      if (!n.empty() && !recipes_.count(n)) out.push_back(n);
    return out.empty() ? "" : "no runs of " + join(out, ", ");
  }

  std::optional<Paired> diff(const std::string& r, const std::string& b, const Measure& m, std::string* missing) const {
    auto p = agg_.paired(r, b, m.key);
    if (!p) *missing = r + " and " + b + " have no common seeds with " + m.name + " (" + m.key.suite + " " +
                       m.key.split + " " + m.key.metric + ")";
    return p;
  }

  std::string diff_text(const Paired& p, const Measure& m) const {
    return p.recipe + " - " + p.baseline + " = " + show(p.d.diff.mean, m, true) + unit(m, true) + " [" +
           show(p.d.diff.low, m, true) + ", " + show(p.d.diff.high, m, true) + "], p = " + fmt_g(p.d.p) + ", " +
           std::to_string(p.seeds.size()) + " seeds";
  }

  static std::string fmt_g(double x) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.3g", x);
    return buf;
  }

  static json diff_json(const Paired& p) {
    return {{"recipe", p.recipe}, {"baseline", p.baseline}, {"diff", number(p.d.diff.mean)},
            {"ci_low", number(p.d.diff.low)}, {"ci_high", number(p.d.diff.high)}, {"p", number(p.d.p)},
            {"seeds", p.seeds.size()}};
  }

  // Per value of the by_group group (e.g. each held-out harm type): the same paired difference.
  json per_group(const Check& k, const Measure& m, int* reversals, int* groups) const {
    json out = json::object();
    if (spec_.by_group.empty() || m.key.group != "all") return out;
    for (const auto& v : group_values(runs_, m.key, spec_.by_group)) {
      SeriesKey key = m.key;
      key.group = spec_.by_group;
      key.group_value = v;
      if (auto p = agg_.paired(k.recipe, k.baseline, key)) {
        out[v] = number(p->d.diff.mean);
        ++*groups;
        if (p->d.diff.mean < 0) ++*reversals;
      }
    }
    return out;
  }

  json check(const Check& k) const {
    const Measure& m = measure(k.measure);
    json j{{"kind", k.kind}, {"measure", k.measure}, {"measure_label", m.label}, {"rate", m.rate}, {"recipe", k.recipe}};
    if (!k.baseline.empty()) j["baseline"] = k.baseline;
    std::vector<std::string> need{k.recipe, k.baseline, k.of_recipe, k.of_baseline};
    need.insert(need.end(), k.among.begin(), k.among.end());
    if (const std::string a = absent(need); !a.empty()) {
      j["missing"] = a;
      j["text"] = k.kind + " " + k.measure + ": not evaluable, " + a;
      return j;
    }
    std::string missing;
    auto fail_missing = [&]() {
      j["missing"] = missing;
      j["text"] = k.kind + " " + k.measure + ": not evaluable, " + missing;
      return j;
    };
    if (k.kind == "above" || k.kind == "report") {
      const auto p = diff(k.recipe, k.baseline, m, &missing);
      if (!p) return fail_missing();
      j["difference"] = diff_json(*p);
      int reversals = 0, groups = 0;
      const json by = per_group(k, m, &reversals, &groups);
      if (!by.empty()) j["by_" + spec_.by_group] = by;
      std::string text = m.label + ": " + diff_text(*p, m);
      if (k.kind == "above") {
        const bool holds = p->d.diff.mean > 0 && p->d.diff.low > 0;
        j["holds"] = holds;
        text += holds ? " (above zero, interval excludes it)" : " (needs > 0 with an interval excluding zero)";
        if (holds && reversals >= 2)
          j["note"] = m.label + ": above zero pooled, but " + k.recipe + " - " + k.baseline + " is negative on " +
                      std::to_string(reversals) + " of " + std::to_string(groups) + " " + spec_.by_group + " values";
      }
      if (groups) {
        text += "; by " + spec_.by_group + ":";
        for (const auto& [v, d] : by.items()) text += " " + v + " " + (d.is_null() ? "n/a" : show(d.get<double>(), m, true));
      }
      j["text"] = text;
      return j;
    }
    if (k.kind == "gap_larger") {
      const Measure& t = measure(k.than);
      const auto a = diff(k.recipe, k.baseline, m, &missing);
      if (!a) return fail_missing();
      const auto b = diff(k.recipe, k.baseline, t, &missing);
      if (!b) return fail_missing();
      const bool holds = a->d.diff.mean > b->d.diff.mean;
      j["difference"] = diff_json(*a);
      j["than"] = diff_json(*b);
      j["than_measure"] = k.than;
      j["holds"] = holds;
      j["text"] = m.label + ": " + diff_text(*a, m) + (holds ? " > " : " is not > ") + t.label + ": " + diff_text(*b, t);
      return j;
    }
    if (k.kind == "at_most") {
      if (!std::isnan(k.diff)) {
        const auto p = diff(k.recipe, k.baseline, m, &missing);
        if (!p) return fail_missing();
        const bool holds = p->d.diff.mean <= k.diff;
        j["difference"] = diff_json(*p);
        j["limit"] = k.diff;
        j["holds"] = holds;
        j["text"] = m.label + ": " + diff_text(*p, m) + (holds ? " <= " : " > ") + show(k.diff, m, true) + unit(m, true);
        return j;
      }
      const Estimate r = agg_.final(k.recipe, m.key), b = agg_.final(k.baseline, m.key);
      if (!r.ok() || !b.ok()) {
        missing = "no final " + m.name + " for " + (r.ok() ? k.baseline : k.recipe);
        return fail_missing();
      }
      const bool holds = r.mean <= k.ratio * b.mean;
      j["value"] = number(r.mean);
      j["baseline_value"] = number(b.mean);
      j["ratio"] = number(r.mean / b.mean);
      j["limit"] = k.ratio;
      j["holds"] = holds;
      j["text"] = m.label + ": " + k.recipe + " " + show(r.mean, m, false) + unit(m, false) + " vs " + k.baseline + " " +
                  show(b.mean, m, false) + unit(m, false) + ", ratio " + fmt_g(r.mean / b.mean) + (holds ? " <= " : " > ") +
                  fmt_g(k.ratio);
      return j;
    }
    if (k.kind == "vanishes") {
      const auto c = diff(k.recipe, k.baseline, m, &missing);
      if (!c) return fail_missing();
      const auto ref = diff(k.of_recipe, k.of_baseline, m, &missing);
      if (!ref) return fail_missing();
      const bool below = c->d.diff.mean < k.fraction * ref->d.diff.mean;
      const bool holds_zero = c->d.diff.low <= 0 && c->d.diff.high >= 0;
      j["difference"] = diff_json(*c);
      j["of"] = diff_json(*ref);
      j["fraction"] = k.fraction;
      j["holds"] = below || holds_zero;
      j["text"] = m.label + ": " + diff_text(*c, m) + (below ? " is below " : " is not below ") + fmt_g(k.fraction) +
                  " x (" + diff_text(*ref, m) + ")" + (holds_zero ? "; its interval includes zero" : "; its interval excludes zero");
      return j;
    }
    if (k.kind == "at_least") {
      const Estimate r = agg_.final(k.recipe, m.key), o = agg_.final(k.of_recipe, m.key);
      if (!r.ok() || !o.ok()) {
        missing = "no final " + m.name + " for " + (r.ok() ? k.of_recipe : k.recipe);
        return fail_missing();
      }
      const bool holds = r.mean >= k.fraction * o.mean;
      j["value"] = number(r.mean);
      j["of_value"] = number(o.mean);
      j["fraction"] = k.fraction;
      j["holds"] = holds;
      j["text"] = m.label + ": " + k.recipe + " " + show(r.mean, m, false) + unit(m, false) + (holds ? " >= " : " < ") +
                  fmt_g(k.fraction) + " x " + k.of_recipe + " " + show(o.mean, m, false) + unit(m, false);
      return j;
    }
    if (k.kind == "highest") {
      const Estimate r = agg_.final(k.recipe, m.key);
      if (!r.ok()) {
        missing = "no final " + m.name + " for " + k.recipe;
        return fail_missing();
      }
      std::vector<std::string> missing_among;
      for (const auto& other : k.among)
        if (!agg_.final(other, m.key).ok()) missing_among.push_back(other);
      if (!missing_among.empty()) {
        missing = "no final " + m.name + " for " + join(missing_among, ", ") + " (named in among:)";
        return fail_missing();
      }
      std::string best = k.recipe;
      double best_mean = r.mean;
      const std::vector<std::string> field =
          k.among.empty() ? std::vector<std::string>(recipes_.begin(), recipes_.end()) : k.among;
      for (const auto& other : field) {
        const Estimate e = agg_.final(other, m.key);
        if (e.ok() && e.mean > best_mean) {
          best = other;
          best_mean = e.mean;
        }
      }
      const bool holds = best == k.recipe;
      j["value"] = number(r.mean);
      j["highest"] = best;
      j["highest_value"] = number(best_mean);
      if (!k.among.empty()) j["among"] = k.among;
      j["holds"] = holds;
      const std::string of = k.among.empty() ? "all recipes" : join(k.among, ", ");
      j["text"] = m.label + ": " + k.recipe + " " + show(r.mean, m, false) + unit(m, false) +
                  (holds ? ", the highest of " + of
                         : ", below " + best + " at " + show(best_mean, m, false) + unit(m, false) +
                               (k.among.empty() ? "" : " (among " + of + ")"));
      return j;
    }
    // within_interval
    const Estimate r = agg_.final(k.recipe, m.key), b = agg_.final(k.baseline, m.key);
    if (!r.ok() || !b.ok()) {
      missing = "no final " + m.name + " for " + (r.ok() ? k.baseline : k.recipe);
      return fail_missing();
    }
    const double margin = b.high - b.mean;
    const bool holds = r.mean - b.mean <= margin;
    j["value"] = number(r.mean);
    j["baseline_value"] = number(b.mean);
    j["margin"] = number(margin);
    j["holds"] = holds;
    j["text"] = m.label + ": " + k.recipe + " " + show(r.mean, m, false) + unit(m, false) + " - " + k.baseline + " " +
                show(b.mean, m, false) + unit(m, false) + " = " + show(r.mean - b.mean, m, true) + unit(m, true) +
                (holds ? " <= " : " > ") + k.baseline + "'s interval half-width above its mean, " +
                show(margin, m, true) + unit(m, true);
    return j;
  }

  const Spec& spec_;
  const Aggregator& agg_;
  const std::vector<Run>& runs_;
  std::set<std::string> recipes_;
};

// One check's paired difference, here and published, as "+12.0 [+4.0, +20.0]" (points for a rate).
std::string diff_span(const json& d, bool rate) {
  auto v = [&](const char* k) {
    if (!d.contains(k) || d[k].is_null()) return std::string("n/a");
    char buf[48];
    if (rate) std::snprintf(buf, sizeof buf, "%+.1f", 100 * d[k].get<double>());
    else std::snprintf(buf, sizeof buf, "%+.4f", d[k].get<double>());
    return std::string(buf);
  };
  return v("diff") + " [" + v("ci_low") + ", " + v("ci_high") + "]";
}

int sign_of(const json& d) {
  if (!d.contains("diff") || d["diff"].is_null()) return 2;  // no value: matches nothing
  const double x = d["diff"].get<double>();
  return x > 0 ? 1 : x < 0 ? -1 : 0;
}

}  // namespace

json compare_criteria(const json& here, const std::string& published_path) {
  std::string file = published_path;
  if (fs::is_directory(file)) file = (fs::path(file) / "summary.json").string();
  if (!fs::exists(file))
    throw Error("--compare " + published_path + ": no such file; give a published study's summary.json or its report directory "
                "(e.g. recipes/results/why_beats_rule_test/report)");
  json pub;
  try {
    pub = json::parse(read_file(file));
  } catch (const json::exception& e) {
    throw Error("--compare " + file + ": not JSON (" + e.what() + ")");
  }
  if (!pub.contains("criteria") || !pub["criteria"].contains("criteria"))
    throw Error("--compare " + file + ": it has no \"criteria\"; re-render the published study with --criteria");
  // Non-const access throughout: a key the published file lacks reads as null, and a value of the
  // wrong type throws json's type_error, which becomes a clean error below.
  std::map<std::string, json*> by_id;
  json list = json::array();
  std::map<std::string, int> counts;
  try {
    for (json& c : pub["criteria"]["criteria"]) by_id[c.value("id", "")] = &c;
    for (const json& c : here["criteria"]) {
      const std::string id = c["id"].get<std::string>(), v = c["verdict"].get<std::string>();
      json out{{"id", id}, {"claim", c["claim"]}, {"here", v}};
      const auto it = by_id.find(id);
      if (it == by_id.end()) {
        out["published"] = nullptr;
        out["agreement"] = "not comparable";
        out["why"] = "the published study has no criterion " + id;
        ++counts["not comparable"];
        list.push_back(out);
        continue;
      }
      json& p = *it->second;
      const std::string pv = p.value("verdict", "");
      out["published"] = pv;
      // Check by check: the same paired difference here and there, its sign and whether the
      // published mean falls inside this run's interval.
      json checks = json::array();
      bool signs_agree = true;
      json pc = p.contains("checks") ? p["checks"] : json::array();
      for (size_t i = 0; i < c["checks"].size(); ++i) {
        const json& k = c["checks"][i];
        if (!k.contains("difference") || i >= pc.size() || !pc[i].contains("difference")) continue;
        const json& a = k["difference"];
        json b = pc[i]["difference"];
        const bool rate = k.value("rate", true);
        const int sa = sign_of(a), sb = sign_of(b);
        const bool same = sa == sb, zero = sa == 0 || sb == 0;
        signs_agree = signs_agree && same;
        const bool inside = !a["ci_low"].is_null() && !b["diff"].is_null() && b["diff"].get<double>() >= a["ci_low"].get<double>() &&
                            b["diff"].get<double>() <= a["ci_high"].get<double>();
        checks.push_back({{"measure", k["measure"]}, {"recipe", a["recipe"]}, {"baseline", a["baseline"]},
                          {"here", a}, {"published", b}, {"same_sign", same}, {"published_inside_interval", inside},
                          {"text", k.value("measure_label", k.value("measure", "")) + ", " + a.value("recipe", "") + " - " +
                                       a.value("baseline", "") + ": here " + diff_span(a, rate) + ", published " +
                                       diff_span(b, rate) + (rate ? " pts" : "") + (same ? ", same sign" : zero ? ", zero on one side" : ", opposite sign") +
                                       (inside ? ", published value inside this interval" : "")}});
      }
      out["checks"] = checks;
      std::string agreement;
      if (v == "not evaluable" || pv == "not evaluable" || pv.empty()) {
        agreement = "not comparable";
        out["why"] = v == "not evaluable" ? "not evaluable here" : "not evaluable in the published study";
      } else if (v == "reported" && pv == "reported") {
        agreement = checks.empty() ? "not comparable" : signs_agree ? "agrees" : "disagrees";
        out["why"] = checks.empty() ? "no paired difference to compare" : signs_agree ? "every difference has the published sign"
                                                                                     : "a difference has the opposite sign";
      } else {
        agreement = v == pv ? "agrees" : "disagrees";
        out["why"] = v + " here, " + pv + " in the published study";
      }
      out["agreement"] = agreement;
      ++counts[agreement];
      list.push_back(out);
    }
  } catch (const json::exception& e) {
    throw Error("--compare " + file + ": not a summary.json as ethos report writes it (" + e.what() + ")");
  }
  return {{"published", file}, {"criteria", list}, {"counts", counts}};
}

json evaluate_criteria(const std::string& path, const Aggregator& agg, const std::vector<Run>& runs,
                       const std::vector<std::string>& recipes, std::vector<Headline>* headline) {
  const Spec spec = parse_spec(path);
  const Evaluator ev(spec, agg, runs, recipes);
  json list = json::array();
  std::map<std::string, int> counts;
  for (const Criterion& c : spec.criteria) {
    list.push_back(ev.criterion(c));
    ++counts[list.back()["verdict"].get<std::string>()];
  }
  for (const auto& name : spec.headline) {
    const Measure& m = spec.measures.at(name);
    headline->push_back({m.label, m.key, m.rate});
  }
  return {{"file", path}, {"criteria", list}, {"counts", counts}};
}

}  // namespace ethos::report
