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
// tests/reference/bpe_fixtures.sh's output, written once per build directory: gpt2/tokenizer.json,
// llama3/tokenizer.json (+ tokenizer_config.json), chatml/tokenizer.json (GPT-2's with
// <|im_start|> and <|im_end|> added) and cases.json. Throws when Node.js or npm fail.
const std::string& bpe_reference_dir();
void sleep_ms(int ms);
// Starts argv[0] with extra environment entries ("K=V"), stdout+stderr to log_path. Returns the pid.
int spawn(const std::vector<std::string>& argv, const std::vector<std::string>& env, const std::string& log_path);
// Waits for pid; returns its exit status, or 128+signal.
int wait_exit(int pid);
// Polls every 5 ms until pred() or timeout_s passes; returns pred()'s last value.
template <class F>
bool wait_until(F pred, double timeout_s);
void write_text(const std::string& path, const std::string& text);

template <class F>
bool wait_until(F pred, double timeout_s) {
  for (double waited = 0; waited < timeout_s; waited += 0.005) {
    if (pred()) return true;
    sleep_ms(5);
  }
  return pred();
}

}  // namespace ethos::test
