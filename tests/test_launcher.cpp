// The local launcher with /bin/sh children: rank environment, whole prefixed lines, a failing
// or killed rank stops the others (and nothing survives), SIGKILL after the grace period,
// SIGTERM to the launcher reaches the ranks, bad options are Errors.
#include <torch/torch.h>

#include "catch.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "datasets/base/util.h"
#include "tests/helpers.h"
#include "launch/launcher.h"

using ethos_catch::Contains;
using namespace ethos;

namespace {

struct Launched {
  int rc = -1;
  std::string output;  // everything launch() wrote to its output fd
  double seconds = 0;
};

LaunchOptions sh_ranks(int nproc, const std::string& script) {
  LaunchOptions o;
  o.nproc = nproc;
  o.command = {"/bin/sh", "-c", script};
  o.kill_grace_seconds = 5;
  return o;
}

// Runs launch(o) with its output going to dir/out.txt.
Launched run_launch(LaunchOptions o, const std::string& dir) {
  std::string path = dir + "/out.txt";
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  CATCH_REQUIRE(fd >= 0);
  o.output_fd = fd;
  Launched l;
  auto t0 = std::chrono::steady_clock::now();
  l.rc = launch(o);
  l.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ::close(fd);
  l.output = read_file(path);
  return l;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

// Shell that writes this rank's pid ($$ after exec is the same process) to dir/pid<RANK>, atomically.
std::string write_pid(const std::string& dir, const std::string& pid = "$$") {
  return "echo " + pid + " > " + dir + "/pid$RANK.tmp && mv " + dir + "/pid$RANK.tmp " + dir + "/pid$RANK; ";
}

int read_pid(const std::string& dir, int rank) {
  return std::stoi(read_file(dir + "/pid" + std::to_string(rank)));
}

// Alive and not a zombie (a zombie whose parent died may linger where PID 1 does not reap).
bool alive(int pid) {
  if (::kill(pid, 0) != 0) return false;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return true;
  size_t close = line.rfind(')');
  return close == std::string::npos || close + 2 >= line.size() || line[close + 2] != 'Z';
}

}  // namespace

CATCH_TEST_CASE("launch gives every rank its environment and prefixes its output", "[launcher]") {
  std::string dir = test::fresh_dir("launcher_env");
  ::setenv("RANK", "99", 1);  // an inherited value must not leak into the ranks
  Launched l = run_launch(sh_ranks(3, "echo \"R=$RANK W=$WORLD_SIZE L=$LOCAL_RANK LW=$LOCAL_WORLD_SIZE "
                                      "A=$MASTER_ADDR P=$MASTER_PORT\"; echo \"err-$RANK\" >&2"),
                          dir);
  ::unsetenv("RANK");
  CATCH_INFO(l.output);
  CATCH_CHECK(l.rc == 0);
  std::smatch m;
  CATCH_REQUIRE(std::regex_search(l.output, m, std::regex(R"(\[rank 0\] R=0 .* P=(\d+))")));
  int port = std::stoi(m[1]);
  CATCH_CHECK(port > 0);
  CATCH_CHECK(port <= 65535);
  for (int r = 0; r < 3; ++r) {
    std::string rs = std::to_string(r);
    CATCH_CHECK_THAT(l.output, Contains("[rank " + rs + "] R=" + rs + " W=3 L=" + rs + " LW=3 A=127.0.0.1 P=" +
                                        std::to_string(port) + "\n"));
    CATCH_CHECK_THAT(l.output, Contains("[rank " + rs + "] err-" + rs + "\n"));
  }
  CATCH_CHECK(lines_of(l.output).size() == 6);

  LaunchOptions fixed = sh_ranks(2, "echo \"A=$MASTER_ADDR P=$MASTER_PORT\"");
  fixed.master_port = 29577;
  fixed.master_addr = "10.1.2.3";
  Launched f = run_launch(fixed, dir);
  CATCH_CHECK(f.rc == 0);
  CATCH_CHECK_THAT(f.output, Contains("[rank 1] A=10.1.2.3 P=29577\n"));
}

CATCH_TEST_CASE("launch forwards whole lines, and a last line without newline", "[launcher]") {
  std::string dir = test::fresh_dir("launcher_lines");
  const int kLines = 300;
  Launched l = run_launch(sh_ranks(3, "i=0; while [ $i -lt " + std::to_string(kLines) +
                                          " ]; do echo \"r$RANK-$i-abcdefghijklmnopqrstuvwxyz0123456789\"; "
                                          "i=$((i+1)); done; printf 'tail of %s without newline' $RANK"),
                          dir);
  CATCH_CHECK(l.rc == 0);
  std::regex line_re(R"(\[rank (\d)\] r(\d)-(\d+)-abcdefghijklmnopqrstuvwxyz0123456789)");
  std::map<int, int> next;  // rank -> the line number expected next
  int tails = 0, bad = 0;
  for (const auto& line : lines_of(l.output)) {
    std::smatch m;
    if (std::regex_match(line, m, line_re) && m[1] == m[2] && std::stoi(m[3]) == next[std::stoi(m[1])]) {
      ++next[std::stoi(m[1])];
    } else if (std::regex_match(line, std::regex(R"(\[rank (\d)\] tail of \1 without newline)"))) {
      ++tails;
    } else {
      CATCH_UNSCOPED_INFO("unexpected line: " << line);
      ++bad;
    }
  }
  CATCH_CHECK(bad == 0);
  CATCH_CHECK(tails == 3);
  for (int r = 0; r < 3; ++r) CATCH_CHECK(next[r] == kLines);
  CATCH_CHECK(l.output.back() == '\n');
}

CATCH_TEST_CASE("a rank exiting non-zero stops the others, and nothing survives", "[launcher]") {
  std::string dir = test::fresh_dir("launcher_exit3");
  // rank 0 fails once the others run; rank 1 is the shell itself, rank 2 a grandchild in its group
  std::string script = "if [ \"$RANK\" = 0 ]; then while [ ! -f " + dir + "/pid1 ] || [ ! -f " + dir +
                       "/pid2 ]; do sleep 0.02; done; exit 3; fi; "
                       "if [ \"$RANK\" = 1 ]; then " + write_pid(dir) + "exec sleep 30; fi; "
                       "sleep 30 & " + write_pid(dir, "$!") + "wait";
  Launched l = run_launch(sh_ranks(3, script), dir);
  CATCH_INFO(l.output);
  CATCH_CHECK(l.rc == 3);
  CATCH_CHECK(l.seconds < 4.0);
  CATCH_CHECK_THAT(l.output, Contains("[launch] rank 0 exited with status 3; stopping the other ranks\n"));
  int rank1 = read_pid(dir, 1), grandchild = read_pid(dir, 2);
  CATCH_CHECK_FALSE(alive(rank1));
  CATCH_CHECK(test::wait_until([&] { return !alive(grandchild); }, 2.0));
}

CATCH_TEST_CASE("a rank killed by a signal is reported as a signal", "[launcher]") {
  std::string dir = test::fresh_dir("launcher_kill9");
  Launched l = run_launch(sh_ranks(2, "if [ \"$RANK\" = 1 ]; then kill -9 $$; fi; exec sleep 30"), dir);
  CATCH_INFO(l.output);
  CATCH_CHECK(l.rc == 128 + 9);
  CATCH_CHECK(l.seconds < 4.0);
  CATCH_CHECK_THAT(l.output, Contains("[launch] rank 1 died (signal 9 SIGKILL); stopping the other ranks\n"));
  CATCH_CHECK_THAT(l.output, Contains("[launch] rank 0 died (signal 15 SIGTERM)\n"));
}

CATCH_TEST_CASE("a rank ignoring SIGTERM is killed after the grace period", "[launcher]") {
  std::string dir = test::fresh_dir("launcher_grace");
  LaunchOptions o = sh_ranks(2, "if [ \"$RANK\" = 0 ]; then while [ ! -f " + dir + "/pid1 ]; do sleep 0.02; done; "
                                "exit 1; fi; trap '' TERM; " + write_pid(dir) + "while true; do sleep 0.05; done");
  o.kill_grace_seconds = 0.5;
  Launched l = run_launch(o, dir);
  CATCH_INFO(l.output);
  CATCH_CHECK(l.rc == 1);
  CATCH_CHECK(l.seconds >= 0.5);  // the grace period was given
  CATCH_CHECK(l.seconds < 3.0);   // and then SIGKILL, tolerance for a loaded machine
  CATCH_CHECK_THAT(l.output, Contains("[launch] rank 1 died (signal 9 SIGKILL)\n"));
  CATCH_CHECK_FALSE(alive(read_pid(dir, 1)));
}

CATCH_TEST_CASE("SIGTERM to the launcher is forwarded to every rank", "[launcher]") {
  std::string dir = test::fresh_dir("launcher_sigterm");
  std::string script = "trap 'echo got-term > " + dir + "/marker$RANK; exit 0' TERM; " + write_pid(dir) +
                       "sleep 30 & wait";
  LaunchOptions o = sh_ranks(3, script);
  int out = ::open((dir + "/out.txt").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  CATCH_REQUIRE(out >= 0);
  o.output_fd = out;
  pid_t launcher = ::fork();
  CATCH_REQUIRE(launcher >= 0);
  if (launcher == 0) {  // the launcher process: no Catch code from here on
    int rc = 99;
    try {
      rc = launch(o);
    } catch (...) {
    }
    ::_exit(rc);
  }
  ::close(out);
  bool started = test::wait_until(
      [&] { return file_exists(dir + "/pid0") && file_exists(dir + "/pid1") && file_exists(dir + "/pid2"); }, 5.0);
  CATCH_CHECK(started);
  ::kill(launcher, SIGTERM);
  int rc = test::wait_exit(launcher);
  std::string output = read_file(dir + "/out.txt");
  CATCH_INFO(output);
  CATCH_CHECK(rc == 128 + SIGTERM);
  CATCH_CHECK_THAT(output, Contains("[launch] got SIGTERM; forwarding it to the ranks\n"));
  for (int r = 0; r < 3; ++r) {
    CATCH_CHECK(file_exists(dir + "/marker" + std::to_string(r)));
    if (started) CATCH_CHECK_FALSE(alive(read_pid(dir, r)));
  }
}

CATCH_TEST_CASE("launch rejects bad options before starting anything", "[launcher]") {
  LaunchOptions o = sh_ranks(0, "true");
  CATCH_REQUIRE_THROWS_WITH(launch(o), Contains("nproc=0 must be at least 1"));
  o = sh_ranks(1, "true");
  o.command.clear();
  CATCH_REQUIRE_THROWS_WITH(launch(o), Contains("no command to run"));
  o = sh_ranks(1, "true");
  o.master_port = 70000;
  CATCH_REQUIRE_THROWS_WITH(launch(o), Contains("master_port=70000") && Contains("0 to pick a free one"));
  o = sh_ranks(1, "true");
  o.command = {"/nonexistent/ethos", "train"};
  CATCH_REQUIRE_THROWS_WITH(launch(o), Contains("cannot run \"/nonexistent/ethos\"") && Contains("executable"));
  o.command = {"no-such-program-ethos-test"};
  CATCH_REQUIRE_THROWS_WITH(launch(o), Contains("\"no-such-program-ethos-test\" is not an executable on PATH"));
  o.command = {"sh", "-c", "exit 0"};  // found on PATH
  CATCH_CHECK(launch(o) == 0);
}
