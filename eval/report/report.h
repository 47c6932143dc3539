// `ethos report RUNS_DIR`: aggregates the runs of an ablation across seeds and renders what a
// researcher would put in a paper (recipes/README.md "Charts", README.md "Ablations and the report").
// Reads RUNS_DIR/<recipe>/seed<k>/{eval.jsonl (or a published eval.jsonl.gz), train.jsonl, config.yaml}
// (or RUNS_DIR/seed<k>/... for a single recipe) and writes to the output directory:
//   headline.{png,svg}               with --criteria: the criteria file's headline measures per recipe
//   misaligned_vs_step.{png,svg}     misaligned rate vs step per recipe, 95% bands over seeds; ID and OOD panels
//   id_vs_ood.{png,svg}              ID vs OOD misaligned rate per recipe at the final checkpoint
//   refusal_vs_misaligned.{png,svg}  over-refusal (benign twins) vs misaligned rate per recipe; ID and OOD panels
//   heldout_loss.{png,svg}           held-out loss vs step per recipe, 95% bands over seeds
//   ood_vs_alignment_tokens.{png,svg} OOD misaligned and right-action rate vs alignment tokens (two-stage runs)
//   ood_by_axis.{png,svg}            OOD misaligned rate per shifted axis per recipe (final checkpoint)
//   by_harm.{png,svg}                harm type x recipe: misaligned and right-action rate (final checkpoint)
//   summary.json, index.html         tables: per-seed values, means with bootstrap intervals, paired
//                                    differences vs a baseline recipe with Holm-adjusted p-values; with
//                                    --criteria, each pre-registered criterion held or not (criteria.cpp),
//                                    which the page opens with
//   gnuplot/*.gp                     the chart scripts, data inline: re-run with `gnuplot FILE.gp`
// Runs with a missing eval.jsonl or no eval events are skipped and listed (stdout, index.html,
// summary.json "notes"). Recipes are listed R0..R9 style ids first (r<digit>...), then the rest
// (controls C1, C2...), each in natural order.
#pragma once
#include <cstdint>
#include <string>

namespace ethos {

struct ReportConfig {
  std::string runs_dir;
  std::string out_dir;      // default: runs_dir/report
  std::string baseline;     // default: the recipe named "r1" (any case) if present, else the first alphabetically
  std::string primary;      // "scorer/mode[/normalize]"; default: the first present of likelihood/reason_first/mean,
                            // likelihood/direct/mean, generate/sample, likelihood/reason_first/sum, likelihood/direct/sum
  std::string suite;        // default: the scored suite with the most eval events (ties: alphabetical)
  std::string criteria;     // a pre-registration's criteria file (eval/report/criteria.cpp): each is
                            // stated as held or not, and the page opens with them and the headline chart
  std::string compare;      // with criteria: a published study's summary.json (or report directory); each
                            // criterion's verdict and paired differences here and there, agreeing or not
  int resamples = 2000;     // bootstrap resamples
  uint64_t seed = 12345;    // bootstrap seed (the report is deterministic)
};

// Writes the report; prints where it went and what was skipped. Returns 0, or 1 when gnuplot is
// missing or failed (summary.json and index.html are still written). Throws ethos::Error when
// nothing can be reported (no runs directory, no run with eval events, an unknown --baseline...).
int run_report(const ReportConfig& config);
int run_report(const std::string& runs_dir, const std::string& out_dir = "");

}  // namespace ethos
