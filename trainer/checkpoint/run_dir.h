// What a run directory says about the process that writes it, besides its checkpoints and logs:
//   <run>/.lock           held (flock) by the one process writing the run; its text names the
//                         holder: host, pid, Slurm job. The kernel drops the lock when that
//                         process ends in any way (a SIGKILL too), so a stale file never blocks.
//   <run>/status.json     the run's state, rewritten atomically at each transition:
//                         running | done | preempted | failed, with the step, the error (failed),
//                         the signal (preempted) and the holder.
//   <run>/launches.jsonl  one line per start of the run (never rewound): time, host, pid, the
//                         Slurm job id, array job and task ids, node list and restart count.
// Rank 0 alone takes the lock and writes these; the other ranks of a job follow rank 0.
#pragma once
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

namespace ethos {

// The current time in UTC, "2026-12-02T14:07:15Z" (what status.json and launches.jsonl record).
std::string utc_timestamp();

// This process: host, pid, start time and, under Slurm, job id, array ids, node list, restarts.
nlohmann::json process_identity();

// An exclusive lock on a run directory, held for the life of the object.
class RunLock {
 public:
  // Throws Error naming the holder when another live process holds the lock.
  explicit RunLock(const std::string& run_dir);
  ~RunLock();
  RunLock(const RunLock&) = delete;
  RunLock& operator=(const RunLock&) = delete;

 private:
  int fd_ = -1;
};

// Who holds a run directory's lock now (null when nobody does: the run is not being written).
nlohmann::json run_lock_holder(const std::string& run_dir);

// status.json: {"state": ..., "step": ..., ...} written atomically; `extra` fields are merged in.
void write_run_status(const std::string& run_dir, const std::string& state, int64_t step,
                      const nlohmann::json& extra = nlohmann::json::object());
// The run's status.json, if there is a readable one.
std::optional<nlohmann::json> read_run_status(const std::string& run_dir);
// Appends this start to launches.jsonl.
void record_launch(const std::string& run_dir);

}  // namespace ethos
