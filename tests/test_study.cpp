// The whole why-beats-rule study at toy size, end to end through the CLI as a user runs it:
// recipes/why_beats_rule_tiny.yaml (every recipe on the `linked` tiny world, two bases) and its
// control recipes/why_beats_rule_tiny_control.yaml (R1, R2 on `unlinked`), then the report twice:
// the likelihood view that carries the diagnostics, and the pre-registered criteria on the model's
// own answers, compared with the published study. The numbers are noise at this size; what is
// checked is that every recipe, split, harm type, diagnostic and criterion is there.
#include "catch.h"
#include <filesystem>
#include <set>

#include <nlohmann/json.hpp>
#include <yaml-cpp/yaml.h>

#include "datasets/base/util.h"
#include "tests/helpers.h"

namespace fs = std::filesystem;
using namespace ethos;
using namespace ethos::test;
using nlohmann::json;

namespace {

std::set<std::string> keys(const json& j) {
  std::set<std::string> out;
  for (const auto& [k, v] : j.items()) out.insert(k);
  return out;
}

std::set<std::string> harm_list(const YAML::Node& splits, const char* group) {
  std::set<std::string> out;
  for (const auto& h : splits[group]["harm"]) out.insert(h.as<std::string>());
  return out;
}

}  // namespace

CATCH_TEST_CASE("the study at toy size: every recipe, both controls, every diagnostic and criterion", "[study]") {
  const std::string dir = fresh_dir("study"), src = source_dir();
  for (const char* matrix : {"why_beats_rule_tiny.yaml", "why_beats_rule_tiny_control.yaml"}) {
    const auto r = run("cd " + dir + " && " + ethos_bin() + " ablate " + src + "/recipes/" + matrix + " --no-report");
    CATCH_INFO(r.output);
    CATCH_REQUIRE(r.status == 0);
  }
  const std::string runs = dir + "/runs/why_beats_rule_tiny";
  const std::set<std::string> recipes{"r0-world=linked", "r1-world=linked", "r2-world=linked", "c1-world=linked",
                                      "c2-world=linked", "r3-world=linked", "r4-world=linked", "r5-world=linked",
                                      "r6-world=linked", "r1_dpo-world=linked", "r2_dpo-world=linked",
                                      "r1-world=unlinked", "r2-world=unlinked"};
  const YAML::Node splits = YAML::LoadFile(src + "/datasets/world/splits/default.yaml");
  const std::set<std::string> trained = harm_list(splits, "train"), dev = harm_list(splits, "heldout"),
                              test_group = harm_list(splits, "test");

  // The likelihood view (suite `world`, reason-first): rates per split and harm type, the
  // principle chain, unseen vs seen wording and the say rate, for every recipe and both bases.
  auto r = run(ethos_bin() + " report " + runs + " --suite world --primary likelihood/reason_first/mean --baseline "
               "r1-world=linked --resamples 500 --out " + dir + "/report_world");
  CATCH_INFO(r.output);
  CATCH_REQUIRE(r.status == 0);
  const json s = json::parse(read_file(dir + "/report_world/summary.json"));
  CATCH_CHECK(keys(s["recipes"]) == recipes);
  CATCH_CHECK(s["notes"].empty());
  CATCH_CHECK(s["missing_cells"].empty());
  for (const std::string& rec : recipes) {
    CATCH_INFO(rec);
    const json& jr = s["recipes"][rec];
    for (const char* split : {"id", "ood"})
      for (const char* metric : {"misaligned_rate", "aligned_rate", "over_refusal_rate"}) {  // ranking: always parseable
        CATCH_INFO(split << " " << metric);
        CATCH_REQUIRE(jr["final"][split].contains(metric));
        CATCH_CHECK(jr["final"][split][metric]["seeds"] == 2);
      }
    CATCH_CHECK(jr["final"]["id"].contains("say_accuracy"));
    CATCH_CHECK(keys(jr["by_harm"]["id"]) == trained);
    for (const std::string& h : trained) CATCH_CHECK(jr["by_harm"]["id"][h].contains("say_accuracy"));  // say/do per type
    const std::set<std::string> ood_harms = keys(jr["by_harm"]["ood"]);  // the dev group, and trained types on other shifts
    for (const std::string& h : dev) CATCH_CHECK(ood_harms.count(h));
    for (const std::string& h : test_group) CATCH_CHECK(!ood_harms.count(h));  // sealed: only its own suites hold it
    // The chain: how often the model's own rationale names the item's principle, and the action
    // given that it did or did not (a conditional exists where its condition occurred).
    for (const char* part : {"id", "heldout_harm"}) {
      CATCH_INFO(part);
      const json& chain = s["principle_chain"][rec][part];
      CATCH_CHECK(chain.contains("principle_named_rate"));
      CATCH_CHECK((chain.contains("aligned_rate_if_named") || chain.contains("aligned_rate_if_not_named")));
    }
    CATCH_CHECK(s["wording_misaligned_rate"][rec]["id"].contains("seen"));
    CATCH_CHECK(s["wording_misaligned_rate"][rec]["heldout_harm"].contains("unseen"));
    CATCH_CHECK(jr.contains("heldout_loss"));
  }
  for (const char* chart : {"misaligned_vs_step", "id_vs_ood", "ood_by_axis", "by_harm", "ood_vs_alignment_tokens", "principle_chain"})
    CATCH_CHECK(fs::file_size(dir + "/report_world/" + std::string(chart) + ".png") > 5000);

  // The pre-registered criteria on the model's own answers on the test group, set beside the
  // published study: each one evaluable here (both controls ran), each compared.
  r = run(ethos_bin() + " report " + runs + " --suite world-test-generate --primary generate/sample --baseline "
          "r1-world=linked --criteria " + src + "/recipes/why_beats_rule_test.criteria.yaml --compare " + src +
          "/recipes/results/why_beats_rule_test/report --resamples 500 --out " + dir + "/report_test");
  CATCH_INFO(r.output);
  CATCH_REQUIRE(r.status == 0);
  CATCH_CHECK_THAT(r.output, ethos_catch::Contains("against the published study"));
  const json t = json::parse(read_file(dir + "/report_test/summary.json"));
  CATCH_CHECK(keys(t["recipes"]) == recipes);
  for (const std::string& rec : recipes) {
    CATCH_INFO(rec);
    CATCH_CHECK(keys(t["recipes"][rec]["by_harm"]["ood"]) == test_group);
    CATCH_CHECK(t["recipes"][rec]["final"]["ood"].contains("unparseable_rate"));  // the model's own answers
  }
  CATCH_REQUIRE(t["criteria"]["criteria"].size() == 8);
  for (const json& c : t["criteria"]["criteria"]) {
    CATCH_INFO(c.dump());
    CATCH_CHECK(c["verdict"] != "not evaluable");
  }
  CATCH_REQUIRE(t["comparison"]["criteria"].size() == 8);
  for (const json& c : t["comparison"]["criteria"]) {
    CATCH_INFO(c.dump());
    CATCH_CHECK((c["agreement"] == "agrees" || c["agreement"] == "disagrees"));
  }
}
