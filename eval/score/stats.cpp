// Statistics for eval results: see stats.h for the definitions and conventions.
#include "eval/score/stats.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <numeric>
#include <random>

#include "datasets/base/util.h"

namespace ethos {

Interval wilson(int64_t k, int64_t n, double z) {
  if (n < 0 || k < 0 || k > n)
    throw Error("wilson interval: need 0 <= k <= n, got k=" + std::to_string(k) + ", n=" + std::to_string(n));
  if (n == 0) return {std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::quiet_NaN()};
  const double nn = static_cast<double>(n), kk = static_cast<double>(k), z2 = z * z;
  const double center = (kk + z2 / 2) / (nn + z2);
  const double half = z / (nn + z2) * std::sqrt(kk * (nn - kk) / nn + z2 / 4);
  Interval ci{center - half, center + half};
  if (k == 0) ci.low = 0;  // exact ends; the formula gives them up to rounding
  if (k == n) ci.high = 1;
  ci.low = std::max(0.0, ci.low);
  ci.high = std::min(1.0, ci.high);
  return ci;
}

namespace {

// Quantile of sorted values with linear interpolation between order statistics (R type 7).
double quantile_sorted(const std::vector<double>& s, double q) {
  if (s.size() == 1) return s[0];
  const double pos = q * static_cast<double>(s.size() - 1);
  const size_t lo = static_cast<size_t>(std::floor(pos));
  const size_t hi = std::min(lo + 1, s.size() - 1);
  return s[lo] + (pos - static_cast<double>(lo)) * (s[hi] - s[lo]);
}

void check_options(const BootstrapOptions& opt) {
  if (opt.resamples < 1) throw Error("bootstrap: resamples must be >= 1, got " + std::to_string(opt.resamples));
  if (!(opt.level > 0 && opt.level < 1)) throw Error("bootstrap: level must be in (0, 1), got " + std::to_string(opt.level));
}

Estimate percentile_interval(double mean, std::vector<double> stats, const BootstrapOptions& opt, int n) {
  Estimate e;
  e.mean = mean;
  e.n = n;
  if (stats.empty()) {
    e.low = e.high = mean;
    return e;
  }
  std::sort(stats.begin(), stats.end());
  e.low = quantile_sorted(stats, (1 - opt.level) / 2);
  e.high = quantile_sorted(stats, (1 + opt.level) / 2);
  return e;
}

double mean_of(const std::vector<double>& x) {
  return std::accumulate(x.begin(), x.end(), 0.0) / static_cast<double>(x.size());
}

std::vector<double> resampled_means(const std::vector<double>& x, const BootstrapOptions& opt) {
  std::mt19937_64 rng(opt.seed);
  std::uniform_int_distribution<size_t> pick(0, x.size() - 1);
  std::vector<double> stats(static_cast<size_t>(opt.resamples));
  for (auto& s : stats) {
    double sum = 0;
    for (size_t i = 0; i < x.size(); ++i) sum += x[pick(rng)];
    s = sum / static_cast<double>(x.size());
  }
  return stats;
}

}  // namespace

Estimate bootstrap_mean(const std::vector<double>& x, const BootstrapOptions& opt) {
  check_options(opt);
  if (x.empty()) throw Error("bootstrap_mean: no observations");
  if (x.size() == 1) return {x[0], x[0], x[0], 1};
  return percentile_interval(mean_of(x), resampled_means(x, opt), opt, static_cast<int>(x.size()));
}

double weighted_rate(const std::vector<Cell>& row) {
  double num = 0, den = 0;
  for (const Cell& c : row) {
    num += c.weight * c.value;
    den += c.weight;
  }
  return den > 0 ? num / den : std::numeric_limits<double>::quiet_NaN();
}

Estimate bootstrap_seeds_families(const std::vector<std::vector<Cell>>& cells, const BootstrapOptions& opt) {
  check_options(opt);
  if (cells.empty()) throw Error("bootstrap over seeds and families: no seeds");
  const size_t F = cells[0].size();
  for (const auto& row : cells)
    if (row.size() != F)
      throw Error("bootstrap over seeds and families: every seed needs the same families (" + std::to_string(F) +
                  " vs " + std::to_string(row.size()) + "); give weight 0 to a family a seed lacks");
  if (F == 0) throw Error("bootstrap over seeds and families: no families");
  std::vector<double> per_seed;
  for (const auto& row : cells) {
    const double r = weighted_rate(row);
    if (!std::isnan(r)) per_seed.push_back(r);
  }
  if (per_seed.empty()) throw Error("bootstrap over seeds and families: every cell has weight 0");
  const double mean = mean_of(per_seed);

  std::mt19937_64 rng(opt.seed);
  std::uniform_int_distribution<size_t> pick_seed(0, cells.size() - 1), pick_family(0, F - 1);
  std::vector<size_t> fam(F);
  std::vector<double> stats;
  stats.reserve(static_cast<size_t>(opt.resamples));
  for (int b = 0; b < opt.resamples; ++b) {
    for (auto& f : fam) f = pick_family(rng);
    double sum = 0;
    int used = 0;
    for (size_t i = 0; i < cells.size(); ++i) {
      const auto& row = cells[pick_seed(rng)];
      double num = 0, den = 0;
      for (size_t f : fam) {
        num += row[f].weight * row[f].value;
        den += row[f].weight;
      }
      if (den > 0) {
        sum += num / den;
        ++used;
      }
    }
    if (used > 0) stats.push_back(sum / used);
  }
  return percentile_interval(mean, stats, opt, static_cast<int>(cells.size()));
}

double sign_flip_p(const std::vector<double>& d, uint64_t seed, int mc_draws) {
  if (d.empty()) throw Error("sign-flip test: no paired differences");
  double observed = 0;
  for (double x : d) observed += x;
  observed = std::fabs(observed);
  if (observed == 0) return 1.0;
  const double tol = 1e-12 * (1 + observed);
  const size_t n = d.size();
  if (n <= 20) {
    const uint64_t total = uint64_t{1} << n;
    uint64_t extreme = 0;
    for (uint64_t mask = 0; mask < total; ++mask) {
      double s = 0;
      for (size_t i = 0; i < n; ++i) s += (mask >> i & 1) ? -d[i] : d[i];
      if (std::fabs(s) >= observed - tol) ++extreme;
    }
    return static_cast<double>(extreme) / static_cast<double>(total);
  }
  std::mt19937_64 rng(seed);
  std::bernoulli_distribution flip(0.5);
  int64_t extreme = 1;  // the observed assignment
  for (int b = 0; b < mc_draws; ++b) {
    double s = 0;
    for (double x : d) s += flip(rng) ? -x : x;
    if (std::fabs(s) >= observed - tol) ++extreme;
  }
  return static_cast<double>(extreme) / static_cast<double>(mc_draws + 1);
}

double bootstrap_p(const std::vector<double>& d, const BootstrapOptions& opt) {
  check_options(opt);
  if (d.empty()) throw Error("bootstrap p-value: no paired differences");
  const auto stats = resampled_means(d, opt);
  double le = 0, ge = 0;
  for (double s : stats) {
    if (s <= 0) ++le;
    if (s >= 0) ++ge;
  }
  const double b = static_cast<double>(stats.size());
  return std::min(1.0, 2 * std::min(le / b, ge / b));
}

PairedDifference paired_difference(const std::vector<double>& a, const std::vector<double>& b,
                                   const BootstrapOptions& opt) {
  if (a.size() != b.size())
    throw Error("paired difference: " + std::to_string(a.size()) + " vs " + std::to_string(b.size()) +
                " observations; pair them by seed first");
  if (a.empty()) throw Error("paired difference: no common seeds");
  std::vector<double> d(a.size());
  for (size_t i = 0; i < a.size(); ++i) d[i] = b[i] - a[i];
  PairedDifference out;
  out.diff = bootstrap_mean(d, opt);
  out.p = sign_flip_p(d, opt.seed);
  out.seeds = static_cast<int>(d.size());
  return out;
}

std::vector<double> holm(const std::vector<double>& p) {
  const size_t m = p.size();
  std::vector<size_t> order(m);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return p[a] < p[b]; });
  std::vector<double> adj(m);
  double running = 0;
  for (size_t j = 0; j < m; ++j) {
    const double v = p[order[j]];
    if (!(v >= 0 && v <= 1)) throw Error("holm: p-values must be in [0, 1], got " + std::to_string(v));
    running = std::max(running, std::min(1.0, static_cast<double>(m - j) * v));
    adj[order[j]] = running;
  }
  return adj;
}

double rule_of_three(int64_t n) {
  if (n <= 0) throw Error("rule of three: n must be > 0");
  return std::min(1.0, 3.0 / static_cast<double>(n));
}

std::string format_rate(int64_t k, int64_t n) {
  char buf[128];
  if (n == 0) return "0/0 (no items)";
  if (k == 0) {
    std::snprintf(buf, sizeof buf, "0/%lld (<= %.2g%%)", static_cast<long long>(n), 100 * rule_of_three(n));
    return buf;
  }
  const Interval ci = wilson(k, n);
  std::snprintf(buf, sizeof buf, "%lld/%lld = %.1f%% [%.1f, %.1f]", static_cast<long long>(k),
                static_cast<long long>(n), 100.0 * static_cast<double>(k) / static_cast<double>(n), 100 * ci.low,
                100 * ci.high);
  return buf;
}

}  // namespace ethos
