// An entry of the eval cache (cache_dir/eval/<key>...): the result's JSON lines, then one line
// {"checksum": ..., "event": "cache_checksum"} holding the hash of the lines before it. A damaged
// entry (a flipped bit, a torn copy, one written before checksums) reads as none, and the caller
// scores again and replaces it. Used by the suite hook and the held-out loss.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace ethos {

// The entry's lines; empty when the file is absent or damaged (*damaged, when given, says which).
std::vector<nlohmann::json> read_cache_entry(const std::string& path, bool* damaged = nullptr);
// Writes the lines and their checksum line atomically, creating the directory.
void write_cache_entry(const std::string& path, const std::vector<nlohmann::json>& lines);

}  // namespace ethos
