// `ethos ablate --slurm` against a real Slurm: a single-node cluster on localhost started by
// tests/slurm/cluster.sh (Debian's slurmctld, slurmd, munge; needs root or password-less sudo),
// stopped at the end. Without them this test fails, saying so, unless ETHOS_SKIP_SLURM=1.
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include "catch.h"
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>

#include "datasets/base/util.h"
#include "tests/helpers.h"
#include "tests/train_helpers.h"

namespace fs = std::filesystem;
using namespace ethos;
using namespace ethos::test;
using ethos_catch::Contains;

namespace {

// The cluster, started on first use and stopped when the test binary exits.
struct Cluster {
  std::string dir, script, problem;
  bool up = false;
  Cluster() {
    dir = binary_dir() + "/test-tmp/slurm-cluster";
    script = source_dir() + "/tests/slurm/cluster.sh";
    std::string as_root;  // the daemons run as root (slurmd starts jobs as their user)
    if (::geteuid() != 0) {
      if (run("sudo -n true 2>/dev/null").status != 0) {
        problem = "needs root or password-less sudo (slurmd starts jobs as their user); or set ETHOS_SKIP_SLURM=1";
        return;
      }
      as_root = "sudo -n ETHOS_SLURMCTLD_PORT=16817 ETHOS_SLURMD_PORT=16818 ";
    }
    script = as_root + script;
    ::setenv("ETHOS_SLURMCTLD_PORT", "16817", 1);  // not a site's 6817
    ::setenv("ETHOS_SLURMD_PORT", "16818", 1);
    run(script + " stop " + dir + " >/dev/null 2>&1");
    run(as_root + "rm -rf " + dir);
    const auto started = run(script + " start " + dir + " 2>&1");
    if (started.status != 0) {
      problem = "tests/slurm/cluster.sh start failed (are slurmctld, slurmd, slurm-client and munge installed? "
                "launch/install.sh installs them):\n" + started.output;
      return;
    }
    ::setenv("SLURM_CONF", (dir + "/slurm.conf").c_str(), 1);
    up = true;
  }
  ~Cluster() {
    if (up) run(script + " stop " + dir + " >/dev/null 2>&1");
  }
};

// False when the test is to be skipped; fails the test when the cluster cannot start.
bool cluster_up() {
  if (const char* s = std::getenv("ETHOS_SKIP_SLURM"); s && std::string(s) == "1") {
    CATCH_WARN("ETHOS_SKIP_SLURM=1: the Slurm tests were skipped");
    return false;
  }
  static Cluster c;
  if (!c.up) CATCH_FAIL(c.problem);
  return true;
}

const std::string kDocs = tiny_data("tiny_documents.jsonl"), kDemos = tiny_data("tiny_demonstrations.jsonl");

// Pre-train on documents (shared: once per seed), then SFT; `sft_lr` tells recipes apart.
std::string two_stage(const std::string& dir, const std::string& sft_lr) {
  fs::create_directories(dir);
  return write_recipe(dir, "  seq_len: 256\n  sources: [{path: " + kDocs + ", kind: document}]\n",
                      "  {steps: 6, batch_size: 4, checkpoint_every: 6, keep_last: 0}\n",
                      "stages:\n  - {name: pretrain, share: true}\n  - name: sft\n    data: {sources: [{path: " + kDemos +
                          ", kind: demonstration}]}\n    train: {steps: 4, lr: " + sft_lr + "}\n");
}

std::string sft_only(const std::string& dir, int steps, const std::string& extra_train = "") {
  fs::create_directories(dir);
  return write_recipe(dir, "  seq_len: 256\n  sources: [{path: " + kDemos + ", kind: demonstration}]\n",
                      "  {steps: " + std::to_string(steps) + ", batch_size: 4, checkpoint_every: 8, keep_last: 0" +
                          extra_train + "}\n");
}

std::string eval_overrides() {
  return "overrides: [\"eval.heldout=[{path: " + tiny_data("tiny_heldout.jsonl") + ", kind: demonstration}]\", " +
         "\"eval.suites=[" + source_dir() + "/tests/fixtures/eval/mini/suite.yaml]\"]\n";
}

// The job ids `ethos ablate --slurm` printed ("  cells   job 12 (...)").
std::string job_id(const std::string& output, const std::string& kind) {
  std::smatch m;
  if (std::regex_search(output, m, std::regex(kind + " +job ([0-9]+)"))) return m[1].str();
  return "";
}

bool queue_empty(const std::vector<std::string>& ids) {
  std::string list;
  for (const auto& id : ids)
    if (!id.empty()) list += (list.empty() ? "" : ",") + id;
  const auto r = run("squeue -h -j " + list + " 2>/dev/null");
  return r.status == 0 && trim(r.output).empty();
}

nlohmann::json status_of(const std::string& run_dir) {
  return fs::exists(run_dir + "/status.json") ? nlohmann::json::parse(read_file(run_dir + "/status.json")) : nlohmann::json();
}

std::string tail_logs(const std::string& out) {
  std::string s;
  if (!fs::exists(out + "/slurm/logs")) return s;
  for (const auto& e : fs::directory_iterator(out + "/slurm/logs")) {
    const std::string t = read_file(e.path().string());
    s += "==> " + e.path().string() + "\n" + (t.size() > 3000 ? t.substr(t.size() - 3000) : t) + "\n";
  }
  return s;
}

}  // namespace

CATCH_TEST_CASE("slurm: 2 recipes x 2 seeds, 2 ranks per cell, shared pre-training; equal to --local; idempotent") {
  if (!cluster_up()) return;
  const std::string root = fresh_dir("slurm_matrix");
  fs::copy_file(two_stage(root + "/a", "1.0e-3"), root + "/r1.yaml");
  fs::copy_file(two_stage(root + "/b", "3.0e-3"), root + "/r2.yaml");
  std::string matrix = "recipes: [r1.yaml, r2.yaml]\nseeds: [0, 1]\n" + eval_overrides();
  matrix = matrix.substr(0, matrix.size() - 2) + ", \"cache_dir=" + root + "/cache\"]\n";
  write_text(root + "/matrix.yaml", "name: m\nout: " + root + "/runs\n" + matrix);
  const std::string slurm_args = " --slurm --ntasks-per-node 2 --max-parallel 2";

  const auto dry = run(ethos_bin() + " ablate " + root + "/matrix.yaml" + slurm_args + " --dry-run 2>&1");
  CATCH_REQUIRE(dry.status == 0);
  CATCH_CHECK_THAT(dry.output, Contains("#SBATCH --array=0,1,2,3%2"));
  CATCH_CHECK_THAT(dry.output, Contains("#SBATCH --ntasks-per-node=2"));
  CATCH_CHECK_THAT(dry.output, Contains("#SBATCH --signal=USR2@180"));
  CATCH_CHECK_THAT(dry.output, Contains("--shared-only"));
  CATCH_CHECK_FALSE(fs::exists(root + "/runs/slurm"));

  const auto sub = run("cd " + root + " && " + ethos_bin() + " ablate matrix.yaml" + slurm_args + " 2>&1");
  CATCH_REQUIRE(sub.status == 0);
  const std::string stages = job_id(sub.output, "stages"), cells = job_id(sub.output, "cells"),
                    report = job_id(sub.output, "report");
  CATCH_REQUIRE(!stages.empty());
  CATCH_REQUIRE(!cells.empty());
  CATCH_REQUIRE(!report.empty());
  CATCH_REQUIRE(wait_until([&] { return queue_empty({stages, cells, report}); }, 600));
  CATCH_INFO(tail_logs(root + "/runs"));

  for (const char* r : {"r1", "r2"})
    for (const char* s : {"seed0", "seed1"}) {
      const std::string dir = root + "/runs/" + r + "/" + s;
      CATCH_CHECK(status_of(dir)["state"] == "done");
      CATCH_CHECK(latest(dir) == "step_000010");
      CATCH_CHECK(fs::exists(dir + "/eval.jsonl"));
      // Pre-training came from the stage job: no cell trained it.
      CATCH_CHECK(events(dir + "/train.jsonl", "stage_reused").size() == 1);
      const auto launch = nlohmann::json::parse(split(trim(read_file(dir + "/launches.jsonl")), '\n').front());
      CATCH_CHECK(launch["slurm_array_job_id"] == cells);
      CATCH_CHECK(launch["slurm_nodelist"] == "localhost");
      CATCH_CHECK(launch["slurm_restart_count"] == "0");
    }
  size_t stage_entries = 0;
  for (const auto& e : fs::directory_iterator(root + "/cache/stages")) stage_entries += e.path().filename().string()[0] != '.';
  CATCH_CHECK(stage_entries == 2);  // once per seed
  CATCH_CHECK(fs::exists(root + "/runs/report/summary.json"));
  CATCH_CHECK(fs::exists(root + "/runs/slurm/cells.sbatch"));

  // The same matrix with --local, 2 ranks, its own cache: the same weights, bit for bit.
  write_text(root + "/local.yaml", "name: l\nout: " + root + "/local\n" + matrix.substr(0, matrix.size() - 2) +
                                       ", \"cache_dir=" + root + "/cache_local\"]\n");
  const auto local = run("cd " + root + " && " + ethos_bin() + " launch --nproc 2 -- ablate local.yaml --no-report 2>&1");
  CATCH_REQUIRE(local.status == 0);
  for (const char* r : {"r1", "r2"})
    for (const char* s : {"seed0", "seed1"})
      for (int64_t step : {6, 10})
        CATCH_CHECK(weights_of(root + "/runs/" + r + "/" + s, step) == weights_of(root + "/local/" + r + "/" + s, step));

  // Again: nothing to submit; --status says every cell is done.
  const auto again = run("cd " + root + " && " + ethos_bin() + " ablate matrix.yaml" + slurm_args + " 2>&1");
  CATCH_CHECK(again.status == 0);
  CATCH_CHECK_THAT(again.output, Contains("nothing to submit"));
  const auto st = run("cd " + root + " && " + ethos_bin() + " ablate matrix.yaml --status 2>&1");
  CATCH_CHECK(st.status == 0);
  CATCH_CHECK_THAT(st.output, Contains("4 of 4 cells done"));
}

CATCH_TEST_CASE("slurm: a failing cell is reported failed with its error; the other finishes; the report names it") {
  if (!cluster_up()) return;
  const std::string root = fresh_dir("slurm_fail");
  fs::copy_file(sft_only(root + "/a", 8), root + "/ok.yaml");
  // Loads (the matrix is checked before submitting), fails when it trains: bf16 needs CUDA.
  fs::copy_file(sft_only(root + "/b", 8, ", precision: bf16"), root + "/bad.yaml");
  write_text(root + "/matrix.yaml", "name: f\nout: " + root + "/runs\nrecipes: [ok.yaml, bad.yaml]\nseeds: [0]\n" + eval_overrides());
  const auto sub = run("cd " + root + " && " + ethos_bin() + " ablate matrix.yaml --slurm 2>&1");
  CATCH_REQUIRE(sub.status == 0);
  const std::string cells = job_id(sub.output, "cells"), report = job_id(sub.output, "report");
  CATCH_CHECK(job_id(sub.output, "stages").empty());  // no shared stage, no stage job
  CATCH_REQUIRE(wait_until([&] { return queue_empty({cells, report}); }, 300));
  CATCH_INFO(tail_logs(root + "/runs"));
  CATCH_CHECK(status_of(root + "/runs/ok/seed0")["state"] == "done");
  const auto bad = status_of(root + "/runs/bad/seed0");
  CATCH_CHECK(bad["state"] == "failed");
  CATCH_CHECK_THAT(bad.value("error", ""), Contains("bf16"));
  const auto st = run("cd " + root + " && " + ethos_bin() + " ablate matrix.yaml --status 2>&1");
  CATCH_CHECK(st.status == 1);
  CATCH_CHECK_THAT(st.output, Contains("bad/seed0"));
  CATCH_CHECK_THAT(st.output, Contains("failed"));
  CATCH_CHECK_THAT(st.output, Contains("error: stage 'main': train.precision=bf16 needs CUDA"));
  CATCH_CHECK_THAT(st.output, Contains("1 of 2 cells done"));
  CATCH_REQUIRE(fs::exists(root + "/runs/report/summary.json"));
  const auto summary = nlohmann::json::parse(read_file(root + "/runs/report/summary.json"));
  CATCH_REQUIRE(summary["missing_cells"].size() == 1);
  CATCH_CHECK(summary["missing_cells"][0]["recipe"] == "bad");
  CATCH_CHECK(summary["missing_cells"][0]["state"] == "failed");
}

CATCH_TEST_CASE("slurm: preemption by USR2 to the steps, and by the job's own time limit: checkpoint, requeue, resume, same weights") {
  if (!cluster_up()) return;
  const std::string root = fresh_dir("slurm_preempt");
  fs::copy_file(sft_only(root + "/a", 24), root + "/p.yaml");
  // The uninterrupted reference, 2 ranks.
  const auto ref = run(ethos_bin() + " launch --nproc 2 -- train " + root + "/p.yaml out_dir=" + root + "/ref 2>&1");
  CATCH_REQUIRE(ref.status == 0);

  CATCH_SECTION("scancel --signal=USR2 to the running steps") {
    write_text(root + "/m.yaml", "name: p\nout: " + root + "/runs\nrecipes: [p.yaml]\nseeds: [0]\n");
    const auto sub = run("cd " + root + " && ETHOS_DEBUG_STEP_SLEEP_MS=300 " + ethos_bin() +
                         " ablate m.yaml --slurm --ntasks-per-node 2 --no-report 2>&1");
    CATCH_REQUIRE(sub.status == 0);
    const std::string cells = job_id(sub.output, "cells");
    const std::string dir = root + "/runs/p/seed0";
    CATCH_REQUIRE(wait_until([&] { return fs::exists(dir + "/train.jsonl") && events(dir + "/train.jsonl", "train").size() >= 4; }, 120));
    CATCH_REQUIRE(run("scancel --signal=USR2 " + cells).status == 0);
    CATCH_REQUIRE(wait_until([&] { return queue_empty({cells}); }, 300));
    CATCH_INFO(tail_logs(root + "/runs"));
    CATCH_CHECK(status_of(dir)["state"] == "done");
    CATCH_CHECK(events(dir + "/train.jsonl", "preempted").size() == 1);
    CATCH_CHECK(split(trim(read_file(dir + "/launches.jsonl")), '\n').size() == 2);
    CATCH_CHECK(fs::exists(root + "/runs/slurm/logs/p-seed0.r1.log"));  // the requeued instance's log
    CATCH_CHECK(weights_of(dir, 24) == weights_of(root + "/ref", 24));
    const auto st = run("cd " + root + " && " + ethos_bin() + " ablate m.yaml --status 2>&1");
    CATCH_CHECK_THAT(st.output, Contains("1 of 1 cells done"));
  }
  CATCH_SECTION("the time limit: --time=1 with --signal=USR2@30 stops each instance early; it still finishes") {
    write_text(root + "/t.yaml", "name: t\nout: " + root + "/truns\nrecipes: [p.yaml]\nseeds: [0]\n");
    // 24 steps of 3 s: longer than the one-minute limit, so at least one stop comes from it.
    const auto sub = run("cd " + root + " && ETHOS_DEBUG_STEP_SLEEP_MS=3000 " + ethos_bin() +
                         " ablate t.yaml --slurm --ntasks-per-node 2 --no-report --time 1 --signal-lead 30 --max-restarts 20 2>&1");
    CATCH_REQUIRE(sub.status == 0);
    const std::string cells = job_id(sub.output, "cells");
    const std::string dir = root + "/truns/p/seed0";
    CATCH_REQUIRE(wait_until([&] { return queue_empty({cells}); }, 540));
    CATCH_INFO(tail_logs(root + "/truns"));
    CATCH_CHECK(status_of(dir)["state"] == "done");
    CATCH_CHECK(events(dir + "/train.jsonl", "preempted").size() >= 1);
    CATCH_CHECK(weights_of(dir, 24) == weights_of(root + "/ref", 24));
  }
}
