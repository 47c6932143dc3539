#include "trainer/tensorboard.h"

#include <array>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include "datasets/base/error.h"
#include "datasets/base/limits.h"
#include "datasets/base/util.h"

namespace fs = std::filesystem;

namespace ethos {
namespace {

// CRC-32C (Castagnoli), reflected polynomial 0x82F63B78, one table lookup per byte.
const std::array<uint32_t, 256>& crc_table() {
  static const std::array<uint32_t, 256> table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  return table;
}

// ---- protobuf wire format: just what Event, Summary and Summary.Value need ----

void varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

template <class T> void little_endian(std::string& out, T v) {  // x86 and ARM hosts are little endian
  char bytes[sizeof(T)];
  std::memcpy(bytes, &v, sizeof(T));
  out.append(bytes, sizeof(T));
}

void key(std::string& out, int field, int wire_type) { varint(out, static_cast<uint64_t>(field) << 3 | wire_type); }

void bytes_field(std::string& out, int field, const std::string& bytes) {
  key(out, field, 2);
  varint(out, bytes.size());
  out += bytes;
}

std::string event(double wall_time, int64_t step) {
  std::string e;
  key(e, 1, 1);  // wall_time: double
  little_endian(e, wall_time);
  key(e, 2, 0);  // step: int64
  varint(e, static_cast<uint64_t>(step));
  return e;
}

void record(std::string& out, const std::string& data) {
  std::string length;
  little_endian(length, static_cast<uint64_t>(data.size()));
  out += length;
  little_endian(out, masked_crc32c(length.data(), length.size()));
  out += data;
  little_endian(out, masked_crc32c(data.data(), data.size()));
}

// Every line of a JSONL log that parses (a torn last line of a killed run is skipped).
std::vector<nlohmann::json> read_events(const std::string& path) {
  std::vector<nlohmann::json> out;
  if (!fs::exists(path)) return out;
  std::istringstream in(read_file(path));
  std::string line;
  while (std::getline(in, line)) {
    auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_object()) out.push_back(std::move(j));
  }
  return out;
}

std::string eval_tag(const nlohmann::json& e) {
  auto s = [&](const char* k) { return e.contains(k) && e[k].is_string() ? e[k].get<std::string>() : std::string(); };
  std::string tag = "eval/" + s("suite") + "/";
  if (!s("scorer").empty()) tag += s("scorer") + (s("mode").empty() ? "" : "_" + s("mode")) +
                                   (s("normalize").empty() ? "" : "_" + s("normalize")) + "/";
  tag += s("split").empty() ? "" : s("split") + "/";
  if (!s("group").empty() && s("group") != "all") tag += s("group") + "=" + s("group_value") + "/";
  return tag + s("metric");
}

}  // namespace

uint32_t crc32c(const void* data, size_t n, uint32_t crc) {
  const auto& t = crc_table();
  const auto* p = static_cast<const unsigned char*>(data);
  crc = ~crc;
  for (size_t i = 0; i < n; ++i) crc = t[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
  return ~crc;
}

uint32_t masked_crc32c(const void* data, size_t n) {
  const uint32_t c = crc32c(data, n);
  return ((c >> 15) | (c << 17)) + 0xa282ead8u;
}

std::string tensorboard_events(const std::vector<Scalar>& scalars, double wall_time) {
  std::string out;
  std::string version = event(wall_time, 0);
  bytes_field(version, 3, "brain.Event:2");
  record(out, version);
  for (const Scalar& s : scalars) {
    std::string value;
    bytes_field(value, 1, s.tag);
    key(value, 2, 5);  // simple_value: float
    little_endian(value, s.value);
    std::string summary;
    bytes_field(summary, 1, value);
    std::string e = event(s.wall_time, s.step);
    bytes_field(e, 5, summary);
    record(out, e);
  }
  return out;
}

std::vector<Scalar> run_scalars(const std::string& run_dir) {
  // Wall times: the run's logged seconds (steps, checkpoints, evals) added up, ending now.
  std::vector<Scalar> out;
  const auto train = read_events(run_dir + "/train.jsonl");
  std::map<int64_t, double> time_at_step;
  double elapsed = 0;
  for (const auto& e : train) {
    elapsed += e.contains("seconds") && e["seconds"].is_number() ? e["seconds"].get<double>() : 0.0;
    const int64_t step = e.value("step", int64_t{0});
    time_at_step[step] = elapsed;
    if (e.value("event", "") != "train") continue;
    for (const auto& [k, v] : e.items())
      if (v.is_number() && k != "step" && k != "stage_step")
        out.push_back({"train/" + k, step, elapsed, static_cast<float>(v.get<double>())});
  }
  for (const auto& e : read_events(run_dir + "/eval.jsonl")) {
    if (e.value("event", "") != "eval" || !e.contains("value") || !e["value"].is_number()) continue;
    const int64_t step = e.value("step", int64_t{0});
    const auto at = time_at_step.upper_bound(step);  // the last logged time at or before the step
    const double t = at == time_at_step.begin() ? 0.0 : std::prev(at)->second;
    out.push_back({eval_tag(e), step, t, static_cast<float>(e["value"].get<double>())});
  }
  const double now = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  for (auto& s : out) s.wall_time += now - elapsed;
  return out;
}

std::string write_tensorboard(const std::string& run_dir) {
  const fs::path dir = fs::path(run_dir) / "tensorboard";
  fs::create_directories(dir);
  const auto now = std::chrono::system_clock::now();
  const double wall = std::chrono::duration<double>(now.time_since_epoch()).count();
  const long long ns = std::chrono::duration_cast<std::chrono::nanoseconds>(now.time_since_epoch()).count();
  const std::string name = "events.out.tfevents." + std::to_string(ns) + ".ethos";
  write_file_atomic((dir / name).string(), tensorboard_events(run_scalars(run_dir), wall));
  for (const auto& e : fs::directory_iterator(dir)) {  // the older files: this one holds all they did
    const std::string f = e.path().filename().string();
    std::error_code ec;
    if (f != name && f.rfind("events.out.tfevents.", 0) == 0) fs::remove(e.path(), ec);
  }
  return (dir / name).string();
}

}  // namespace ethos
