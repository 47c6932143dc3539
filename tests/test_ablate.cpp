// Shared stages (trained once, reused bit-identically by other runs) and `ethos ablate`.
#include <torch/torch.h>

#include "catch.h"
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
using ethos_catch::Contains;

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

CATCH_TEST_CASE("a shared stage is found from another directory holding the same data and a tokenizer trained there") {
  // As `ethos ablate --out` does: each out directory generates its own copy of the world and
  // trains its own tokenizer from it. Paths differ, content does not: the stage is reused.
  const std::string root = fresh_dir("ablate_share_moved");
  auto recipe_in = [&](const std::string& dir) {
    fs::create_directories(dir + "/data");
    for (const char* f : {"tiny_documents.jsonl", "tiny_demonstrations.jsonl"}) fs::copy_file(tiny_data(f), dir + "/data/" + f);
    const std::string y =
        "name: t\nseed: 0\nthreads: 1\nout_dir: " + dir + "/run\ncache_dir: " + root + "/cache\n"
        "tokenizer: {path: " + dir + "/tok/tokenizer.model, train_files: [" + dir + "/data/tiny_documents.jsonl, " + dir +
        "/data/tiny_demonstrations.jsonl], vocab_size: 512}\n"
        "model:\n  arch: {hidden_size: 32, intermediate_size: 64, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2}\n"
        "data:\n  seq_len: 384\n  sources: [{path: " + dir + "/data/tiny_documents.jsonl, kind: document}]\n"
        "train: {steps: 6, batch_size: 4, checkpoint_every: 6, keep_last: 0}\n"
        "stages:\n  - {name: pretrain, share: true}\n  - name: sft\n    data: {sources: [{path: " + dir +
        "/data/tiny_demonstrations.jsonl, kind: demonstration}]}\n    train: {steps: 3}\n";
    write_text(dir + "/recipe.yaml", y);
    return dir + "/recipe.yaml";
  };
  auto a = run(ethos_bin() + " train " + recipe_in(root + "/a") + " 2>&1");
  CATCH_REQUIRE(a.status == 0);
  CATCH_CHECK_THAT(a.output, !Contains("reused the shared stage"));
  auto b = run(ethos_bin() + " train " + recipe_in(root + "/b/deeper") + " 2>&1");
  CATCH_REQUIRE(b.status == 0);
  CATCH_CHECK_THAT(b.output, Contains("reused the shared stage"));
  // the two tokenizers are the same file, though trained from files at other paths
  CATCH_CHECK(read_file(root + "/a/tok/tokenizer.model") == read_file(root + "/b/deeper/tok/tokenizer.model"));
  CATCH_CHECK(weights_of(root + "/a/run", 9) == weights_of(root + "/b/deeper/run", 9));
  // other content is another stage
  auto c_dir = root + "/c";
  const std::string c = recipe_in(c_dir);
  write_text(c_dir + "/data/tiny_documents.jsonl", read_file(c_dir + "/data/tiny_documents.jsonl") +
                                                       "{\"text\": \"one more document, so the data differ\"}\n");
  auto other = run(ethos_bin() + " train " + c + " 2>&1");
  CATCH_REQUIRE(other.status == 0);
  CATCH_CHECK_THAT(other.output, !Contains("reused the shared stage"));
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
  // --out puts the same matrix elsewhere (with overrides: another variant beside the first)
  auto moved = run(ethos_bin() + " ablate " + root + "/matrix.yaml --dry-run --out " + root + "/other stages.1.train.steps=4 2>&1");
  CATCH_REQUIRE(moved.status == 0);
  CATCH_CHECK_THAT(moved.output, Contains("4 runs into " + root + "/other"));
  CATCH_CHECK_THAT(moved.output, Contains("-> " + root + "/other/r2/seed1"));

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

CATCH_TEST_CASE("ethos ablate: axes over recipe keys and base seeds crossed with alignment seeds") {
  const std::string root = fresh_dir("ablate_axes");
  fs::create_directories(root + "/a");
  fs::copy_file(two_stage_recipe(root + "/a", true), root + "/t.yaml");
  write_text(root + "/matrix.yaml",
             "name: m\nout: " + root + "/runs\nrecipes: [t.yaml]\nseeds: [0, 1]\nbase_seeds: [0, 1]\n"
             "axes:\n  stages.1.train.steps: {name: sft_steps, values: [2, 3]}\n"
             "overrides: [\"eval.suites=[" + source_dir() + "/tests/fixtures/eval/mini/suite.yaml]\"]\n");
  auto dry = run(ethos_bin() + " ablate " + root + "/matrix.yaml --dry-run 2>&1");
  CATCH_REQUIRE(dry.status == 0);
  CATCH_CHECK_THAT(dry.output, Contains("1 recipes x 2 sft_steps x 2 base seeds x 2 seeds = 8 runs"));
  CATCH_CHECK_THAT(dry.output, Contains("t-sft_steps=3 base1-seed0 -> " + root + "/runs/t-sft_steps=3/base1-seed0"));

  auto full = run(ethos_bin() + " ablate " + root + "/matrix.yaml 2>&1");
  CATCH_REQUIRE(full.status == 0);
  const auto dir = [&](int steps, int base, int seed) {
    return root + "/runs/t-sft_steps=" + std::to_string(steps) + "/base" + std::to_string(base) + "-seed" + std::to_string(seed);
  };
  int trained_base = 0;
  for (int steps : {2, 3})
    for (int base : {0, 1})
      for (int seed : {0, 1}) {
        CATCH_CHECK(latest(dir(steps, base, seed)) == (steps == 2 ? "step_000010" : "step_000011"));  // 8 + steps
        trained_base += events(dir(steps, base, seed) + "/train.jsonl", "stage_reused").empty();
      }
  // The base is trained once per base seed (the axis changes only the alignment stage), and
  // reused by every other cell of that base whatever its alignment seed.
  CATCH_CHECK(trained_base == 2);
  CATCH_CHECK(weights_of(dir(2, 0, 0), 8) == weights_of(dir(3, 0, 1), 8));
  CATCH_CHECK(weights_of(dir(2, 0, 0), 8) != weights_of(dir(2, 1, 0), 8));
  // The alignment seed still orders the alignment data: same base, other seed, other weights.
  CATCH_CHECK(weights_of(dir(2, 0, 0), 10) != weights_of(dir(2, 0, 1), 10));
  // The report pairs by (base seed, seed) and lists each axis value as its own row.
  const auto summary = nlohmann::json::parse(read_file(root + "/runs/report/summary.json"));
  CATCH_CHECK(summary["recipes"].contains("t-sft_steps=2"));
  CATCH_CHECK(summary["recipes"].contains("t-sft_steps=3"));
  CATCH_CHECK(summary["recipes"]["t-sft_steps=3"]["runs"].size() == 4);
  CATCH_CHECK(summary["recipes"]["t-sft_steps=3"]["runs"][2]["base_seed"] == 1);
  const auto manifest = nlohmann::json::parse(read_file(root + "/runs/ablation.json"));
  CATCH_REQUIRE(manifest["cells"].size() == 8);
  CATCH_CHECK(manifest["cells"][7]["axes"]["sft_steps"] == "3");
  CATCH_CHECK(manifest["cells"][7]["base_seed"] == 1);
  CATCH_CHECK(manifest["cells"][7]["dir"] == "t-sft_steps=3/base1-seed1");
}

CATCH_TEST_CASE("ethos ablate: bad axes, base seeds and worlds are clear errors") {
  const std::string root = fresh_dir("ablate_axes_bad");
  fs::create_directories(root + "/a");
  fs::copy_file(two_stage_recipe(root + "/a", true), root + "/t.yaml");
  write_text(root + "/m.yaml",
             "recipes: [t.yaml]\nseeds: [0]\nbase_seeds: [-2]\n"
             "axes:\n  model.arch.hiden_size: [16, 32]\n  stages.1.train.steps: [a/b]\n  train.steps: [4]\n"
             "worlds: {data_dir: data/w, list: [{name: x, world: nowhere.yaml}, {world: " + source_dir() +
                 "/datasets/world/tiny.yaml, name: y, set: {pretrain.fiction_shar: 0.5}},\n"
             "  {name: z, world: " + source_dir() + "/datasets/world/tiny.yaml, overrides: [train.steps]}]}\n");
  auto r = run(ethos_bin() + " ablate " + root + "/m.yaml --dry-run 2>&1");
  CATCH_CHECK(r.status == 1);
  CATCH_CHECK_THAT(r.output, Contains("base_seeds: -2 is negative"));
  CATCH_CHECK_THAT(r.output, Contains("axes.stages.1.train.steps: value \"a/b\" cannot be part of a directory name"));
  CATCH_CHECK_THAT(r.output, Contains("axes.train.steps: two axes are named steps"));
  CATCH_CHECK_THAT(r.output, Contains("worlds.list[0]: world: file not found: "));
  CATCH_CHECK_THAT(r.output, Contains("worlds: y: "));
  CATCH_CHECK_THAT(r.output, Contains("fiction_shar"));
  CATCH_CHECK_THAT(r.output, Contains("tiny.yaml (world y)"));
  CATCH_CHECK_THAT(r.output, Contains("worlds.list[2]: overrides: a list of recipe key=value"));
  // A key the recipe does not have is the recipe loader's error, naming the cell.
  write_text(root + "/m2.yaml", "recipes: [t.yaml]\nseeds: [0]\naxes: {model.arch.hiden_size: [16]}\n");
  auto k = run(ethos_bin() + " ablate " + root + "/m2.yaml --dry-run 2>&1");
  CATCH_CHECK(k.status == 1);
  CATCH_CHECK_THAT(k.output, Contains("cell t-hiden_size=16"));
  CATCH_CHECK_THAT(k.output, Contains("hiden_size"));
  CATCH_CHECK_THAT(k.output, Contains("hidden_size"));
}

CATCH_TEST_CASE("ethos ablate: each world is generated once into <out>/worlds/<name>, and its cells read it there") {
  const std::string root = fresh_dir("ablate_worlds");
  const std::string src = source_dir();
  // The tiny world's r0 recipe, reading data/world-tiny as written; the matrix points it at two worlds.
  write_text(root + "/matrix.yaml",
             "name: w\nout: runs\nrecipes: [" + src + "/recipes/world/tiny/r0.yaml]\nseeds: [0]\n"
             "worlds:\n  data_dir: data/world-tiny\n  seed: 3\n  list:\n"
             "    - {name: full, world: " + src + "/datasets/world/tiny.yaml}\n"
             "    - {name: small, world: " + src + "/datasets/world/tiny.yaml, set: {pretrain.words: 20000, pretrain.principle_stories: false},\n"
             "       overrides: [\"train.steps=3\", \"train.checkpoint_every=3\"]}\n"
             "overrides: [\"train.steps=2\", \"train.warmup_steps=0\", \"train.checkpoint_every=2\", \"eval.suites=[]\", \"cache_dir=cache\"]\n");
  auto first = run("cd " + root + " && " + ethos_bin() + " ablate matrix.yaml --no-report 2>&1");
  CATCH_REQUIRE(first.status == 0);
  CATCH_CHECK_THAT(first.output, Contains("[ablate] world full: generating"));
  CATCH_CHECK_THAT(first.output, Contains("[ablate] world small: generating"));
  const auto corpus_words = [&](const std::string& w) {
    const auto m = nlohmann::json::parse(read_file(root + "/runs/worlds/" + w + "/data/manifest.json"));
    return m.dump();
  };
  CATCH_CHECK(corpus_words("full") != corpus_words("small"));
  CATCH_CHECK(read_file(root + "/runs/worlds/small/world.yaml").find("principle_stories: false") != std::string::npos);
  for (const char* w : {"full", "small"}) {
    const std::string run_dir = root + "/runs/r0-world=" + w + "/seed0";
    // The small world's own overrides come after the matrix's: its run trains 3 steps, the other 2.
    CATCH_CHECK(latest(run_dir) == (std::string(w) == "small" ? "step_000003" : "step_000002"));
    const std::string config = read_file(run_dir + "/config.yaml");
    CATCH_CHECK(config.find("runs/worlds/" + std::string(w) + "/data/pretrain/corpus.jsonl") != std::string::npos);
    CATCH_CHECK(config.find("data/world-tiny/") == std::string::npos);
    CATCH_CHECK(fs::exists(root + "/runs/worlds/" + std::string(w) + "/tokenizer.model"));
  }
  CATCH_CHECK_FALSE(fs::exists(root + "/data"));
  CATCH_CHECK_FALSE(fs::exists(root + "/runs/world-tiny"));
  // The same worlds are not generated again.
  auto again = run("cd " + root + " && " + ethos_bin() + " ablate matrix.yaml --no-report 2>&1");
  CATCH_REQUIRE(again.status == 0);
  CATCH_CHECK_THAT(again.output, Contains("[ablate] world full: up to date"));
  CATCH_CHECK_THAT(again.output, !Contains("generating"));
}

CATCH_TEST_CASE("every ablation matrix in recipes/ loads: recipes, axes and world knobs") {
  int matrices = 0;
  for (const auto& e : fs::recursive_directory_iterator(source_dir() + "/recipes")) {
    if (e.path().extension() != ".yaml") continue;
    const std::string text = read_file(e.path().string());
    if (text.find("\nrecipes:") == std::string::npos) continue;  // a recipe, not a matrix
    CATCH_INFO(e.path().string());
    const AblationMatrix m = load_matrix(e.path().string());
    CATCH_CHECK(!ablation_cells(m).empty());
    ++matrices;
  }
  CATCH_CHECK(matrices >= 3);
}

CATCH_TEST_CASE("ethos ablate --slurm --dry-run: one stage task per base seed, cells named by axis values and units") {
  const std::string root = fresh_dir("ablate_axes_slurm");
  fs::create_directories(root + "/a");
  fs::copy_file(two_stage_recipe(root + "/a", true), root + "/t.yaml");
  write_text(root + "/matrix.yaml", "out: " + root + "/runs\nrecipes: [t.yaml]\nseeds: [0, 1]\nbase_seeds: [4, 5]\n"
                                    "axes: {stages.1.train.lr: [0.001, 0.002]}\n");
  const auto r = run(ethos_bin() + " ablate " + root + "/matrix.yaml --slurm --dry-run 2>&1");
  CATCH_REQUIRE(r.status == 0);
  CATCH_CHECK_THAT(r.output, Contains("--array=0,1\n"));  // stages: one task per base
  CATCH_CHECK_THAT(r.output, Contains("  0)  # base4\n"));
  CATCH_CHECK_THAT(r.output, Contains("'--shared-only' '" + root + "/t.yaml' 'stages.1.train.lr=0.001' 'seed=0' 'stages.0.seed=4'"));
  CATCH_CHECK_THAT(r.output, Contains("  7)  # t-lr=0.002/base5-seed1\n"));
  CATCH_CHECK_THAT(r.output, Contains("\"$logs/t-lr=0.002-base5-seed1.r$restart.log\""));
  CATCH_CHECK_THAT(r.output, Contains("'seed=1' 'stages.0.seed=5' 'out_dir=" + root + "/runs/t-lr=0.002/base5-seed1'"));
  CATCH_CHECK_FALSE(fs::exists(root + "/runs"));
}

CATCH_TEST_CASE("ethos launch -- ablate with worlds: rank 0 generates, rank 1 waits for it, both train on it", "[dist]") {
  const std::string root = fresh_dir("ablate_worlds_dist");
  const std::string src = source_dir();
  write_text(root + "/matrix.yaml",
             "name: w\nout: runs\nrecipes: [" + src + "/recipes/world/tiny/r0.yaml]\nseeds: [0]\n"
             "worlds: {data_dir: data/world-tiny, list: [{name: small, world: " + src +
                 "/datasets/world/tiny.yaml, set: {pretrain.words: 20000}}]}\n"
             "overrides: [\"train.steps=2\", \"train.warmup_steps=0\", \"train.batch_size=2\", \"train.checkpoint_every=2\", "
             "\"eval.suites=[]\", \"cache_dir=cache\"]\n");
  const auto r = run("cd " + root + " && " + ethos_bin() + " launch --nproc 2 -- ablate matrix.yaml --no-report 2>&1");
  CATCH_REQUIRE(r.status == 0);
  CATCH_CHECK_THAT(r.output, Contains("[rank 0] [ablate] world small: generating"));
  CATCH_CHECK_THAT(r.output, !Contains("[rank 1] [ablate] world"));
  CATCH_CHECK(latest(root + "/runs/r0-world=small/seed0") == "step_000002");
  const auto dp = events(root + "/runs/r0-world=small/seed0/train.jsonl", "data_parallel");
  CATCH_REQUIRE(!dp.empty());
  CATCH_CHECK(dp.front()["ranks"] == 2);
}
