// End-to-end training tests through the real `ethos` binary and the trainer API:
// overfitting, exact resume after SIGKILL, atomic checkpoints, stages, rationale weight 0.
#include <torch/torch.h>

#include <signal.h>

#include <algorithm>
#include "catch.h"
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "datasets/base/util.h"
#include "tests/helpers.h"
#include "tests/train_helpers.h"
#include "trainer/checkpoint/checkpoint.h"
#include "trainer/config.h"
#include "trainer/model/safetensors.h"
#include "trainer/trainer.h"

namespace fs = std::filesystem;
using namespace ethos;
using namespace ethos::test;

namespace {

const std::string kTrain40 = "  {steps: 40, batch_size: 4, lr: 3.0e-3, warmup_steps: 2, checkpoint_every: 20, keep_last: 0}\n";

// eval.jsonl's (step, value) pairs.
std::vector<std::pair<int64_t, double>> eval_values(const std::string& run_dir) {
  std::vector<std::pair<int64_t, double>> out;
  std::istringstream in(read_file(run_dir + "/eval.jsonl"));
  std::string line;
  while (std::getline(in, line)) {
    auto j = nlohmann::json::parse(line);
    out.emplace_back(j["step"].get<int64_t>(), j["value"].get<double>());
  }
  return out;
}

}  // namespace

CATCH_TEST_CASE("overfit: a tiny model drives the loss below 0.05 on 8 short sequences within 300 steps") {
  const std::string dir = fresh_dir("train_overfit");
  std::string lines;
  for (int i = 0; i < 8; ++i)
    lines += "{\"prompt\": \"case " + std::to_string(i) + ": what do you do?\", \"response\": \"I report it to the lead, item " +
             std::to_string(i) + ".\"}\n";
  write_text(dir + "/eight.jsonl", lines);
  const std::string recipe = write_recipe(
      dir, "  seq_len: 32\n  sources: [{path: " + dir + "/eight.jsonl, kind: demonstration}]\n",
      "  {steps: 300, batch_size: 8, lr: 1.0e-2, warmup_steps: 10, checkpoint_every: 300, keep_last: 1}\n");
  Recipe r = load_recipe(recipe, {"model.arch.hidden_size=64", "model.arch.intermediate_size=128"});
  TrainResult res = train(r);
  const auto losses = logged_losses(res.run_dir);
  CATCH_REQUIRE(losses.size() == 300);
  CATCH_CHECK(losses.front().second > 3.0);    // starts near ln(vocab)
  CATCH_CHECK(losses.back().second < 0.05);    // and memorises the 8 sequences
}

CATCH_TEST_CASE("exact resume with eval on: 40 steps straight == 20 steps, SIGKILL, resume, 20 more (bitwise)") {
  const std::string a = fresh_dir("train_resume_straight"), b = fresh_dir("train_resume_killed");
  const std::string eval = "eval: {heldout: [{path: " + tiny_data("tiny_heldout.jsonl") + ", kind: demonstration}]}\n";
  const std::string ra = write_recipe(a, demo_data_yaml(), kTrain40, eval), rb = write_recipe(b, demo_data_yaml(), kTrain40, eval);
  CATCH_REQUIRE(run(ethos_bin() + " train " + ra).status == 0);

  // Slow each step down so the kill lands after checkpoint 20 and before step 40.
  int pid = spawn({ethos_bin(), "train", rb}, {"ETHOS_DEBUG_STEP_SLEEP_MS=40"}, b + "/first.log");
  CATCH_REQUIRE(pid > 0);
  CATCH_REQUIRE(wait_until([&] { return latest(b + "/run") == "step_000020"; }, 120));
  // A few steps past the checkpoint get logged, then die mid-run.
  auto train_events = [&] {
    const std::string log = read_file(b + "/run/train.jsonl");
    size_t n = 0;
    for (size_t at = log.find("\"event\":\"train\""); at != std::string::npos; at = log.find("\"event\":\"train\"", at + 1)) ++n;
    return n;
  };
  CATCH_REQUIRE(wait_until([&] { return train_events() >= 23; }, 120));
  ::kill(pid, SIGKILL);
  CATCH_REQUIRE(wait_exit(pid) == 128 + SIGKILL);
  CATCH_REQUIRE_FALSE(fs::exists(b + "/run/checkpoints/step_000040"));
  CATCH_REQUIRE(logged_losses(b + "/run").size() > 20);  // steps after the checkpoint were logged, then lost

  auto resumed = run(ethos_bin() + " train " + rb);
  CATCH_REQUIRE(resumed.status == 0);
  CATCH_CHECK_THAT(resumed.output, ethos_catch::Contains("resuming from"));
  CATCH_CHECK(weights_of(a + "/run", 40) == weights_of(b + "/run", 40));
  CATCH_CHECK(weights_of(a + "/run", 20) == weights_of(b + "/run", 20));
  CATCH_CHECK(optimizer_of(a + "/run", 40) == optimizer_of(b + "/run", 40));
  CATCH_CHECK(logged_losses(a + "/run") == logged_losses(b + "/run"));  // 40 entries, identical values
  CATCH_CHECK(eval_values(a + "/run").size() == 2);                     // held-out loss at steps 20 and 40
  CATCH_CHECK(eval_values(a + "/run") == eval_values(b + "/run"));

  // Running the finished recipe again is a no-op that changes nothing.
  CATCH_REQUIRE(run(ethos_bin() + " train " + rb).status == 0);
  CATCH_CHECK(logged_losses(b + "/run").size() == 40);
}

CATCH_TEST_CASE("atomic checkpoint: SIGKILL during a save leaves the previous one loadable and resume works") {
  const std::string a = fresh_dir("train_atomic_straight"), b = fresh_dir("train_atomic_killed");
  const std::string ra = write_recipe(a, demo_data_yaml(), kTrain40), rb = write_recipe(b, demo_data_yaml(), kTrain40);
  CATCH_REQUIRE(run(ethos_bin() + " train " + ra).status == 0);

  int pid = spawn({ethos_bin(), "train", rb}, {"ETHOS_DEBUG_SAVE_SLEEP_MS=3000"}, b + "/first.log");
  // Kill while step 40's checkpoint sits complete-but-unpublished in its temporary directory.
  CATCH_REQUIRE(wait_until([&] { return fs::exists(b + "/run/checkpoints/.tmp-step_000040/trainer_state.json"); }, 180));
  ::kill(pid, SIGKILL);
  CATCH_REQUIRE(wait_exit(pid) == 128 + SIGKILL);
  CATCH_CHECK(latest(b + "/run") == "step_000020");
  CATCH_CHECK(checkpoint_problems(b + "/run/checkpoints/step_000020").empty());
  CATCH_CHECK_FALSE(fs::exists(b + "/run/checkpoints/step_000040"));

  CATCH_REQUIRE(run(ethos_bin() + " train " + rb).status == 0);
  CATCH_CHECK(weights_of(a + "/run", 40) == weights_of(b + "/run", 40));
  CATCH_CHECK_FALSE(fs::exists(b + "/run/checkpoints/.tmp-step_000040"));
}

CATCH_TEST_CASE("resume: a truncated newest checkpoint is skipped; an explicit one is refused") {
  const std::string a = fresh_dir("train_truncated");
  const std::string ra = write_recipe(a, demo_data_yaml(), kTrain40);
  CATCH_REQUIRE(run(ethos_bin() + " train " + ra + " train.steps=20 train.checkpoint_every=10").status == 0);
  const std::string ck = a + "/run/checkpoints/step_000020/model.safetensors";
  fs::resize_file(ck, fs::file_size(ck) / 2);
  CATCH_CHECK_FALSE(checkpoint_problems(a + "/run/checkpoints/step_000020").empty());
  CATCH_CHECK(find_latest_checkpoint(a + "/run").value() == a + "/run/checkpoints/step_000010");

  auto explicit_resume = run(ethos_bin() + " train " + ra + " train.steps=20 train.checkpoint_every=10 resume=" + a +
                             "/run/checkpoints/step_000020");
  CATCH_CHECK(explicit_resume.status == 1);
  CATCH_CHECK_THAT(explicit_resume.output, ethos_catch::Contains("truncated"));
  CATCH_CHECK_THAT(explicit_resume.output, ethos_catch::Contains("model.safetensors"));
}

CATCH_TEST_CASE("resume refuses a changed config or data, naming which, unless allow_changed") {
  const std::string a = fresh_dir("train_hash");
  const std::string ra = write_recipe(a, demo_data_yaml(), kTrain40);
  CATCH_REQUIRE(run(ethos_bin() + " train " + ra + " train.steps=20 train.checkpoint_every=10").status == 0);
  auto changed = run(ethos_bin() + " train " + ra + " train.steps=30 train.checkpoint_every=10 train.lr=1.0e-3");
  CATCH_CHECK(changed.status == 1);
  CATCH_CHECK_THAT(changed.output, ethos_catch::Contains("config"));
  CATCH_CHECK_THAT(changed.output, ethos_catch::Contains("allow_changed=true"));
  auto fresh = run(ethos_bin() + " train " + ra + " train.steps=20 train.checkpoint_every=10 resume=never");
  CATCH_CHECK(fresh.status == 1);  // a fresh run never writes into an old run's checkpoints
  CATCH_CHECK_THAT(fresh.output, ethos_catch::Contains("already holds checkpoints"));
  auto allowed = run(ethos_bin() + " train " + ra +
                     " train.steps=30 train.checkpoint_every=10 train.lr=1.0e-3 allow_changed=true");
  CATCH_CHECK(allowed.status == 0);
  CATCH_CHECK(fs::exists(a + "/run/checkpoints/step_000030"));
}

CATCH_TEST_CASE("rationale weight 0 trains exactly like the demonstrations of the same items") {
  const std::string a = fresh_dir("train_rationale0_demo"), b = fresh_dir("train_rationale0_explained");
  const std::string train6 = "  {steps: 6, batch_size: 4, lr: 3.0e-3, checkpoint_every: 6}\n";
  const std::string ra = write_recipe(a, demo_data_yaml(), train6);
  const std::string rb = write_recipe(
      b, "  seq_len: 256\n  rationale_weight: 0.0\n  sources: [{path: " + tiny_data("tiny_explained.jsonl") + ", kind: explained}]\n",
      train6);
  TrainResult ta = train(load_recipe(ra)), tb = train(load_recipe(rb));
  CATCH_CHECK(ta.final_loss == tb.final_loss);
  CATCH_CHECK(weights_of(ta.run_dir, 6) == weights_of(tb.run_dir, 6));
  // ...and a positive rationale weight does not (the rationale is in the sequence).
  TrainResult tc = train(load_recipe(rb, {"data.rationale_weight=0.5", "out_dir=" + b + "/run_half"}));
  CATCH_CHECK(weights_of(tc.run_dir, 6) != weights_of(ta.run_dir, 6));
}

CATCH_TEST_CASE("stages: pre-train on documents, then SFT from the first stage's final weights") {
  const std::string a = fresh_dir("train_stages");
  std::string recipe = write_recipe(a, demo_data_yaml(), "  {steps: 8, batch_size: 4, lr: 3.0e-3, checkpoint_every: 4}\n");
  std::string text = read_file(recipe);
  text += "stages:\n"
          "  - {name: pretrain, data: {sources: [{path: " + tiny_data("tiny_documents.jsonl") + ", kind: document}]}, train: {steps: 6}}\n"
          "  - {name: sft, train: {lr: 1.0e-3}}\n";
  write_text(recipe, text);
  TrainResult res = train(load_recipe(recipe));
  CATCH_CHECK(res.global_step == 14);
  CATCH_CHECK(res.final_checkpoint == a + "/run/checkpoints/step_000014");
  std::vector<std::string> stages;
  std::istringstream in(read_file(a + "/run/train.jsonl"));
  std::string line;
  while (std::getline(in, line)) {
    auto j = nlohmann::json::parse(line);
    if (j["event"] == "train") stages.push_back(j["stage"]);
  }
  CATCH_REQUIRE(stages.size() == 14);
  CATCH_CHECK(stages[5] == "pretrain");
  CATCH_CHECK(stages[6] == "sft");
  // stage 1's final checkpoint exists (step 6) and stage 2 started from it: its state says so
  TrainerState s6 = read_trainer_state(a + "/run/checkpoints/step_000006");
  CATCH_CHECK(s6.stage_name == "pretrain");
  CATCH_CHECK(s6.stage_step == 6);
  TrainerState s14 = read_trainer_state(res.final_checkpoint);
  CATCH_CHECK(s14.stage_name == "sft");
  CATCH_CHECK(s14.stage_step == 8);
}

CATCH_TEST_CASE("gradient accumulation: 2 micro-batches of 4 rows == 1 batch of 8 rows (loss normalised over both)") {
  const std::string a = fresh_dir("train_accum_1x8"), b = fresh_dir("train_accum_2x4");
  const std::string ra = write_recipe(a, demo_data_yaml(), "  {steps: 5, batch_size: 8, grad_accum: 1, checkpoint_every: 5}\n");
  const std::string rb = write_recipe(b, demo_data_yaml(), "  {steps: 5, batch_size: 4, grad_accum: 2, checkpoint_every: 5}\n");
  TrainResult ta = train(load_recipe(ra)), tb = train(load_recipe(rb));
  const auto la = logged_losses(ta.run_dir), lb = logged_losses(tb.run_dir);
  CATCH_REQUIRE(la.size() == 5);
  CATCH_REQUIRE(lb.size() == 5);
  for (size_t i = 0; i < la.size(); ++i) CATCH_CHECK(std::abs(la[i].second - lb[i].second) < 1e-5);
  // Same rows, same normaliser: weights agree up to float summation order.
  auto wa = SafetensorsFile::read(ta.final_checkpoint + "/model.safetensors");
  auto wb = SafetensorsFile::read(tb.final_checkpoint + "/model.safetensors");
  double max_diff = 0;
  for (const auto& e : wa.entries())
    max_diff = std::max(max_diff, (wa.get(e.name) - wb.get(e.name)).abs().max().item<double>());
  CATCH_CHECK(max_diff < 1e-5);
}

CATCH_TEST_CASE("keep_last prunes old checkpoints; latest names the newest") {
  const std::string a = fresh_dir("train_keep_last");
  const std::string ra = write_recipe(a, demo_data_yaml(), "  {steps: 8, batch_size: 2, checkpoint_every: 2, keep_last: 2}\n");
  train(load_recipe(ra));
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(a + "/run/checkpoints")) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  CATCH_CHECK(names == std::vector<std::string>{"latest", "step_000006", "step_000008"});
  CATCH_CHECK(latest(a + "/run") == "step_000008");
}

CATCH_TEST_CASE("a non-finite loss stops the run with a clear error; the last good checkpoint stays intact") {
  const std::string a = fresh_dir("train_nan");
  // An absurd learning rate without clipping blows the weights up after the first update.
  const std::string ra = write_recipe(a, demo_data_yaml(), "  {steps: 6, batch_size: 2, lr: 1.0e+30, grad_clip: 0.0, checkpoint_every: 1}\n");
  auto r = run(ethos_bin() + " train " + ra);
  CATCH_CHECK(r.status == 1);
  CATCH_CHECK_THAT(r.output, ethos_catch::Contains("Stopped before updating the weights"));
  const std::string last = latest(a + "/run");
  CATCH_REQUIRE_FALSE(last.empty());
  CATCH_CHECK(checkpoint_problems(a + "/run/checkpoints/" + last).empty());
  CATCH_CHECK(read_trainer_state(a + "/run/checkpoints/" + last).global_step < 6);
}

CATCH_TEST_CASE("a checkpoint whose eval was cut short by a crash is evaluated again on resume") {
  const std::string a = fresh_dir("train_reeval");
  const std::string eval = "eval: {heldout: [{path: " + tiny_data("tiny_heldout.jsonl") + ", kind: demonstration}]}\n";
  const std::string ra = write_recipe(a, demo_data_yaml(), "  {steps: 4, batch_size: 2, checkpoint_every: 2}\n", eval);
  CATCH_REQUIRE(run(ethos_bin() + " train " + ra).status == 0);
  const auto full = eval_values(a + "/run");
  CATCH_REQUIRE(full.size() == 2);
  // Simulate death during step 4's eval: its eval_hook event is gone, a partial result remains.
  std::string train_log = read_file(a + "/run/train.jsonl");
  train_log = train_log.substr(0, train_log.rfind("{\"event\":\"eval_hook\""));
  write_text(a + "/run/train.jsonl", train_log);
  write_text(a + "/run/eval.jsonl", read_file(a + "/run/eval.jsonl") + "{\"step\": 4, \"value\": 99.0}\n");
  CATCH_REQUIRE(run(ethos_bin() + " train " + ra).status == 0);
  CATCH_CHECK(eval_values(a + "/run") == full);  // the partial line replaced by the real result
}

CATCH_TEST_CASE("a tokenizer trained from other train_files is trained again; an unchanged one is kept") {
  const std::string dir = fresh_dir("train_tokenizer_sources");
  write_text(dir + "/a.jsonl", read_file(tiny_data("tiny_documents.jsonl")));
  TokenizerSection t;
  t.path = dir + "/tok.model";
  t.train_files = {dir + "/a.jsonl"};
  t.vocab_size = 600;
  prepare_tokenizer(t, 1);
  const std::string first = read_file(t.path);
  CATCH_REQUIRE(file_exists(t.path + ".sources"));
  prepare_tokenizer(t, 1);                      // same files and options: kept as it is
  CATCH_CHECK(read_file(t.path) == first);
  write_text(dir + "/a.jsonl", read_file(tiny_data("tiny_demonstrations.jsonl")));  // other content
  prepare_tokenizer(t, 1);
  CATCH_CHECK(read_file(t.path) != first);
  const std::string second = read_file(t.path);
  t.vocab_size = 700;                           // other options
  prepare_tokenizer(t, 1);
  CATCH_CHECK(read_file(t.path) != second);
  fs::remove(t.path + ".sources");              // no record: a given tokenizer is used as it is
  const std::string third = read_file(t.path);
  write_text(dir + "/a.jsonl", read_file(tiny_data("tiny_explained.jsonl")));
  prepare_tokenizer(t, 1);
  CATCH_CHECK(read_file(t.path) == third);
}

namespace {
void flip_byte(const std::string& path, size_t from_end) {
  std::string bytes = read_file(path);
  bytes[bytes.size() - from_end] ^= 0x10;
  write_text(path, bytes);
}
}  // namespace

CATCH_TEST_CASE("checksums: a flipped bit in the newest checkpoint is found; resume: auto falls back; ethos checkpoint verify names it") {
  const std::string a = fresh_dir("checksum_straight"), b = fresh_dir("checksum_flipped");
  const std::string ra = write_recipe(a, demo_data_yaml(), kTrain40), rb = write_recipe(b, demo_data_yaml(), kTrain40);
  CATCH_REQUIRE(run(ethos_bin() + " train " + ra).status == 0);
  CATCH_REQUIRE(run(ethos_bin() + " train " + rb).status == 0);
  const auto ok = run(ethos_bin() + " checkpoint verify " + b + "/run 2>&1");
  CATCH_CHECK(ok.status == 0);
  CATCH_CHECK_THAT(ok.output, ethos_catch::Contains("2 of 2 checkpoint(s) verified"));

  const std::string newest = b + "/run/checkpoints/step_000040";
  flip_byte(newest + "/model.safetensors", 100);  // same size: only the checksum can tell
  const auto bad = run(ethos_bin() + " checkpoint verify " + b + "/run 2>&1");
  CATCH_CHECK(bad.status == 1);
  CATCH_CHECK_THAT(bad.output, ethos_catch::Contains("DAMAGED  " + newest));
  CATCH_CHECK_THAT(bad.output, ethos_catch::Contains("model.safetensors: checksum xxh3:"));
  CATCH_CHECK_THAT(bad.output, ethos_catch::Contains("resume: auto would start from " + b + "/run/checkpoints/step_000020"));
  const auto explicit_resume = run(ethos_bin() + " train " + rb + " resume=" + newest + " 2>&1");
  CATCH_CHECK(explicit_resume.status == 1);
  CATCH_CHECK_THAT(explicit_resume.output, ethos_catch::Contains("cannot resume from " + newest));
  CATCH_CHECK_THAT(explicit_resume.output, ethos_catch::Contains("a flipped bit"));

  const auto resumed = run(ethos_bin() + " train " + rb + " 2>&1");
  CATCH_REQUIRE(resumed.status == 0);
  CATCH_CHECK_THAT(resumed.output, ethos_catch::Contains("skipping invalid checkpoint " + newest));
  CATCH_CHECK_THAT(resumed.output, ethos_catch::Contains("resuming from " + b + "/run/checkpoints/step_000020"));
  CATCH_CHECK(weights_of(a + "/run", 40) == weights_of(b + "/run", 40));
  CATCH_CHECK(run(ethos_bin() + " checkpoint verify " + newest).status == 0);
}

CATCH_TEST_CASE("checksums: a damaged shared-stage cache entry is set aside and the stage trained again") {
  const std::string a = fresh_dir("stage_sum_first"), b = fresh_dir("stage_sum_second");
  auto recipe = [](const std::string& dir, const std::string& cache) {
    return write_recipe(dir, "  seq_len: 256\n  sources: [{path: " + tiny_data("tiny_documents.jsonl") + ", kind: document}]\n",
                        "  {steps: 6, batch_size: 4, checkpoint_every: 6, keep_last: 0}\n",
                        "cache_dir: " + cache + "\nstages:\n  - {name: pretrain, share: true}\n  - name: sft\n"
                        "    data: {sources: [{path: " + tiny_data("tiny_demonstrations.jsonl") +
                            ", kind: demonstration}]}\n    train: {steps: 3}\n");
  };
  const std::string cache = a + "/cache";
  CATCH_REQUIRE(run(ethos_bin() + " train " + recipe(a, cache)).status == 0);
  std::string entry;
  for (const auto& e : fs::directory_iterator(cache + "/stages"))
    if (e.path().filename().string()[0] != '.') entry = e.path().string();
  CATCH_REQUIRE(!entry.empty());
  flip_byte(entry + "/model.safetensors", 50);
  const auto second = run(ethos_bin() + " train " + recipe(b, cache) + " 2>&1");
  CATCH_REQUIRE(second.status == 0);
  CATCH_CHECK_THAT(second.output, ethos_catch::Contains("is damaged (" + entry + "/model.safetensors does not match its checksum)"));
  CATCH_CHECK_THAT(second.output, !ethos_catch::Contains("reused the shared stage"));
  CATCH_CHECK(weights_of(a + "/run", 9) == weights_of(b + "/run", 9));
  CATCH_CHECK(fs::exists(entry + "/stage.json"));  // published again, intact
}
