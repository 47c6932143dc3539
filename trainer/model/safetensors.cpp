// safetensors reader/writer. The reader trusts nothing in the file: every length, offset,
// dtype and shape is checked against the bytes actually present before any tensor is built,
// and the data section must be covered exactly once by the tensors (as Hugging Face's reader
// requires). Tensor bytes are copied as they are: a little-endian host is assumed.
#include "trainer/model/safetensors.h"

#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>
#include <set>

#include "datasets/base/limits.h"
#include "datasets/base/util.h"

namespace ethos {
namespace {

using json = nlohmann::json;

constexpr uint64_t kMaxHeaderBytes = 100ull * 1000 * 1000;  // Hugging Face's limit as well

struct DtypeName {
  const char* name;
  torch::ScalarType type;
};
constexpr DtypeName kDtypes[] = {
    {"F64", torch::kDouble}, {"F32", torch::kFloat},  {"F16", torch::kHalf}, {"BF16", torch::kBFloat16},
    {"I64", torch::kLong},   {"I32", torch::kInt},    {"I16", torch::kShort}, {"I8", torch::kChar},
    {"U8", torch::kByte},    {"BOOL", torch::kBool},
};

std::string supported_dtype_list() {
  std::string out;
  for (const auto& d : kDtypes) out += std::string(out.empty() ? "" : ", ") + d.name;
  return out;
}

bool dtype_from_name(const std::string& name, torch::ScalarType* out) {
  for (const auto& d : kDtypes) {
    if (name == d.name) {
      *out = d.type;
      return true;
    }
  }
  return false;
}

const char* dtype_name(torch::ScalarType type) {
  for (const auto& d : kDtypes) {
    if (d.type == type) return d.name;
  }
  return nullptr;
}

uint64_t read_u64_le(const char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

std::string u64_le(uint64_t v) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((v >> (8 * i)) & 0xff);
  return out;
}

// Parses the header, rejecting duplicate top-level keys (nlohmann would silently keep the last).
json parse_header(const std::string& text, const std::string& label) {
  std::vector<std::string> keys;
  auto record_keys = [&keys](int depth, json::parse_event_t event, json& parsed) {
    if (depth == 1 && event == json::parse_event_t::key) keys.push_back(parsed.get<std::string>());
    return true;
  };
  json header;
  try {
    header = json::parse(text, record_keys);
  } catch (const json::exception& e) {
    throw Error(label + ": safetensors header is not valid JSON (" + e.what() +
                "); the file is corrupt or not a safetensors file");
  }
  if (!header.is_object()) {
    throw Error(label + ": safetensors header must be a JSON object, got " + header.type_name());
  }
  std::sort(keys.begin(), keys.end());
  auto dup = std::adjacent_find(keys.begin(), keys.end());
  if (dup != keys.end()) throw Error(label + ": tensor '" + *dup + "' appears more than once in the header");
  return header;
}

std::map<std::string, std::string> parse_metadata(const json& meta, const std::string& label) {
  if (!meta.is_object()) throw Error(label + ": \"__metadata__\" must be an object of strings");
  std::map<std::string, std::string> out;
  for (const auto& [key, value] : meta.items()) {
    if (!value.is_string()) {
      throw Error(label + ": \"__metadata__\" value for key '" + key + "' is " + value.type_name() +
                  ", but metadata values must be strings");
    }
    out[key] = value.get<std::string>();
  }
  return out;
}

// A JSON value that is a non-negative integer fitting in int64.
bool as_count(const json& v, uint64_t* out) {
  if (!v.is_number_unsigned()) return false;
  *out = v.get<uint64_t>();
  return *out <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
}

SafetensorsEntry parse_entry(const std::string& name, const json& info, size_t data_size,
                             const std::string& label) {
  const std::string where = label + ": tensor '" + name + "'";
  if (!info.is_object()) throw Error(where + ": header entry must be an object with dtype, shape, data_offsets");
  SafetensorsEntry e;
  e.name = name;

  auto dtype = info.find("dtype");
  if (dtype == info.end() || !dtype->is_string()) throw Error(where + ": missing or non-string \"dtype\"");
  if (!dtype_from_name(dtype->get<std::string>(), &e.dtype)) {
    throw Error(where + ": unknown dtype '" + dtype->get<std::string>() + "' (supported: " +
                supported_dtype_list() + ")");
  }

  auto shape = info.find("shape");
  if (shape == info.end() || !shape->is_array()) throw Error(where + ": missing \"shape\" list");
  uint64_t nbytes = torch::elementSize(e.dtype);
  for (const auto& dim : *shape) {
    uint64_t d = 0;
    if (!as_count(dim, &d)) {
      throw Error(where + ": shape " + shape->dump() + " must be a list of non-negative integers");
    }
    e.shape.push_back(static_cast<int64_t>(d));
    if (d != 0 && nbytes > std::numeric_limits<uint64_t>::max() / d) {
      throw Error(where + ": shape " + shape->dump() + " is too large (byte size overflows 64 bits)");
    }
    nbytes *= d;
  }

  auto offsets = info.find("data_offsets");
  uint64_t begin = 0, end = 0;
  if (offsets == info.end() || !offsets->is_array() || offsets->size() != 2 || !as_count((*offsets)[0], &begin) ||
      !as_count((*offsets)[1], &end)) {
    throw Error(where + ": \"data_offsets\" must be [begin, end], two non-negative integers");
  }
  if (begin > end) {
    throw Error(where + ": data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) +
                "] has begin > end");
  }
  if (end > data_size) {
    throw Error(where + ": data_offsets end " + std::to_string(end) + " is past the end of the data section (" +
                std::to_string(data_size) + " bytes); the file is truncated or the header is wrong");
  }
  if (end - begin != nbytes) {
    throw Error(where + ": data_offsets span " + std::to_string(end - begin) + " bytes but dtype " +
                dtype->get<std::string>() + " with shape " + shape->dump() + " needs " + std::to_string(nbytes));
  }
  e.begin = begin;
  e.end = end;
  return e;
}

// Sorted by offset, the tensors must tile [0, data_size) exactly: no overlap, no gap.
void check_coverage(std::vector<SafetensorsEntry>& entries, size_t data_size, const std::string& label) {
  std::stable_sort(entries.begin(), entries.end(), [](const SafetensorsEntry& a, const SafetensorsEntry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  size_t covered = 0;
  const SafetensorsEntry* previous = nullptr;
  for (const auto& e : entries) {
    if (e.begin < covered) {
      throw Error(label + ": tensor '" + e.name + "' bytes [" + std::to_string(e.begin) + ", " +
                  std::to_string(e.end) + ") overlap tensor '" + previous->name + "' bytes [" +
                  std::to_string(previous->begin) + ", " + std::to_string(previous->end) + ")");
    }
    if (e.begin > covered) {
      throw Error(label + ": data bytes [" + std::to_string(covered) + ", " + std::to_string(e.begin) +
                  ") are not covered by any tensor (a gap before tensor '" + e.name +
                  "'); safetensors files must cover the data section exactly");
    }
    covered = e.end;
    previous = &e;
  }
  if (covered != data_size) {
    throw Error(label + ": data bytes [" + std::to_string(covered) + ", " + std::to_string(data_size) +
                ") at the end are not covered by any tensor; safetensors files must cover the data section exactly");
  }
}

void check_bool_bytes(const char* data, size_t n, const std::string& label, const std::string& name) {
  for (size_t i = 0; i < n; ++i) {
    if (data[i] != 0 && data[i] != 1) {
      throw Error(label + ": tensor '" + name + "' is BOOL but byte " + std::to_string(i) + " is " +
                  std::to_string(static_cast<unsigned char>(data[i])) + " (must be 0 or 1)");
    }
  }
}

}  // namespace

SafetensorsFile SafetensorsFile::read(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error(path + ": cannot open (" + std::strerror(errno) + ")");
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw Error(path + ": not a regular file; a safetensors weights file was expected");
  }
  SafetensorsFile file;
  file.size_ = static_cast<size_t>(st.st_size);
  if (file.size_ >= 8) {
    void* p = ::mmap(nullptr, file.size_, PROT_READ, MAP_PRIVATE, fd, 0);
    const int err = errno;
    ::close(fd);
    if (p == MAP_FAILED) throw Error(path + ": cannot map " + human_bytes(file.size_) + " (" + std::strerror(err) + ")");
    const size_t n = file.size_;
    file.owner_ = std::shared_ptr<const void>(p, [n](const void* q) { ::munmap(const_cast<void*>(q), n); });
    file.data_ = static_cast<const char*>(p);
    file.mapped_ = true;
  } else {
    ::close(fd);
  }
  file.validate(path);
  return file;
}

SafetensorsFile SafetensorsFile::parse(std::string bytes, const std::string& label) {
  SafetensorsFile file;
  auto owned = std::make_shared<std::string>(std::move(bytes));
  file.data_ = owned->data();
  file.size_ = owned->size();
  file.owner_ = owned;
  file.validate(label);
  return file;
}

void SafetensorsFile::validate(const std::string& label) {
  if (size_ < 8) {
    throw Error(label + ": file is " + std::to_string(size_) +
                " bytes, shorter than the 8-byte header length; it is truncated or not a safetensors file");
  }
  const uint64_t header_len = read_u64_le(data_);
  if (header_len > kMaxHeaderBytes) {
    throw Error(label + ": header length " + std::to_string(header_len) + " is absurd (limit " +
                std::to_string(kMaxHeaderBytes) + " bytes); the file is corrupt or not a safetensors file");
  }
  if (header_len > size_ - 8) {
    throw Error(label + ": header length " + std::to_string(header_len) + " is larger than the file (" +
                std::to_string(size_ - 8) + " bytes after the length); the file is truncated");
  }
  const json header = parse_header(std::string(data_ + 8, header_len), label);

  label_ = label;
  data_start_ = 8 + header_len;
  const size_t data_size = size_ - data_start_;
  for (const auto& [key, value] : header.items()) {
    if (key == "__metadata__") {
      metadata_ = parse_metadata(value, label);
    } else {
      entries_.push_back(parse_entry(key, value, data_size, label));
    }
  }
  check_coverage(entries_, data_size, label);
}

bool SafetensorsFile::contains(const std::string& name) const {
  return std::any_of(entries_.begin(), entries_.end(), [&](const SafetensorsEntry& e) { return e.name == name; });
}

torch::Tensor SafetensorsFile::get(const std::string& name) const {
  auto it = std::find_if(entries_.begin(), entries_.end(), [&](const SafetensorsEntry& e) { return e.name == name; });
  if (it == entries_.end()) {
    throw Error(label_ + ": no tensor named '" + name + "' (the file has " + std::to_string(entries_.size()) +
                " tensors)");
  }
  const char* src = data_ + data_start_ + it->begin;
  const size_t n = it->end - it->begin;
  if (it->dtype == torch::kBool) check_bool_bytes(src, n, label_, name);
  torch::Tensor out = torch::empty(it->shape, torch::TensorOptions().dtype(it->dtype));
  if (n > 0) std::memcpy(out.data_ptr(), src, n);
  if (mapped_ && n > 0) {
    // The copy is made: let this process's mapping of those pages go (they stay in the page
    // cache, shared, and come back on a second get()).
    const uintptr_t page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
    const uintptr_t lo = reinterpret_cast<uintptr_t>(src) & ~(page - 1);
    const uintptr_t hi = reinterpret_cast<uintptr_t>(src) + n;
    ::madvise(reinterpret_cast<void*>(lo), hi - lo, MADV_DONTNEED);
  }
  return out;
}

std::string serialize_safetensors(const NamedTensors& tensors, const std::map<std::string, std::string>& metadata) {
  json header = json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::vector<torch::Tensor> cpu;
  std::set<std::string> names;
  size_t offset = 0;
  for (const auto& [name, tensor] : tensors) {
    const char* dtype = dtype_name(tensor.scalar_type());
    if (!dtype) {
      throw Error("safetensors: tensor '" + name + "' has dtype " + std::string(c10::toString(tensor.scalar_type())) +
                  ", which safetensors files here do not support (" + supported_dtype_list() + ")");
    }
    if (name == "__metadata__" || !names.insert(name).second) {
      throw Error("safetensors: tensor name '" + name + "' is reserved or used twice; names must be unique");
    }
    cpu.push_back(tensor.detach().to(torch::kCPU).contiguous());
    const size_t nbytes = cpu.back().numel() * cpu.back().element_size();
    header[name] = {{"dtype", dtype}, {"shape", tensor.sizes().vec()}, {"data_offsets", {offset, offset + nbytes}}};
    offset += nbytes;
  }
  std::string text;
  try {
    text = header.dump();
  } catch (const json::exception& e) {
    throw Error(std::string("safetensors: cannot write header (") + e.what() + "); names and metadata must be UTF-8");
  }
  text.append((8 - (8 + text.size()) % 8) % 8, ' ');  // the data section starts 8-byte aligned

  std::string out = u64_le(text.size()) + text;
  out.reserve(out.size() + offset);
  for (const auto& t : cpu) {
    if (t.numel() > 0) out.append(static_cast<const char*>(t.data_ptr()), t.numel() * t.element_size());
  }
  return out;
}

std::vector<std::string> parse_weight_index(const std::string& text, const std::string& index_path) {
  json index;
  try {
    index = parse_json(text, index_path);
  } catch (const json::exception& e) {
    throw Error(index_path + ": not valid JSON (" + e.what() + ")");
  }
  if (!index.is_object() || !index.contains("weight_map") || !index["weight_map"].is_object())
    throw Error(index_path + ": expected an object with a \"weight_map\" object {tensor name: file name}");
  std::set<std::string> files;
  for (const auto& [name, file] : index["weight_map"].items()) {
    if (!file.is_string()) throw Error(index_path + ": weight_map[\"" + name + "\"] must be a file name string");
    const std::string f = file.get<std::string>();
    if (f.empty() || f.find('/') != std::string::npos || f == "." || f == "..")
      throw Error(index_path + ": weight_map[\"" + name + "\"] = \"" + f + "\" is not a plain file name");
    files.insert(f);
  }
  if (files.empty()) throw Error(index_path + ": weight_map is empty");
  return {files.begin(), files.end()};
}

void write_safetensors(const std::string& path, const NamedTensors& tensors,
                       const std::map<std::string, std::string>& metadata) {
  write_file_atomic(path, serialize_safetensors(tensors, metadata));
}

}  // namespace ethos
