// Statistics for eval results (recipes/README.md "Measuring"): Wilson score intervals for a rate,
// percentile bootstrap intervals of a mean (one level, and crossed over seeds x template
// families), paired differences between two recipes over common seeds with a sign-flip
// p-value, Holm-Bonferroni adjustment, and the "0/n is reported as <= 3/n" text rule.
// Everything is deterministic: bootstrap resampling uses std::mt19937_64 seeded by the caller.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace ethos {

// z for a two-sided 95% interval: the 0.975 quantile of the standard normal.
constexpr double kZ95 = 1.959963984540054;

struct Interval {
  double low = 0, high = 0;
};

// Wilson score interval for k successes out of n trials:
//   center = (k + z^2/2) / (n + z^2),  half = z/(n + z^2) * sqrt(k(n-k)/n + z^2/4).
// 0/n gives low = 0 and n/n gives high = 1 exactly. n == 0 has no interval: both ends are NaN
// (callers skip such groups; JSON cannot hold NaN). k < 0, n < 0 or k > n throw ethos::Error.
Interval wilson(int64_t k, int64_t n, double z = kZ95);

struct BootstrapOptions {
  int resamples = 2000;
  double level = 0.95;   // central interval: percentiles (1-level)/2 and (1+level)/2
  uint64_t seed = 12345;  // std::mt19937_64 seed; same seed -> same interval
};

struct Estimate {
  double mean = 0;            // the point estimate on the original data
  double low = 0, high = 0;   // percentile bootstrap interval
  int n = 0;                  // observations (one-level) or seeds (crossed)
};

// Percentile bootstrap of the mean of `x` (resampling x with replacement). Empty x throws;
// a single value gives a zero-width interval at that value.
Estimate bootstrap_mean(const std::vector<double>& x, const BootstrapOptions& opt = {});

// A rate measured on one seed x one template family: value = k/n, weight = n (items).
struct Cell {
  double value = 0;
  double weight = 0;  // 0: this seed has no items of this family (skipped)
};

// Crossed ("pigeonhole") bootstrap over seeds and template families. cells[s][f] is seed s on
// family f; every seed is scored on the same families, so seeds and families are resampled
// independently and the SAME resampled family set is used for every resampled seed. The
// statistic is the mean over seeds of the n-weighted mean over families (= the per-seed rate
// when every family is drawn once). Rows must all have the same number of families. An interval
// from this covers the variation from a new training seed AND a new set of template families.
Estimate bootstrap_seeds_families(const std::vector<std::vector<Cell>>& cells, const BootstrapOptions& opt = {});

// The per-seed statistic of bootstrap_seeds_families without resampling: the n-weighted mean
// over families of one row (NaN when the row has no weight).
double weighted_rate(const std::vector<Cell>& row);

struct PairedDifference {
  Estimate diff;          // mean over common seeds of (b - a), with a bootstrap interval
  double p = 1;           // two-sided sign-flip p-value of mean(b - a) == 0
  int seeds = 0;          // common seeds
};

// b - a over paired observations (a[i] and b[i] are the same seed). The interval bootstraps the
// per-seed differences; the p-value is sign_flip_p of the differences.
PairedDifference paired_difference(const std::vector<double>& a, const std::vector<double>& b,
                                   const BootstrapOptions& opt = {});

// Two-sided sign-flip (paired permutation) p-value for mean(d) == 0: the share of sign
// assignments whose |mean| is >= the observed |mean| (observed included). Exact (all 2^n
// assignments) for n <= 20, otherwise `mc_draws` random assignments (+1 for the observed one).
// Note the floor: with n seeds the smallest possible p is 2 / 2^n (5 seeds: 0.0625).
// All-zero differences give p = 1; empty d throws.
double sign_flip_p(const std::vector<double>& d, uint64_t seed = 12345, int mc_draws = 100000);

// Bootstrap p-value of mean(d) == 0: 2 * min(share of resampled means <= 0, share >= 0), capped
// at 1. Cheaper and less conservative than sign_flip_p for small n (prefer sign_flip_p).
double bootstrap_p(const std::vector<double>& d, const BootstrapOptions& opt = {});

// Holm-Bonferroni step-down adjustment: sort p ascending, adjusted_(i) = max over j <= i of
// min(1, (m - j) * p_(j)) (0-based j), returned in the input order. Controls the family-wise
// error rate at alpha when adjusted <= alpha is called significant.
std::vector<double> holm(const std::vector<double>& p);

// "k/n = 12.0% [9.1, 15.6]" with the Wilson interval in percent, or, for k == 0,
// "0/n (<= X%)" where X = 3/n (the rule of three: the one-sided 95% upper bound for 0/n).
// n == 0 gives "0/0 (no items)".
std::string format_rate(int64_t k, int64_t n);
// The rule-of-three upper bound 3/n for 0/n (n > 0), as a proportion.
double rule_of_three(int64_t n);

}  // namespace ethos
