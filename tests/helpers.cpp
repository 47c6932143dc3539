#include "tests/helpers.h"

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>
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

void write_text(const std::string& path, const std::string& text) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream(path, std::ios::binary) << text;
}

}  // namespace ethos::test
