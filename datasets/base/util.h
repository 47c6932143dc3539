// Small shared utilities: the error type every layer throws, content hashing, file I/O.
#pragma once
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace ethos {

// Every user-facing failure is an ethos::Error whose message says what happened,
// where (file:line, key path, rank) and what to do about it. main() prints it and exits 1.
struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// 64-bit FNV-1a, incremental. Used for content hashes (config, data, tokenizer,
// reference caches): change detection, not cryptography.
class Hasher {
 public:
  Hasher& update(const void* data, size_t n);
  Hasher& update(std::string_view s) { return update(s.data(), s.size()); }
  uint64_t value() const { return h_; }
  std::string hex() const;  // 16 lowercase hex digits

 private:
  uint64_t h_ = 0xcbf29ce484222325ULL;
};
std::string hash_bytes(std::string_view bytes);    // hex
std::string hash_file(const std::string& path);    // hex; throws Error if unreadable

std::string read_file(const std::string& path);    // whole file; Error names the path if missing
// Writes to path.tmp.<pid>, fsyncs, renames over path, fsyncs the directory.
void write_file_atomic(const std::string& path, std::string_view bytes);
void fsync_path(const std::string& path);          // file or directory
bool file_exists(const std::string& path);

std::string trim(std::string_view s);
std::vector<std::string> split(std::string_view s, char sep);
// Levenshtein distance, for "did you mean" suggestions.
size_t edit_distance(std::string_view a, std::string_view b);
// The candidate nearest to `key`, or "" when nothing is close enough to suggest.
std::string nearest(std::string_view key, const std::vector<std::string>& candidates);

}  // namespace ethos
