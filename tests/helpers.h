// Shared test helpers.
#pragma once
#include <string>
#include <vector>

namespace ethos::test {

std::string source_dir();              // the repository root
std::string binary_dir();              // the build directory
std::string ethos_bin();               // path of the ethos binary
// A fresh, empty directory under the build dir's test-tmp/ (removed first if it exists).
std::string fresh_dir(const std::string& name);
// Runs a shell command; returns its exit status (or 128+signal) and captures stdout+stderr.
struct RunResult {
  int status = -1;
  std::string output;
};
RunResult run(const std::string& command);
// True when /usr/bin/python3 can import torch (reference scripts are run only then).
bool python_torch_available();
void write_text(const std::string& path, const std::string& text);

}  // namespace ethos::test
