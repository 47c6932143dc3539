#include "tests/helpers.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include <array>
#include <cstdio>
#include <filesystem>
#include <stdexcept>
#include <fstream>

namespace ethos::test {

std::string source_dir() { return ETHOS_SOURCE_DIR; }
std::string binary_dir() { return ETHOS_BINARY_DIR; }
std::string ethos_bin() { return ETHOS_BIN; }

std::string fresh_dir(const std::string& name) {
  namespace fs = std::filesystem;
  fs::path p = fs::path(binary_dir()) / "test-tmp" / name;
  fs::remove_all(p);
  fs::create_directories(p);
  return p.string();
}

RunResult run(const std::string& command) {
  RunResult r;
  std::string cmd = command + " 2>&1";
  FILE* pipe = ::popen(cmd.c_str(), "r");
  if (!pipe) return r;
  std::array<char, 4096> buf{};
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), pipe)) > 0) r.output.append(buf.data(), n);
  int st = ::pclose(pipe);
  if (WIFEXITED(st)) r.status = WEXITSTATUS(st);
  else if (WIFSIGNALED(st)) r.status = 128 + WTERMSIG(st);
  return r;
}

bool python_torch_available() {
  static int cached = -1;
  if (cached < 0) cached = run("/usr/bin/python3 -c 'import torch'").status == 0 ? 1 : 0;
  return cached == 1;
}

const std::string& bpe_reference_dir() {
  static const std::string dir = [] {
    const std::string d = binary_dir() + "/test-tmp/bpe_reference";
    const auto r = run(source_dir() + "/tests/reference/bpe_fixtures.sh " + d + " 2>&1");
    if (r.status != 0) throw std::runtime_error("tests/reference/bpe_fixtures.sh failed:\n" + r.output);
    return d;
  }();
  return dir;
}

void sleep_ms(int ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }

int spawn(const std::vector<std::string>& argv, const std::vector<std::string>& env, const std::string& log_path) {
  std::vector<std::string> envs;
  for (char** e = environ; *e; ++e) envs.emplace_back(*e);
  envs.insert(envs.end(), env.begin(), env.end());
  std::vector<char*> cargv, cenv;
  for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  for (const auto& e : envs) cenv.push_back(const_cast<char*>(e.c_str()));
  cenv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  pid_t pid = -1;
  int rc = posix_spawn(&pid, cargv[0], &fa, nullptr, cargv.data(), cenv.data());
  posix_spawn_file_actions_destroy(&fa);
  return rc == 0 ? pid : -1;
}

int wait_exit(int pid) {
  int st = 0;
  if (::waitpid(pid, &st, 0) < 0) return -1;
  if (WIFEXITED(st)) return WEXITSTATUS(st);
  if (WIFSIGNALED(st)) return 128 + WTERMSIG(st);
  return -1;
}

void write_text(const std::string& path, const std::string& text) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream(path, std::ios::binary) << text;
}

}  // namespace ethos::test
