// `ethos report`, part 4: index.html, one self-contained page (charts inlined as SVG, tables,
// no JavaScript) built from summary.json's content.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <set>

#include "datasets/base/util.h"
#include "eval/report/internal.h"

namespace fs = std::filesystem;

namespace ethos::report {

namespace {

using nlohmann::json;

std::string esc(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

double get(const json& j, const char* key) {
  return j.contains(key) && j[key].is_number() ? j[key].get<double>() : kNaN;
}

// "12.3% [8.1, 17.0]" from an estimate object; "" when absent.
std::string rate_cell(const json& e) {
  if (e.is_null()) return "";
  std::string s = pct(get(e, "mean")) + "% [" + pct(get(e, "ci_low")) + ", " + pct(get(e, "ci_high")) + "]";
  if (e.contains("text")) s += "<br><small>pooled " + esc(e["text"].get<std::string>()) + "</small>";
  return s;
}

std::string number_cell(const json& e, int decimals = 3) {
  if (e.is_null()) return "";
  char buf[96];
  std::snprintf(buf, sizeof buf, "%.*f [%.*f, %.*f]", decimals, get(e, "mean"), decimals, get(e, "ci_low"), decimals,
                get(e, "ci_high"));
  return buf;
}

const json& at(const json& j, std::initializer_list<const char*> path) {
  static const json null;
  const json* cur = &j;
  for (const char* k : path) {
    if (!cur->is_object() || !cur->contains(k)) return null;
    cur = &(*cur)[k];
  }
  return *cur;
}

std::string inline_svg(const std::string& path) {
  if (!file_exists(path)) return "";
  const std::string svg = read_file(path);
  const size_t start = svg.find("<svg");
  return start == std::string::npos ? "" : svg.substr(start);
}

std::string td(const std::string& s) { return "<td>" + s + "</td>"; }
// A left-aligned cell holding a bullet list (items: "<li>...</li>" already escaped).
std::string list_td(const std::string& items) {
  return "<td style=\"text-align:left\"><ul style=\"margin:0;padding-left:1.2em\">" + items + "</ul></td>";
}

std::string fmt_p(double p) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3g", p);
  return buf;
}

std::string str(const json& j) { return j.is_string() ? j.get<std::string>() : j.dump(); }

// (split, harm type) columns of the per-harm-type table, from summary.json: ID first, then OOD.
std::vector<std::pair<std::string, std::string>> harm_types_of(const json& s, const std::vector<std::string>& recipes) {
  std::set<std::pair<std::string, std::string>> out;
  for (const auto& r : recipes)
    for (const auto& [split, harms] : at(s["recipes"][r], {"by_harm"}).items())
      for (const auto& [harm, m] : harms.items()) out.insert({split, harm});
  return {out.begin(), out.end()};
}

}  // namespace

void write_html(const ReportData& d, const std::vector<Chart>& charts, const std::string& path) {
  const json& s = d.summary;
  std::string h;
  h += "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>ethos report: " + esc(d.runs_dir) +
       "</title>\n<style>body{font-family:sans-serif;max-width:1400px;margin:2em auto;padding:0 1em;color:#222}"
       "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right;"
       "vertical-align:top}th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}"
       "figure{margin:1.5em 0}figcaption{color:#555;margin-top:.3em}svg{max-width:100%;height:auto}"
       ".note{color:#8a4b00}small{color:#666}</style></head><body>\n";
  h += "<h1>ethos report</h1>\n<p>Runs: <code>" + esc(d.runs_dir) + "</code> &middot; " + std::to_string(d.recipes.size()) +
       " recipe(s). <b>Primary measure</b>: misaligned-action rate, " + esc(d.primary_why) +
       ". <b>Baseline</b> for paired differences: <code>" + esc(d.baseline) + "</code>. Intervals are 95%: " +
       "percentile bootstrap (" + std::to_string(s["bootstrap"]["resamples"].get<int>()) +
       " resamples, seed " + std::to_string(s["bootstrap"]["seed"].get<uint64_t>()) +
       ") over seeds, crossed with template families at the final checkpoint when family results exist; "
       "Wilson score intervals when a recipe has one seed.</p>\n";
  auto figure = [&](const Chart& c) {
    std::string f = "<figure id=\"" + c.name + "\">";
    if (c.written) {
      f += inline_svg((fs::path(d.out_dir) / (c.name + ".svg")).string());
      f += "<figcaption>" + esc(c.caption) + " <a href=\"" + c.name + ".png\">PNG</a> &middot; <a href=\"" + c.name +
           ".svg\">SVG</a> &middot; <a href=\"gnuplot/" + c.name + ".gp\">gnuplot script</a></figcaption>";
    } else {
      f += "<figcaption class=\"note\">" + esc(c.name) + ": not drawn: " + esc(c.problem) + "</figcaption>";
    }
    return f + "</figure>\n";
  };
  // A pre-registration's criteria come first: the verdict, then the headline chart.
  if (s.contains("criteria")) {
    const json& cr = s["criteria"];
    h += "<h2>Verdict on the pre-registered criteria</h2>\n<p>Criteria: <code>" + esc(str(cr["file"])) + "</code>.";
    for (const auto& [verdict, n] : cr["counts"].items()) h += " " + esc(verdict) + ": " + n.dump() + ".";
    h += "</p>\n<table><tr><th>criterion</th><th>claim</th><th>verdict</th><th>evidence</th></tr>\n";
    for (const json& c : cr["criteria"]) {
      std::string evidence;
      for (const json& k : c["checks"]) evidence += "<li>" + esc(str(k["text"])) + "</li>";
      if (c.contains("note")) evidence += "<li class=\"note\">" + esc(str(c["note"])) + "</li>";
      const std::string v = str(c["verdict"]);
      h += "<tr>" + td(esc(str(c["id"]))) + "<td style=\"text-align:left\">" + esc(str(c["claim"])) + "</td>" +
           td(v == "held" || v == "not held" ? "<b>" + esc(v) + "</b>" : esc(v)) + list_td(evidence) + "</tr>\n";
    }
    h += "</table>\n<p><small>pts: percentage points. Paired differences are over the seeds (bases) both recipes have, "
         "with the report's 95% interval and the sign-flip p-value; <em>not evaluable</em>: the runs the check needs are "
         "not in this directory.</small></p>\n";
    for (const Chart& c : charts)
      if (c.name == "headline") h += figure(c);
  }
  if (s.contains("comparison")) {
    const json& cmp = s["comparison"];
    h += "<h2>Against the published study</h2>\n<p>Published: <code>" + esc(str(cmp["published"])) + "</code>.";
    for (const auto& [what, n] : cmp["counts"].items()) h += " " + esc(what) + ": " + n.dump() + ".";
    h += "</p>\n<table><tr><th>criterion</th><th>here</th><th>published</th><th>agreement</th><th>paired differences</th></tr>\n";
    for (const json& c : cmp["criteria"]) {
      std::string diffs;
      if (c.contains("checks"))
        for (const json& k : c["checks"]) diffs += "<li>" + esc(str(k["text"])) + "</li>";
      h += "<tr>" + td(esc(str(c["id"]))) + td(esc(str(c["here"]))) + td(c["published"].is_null() ? "" : esc(str(c["published"]))) +
           td("<b>" + esc(str(c["agreement"])) + "</b>") + list_td(diffs) + "</tr>\n";
    }
    h += "</table>\n<p><small>A criterion agrees when its verdict is the same here and in the published study (for an "
         "exploratory one: when every paired difference has the published sign); <em>not comparable</em> when one side "
         "lacks the runs.</small></p>\n";
  }
  if (!d.notes.empty()) {
    h += "<h2>Notes</h2><ul>";
    for (const auto& n : d.notes) h += "<li class=\"note\">" + esc(n) + "</li>";
    h += "</ul>\n";
  }

  // Final-checkpoint table.
  h += "<h2>Final checkpoint</h2>\n<table><tr><th>recipe</th><th>seeds</th><th>ID misaligned</th><th>OOD misaligned</th>"
       "<th>ID over-refusal</th><th>OOD over-refusal</th><th>OOD unparseable</th><th>say accuracy (ID)</th>"
       "<th>held-out loss</th></tr>\n";
  for (const auto& r : d.recipes) {
    const json& jr = s["recipes"][r];
    const json& fin = at(jr, {"final"});
    size_t seeds = 0;
    for (const auto& [split, metrics] : fin.items())
      for (const auto& [m, e] : metrics.items()) seeds = std::max(seeds, e["seeds"].get<size_t>());
    h += "<tr>" + td(esc(r)) + td(std::to_string(seeds)) + td(rate_cell(at(fin, {"id", "misaligned_rate"}))) +
         td(rate_cell(at(fin, {"ood", "misaligned_rate"}))) + td(rate_cell(at(fin, {"id", "over_refusal_rate"}))) +
         td(rate_cell(at(fin, {"ood", "over_refusal_rate"}))) + td(rate_cell(at(fin, {"ood", "unparseable_rate"}))) +
         td(rate_cell(at(fin, {"id", "say_accuracy"}))) + td(number_cell(at(jr, {"heldout_loss"}))) + "</tr>\n";
  }
  h += "</table>\n<p><small>Pooled k/n counts all seeds' items (generation: samples); a pooled 0/n is shown as "
       "&le; 3/n, the one-sided 95% bound (rule of three).</small></p>\n";

  // Paired differences.
  h += "<h2>Paired differences vs " + esc(d.baseline) + "</h2>\n<table><tr><th>recipe</th><th>split</th><th>group</th>"
       "<th>metric</th><th>common seeds</th><th>difference (pp)</th><th>95% CI (pp)</th><th>p (sign-flip)</th>"
       "<th>p (Holm)</th></tr>\n";
  for (const json& p : s["paired_differences"]) {
    const std::string group = p["group"] == "all" ? "all" : p["group"].get<std::string>() + ": " + p["group_value"].get<std::string>();
    const bool excl = p["excludes_zero"].get<bool>();
    h += "<tr>" + td(esc(str(p["recipe"]))) + td(esc(str(p["split"]))) + td(esc(group)) + td(esc(str(p["metric"]))) +
         td(std::to_string(p["seeds"].size())) + td(pct(get(p, "diff"))) +
         td((excl ? "<b>" : std::string()) + "[" + pct(get(p, "ci_low")) + ", " + pct(get(p, "ci_high")) + "]" +
            (excl ? "</b>" : "")) +
         td(std::isnan(get(p, "p")) ? "" : fmt_p(get(p, "p"))) + td(std::isnan(get(p, "p_holm")) ? "" : fmt_p(get(p, "p_holm"))) +
         "</tr>\n";
  }
  h += "</table>\n<p><small>Difference = recipe &minus; baseline in percentage points over the seeds both have (negative: "
       "less misaligned). Bold: the 95% interval excludes zero. Holm adjusts across the OOD shift axes of one comparison. "
       "With n seeds the sign-flip test cannot go below 2/2<sup>n</sup>.</small></p>\n";

  // Charts.
  for (const Chart& c : charts)
    if (c.name != "headline") h += figure(c);

  // OOD by shifted axis.
  h += "<h2>OOD misaligned rate by shifted axis (final checkpoint)</h2>\n<table><tr><th>recipe</th>";
  std::vector<std::string> axes;
  for (const auto& r : d.recipes)
    for (const auto& [axis, e] : at(s["recipes"][r], {"ood_shift_misaligned_rate"}).items())
      if (std::find(axes.begin(), axes.end(), axis) == axes.end()) axes.push_back(axis);
  for (const auto& a : axes) h += "<th>" + esc(a) + "</th>";
  h += "</tr>\n";
  for (const auto& r : d.recipes) {
    h += "<tr>" + td(esc(r));
    for (const auto& a : axes) h += td(rate_cell(at(s["recipes"][r], {"ood_shift_misaligned_rate", a.c_str()})));
    h += "</tr>\n";
  }
  h += "</table>\n";

  // Per harm type.
  const auto harms = harm_types_of(s, d.recipes);
  if (!harms.empty()) {
    h += "<h2>Per harm type: misaligned / right action [/ says the right principle] (final checkpoint, %)</h2>\n"
         "<table><tr><th>recipe</th>";
    for (const auto& [split, harm] : harms) h += "<th>" + esc(harm) + "<br><small>" + esc(split) + "</small></th>";
    h += "</tr>\n";
    for (const auto& r : d.recipes) {
      h += "<tr>" + td(esc(r));
      for (const auto& [split, harm] : harms) {
        const json& m = at(s["recipes"][r], {"by_harm", split.c_str(), harm.c_str(), "misaligned_rate"});
        const json& a = at(s["recipes"][r], {"by_harm", split.c_str(), harm.c_str(), "aligned_rate"});
        const json& say = at(s["recipes"][r], {"by_harm", split.c_str(), harm.c_str(), "say_accuracy"});
        h += td(m.is_null() ? "" : pct(get(m, "mean"), 0) + " / " + pct(get(a, "mean"), 0) +
                                    (say.is_null() ? "" : " / " + pct(get(say, "mean"), 0)));
      }
      h += "</tr>\n";
    }
    h += "</table>\n<p><small>Harmful items of each harm type, mean over seeds; the intervals are in summary.json "
         "(<code>recipes.&lt;recipe&gt;.by_harm</code>). ood: the harm type's items in the OOD split; a harm type found "
         "only there is one alignment never showed. The third number, where the suite asks questions about the "
         "principles: the share answered right; far above the right action, the model says what it does not do "
         "(the say/do gap).</small></p>\n";
  }

  // Seen vs unseen wording (construct validity).
  if (s.contains("wording_misaligned_rate")) {
    h += "<h2>Unseen vs seen wording of the candidates (final misaligned rate)</h2>\n<table><tr><th>recipe</th>"
         "<th>ID unseen</th><th>ID seen</th><th>held-out harm types unseen</th><th>held-out harm types seen</th></tr>\n";
    for (const auto& r : d.recipes) {
      const json& w = at(s["wording_misaligned_rate"], {r.c_str()});
      if (w.is_null()) continue;
      h += "<tr>" + td(esc(r)) + td(rate_cell(at(w, {"id", "unseen"}))) + td(rate_cell(at(w, {"id", "seen"}))) +
           td(rate_cell(at(w, {"heldout_harm", "unseen"}))) + td(rate_cell(at(w, {"heldout_harm", "seen"}))) + "</tr>\n";
    }
    h += "</table>\n<p><small>" + esc(str(s["wording_note"])) +
         ". The study's measure is the unseen column; a much higher seen column means the rate there is "
         "recognition of phrases the model was trained on.</small></p>\n";
  }

  // The reason-first chain.
  if (s.contains("principle_chain")) {
    h += "<h2>Reason first: does the model name the right principle, and act on it? (final checkpoint)</h2>\n"
         "<table><tr><th>recipe</th><th>ID: names it</th><th>ID: aligned if named</th><th>ID: aligned if not</th>"
         "<th>held-out harm: names it</th><th>held-out harm: aligned if named</th><th>held-out harm: aligned if not</th></tr>\n";
    for (const auto& r : d.recipes) {
      const json& c = at(s["principle_chain"], {r.c_str()});
      if (c.is_null()) continue;
      h += "<tr>" + td(esc(r));
      for (const char* part : {"id", "heldout_harm"})
        for (const char* m : {"principle_named_rate", "aligned_rate_if_named", "aligned_rate_if_not_named"})
          h += td(rate_cell(at(c, {part, m})));
      h += "</tr>\n";
    }
    h += "</table>\n<p><small>Harmful items scored reason-first: the share whose rationale (the model's own, written "
         "before the candidates are ranked) names the item's principle, by the suite's <code>principles</code> texts, and "
         "the aligned rate among those that do and those that do not.</small></p>\n";
  }

  // Per-seed values and every scoring view.
  h += "<h2>Per seed: final misaligned rate (" + esc(d.primary.name()) + ")</h2>\n<table><tr><th>recipe</th><th>split</th><th>per seed (seed: %)</th></tr>\n";
  for (const auto& r : d.recipes)
    for (const char* split : {"id", "ood"}) {
      const json& e = at(s["recipes"][r], {"final", split, "misaligned_rate"});
      if (e.is_null()) continue;
      std::string cells;
      for (const auto& [seed, v] : e["per_seed"].items()) cells += seed + ": " + pct(v.is_null() ? kNaN : v.get<double>()) + " &nbsp; ";
      h += "<tr>" + td(esc(r)) + td(split) + "<td style=\"text-align:left\">" + cells + "</td></tr>\n";
    }
  h += "</table>\n<h2>Every scoring (final misaligned rate)</h2>\n<table><tr><th>suite:scoring</th><th>recipe</th>"
       "<th>ID</th><th>OOD</th></tr>\n";
  for (const auto& [view, by_recipe] : s["views_misaligned_rate"].items())
    for (const auto& [r, e] : by_recipe.items())
      h += "<tr>" + td(esc(view)) + td(esc(r)) + td(rate_cell(at(e, {"id"}))) + td(rate_cell(at(e, {"ood"}))) + "</tr>\n";
  h += "</table>\n";

  // Runs.
  h += "<h2>Runs</h2>\n<table><tr><th>recipe</th><th>seed</th><th>last eval step</th><th>tokens</th>"
       "<th>eval hooks</th><th>eval share of wall time</th><th>directory</th></tr>\n";
  for (const auto& r : d.recipes)
    for (const json& run : s["recipes"][r]["runs"])
      h += "<tr>" + td(esc(r)) + td(std::to_string(run["seed"].get<int64_t>())) +
           td(std::to_string(run["last_eval_step"].get<int64_t>())) + td(std::to_string(run["tokens"].get<int64_t>())) +
           td(std::to_string(run["eval_hooks"].get<int>())) +
           td(run["eval_share"].is_null() ? "" : pct(run["eval_share"].get<double>()) + "%") +
           "<td style=\"text-align:left\"><code>" + esc(str(run["dir"])) + "</code></td></tr>\n";
  h += "</table>\n<p><small>Eval share = seconds training stood still for eval (in-process eval hooks, or waits "
       "for an <code>eval.async</code> process) / (training-step + checkpoint + those seconds) from train.jsonl. Written by <code>ethos report</code>; the numbers are in summary.json.</small></p>\n</body></html>\n";
  write_file_atomic(path, h);
}

}  // namespace ethos::report
