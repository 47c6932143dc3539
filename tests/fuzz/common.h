// Shared by the libFuzzer targets (tests/fuzz/README.md). A target feeds the fuzzer's bytes to
// one reader of user files; an ethos::Error is the expected answer to bad input, anything else
// (another exception escaping, a crash, a sanitizer report, a leak, a hang) is a finding.
#pragma once
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "datasets/base/error.h"

namespace ethos::fuzz {

// The input as text, cut into parts at lines that read "----" (a recipe and the file it
// includes, a suite YAML and its items): seed files are readable, mutations still cross parts.
inline std::vector<std::string> parts(const uint8_t* data, size_t size, size_t max_parts) {
  std::vector<std::string> out(1);
  const std::string text(reinterpret_cast<const char*>(data), size);
  size_t at = 0;
  while (at <= text.size()) {
    const size_t nl = text.find('\n', at);
    const std::string line = text.substr(at, nl == std::string::npos ? std::string::npos : nl - at + 1);
    if ((line == "----\n" || line == "----") && out.size() < max_parts) out.emplace_back();
    else out.back() += line;
    if (nl == std::string::npos) break;
    at = nl + 1;
  }
  out.resize(max_parts);
  return out;
}

// A private scratch directory for this process (fuzzers run several processes side by side).
inline const std::string& scratch() {
  static const std::string dir = [] {
    const char* base = std::getenv("TMPDIR");
    std::string d = std::string(base && *base ? base : "/tmp") + "/ethos-fuzz." + std::to_string(::getpid());
    std::filesystem::create_directories(d);
    return d;
  }();
  return dir;
}

inline std::string write(const std::string& name, const std::string& text) {
  const std::string path = scratch() + "/" + name;
  std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
  return path;
}

// Runs f; an ethos::Error is a clean refusal. Anything else propagates and the fuzzer reports it.
template <class F>
void expect_clean(F&& f) {
  try {
    f();
  } catch (const ethos::Error&) {
  }
}

}  // namespace ethos::fuzz
