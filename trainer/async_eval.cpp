#include "trainer/async_eval.h"

#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <iostream>

#include "datasets/base/util.h"

namespace ethos {
namespace {

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Between fork and exec only async-signal-safe calls: raw syscalls, no allocation.
[[noreturn]] void exec_child(pid_t parent, char* const* argv) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);     // dies with the trainer (a SIGKILL'd run leaves no orphan writing eval.jsonl)
  if (getppid() != parent) _exit(127);  // the trainer died before the line above
  struct sigaction ignore {};
  ignore.sa_handler = SIG_IGN;
  for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2}) sigaction(sig, &ignore, nullptr);  // the trainer stops, then waits
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  // Nothing of the trainer's beyond stdio: not its run lock, sockets or open logs.
#ifdef SYS_close_range
  if (syscall(SYS_close_range, 3U, ~0U, 0U) != 0)
#endif
    for (long fd = 3, n = sysconf(_SC_OPEN_MAX); fd < (n > 0 ? n : 1024); ++fd) close(static_cast<int>(fd));
  execv(argv[0], argv);
  static const char msg[] = "[ethos] eval.async: cannot execute the eval process\n";
  ssize_t ignored = write(STDERR_FILENO, msg, sizeof msg - 1);
  (void)ignored;
  _exit(127);
}

}  // namespace

AsyncEval::~AsyncEval() {
  if (pid_ <= 0) return;
  kill(pid_, SIGKILL);
  int status = 0;
  while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
}

void AsyncEval::submit(int64_t step, const std::vector<std::string>& args) {
  if (pid_ > 0)
    throw Error("eval.async: step " + std::to_string(step) + " submitted while step " + std::to_string(step_) +
                "'s eval still runs (internal: the trainer collects one before it writes the next checkpoint)");
  std::vector<std::string> all = prefix_;
  all.insert(all.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : all) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::cout.flush();
  std::cerr.flush();
  std::fflush(nullptr);
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) throw Error("eval.async: cannot start the eval process (fork: " + std::string(std::strerror(errno)) +
                           "); set eval.async: false to evaluate in-process");
  if (pid == 0) exec_child(parent, argv.data());
  pid_ = pid;
  step_ = step;
  started_ = now_s();
}

std::optional<AsyncEval::Done> AsyncEval::reap(int status) {
  const pid_t pid = pid_;
  pid_ = -1;
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return Done{step_, now_s() - started_};
  const std::string how = WIFEXITED(status) ? "exited with code " + std::to_string(WEXITSTATUS(status))
                                            : "was killed by signal " + std::to_string(WTERMSIG(status));
  throw Error("eval.async: the eval of step " + std::to_string(step_) + " (process " + std::to_string(pid) + ") " + how +
              "; its messages are above. The checkpoint is kept without its eval: fix the cause and run the same "
              "command again (the resumed run evaluates it first), or set eval.async: false to evaluate in-process");
}

std::optional<AsyncEval::Done> AsyncEval::poll() {
  if (pid_ <= 0) return std::nullopt;
  int status = 0;
  const pid_t r = waitpid(pid_, &status, WNOHANG);
  if (r == 0 || (r < 0 && errno == EINTR)) return std::nullopt;
  if (r < 0) throw Error("eval.async: waiting for the eval of step " + std::to_string(step_) + ": " + std::strerror(errno));
  return reap(status);
}

std::optional<AsyncEval::Done> AsyncEval::wait() {
  if (pid_ <= 0) return std::nullopt;
  int status = 0;
  pid_t r;
  while ((r = waitpid(pid_, &status, 0)) < 0 && errno == EINTR) {
  }
  if (r < 0) throw Error("eval.async: waiting for the eval of step " + std::to_string(step_) + ": " + std::strerror(errno));
  return reap(status);
}

}  // namespace ethos
