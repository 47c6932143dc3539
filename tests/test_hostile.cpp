// Hostile and careless inputs, and faults while writing: bounded memory on any input (the real
// binary under `ulimit -v`), the limits' messages and overrides, a full disk during a checkpoint
// save (a small tmpfs this test mounts), and files missing or cut short on read.
#include <torch/torch.h>
#include <unistd.h>

#include "catch.h"
#include <filesystem>
#include <fstream>

#include "datasets/base/limits.h"
#include "datasets/base/util.h"
#include "datasets/base/yaml.h"
#include "datasets/records.h"
#include "eval/suite/suite.h"
#include "tests/helpers.h"
#include "tests/train_helpers.h"
#include "trainer/checkpoint/checkpoint.h"
#include "trainer/model/weights.h"

namespace fs = std::filesystem;
using namespace ethos;
using namespace ethos::test;
using ethos_catch::Contains;

namespace {

// The address-space limit the hostile runs get: the binary with LibTorch loaded needs well under
// it, and every hostile input here would take more than it (tens of GiB, or all memory) if read
// without a limit. 3 GiB, set with prlimit --as (ulimit -v).
constexpr long kUlimitKiB = 3L * 1024 * 1024;

RunResult run_limited(const std::string& args) {
#if defined(__SANITIZE_ADDRESS__)
  // tests/sanitize.sh: AddressSanitizer reserves terabytes of address space for its shadow memory,
  // so no address-space limit can hold; the plain build (CI) checks the bound.
  return run(ethos_bin() + " " + args);
#else
  return run("prlimit --as=" + std::to_string(kUlimitKiB * 1024) + " " + ethos_bin() + " " + args);
#endif
}

// A YAML "billion laughs": 9 levels of 10 aliases each expand to 10^9 scalars.
std::string yaml_bomb(const std::string& key) {
  std::string y = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n";
  for (int i = 1; i <= 9; ++i) {
    y += "a" + std::to_string(i) + ": &a" + std::to_string(i) + " [";
    for (int k = 0; k < 10; ++k) y += std::string(k ? ", " : "") + "*a" + std::to_string(i - 1);
    y += "]\n";
  }
  return y + key + ": *a9\n";
}


void check_clean_error(const RunResult& r, const std::string& expected) {
  CATCH_INFO(r.output);
  CATCH_CHECK(r.status == 1);
  CATCH_CHECK_THAT(r.output, Contains(expected));
  CATCH_CHECK_THAT(r.output, !Contains("bad_alloc"));
}

}  // namespace

CATCH_TEST_CASE("the binary starts and trains under the memory limit the hostile cases use") {
  const std::string d = fresh_dir("hostile_baseline");
  const std::string recipe = write_recipe(d, demo_data_yaml(), "  {steps: 2, batch_size: 2}\n");
  const auto r = run_limited("train " + recipe);
  CATCH_INFO(r.output);
  CATCH_CHECK(r.status == 0);
}

CATCH_TEST_CASE("YAML whose aliases expand into a billion nodes: a recipe, a world, a matrix") {
  const std::string d = fresh_dir("hostile_yaml_bomb");
  write_text(d + "/recipe.yaml", "name: bomb\n" + yaml_bomb("tags"));
  check_clean_error(run_limited("train " + d + "/recipe.yaml"), "recipe.yaml:");
  check_clean_error(run_limited("train " + d + "/recipe.yaml"), "expands to more than 1000000 nodes");
  check_clean_error(run_limited("train " + d + "/recipe.yaml"), "ETHOS_MAX_YAML_NODES");

  write_text(d + "/world.yaml", yaml_bomb("pretrain"));
  check_clean_error(run_limited("data generate --world " + d + "/world.yaml --out " + d + "/w"), "world.yaml:");
  write_text(d + "/matrix.yaml", yaml_bomb("recipes"));
  check_clean_error(run_limited("ablate " + d + "/matrix.yaml"), "expands to more than");

  // A command-line value is YAML too.
  const std::string recipe = write_recipe(d, demo_data_yaml(), "  {steps: 2, batch_size: 2}\n");
  check_clean_error(run_limited("train " + recipe + " 'tags=&a [*a, *a]'"), "override \"tags\"");
}

CATCH_TEST_CASE("YAML nested too deep, and a file with no end, are limits, not crashes") {
  const std::string d = fresh_dir("hostile_yaml_deep");
  write_text(d + "/deep.yaml", "tags: " + std::string(5000, '[') + std::string(5000, ']') + "\n");
  const auto deep = run_limited("train " + d + "/deep.yaml");
  CATCH_INFO(deep.output);
  CATCH_CHECK(deep.status == 1);
  CATCH_CHECK_THAT(deep.output, Contains("deep.yaml"));
  CATCH_CHECK_THAT(deep.output, !Contains("bad_alloc"));
  check_clean_error(run_limited("train /dev/zero"), "longer than a YAML file should be");
}

CATCH_TEST_CASE("a JSONL record of tens of MiB and one nested a million deep: file:line, the limit, the override") {
  const std::string d = fresh_dir("hostile_jsonl");
  {
    std::ofstream f(d + "/big.jsonl");
    f << "{\"prompt\": \"a\", \"response\": \"b\"}\n{\"prompt\": \"" << std::string(40u << 20, 'x') << "\", \"response\": \"b\"}\n";
  }
  const std::string data = "  seq_len: 256\n  sources: [{path: " + d + "/big.jsonl, kind: demonstration}]\n";
  const std::string recipe = write_recipe(d, data, "  {steps: 2, batch_size: 2}\n");
  check_clean_error(run_limited("train " + recipe), "big.jsonl:2: line is longer than");
  check_clean_error(run_limited("train " + recipe), "ETHOS_MAX_RECORD_BYTES");

  // Raising the limit lets the record through to the next check (here: the sequence length).
  CATCH_CHECK_THROWS_WITH(read_records(d + "/big.jsonl", RecordKind::demonstration), Contains("big.jsonl:2"));
  ::setenv("ETHOS_MAX_RECORD_BYTES", std::to_string(64u << 20).c_str(), 1);
  CATCH_CHECK(read_records(d + "/big.jsonl", RecordKind::demonstration).size() == 2);
  ::setenv("ETHOS_MAX_RECORD_BYTES", "lots", 1);
  CATCH_CHECK_THROWS_WITH(read_records(d + "/big.jsonl", RecordKind::demonstration), Contains("ETHOS_MAX_RECORD_BYTES=\"lots\""));
  ::unsetenv("ETHOS_MAX_RECORD_BYTES");

  // Under the line limit but over what the tokenizer takes as one text (sentencepiece holds about
  // 90 bytes per byte of its input).
  {
    std::ofstream f(d + "/long_doc.jsonl");
    f << "{\"text\": \"short\"}\n{\"text\": \"";
    for (int i = 0; i < (5 << 20) / 6; ++i) f << "words ";
    f << "\"}\n";
  }
  const std::string docs = "  seq_len: 256\n  sources: [{path: " + d + "/long_doc.jsonl, kind: document}]\n";
  check_clean_error(run_limited("train " + write_recipe(d, docs, "  {steps: 2, batch_size: 2}\n")),
                    "long_doc.jsonl:2: field \"text\" is 5.0 MiB, more than the tokenizer takes as one text");

  write_text(d + "/deep.jsonl", "{\"prompt\": " + std::string(1000000, '[') + std::string(1000000, ']') + "}\n");
  const std::string deep = "  seq_len: 256\n  sources: [{path: " + d + "/deep.jsonl, kind: demonstration}]\n";
  check_clean_error(run_limited("train " + write_recipe(d, deep, "  {steps: 2, batch_size: 2}\n")),
                    "deep.jsonl:1: JSON nested more than 256 levels");
}

CATCH_TEST_CASE("suites: an item line over the limit and a nested one are problems naming file:line") {
  const std::string d = fresh_dir("hostile_suite");
  write_text(d + "/suite.yaml", "files: [items.jsonl]\n");
  {
    std::ofstream f(d + "/items.jsonl");
    f << "{\"id\": \"" << std::string(17u << 20, 'x') << "\"}\n" << std::string(300, '[') << std::string(300, ']') << "\n";
  }
  try {
    load_suite(d + "/suite.yaml");
    CATCH_FAIL("load_suite accepted a hostile item file");
  } catch (const Error& e) {
    CATCH_CHECK_THAT(e.what(), Contains("items.jsonl:1: line of 17.0 MiB is longer than one item may be"));
    CATCH_CHECK_THAT(e.what(), Contains("items.jsonl:2: JSON nested more than 256 levels"));
  }
  write_text(d + "/bomb.yaml", yaml_bomb("principles"));
  CATCH_CHECK_THROWS_WITH(load_suite(d + "/bomb.yaml"), Contains("bomb.yaml:") && Contains("expands to more than"));
}

CATCH_TEST_CASE("a full disk during a checkpoint save: error names the path and the space; nothing lost; resume is exact") {
  if (::geteuid() != 0 && !std::getenv("ETHOS_SKIP_MOUNT"))
    CATCH_FAIL("this test mounts a small tmpfs and needs root (or set ETHOS_SKIP_MOUNT=1 to skip it explicitly)");
  if (::geteuid() != 0) return;
  const std::string train = "  {steps: 4, batch_size: 4, lr: 3.0e-3, warmup_steps: 1, checkpoint_every: 2, keep_last: 0}\n";
  // The straight run, and the size of one checkpoint.
  const std::string a = fresh_dir("hostile_enospc_straight");
  CATCH_REQUIRE(run(ethos_bin() + " train " + write_recipe(a, demo_data_yaml(), train)).status == 0);
  uint64_t ckpt = 0;
  for (const auto& f : fs::directory_iterator(a + "/run/checkpoints/step_000002")) ckpt += fs::file_size(f.path());

  // A file system with room for one checkpoint and the logs, not two.
  run("umount " + binary_dir() + "/test-tmp/hostile_enospc/mnt 2>/dev/null");  // left by an interrupted run
  const std::string b = fresh_dir("hostile_enospc"), mnt = b + "/mnt";
  fs::create_directories(mnt);
  const uint64_t size = ckpt * 3 / 2 + (256u << 10);
  CATCH_REQUIRE(run("mount -t tmpfs -o size=" + std::to_string(size) + " ethos-test " + mnt).status == 0);
  struct Unmount {
    std::string at;
    ~Unmount() { run("umount " + at); }
  } unmount{mnt};
  const std::string recipe = b + "/recipe.yaml";
  write_text(recipe, read_file(write_recipe(mnt, demo_data_yaml(), train)));
  fs::remove(mnt + "/recipe.yaml");

  const auto full = run(ethos_bin() + " train " + recipe);
  CATCH_INFO(full.output);
  CATCH_CHECK(full.status == 1);
  CATCH_CHECK_THAT(full.output, Contains("cannot write checkpoint " + mnt + "/run/checkpoints/step_000004"));
  CATCH_CHECK_THAT(full.output, Contains("No space left on device"));
  CATCH_CHECK_THAT(full.output, Contains("A checkpoint needs about"));
  CATCH_CHECK_THAT(full.output, Contains("are free on the file system of " + mnt + "/run/checkpoints"));
  CATCH_CHECK_THAT(full.output, Contains("step_000002 and `latest` are intact"));
  CATCH_CHECK(latest(mnt + "/run") == "step_000002");
  CATCH_CHECK(checkpoint_problems(mnt + "/run/checkpoints/step_000002").empty());
  CATCH_CHECK_FALSE(fs::exists(mnt + "/run/checkpoints/step_000004"));
  for (const auto& f : fs::directory_iterator(mnt + "/run/checkpoints"))
    CATCH_CHECK(f.path().filename().string().rfind(".tmp", 0) != 0);  // the half-written temporary is gone

  // Space freed: the same command resumes from step 2 and ends where the straight run did.
  CATCH_REQUIRE(run("mount -o remount,size=" + std::to_string(size * 4) + " " + mnt).status == 0);
  const auto resumed = run(ethos_bin() + " train " + recipe);
  CATCH_INFO(resumed.output);
  CATCH_REQUIRE(resumed.status == 0);
  CATCH_CHECK_THAT(resumed.output, Contains("resuming from"));
  CATCH_CHECK(weights_of(a + "/run", 4) == weights_of(mnt + "/run", 4));
  CATCH_CHECK(optimizer_of(a + "/run", 4) == optimizer_of(mnt + "/run", 4));
  CATCH_CHECK(logged_losses(a + "/run") == logged_losses(mnt + "/run"));
}

CATCH_TEST_CASE("a flipped bit in any file of a checkpoint, trainer_state.json included, is found and skipped") {
  const std::string d = fresh_dir("hostile_bitflip");
  const std::string recipe = write_recipe(d, demo_data_yaml(), "  {steps: 4, batch_size: 4, checkpoint_every: 2, keep_last: 0}\n");
  CATCH_REQUIRE(run(ethos_bin() + " train " + recipe).status == 0);
  const std::string step2 = d + "/run/checkpoints/step_000002", step4 = d + "/run/checkpoints/step_000004";
  CATCH_REQUIRE(checkpoint_problems(step4).empty());
  std::vector<std::string> files;
  for (const auto& f : fs::directory_iterator(step4)) files.push_back(f.path().filename().string());
  std::sort(files.begin(), files.end());
  CATCH_CHECK(files == std::vector<std::string>{"config.json", "config.yaml", "model.safetensors", "optimizer.safetensors",
                                                "tokenizer.model", "trainer_state.json"});
  for (const auto& name : files) {
    CATCH_INFO(name);
    const std::string path = step4 + "/" + name, original = read_file(path);
    std::string bytes = original;
    // trainer_state.json: one digit of the step (4 -> 5), which still parses; elsewhere a middle byte.
    const size_t at = name == "trainer_state.json" ? bytes.find("\"global_step\": 4") + 15 : bytes.size() / 2;
    bytes[at] ^= 0x01;
    write_text(path, bytes);
    const auto problems = checkpoint_problems(step4);
    CATCH_REQUIRE(problems.size() == 1);
    CATCH_CHECK_THAT(problems[0], Contains(path));
    CATCH_CHECK(find_latest_checkpoint(d + "/run").value() == step2);
    const auto verify = run(ethos_bin() + " checkpoint verify " + step4);
    CATCH_CHECK(verify.status == 1);
    CATCH_CHECK_THAT(verify.output, Contains(name));
    write_text(path, original);
    CATCH_CHECK(checkpoint_problems(step4).empty());
  }
  // A sealed state that was edited is refused by an explicit resume too.
  const std::string state = read_file(step4 + "/trainer_state.json");
  write_text(step4 + "/trainer_state.json", std::string(state).replace(state.find("\"stage_step\": 4"), 15, "\"stage_step\": 3"));
  const auto explicit_resume = run(ethos_bin() + " train " + recipe + " train.steps=6 resume=" + step4);
  CATCH_CHECK(explicit_resume.status == 1);
  CATCH_CHECK_THAT(explicit_resume.output, Contains("does not match its own checksum"));
}

CATCH_TEST_CASE("read side: a checkpoint missing a file, a truncated shard, an index naming a missing shard") {
  const std::string d = fresh_dir("hostile_missing");
  const std::string train = "  {steps: 4, batch_size: 4, checkpoint_every: 2, keep_last: 0}\n";
  const std::string recipe = write_recipe(d, demo_data_yaml(), train);
  CATCH_REQUIRE(run(ethos_bin() + " train " + recipe).status == 0);
  const std::string step4 = d + "/run/checkpoints/step_000004";
  fs::remove(step4 + "/optimizer.safetensors");
  const auto verify = run(ethos_bin() + " checkpoint verify " + step4);
  CATCH_CHECK(verify.status == 1);
  CATCH_CHECK_THAT(verify.output, Contains(step4 + "/optimizer.safetensors: missing"));
  const auto explicit_resume = run(ethos_bin() + " train " + recipe + " resume=" + step4);
  CATCH_CHECK(explicit_resume.status == 1);
  CATCH_CHECK_THAT(explicit_resume.output, Contains("optimizer.safetensors: missing"));
  CATCH_CHECK(find_latest_checkpoint(d + "/run").value() == d + "/run/checkpoints/step_000002");

  // A model saved in three shards (as Hugging Face shards big models), then damaged.
  const std::string m = d + "/sharded";
  fs::create_directories(m);
  ModelConfig cfg;
  cfg.vocab_size = 64, cfg.hidden_size = 16, cfg.intermediate_size = 32, cfg.num_hidden_layers = 2;
  cfg.num_attention_heads = 2, cfg.num_key_value_heads = 2;
  Llama model(cfg);
  save_model(model, m, /*max_shard_bytes=*/8192);
  std::vector<std::string> shards;
  for (const auto& f : fs::directory_iterator(m))
    if (f.path().filename().string().rfind("model-", 0) == 0) shards.push_back(f.path().string());
  std::sort(shards.begin(), shards.end());
  CATCH_REQUIRE(shards.size() >= 3);
  Llama fresh(cfg);
  load_weights(fresh, m);  // loads while whole

  fs::resize_file(shards[1], fs::file_size(shards[1]) - 100);
  CATCH_CHECK_THROWS_WITH(load_weights(fresh, m), Contains(shards[1]) && Contains("truncated"));
  fs::resize_file(shards[1], 4);
  CATCH_CHECK_THROWS_WITH(load_weights(fresh, m), Contains(shards[1]) && Contains("truncated"));
  fs::remove(shards[1]);
  CATCH_CHECK_THROWS_WITH(load_weights(fresh, m), Contains("model.safetensors.index.json") &&
                                                      Contains(fs::path(shards[1]).filename().string() + " listed in weight_map is missing"));
  write_text(m + "/model.safetensors.index.json", "{\"weight_map\": " + std::string(100000, '[') + "}");
  CATCH_CHECK_THROWS_WITH(load_weights(fresh, m), Contains("index.json: JSON nested more than 256 levels"));
}

CATCH_TEST_CASE("limits: defaults, overrides and the wording of the hint") {
  CATCH_CHECK(limit_value(kMaxRecordBytes) == (16u << 20));
  CATCH_CHECK(limit_hint(kMaxRecordBytes) == "the limit is 16 MiB; raise it with ETHOS_MAX_RECORD_BYTES=<bytes> if the input is genuine");
  CATCH_CHECK(human_bytes(1536) == "1.5 KiB");
  CATCH_CHECK(human_bytes(100) == "100 bytes");
  ::setenv("ETHOS_MAX_YAML_NODES", "5", 1);
  CATCH_CHECK_THROWS_WITH(parse_yaml("a: [1, 2, 3, 4]\n", "small.yaml"), Contains("small.yaml:1: the YAML document expands to more than 5 nodes"));
  ::unsetenv("ETHOS_MAX_YAML_NODES");
  CATCH_CHECK(parse_yaml("a: [1, 2, 3, 4]\n", "small.yaml")["a"].size() == 4);
  ::setenv("ETHOS_MAX_YAML_NODES", "-3", 1);
  CATCH_CHECK_THROWS_WITH(parse_yaml("a: 1\n", "small.yaml"), Contains("is not a positive whole number of nodes"));
  ::unsetenv("ETHOS_MAX_YAML_NODES");
  // A line of exactly the limit passes; one byte more does not.
  const std::string d = fresh_dir("hostile_limit_edge");
  ::setenv("ETHOS_MAX_RECORD_BYTES", "10", 1);
  write_text(d + "/ok.txt", "0123456789\r\nabc");
  {
    LineReader in(d + "/ok.txt", "test");
    std::string line;
    CATCH_CHECK(in.next(line));
    CATCH_CHECK(line == "0123456789");
    CATCH_CHECK(in.next(line));
    CATCH_CHECK(line == "abc");
    CATCH_CHECK_FALSE(in.next(line));
  }
  write_text(d + "/long.txt", "short\n0123456789A\n");
  LineReader in(d + "/long.txt", "test");
  std::string line;
  CATCH_CHECK(in.next(line));
  CATCH_CHECK_THROWS_WITH(in.next(line), Contains("long.txt:2: line is longer than one test record may be"));
  ::unsetenv("ETHOS_MAX_RECORD_BYTES");
}
