#include "eval/score/cache_entry.h"

#include <filesystem>
#include <sstream>

#include "datasets/base/util.h"

namespace ethos {

std::vector<nlohmann::json> read_cache_entry(const std::string& path, bool* damaged) {
  if (damaged) *damaged = false;
  if (!std::filesystem::exists(path)) return {};
  const std::string text = read_file(path);
  const size_t cut = text.size() >= 2 ? text.rfind('\n', text.size() - 2) : std::string::npos;
  const std::string body = cut == std::string::npos ? "" : text.substr(0, cut + 1);
  const auto tail = nlohmann::json::parse(cut == std::string::npos ? text : text.substr(cut + 1), nullptr, false);
  const bool intact = !body.empty() && tail.is_object() && tail.value("event", "") == "cache_checksum" &&
                      tail.value("checksum", "") == hash_bytes(body);
  std::vector<nlohmann::json> lines;
  std::istringstream in(intact ? body : "");
  for (std::string line; std::getline(in, line);) {
    auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) {
      lines.clear();
      break;
    }
    lines.push_back(std::move(j));
  }
  if (damaged) *damaged = lines.empty();
  return lines;
}

void write_cache_entry(const std::string& path, const std::vector<nlohmann::json>& lines) {
  std::string text;
  for (const auto& l : lines) text += l.dump() + "\n";
  text += nlohmann::json{{"event", "cache_checksum"}, {"checksum", hash_bytes(text)}}.dump() + "\n";
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  write_file_atomic(path, text);
}

}  // namespace ethos
