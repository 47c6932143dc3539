// eval.async: a checkpoint is scored by a child process (`ethos eval-checkpoint`, the same hooks
// as in-process) while training goes on. At most one child runs; the trainer waits for it before
// it writes the next checkpoint, so the only checkpoint that can lack its eval is the newest one,
// which is the one a resumed run evaluates first (trainer.cpp). The child dies with its parent
// (PR_SET_PDEATHSIG), ignores the stop signals (the parent decides when to stop and waits for it),
// and holds none of the parent's descriptors beyond stdin/stdout/stderr.
#pragma once
#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace ethos {

class AsyncEval {
 public:
  struct Done {
    int64_t step;
    double seconds;  // from submit to the child's exit
  };
  // `argv_prefix`: the executable and the subcommand; submit() appends the checkpoint's arguments.
  explicit AsyncEval(std::vector<std::string> argv_prefix) : prefix_(std::move(argv_prefix)) {}
  AsyncEval(const AsyncEval&) = delete;
  AsyncEval& operator=(const AsyncEval&) = delete;
  ~AsyncEval();  // kills and reaps a child still running (the run is failing)

  // Starts the child for one checkpoint; a previous child must have been collected (wait()).
  void submit(int64_t step, const std::vector<std::string>& args);
  bool busy() const { return pid_ > 0; }
  int64_t step() const { return step_; }
  // Collects a finished child without blocking; nullopt while it runs or when none does.
  std::optional<Done> poll();
  // Blocks until the child exits; nullopt when none runs. Both throw Error when it failed.
  std::optional<Done> wait();

 private:
  std::optional<Done> reap(int status);
  std::vector<std::string> prefix_;
  pid_t pid_ = -1;
  int64_t step_ = -1;
  double started_ = 0;
};

}  // namespace ethos
