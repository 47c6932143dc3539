// `ethos report`, part 2: choosing the primary view and aggregating runs across seeds
// (curves with bands, final-checkpoint estimates, paired differences). See report_internal.h.
#include <array>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <set>

#include "datasets/base/util.h"
#include "eval/report/internal.h"

namespace ethos::report {

std::string View::name() const {
  return scorer + "/" + mode + (normalize.empty() ? "" : "/" + normalize);
}

std::string pct(double x, int decimals) {
  if (std::isnan(x)) return "n/a";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, 100 * x);
  return buf;
}

std::vector<View> rate_views(const std::vector<Run>& runs) {
  std::set<View> views;
  for (const Run& r : runs)
    for (const auto& kv : r.series)
      if (kv.first.metric == "misaligned_rate")
        views.insert({kv.first.suite, kv.first.scorer, kv.first.mode, kv.first.normalize});
  return {views.begin(), views.end()};
}

View choose_primary(const std::vector<Run>& runs, const std::string& suite, const std::string& primary, std::string* why) {
  const auto views = rate_views(runs);
  if (views.empty())
    throw Error("report: no misaligned_rate events in any run (only held-out loss?); score a suite after each "
                "checkpoint (recipe eval.suites) or with `ethos eval`");
  // The suite: as asked, else the one with the most events.
  std::map<std::string, size_t> events;
  for (const Run& r : runs)
    for (const auto& kv : r.series)
      if (kv.first.suite != "heldout") events[kv.first.suite] += kv.second.size();
  std::string chosen_suite = suite;
  std::string suite_why;
  if (chosen_suite.empty()) {
    size_t best = 0;
    for (const View& v : views)
      if (events[v.suite] > best) {
        best = events[v.suite];
        chosen_suite = v.suite;
      }
    suite_why = "suite \"" + chosen_suite + "\" (the scored suite with the most eval events; choose with --suite)";
  } else {
    std::vector<std::string> names;
    for (const View& v : views) names.push_back(v.suite);
    if (std::find(names.begin(), names.end(), suite) == names.end()) {
      const std::string hint = did_you_mean(suite, names);
      throw Error("report: --suite \"" + suite + "\" has no misaligned_rate events" +
                  (hint.empty() ? "" : "; " + hint) + " Suites in the runs: " + [&] {
                    std::string s;
                    for (const auto& n : std::set<std::string>(names.begin(), names.end())) s += n + " ";
                    return s;
                  }());
    }
    suite_why = "suite \"" + suite + "\" (--suite)";
  }
  std::vector<View> in_suite;
  for (const View& v : views)
    if (v.suite == chosen_suite) in_suite.push_back(v);
  std::vector<std::string> names;
  for (const View& v : in_suite) names.push_back(v.name());
  if (!primary.empty()) {
    for (const View& v : in_suite)
      if (v.name() == primary) {
        *why = suite_why + ", scored " + primary + " (--primary)";
        return v;
      }
    std::string list;
    for (const auto& n : names) list += " " + n;
    throw Error("report: --primary \"" + primary + "\" is not among the scorings of suite \"" + chosen_suite + "\":" +
                list + in_parens(did_you_mean(primary, names)));
  }
  for (const char* pref : {"likelihood/reason_first/mean", "likelihood/direct/mean", "generate/sample",
                           "likelihood/reason_first/sum", "likelihood/direct/sum"})
    for (const View& v : in_suite)
      if (v.name() == pref) {
        *why = suite_why + ", scored " + v.name() +
               " (the first present of likelihood/reason_first/mean, likelihood/direct/mean, generate/sample, "
               "likelihood/*/sum; choose with --primary)";
        return v;
      }
  *why = suite_why + ", scored " + in_suite.front().name() + " (the first alphabetically; choose with --primary)";
  return in_suite.front();
}

std::vector<std::string> shift_axes(const std::vector<Run>& runs, const View& v) {
  std::set<std::string> axes;
  for (const Run& r : runs)
    for (const auto& kv : r.series) {
      const SeriesKey& k = kv.first;
      if (k.group == "shift" && k.split == "ood" && k.suite == v.suite && k.scorer == v.scorer && k.mode == v.mode &&
          k.normalize == v.normalize)
        axes.insert(k.group_value);
    }
  return {axes.begin(), axes.end()};
}

std::set<std::string> group_values(const std::vector<Run>& runs, const SeriesKey& key, const std::string& group) {
  std::set<std::string> out;
  for (const Run& r : runs)
    for (const auto& kv : r.series) {
      const SeriesKey& k = kv.first;
      if (k.group == group && k.suite == key.suite && k.scorer == key.scorer && k.mode == key.mode &&
          k.normalize == key.normalize && k.split == key.split && k.metric == key.metric)
        out.insert(k.group_value);
    }
  return out;
}

std::vector<std::pair<std::string, std::string>> harm_types(const std::vector<Run>& runs, const View& v) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const char* split : {"id", "ood"})
    for (const auto& harm : group_values(runs, v.key(split, "misaligned_rate"), "harm")) out.emplace_back(split, harm);
  return out;
}

std::vector<std::string> Aggregator::recipes() const {
  std::vector<std::string> out;
  for (const Run& r : runs_)
    if (out.empty() || out.back() != r.recipe) out.push_back(r.recipe);
  return out;
}

std::vector<const Run*> Aggregator::runs_of(const std::string& recipe) const {
  std::vector<const Run*> out;
  for (const Run& r : runs_)
    if (r.recipe == recipe) out.push_back(&r);
  return out;
}

namespace {

// Runs of a matrix with base seeds: is there more than one base?
bool several_bases(const std::map<Unit, double>& per) {
  std::set<int64_t> bases;
  for (const auto& kv : per)
    if (kv.first.first >= 0) bases.insert(kv.first.first);
  return bases.size() >= 2;
}

// The independent units' values: one per seed, or, with several base seeds, one per base (the
// mean of its alignment seeds), since runs that share a pre-trained base are not independent.
std::vector<double> unit_values(const std::map<Unit, double>& per, std::string* what) {
  std::vector<double> v;
  if (!several_bases(per)) {
    for (const auto& kv : per) v.push_back(kv.second);
    *what = std::to_string(v.size()) + " seeds";
    return v;
  }
  std::map<int64_t, std::pair<double, int>> by_base;
  for (const auto& [u, x] : per) {
    by_base[u.first].first += x;
    ++by_base[u.first].second;
  }
  for (const auto& kv : by_base) v.push_back(kv.second.first / kv.second.second);
  *what = std::to_string(v.size()) + " base seeds (each the mean of its alignment seeds)";
  return v;
}

// Fills mean/low/high from per-seed values (and points, for the one-seed case).
void seed_interval(Estimate& e, const std::vector<Point>& points, const BootstrapOptions& opt) {
  std::string what;
  const std::vector<double> v = unit_values(e.per_seed, &what);
  bool pooled = true;
  int64_t k = 0, n = 0;
  for (const Point& p : points) {
    if (p.k < 0 || p.n < 0) pooled = false;
    k += p.k;
    n += p.n;
  }
  if (pooled) {
    e.k = k;
    e.n = n;
  }
  if (v.size() >= 2) {
    const ethos::Estimate b = bootstrap_mean(v, opt);
    e.mean = b.mean;
    e.low = b.low;
    e.high = b.high;
    e.method = "percentile bootstrap over " + what;
    return;
  }
  e.mean = v[0];
  const Point& p = points[0];
  if (!std::isnan(p.ci_low) && !std::isnan(p.ci_high)) {
    e.low = p.ci_low;
    e.high = p.ci_high;
    e.method = "Wilson 95% (one seed)";
  } else {
    e.low = e.high = v[0];
    e.method = "one seed, no interval";
  }
}

// Every seed at 0/n (or n/n) makes a resampling interval collapse to a point; widen it to the
// rule-of-three bound over the pooled items instead (recipes/README.md "Measuring": report 0/n as <= 3/n).
Estimate& rule_of_three(Estimate& e) {
  if (e.n <= 0) return e;
  const double bound = ethos::rule_of_three(e.n);
  if (e.k == 0 && e.high < bound) {
    e.high = bound;
    e.method += "; pooled 0/n: upper end raised to 3/n";
  } else if (e.k == e.n && e.low > 1 - bound) {
    e.low = 1 - bound;
    e.method += "; pooled n/n: lower end lowered to 1 - 3/n";
  }
  return e;
}

}  // namespace

std::map<int64_t, Estimate> Aggregator::curve(const std::string& recipe, const SeriesKey& key) const {
  std::map<int64_t, Estimate> out;
  std::map<int64_t, std::vector<Point>> points;
  for (const Run* r : runs_of(recipe)) {
    auto it = r->series.find(key);
    if (it == r->series.end()) continue;
    for (const auto& [step, p] : it->second) {
      out[step].per_seed[r->unit()] = p.value;
      out[step].subsample = std::max(out[step].subsample, p.subsample);
      points[step].push_back(p);
    }
  }
  for (auto& [step, e] : out) {
    e.step = step;
    seed_interval(e, points[step], opt_);
    rule_of_three(e);
  }
  return out;
}

namespace {

// Family results of `run` for the split/metric of `key` at `step` (those with n > 0).
std::map<std::string, Point> families_at(const Run& run, const SeriesKey& key, int64_t step) {
  std::map<std::string, Point> out;
  for (const auto& [k, by_step] : run.series) {
    if (k.group != "family" || k.suite != key.suite || k.scorer != key.scorer || k.mode != key.mode ||
        k.normalize != key.normalize || k.split != key.split || k.metric != key.metric)
      continue;
    auto p = by_step.find(step);
    if (p != by_step.end() && p->second.n > 0) out[k.group_value] = p->second;
  }
  return out;
}

struct SeedFinal {
  const Run* run;
  int64_t step;
  Point point;
};

std::map<Unit, SeedFinal> finals(const std::vector<const Run*>& runs, const SeriesKey& key) {
  std::map<Unit, SeedFinal> out;
  for (const Run* r : runs) {
    auto it = r->series.find(key);
    if (it == r->series.end() || it->second.empty()) continue;
    out.emplace(r->unit(), SeedFinal{r, it->second.rbegin()->first, it->second.rbegin()->second});
  }
  return out;
}

}  // namespace

Estimate Aggregator::final(const std::string& recipe, const SeriesKey& key) const {
  Estimate e;
  std::vector<Point> points;
  const auto fin = finals(runs_of(recipe), key);
  for (const auto& [seed, f] : fin) {
    e.per_seed[seed] = f.point.value;
    e.step = std::max(e.step, f.step);
    points.push_back(f.point);
  }
  if (!e.ok()) return e;
  seed_interval(e, points, opt_);
  // Family results partition a split's items, so they refine only the split-level ("all") estimate.
  if (fin.size() < 2 || key.group != "all" || several_bases(e.per_seed)) return rule_of_three(e);
  // Crossed bootstrap over seeds x families, when every seed has family results at its final step.
  std::vector<std::map<std::string, Point>> fam;
  std::set<std::string> families;
  for (const auto& [seed, f] : fin) {
    fam.push_back(families_at(*f.run, key, f.step));
    if (fam.back().empty()) return rule_of_three(e);
    for (const auto& kv : fam.back()) families.insert(kv.first);
  }
  std::vector<std::vector<Cell>> cells(fam.size());
  for (size_t s = 0; s < fam.size(); ++s)
    for (const std::string& f : families) {
      auto it = fam[s].find(f);
      cells[s].push_back(it == fam[s].end() ? Cell{0, 0} : Cell{it->second.value, static_cast<double>(it->second.n)});
    }
  const ethos::Estimate b = bootstrap_seeds_families(cells, opt_);
  e.low = b.low;
  e.high = b.high;
  e.method = "crossed percentile bootstrap over " + std::to_string(fam.size()) + " seeds x " +
             std::to_string(families.size()) + " template families";
  return rule_of_three(e);
}

std::optional<Paired> Aggregator::paired(const std::string& recipe, const std::string& baseline, const SeriesKey& key) const {
  const auto fa = finals(runs_of(baseline), key), fb = finals(runs_of(recipe), key);
  Paired out{recipe, baseline, key.split, key.group, key.group_value, key.metric, {}, {}, kNaN, "", ""};
  std::vector<double> va, vb;
  for (const auto& [seed, b] : fb) {
    auto a = fa.find(seed);
    if (a == fa.end()) continue;
    out.seeds.push_back(seed);
    va.push_back(a->second.point.value);
    vb.push_back(b.point.value);
  }
  if (out.seeds.empty()) return std::nullopt;
  std::map<Unit, double> units;
  for (const Unit& u : out.seeds) units[u] = 0;
  if (several_bases(units)) {
    // Bases are the units: each base's differences are averaged over its alignment seeds first.
    std::map<int64_t, std::array<double, 3>> by_base;  // sum a, sum b, count
    for (size_t i = 0; i < out.seeds.size(); ++i) {
      auto& t = by_base[out.seeds[i].first];
      t[0] += va[i];
      t[1] += vb[i];
      t[2] += 1;
    }
    va.clear();
    vb.clear();
    for (const auto& [base, t] : by_base) {
      va.push_back(t[0] / t[2]);
      vb.push_back(t[1] / t[2]);
    }
    out.d = paired_difference(va, vb, opt_);
    out.interval = "percentile bootstrap of the per-base differences over " + std::to_string(va.size()) +
                   " base seeds (each the mean over its alignment seeds)";
    return out;
  }
  out.d = paired_difference(va, vb, opt_);
  out.interval = "percentile bootstrap of the per-seed differences over " + std::to_string(out.seeds.size()) + " seeds";
  if (key.group != "all") return out;
  // Crossed over seeds x families: both recipes are scored on the same items, so per seed and family
  // the difference of rates has the same item weight; resampling families applies to both at once.
  std::vector<std::vector<Cell>> cells;
  std::set<std::string> families;
  std::vector<std::pair<std::map<std::string, Point>, std::map<std::string, Point>>> fam;
  for (const Unit& seed : out.seeds) {
    const SeedFinal &a = fa.at(seed), &b = fb.at(seed);
    fam.emplace_back(families_at(*a.run, key, a.step), families_at(*b.run, key, b.step));
    if (fam.back().first.empty() || fam.back().first.size() != fam.back().second.size()) return out;
    for (const auto& [f, p] : fam.back().first) {
      auto q = fam.back().second.find(f);
      if (q == fam.back().second.end() || q->second.n != p.n) return out;  // not the same items
      families.insert(f);
    }
  }
  for (const auto& [fa_s, fb_s] : fam) {
    std::vector<Cell> row;
    for (const std::string& f : families) {
      auto a = fa_s.find(f);
      row.push_back(a == fa_s.end() ? Cell{0, 0} : Cell{fb_s.at(f).value - a->second.value, static_cast<double>(a->second.n)});
    }
    cells.push_back(row);
  }
  const ethos::Estimate c = bootstrap_seeds_families(cells, opt_);
  out.d.diff.low = c.low;
  out.d.diff.high = c.high;
  out.interval = "crossed percentile bootstrap of the differences over " + std::to_string(out.seeds.size()) +
                 " seeds x " + std::to_string(families.size()) + " template families";
  return out;
}

}  // namespace ethos::report
