// Internals of `ethos report` shared by its parts: reading run directories (runs.cpp),
// aggregating across seeds (aggregate.cpp), charts (charts.cpp) and the HTML page
// (html.cpp). Not a public interface; report.h is.
#pragma once
#include <cstdint>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "eval/score/stats.h"

namespace ethos::report {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// What one eval event measured (everything but the run fields and the numbers).
struct SeriesKey {
  std::string suite, scorer, mode, normalize, split, group, group_value, metric;
  auto tie() const { return std::tie(suite, scorer, mode, normalize, split, group, group_value, metric); }
  bool operator<(const SeriesKey& o) const { return tie() < o.tie(); }
};

struct Point {
  double value = 0;
  int64_t k = -1, n = -1;  // -1: not in the event
  double ci_low = kNaN, ci_high = kNaN;
  int64_t subsample = -1;  // items scored when the checkpoint was subsampled; -1: the whole suite
};

// One run directory: <recipe>/seed<k>.
// The pairing unit of a run: (base seed, seed); base seed -1 when the matrix has no base seeds.
using Unit = std::pair<int64_t, int64_t>;
std::string unit_name(const Unit& u);        // "3", or "base1-seed3"
nlohmann::json unit_json(const Unit& u);     // 3, or "base1-seed3"

struct Run {
  std::string recipe, dir;
  int64_t seed = 0;
  int64_t base_seed = -1;  // from a base<b>-seed<k> directory; -1: none
  Unit unit() const { return {base_seed, seed}; }
  std::map<SeriesKey, std::map<int64_t, Point>> series;  // key -> step -> point (a repeated step: last wins)
  std::map<int64_t, double> train_loss;                  // step -> training loss
  double train_seconds = 0, checkpoint_seconds = 0, eval_seconds = 0;
  int64_t tokens = 0;
  int eval_hooks = 0;
  // The alignment phase: what the run trains after its first stage (a multi-stage recipe's
  // pre-training). align_tokens maps the first stage's last step (for a reused stage, the step it
  // was restored at) to 0 and every later trained step to the tokens trained since. A
  // single-stage run has only {its last step: 0}.
  std::map<int64_t, int64_t> align_tokens;
};
// Whether any run trains after its first stage: then curves are drawn against alignment tokens,
// starting from the pre-trained base at 0, instead of against the global step.
bool has_alignment_phase(const std::vector<Run>& runs);

struct Loaded {
  std::vector<Run> runs;           // sorted by recipe, then seed
  std::vector<std::string> notes;  // what was skipped or missing, for the reader
  // Cells of the ablation (RUNS_DIR/ablation.json) that did not finish: {recipe, seed, state,
  // error}; their partial results are left out of every comparison.
  nlohmann::json missing = nlohmann::json::array();
};
Loaded load_runs(const std::string& runs_dir, const std::string& out_dir);
// Recipe order in tables and legends: r<digit>... first (R0..R6), then the rest (C1, C2...), each
// in natural order (r2 < r10).
bool recipe_less(const std::string& a, const std::string& b);

// A way of scoring: suite + scorer + mode (+ normalisation for likelihood).
struct View {
  std::string suite, scorer, mode, normalize;
  std::string name() const;  // "scorer/mode[/normalize]"
  bool operator<(const View& o) const { return std::tie(suite, scorer, mode, normalize) < std::tie(o.suite, o.scorer, o.mode, o.normalize); }
  bool operator==(const View& o) const { return !(*this < o) && !(o < *this); }
  SeriesKey key(const std::string& split, const std::string& metric, const std::string& group = "all",
                const std::string& group_value = "all") const {
    return {suite, scorer, mode, normalize, split, group, group_value, metric};
  }
};
std::vector<View> rate_views(const std::vector<Run>& runs);  // views with misaligned_rate events
// Picks the primary view (see ReportConfig); *why says how it was chosen.
View choose_primary(const std::vector<Run>& runs, const std::string& suite, const std::string& primary, std::string* why);

// The reason-first chain (summary.json's principle_chain and its chart): metrics of the primary
// suite's likelihood/reason_first view, on trained harm types and on held-out ones.
inline const std::vector<std::string> kChainMetrics = {"principle_named_rate", "aligned_rate_if_named",
                                                       "aligned_rate_if_not_named"};
struct ChainPart {
  std::string name;                  // summary.json key: id | heldout_harm
  std::string split, group, value;   // the events' split and group
};
inline const std::vector<ChainPart> kChainParts = {{"id", "id", "all", "all"}, {"heldout_harm", "ood", "shift", "harm"}};
inline View chain_view(const View& primary) { return {primary.suite, "likelihood", "reason_first", primary.normalize}; }

// A value across the seeds of one recipe.
struct Estimate {
  double mean = kNaN, low = kNaN, high = kNaN;
  std::map<Unit, double> per_seed;     // unit (base seed, seed) -> value
  int64_t k = -1, n = -1;              // pooled over seeds where the events carry k, n
  int64_t step = -1;                   // for a final estimate: the latest final step among the seeds
  std::string method;                  // how the interval was computed
  int64_t subsample = -1;              // curve points: the largest subsample among the seeds (-1: none)
  bool ok() const { return !per_seed.empty(); }
};

struct Paired {
  std::string recipe, baseline, split, group, group_value, metric;
  std::vector<Unit> seeds;
  PairedDifference d;
  double p_holm = kNaN;     // NaN: not part of a Holm family
  std::string holm_family;  // which tests were adjusted together
  std::string interval;     // how the interval was computed
};

class Aggregator {
 public:
  Aggregator(const std::vector<Run>& runs, const BootstrapOptions& opt) : runs_(runs), opt_(opt) {}
  std::vector<std::string> recipes() const;
  std::vector<const Run*> runs_of(const std::string& recipe) const;
  // step -> mean over the seeds that have the step, 95% bootstrap band over seeds (one seed:
  // the event's own interval when it has one).
  std::map<int64_t, Estimate> curve(const std::string& recipe, const SeriesKey& key) const;
  // Each seed's value at its last step for `key`; the interval is the crossed seeds x families
  // bootstrap when family events exist for every seed, else over seeds (one seed: Wilson of k/n).
  Estimate final(const std::string& recipe, const SeriesKey& key) const;
  // recipe - baseline at the final checkpoint over common seeds: the mean of the per-seed
  // differences, a sign-flip p-value over seeds, and an interval crossed over seeds x families for
  // a split-level key with family results (both recipes on the same items), else over seeds.
  std::optional<Paired> paired(const std::string& recipe, const std::string& baseline, const SeriesKey& key) const;
  const BootstrapOptions& options() const { return opt_; }

 private:
  const std::vector<Run>& runs_;
  BootstrapOptions opt_;
};

// Shifted axes (group "shift") of a view's OOD split, over all runs, sorted.
std::vector<std::string> shift_axes(const std::vector<Run>& runs, const View& v);
// The values of `group` among the runs' events that match `key` in everything but the group.
std::set<std::string> group_values(const std::vector<Run>& runs, const SeriesKey& key, const std::string& group);
// (split, harm type) pairs with per-harm-type events (group "harm") in a view, ID first, then OOD.
std::vector<std::pair<std::string, std::string>> harm_types(const std::vector<Run>& runs, const View& v);

// A measure of the headline chart (from a criteria file): one bar per recipe.
struct Headline {
  std::string label;
  SeriesKey key;
  bool rate = true;
};

// Evaluates the criteria file at `path` (format: criteria.cpp) on the runs: summary.json's
// "criteria" object. Errors name file:line for a malformed file; a recipe with no runs makes its
// criterion "not evaluable", not an error. Appends the headline measures to *headline.
nlohmann::json evaluate_criteria(const std::string& path, const Aggregator& agg, const std::vector<Run>& runs,
                                 const std::vector<std::string>& recipes, std::vector<Headline>* headline);

// Compares this run's criteria (evaluate_criteria's object) with a published study's: the
// summary.json at `published` (or in that report directory). Per criterion "agrees" (the same
// verdict; for exploratory ones every paired difference of the same sign), "disagrees" or "not
// comparable" (not evaluable on one side), with both paired differences side by side.
nlohmann::json compare_criteria(const nlohmann::json& here, const std::string& published);

// Everything the renderers need.
struct ReportData {
  std::string runs_dir, out_dir;
  View primary;
  std::string primary_why;
  std::string baseline;
  std::vector<std::string> recipes;
  std::vector<View> views;
  std::vector<std::string> notes;
  nlohmann::json missing_cells = nlohmann::json::array();  // Loaded::missing
  nlohmann::json summary;  // summary.json as written
  std::vector<Headline> headline;  // from the criteria file: the chart the page opens with
};

struct Chart {
  std::string name;       // file stem
  std::string caption;
  bool written = false;
  std::string problem;    // why not, when !written
};
// Renders the charts (principle_chain only where reason-first diagnostics exist) with gnuplot into out_dir (PNG and SVG). gnuplot missing or failing
// marks charts as not written with the reason.
std::vector<Chart> render_charts(const ReportData& d, const Aggregator& agg, const std::vector<Run>& runs);
void write_html(const ReportData& d, const std::vector<Chart>& charts, const std::string& path);

// Small formatting helpers shared by the renderers.
std::string pct(double x, int decimals = 1);  // 0.123 -> "12.3"; NaN -> "n/a"

}  // namespace ethos::report
