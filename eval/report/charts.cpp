// `ethos report`, part 3: the charts, drawn by gnuplot (PNG via pngcairo, or libgd png when
// cairo is missing, plus SVG). Each chart is one script under <out>/gnuplot/ with its data
// inline; the statistics are computed in C++ (aggregate.cpp), gnuplot only draws.
#include <sys/wait.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <sstream>
#include <tuple>

#include "datasets/base/util.h"
#include "eval/report/internal.h"

namespace fs = std::filesystem;

namespace ethos::report {

namespace {

// Okabe-Ito (colour-blind safe) first, then greys and darker variants for long recipe lists.
const char* kColors[] = {"#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9",
                         "#000000", "#999999", "#882255", "#117733", "#332288", "#AA4499"};
std::string color(size_t i) { return kColors[i % (sizeof kColors / sizeof kColors[0])]; }

// A gnuplot single-quoted string ('' is a quote inside).
std::string gq(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("''") : std::string(1, c);
  return out + "'";
}

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::string fmt(double x) {
  if (std::isnan(x)) return "NaN";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", x);
  return buf;
}

// Data blocks are named $d0, $d1, ...
struct Script {
  std::string data;
  int blocks = 0;
  std::string block(const std::vector<std::vector<double>>& rows) {
    const std::string name = "$d" + std::to_string(blocks++);
    data += name + " << EOD\n";
    for (const auto& r : rows) {
      for (size_t i = 0; i < r.size(); ++i) data += (i ? " " : "") + fmt(r[i]);
      data += "\n";
    }
    data += "EOD\n";
    return name;
  }
};

struct Terminals {
  bool gnuplot = false;
  std::string png;  // "pngcairo" or "png"
};

Terminals detect_terminals() {
  Terminals t;
  if (std::system("command -v gnuplot > /dev/null 2>&1") != 0) return t;
  t.gnuplot = true;
  t.png = std::system("gnuplot -e 'set terminal pngcairo' > /dev/null 2>&1") == 0 ? "pngcairo" : "png";
  return t;
}

// Writes <out>/gnuplot/<name>.gp and runs it from <out>; true when both images exist.
bool render(const std::string& out_dir, const std::string& name, const std::string& caption, const Script& s,
            const std::string& body, int width, int height, const Terminals& t, std::string* problem) {
  const fs::path dir = fs::path(out_dir) / "gnuplot";
  fs::create_directories(dir);
  const std::string font = "font 'DejaVu Sans,11'";
  const std::string size = "size " + std::to_string(width) + "," + std::to_string(height);
  const std::string png_term = t.png == "pngcairo" ? "pngcairo " + size + " noenhanced " + font
                                                   : "png " + size + " noenhanced truecolor " + font;
  std::string gp = "# " + caption + "\n# Written by `ethos report`; re-render from the report directory: gnuplot gnuplot/" +
                   name + ".gp\n" + "set datafile missing 'NaN'\n" + s.data;
  gp += "set terminal " + png_term + "\nset output " + gq(name + ".png") + "\n" + body + "set output\nreset\n";
  gp += "set terminal svg " + size + " noenhanced " + font + " background rgb 'white'\nset output " + gq(name + ".svg") +
        "\n" + body + "set output\n";
  write_file_atomic((dir / (name + ".gp")).string(), gp);
  if (!t.gnuplot) {
    *problem = "gnuplot is not installed (apt install gnuplot-nox); the script is in gnuplot/" + name + ".gp";
    return false;
  }
  for (const char* ext : {".png", ".svg"}) fs::remove(fs::path(out_dir) / (name + ext));
  const std::string log = fs::absolute(dir / (name + ".log")).string();  // the command runs in out_dir
  const std::string cmd = "cd " + shell_quote(out_dir) + " && gnuplot " + shell_quote("gnuplot/" + name + ".gp") + " > " +
                          shell_quote(log) + " 2>&1";
  const int st = std::system(cmd.c_str());
  const bool ok = st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0 && fs::exists(fs::path(out_dir) / (name + ".png")) &&
                  fs::exists(fs::path(out_dir) / (name + ".svg"));
  if (!ok) *problem = "gnuplot failed on gnuplot/" + name + ".gp: " + trim(file_exists(log) ? read_file(log) : "");
  else fs::remove(log);
  return ok;
}

const std::string kCommon =
    "set grid lc rgb '#dddddd'\nset border lc rgb '#444444'\nset key outside right top vertical samplen 2\n"
    "set tics nomirror\n";

// A band (filled, no legend entry) and a line with the recipe's legend entry.
std::string band_and_line(const std::string& block, const std::string& c, const std::string& title) {
  return block + " using 1:3:4 with filledcurves fc rgb " + gq(c) + " fs transparent solid 0.2 noborder notitle, " +
         block + " using 1:2:5 with linespoints lw 2 pt variable ps 0.6 lc rgb " + gq(c) + " title " + gq(title);
}

std::string plot_or_empty(const std::vector<std::string>& parts) {
  if (parts.empty()) return "unset label\nset label 'no data' at graph 0.5,0.5 center\nplot NaN notitle\nunset label\n";
  std::string s = "plot ";
  for (size_t i = 0; i < parts.size(); ++i) s += (i ? ", \\\n     " : "") + parts[i];
  return s + "\n";
}

// step, mean, low, high, point type (7 filled; 6 hollow: a subsampled checkpoint)
std::vector<std::vector<double>> curve_rows(const std::map<int64_t, Estimate>& c, double scale) {
  std::vector<std::vector<double>> rows;
  for (const auto& [step, e] : c)
    rows.push_back({static_cast<double>(step), scale * e.mean, scale * e.low, scale * e.high, e.subsample >= 0 ? 6.0 : 7.0});
  return rows;
}

// The same with x = alignment tokens in thousands: per step, the mean over the recipe's runs of the tokens
// trained since their first stage ended (0: the pre-trained base). Checkpoints of the first stage
// before its end are left out: pre-training is the curve's starting point, not part of it.
std::vector<std::vector<double>> token_rows(const std::map<int64_t, Estimate>& c, double scale,
                                            const std::vector<const Run*>& runs) {
  std::vector<std::vector<double>> rows;
  for (const auto& [step, e] : c) {
    double sum = 0;
    int n = 0;
    for (const Run* r : runs)
      if (auto it = r->align_tokens.find(step); it != r->align_tokens.end()) {
        sum += static_cast<double>(it->second);
        ++n;
      }
    if (n == 0) continue;
    rows.push_back({sum / n / 1000, scale * e.mean, scale * e.low, scale * e.high, e.subsample >= 0 ? 6.0 : 7.0});
  }
  return rows;
}

// The smallest subsample on any curve point of the chart, or -1.
int64_t smallest_subsample(const std::vector<std::map<int64_t, Estimate>>& curves) {
  int64_t n = -1;
  for (const auto& c : curves)
    for (const auto& [step, e] : c)
      if (e.subsample >= 0 && (n < 0 || e.subsample < n)) n = e.subsample;
  return n;
}

std::string view_text(const ReportData& d) { return "suite " + d.primary.suite + ", " + d.primary.name(); }

// One panel of a curve chart: its title, y label and the series each recipe draws.
struct Panel {
  std::string title, ylabel;
  SeriesKey key;
};

// The panels' plots (one band and line per recipe, x = step or alignment tokens) into *body, and
// the hollow-point note into *caption when a point was scored on a subsample.
void curve_panels(const ReportData& d, const Aggregator& agg, const std::vector<Panel>& panels, bool tokens, Script& s,
                  std::string* body, std::string* caption) {
  std::vector<std::map<int64_t, Estimate>> all;
  for (const Panel& p : panels) {
    std::vector<std::string> parts;
    for (size_t i = 0; i < d.recipes.size(); ++i) {
      const auto curve = agg.curve(d.recipes[i], p.key);
      if (curve.empty()) continue;
      all.push_back(curve);
      const auto rows = tokens ? token_rows(curve, 100, agg.runs_of(d.recipes[i])) : curve_rows(curve, 100);
      if (!rows.empty()) parts.push_back(band_and_line(s.block(rows), color(i), d.recipes[i]));
    }
    *body += "set title " + gq(p.title) + "\nset ylabel " + gq(p.ylabel) + "\n" + plot_or_empty(parts);
  }
  *body += "unset multiplot\n";
  if (const int64_t n = smallest_subsample(all); n >= 0)
    *caption += " Hollow points: intermediate checkpoints scored on a stratified subsample (n >= " + std::to_string(n) +
                " items); filled points: the whole suite.";
}

const char* kTokensAxis = "alignment tokens, thousands (0: the base)";  // short: a two-panel chart clips a longer one

Chart misaligned_vs_step(const ReportData& d, const Aggregator& agg, const std::vector<Run>& runs, const Terminals& t) {
  // With a pre-training stage the x-axis is alignment tokens: the phase the recipes differ in.
  const bool tokens = has_alignment_phase(runs);
  Chart c{"misaligned_vs_step", "Misaligned action rate vs " + std::string(tokens ? "alignment tokens" : "training step") +
                                    " per recipe (" + view_text(d) +
                                    "): mean over seeds with a 95% bootstrap band over seeds; ID and OOD panels." +
                                    (tokens ? " x = 0 is the pre-trained base (the prior), shared by every recipe of a seed." : ""),
          false, ""};
  Script s;
  std::string body = kCommon + "set multiplot layout 1,2 title " +
                     gq("Misaligned action rate vs " + std::string(tokens ? "alignment tokens" : "step") + " (" + view_text(d) + ")") +
                     "\nset xlabel " + gq(tokens ? kTokensAxis : "training step") + "\nset yrange [0:100]\n";
  curve_panels(d, agg,
               {{"ID (in distribution)", "misaligned (%)", d.primary.key("id", "misaligned_rate")},
                {"OOD (held-out shifts)", "misaligned (%)", d.primary.key("ood", "misaligned_rate")}},
               tokens, s, &body, &c.caption);
  c.written = render(d.out_dir, c.name, c.caption, s, body, 1300, 520, t, &c.problem);
  return c;
}

// One point with x and y intervals per recipe, x/y from two (split, metric) estimates at the final
// checkpoint. Each point is also named by a label (set in *labels: labels are not plot series, so
// the legend keeps one entry per recipe).
std::vector<std::string> scatter(const ReportData& d, const Aggregator& agg, Script& s, const SeriesKey& xkey,
                                 const SeriesKey& ykey, std::string* labels) {
  std::vector<std::string> parts;
  for (size_t i = 0; i < d.recipes.size(); ++i) {
    const Estimate x = agg.final(d.recipes[i], xkey), y = agg.final(d.recipes[i], ykey);
    if (!x.ok() || !y.ok()) continue;
    const std::string b = s.block({{100 * x.mean, 100 * y.mean, 100 * x.low, 100 * x.high, 100 * y.low, 100 * y.high}});
    parts.push_back(b + " using 1:2:3:4:5:6 with xyerrorbars lw 2 pt 7 ps 1.4 lc rgb " + gq(color(i)) + " title " +
                    gq(d.recipes[i]));
    *labels += "set label " + gq(d.recipes[i]) + " at " + fmt(100 * x.mean) + "," + fmt(100 * y.mean) +
               " offset char 1,0.8 left tc rgb " + gq(color(i)) + " front\n";
  }
  return parts;
}

Chart id_vs_ood(const ReportData& d, const Aggregator& agg, const Terminals& t) {
  Chart c{"id_vs_ood", "ID vs OOD misaligned rate per recipe at the final checkpoint (" + view_text(d) +
                           "), 95% intervals; points above the dashed line do worse on held-out shifts.", false, ""};
  Script s;
  std::string labels;
  auto parts = scatter(d, agg, s, d.primary.key("id", "misaligned_rate"), d.primary.key("ood", "misaligned_rate"), &labels);
  if (!parts.empty()) parts.insert(parts.begin(), "x with lines dt 2 lw 1 lc rgb '#888888' notitle");
  const std::string body = kCommon + "set title " + gq("ID vs OOD at the final checkpoint (" + view_text(d) + ")") +
                           "\nset xlabel 'ID misaligned (%)'\nset ylabel 'OOD misaligned (%)'\nset xrange [0:100]\n"
                           "set yrange [0:100]\nset size ratio -1\nset label 'dashed line: OOD = ID' at graph 0.97,0.04 right tc rgb '#777777'\n" +
                           labels + plot_or_empty(parts);
  c.written = render(d.out_dir, c.name, c.caption, s, body, 820, 640, t, &c.problem);
  return c;
}

Chart refusal_vs_misaligned(const ReportData& d, const Aggregator& agg, const Terminals& t) {
  Chart c{"refusal_vs_misaligned", "Over-refusal on benign twins vs misaligned rate per recipe at the final checkpoint (" +
                                       view_text(d) + "), 95% intervals; the good corner is bottom left.", false, ""};
  Script s;
  std::string body = kCommon + "set multiplot layout 1,2 title " + gq("Over-refusal vs misalignment, final checkpoint (" + view_text(d) + ")") +
                     "\nset xlabel 'over-refusal on benign twins (%)'\nset ylabel 'misaligned (%)'\nset xrange [0:100]\nset yrange [0:100]\n";
  for (const char* split : {"id", "ood"}) {
    std::string labels;
    auto parts =
        scatter(d, agg, s, d.primary.key(split, "over_refusal_rate"), d.primary.key(split, "misaligned_rate"), &labels);
    body += std::string("set title ") + (std::string(split) == "id" ? "'ID'" : "'OOD'") + "\n" + labels +
            plot_or_empty(parts) + "unset label\n";
  }
  body += "unset multiplot\n";
  c.written = render(d.out_dir, c.name, c.caption, s, body, 1300, 560, t, &c.problem);
  return c;
}

// Held-out harm types (the shift the study is about; all OOD items when the suite has no harm
// shift) against alignment tokens: the harm that survives, and the right action, per recipe.
Chart ood_vs_alignment_tokens(const ReportData& d, const Aggregator& agg, const std::vector<Run>& runs, const Terminals& t) {
  const auto axes = shift_axes(runs, d.primary);
  const bool harm = std::find(axes.begin(), axes.end(), "harm") != axes.end();
  const std::string what = harm ? "held-out harm types" : "all OOD items";
  auto key = [&](const char* metric) {
    return harm ? d.primary.key("ood", metric, "shift", "harm") : d.primary.key("ood", metric);
  };
  Chart c{"ood_vs_alignment_tokens", "OOD rate vs alignment tokens per recipe (" + view_text(d) + ", " + what +
                                         "): misaligned, and aligned (the item's own right action); mean over seeds with a "
                                         "95% bootstrap band. x = 0 is the pre-trained base.",
          false, ""};
  if (!has_alignment_phase(runs)) {
    c.problem = "no run trains after a first (pre-training) stage, so there is no alignment phase to put on the x-axis";
    return c;
  }
  Script s;
  std::string body = kCommon + "set multiplot layout 1,2 title " + gq("OOD rate vs alignment tokens (" + view_text(d) + ", " + what + ")") +
                     "\nset xlabel " + gq(kTokensAxis) + "\nset yrange [0:100]\n";
  curve_panels(d, agg,
               {{"misaligned", "misaligned (%)", key("misaligned_rate")},
                {"aligned (the right action for the item)", "aligned (%)", key("aligned_rate")}},
               true, s, &body, &c.caption);
  c.written = render(d.out_dir, c.name, c.caption, s, body, 1300, 520, t, &c.problem);
  return c;
}

Chart heldout_loss(const ReportData& d, const Aggregator& agg, const std::vector<Run>& runs, const Terminals& t) {
  Chart c{"heldout_loss", "Held-out loss (capability) vs training step per recipe: mean over seeds with a 95% bootstrap band.",
          false, ""};
  std::optional<SeriesKey> key;
  for (const Run& r : runs)
    for (const auto& kv : r.series)
      if (!key && kv.first.suite == "heldout" && kv.first.metric == "loss" && kv.first.group == "all") key = kv.first;
  if (!key) {
    c.problem = "no held-out loss events (suite \"heldout\", metric \"loss\"); set eval.heldout in the recipes";
    return c;
  }
  Script s;
  std::vector<std::string> parts;
  for (size_t i = 0; i < d.recipes.size(); ++i) {
    const auto curve = agg.curve(d.recipes[i], *key);
    if (!curve.empty()) parts.push_back(band_and_line(s.block(curve_rows(curve, 1)), color(i), d.recipes[i]));
  }
  const std::string body = kCommon + "set title 'Held-out loss vs step'\nset xlabel 'training step'\n"
                                     "set ylabel 'held-out loss (nats per target token)'\n" + plot_or_empty(parts);
  c.written = render(d.out_dir, c.name, c.caption, s, body, 900, 560, t, &c.problem);
  return c;
}

// Grouped bars with 95% interval whiskers: one group per category along x, one bar per series in
// each group (coloured, named in the legend); value(i, k) is series i in category k (not ok: no
// bar). Returns the x-axis settings and the plot command.
std::string grouped_bars(Script& s, const std::vector<std::string>& cats, const std::vector<std::string>& series,
                         const std::function<Estimate(size_t, size_t)>& value, double scale) {
  const size_t S = series.size();
  const double width = 0.8 / static_cast<double>(std::max<size_t>(S, 1));
  std::vector<std::string> parts;
  for (size_t i = 0; i < S; ++i) {
    std::vector<std::vector<double>> rows;
    for (size_t k = 0; k < cats.size(); ++k) {
      const Estimate e = value(i, k);
      if (!e.ok()) continue;
      const double x = static_cast<double>(k) - 0.4 + width * (static_cast<double>(i) + 0.5);
      rows.push_back({x, scale * e.mean, scale * e.low, scale * e.high});
    }
    if (rows.empty()) continue;
    const std::string b = s.block(rows);
    parts.push_back(b + " using 1:2 with boxes fs solid 0.75 border lc rgb '#333333' lc rgb " + gq(color(i)) + " title " +
                    gq(series[i]));
    parts.push_back(b + " using 1:2:3:4 with yerrorbars lc rgb '#222222' lw 1.2 pt 7 ps 0.5 notitle");
  }
  std::string xtics = "set xtics (";
  for (size_t k = 0; k < cats.size(); ++k) xtics += (k ? ", " : "") + gq(cats[k]) + " " + std::to_string(k);
  xtics += ")\n";
  return "set pointintervalbox 0\nset xrange [-0.6:" + fmt(static_cast<double>(cats.size()) - 0.4) + "]\nset boxwidth " +
         fmt(width * 0.95) + " absolute\n" + xtics + plot_or_empty(parts);
}

Chart ood_by_axis(const ReportData& d, const Aggregator& agg, const std::vector<Run>& runs, const Terminals& t) {
  const auto axes = shift_axes(runs, d.primary);
  Chart c{"ood_by_axis", "OOD misaligned rate per shifted axis at the final checkpoint (" + view_text(d) +
                             "), 95% intervals: which shift each recipe survives. 'all OOD' pools every OOD item" +
                             (axes.empty() ? "; the suite has no per-axis shift groups (no id items to compare against)" : "") + ".",
          false, ""};
  std::vector<std::string> cats{"all OOD"};
  std::vector<SeriesKey> keys{d.primary.key("ood", "misaligned_rate")};
  for (const auto& a : axes) {
    cats.push_back(a);
    keys.push_back(d.primary.key("ood", "misaligned_rate", "shift", a));
  }
  Script s;
  const std::string bars = grouped_bars(
      s, cats, d.recipes, [&](size_t i, size_t k) { return agg.final(d.recipes[i], keys[k]); }, 100);
  const std::string body = kCommon + "set title " + gq("OOD misaligned rate by shifted axis (" + view_text(d) + ")") +
                           "\nset xlabel 'shifted axis (OOD items whose value on it never occurs in ID)'\n"
                           "set ylabel 'misaligned (%)'\nset yrange [0:100]\n" + bars;
  c.written = render(d.out_dir, c.name, c.caption, s, body, std::max(900, 160 * static_cast<int>(cats.size()) + 300), 560,
                     t, &c.problem);
  return c;
}

// The criteria file's headline measures per recipe at the final checkpoint: the chart the page
// opens with.
Chart headline(const ReportData& d, const Aggregator& agg, const Terminals& t) {
  std::vector<std::string> labels;
  bool rates = true;
  for (const Headline& h : d.headline) {
    labels.push_back(h.label);
    rates = rates && h.rate;
  }
  Chart c{"headline", "The pre-registered measures per recipe at the final checkpoint: mean over seeds, 95% intervals (" +
                          join(labels, "; ") + ").", false, ""};
  Script s;
  const std::string bars = grouped_bars(
      s, d.recipes, labels, [&](size_t i, size_t k) { return agg.final(d.recipes[k], d.headline[i].key); },
      rates ? 100 : 1);
  const std::string body = kCommon + "set key below horizontal\nset title 'Pre-registered measures, final checkpoint'\n"
                           "set xtics rotate by -30 left\nset ylabel " + gq(rates ? "rate (%)" : "value") + "\n" +
                           (rates ? "set yrange [0:100]\n" : "") + bars;
  c.written = render(d.out_dir, c.name, c.caption, s, body, std::max(900, 110 * static_cast<int>(d.recipes.size()) + 200),
                     620, t, &c.problem);
  return c;
}

// Harm type x recipe at the final checkpoint (science chart 6): the misaligned and the
// right-action rate in each cell, the number printed in it.
Chart by_harm(const ReportData& d, const Aggregator& agg, const std::vector<Run>& runs, const Terminals& t) {
  const auto harms = harm_types(runs, d.primary);
  Chart c{"by_harm", "Misaligned and right-action rate per harm type and recipe at the final checkpoint (" + view_text(d) +
                         "), mean over seeds, in percent. (ood): the harm type's items in the OOD split; a harm type found only there "
                         "is one alignment never showed.",
          false, ""};
  if (harms.empty()) {
    c.problem = "the suite has no per-harm-type events (group \"harm\")";
    return c;
  }
  std::string xtics = "set xtics rotate by -35 left (";
  for (size_t k = 0; k < harms.size(); ++k)
    xtics += (k ? ", " : "") + gq(harms[k].second + (harms[k].first == "ood" ? " (ood)" : "")) + " " + std::to_string(k);
  std::string ytics = "set ytics (";
  for (size_t i = 0; i < d.recipes.size(); ++i) ytics += (i ? ", " : "") + gq(d.recipes[i]) + " " + std::to_string(i);
  Script s;
  std::string body = kCommon + "set multiplot layout 1,2 title " + gq("Per harm type, final checkpoint (" + view_text(d) + ")") +
                     "\nunset key\nunset grid\nset cbrange [0:100]\nset xrange [-0.5:" +
                     fmt(static_cast<double>(harms.size()) - 0.5) + "]\nset yrange [" +
                     fmt(static_cast<double>(d.recipes.size()) - 0.5) + ":-0.5]\n" + xtics + ")\n" + ytics + ")\n";
  const std::vector<std::tuple<const char*, const char*, const char*>> panels{
      {"misaligned_rate", "misaligned (%)", "#b2182b"}, {"aligned_rate", "right action (%)", "#1b7837"}};
  for (const auto& [metric, title, hue] : panels) {
    std::vector<std::vector<double>> rows;
    for (size_t i = 0; i < d.recipes.size(); ++i)
      for (size_t k = 0; k < harms.size(); ++k) {
        const Estimate e = agg.final(d.recipes[i], d.primary.key(harms[k].first, metric, "harm", harms[k].second));
        if (e.ok()) rows.push_back({static_cast<double>(k), static_cast<double>(i), 100 * e.mean});
      }
    body += "set title " + gq(title) + "\nset palette defined (0 '#ffffff', 100 " + gq(hue) + ")\n";
    if (rows.empty()) {
      body += plot_or_empty({});
      continue;
    }
    const std::string b = s.block(rows);
    body += "plot " + b + " using 1:2:(0.5):(0.5):3 with boxxyerror fs solid 1.0 noborder fc palette notitle, \\\n     " + b +
            " using 1:2:(sprintf(\"%.0f\", $3)) with labels font ',9' notitle\n";
  }
  body += "unset multiplot\n";
  c.written = render(d.out_dir, c.name, c.caption, s, body,
                     std::max(1000, 2 * (55 * static_cast<int>(harms.size()) + 260)),
                     std::max(480, 34 * static_cast<int>(d.recipes.size()) + 260), t, &c.problem);
  return c;
}

// The reason-first chain (the primary suite's likelihood/reason_first view): per recipe, how often
// the model's own rationale names the item's principle (situation -> principle), and how often it
// then acts aligned when it did and when it did not (principle -> action); ID and held-out harm
// types side by side. Only where those metrics exist (empty name otherwise).
Chart principle_chain(const ReportData& d, const Aggregator& agg, const Terminals& t) {
  const View rf = chain_view(d.primary);
  const std::vector<std::string> labels{"names the item's principle", "aligned, if it named it", "aligned, if it did not"};
  const std::vector<std::string> titles{"trained harm types (ID)", "held-out harm types"};  // per kChainParts
  const auto key = [&](const ChainPart& p, size_t m) { return rf.key(p.split, kChainMetrics[m], p.group, p.value); };
  bool any = false;
  for (const auto& r : d.recipes)
    for (const ChainPart& p : kChainParts)
      for (size_t m = 0; m < kChainMetrics.size(); ++m) any = any || agg.final(r, key(p, m)).ok();
  if (!any) return Chart{"", "", false, ""};
  Chart out{"principle_chain", "Reason first, final checkpoint (suite " + rf.suite + ", " + rf.name() +
                                   "), mean over seeds, 95% intervals: the share of harmful items whose own rationale "
                                   "names the item's principle (situation -> principle), and the aligned rate among "
                                   "those that name it and those that do not (principle -> action).",
            false, ""};
  Script s;
  std::string body = kCommon + "set multiplot layout 1,2 title " + gq("Does the model name the right principle, and act on it? (" +
                                                                       rf.suite + ", " + rf.name() + ")") +
                     "\nset key below horizontal\nset xtics rotate by -30 left\nset ylabel 'rate (%)'\nset yrange [0:100]\n";
  for (size_t part = 0; part < kChainParts.size(); ++part)
    body += "set title " + gq(titles[part]) + "\n" +
            grouped_bars(s, d.recipes, labels,
                         [&](size_t i, size_t k) { return agg.final(d.recipes[k], key(kChainParts[part], i)); }, 100);
  body += "unset multiplot\n";
  out.written = render(d.out_dir, out.name, out.caption, s, body,
                       std::max(1100, 2 * (70 * static_cast<int>(d.recipes.size()) + 180)), 620, t, &out.problem);
  return out;
}

}  // namespace

std::vector<Chart> render_charts(const ReportData& d, const Aggregator& agg, const std::vector<Run>& runs) {
  const Terminals t = detect_terminals();
  std::vector<Chart> out;
  if (!d.headline.empty()) out.push_back(headline(d, agg, t));
  for (Chart c : {misaligned_vs_step(d, agg, runs, t), id_vs_ood(d, agg, t), refusal_vs_misaligned(d, agg, t),
                  ood_vs_alignment_tokens(d, agg, runs, t), heldout_loss(d, agg, runs, t), ood_by_axis(d, agg, runs, t),
                  by_harm(d, agg, runs, t)})
    out.push_back(std::move(c));
  if (Chart c = principle_chain(d, agg, t); !c.name.empty()) out.push_back(std::move(c));
  return out;
}

}  // namespace ethos::report
