// safetensors reader/writer (https://huggingface.co/docs/safetensors format):
//   8 bytes little-endian u64 N | N bytes JSON header | data
//   header: {"__metadata__": {str: str}, "name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...}
//   offsets are relative to the start of the data section.
// Everything is bounds-checked: a header that lies about sizes, offsets, dtypes or shapes
// is an ethos::Error naming the file and the tensor, never a crash or an out-of-bounds read.
#pragma once
#include <torch/torch.h>

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace ethos {

struct SafetensorsEntry {
  std::string name;
  torch::ScalarType dtype;
  std::vector<int64_t> shape;
  size_t begin = 0, end = 0;  // byte range within the data section
};

class SafetensorsFile {
 public:
  // Maps the file into memory (read-only) and validates its header and offsets. Throws
  // Error("<path>: <what>") on any problem. Nothing is read until get(): a tensor's pages are
  // faulted in when it is copied out and released from this process right after, so loading
  // a model holds its weights once (the tensors), not twice (the file's bytes and the tensors).
  static SafetensorsFile read(const std::string& path);
  // Same, from bytes already in memory (`label` names them in errors).
  static SafetensorsFile parse(std::string bytes, const std::string& label);

  const std::vector<SafetensorsEntry>& entries() const { return entries_; }  // in file order
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  bool contains(const std::string& name) const;
  // A CPU tensor owning a copy of the data. Throws Error naming the tensor if absent.
  torch::Tensor get(const std::string& name) const;

 private:
  void validate(const std::string& label);  // the checks of read/parse, on data_[0, size_)

  std::string label_;
  std::shared_ptr<const void> owner_;  // the mapping (munmap on release) or the bytes given to parse
  const char* data_ = nullptr;
  size_t size_ = 0;
  bool mapped_ = false;
  size_t data_start_ = 0;
  std::vector<SafetensorsEntry> entries_;
  std::map<std::string, std::string> metadata_;
};

using NamedTensors = std::vector<std::pair<std::string, torch::Tensor>>;

// Serialises tensors (any device; copied to CPU, made contiguous) in the given order,
// header keys sorted as Hugging Face writes them, data 8-byte aligned header padded with spaces.
std::string serialize_safetensors(const NamedTensors& tensors, const std::map<std::string, std::string>& metadata = {});
// serialize + atomic write (tmp file, fsync, rename).
void write_safetensors(const std::string& path, const NamedTensors& tensors,
                       const std::map<std::string, std::string>& metadata = {});

// A sharded model's model.safetensors.index.json (its text): the shard file names, sorted, each a
// plain file name (no directory part). Errors name index_path.
std::vector<std::string> parse_weight_index(const std::string& text, const std::string& index_path);

}  // namespace ethos
