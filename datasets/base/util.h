// Small shared utilities of every layer: content hashing, file I/O, text helpers (and, through
// error.h, the error type every layer throws).
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "datasets/base/error.h"

namespace ethos {

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

// "xxh3:<16 hex>": XXH3-64 of a file's bytes, read in 1 MiB pieces (tens of GB/s: cheap next to
// writing the file). Detects flipped bits and damaged copies; not a cryptographic hash.
std::string checksum_file(const std::string& path);
std::string checksum_bytes(std::string_view bytes);  // the same, of bytes in memory

std::string read_file(const std::string& path);    // whole file; Error names the path if missing
// "<host>.<pid>.<n>": a temporary-name suffix no other writer uses, on this host or another
// sharing the file system (two processes computing the same cache entry never share a temp file).
std::string unique_suffix();
// Writes to path.tmp.<unique_suffix()>, fsyncs, renames over path, fsyncs the directory: a reader
// sees the old file or the new one, never half of one.
void write_file_atomic(const std::string& path, std::string_view bytes);
void fsync_path(const std::string& path);          // file or directory
bool file_exists(const std::string& path);

std::string trim(std::string_view s);
std::vector<std::string> split(std::string_view s, char sep);
std::string join(const std::vector<std::string>& items, std::string_view sep = ", ");
bool ends_with(std::string_view s, std::string_view suffix);
// Levenshtein distance, for "did you mean" suggestions.
size_t edit_distance(std::string_view a, std::string_view b);
// The candidate nearest to `key`, or "" when nothing is close enough to suggest.
std::string nearest(std::string_view key, const std::vector<std::string>& candidates);
// The one wording of a suggestion: `did you mean "near"?` for the nearest candidate, or "".
std::string did_you_mean(std::string_view key, const std::vector<std::string>& candidates);
// " (text)", or "" for an empty text: for a suggestion placed after what was wrong.
std::string in_parens(const std::string& text);

}  // namespace ethos
