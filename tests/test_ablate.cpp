// Shared stages (trained once, reused bit-identically by other runs) and `ethos ablate`.
#include <torch/torch.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <map>

#include "datasets/base/util.h"
#include "launch/ablate.h"
#include "tests/helpers.h"
#include "tests/train_helpers.h"
#include "trainer/config.h"
#include "trainer/trainer.h"

namespace fs = std::filesystem;
using namespace ethos;
using namespace ethos::test;
using Catch::Matchers::Contains;

namespace {

// Pre-train on documents (shared), then SFT on demonstrations.
std::string two_stage_recipe(const std::string& dir, bool share) {
  return write_recipe(
      dir, "  seq_len: 256\n  sources: [{path: " + tiny_data("tiny_documents.jsonl") + ", kind: document}]\n",
      "  {steps: 8, batch_size: 4, checkpoint_every: 8, keep_last: 0}\n",
      "cache_dir: " + dir + "/../cache\nstages:\n  - {name: pretrain, share: " + (share ? "true" : "false") +
          "}\n  - name: sft\n    data: {sources: [{path: " + tiny_data("tiny_demonstrations.jsonl") +
          ", kind: demonstration}]}\n    train: {steps: 6}\n");
}

}  // namespace

CATCH_TEST_CASE("a shared stage is trained once and reused bit-identically; other inputs train again") {
  const std::string root = fresh_dir("ablate_share");
  for (const char* d : {"/plain", "/first", "/second", "/seed1"}) fs::create_directories(root + d);
  // Reference: no sharing.
  CATCH_REQUIRE(run(ethos_bin() + " train " + two_stage_recipe(root + "/plain", false)).status == 0);
  // First shared run trains and publishes the stage; the second (another run dir, another name) reuses it.
  auto first = run(ethos_bin() + " train " + two_stage_recipe(root + "/first", true) + " 2>&1");
  CATCH_REQUIRE(first.status == 0);
  CATCH_CHECK_THAT(first.output, !Contains("reused the shared stage"));
  auto second = run(ethos_bin() + " train " + two_stage_recipe(root + "/second", true) + " name=other 2>&1");
  CATCH_REQUIRE(second.status == 0);
  CATCH_CHECK_THAT(second.output, Contains("reused the shared stage"));
  CATCH_CHECK(events(root + "/second/run/train.jsonl", "stage_reused").size() == 1);
  CATCH_CHECK(logged_losses(root + "/second/run").size() == 6);  // only the SFT steps were trained
  // The same weights after each stage, bit for bit.
  for (int64_t step : {8, 14}) {
    CATCH_CHECK(weights_of(root + "/plain/run", step) == weights_of(root + "/first/run", step));
    CATCH_CHECK(weights_of(root + "/plain/run", step) == weights_of(root + "/second/run", step));
  }
  // Another seed is another stage.
  auto seed1 = run(ethos_bin() + " train " + two_stage_recipe(root + "/seed1", true) + " seed=1 2>&1");
  CATCH_REQUIRE(seed1.status == 0);
  CATCH_CHECK_THAT(seed1.output, !Contains("reused the shared stage"));
  size_t stages = 0;
  for (const auto& e : fs::directory_iterator(root + "/cache/stages")) stages += e.path().filename().string()[0] != '.';
  CATCH_CHECK(stages == 2);
}

CATCH_TEST_CASE("ethos ablate: recipes x seeds into <out>/<recipe>/seed<k>, resumable, then the report") {
  const std::string root = fresh_dir("ablate_matrix");
  fs::create_directories(root + "/a");
  const std::string recipe = two_stage_recipe(root + "/a", true);
  fs::copy_file(recipe, root + "/r1.yaml");
  fs::copy_file(recipe, root + "/r2.yaml");
  write_text(root + "/matrix.yaml",
             "name: m\nout: " + root + "/runs\nrecipes: [r1.yaml, r2.yaml]\nseeds: [0, 1]\n"
             "overrides: [\"stages.1.train.steps=3\", \"eval.heldout=[{path: " + tiny_data("tiny_heldout.jsonl") +
                 ", kind: demonstration}]\", \"eval.suites=[" + source_dir() + "/tests/fixtures/eval/mini/suite.yaml]\"]\n");
  auto dry = run(ethos_bin() + " ablate " + root + "/matrix.yaml --dry-run 2>&1");
  CATCH_REQUIRE(dry.status == 0);
  CATCH_CHECK_THAT(dry.output, Contains("2 recipes x 2 seeds = 4 runs"));
  CATCH_CHECK_FALSE(fs::exists(root + "/runs"));

  auto full = run(ethos_bin() + " ablate " + root + "/matrix.yaml 2>&1");
  CATCH_REQUIRE(full.status == 0);
  for (const char* r : {"r1", "r2"})
    for (const char* s : {"seed0", "seed1"})
      CATCH_CHECK(latest(root + "/runs/" + r + "/" + s) == "step_000011");
  // Pre-training ran once per seed: r2 reused r1's.
  CATCH_CHECK(events(root + "/runs/r2/seed0/train.jsonl", "stage_reused").size() == 1);
  CATCH_CHECK(events(root + "/runs/r1/seed0/train.jsonl", "stage_reused").empty());
  // ... and its eval at the end of pre-training came from the eval cache, with r1's values.
  auto at_step = [&](const std::string& run, int64_t step) {
    std::map<std::string, double> v;
    for (const auto& e : events(run + "/eval.jsonl", "eval"))
      if (e["step"] == step && e.contains("group"))
        v[e["split"].get<std::string>() + e["group"].get<std::string>() + e["group_value"].get<std::string>() +
          e["metric"].get<std::string>() + e["scorer"].get<std::string>() + e["mode"].get<std::string>() +
          e.value("normalize", "")] = e["value"].get<double>();
    return v;
  };
  CATCH_CHECK(!at_step(root + "/runs/r1/seed0", 8).empty());
  CATCH_CHECK(at_step(root + "/runs/r1/seed0", 8) == at_step(root + "/runs/r2/seed0", 8));
  const auto times = events(root + "/runs/r2/seed0/eval.jsonl", "eval_time");
  CATCH_REQUIRE(times.size() == 2);
  CATCH_CHECK(times[0].value("cached", false));
  CATCH_CHECK(times[1].value("cached", false));  // r2 is a copy of r1: its final weights are r1's too
  for (const auto& t : events(root + "/runs/r1/seed0/eval.jsonl", "eval_time")) CATCH_CHECK_FALSE(t.value("cached", false));
  CATCH_CHECK(times[0]["recipe"] == "t");
  CATCH_CHECK(fs::exists(root + "/runs/report/summary.json"));
  CATCH_CHECK(fs::exists(root + "/runs/report/heldout_loss.svg"));
  CATCH_CHECK(fs::exists(root + "/runs/report/misaligned_vs_step.svg"));
  // The report from a relative runs directory (as `ethos ablate runs/...` passes it).
  auto rel = run("cd " + root + " && " + ethos_bin() + " report runs --out rel_report 2>&1");
  CATCH_CHECK(rel.status == 0);
  CATCH_CHECK(fs::exists(root + "/rel_report/misaligned_vs_step.png"));
  CATCH_CHECK(fs::exists(root + "/rel_report/id_vs_ood.svg"));
  // Started again, every run is complete: nothing trains.
  auto again = run(ethos_bin() + " ablate " + root + "/matrix.yaml --no-report 2>&1");
  CATCH_REQUIRE(again.status == 0);
  CATCH_CHECK_THAT(again.output, !Contains("] step "));
}

CATCH_TEST_CASE("ethos ablate: a bad matrix is one clear error listing every problem") {
  const std::string root = fresh_dir("ablate_bad");
  write_text(root + "/m.yaml", "name: m\nrecipe: [x.yaml]\nseeds: []\n");
  auto r = run(ethos_bin() + " ablate " + root + "/m.yaml 2>&1");
  CATCH_CHECK(r.status == 1);
  CATCH_CHECK_THAT(r.output, Contains("m.yaml:2: recipe: unknown key (did you mean recipes?)"));
  CATCH_CHECK_THAT(r.output, Contains("recipes: list at least one recipe"));
  CATCH_CHECK_THAT(r.output, Contains("seeds: list at least one seed"));
  write_text(root + "/m2.yaml", "recipes: [missing.yaml]\nseeds: [0]\n");
  auto missing = run(ethos_bin() + " ablate " + root + "/m2.yaml 2>&1");
  CATCH_CHECK(missing.status == 1);
  CATCH_CHECK_THAT(missing.output, Contains("missing.yaml"));
}
