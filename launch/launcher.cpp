// Local multi-process launcher: fork/exec of nproc ranks with the torchrun-style environment,
// one pipe per rank read with poll(), signals turned into bytes on a self-pipe so the poll
// loop handles them, and a stop sequence (SIGTERM, grace period, SIGKILL) when a rank fails.
#include "launch/launcher.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "datasets/base/util.h"
#include "trainer/preempt.h"

extern char** environ;

namespace ethos {
namespace {

using Clock = std::chrono::steady_clock;

constexpr size_t kMaxLine = 64 * 1024;  // a longer run without '\n' is forwarded in pieces
constexpr double kDrainSeconds = 2.0;   // output still readable after every rank has exited

// ---- signals -------------------------------------------------------------------------------

int g_signal_pipe = -1;  // write end; the handler puts one byte per signal there

void on_signal(int sig) {
  int saved = errno;
  unsigned char byte = static_cast<unsigned char>(sig);
  ssize_t ignored = ::write(g_signal_pipe, &byte, 1);  // full pipe: the signal is already pending there
  (void)ignored;
  errno = saved;
}

// Routes SIGINT, SIGTERM and SIGCHLD to a non-blocking self-pipe while alive; restores the
// previous handlers on destruction.
class SignalPipe {
 public:
  SignalPipe() {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0)
      throw Error(std::string("launch: cannot create a pipe: ") + std::strerror(errno));
    read_fd_ = fds[0];
    g_signal_pipe = fds[1];
    struct sigaction sa {};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
    for (size_t i = 0; i < kSignals.size(); ++i) ::sigaction(kSignals[i], &sa, &saved_[i]);
  }
  ~SignalPipe() {
    for (size_t i = 0; i < kSignals.size(); ++i) ::sigaction(kSignals[i], &saved_[i], nullptr);
    ::close(g_signal_pipe);
    ::close(read_fd_);
    g_signal_pipe = -1;
  }
  SignalPipe(const SignalPipe&) = delete;
  SignalPipe& operator=(const SignalPipe&) = delete;

  int fd() const { return read_fd_; }
  std::vector<int> drain() const {  // the signals received since the last call
    std::vector<int> sigs;
    unsigned char buf[64];
    ssize_t n;
    while ((n = ::read(read_fd_, buf, sizeof buf)) > 0) sigs.insert(sigs.end(), buf, buf + n);
    return sigs;
  }

 private:
  static constexpr std::array<int, 3> kSignals = {SIGINT, SIGTERM, SIGCHLD};
  int read_fd_ = -1;
  struct sigaction saved_[3];
};

const char* signal_name(int sig) {
  switch (sig) {
    case SIGHUP: return "SIGHUP";
    case SIGINT: return "SIGINT";
    case SIGQUIT: return "SIGQUIT";
    case SIGILL: return "SIGILL";
    case SIGTRAP: return "SIGTRAP";
    case SIGABRT: return "SIGABRT";
    case SIGBUS: return "SIGBUS";
    case SIGFPE: return "SIGFPE";
    case SIGKILL: return "SIGKILL";
    case SIGUSR1: return "SIGUSR1";
    case SIGSEGV: return "SIGSEGV";
    case SIGUSR2: return "SIGUSR2";
    case SIGPIPE: return "SIGPIPE";
    case SIGALRM: return "SIGALRM";
    case SIGTERM: return "SIGTERM";
    case SIGXCPU: return "SIGXCPU";
    default: return "SIG?";
  }
}

// "exited with status 3" | "died (signal 9 SIGKILL)", from a waitpid status.
std::string describe(int status) {
  if (WIFSIGNALED(status)) {
    int sig = WTERMSIG(status);
    return "died (signal " + std::to_string(sig) + " " + signal_name(sig) + ")";
  }
  return "exited with status " + std::to_string(WEXITSTATUS(status));
}

// The launcher's return value for a failed rank: its exit status, or 128 + signal.
int exit_code(int status) { return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status); }

// ---- setup ---------------------------------------------------------------------------------

void write_all(int fd, const std::string& s) {
  size_t done = 0;
  while (done < s.size()) {
    ssize_t n = ::write(fd, s.data() + done, s.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // output closed: nothing sensible left to do with the text
    done += static_cast<size_t>(n);
  }
}

// argv[0] as execve needs it: a path as given when it holds a '/', else searched on PATH.
std::string resolve_executable(const std::string& name) {
  if (name.find('/') != std::string::npos) {
    if (::access(name.c_str(), X_OK) == 0) return name;
    throw Error("launch: cannot run \"" + name + "\": " + std::strerror(errno) +
                "; give the path of an executable file");
  }
  const char* path = std::getenv("PATH");
  for (const std::string& dir : split(path ? path : "/usr/bin:/bin", ':')) {
    std::string candidate = (dir.empty() ? "." : dir) + "/" + name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  throw Error("launch: \"" + name + "\" is not an executable on PATH; give its full path");
}

// A TCP port that was free a moment ago (the kernel's pick for port 0).
int pick_free_port() {
  int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s < 0) throw Error(std::string("launch: cannot open a socket to pick a port: ") + std::strerror(errno));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_ANY);
  socklen_t len = sizeof addr;
  bool ok = ::bind(s, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
            ::getsockname(s, reinterpret_cast<sockaddr*>(&addr), &len) == 0;
  int err = errno;
  ::close(s);
  if (!ok)
    throw Error(std::string("launch: cannot pick a free port: ") + std::strerror(err) + "; pass master_port yourself");
  return ntohs(addr.sin_port);
}

void check_options(const LaunchOptions& o) {
  if (o.nproc < 1)
    throw Error("launch: nproc=" + std::to_string(o.nproc) + " must be at least 1: give the number of ranks to start");
  if (o.command.empty() || o.command[0].empty())
    throw Error("launch: no command to run: give the program and its arguments, e.g. ethos train recipe.yaml");
  if (o.master_port < 0 || o.master_port > 65535)
    throw Error("launch: master_port=" + std::to_string(o.master_port) +
                " is not a TCP port: use 1..65535, or 0 to pick a free one");
  if (o.master_addr.empty()) throw Error("launch: master_addr is empty: use 127.0.0.1 for a single machine");
  if (!(o.kill_grace_seconds >= 0))
    throw Error("launch: kill_grace_seconds=" + std::to_string(o.kill_grace_seconds) + " must be 0 or more");
}

// Our environment without the rank variables, then the rank variables of `rank`.
std::vector<std::string> rank_environment(const LaunchOptions& o, int port, int rank) {
  const std::vector<std::string> names = {"RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR",
                                          "MASTER_PORT"};
  std::vector<std::string> env;
  for (char** e = environ; *e; ++e) {
    std::string entry(*e);
    std::string name = entry.substr(0, entry.find('='));
    bool ours = false;
    for (const auto& n : names) ours = ours || n == name;
    if (!ours) env.push_back(entry);
  }
  env.push_back("RANK=" + std::to_string(rank));
  env.push_back("WORLD_SIZE=" + std::to_string(o.nproc));
  env.push_back("LOCAL_RANK=" + std::to_string(rank));
  env.push_back("LOCAL_WORLD_SIZE=" + std::to_string(o.nproc));
  env.push_back("MASTER_ADDR=" + o.master_addr);
  env.push_back("MASTER_PORT=" + std::to_string(port));
  return env;
}

std::vector<char*> c_strings(std::vector<std::string>& v) {
  std::vector<char*> out;
  for (auto& s : v) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

// ---- the running job -----------------------------------------------------------------------

struct Rank {
  int index = 0;
  pid_t pid = -1;            // also its process group id
  int fd = -1;               // read end of its stdout+stderr pipe; -1 once closed
  std::string pending;       // output after the last '\n'
  std::optional<int> status; // waitpid status once reaped
};

class Job {
 public:
  Job(const LaunchOptions& o, const SignalPipe& signals) : o_(o), signals_(signals) {}
  ~Job() {  // only has work to do when start() threw half-way
    if (all_reaped()) return;
    kill_all(SIGKILL);
    reap_blocking();
  }

  void start() {
    std::string path = resolve_executable(o_.command[0]);
    int port = o_.master_port != 0 ? o_.master_port : pick_free_port();
    for (int r = 0; r < o_.nproc; ++r) start_rank(r, path, o_.command, rank_environment(o_, port, r));
  }

  int run() {
    while (!finished()) {
      poll_once();
      for (int sig : signals_.drain())
        if (sig == SIGINT || sig == SIGTERM) on_interrupt(sig);
      reap();
      if (stop_deadline_ && Clock::now() >= *stop_deadline_ && !killed_) {
        kill_all(SIGKILL);
        killed_ = true;
      }
      if (all_reaped() && !drain_deadline_) drain_deadline_ = Clock::now() + seconds(kDrainSeconds);
    }
    for (auto& r : ranks_) close_output(r);
    return result_.value_or(0);
  }

 private:
  static Clock::duration seconds(double s) {
    return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
  }

  void start_rank(int index, const std::string& path, std::vector<std::string> args, std::vector<std::string> env) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0)
      throw Error(std::string("launch: cannot create a pipe for rank ") + std::to_string(index) + ": " +
                  std::strerror(errno));
    std::vector<char*> argv = c_strings(args), envp = c_strings(env);
    std::string exec_failed = "[launch] cannot execute " + path + "\n";
    pid_t parent = ::getpid();
    // Signals stay blocked across fork until the child has dropped our handlers: otherwise a
    // SIGTERM for the child could run on_signal() there and look like one sent to us.
    sigset_t all, saved_mask;
    sigfillset(&all);
    ::pthread_sigmask(SIG_BLOCK, &all, &saved_mask);
    pid_t pid = ::fork();
    if (pid == 0) {  // child: async-signal-safe calls only until execve
      for (int sig : {SIGINT, SIGTERM, SIGCHLD, SIGPIPE}) ::signal(sig, SIG_DFL);
      ::setpgid(0, 0);
#ifdef __linux__
      ::prctl(PR_SET_PDEATHSIG, SIGTERM);
      if (::getppid() != parent) ::_exit(1);
#endif
      ::sigprocmask(SIG_SETMASK, &saved_mask, nullptr);
      ::dup2(fds[1], 1);
      ::dup2(fds[1], 2);
      ::execve(path.c_str(), argv.data(), envp.data());
      ssize_t ignored = ::write(2, exec_failed.data(), exec_failed.size());
      (void)ignored;
      ::_exit(127);
    }
    int fork_errno = errno;
    ::pthread_sigmask(SIG_SETMASK, &saved_mask, nullptr);
    ::close(fds[1]);
    if (pid < 0) {
      ::close(fds[0]);
      throw Error("launch: cannot start rank " + std::to_string(index) + ": " + std::strerror(fork_errno));
    }
    ::setpgid(pid, pid);  // also here, so signalling the group works before the child gets to it
    Rank r;
    r.index = index;
    r.pid = pid;
    r.fd = fds[0];
    ranks_.push_back(std::move(r));
  }

  bool all_reaped() const {
    for (const auto& r : ranks_)
      if (!r.status) return false;
    return true;
  }

  bool finished() const {
    if (!all_reaped()) return false;
    if (drain_deadline_ && Clock::now() >= *drain_deadline_) return true;
    for (const auto& r : ranks_)
      if (r.fd >= 0) return false;
    return true;
  }

  // Waits for output, a signal or the next deadline; forwards whatever output arrived.
  void poll_once() {
    std::vector<pollfd> fds{{signals_.fd(), POLLIN, 0}};
    std::vector<Rank*> owners{nullptr};
    for (auto& r : ranks_)
      if (r.fd >= 0) {
        fds.push_back({r.fd, POLLIN, 0});
        owners.push_back(&r);
      }
    int timeout_ms = -1;
    auto deadline = drain_deadline_ ? drain_deadline_ : (killed_ ? std::nullopt : stop_deadline_);
    if (deadline) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(*deadline - Clock::now()).count();
      timeout_ms = static_cast<int>(std::max<long long>(0, left) + 1);
    }
    if (::poll(fds.data(), fds.size(), timeout_ms) <= 0) return;  // timeout or EINTR: the caller re-checks
    for (size_t i = 1; i < fds.size(); ++i)
      if (fds[i].revents != 0) read_output(*owners[i]);
  }

  void read_output(Rank& r) {
    char buf[65536];
    ssize_t n = ::read(r.fd, buf, sizeof buf);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) return;
    if (n <= 0) {
      close_output(r);
      return;
    }
    r.pending.append(buf, static_cast<size_t>(n));
    size_t start = 0, nl;
    while ((nl = r.pending.find('\n', start)) != std::string::npos) {
      emit(r, r.pending.substr(start, nl - start));
      start = nl + 1;
    }
    r.pending.erase(0, start);
    if (r.pending.size() >= kMaxLine) {
      emit(r, r.pending);
      r.pending.clear();
    }
  }

  // Forwards a last partial line and closes the pipe.
  void close_output(Rank& r) {
    if (r.fd < 0) return;
    if (!r.pending.empty()) emit(r, r.pending);
    r.pending.clear();
    ::close(r.fd);
    r.fd = -1;
  }

  void emit(const Rank& r, const std::string& line) {
    write_all(o_.output_fd, "[rank " + std::to_string(r.index) + "] " + line + "\n");
  }
  void say(const std::string& message) { write_all(o_.output_fd, "[launch] " + message + "\n"); }

  void reap() {
    for (auto& r : ranks_) {
      if (r.status) continue;
      int st = 0;
      pid_t got = ::waitpid(r.pid, &st, WNOHANG);
      if (got != r.pid) continue;
      r.status = st;
      ::kill(-r.pid, SIGKILL);  // what the rank left in its group (an id in use as a group id is not reused)
      bool failed = WIFSIGNALED(st) || WEXITSTATUS(st) != 0;
      if (!failed) continue;
      if (stopping()) {
        say("rank " + std::to_string(r.index) + " " + describe(st));
        // Ranks that checkpointed on the forwarded signal and left with the preemption code:
        // the job stopped as asked and resumes, which is what the launcher reports too.
        if (interrupted_ && WIFEXITED(st) && WEXITSTATUS(st) == kExitPreempted) result_ = kExitPreempted;
        continue;
      }
      say("rank " + std::to_string(r.index) + " " + describe(st) + "; stopping the other ranks");
      result_ = exit_code(st);
      begin_stop(SIGTERM);
    }
  }

  void on_interrupt(int sig) {
    if (stopping()) {  // asked again while stopping: no more grace
      say(std::string("got ") + signal_name(sig) + " again; killing the ranks");
      kill_all(SIGKILL);
      killed_ = true;
      return;
    }
    say(std::string("got ") + signal_name(sig) + "; forwarding it to the ranks");
    result_ = 128 + sig;
    interrupted_ = true;
    begin_stop(sig);
  }

  bool stopping() const { return stop_deadline_.has_value(); }

  void begin_stop(int sig) {
    kill_all(sig);
    stop_deadline_ = Clock::now() + seconds(o_.kill_grace_seconds);
  }

  // Signals the process group of every rank not yet reaped.
  void kill_all(int sig) {
    for (const auto& r : ranks_)
      if (!r.status) ::kill(-r.pid, sig);
  }

  void reap_blocking() {
    for (auto& r : ranks_) {
      int st = 0;
      while (!r.status && ::waitpid(r.pid, &st, 0) < 0 && errno == EINTR) {
      }
      if (!r.status) r.status = st;
      close_output(r);
    }
  }

  const LaunchOptions& o_;
  const SignalPipe& signals_;
  std::vector<Rank> ranks_;
  std::optional<int> result_;
  bool interrupted_ = false;  // the launcher itself was signalled and forwarded it
  std::optional<Clock::time_point> stop_deadline_;   // SIGKILL for the ranks still running then
  std::optional<Clock::time_point> drain_deadline_;  // stop reading output then
  bool killed_ = false;
};

}  // namespace

int launch(const LaunchOptions& o) {
  check_options(o);
  SignalPipe signals;
  Job job(o, signals);
  job.start();
  return job.run();
}

}  // namespace ethos
