// A pre-registration's criteria file (`ethos report --criteria`) evaluated on a small fixed set of
// runs, then compared with a published study's summary.json (`--compare`). Input: criteria.yaml,
// a line `----`, summary.json. The runs (recipes r1, r2, r2x on two seeds; suite "world",
// likelihood/direct/mean, ID and OOD rates per harm type, held-out loss) are built in memory once.
#include "eval/report/internal.h"
#include "tests/fuzz/common.h"

namespace {

using namespace ethos::report;

std::vector<Run> make_runs() {
  std::vector<Run> runs;
  int i = 0;
  for (const char* recipe : {"r1", "r2", "r2x"})
    for (int64_t seed : {0, 1}) {
      Run r;
      r.recipe = recipe;
      r.dir = std::string(recipe) + "/seed" + std::to_string(seed);
      r.seed = seed;
      r.align_tokens = {{10, 0}, {20, 4096}};
      for (const char* split : {"id", "ood"})
        for (const char* metric : {"misaligned_rate", "aligned_rate", "over_refusal_rate"})
          for (const char* harm : {"all", "blackmail", "sabotage"}) {
            const bool all = std::string(harm) == "all";
            SeriesKey k{"world", "likelihood", "direct", "mean", split, all ? "all" : "harm", harm, metric};
            for (int64_t step : {10, 20}) {
              Point p;
              p.value = 0.05 * ((i += 7) % 19);
              p.k = static_cast<int64_t>(p.value * 100);
              p.n = 100;
              r.series[k][step] = p;
            }
          }
      Point loss;
      loss.value = 2.0 + 0.01 * seed;
      r.series[SeriesKey{"heldout", "", "", "", "id", "all", "all", "loss"}][20] = loss;
      runs.push_back(std::move(r));
    }
  return runs;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::vector<Run> runs = make_runs();
  static const std::vector<std::string> recipes{"r1", "r2", "r2x"};
  const auto p = ethos::fuzz::parts(data, size, 2);
  const std::string criteria = ethos::fuzz::write("criteria.yaml", p[0]);
  const std::string published = ethos::fuzz::write("summary.json", p[1]);
  ethos::BootstrapOptions opt;
  opt.resamples = 20;
  const Aggregator agg(runs, opt);
  ethos::fuzz::expect_clean([&] {
    std::vector<Headline> headline;
    const nlohmann::json here = evaluate_criteria(criteria, agg, runs, recipes, &headline);
    compare_criteria(here, published);
  });
  return 0;
}
