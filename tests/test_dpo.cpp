// Preference training end to end: the DPO family through the training loop, the reference
// log-prob cache, exact resume, and bad inputs through the real binary.
#include <torch/torch.h>

#include <signal.h>

#include "catch.h"
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "datasets/base/util.h"
#include "tests/helpers.h"
#include "tests/train_helpers.h"
#include "trainer/config.h"
#include "trainer/objective/pairs.h"
#include "trainer/objective/preference.h"
#include "trainer/objective/reference.h"
#include "trainer/model/safetensors.h"
#include "trainer/trainer.h"

namespace fs = std::filesystem;
using namespace ethos;
using namespace ethos::test;
using ethos_catch::Contains;

namespace {

// The first n lines of the bundled preference pairs, written to dir/pairs.jsonl.
std::string first_pairs(const std::string& dir, int n) {
  std::istringstream in(read_file(tiny_data("tiny_preferences.jsonl")));
  std::string line, out;
  for (int i = 0; i < n && std::getline(in, line); ++i) out += line + "\n";
  write_text(dir + "/pairs.jsonl", out);
  return dir + "/pairs.jsonl";
}

std::string pref_data(const std::string& file, double rationale_weight = 0) {
  std::ostringstream y;
  y << "  seq_len: 256\n  rationale_weight: " << rationale_weight << "\n  sources: [{path: " << file
    << ", kind: preference}]\n";
  return y.str();
}

std::vector<nlohmann::json> train_events(const std::string& run_dir) { return events(run_dir + "/train.jsonl", "train"); }

std::string cache_yaml(const std::string& dir) { return "cache_dir: " + dir + "/cache\n"; }

size_t files_in(const std::string& dir) {
  if (!fs::exists(dir)) return 0;
  size_t n = 0;
  for (const auto& e : fs::directory_iterator(dir)) n += e.is_regular_file();
  return n;
}

Llama tiny_model(uint64_t seed, int vocab) {
  ModelConfig cfg;
  cfg.vocab_size = vocab;
  cfg.hidden_size = 32;
  cfg.intermediate_size = 64;
  cfg.num_hidden_layers = 2;
  cfg.num_attention_heads = 4;
  cfg.num_key_value_heads = 2;
  torch::manual_seed(seed);
  Llama m(cfg);
  m->init_weights();
  return m;
}

}  // namespace

CATCH_TEST_CASE("step 0 with policy == reference: dpo, robust, conservative give ln 2, ipo gives 1/(2 beta)^2") {
  const std::string dir = fresh_dir("dpo_step0");
  const std::string pairs = first_pairs(dir, 8);
  const double ln2 = std::log(2.0);
  struct Case {
    std::string objective, extra, mode;
    double expected, tolerance;
  };
  // Live: the reference scores the very rows the policy does, so the log-prob difference is
  // exactly 0. Cached: the reference ran in other batches (other padding), so it may differ in
  // the last float bits.
  for (const Case& c : {Case{"dpo", "", "live", ln2, 1e-7}, Case{"dpo", "", "cached", ln2, 1e-5},
                        Case{"robust", ", label_smoothing: 0.2", "live", ln2, 1e-7},
                        Case{"conservative", ", label_smoothing: 0.2", "cached", ln2, 1e-5},
                        Case{"ipo", "", "live", 25.0, 1e-6}}) {
    CATCH_SECTION(c.objective + " " + c.mode) {
      const std::string recipe =
          write_recipe(dir, pref_data(pairs),
                       "  {objective: " + c.objective + ", beta: 0.1, reference_mode: " + c.mode + c.extra +
                           ", steps: 1, batch_size: 8, lr: 1.0e-3}\n",
                       cache_yaml(dir));
      TrainResult res = train(load_recipe(recipe, {"resume=never", "out_dir=" + dir + "/run_" + c.objective + c.mode}));
      const auto ev = train_events(res.run_dir);
      CATCH_REQUIRE(ev.size() == 1);
      CATCH_CHECK(std::abs(ev[0]["loss"].get<double>() - c.expected) < c.tolerance);
      CATCH_CHECK(std::abs(ev[0]["margin"].get<double>()) < 1e-5);
    }
  }
}

CATCH_TEST_CASE("each objective learns a tiny preference set: accuracy 1.0 over all 8 pairs") {
  const std::string dir = fresh_dir("dpo_learn");
  const std::string pairs = first_pairs(dir, 8);
  for (const std::string objective : {"dpo", "ipo", "robust", "conservative", "simpo", "rpo"}) {
    CATCH_SECTION(objective) {
      const std::string smoothing = (objective == "robust" || objective == "conservative") ? ", label_smoothing: 0.1" : "";
      const std::string recipe = write_recipe(
          dir, pref_data(pairs), "  {objective: " + objective + smoothing + ", steps: 30, batch_size: 8, lr: 3.0e-3}\n",
          cache_yaml(dir));
      TrainResult res = train(load_recipe(recipe, {"resume=never", "out_dir=" + dir + "/run_" + objective}));
      const auto ev = train_events(res.run_dir);
      CATCH_REQUIRE(ev.size() == 30);
      // Each step's metrics are measured on its batch, which is every pair.
      CATCH_CHECK(ev.back()["accuracy"].get<double>() == 1.0);
      // ipo and simpo rewards are per-token averages (ipo's target margin is 0.5 at beta 0.1): smaller.
      CATCH_CHECK(ev.back()["margin"].get<double>() > ev.front()["margin"].get<double>() + 0.25);
      CATCH_CHECK(ev.back()["loss"].get<double>() < ev.front()["loss"].get<double>());
    }
  }
}

CATCH_TEST_CASE("cached and live references train the same: losses within 1e-4 over 10 steps") {
  const std::string dir = fresh_dir("dpo_cached_vs_live");
  const std::string pairs = first_pairs(dir, 16);
  auto losses = [&](const std::string& mode) {
    const std::string recipe = write_recipe(
        dir, pref_data(pairs, 1.0), "  {objective: rpo, reference_mode: " + mode + ", steps: 10, batch_size: 4, lr: 1.0e-3}\n",
        cache_yaml(dir));
    return logged_losses(train(load_recipe(recipe, {"resume=never", "out_dir=" + dir + "/" + mode})).run_dir);
  };
  const auto live = losses("live"), cached = losses("cached");
  CATCH_REQUIRE(live.size() == 10);
  CATCH_REQUIRE(cached.size() == 10);
  for (size_t i = 0; i < live.size(); ++i) CATCH_CHECK(std::abs(live[i].second - cached[i].second) < 1e-4);
}

CATCH_TEST_CASE("reference cache: miss then hit, invalidation by each input, recovery from damaged files") {
  const std::string dir = fresh_dir("dpo_cache_unit");
  const std::string cache = dir + "/cache";
  auto tok = SentencePieceTokenizer::load(shared_tokenizer());
  ChatTemplate tmpl(*tok);
  const auto records = read_records(first_pairs(dir, 12), RecordKind::preference);
  const auto pairs = tokenize_pairs(records, tmpl, {}, 256);
  Llama model = tiny_model(1, tok->vocab_size());
  const std::string key = reference_cache_key(weights_hash(model), tok->content_hash(), pairs_hash(pairs));

  auto miss = cached_reference_logprobs(cache, key, model, pairs, 5, torch::kCPU);
  CATCH_CHECK_FALSE(miss.hit);
  CATCH_REQUIRE(fs::exists(miss.path));
  torch::Tensor chosen, rejected;
  compute_pair_logprobs(model, pairs, 12, torch::kCPU, chosen, rejected);  // other batching, other padding
  CATCH_CHECK(torch::allclose(miss.chosen, chosen, /*rtol=*/1e-6, /*atol=*/0));  // sums ~ -700: 1e-6 ~ 2 ulp
  CATCH_CHECK(torch::allclose(miss.rejected, rejected, 1e-6, 0));
  CATCH_CHECK((miss.chosen < 0).all().item<bool>());

  auto hit = cached_reference_logprobs(cache, key, model, pairs, 5, torch::kCPU);
  CATCH_CHECK(hit.hit);
  CATCH_CHECK(torch::equal(hit.chosen, miss.chosen));
  CATCH_CHECK(torch::equal(hit.rejected, miss.rejected));

  CATCH_SECTION("each input changes the key") {
    Llama other = tiny_model(2, tok->vocab_size());
    CATCH_CHECK(reference_cache_key(weights_hash(other), tok->content_hash(), pairs_hash(pairs)) != key);
    CATCH_CHECK(reference_cache_key(weights_hash(model), "another tokenizer", pairs_hash(pairs)) != key);
    auto fewer = std::vector<PairExample>(pairs.begin(), pairs.end() - 1);
    CATCH_CHECK(reference_cache_key(weights_hash(model), tok->content_hash(), pairs_hash(fewer)) != key);
    TemplateOptions no_rationale;  // the pairs above carry their rationale span (weight 1)
    no_rationale.rationale_weight = 0;
    CATCH_CHECK(pairs_hash(tokenize_pairs(records, tmpl, no_rationale, 256)) != pairs_hash(pairs));
    TemplateOptions half;  // same tokens, other NLL weights
    half.rationale_weight = 0.5;
    CATCH_CHECK(pairs_hash(tokenize_pairs(records, tmpl, half, 256)) != pairs_hash(pairs));
    CATCH_CHECK(weights_hash(model) == weights_hash(model));
  }
  CATCH_SECTION("a truncated cache file is detected and recomputed") {
    const std::string bytes = read_file(miss.path);
    write_text(miss.path, bytes.substr(0, bytes.size() - 7));
    auto again = cached_reference_logprobs(cache, key, model, pairs, 5, torch::kCPU);
    CATCH_CHECK_FALSE(again.hit);
    CATCH_CHECK_FALSE(again.note.empty());
    CATCH_CHECK(torch::equal(again.chosen, miss.chosen));
    CATCH_CHECK(cached_reference_logprobs(cache, key, model, pairs, 5, torch::kCPU).hit);  // rewritten whole
  }
  CATCH_SECTION("a flipped data byte fails the checksum and is recomputed") {
    std::string bytes = read_file(miss.path);
    bytes[bytes.size() - 3] ^= 0x40;
    write_text(miss.path, bytes);
    auto again = cached_reference_logprobs(cache, key, model, pairs, 5, torch::kCPU);
    CATCH_CHECK_FALSE(again.hit);
    CATCH_CHECK_THAT(again.note, Contains("checksum"));
    CATCH_CHECK(torch::equal(again.chosen, miss.chosen));
  }
}

CATCH_TEST_CASE("one reference, many runs: seeds share the cache; changed data misses") {
  const std::string dir = fresh_dir("dpo_cache_runs");
  const std::string pairs = first_pairs(dir, 8);
  // A reference model every run starts from (and compares against).
  const std::string base = write_recipe(dir, demo_data_yaml(),
                                        "  {steps: 3, batch_size: 4}\n");
  const TrainResult sft = train(load_recipe(base, {"out_dir=" + dir + "/sft"}));
  auto dpo = [&](int seed, const std::string& data) {
    const std::string recipe = write_recipe(dir, pref_data(data), "  {objective: dpo, steps: 2, batch_size: 4}\n",
                                            cache_yaml(dir));
    return run(ethos_bin() + " train " + recipe + " model.from=" + sft.final_checkpoint + " seed=" +
               std::to_string(seed) + " out_dir=" + dir + "/dpo" + std::to_string(seed) + " 2>&1");
  };
  auto first = dpo(1, pairs);
  CATCH_REQUIRE(first.status == 0);
  CATCH_CHECK_THAT(first.output, Contains("computed, cached in"));
  auto second = dpo(2, pairs);
  CATCH_REQUIRE(second.status == 0);
  CATCH_CHECK_THAT(second.output, Contains("cache hit"));
  CATCH_CHECK(files_in(dir + "/cache/reference") == 1);
  fs::create_directories(dir + "/other");
  const std::string seven = first_pairs(dir + "/other", 7);  // other data: another key
  auto third = dpo(3, seven);
  CATCH_REQUIRE(third.status == 0);
  CATCH_CHECK_THAT(third.output, Contains("computed, cached in"));
  CATCH_CHECK(files_in(dir + "/cache/reference") == 2);
}

CATCH_TEST_CASE("exact resume inside a DPO stage after SIGKILL (SFT stage first; reference from the SFT weights)") {
  const std::string a = fresh_dir("dpo_resume_straight"), b = fresh_dir("dpo_resume_killed");
  auto recipe = [&](const std::string& dir) {
    const std::string pairs = first_pairs(dir, 24);
    return write_recipe(
        dir, demo_data_yaml(),
        "  {steps: 6, batch_size: 4, checkpoint_every: 6, keep_last: 1}\n",
        cache_yaml(dir) + "stages:\n  - {name: sft}\n  - name: dpo\n    data: {sources: [{path: " + pairs +
            ", kind: preference}]}\n    train: {objective: dpo, steps: 20, checkpoint_every: 10, lr: 1.0e-3}\n");
  };
  const std::string ra = recipe(a), rb = recipe(b);
  CATCH_REQUIRE(run(ethos_bin() + " train " + ra).status == 0);
  int pid = spawn({ethos_bin(), "train", rb}, {"ETHOS_DEBUG_STEP_SLEEP_MS=60"}, b + "/first.log");
  CATCH_REQUIRE(wait_until([&] { return latest(b + "/run") == "step_000016"; }, 120));
  CATCH_REQUIRE(wait_until([&] { return train_events(b + "/run").size() >= 18; }, 120));
  ::kill(pid, SIGKILL);
  CATCH_REQUIRE(wait_exit(pid) == 128 + SIGKILL);
  CATCH_REQUIRE_FALSE(fs::exists(b + "/run/checkpoints/step_000026"));
  // keep_last 1 pruned the SFT checkpoint: the reference must come from run/reference/.
  CATCH_REQUIRE_FALSE(fs::exists(b + "/run/checkpoints/step_000006"));
  auto resumed = run(ethos_bin() + " train " + rb + " 2>&1");
  CATCH_REQUIRE(resumed.status == 0);
  CATCH_CHECK_THAT(resumed.output, Contains("resuming from"));
  CATCH_CHECK_THAT(resumed.output, Contains("cache hit"));
  CATCH_CHECK(weights_of(a + "/run", 26) == weights_of(b + "/run", 26));
  CATCH_CHECK(logged_losses(a + "/run") == logged_losses(b + "/run"));
  CATCH_CHECK(logged_losses(a + "/run").size() == 26);
}

CATCH_TEST_CASE("RPO's NLL term: the weighted chosen NLL equals -log p / tokens when every weight is 1") {
  auto tok = SentencePieceTokenizer::load(shared_tokenizer());
  ChatTemplate tmpl(*tok);
  const std::string dir = fresh_dir("dpo_rpo_nll");
  TemplateOptions opt;
  opt.rationale_weight = 0.5;  // rationale tokens at half weight
  const auto pairs = tokenize_pairs(read_records(first_pairs(dir, 4), RecordKind::preference), tmpl, opt, 256);
  Llama model = tiny_model(3, tok->vocab_size());
  const PairRows rows = pair_rows(pairs, {0, 1, 2, 3});
  const PairLogprobs lp = pair_logprobs(model, rows);
  // Prompt tokens are masked: the log-prob counts exactly the answer tokens.
  CATCH_CHECK(rows.logp_weights.slice(0, 0, 4).sum(1).equal(rows.chosen_tokens));
  CATCH_CHECK(rows.logp_weights.slice(0, 4, 8).sum(1).equal(rows.rejected_tokens));
  // Weights 0.5 on the rationale span, 1 on the action: a weighted mean, not -pc/|c|.
  const auto plain = -lp.chosen / rows.chosen_tokens;
  CATCH_CHECK_FALSE(torch::allclose(lp.chosen_nll, plain, 0, 1e-4));
  const auto w = rows.nll_weights.slice(0, 0, 4);
  CATCH_CHECK((std::get<0>(w.max(1)) == 1.0f).all().item<bool>());
  CATCH_CHECK((w.masked_select(w > 0).min() == 0.5f).item<bool>());
  // With weight 1 everywhere, the two agree (1e-5).
  const auto flat = tokenize_pairs(read_records(dir + "/pairs.jsonl", RecordKind::preference), tmpl, {}, 256);
  const PairRows r1 = pair_rows(flat, {0, 1, 2, 3});
  const PairLogprobs l1 = pair_logprobs(model, r1);
  CATCH_CHECK(torch::allclose(l1.chosen_nll, -l1.chosen / r1.chosen_tokens, 0, 1e-5));
}

CATCH_TEST_CASE("bad preference inputs give clear errors through the binary") {
  const std::string dir = fresh_dir("dpo_bad_inputs");
  auto train_with = [&](const std::string& lines, const std::string& train_yaml, int seq_len = 256) {
    write_text(dir + "/bad.jsonl", lines);
    const std::string recipe = write_recipe(
        dir, "  seq_len: " + std::to_string(seq_len) + "\n  sources: [{path: " + dir + "/bad.jsonl, kind: preference}]\n",
        train_yaml, cache_yaml(dir));
    return run(ethos_bin() + " train " + recipe + " resume=never 2>&1");
  };
  const std::string ok = "{\"prompt\": \"q\", \"chosen\": \"I report it.\", \"rejected\": \"I hide it.\"}\n";
  const std::string dpo = "  {objective: dpo, steps: 1, batch_size: 1}\n";

  auto same = train_with(ok + "{\"prompt\": \"q\", \"chosen\": \"same\", \"rejected\": \"same\"}\n", dpo);
  CATCH_CHECK(same.status == 1);
  CATCH_CHECK_THAT(same.output, Contains("bad.jsonl:2") && Contains("identical"));

  auto empty = train_with("{\"prompt\": \"q\", \"chosen\": \"\", \"rejected\": \"I hide it.\"}\n", dpo);
  CATCH_CHECK(empty.status == 1);
  CATCH_CHECK_THAT(empty.output, Contains("bad.jsonl:1") && Contains("chosen"));

  std::string long_prompt;
  for (int i = 0; i < 80; ++i) long_prompt += "the quarterly report is late again ";
  auto too_long = train_with("{\"prompt\": \"" + long_prompt + "\", \"chosen\": \"a\", \"rejected\": \"b\"}\n", dpo, 64);
  CATCH_CHECK(too_long.status == 1);
  CATCH_CHECK_THAT(too_long.output, Contains("bad.jsonl:1") && Contains("data.seq_len"));

  auto smoothing = train_with(ok, "  {objective: dpo, label_smoothing: 0.1, steps: 1}\n");
  CATCH_CHECK(smoothing.status == 1);
  CATCH_CHECK_THAT(smoothing.output, Contains("train.label_smoothing") && Contains("robust or conservative"));

  auto simpo_ref = train_with(ok, "  {objective: simpo, reference: /some/model, steps: 1}\n");
  CATCH_CHECK(simpo_ref.status == 1);
  CATCH_CHECK_THAT(simpo_ref.output, Contains("train.reference") && Contains("reference-free"));

  auto wrong_kind = train_with(ok, "  {objective: sft, steps: 1}\n");
  CATCH_CHECK(wrong_kind.status == 1);
  CATCH_CHECK_THAT(wrong_kind.output, Contains("sources[0].kind") && Contains("preference objective"));

  auto bad_beta = train_with(ok, "  {objective: dpo, beta: -1, steps: 1}\n");
  CATCH_CHECK(bad_beta.status == 1);
  CATCH_CHECK_THAT(bad_beta.output, Contains("train.beta"));

  auto bad_mode = train_with(ok, "  {objective: dpo, reference_mode: lazy, steps: 1}\n");
  CATCH_CHECK(bad_mode.status == 1);
  CATCH_CHECK_THAT(bad_mode.output, Contains("train.reference_mode"));
}
