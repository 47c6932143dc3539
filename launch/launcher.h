// Local multi-process launcher (POSIX): starts nproc copies of a command as ranks of one job.
//  - each child gets RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE (= nproc), MASTER_ADDR,
//    MASTER_PORT (a free port when master_port is 0) on top of our environment;
//  - each child's stdout+stderr is forwarded line by line to output_fd as "[rank N] line"
//    (whole lines, one write each; a last line without newline is forwarded too);
//  - each child runs in its own process group (and, on Linux, gets SIGTERM if we die), so
//    signalling a rank reaches everything it started;
//  - SIGINT/SIGTERM received by the launcher are forwarded to every rank;
//  - when a rank exits non-zero or is killed by a signal, the others get SIGTERM, then SIGKILL
//    after kill_grace_seconds, and the failure is reported ("[launch] rank 1 died (signal 9
//    SIGKILL); stopping the other ranks" / "[launch] rank 0 exited with status 3; ...").
// Every child is reaped before launch() returns.
#pragma once
#include <string>
#include <vector>

namespace ethos {

struct LaunchOptions {
  int nproc = 1;
  std::vector<std::string> command;  // argv of the child, e.g. {"/path/ethos", "train", "r.yaml"}
  std::string master_addr = "127.0.0.1";
  int master_port = 0;  // 0: pick a free port
  double kill_grace_seconds = 10;
  int output_fd = 1;  // where the prefixed lines and [launch] messages go
};

// Returns 0 when every rank exits 0; otherwise the first failing rank's exit status (128 + signal
// number if it was killed), or 128 + signal when the launcher itself was interrupted.
// Bad options or a command that cannot be run: ethos::Error before any rank starts.
int launch(const LaunchOptions& o);

}  // namespace ethos
