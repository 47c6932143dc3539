// One writer per run directory (the lock), the run's status.json and launches.jsonl, and
// preemption: SIGUSR2 / SIGTERM make a run checkpoint at the next step and exit 75, and the
// resumed run ends with the uninterrupted run's weights, bit for bit.
#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "catch.h"
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "datasets/base/util.h"
#include "tests/helpers.h"
#include "tests/train_helpers.h"
#include "trainer/config.h"
#include "trainer/preempt.h"

namespace fs = std::filesystem;
using namespace ethos;
using namespace ethos::test;
using ethos_catch::Contains;

namespace {

const std::string kTrain24 = "  {steps: 24, batch_size: 4, lr: 3.0e-3, warmup_steps: 2, checkpoint_every: 8, keep_last: 0}\n";

nlohmann::json status_of(const std::string& run_dir) {
  return nlohmann::json::parse(read_file(run_dir + "/status.json"));
}

size_t lines_of(const std::string& path) {
  std::ifstream in(path);
  size_t n = 0;
  std::string line;
  while (std::getline(in, line)) n += !line.empty();
  return n;
}

size_t train_events(const std::string& run_dir) {
  return fs::exists(run_dir + "/train.jsonl") ? events(run_dir + "/train.jsonl", "train").size() : 0;
}

std::vector<std::string> checkpoint_names(const std::string& run_dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(run_dir + "/checkpoints"))
    if (e.path().filename().string().rfind("step_", 0) == 0) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

CATCH_TEST_CASE("run lock: a second writer is refused naming the first; a SIGKILLed writer's lock does not block a resume") {
  const std::string d = fresh_dir("lock");
  const std::string recipe = write_recipe(d, demo_data_yaml(), kTrain24);
  const int pid = spawn({ethos_bin(), "train", recipe}, {"ETHOS_DEBUG_STEP_SLEEP_MS=150"}, d + "/first.log");
  CATCH_REQUIRE(pid > 0);
  CATCH_REQUIRE(wait_until([&] { return train_events(d + "/run") >= 10; }, 120));  // past checkpoint 8
  CATCH_CHECK(status_of(d + "/run")["state"] == "running");

  const auto second = run(ethos_bin() + " train " + recipe + " 2>&1");
  CATCH_CHECK(second.status == 1);
  CATCH_CHECK_THAT(second.output, Contains("another ethos process is writing " + d + "/run"));
  CATCH_CHECK_THAT(second.output, Contains("pid " + std::to_string(pid) + " on host "));
  CATCH_CHECK(status_of(d + "/run")["state"] == "running");  // the refused writer wrote nothing

  ::kill(pid, SIGKILL);
  CATCH_REQUIRE(wait_exit(pid) == 128 + SIGKILL);
  CATCH_CHECK(status_of(d + "/run")["state"] == "running");  // a SIGKILL leaves no word: the lock file stays
  CATCH_CHECK(fs::exists(d + "/run/.lock"));
  const auto resumed = run(ethos_bin() + " train " + recipe + " 2>&1");
  CATCH_REQUIRE(resumed.status == 0);
  CATCH_CHECK_THAT(resumed.output, Contains("resuming from"));
  const auto st = status_of(d + "/run");
  CATCH_CHECK(st["state"] == "done");
  CATCH_CHECK(st["step"] == 24);
  CATCH_CHECK(lines_of(d + "/run/launches.jsonl") == 2);  // two starts; the refused one is not one
}

CATCH_TEST_CASE("preemption: SIGUSR2 checkpoints at the next step and exits 75; the resumed run equals an uninterrupted one") {
  const std::string a = fresh_dir("preempt_straight"), b = fresh_dir("preempt_signalled");
  const std::string eval = "eval: {heldout: [{path: " + tiny_data("tiny_heldout.jsonl") + ", kind: demonstration}]}\n";
  const std::string ra = write_recipe(a, demo_data_yaml(), kTrain24, eval), rb = write_recipe(b, demo_data_yaml(), kTrain24, eval);
  CATCH_REQUIRE(run(ethos_bin() + " train " + ra).status == 0);

  for (const int sig : {SIGUSR2, SIGTERM}) {
    // Signal between checkpoints (8, 16): the run writes an extra checkpoint where it stops.
    const size_t after = sig == SIGUSR2 ? 10 : 18;
    const int pid = spawn({ethos_bin(), "train", rb}, {"ETHOS_DEBUG_STEP_SLEEP_MS=150"}, b + "/first.log");
    CATCH_REQUIRE(pid > 0);
    CATCH_REQUIRE(wait_until([&] { return train_events(b + "/run") >= after; }, 120));
    ::kill(pid, sig);
    CATCH_REQUIRE(wait_exit(pid) == kExitPreempted);
    const auto st = status_of(b + "/run");
    CATCH_CHECK(st["state"] == "preempted");
    CATCH_CHECK(st["signal"] == signal_name(sig));
    const int64_t step = st["step"].get<int64_t>();
    CATCH_CHECK(step >= static_cast<int64_t>(after));
    CATCH_CHECK(step < 24);
    CATCH_CHECK(latest(b + "/run") == "step_0000" + std::string(step < 10 ? "0" : "") + std::to_string(step));
    const auto state = nlohmann::json::parse(read_file(b + "/run/checkpoints/" + latest(b + "/run") + "/trainer_state.json"));
    CATCH_CHECK(state.value("preempt", false) == (step % 8 != 0));
    CATCH_CHECK(events(b + "/run/train.jsonl", "preempted").size() >= 1);
    CATCH_CHECK_THAT(read_file(b + "/first.log"), Contains("stopped by " + signal_name(sig)));
  }
  const auto resumed = run(ethos_bin() + " train " + rb + " 2>&1");
  CATCH_REQUIRE(resumed.status == 0);
  CATCH_CHECK_THAT(resumed.output, Contains("resuming from"));
  CATCH_CHECK(weights_of(a + "/run", 24) == weights_of(b + "/run", 24));
  CATCH_CHECK(optimizer_of(a + "/run", 24) == optimizer_of(b + "/run", 24));
  // The preemption checkpoints were removed once later ones existed: the same set as the straight run's.
  CATCH_CHECK(checkpoint_names(b + "/run") == checkpoint_names(a + "/run"));
  // Held-out loss at the scheduled checkpoints only, with the straight run's values.
  const auto ea = events(a + "/run/eval.jsonl", "eval"), eb = events(b + "/run/eval.jsonl", "eval");
  CATCH_REQUIRE(ea.size() == 3);
  CATCH_REQUIRE(eb.size() == ea.size());
  for (size_t i = 0; i < ea.size(); ++i) {
    CATCH_CHECK(ea[i]["step"] == eb[i]["step"]);
    CATCH_CHECK(ea[i]["value"] == eb[i]["value"]);
  }
  CATCH_CHECK(status_of(b + "/run")["state"] == "done");
  CATCH_CHECK(lines_of(b + "/run/launches.jsonl") == 3);
}

CATCH_TEST_CASE("preemption across ranks: a signal to one rank stops both at the same step") {
  const std::string d = fresh_dir("preempt_ranks");
  const std::string recipe = write_recipe(d, demo_data_yaml(), kTrain24);
  const int launcher = spawn({ethos_bin(), "launch", "--nproc", "2", "--", "train", recipe},
                             {"ETHOS_DEBUG_STEP_SLEEP_MS=150"}, d + "/launch.log");
  CATCH_REQUIRE(launcher > 0);
  CATCH_REQUIRE(wait_until([&] { return train_events(d + "/run") >= 3; }, 120));
  // Rank 1: the launcher's second child.
  const auto kids = run("pgrep -P " + std::to_string(launcher));
  const auto pids = split(trim(kids.output), '\n');
  CATCH_REQUIRE(pids.size() == 2);
  const int rank1 = std::max(std::stoi(pids[0]), std::stoi(pids[1]));
  ::kill(rank1, SIGUSR2);
  const int rc = wait_exit(launcher);
  CATCH_CHECK(rc == kExitPreempted);
  const auto log = read_file(d + "/launch.log");
  CATCH_CHECK_THAT(log, Contains("stopped by SIGUSR2"));
  const auto st = status_of(d + "/run");
  CATCH_CHECK(st["state"] == "preempted");
  const int64_t step = st["step"].get<int64_t>();
  CATCH_CHECK(latest(d + "/run").find(std::to_string(step)) != std::string::npos);
  // Resumed on two ranks, it finishes.
  CATCH_REQUIRE(run(ethos_bin() + " launch --nproc 2 -- train " + recipe).status == 0);
  CATCH_CHECK(status_of(d + "/run")["state"] == "done");
}

CATCH_TEST_CASE("preempt_signal: an unknown signal name is a config error listing the choices") {
  const std::string d = fresh_dir("preempt_config");
  const std::string recipe = write_recipe(d, demo_data_yaml(), kTrain24);
  CATCH_CHECK_THROWS_WITH(load_recipe(recipe, {"preempt_signal=USR3"}),
                          Contains("preempt_signal: unknown signal \"USR3\"") && Contains("USR2 (the default)"));
  CATCH_CHECK(load_recipe(recipe, {"preempt_signal=SIGUSR1"}).preempt_signal == "SIGUSR1");
}

CATCH_TEST_CASE("cache entries: concurrent writers of one key never leave a torn file; a reader sees one whole version") {
  const std::string d = fresh_dir("atomic_writers");
  const std::string path = d + "/entry.bin";
  const std::string a(1 << 20, 'a'), b(1 << 20, 'b');
  write_file_atomic(path, a);
  std::vector<pid_t> writers;
  for (const std::string* text : {&a, &b}) {
    const pid_t pid = ::fork();
    CATCH_REQUIRE(pid >= 0);
    if (pid == 0) {  // a second process computing the same entry
      for (int i = 0; i < 60; ++i) write_file_atomic(path, *text);
      ::_exit(0);
    }
    writers.push_back(pid);
  }
  int reads = 0, torn = 0;
  std::map<pid_t, int> exited;  // pid -> wait status
  auto running = [&] {
    for (pid_t p : writers) {
      int st = 0;
      if (!exited.count(p) && ::waitpid(p, &st, WNOHANG) == p) exited[p] = st;
    }
    return exited.size() < writers.size();
  };
  while (running()) {
    const std::string got = read_file(path);
    ++reads;
    torn += got != a && got != b;
  }
  for (const auto& [p, st] : exited) CATCH_CHECK((WIFEXITED(st) && WEXITSTATUS(st) == 0));
  CATCH_CHECK(torn == 0);
  CATCH_CHECK(reads > 0);
  size_t files = 0;
  for (const auto& e : fs::directory_iterator(d)) files += e.is_regular_file();
  CATCH_CHECK(files == 1);  // no temporary left behind
}

CATCH_TEST_CASE("preemption during a stage's last step: the stage completes (shared-stage cache too), the run stops before the next") {
  const std::string a = fresh_dir("preempt_stage_straight"), b = fresh_dir("preempt_stage_end");
  auto recipe = [](const std::string& dir) {
    return write_recipe(dir, "  seq_len: 256\n  sources: [{path: " + tiny_data("tiny_documents.jsonl") + ", kind: document}]\n",
                        "  {steps: 8, batch_size: 4, checkpoint_every: 8, keep_last: 0}\n",
                        "cache_dir: " + dir + "/cache\nstages:\n  - {name: pretrain, share: true}\n  - name: sft\n"
                        "    data: {sources: [{path: " + tiny_data("tiny_demonstrations.jsonl") +
                            ", kind: demonstration}]}\n    train: {steps: 6}\n");
  };
  CATCH_REQUIRE(run(ethos_bin() + " train " + recipe(a)).status == 0);
  const std::string rb = recipe(b);
  const int pid = spawn({ethos_bin(), "train", rb}, {"ETHOS_DEBUG_STEP_SLEEP_MS=400"}, b + "/first.log");
  CATCH_REQUIRE(pid > 0);
  // Step 7 logged: the run is in step 8, the stage's last.
  CATCH_REQUIRE(wait_until([&] { return train_events(b + "/run") >= 7; }, 120));
  ::kill(pid, SIGUSR2);
  CATCH_REQUIRE(wait_exit(pid) == kExitPreempted);
  CATCH_CHECK_THAT(read_file(b + "/first.log"), Contains("at the end of stage 'pretrain' (step 8"));
  CATCH_CHECK(status_of(b + "/run")["step"] == 8);
  CATCH_CHECK(latest(b + "/run") == "step_000008");
  size_t stages = 0;
  for (const auto& e : fs::directory_iterator(b + "/cache/stages")) stages += e.path().filename().string()[0] != '.';
  CATCH_CHECK(stages == 1);  // the shared stage was published before stopping
  CATCH_REQUIRE(run(ethos_bin() + " train " + rb).status == 0);
  CATCH_CHECK(weights_of(a + "/run", 14) == weights_of(b + "/run", 14));
}
