// Preemption and time limits. SIGTERM (what a scheduler sends before it kills a job) and a
// warning signal (the recipe's preempt_signal, default SIGUSR2; Slurm sends it ahead of the time
// limit with `--signal=USR2@SECONDS`) do not stop the process at once: they set a flag that the
// training loop reads at its next step boundary. There the ranks agree (one sum over ranks),
// rank 0 writes a checkpoint (skipped when the step was just saved), and every rank leaves with
// exit code kExitPreempted; `resume: auto` then continues exactly where it stopped. A second
// SIGTERM kills at once (the default action), for a user who means it.
#pragma once
#include <string>

#include "datasets/base/error.h"

namespace ethos {

constexpr int kExitPreempted = 75;  // EX_TEMPFAIL: stopped on request, a checkpoint holds the state

// "USR2", "SIGUSR2", "usr2" -> SIGUSR2; "none" -> 0. Error for anything else (names the choices).
int parse_stop_signal(const std::string& name, const std::string& where);
std::string signal_name(int sig);  // SIGUSR2 -> "SIGUSR2"

// Catches SIGTERM and, when warning_signal != 0, that signal too. Safe to call again (adds).
void install_stop_handlers(int warning_signal);
// The signal that asked this process to stop (0: none yet).
int stop_requested();
void clear_stop_request();  // tests; a run that resumes in the same process

// Thrown by train() after the preemption checkpoint is written.
class Preempted : public Error {
 public:
  Preempted(const std::string& what, int sig, long long step) : Error(what), signal(sig), step(step) {}
  int signal;
  long long step;
};

}  // namespace ethos
