// Statistics of the eval harness (eval/score/stats.h): Wilson intervals against independently computed
// values, bootstrap determinism and coverage, the crossed seeds x families bootstrap, sign-flip
// p-values, Holm adjustment and the "0/n as <= 3/n" text.
#include "catch.h"

#include <cmath>
#include <random>

#include "datasets/base/util.h"
#include "eval/score/stats.h"

using namespace ethos;
using ethos_catch::Contains;

CATCH_TEST_CASE("wilson: 0/n, n/n and k/n against reference values", "[stats]") {
  // Reference values from Python 3 (statistics.NormalDist().inv_cdf(0.975) for z) with the
  // textbook form (p + z^2/2n -/+ z sqrt(p(1-p)/n + z^2/4n^2)) / (1 + z^2/n), computed at dev
  // time and hard-coded; the C++ uses the algebraically different (k + z^2/2)/(n + z^2) form.
  struct Case {
    int64_t k, n;
    double low, high;
  };
  const Case cases[] = {{0, 10, 0.0, 0.277532799863},           {10, 10, 0.722467200137, 1.0},
                        {3, 10, 0.107791267406, 0.603221852539}, {0, 300, 0.0, 0.012642971225},
                        {300, 300, 0.987357028775, 1.0},         {45, 300, 0.114032468712, 0.194817611145},
                        {1, 1, 0.206549314377, 1.0},             {0, 1, 0.0, 0.793450685623},
                        {17, 40, 0.285093925600, 0.578049314580}};
  for (const Case& c : cases) {
    CATCH_INFO(c.k << "/" << c.n);
    const Interval ci = wilson(c.k, c.n);
    CATCH_CHECK(ci.low == Approx(c.low).margin(1e-6));
    CATCH_CHECK(ci.high == Approx(c.high).margin(1e-6));
  }
  CATCH_CHECK(wilson(0, 50).low == 0.0);  // exact ends, not 1e-17
  CATCH_CHECK(wilson(50, 50).high == 1.0);
  CATCH_CHECK(kZ95 == Approx(1.9599639845400536).epsilon(1e-15));
  // n = 0 has no interval: NaN, documented; bad counts are errors.
  CATCH_CHECK(std::isnan(wilson(0, 0).low));
  CATCH_CHECK(std::isnan(wilson(0, 0).high));
  CATCH_REQUIRE_THROWS_WITH(wilson(5, 3), Contains("0 <= k <= n"));
  CATCH_REQUIRE_THROWS_AS(wilson(-1, 3), Error);
}

CATCH_TEST_CASE("bootstrap: deterministic for a seed, different for another", "[stats]") {
  const std::vector<double> x{0.1, 0.4, 0.35, 0.8, 0.05, 0.6, 0.2, 0.45};
  BootstrapOptions opt;
  opt.seed = 7;
  const Estimate a = bootstrap_mean(x, opt), b = bootstrap_mean(x, opt);
  CATCH_CHECK(a.low == b.low);  // bit-identical
  CATCH_CHECK(a.high == b.high);
  CATCH_CHECK(a.mean == Approx(0.36875).margin(1e-12));
  CATCH_CHECK(a.low < a.mean);
  CATCH_CHECK(a.high > a.mean);
  opt.seed = 8;
  const Estimate c = bootstrap_mean(x, opt);
  CATCH_CHECK((c.low != a.low || c.high != a.high));
  // One value: a zero-width interval at that value; none: an error.
  const Estimate one = bootstrap_mean({0.25});
  CATCH_CHECK(one.low == 0.25);
  CATCH_CHECK(one.high == 0.25);
  CATCH_REQUIRE_THROWS_WITH(bootstrap_mean({}), Contains("no observations"));
}

CATCH_TEST_CASE("bootstrap: 95% percentile interval covers the true mean at about the nominal rate", "[stats]") {
  // 400 data sets of 30 draws from N(0.3, 1); nominal 95%. The percentile bootstrap of a mean
  // at n = 30 covers ~93-94% in theory; accept [0.90, 0.99] (binomial sd of the estimate ~0.011).
  std::mt19937_64 rng(2024);
  std::normal_distribution<double> normal(0.3, 1.0);
  int covered = 0;
  const int sets = 400;
  for (int s = 0; s < sets; ++s) {
    std::vector<double> x(30);
    for (auto& v : x) v = normal(rng);
    BootstrapOptions opt;
    opt.resamples = 1000;
    opt.seed = static_cast<uint64_t>(s);
    const Estimate e = bootstrap_mean(x, opt);
    if (e.low <= 0.3 && 0.3 <= e.high) ++covered;
  }
  const double coverage = static_cast<double>(covered) / sets;
  CATCH_INFO("coverage " << coverage);
  CATCH_CHECK(coverage >= 0.90);
  CATCH_CHECK(coverage <= 0.99);
}

CATCH_TEST_CASE("bootstrap: crossed seeds x families", "[stats]") {
  // Identical seeds but strongly different families: resampling seeds alone sees no spread;
  // the crossed bootstrap does (a new set of templates would change the rate).
  const std::vector<double> fam_rates{0.1, 0.9, 0.2, 0.8, 0.5};
  std::vector<std::vector<Cell>> cells(4);
  std::vector<double> per_seed;
  for (auto& row : cells) {
    for (double r : fam_rates) row.push_back({r, 20});
    per_seed.push_back(weighted_rate(row));
  }
  CATCH_CHECK(per_seed[0] == Approx(0.5).margin(1e-12));
  const Estimate seeds_only = bootstrap_mean(per_seed);
  CATCH_CHECK(seeds_only.high - seeds_only.low == Approx(0.0).margin(1e-12));
  const Estimate crossed = bootstrap_seeds_families(cells);
  CATCH_CHECK(crossed.mean == Approx(0.5).margin(1e-12));
  CATCH_CHECK(crossed.high - crossed.low > 0.2);
  CATCH_CHECK(crossed.n == 4);
  // Weights: a family a seed lacks (weight 0) is skipped, the rest are n-weighted.
  CATCH_CHECK(weighted_rate({{1.0, 10}, {0.0, 30}, {0.7, 0}}) == Approx(0.25).margin(1e-12));
  CATCH_REQUIRE_THROWS_WITH(bootstrap_seeds_families({{{0.1, 1}}, {{0.1, 1}, {0.2, 1}}}), Contains("same families"));

  // Coverage: rate = 0.3 + seed effect + family effect + noise (sd 0.05 each), 10 seeds x 10
  // families, 400 simulated experiments. A Python simulation of the same design at dev time gave
  // 0.927; accept [0.88, 0.99].
  std::mt19937_64 rng(99);
  std::normal_distribution<double> eff(0.0, 0.05);
  int covered = 0;
  const int sets = 400;
  for (int s = 0; s < sets; ++s) {
    std::vector<double> se(10), fe(10);
    for (auto& v : se) v = eff(rng);
    for (auto& v : fe) v = eff(rng);
    std::vector<std::vector<Cell>> m(10, std::vector<Cell>(10));
    for (size_t i = 0; i < 10; ++i)
      for (size_t f = 0; f < 10; ++f) m[i][f] = {0.3 + se[i] + fe[f] + eff(rng), 1};
    BootstrapOptions opt;
    opt.resamples = 400;
    opt.seed = static_cast<uint64_t>(s) + 1000;
    const Estimate e = bootstrap_seeds_families(m, opt);
    if (e.low <= 0.3 && 0.3 <= e.high) ++covered;
  }
  const double coverage = static_cast<double>(covered) / sets;
  CATCH_INFO("crossed coverage " << coverage);
  CATCH_CHECK(coverage >= 0.88);
  CATCH_CHECK(coverage <= 0.99);
}

CATCH_TEST_CASE("paired differences and their p-values", "[stats]") {
  // Exact sign-flip: all-positive [1,2,3]: only all-plus and all-minus reach |sum| 6 -> 2/8.
  CATCH_CHECK(sign_flip_p({1, 2, 3}) == Approx(0.25).margin(1e-12));
  // Five seeds: the floor 2/32 = 0.0625 (documented: 5 seeds can never give p < 0.05).
  CATCH_CHECK(sign_flip_p({3, 1, 1, 1, 1}) == Approx(0.0625).margin(1e-12));
  // [1, -1]: mean 0 -> every assignment is as extreme.
  CATCH_CHECK(sign_flip_p({1, -1}) == Approx(1.0).margin(1e-12));
  CATCH_CHECK(sign_flip_p({0, 0, 0}) == 1.0);
  // [2, -1, 1]: sums over the 8 assignments: 2,0,-2,4,-4,2,0,-2 (|.| >= 2: 6 of 8).
  CATCH_CHECK(sign_flip_p({2, -1, 1}) == Approx(0.75).margin(1e-12));
  // More than 20 values: Monte Carlo; 25 equal positive differences are extreme (exact p = 2^-24).
  const double p_mc = sign_flip_p(std::vector<double>(25, 0.1), 3, 20000);
  CATCH_CHECK(p_mc < 1e-3);
  CATCH_CHECK(p_mc > 0);

  // recipe b is 0.1 lower than a on every seed (plus seed noise that cancels in the pair).
  const std::vector<double> a{0.50, 0.62, 0.41, 0.55, 0.47, 0.58, 0.52, 0.44};
  std::vector<double> b;
  for (double x : a) b.push_back(x - 0.1);
  b[0] += 0.02;
  b[1] -= 0.02;
  const PairedDifference d = paired_difference(a, b);
  CATCH_CHECK(d.seeds == 8);
  CATCH_CHECK(d.diff.mean == Approx(-0.1).margin(1e-12));
  CATCH_CHECK(d.diff.high < 0);  // the interval excludes zero
  CATCH_CHECK(d.diff.low > -0.115);  // se of the mean difference ~0.0035
  CATCH_CHECK(d.p == Approx(2.0 / 256).margin(1e-12));  // every difference negative: the exact floor
  CATCH_CHECK(bootstrap_p({-0.1, -0.12, -0.08, -0.1}) == Approx(0.0).margin(1e-12));
  const double p_null = bootstrap_p({-0.1, 0.12, -0.08, 0.1, 0.05, -0.07});
  CATCH_CHECK(p_null > 0.3);
  CATCH_REQUIRE_THROWS_WITH(paired_difference({0.1}, {0.1, 0.2}), Contains("pair them by seed"));
}

CATCH_TEST_CASE("holm: a known example", "[stats]") {
  // R: p.adjust(c(0.01, 0.04, 0.03, 0.005), "holm") = 0.03 0.06 0.06 0.02
  const auto adj = holm({0.01, 0.04, 0.03, 0.005});
  CATCH_REQUIRE(adj.size() == 4);
  CATCH_CHECK(adj[0] == Approx(0.03).margin(1e-12));
  CATCH_CHECK(adj[1] == Approx(0.06).margin(1e-12));
  CATCH_CHECK(adj[2] == Approx(0.06).margin(1e-12));
  CATCH_CHECK(adj[3] == Approx(0.02).margin(1e-12));
  // Capped at 1; one test is unadjusted; none is fine.
  const auto capped = holm({0.5, 0.6});
  CATCH_CHECK(capped[0] == Approx(1.0));
  CATCH_CHECK(capped[1] == Approx(1.0));
  CATCH_CHECK(holm({0.2})[0] == Approx(0.2));
  CATCH_CHECK(holm({}).empty());
  CATCH_REQUIRE_THROWS_AS(holm({1.5}), Error);
}

CATCH_TEST_CASE("0/n is reported as <= 3/n", "[stats]") {
  CATCH_CHECK(format_rate(0, 300) == "0/300 (<= 1%)");
  CATCH_CHECK(format_rate(0, 500) == "0/500 (<= 0.6%)");
  CATCH_CHECK(rule_of_three(500) == Approx(0.006));
  CATCH_CHECK(rule_of_three(2) == 1.0);
  CATCH_CHECK(format_rate(3, 10) == "3/10 = 30.0% [10.8, 60.3]");
  CATCH_CHECK(format_rate(0, 0) == "0/0 (no items)");
}
