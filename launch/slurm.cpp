#include "launch/slurm.h"

#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "datasets/base/util.h"
#include "trainer/checkpoint/run_dir.h"
#include "trainer/config.h"
#include "trainer/preempt.h"

namespace fs = std::filesystem;

namespace ethos {
namespace {

using nlohmann::json;

// A word for bash: single-quoted, with ' written as '\''.
std::string q(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::string words(const std::vector<std::string>& args) {
  std::string s;
  for (const auto& a : args) s += (s.empty() ? "" : " ") + (a == "\"$ETHOS\"" ? a : q(a));
  return s;
}

struct Captured {
  int status = -1;
  std::string out;
};

// Runs a shell command, capturing stdout (stderr passes through).
Captured capture(const std::string& command) {
  Captured c;
  FILE* p = ::popen(command.c_str(), "r");
  if (!p) return c;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) c.out.append(buf, n);
  const int st = ::pclose(p);
  c.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
  return c;
}

bool have(const std::string& tool) { return capture("command -v " + tool + " >/dev/null 2>&1").status == 0; }

std::string self_exe() {
  std::error_code ec;
  const auto p = fs::read_symlink("/proc/self/exe", ec);
  return ec ? std::string("ethos") : p.string();
}

std::string cell_name(const AblationCell& c) { return c.stem + "/" + c.unit(); }

// ---- what the run directories say --------------------------------------------------------

struct CellState {
  std::string state;   // pending | running | stopped | done | failed | preempted
  std::string detail;
  int64_t step = -1;   // the last logged training step
  int starts = 0, preempted = 0;
};

std::vector<json> jsonl(const std::string& path) {
  std::vector<json> out;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    auto j = json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (!j.is_discarded() && j.is_object()) out.push_back(std::move(j));
  }
  return out;
}

std::string first_line(const std::string& s) {
  const auto at = s.find('\n');
  return at == std::string::npos ? s : s.substr(0, at) + " ...";
}

CellState cell_state(const std::string& dir) {
  CellState c;
  const auto status = read_run_status(dir);
  c.starts = static_cast<int>(jsonl(dir + "/launches.jsonl").size());
  for (const auto& e : jsonl(dir + "/train.jsonl")) {
    if (e.value("event", "") == "train") c.step = e.value("step", int64_t{-1});
    if (e.value("event", "") == "preempted") ++c.preempted;
  }
  if (!status) {
    c.state = "pending";
    return c;
  }
  c.state = status->value("state", "unknown");
  if (c.state == "running") {
    const json holder = run_lock_holder(dir);
    if (holder.is_null()) {
      c.state = "stopped";
      c.detail = "ended without a word (killed, crashed or lost its node); submitting again resumes it";
    } else {
      c.detail = "pid " + std::to_string(holder.value("pid", int64_t{0})) + " on " + holder.value("host", std::string("?"));
    }
  } else if (c.state == "failed") {
    c.detail = "error: " + first_line(status->value("error", std::string("?")));
  } else if (c.state == "preempted") {
    c.detail = "stopped by " + status->value("signal", std::string("a signal")) + " at step " +
               std::to_string(status->value("step", int64_t{0}));
  }
  return c;
}

// The last submission's array tasks: "cells job id" + task index -> cell name.
struct Submission {
  std::string stages, cells, report;
  std::map<int, std::string> tasks;
};

std::optional<Submission> last_submission(const std::string& slurm_dir) {
  const auto subs = jsonl(slurm_dir + "/jobs.jsonl");
  if (subs.empty()) return std::nullopt;
  const json& j = subs.back();
  Submission s;
  s.stages = j.value("stages", "");
  s.cells = j.value("cells", "");
  s.report = j.value("report", "");
  if (j.contains("tasks"))
    for (const auto& [k, v] : j["tasks"].items()) s.tasks[std::stoi(k)] = v.get<std::string>();
  return s;
}

// squeue's view of the given jobs: "13_2" (array tasks, one line each) -> "PENDING (Dependency)".
std::map<std::string, std::string> squeue_states(const std::vector<std::string>& ids) {
  std::map<std::string, std::string> out;
  std::string list;
  for (const auto& id : ids)
    if (!id.empty()) list += (list.empty() ? "" : ",") + id;
  if (list.empty() || !have("squeue")) return out;
  const Captured c = capture("squeue -h -r -o '%i|%T|%r' -j " + list + " 2>/dev/null");
  if (c.status != 0) return out;
  std::istringstream in(c.out);
  std::string line;
  while (std::getline(in, line)) {
    const auto parts = split(line, '|');
    if (parts.size() < 3) continue;
    std::string st = parts[1];
    if (parts[2] != "None" && !parts[2].empty()) st += " (" + parts[2] + ")";
    out[trim(parts[0])] = st;
  }
  return out;
}

// ---- the scripts -------------------------------------------------------------------------

struct Layout {
  std::string out, slurm, logs, cwd, exe;
};

std::string header(const AblationMatrix& m, const SlurmOptions& o, const Layout& L, const std::string& what,
                   const std::string& array, bool ranks) {
  std::string h = "#!/bin/bash\n# Written by `ethos ablate " + m.path + " --slurm` on " + utc_timestamp() +
                  ". Site-specific lines: pass --sbatch-arg\n# (they are appended below), or edit this file and sbatch it.\n";
  auto line = [&](const std::string& s) { h += "#SBATCH " + s + "\n"; };
  line("--job-name=" + m.name + "-" + what);
  if (!array.empty()) line("--array=" + array);
  if (ranks) {
    const int per_node = o.ntasks_per_node > 0 ? o.ntasks_per_node : std::max(o.gpus_per_node, 1);
    line("--nodes=" + std::to_string(o.nodes));
    line("--ntasks-per-node=" + std::to_string(per_node));
    if (o.gpus_per_node > 0) line("--gpus-per-node=" + std::to_string(o.gpus_per_node));
    if (o.cpus_per_task > 0) line("--cpus-per-task=" + std::to_string(o.cpus_per_task));
    line("--requeue");
    line("--signal=" + o.signal + "@" + std::to_string(o.signal_lead_s));
  }
  if (!o.time.empty()) line("--time=" + o.time);
  if (!o.partition.empty()) line("--partition=" + o.partition);
  if (!o.account.empty()) line("--account=" + o.account);
  if (!o.qos.empty()) line("--qos=" + o.qos);
  line("--open-mode=append");
  line("--chdir=" + L.cwd);
  line("--output=" + L.logs + "/" + what + (array.empty() ? "-%j" : "-%A_%a") + ".batch.log");
  for (const auto& a : o.sbatch_args) line(a);
  return h + "\n";
}

// The shell part every rank-running script shares: run the ranks under srun, wait through
// SIGTERM, and requeue the task when its run stopped on a signal.
std::string rank_functions(const SlurmOptions& o, const Layout& L) {
  return "set -uo pipefail\n"
         "ETHOS=" + q(L.exe) + "\n"
         "logs=" + q(L.logs) + "\n"
         "task=${SLURM_ARRAY_TASK_ID:?submit this script with sbatch: it is a job array}\n"
         "restart=${SLURM_RESTART_COUNT:-0}\n"
         "max_restarts=" + std::to_string(o.max_restarts) + "\n"
         "# The rendezvous: rank 0 serves it on the first host of the allocation.\n"
         "export MASTER_ADDR=\"$(scontrol show hostnames \"$SLURM_JOB_NODELIST\" | head -n 1)\"\n"
         "export MASTER_PORT=$((20000 + SLURM_JOB_ID % 20000))\n"
         "[ -n \"${SLURM_CPUS_PER_TASK:-}\" ] && export OMP_NUM_THREADS=$SLURM_CPUS_PER_TASK\n"
         "# Slurm sends SIGTERM to this script too at a time limit or preemption: keep waiting, so the\n"
         "# ranks (which checkpoint on it) can finish and this script can requeue the task.\n"
         "trap 'echo \"[ethos-slurm] SIGTERM: waiting for the ranks to checkpoint\"' TERM\n"
         "\n"
         "ranks() {  # ranks LOG COMMAND...: one rank per task of the allocation, under srun\n"
         "  local log=$1; shift\n"
         "  echo \"[ethos-slurm] $(date -u +%FT%TZ) job $SLURM_JOB_ID (array ${SLURM_ARRAY_JOB_ID}_$task) restart $restart on $SLURM_JOB_NODELIST\" >> \"$log\"\n"
         "  srun --kill-on-bad-exit=1 --open-mode=append --output=\"$log\" \"$@\" &\n"
         "  local pid=$! rc=0 last\n"
         "  while kill -0 \"$pid\" 2>/dev/null; do wait \"$pid\"; rc=$?; done\n"
         "  wait \"$pid\" 2>/dev/null; last=$?\n"
         "  [ \"$last\" != 127 ] && rc=$last\n"
         "  return \"$rc\"\n"
         "}\n"
         "\n"
         "finish() {  # finish RC RUN_DIR: go on after success; requeue after a stop signal; else fail\n"
         "  local rc=$1 dir=$2\n"
         "  [ \"$rc\" = 0 ] && return 0\n"
         "  if [ \"$rc\" = " + std::to_string(kExitPreempted) + " ] || grep -q '\"state\": \"preempted\"' \"$dir/status.json\" 2>/dev/null; then\n"
         "    if [ \"$restart\" -lt \"$max_restarts\" ]; then\n"
         "      echo \"[ethos-slurm] $dir stopped on a signal: requeueing ${SLURM_ARRAY_JOB_ID}_$task (restart $((restart + 1)) of $max_restarts)\"\n"
         "      scontrol requeue \"${SLURM_ARRAY_JOB_ID}_$task\"\n"
         "      sleep 300  # the requeue ends this instance\n"
         "    else\n"
         "      echo \"[ethos-slurm] $dir stopped on a signal after $restart restarts: not requeued (--max-restarts)\"\n"
         "    fi\n"
         "    exit " + std::to_string(kExitPreempted) + "\n"
         "  fi\n"
         "  echo \"[ethos-slurm] $dir failed (exit $rc): see its log and $dir/status.json\"\n"
         "  exit \"$rc\"\n"
         "}\n\n";
}

std::vector<std::string> train_command(const AblationCell& c, bool shared_only, const std::string& dir) {
  std::vector<std::string> cmd = {"\"$ETHOS\"", "train"};
  if (shared_only) cmd.push_back("--shared-only");
  cmd.push_back(c.recipe);
  for (const auto& o : c.overrides)
    if (o.rfind("out_dir=", 0) != 0) cmd.push_back(o);
  cmd.push_back("out_dir=" + dir);
  cmd.push_back("resume=auto");
  return cmd;
}

std::string array_spec(const std::vector<int>& tasks, int max_parallel) {
  std::string s;
  for (int t : tasks) s += (s.empty() ? "" : ",") + std::to_string(t);
  if (max_parallel > 0) s += "%" + std::to_string(max_parallel);
  return s;
}

// sbatch --parsable: "123" or "123;cluster".
std::string sbatch(const std::string& script, const std::string& dependency) {
  const std::string cmd = "sbatch --parsable" + (dependency.empty() ? "" : " --dependency=" + dependency) + " " + q(script);
  const Captured c = capture(cmd);
  if (c.status != 0)
    throw Error("sbatch failed (exit " + std::to_string(c.status) + ") on " + script +
                "; its message is above. Check the #SBATCH lines (partition, account, time) in that file, or pass "
                "--partition / --account / --sbatch-arg");
  return trim(split(trim(c.out), ';').front());
}

}  // namespace

int submit_slurm(const AblationMatrix& m, const SlurmOptions& o) {
  if (o.nodes < 1) throw Error("--nodes must be at least 1");
  parse_stop_signal(o.signal, "--signal");
  if (!o.dry_run)
    for (const char* tool : {"sbatch", "scontrol"})
      if (!have(tool)) throw Error(std::string("ethos ablate --slurm: ") + tool + " is not on PATH: run on a Slurm login node (or use --local)");
  Layout L;
  L.out = fs::absolute(m.out).lexically_normal().string();
  L.slurm = L.out + "/slurm";
  L.logs = L.slurm + "/logs";
  L.cwd = fs::current_path().string();
  L.exe = self_exe();
  const auto cells = ablation_cells(m);

  // What is left to do: cells not done, and not queued or running under an earlier submission.
  std::set<std::string> active;
  if (auto prev = last_submission(L.slurm); prev && !o.dry_run) {
    const auto queued = squeue_states({prev->cells});
    for (const auto& [id, st] : queued) {
      const auto us = id.find('_');
      if (us == std::string::npos) continue;
      const int task = std::atoi(id.c_str() + us + 1);
      if (prev->tasks.count(task)) active.insert(prev->tasks[task]);
    }
  }
  std::vector<int> todo;
  for (size_t i = 0; i < cells.size(); ++i) {
    const CellState st = cell_state(cells[i].dir);
    if (st.state == "done") {
      std::cerr << "[slurm] " << cell_name(cells[i]) << ": done, not submitted again" << std::endl;
      continue;
    }
    if (active.count(cell_name(cells[i]))) {
      std::cerr << "[slurm] " << cell_name(cells[i]) << ": still queued or running under the earlier submission" << std::endl;
      continue;
    }
    todo.push_back(static_cast<int>(i));
  }
  if (todo.empty()) {
    std::cerr << "[slurm] nothing to submit: every cell is done or still in the queue (ethos ablate " << m.path
              << " --status)" << std::endl;
    return 0;
  }

  // Cells whose leading stages are shared (pre-training): the stage job trains them once per base
  // (the seed, or the base seed), one task per base; cells of the same recipe, world and axis
  // values that differ only in their alignment seed reuse one base, so only the first is run.
  std::map<std::string, bool> recipe_shares;
  for (const auto& r : m.recipes) {
    const Recipe rec = load_recipe(r, {"seed=" + std::to_string(m.seeds.front())});
    recipe_shares[r] = !rec.stages.empty() && rec.stages.front().share;
  }
  const auto base_of = [](const AblationCell& c) { return c.base_seed >= 0 ? c.base_seed : c.seed; };
  std::set<int64_t> bases_todo;
  for (int i : todo) bases_todo.insert(base_of(cells[static_cast<size_t>(i)]));
  std::map<int64_t, std::vector<const AblationCell*>> stage_cells;  // base -> cells that train it
  std::set<std::pair<int64_t, std::string>> seen;
  for (const auto& c : cells)
    if (recipe_shares[c.recipe] && bases_todo.count(base_of(c)) && seen.insert({base_of(c), c.stem}).second)
      stage_cells[base_of(c)].push_back(&c);

  std::string stages, cells_script, report;
  std::vector<int> stage_tasks;
  if (!stage_cells.empty()) {
    stages = rank_functions(o, L) + "case $task in\n";
    int task = 0;
    for (const auto& [base, list] : stage_cells) {
      stage_tasks.push_back(task);
      const std::string what = (list.front()->base_seed >= 0 ? "base" : "seed") + std::to_string(base);
      stages += "  " + std::to_string(task++) + ")  # " + what + "\n";
      for (const AblationCell* c : list) {
        const std::string dir = L.slurm + "/stages/" + c->stem + "/" + what;
        stages += "    ranks \"$logs/stages-" + what + ".r$restart.log\" " + words(train_command(*c, true, dir)) +
                  "\n    finish $? " + q(dir) + "\n";
      }
      stages += "    ;;\n";
    }
    stages += "  *) echo \"no stage task $task\" >&2; exit 64 ;;\nesac\n";
    stages = header(m, o, L, "stages", array_spec(stage_tasks, 0), true) +
             "# The cells' shared leading stages, once per base, into the stage cache; the cells reuse them.\n" + stages;
  }
  cells_script = rank_functions(o, L) + "case $task in\n";
  for (int i : todo) {
    const AblationCell& c = cells[static_cast<size_t>(i)];
    const std::string dir = fs::absolute(c.dir).lexically_normal().string();
    cells_script += "  " + std::to_string(i) + ")  # " + cell_name(c) + "\n    dir=" + q(dir) + "\n    ranks \"$logs/" +
                    c.stem + "-" + c.unit() + ".r$restart.log\" " + words(train_command(c, false, dir)) +
                    "\n    finish $? \"$dir\"\n    ;;\n";
  }
  cells_script += "  *) echo \"no cell $task\" >&2; exit 64 ;;\nesac\n";
  cells_script = header(m, o, L, "cells", array_spec(todo, o.max_parallel), true) +
                 "# One task per cell of the matrix (the task id is the cell's index, seeds outermost).\n" + cells_script;
  if (o.report)
    report = header(m, o, L, "report", "", false) + "set -uo pipefail\n" + q(L.exe) + " report " + q(L.out) + "\n";

  if (o.dry_run) {
    if (!stages.empty()) std::cout << "==> " << L.slurm << "/stages.sbatch\n" << stages << "\n";
    std::cout << "==> " << L.slurm << "/cells.sbatch\n" << cells_script << "\n";
    if (!report.empty()) std::cout << "==> " << L.slurm << "/report.sbatch\n" << report << "\n";
    std::cout << "(dry run: nothing written or submitted; " << todo.size() << " of " << cells.size() << " cells to run)"
              << std::endl;
    return 0;
  }
  fs::create_directories(L.logs);
  prepare_worlds(m);  // here, on the login node: the cells read them
  write_ablation_manifest(m, cells);
  auto put = [&](const std::string& name, const std::string& text) {
    const std::string p = L.slurm + "/" + name;
    write_file_atomic(p, text);
    fs::permissions(p, fs::perms::owner_exec | fs::perms::group_exec | fs::perms::others_exec, fs::perm_options::add);
    return p;
  };
  json sub = {{"time", utc_timestamp()}, {"matrix", m.path}};
  std::string stage_id, cells_id, report_id;
  if (!stages.empty()) stage_id = sbatch(put("stages.sbatch", stages), "");
  cells_id = sbatch(put("cells.sbatch", cells_script), stage_id.empty() ? "" : "afterok:" + stage_id);
  if (!report.empty()) report_id = sbatch(put("report.sbatch", report), "afterany:" + cells_id);
  json tasks = json::object();
  for (int i : todo) tasks[std::to_string(i)] = cell_name(cells[static_cast<size_t>(i)]);
  sub["stages"] = stage_id;
  sub["cells"] = cells_id;
  sub["report"] = report_id;
  sub["tasks"] = tasks;
  {
    std::ofstream out(L.slurm + "/jobs.jsonl", std::ios::app);
    out << sub.dump() << "\n";
  }
  std::cout << "submitted " << m.name << " to Slurm:\n";
  if (!stage_id.empty())
    std::cout << "  stages  job " << stage_id << " (" << stage_tasks.size() << " task(s): shared stages, one per base seed)\n";
  std::cout << "  cells   job " << cells_id << " (" << todo.size() << " task(s)" << (stage_id.empty() ? "" : ", after " + stage_id)
            << ")\n";
  if (!report_id.empty()) std::cout << "  report  job " << report_id << " (after every cell)\n";
  std::string ids = stage_id.empty() ? cells_id : stage_id + "," + cells_id;
  if (!report_id.empty()) ids += "," + report_id;
  std::cout << "watch: squeue -j " << ids << "   |   ethos ablate " << m.path << " --status\n"
            << "logs:  " << L.logs << "/ (one per cell and restart: <cell>-seed<k>.r<n>.log)" << std::endl;
  return 0;
}

int ablation_status(const AblationMatrix& m) {
  const auto cells = ablation_cells(m);
  const std::string slurm_dir = (fs::path(m.out) / "slurm").string();
  const auto sub = last_submission(slurm_dir);
  std::map<std::string, std::string> queue;  // cell -> squeue state
  if (sub) {
    const auto queued = squeue_states({sub->stages, sub->cells, sub->report});
    for (const auto& [id, st] : queued) {
      const auto us = id.find('_');
      if (us != std::string::npos && id.substr(0, us) == sub->cells) {
        const int task = std::atoi(id.c_str() + us + 1);
        if (sub->tasks.count(task)) queue[sub->tasks.at(task)] = "job " + id + " " + st;
      } else if (id.substr(0, id.find('_')) == sub->stages) {
        queue["(stages)"] = "job " + id + " " + st;
      } else if (id == sub->report) {
        queue["(report)"] = "job " + id + " " + st;
      }
    }
  }
  int done = 0;
  std::printf("%-24s %-10s %7s %7s %9s  %s\n", "cell", "state", "step", "starts", "preempted", "detail");
  for (const auto& c : cells) {
    const CellState st = cell_state(c.dir);
    done += st.state == "done";
    std::string detail = st.detail;
    if (auto it = queue.find(cell_name(c)); it != queue.end())
      detail = it->second + (detail.empty() ? "" : "; " + detail);
    std::printf("%-24s %-10s %7s %7d %9d  %s\n", cell_name(c).c_str(), st.state.c_str(),
                st.step < 0 ? "-" : std::to_string(st.step).c_str(), st.starts, st.preempted, detail.c_str());
  }
  for (const char* extra : {"(stages)", "(report)"})
    if (queue.count(extra)) std::printf("%-24s %s\n", extra, queue[extra].c_str());
  std::printf("%d of %zu cells done\n", done, cells.size());
  std::fflush(stdout);
  return done == static_cast<int>(cells.size()) ? 0 : 1;
}

}  // namespace ethos
