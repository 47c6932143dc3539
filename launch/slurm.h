// `ethos ablate MATRIX --slurm`: the matrix as Slurm jobs, written into <out>/slurm/ and submitted.
//   stages.sbatch  job array, one task per seed: the recipes' leading shared stages (pre-training),
//                  trained once per seed into the stage cache (`ethos train --shared-only`);
//   cells.sbatch   job array, one task per unfinished cell (throttled by --max-parallel), after
//                  the stages (afterok); each task srun's the ranks of one `ethos train`;
//   report.sbatch  `ethos report <out>` after every cell, whatever became of them (afterany).
// Every task srun's its ranks with --kill-on-bad-exit, exports MASTER_ADDR (the first host of the
// allocation) and MASTER_PORT (from the job id), waits through SIGTERM so the ranks can
// checkpoint, and requeues itself (`scontrol requeue ARRAYJOB_TASK`) when the run stopped on a
// signal (exit 75 or status.json "preempted") and has been restarted fewer than --max-restarts
// times; the requeued task resumes with resume=auto. Logs: <out>/slurm/logs/, one file per task
// and restart (<cell>.r<restart>.log) plus the batch scripts' own output.
// Submitting again skips finished cells and cells still queued or running under an earlier
// submission (<out>/slurm/jobs.jsonl), and resumes the rest.
#pragma once
#include <string>
#include <vector>

#include "launch/ablate.h"

namespace ethos {

struct SlurmOptions {
  std::string partition, account, qos;
  std::string time;          // sbatch --time (e.g. 04:00:00); empty: the partition's default
  int nodes = 1;
  int gpus_per_node = 0;     // 0: a CPU job
  int ntasks_per_node = 0;   // ranks per node; 0: gpus_per_node, or 1 without GPUs
  int cpus_per_task = 0;     // 0: not asked for
  int max_parallel = 0;      // array throttle (%K); 0: no limit
  int max_restarts = 3;      // requeues after preemption or a time limit, per task
  int signal_lead_s = 180;   // --signal=<sig>@<lead>: the time a checkpoint needs before the limit
  std::string signal = "USR2";
  std::vector<std::string> sbatch_args;  // extra #SBATCH lines, e.g. --constraint=a100
  bool dry_run = false;      // print the scripts, submit nothing
  bool report = true;
};

// Writes the scripts and submits them (or, dry_run, prints them). Returns the exit code.
int submit_slurm(const AblationMatrix& m, const SlurmOptions& o);

// Each cell's state (pending, running, done, failed with its error, preempted, stopped) with its
// last step and restarts, from the run directories, plus squeue's view where squeue answers.
// Returns 0 when every cell is done, 1 otherwise.
int ablation_status(const AblationMatrix& m);

}  // namespace ethos
