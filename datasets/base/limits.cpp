#include "datasets/base/limits.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "datasets/base/error.h"

namespace ethos {

const Limit kMaxRecordBytes{"ETHOS_MAX_RECORD_BYTES", 16ull << 20, "bytes"};
const Limit kMaxTokenizeBytes{"ETHOS_MAX_TOKENIZE_BYTES", 4ull << 20, "bytes"};
const Limit kMaxConfigBytes{"ETHOS_MAX_CONFIG_BYTES", 64ull << 20, "bytes"};
const Limit kMaxYamlNodes{"ETHOS_MAX_YAML_NODES", 1000000, "nodes"};
const Limit kMaxNestingDepth{"ETHOS_MAX_NESTING_DEPTH", 256, "levels"};

uint64_t limit_value(const Limit& limit) {
  const char* v = std::getenv(limit.env);
  if (!v || !*v) return limit.default_value;
  char* end = nullptr;
  errno = 0;
  const unsigned long long n = std::strtoull(v, &end, 10);
  if (errno || *end || n == 0 || v[0] == '-')
    throw Error(std::string("environment variable ") + limit.env + "=\"" + v + "\" is not a positive whole number of " +
                limit.unit + "; unset it for the default (" + std::to_string(limit.default_value) + ")");
  return n;
}

std::string human_bytes(uint64_t n) {
  const char* units[] = {"KiB", "MiB", "GiB", "TiB"};
  if (n < 1024) return std::to_string(n) + " bytes";
  double v = static_cast<double>(n);
  int u = -1;
  while (v >= 1024 && u < 3) v /= 1024, ++u;
  char buf[32];
  if (v == static_cast<double>(static_cast<uint64_t>(v)))
    std::snprintf(buf, sizeof buf, "%llu %s", static_cast<unsigned long long>(v), units[u]);
  else
    std::snprintf(buf, sizeof buf, "%.1f %s", v, units[u]);
  return buf;
}

std::string limit_hint(const Limit& limit) {
  const uint64_t v = limit_value(limit);
  const bool bytes = std::strcmp(limit.unit, "bytes") == 0;
  return std::string("the limit is ") + (bytes ? human_bytes(v) : std::to_string(v) + " " + limit.unit) +
         "; raise it with " + limit.env + "=<" + limit.unit + "> if the input is genuine";
}

nlohmann::json parse_json(const std::string& text, const std::string& where, bool allow_exceptions) {
  const uint64_t max_depth = limit_value(kMaxNestingDepth);
  const auto guard = [&](int depth, nlohmann::json::parse_event_t, nlohmann::json&) {
    if (static_cast<uint64_t>(depth) > max_depth)
      throw Error(where + ": JSON nested more than " + std::to_string(max_depth) + " levels deep (" + limit_hint(kMaxNestingDepth) + ")");
    return true;
  };
  return nlohmann::json::parse(text, guard, allow_exceptions);
}

std::string read_text_file(const std::string& path, const Limit& limit, const std::string& what) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) throw Error("cannot read " + what + " '" + path + "': " + std::strerror(errno) + ". Check the path.");
  const uint64_t max = limit_value(limit);
  struct stat st {};
  auto too_long = [&](const std::string& size) {
    std::fclose(f);
    return Error(path + ": " + what + " is " + size + ", longer than a " + what + " should be (" + limit_hint(limit) + ")");
  };
  const bool known = ::fstat(fileno(f), &st) == 0;
  if (known && S_ISDIR(st.st_mode)) {
    std::fclose(f);
    throw Error("cannot read " + what + " '" + path + "': it is a directory");
  }
  if (known && S_ISREG(st.st_mode) && static_cast<uint64_t>(st.st_size) > max)
    throw too_long(human_bytes(static_cast<uint64_t>(st.st_size)));
  std::string out;
  char buf[1 << 16];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) {
    if (out.size() + n > max) throw too_long("more than " + human_bytes(max));
    out.append(buf, n);
  }
  const bool failed = std::ferror(f);
  const int e = errno;
  std::fclose(f);
  if (failed) throw Error("read of " + what + " '" + path + "' failed: " + std::strerror(e));
  return out;
}

LineReader::LineReader(const std::string& path, const std::string& what)
    : path_(path), what_(what), max_(limit_value(kMaxRecordBytes)) {
  f_ = std::fopen(path.c_str(), "rb");
  if (!f_) throw Error("cannot open " + what + " '" + path + "': " + std::strerror(errno) + ". Check the path.");
}

LineReader::~LineReader() {
  if (f_) std::fclose(f_);
}

bool LineReader::next(std::string& line) {
  line.clear();
  int c = EOF;
  bool any = false;
  while ((c = getc_unlocked(f_)) != EOF) {
    any = true;
    if (c == '\n') break;
    if (line.size() > max_ || (line.size() == max_ && c != '\r'))  // room for the '\r' of a CRLF ending
      throw Error(path_ + ":" + std::to_string(line_ + 1) + ": line is longer than one " + what_ + " record may be (" +
                  limit_hint(kMaxRecordBytes) + "); is it one record per line?");
    line.push_back(static_cast<char>(c));
  }
  if (std::ferror(f_)) throw Error("read of " + what_ + " '" + path_ + "' failed: " + std::strerror(errno));
  if (!any) return false;
  ++line_;
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return true;
}

}  // namespace ethos
