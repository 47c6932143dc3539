#include "datasets/base/util.h"

#include <fcntl.h>
#include <xxhash.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace ethos {

Hasher& Hasher::update(const void* data, size_t n) {
  const auto* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < n; ++i) {
    h_ ^= p[i];
    h_ *= 0x100000001b3ULL;
  }
  return *this;
}

std::string Hasher::hex() const {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h_));
  return buf;
}

std::string hash_bytes(std::string_view bytes) { return Hasher().update(bytes).hex(); }

std::string hash_file(const std::string& path) { return hash_bytes(read_file(path)); }

std::string checksum_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error("cannot read '" + path + "': " + std::strerror(errno));
  XXH3_state_t* st = XXH3_createState();
  XXH3_64bits_reset(st);
  std::vector<char> buf(1 << 20);
  while (true) {
    const ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int e = errno;
      XXH3_freeState(st);
      ::close(fd);
      throw Error("read of '" + path + "' failed: " + std::strerror(e));
    }
    if (n == 0) break;
    XXH3_64bits_update(st, buf.data(), static_cast<size_t>(n));
  }
  const XXH64_hash_t h = XXH3_64bits_digest(st);
  XXH3_freeState(st);
  ::close(fd);
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(h));
  return std::string("xxh3:") + hex;
}

std::string checksum_bytes(std::string_view bytes) {
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(XXH3_64bits(bytes.data(), bytes.size())));
  return std::string("xxh3:") + hex;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot read '" + path + "': " + std::strerror(errno) + ". Check the path.");
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool file_exists(const std::string& path) { return std::filesystem::exists(path); }

void fsync_path(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) throw Error("cannot open '" + path + "' to fsync: " + std::strerror(errno));
  ::fsync(fd);
  ::close(fd);
}

std::string unique_suffix() {
  static std::atomic<uint64_t> counter{0};
  char host[128] = {0};
  if (::gethostname(host, sizeof host - 1) != 0) host[0] = 0;
  std::string h;
  for (const char* c = host; *c; ++c) h += std::isalnum(static_cast<unsigned char>(*c)) || *c == '-' ? *c : '_';
  return (h.empty() ? std::string("host") : h) + "." + std::to_string(::getpid()) + "." + std::to_string(counter++);
}

void write_file_atomic(const std::string& path, std::string_view bytes) {
  namespace fs = std::filesystem;
  const std::string tmp = path + ".tmp." + unique_suffix();
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) throw Error("cannot write '" + tmp + "': " + std::strerror(errno));
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t w = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (w < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      throw Error("write to '" + tmp + "' failed: " + std::strerror(e) + (e == ENOSPC || e == EDQUOT ? " (disk full)" : ""));
    }
    done += static_cast<size_t>(w);
  }
  // Some file systems report a full disk only here (delayed allocation, NFS).
  int e = ::fsync(fd) == 0 ? 0 : errno;
  if (::close(fd) != 0 && e == 0) e = errno;
  if (e != 0) {
    ::unlink(tmp.c_str());
    throw Error("write to '" + tmp + "' failed: " + std::strerror(e) + (e == ENOSPC || e == EDQUOT ? " (disk full)" : ""));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int e = errno;
    ::unlink(tmp.c_str());
    throw Error("cannot rename '" + tmp + "' to '" + path + "': " + std::strerror(e));
  }
  fs::path dir = fs::path(path).parent_path();
  fsync_path(dir.empty() ? "." : dir.string());
}

std::string trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return std::string(s.substr(b, e - b));
}

std::vector<std::string> split(std::string_view s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  for (size_t i = 0; i <= s.size(); ++i) {
    if (i == s.size() || s[i] == sep) {
      out.emplace_back(s.substr(start, i - start));
      start = i + 1;
    }
  }
  return out;
}

std::string join(const std::vector<std::string>& items, std::string_view sep) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) {
    if (i) out += sep;
    out += items[i];
  }
  return out;
}

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t sub = prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, sub});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::string nearest(std::string_view key, const std::vector<std::string>& candidates) {
  std::string best;
  size_t best_d = std::string::npos;
  for (const auto& c : candidates) {
    size_t d = edit_distance(key, c);
    if (d < best_d) {
      best_d = d;
      best = c;
    }
  }
  // Suggest only when the typo is plausibly a typo: at most a third of the key changed.
  if (best_d == std::string::npos || best_d > std::max<size_t>(2, key.size() / 3)) return "";
  return best;
}

std::string did_you_mean(std::string_view key, const std::vector<std::string>& candidates) {
  const std::string near = nearest(key, candidates);
  return near.empty() ? "" : "did you mean \"" + near + "\"?";
}

std::string in_parens(const std::string& text) { return text.empty() ? "" : " (" + text + ")"; }

}  // namespace ethos
