// Data-parallel training with real processes: Gloo over loopback, 2 ranks on CPU, through the
// real `ethos` binary (ethos launch, or ranks started by hand with torchrun-style variables).
//  - 2 ranks x batch b == 1 rank x batch 2b (weights and losses within 1e-6), also with
//    gradient accumulation, for SFT and DPO;
//  - ZeRO-1 == plain data parallel; sharded and full checkpoints hold the same state;
//  - exact resume of a 2-rank run after SIGKILL of both (plain and ZeRO-1 sharded);
//  - a checkpoint of 2 ranks (full, or ZeRO-1 shards) resumes on 1 rank;
//  - SIGKILL of one rank: the others stop within 60 s, naming the dead rank (with and without
//    the launcher); a rendezvous nobody serves times out with a clear error.
//
// Tolerance: 1e-6 on weights after 20 AdamW steps. The ranks sum gradients in another order
// than one process does (each rank's rows, then across ranks), which changes the last bits.
// Adam turns those bits into whole steps for elements whose gradient is below its eps: with
// eps 1e-8 such elements moved by up to 2e-5 in the first step (measured). These tests use
// eps 1e-6, which leaves the comparison about the data-parallel machinery, not Adam's noise
// floor: measured differences are ~2.5e-7.
#include <torch/torch.h>

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include "catch.h"
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "datasets/base/util.h"
#include "tests/helpers.h"
#include "tests/train_helpers.h"
#include "trainer/checkpoint/checkpoint.h"
#include "trainer/model/safetensors.h"

namespace fs = std::filesystem;
using namespace ethos;
using namespace ethos::test;
using ethos_catch::Contains;

namespace {

// batch_size and grad_accum are set per run; eps 1e-6: see the header.
const std::string kTrain = "  {steps: 20, lr: 3.0e-3, warmup_steps: 2, eps: 1.0e-6, checkpoint_every: 10, keep_last: 0}\n";
// Small buckets: the test model (~90k parameters) is split into several.
const std::string kBuckets = " dist.bucket_mb=0.05";

std::string launch2(const std::string& args) { return ethos_bin() + " launch --nproc 2 -- train " + args; }
std::string train1(const std::string& args) { return ethos_bin() + " train " + args; }

RunResult must_run(const std::string& command) {
  RunResult r = run(command);
  CATCH_INFO(command << "\n" << r.output);
  CATCH_REQUIRE(r.status == 0);
  return r;
}

std::map<std::string, torch::Tensor> tensors_of(const std::string& file) {
  auto f = SafetensorsFile::read(file);
  std::map<std::string, torch::Tensor> out;
  for (const auto& e : f.entries()) out[e.name] = f.get(e.name);
  return out;
}

// The largest |a - b| over every tensor (the names must match).
double max_diff(const std::map<std::string, torch::Tensor>& a, const std::map<std::string, torch::Tensor>& b) {
  CATCH_REQUIRE(a.size() == b.size());
  double m = 0;
  for (const auto& [name, t] : a) {
    CATCH_REQUIRE(b.count(name));
    m = std::max(m, (t - b.at(name)).abs().max().item<double>());
  }
  return m;
}

double weight_diff(const std::string& run_a, const std::string& run_b, int64_t step) {
  const std::string ck = "/checkpoints/" + checkpoint_name(step) + "/model.safetensors";
  return max_diff(tensors_of(run_a + ck), tensors_of(run_b + ck));
}

// Largest relative difference of two runs' per-step losses (same steps required).
double loss_diff(const std::string& run_a, const std::string& run_b) {
  const auto a = logged_losses(run_a), b = logged_losses(run_b);
  CATCH_REQUIRE(a.size() == b.size());
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    CATCH_REQUIRE(a[i].first == b[i].first);
    m = std::max(m, std::abs(a[i].second - b[i].second) / std::abs(a[i].second));
  }
  return m;
}

int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

// Starts `world` ranks of `ethos train recipe args...` by hand (torchrun-style variables, no
// launcher); returns their pids. Rank r logs to log_prefix + r.
std::vector<int> spawn_ranks(int world, const std::vector<std::string>& train_args, const std::vector<std::string>& env,
                             const std::string& log_prefix) {
  const int port = free_port();
  std::vector<int> pids;
  for (int r = 0; r < world; ++r) {
    std::vector<std::string> argv{ethos_bin(), "train"};
    argv.insert(argv.end(), train_args.begin(), train_args.end());
    std::vector<std::string> e = env;
    e.insert(e.end(), {"RANK=" + std::to_string(r), "WORLD_SIZE=" + std::to_string(world), "LOCAL_RANK=" + std::to_string(r),
                       "LOCAL_WORLD_SIZE=" + std::to_string(world), "MASTER_ADDR=127.0.0.1",
                       "MASTER_PORT=" + std::to_string(port)});
    pids.push_back(spawn(argv, e, log_prefix + std::to_string(r)));
  }
  return pids;
}

size_t train_events(const std::string& run_dir) {
  return fs::exists(run_dir + "/train.jsonl") ? events(run_dir + "/train.jsonl", "train").size() : 0;
}

// The child of `parent` whose environment has RANK=rank (the launcher's ranks).
int child_with_rank(int parent, int rank) {
  for (const auto& e : fs::directory_iterator("/proc")) {
    const std::string name = e.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream stat(e.path() / "stat");
    std::string line;
    if (!std::getline(stat, line)) continue;
    std::istringstream fields(line.substr(line.rfind(')') + 2));
    std::string state;
    int ppid = 0;
    fields >> state >> ppid;
    if (ppid != parent) continue;
    std::ifstream env(e.path() / "environ");
    std::string var;
    while (std::getline(env, var, '\0'))
      if (var == "RANK=" + std::to_string(rank)) return std::stoi(name);
  }
  return -1;
}

}  // namespace

CATCH_TEST_CASE("2 ranks x batch b == 1 rank x batch 2b, also with gradient accumulation and ZeRO-1 (1e-6)", "[dist]") {
  const std::string dir = fresh_dir("dist_equal");
  const std::string recipe = write_recipe(dir, demo_data_yaml(), kTrain);
  must_run(train1(recipe + " out_dir=" + dir + "/one train.batch_size=8"));
  const auto two = must_run(launch2(recipe + " out_dir=" + dir + "/two train.batch_size=4" + kBuckets));
  must_run(launch2(recipe + " out_dir=" + dir + "/accum train.batch_size=2 train.grad_accum=2" + kBuckets));
  must_run(launch2(recipe + " out_dir=" + dir + "/zero-accum train.batch_size=2 train.grad_accum=2 dist.zero=1" + kBuckets));

  // The machinery ran: 2 ranks, several buckets, rank 0 alone logs (one event per step).
  const auto dp = events(dir + "/two/train.jsonl", "data_parallel");
  CATCH_REQUIRE(dp.size() == 1);
  CATCH_CHECK(dp[0]["ranks"] == 2);
  CATCH_CHECK(dp[0]["backend"] == "gloo");
  CATCH_CHECK(dp[0]["buckets"].get<int>() > 1);
  CATCH_CHECK(dp[0]["global_batch"] == 8);
  CATCH_CHECK(train_events(dir + "/two") == 20);
  CATCH_CHECK(events(dir + "/two/train.jsonl", "train").back().contains("comm_wait_s"));
  // Overlap: every bucket's all-reduce started from the hooks, while backward was running.
  for (const auto& e : events(dir + "/two/train.jsonl", "train")) CATCH_CHECK(e["buckets_in_backward"] == dp[0]["buckets"]);
  CATCH_CHECK_THAT(two.output, Contains("[rank 0] [main] step 20/20"));
  CATCH_CHECK_THAT(two.output, !Contains("[rank 1] [main] step"));

  for (const std::string run : {"two", "accum", "zero-accum"}) {
    CATCH_INFO(run);
    CATCH_CHECK(loss_diff(dir + "/one", dir + "/" + run) < 1e-6);
    CATCH_CHECK(weight_diff(dir + "/one", dir + "/" + run, 10) < 1e-6);
    CATCH_CHECK(weight_diff(dir + "/one", dir + "/" + run, 20) < 1e-6);
    // The same tokens were seen: the global sample order is the one-process order.
    const auto a = events(dir + "/one/train.jsonl", "train"), b = events(dir + "/" + run + "/train.jsonl", "train");
    for (size_t i = 0; i < a.size(); ++i) CATCH_CHECK(a[i]["tokens"] == b[i]["tokens"]);
  }
}

CATCH_TEST_CASE("DPO: 2 ranks x 2 pairs == 1 rank x 4 pairs, metrics summed over ranks", "[dist]") {
  const std::string dir = fresh_dir("dist_dpo");
  const std::string data = "  seq_len: 256\n  rationale_weight: 0\n  sources: [{path: " + tiny_data("tiny_preferences.jsonl") +
                           ", kind: preference}]\n";
  const std::string recipe = write_recipe(
      dir, data, "  {objective: dpo, steps: 10, lr: 1.0e-3, eps: 1.0e-6, checkpoint_every: 10, keep_last: 0}\n",
      "cache_dir: " + dir + "/cache\n");
  must_run(train1(recipe + " out_dir=" + dir + "/one train.batch_size=4"));
  must_run(launch2(recipe + " out_dir=" + dir + "/two train.batch_size=2" + kBuckets));
  // Batches of 2 and 4 pairs take other kernel paths, whose rounding differs: within 1e-6 on
  // LibTorch 1.13; LibTorch 2.14 (Debian sid) gave 1.6e-6 on the loss and 2.0e-6 on the weights.
  const double tol = TORCH_VERSION_MAJOR < 2 ? 1e-6 : 5e-6;
  CATCH_CHECK(loss_diff(dir + "/one", dir + "/two") < tol);
  CATCH_CHECK(weight_diff(dir + "/one", dir + "/two", 10) < tol);
  const auto a = events(dir + "/one/train.jsonl", "train"), b = events(dir + "/two/train.jsonl", "train");
  CATCH_REQUIRE(a.size() == b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    CATCH_CHECK(b[i]["pairs"] == 4);  // both ranks' pairs
    CATCH_CHECK(a[i]["accuracy"] == b[i]["accuracy"]);
    CATCH_CHECK(std::abs(a[i]["margin"].get<double>() - b[i]["margin"].get<double>()) < 1e-5);
  }
}

CATCH_TEST_CASE("ZeRO-1 == plain data parallel; full and sharded checkpoints hold the same optimizer state", "[dist]") {
  const std::string dir = fresh_dir("dist_zero");
  const std::string recipe = write_recipe(dir, demo_data_yaml(), kTrain);
  const std::string base = recipe + " train.batch_size=4" + kBuckets;
  must_run(launch2(base + " out_dir=" + dir + "/plain"));
  must_run(launch2(base + " out_dir=" + dir + "/zero dist.zero=1"));
  must_run(launch2(base + " out_dir=" + dir + "/sharded dist.zero=1 dist.checkpoint=sharded"));
  CATCH_CHECK(weight_diff(dir + "/plain", dir + "/zero", 20) < 1e-6);
  CATCH_CHECK(loss_diff(dir + "/plain", dir + "/zero") < 1e-6);

  const std::string ck = "/checkpoints/step_000020";
  // Sharded: one file per rank plus the index, no whole optimizer file.
  CATCH_CHECK(fs::exists(dir + "/sharded" + ck + "/optimizer-rank00000-of-00002.safetensors"));
  CATCH_CHECK(fs::exists(dir + "/sharded" + ck + "/optimizer-rank00001-of-00002.safetensors"));
  CATCH_CHECK(fs::exists(dir + "/sharded" + ck + "/optimizer.index.json"));
  CATCH_CHECK_FALSE(fs::exists(dir + "/sharded" + ck + "/optimizer.safetensors"));
  CATCH_CHECK(checkpoint_problems(dir + "/sharded" + ck).empty());
  // Each rank holds (and writes) half of the optimizer state.
  const double whole = static_cast<double>(fs::file_size(dir + "/zero" + ck + "/optimizer.safetensors"));
  for (const char* shard : {"/optimizer-rank00000-of-00002.safetensors", "/optimizer-rank00001-of-00002.safetensors"})
    CATCH_CHECK(static_cast<double>(fs::file_size(dir + "/sharded" + ck + shard)) < 0.55 * whole);
  // Whole moments: gathered (zero), reassembled from shards (sharded), plain DP's own.
  int64_t steps_plain = 0, steps_zero = 0, steps_sharded = 0;
  const auto plain = read_optimizer_state(dir + "/plain" + ck, &steps_plain);
  const auto zero = read_optimizer_state(dir + "/zero" + ck, &steps_zero);
  const auto sharded = read_optimizer_state(dir + "/sharded" + ck, &steps_sharded);
  CATCH_CHECK(steps_plain == 20);
  CATCH_CHECK(steps_zero == 20);
  CATCH_CHECK(steps_sharded == 20);
  CATCH_CHECK(max_diff(zero, sharded) == 0.0);  // the same run, saved two ways
  CATCH_CHECK(max_diff(plain, zero) < 1e-6);
  CATCH_CHECK(weight_diff(dir + "/zero", dir + "/sharded", 20) == 0.0);

  // A damaged shard set is refused by name.
  const std::string broken = dir + "/broken";
  fs::copy(dir + "/sharded" + ck, broken);
  fs::remove(broken + "/optimizer-rank00001-of-00002.safetensors");
  try {
    read_optimizer_state(broken);
    CATCH_FAIL("a missing shard was not noticed");
  } catch (const Error& e) {
    CATCH_CHECK_THAT(std::string(e.what()), Contains("optimizer-rank00001-of-00002.safetensors"));
  }
}

CATCH_TEST_CASE("resume of a 2-rank run after SIGKILL of both ranks is exact (plain and ZeRO-1 sharded)", "[dist]") {
  for (const std::string mode : {"plain", "zero"}) {
    CATCH_INFO(mode);
    const std::string dir = fresh_dir("dist_resume_" + mode);
    const std::string recipe = write_recipe(dir, demo_data_yaml(), kTrain);
    const std::string extra = mode == "zero" ? " dist.zero=1 dist.checkpoint=sharded" : "";
    const std::string args = " train.batch_size=4 train.steps=40" + extra + kBuckets;
    must_run(launch2(recipe + args + " out_dir=" + dir + "/straight"));

    // Started by hand (no launcher), slowed down so the kill lands after checkpoint 20.
    std::vector<std::string> targs{recipe, "out_dir=" + dir + "/killed", "train.batch_size=4", "train.steps=40",
                                   "dist.bucket_mb=0.05"};
    if (mode == "zero") targs.insert(targs.end(), {"dist.zero=1", "dist.checkpoint=sharded"});
    auto pids = spawn_ranks(2, targs, {"ETHOS_DEBUG_STEP_SLEEP_MS=60"}, dir + "/rank");
    CATCH_REQUIRE(wait_until([&] { return latest(dir + "/killed") == "step_000020" && train_events(dir + "/killed") >= 23; }, 120));
    for (int pid : pids) ::kill(pid, SIGKILL);
    for (int pid : pids) CATCH_CHECK(wait_exit(pid) == 128 + SIGKILL);
    CATCH_REQUIRE_FALSE(fs::exists(dir + "/killed/checkpoints/step_000040"));

    const auto resumed = must_run(launch2(recipe + args + " out_dir=" + dir + "/killed"));
    CATCH_CHECK_THAT(resumed.output, Contains("resuming from"));
    CATCH_CHECK(weights_of(dir + "/straight", 40) == weights_of(dir + "/killed", 40));
    const auto a = read_optimizer_state(dir + "/straight/checkpoints/step_000040");
    const auto b = read_optimizer_state(dir + "/killed/checkpoints/step_000040");
    CATCH_CHECK(max_diff(a, b) == 0.0);
    CATCH_CHECK(logged_losses(dir + "/straight") == logged_losses(dir + "/killed"));  // 40 steps, bitwise
  }
}

CATCH_TEST_CASE("a checkpoint of 2 ranks (full, or ZeRO-1 shards) resumes on 1 rank with the global order kept", "[dist]") {
  const std::string dir = fresh_dir("dist_reshard");
  const std::string recipe = write_recipe(dir, demo_data_yaml(), kTrain);
  must_run(train1(recipe + " train.steps=40 train.batch_size=8 out_dir=" + dir + "/one"));
  for (const std::string mode : {"full", "sharded"}) {
    CATCH_INFO(mode);
    const std::string extra = mode == "sharded" ? " dist.zero=1 dist.checkpoint=sharded" : "";
    must_run(launch2(recipe + " train.steps=40 train.batch_size=4 out_dir=" + dir + "/two-" + mode + extra + kBuckets));
    // Step 20 of the 2-rank run, continued on one rank with the same global batch.
    const auto r = must_run(train1(recipe + " train.steps=40 train.batch_size=8 out_dir=" + dir + "/cont-" + mode +
                                   " resume=" + dir + "/two-" + mode + "/checkpoints/step_000020"));
    CATCH_CHECK_THAT(r.output, Contains("written by 2 rank(s), this run has 1"));
    if (mode == "full") {  // the same batch_size on fewer ranks is another global batch: refused, with the fix
      const auto refused = run(train1(recipe + " train.steps=40 train.batch_size=4 out_dir=" + dir + "/refused resume=" +
                                      dir + "/two-full/checkpoints/step_000020"));
      CATCH_CHECK(refused.status == 1);
      CATCH_CHECK_THAT(refused.output, Contains("2 x 4 x 1 = 8 rows when it was written, 1 x 4 x 1 = 4 rows now; "
                                                "keep it with train.batch_size=8"));
    }
    CATCH_CHECK(weight_diff(dir + "/one", dir + "/cont-" + mode, 40) < 1e-6);
    const auto a = logged_losses(dir + "/one"), b = logged_losses(dir + "/cont-" + mode);
    CATCH_REQUIRE(b.size() == 20);  // steps 21..40
    for (size_t i = 0; i < b.size(); ++i) {
      CATCH_CHECK(b[i].first == a[20 + i].first);
      CATCH_CHECK(std::abs(b[i].second - a[20 + i].second) < 1e-6 * a[20 + i].second);
    }
  }
}

CATCH_TEST_CASE("SIGKILL of one rank: the job stops within 60 s, naming the dead rank", "[dist]") {
  const std::string dir = fresh_dir("dist_kill");
  const std::string recipe = write_recipe(dir, demo_data_yaml(), kTrain);
  const std::vector<std::string> slow{"ETHOS_DEBUG_STEP_SLEEP_MS=100"};

  CATCH_SECTION("through ethos launch") {
    const int launcher = spawn({ethos_bin(), "launch", "--nproc", "2", "--", "train", recipe, "out_dir=" + dir + "/launch",
                                "train.batch_size=4", "train.steps=500"},
                               slow, dir + "/launch.log");
    CATCH_REQUIRE(wait_until([&] { return train_events(dir + "/launch") >= 3; }, 120));
    const int rank1 = child_with_rank(launcher, 1);
    CATCH_REQUIRE(rank1 > 0);
    const auto t0 = std::chrono::steady_clock::now();
    ::kill(rank1, SIGKILL);
    const int status = wait_exit(launcher);
    const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    CATCH_CHECK(status != 0);
    CATCH_CHECK(waited < 60);
    const std::string log = read_file(dir + "/launch.log");
    CATCH_INFO(log);
    CATCH_CHECK_THAT(log, Contains("rank 1 died (signal 9 SIGKILL)"));
  }
  CATCH_SECTION("ranks started by hand: the survivor notices by itself") {
    auto pids = spawn_ranks(2, {recipe, "out_dir=" + dir + "/hand", "train.batch_size=4", "train.steps=500"}, slow,
                            dir + "/rank");
    CATCH_REQUIRE(wait_until([&] { return train_events(dir + "/hand") >= 12; }, 120));  // past checkpoint 10
    const auto t0 = std::chrono::steady_clock::now();
    ::kill(pids[1], SIGKILL);
    CATCH_CHECK(wait_exit(pids[1]) == 128 + SIGKILL);
    const int status = wait_exit(pids[0]);
    const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    CATCH_CHECK(status == 1);
    CATCH_CHECK(waited < 60);
    const std::string log = read_file(dir + "/rank0");
    CATCH_INFO(log);
    CATCH_CHECK_THAT(log, Contains("rank 0/2:"));
    CATCH_CHECK_THAT(log, Contains("rank 1 (pid " + std::to_string(pids[1]) + ") is no longer running"));
    CATCH_CHECK(latest(dir + "/hand") == "step_000010");  // nothing lost: the last checkpoint is whole
    CATCH_CHECK(checkpoint_problems(dir + "/hand/checkpoints/step_000010").empty());
  }
}

CATCH_TEST_CASE("joining a job: a rendezvous nobody serves times out with a clear error", "[dist]") {
  const std::string dir = fresh_dir("dist_join");
  const std::string recipe = write_recipe(dir, demo_data_yaml(), kTrain);
  const int port = free_port();
  const auto t0 = std::chrono::steady_clock::now();
  auto r = run("RANK=1 WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=" + std::to_string(port) + " " +
               train1(recipe + " out_dir=" + dir + "/run dist.timeout_s=3"));
  const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  CATCH_CHECK(r.status == 1);
  CATCH_CHECK(waited < 30);
  CATCH_CHECK_THAT(r.output, Contains("rank 1/2: rendezvous at 127.0.0.1:" + std::to_string(port) + " failed"));

  // Rank 0 alone: it names the rank that never came.
  auto alone = run("RANK=0 WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=" + std::to_string(free_port()) + " " +
                   train1(recipe + " out_dir=" + dir + "/alone dist.timeout_s=2"));
  CATCH_CHECK(alone.status == 1);
  CATCH_CHECK_THAT(alone.output, Contains("rank 0/2: rank 1 did not join the job"));

  // Ranks started with different world sizes: both stop, saying so.
  const int port2 = free_port();
  const std::string env = "MASTER_ADDR=127.0.0.1 MASTER_PORT=" + std::to_string(port2) + " ";
  const int r0 = spawn({"/bin/sh", "-c", env + "RANK=0 WORLD_SIZE=2 " + train1(recipe + " out_dir=" + dir + "/mismatch dist.timeout_s=20")},
                       {}, dir + "/mismatch0.log");
  const int r1 = spawn({"/bin/sh", "-c", env + "RANK=1 WORLD_SIZE=3 " + train1(recipe + " out_dir=" + dir + "/mismatch dist.timeout_s=20")},
                       {}, dir + "/mismatch1.log");
  CATCH_CHECK(wait_exit(r0) == 1);
  CATCH_CHECK(wait_exit(r1) == 1);
  CATCH_CHECK_THAT(read_file(dir + "/mismatch0.log"), Contains("rank 1 was started with a world size of 3, this rank with 2"));
  CATCH_CHECK_THAT(read_file(dir + "/mismatch1.log"), Contains("rank 0 was started with a world size of 2, this rank with 3"));

  auto bad = run("RANK=1 " + train1(recipe + " out_dir=" + dir + "/run"));
  CATCH_CHECK(bad.status == 1);
  CATCH_CHECK_THAT(bad.output, Contains("WORLD_SIZE"));
}

CATCH_TEST_CASE("ethos launch -- ablate: every run is a 2-rank job, rank 0 reports", "[dist]") {
  const std::string root = fresh_dir("dist_ablate");
  fs::create_directories(root + "/a");
  // Pre-training shared across the recipes, then SFT.
  const std::string recipe = write_recipe(
      root + "/a", "  seq_len: 256\n  sources: [{path: " + tiny_data("tiny_documents.jsonl") + ", kind: document}]\n",
      "  {steps: 6, batch_size: 2, checkpoint_every: 6, keep_last: 0}\n",
      "cache_dir: " + root + "/cache\nstages:\n  - {name: pretrain, share: true}\n  - name: sft\n    data: {sources: [{path: " +
          tiny_data("tiny_demonstrations.jsonl") + ", kind: demonstration}]}\n    train: {steps: 4}\n"
          "eval: {heldout: [{path: " + tiny_data("tiny_heldout.jsonl") + ", kind: demonstration}], suites: [" +
          source_dir() + "/tests/fixtures/eval/mini/suite.yaml]}\n");
  fs::copy_file(recipe, root + "/r1.yaml");
  fs::copy_file(recipe, root + "/r2.yaml");
  write_text(root + "/matrix.yaml", "name: m\nout: " + root + "/runs\nrecipes: [r1.yaml, r2.yaml]\nseeds: [0]\n");
  const auto r = must_run(ethos_bin() + " launch --nproc 2 -- ablate " + root + "/matrix.yaml");
  CATCH_CHECK_THAT(r.output, Contains("[rank 0] [ablate] 2 runs done"));
  CATCH_CHECK_THAT(r.output, !Contains("[rank 1] [ablate]"));
  for (const char* name : {"r1", "r2"}) {
    const std::string run = root + "/runs/" + name + "/seed0";
    CATCH_INFO(run);
    CATCH_CHECK(latest(run) == "step_000010");
    const auto dp = events(run + "/train.jsonl", "data_parallel");
    CATCH_REQUIRE_FALSE(dp.empty());
    CATCH_CHECK(dp.back()["ranks"] == 2);
    CATCH_CHECK_THAT(read_file(run + "/eval.jsonl"), Contains("misaligned_rate"));  // rank 0 evaluated
  }
  CATCH_CHECK(events(root + "/runs/r2/seed0/train.jsonl", "stage_reused").size() == 1);  // r1 trained it
  CATCH_CHECK(fs::exists(root + "/runs/report/summary.json"));
}
