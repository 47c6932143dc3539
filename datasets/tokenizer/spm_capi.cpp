// The C side of the sentencepiece seam (spm_capi.h), built into libethos_spm.so, which
// links only sentencepiece. No C++ exception crosses this boundary: every entry point
// catches, records the message for ethos_spm_last_error() and returns an error value.
#include "spm_capi.h"

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <exception>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#define ETHOS_SPM_EXPORT extern "C" __attribute__((visibility("default")))

struct ethos_spm {
  sentencepiece::SentencePieceProcessor processor;
};

namespace {

thread_local std::string g_last_error;

// Runs `body`; on an exception records its message and returns `on_error` instead.
template <class T, class F>
T guarded(T on_error, F body) {
  try {
    g_last_error.clear();
    return body();
  } catch (const std::exception& e) {
    g_last_error = e.what();
  } catch (...) {
    g_last_error = "unknown error inside sentencepiece";
  }
  return on_error;
}

// sentencepiece 0.1 (bookworm) returns its own util::Status, 0.2 (trixie on) absl::Status; both
// have ok(), ToString(), code() and a (code, message) constructor.
using SpmStatus = std::decay_t<decltype(std::declval<const sentencepiece::SentenceIterator&>().status())>;
using SpmCode = decltype(std::declval<const SpmStatus&>().code());

// False (with the message recorded) for a failed status.
bool ok(const SpmStatus& status) {
  if (!status.ok()) g_last_error = status.ToString();
  return status.ok();
}

// Copies as much of `s` as fits into out[0, capacity); returns the size `s` needs.
long copy_out(const std::string& s, char* out, size_t capacity) {
  if (out != nullptr) std::memcpy(out, s.data(), std::min(s.size(), capacity));
  return static_cast<long>(s.size());
}

// The training text, line by line, from files read in order (as sentencepiece reads its `input`).
class LineIterator : public sentencepiece::SentenceIterator {
 public:
  explicit LineIterator(std::vector<std::string> files) : files_(std::move(files)) { Next(); }
  bool done() const override { return done_; }
  const std::string& value() const override { return line_; }
  SpmStatus status() const override { return status_; }
  void Next() override {
    while (!done_) {
      if (in_.is_open() && std::getline(in_, line_)) return;
      in_.close();
      if (next_ == files_.size()) {
        done_ = true;
        return;
      }
      in_.open(files_[next_]);
      if (!in_) {
        status_ = SpmStatus(SpmCode::kNotFound, "cannot read " + files_[next_]);
        done_ = true;
      }
      ++next_;
    }
  }

 private:
  std::vector<std::string> files_;
  size_t next_ = 0;
  std::ifstream in_;
  std::string line_;
  bool done_ = false;
  SpmStatus status_;
};

std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  for (std::string part; std::getline(in, part, ',');)
    if (!part.empty()) out.push_back(part);
  return out;
}

// Writes `bytes` to `path` through a temporary file (this process's own) and a rename.
void write_whole(const std::string& path, const std::string& bytes) {
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    out.flush();
    if (!out) throw std::runtime_error("cannot write " + tmp);
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) throw std::runtime_error("cannot rename " + tmp + " to " + path);
}

bool in_range(const ethos_spm* model, int id) { return id >= 0 && id < model->processor.GetPieceSize(); }

}  // namespace

ETHOS_SPM_EXPORT const char* ethos_spm_last_error(void) { return g_last_error.c_str(); }

ETHOS_SPM_EXPORT ethos_spm* ethos_spm_load(const char* path) {
  return guarded<ethos_spm*>(nullptr, [&]() -> ethos_spm* {
    auto* model = new ethos_spm;
    if (ok(model->processor.Load(path))) return model;
    delete model;
    return nullptr;
  });
}

ETHOS_SPM_EXPORT void ethos_spm_free(ethos_spm* model) { delete model; }

ETHOS_SPM_EXPORT long ethos_spm_encode(const ethos_spm* model, const char* text, size_t len, int* ids,
                                       size_t capacity) {
  return guarded<long>(-1, [&]() -> long {
    std::vector<int> out;
    if (!ok(model->processor.Encode(std::string_view(text, len), &out))) return -1;
    if (ids != nullptr) std::copy_n(out.begin(), std::min(out.size(), capacity), ids);
    return static_cast<long>(out.size());
  });
}

ETHOS_SPM_EXPORT long ethos_spm_decode(const ethos_spm* model, const int* ids, size_t n, char* out,
                                       size_t capacity) {
  return guarded<long>(-1, [&]() -> long {
    for (size_t i = 0; i < n; ++i) {
      if (!in_range(model, ids[i])) {
        g_last_error = "id " + std::to_string(ids[i]) + " at position " + std::to_string(i) + " is outside the vocabulary [0, " +
                       std::to_string(model->processor.GetPieceSize()) + ")";
        return -1;
      }
    }
    std::string text;
    if (!ok(model->processor.Decode(std::vector<int>(ids, ids + n), &text))) return -1;
    return copy_out(text, out, capacity);
  });
}

ETHOS_SPM_EXPORT int ethos_spm_piece_to_id(const ethos_spm* model, const char* piece, size_t len) {
  return guarded<int>(-1, [&] { return model->processor.PieceToId(std::string_view(piece, len)); });
}

ETHOS_SPM_EXPORT long ethos_spm_id_to_piece(const ethos_spm* model, int id, char* out, size_t capacity) {
  return guarded<long>(-1, [&]() -> long {
    if (!in_range(model, id)) {
      g_last_error = "id " + std::to_string(id) + " is outside the vocabulary [0, " +
                     std::to_string(model->processor.GetPieceSize()) + ")";
      return -1;
    }
    return copy_out(model->processor.IdToPiece(id), out, capacity);
  });
}

ETHOS_SPM_EXPORT int ethos_spm_vocab_size(const ethos_spm* model) { return model->processor.GetPieceSize(); }
ETHOS_SPM_EXPORT int ethos_spm_bos_id(const ethos_spm* model) { return model->processor.bos_id(); }
ETHOS_SPM_EXPORT int ethos_spm_eos_id(const ethos_spm* model) { return model->processor.eos_id(); }
ETHOS_SPM_EXPORT int ethos_spm_unk_id(const ethos_spm* model) { return model->processor.unk_id(); }

ETHOS_SPM_EXPORT int ethos_spm_is_unknown(const ethos_spm* model, int id) {
  return in_range(model, id) && model->processor.IsUnknown(id) ? 1 : 0;
}

ETHOS_SPM_EXPORT int ethos_spm_train(const char* const* keys, const char* const* values, size_t n) {
  return guarded<int>(-1, [&] {
    std::unordered_map<std::string, std::string> kwargs;
    for (size_t i = 0; i < n; ++i) kwargs[keys[i]] = values[i];
    // ethos reads the input and writes the model itself: left to sentencepiece, both paths
    // would be recorded in the model's trainer_spec, and the same text trained in another
    // directory would give another file (and another tokenizer hash, so no shared stage or
    // eval cache would be found for it).
    const std::string prefix = kwargs["model_prefix"];
    LineIterator lines(split_commas(kwargs["input"]));
    kwargs.erase("input");
    kwargs.erase("model_prefix");
    sentencepiece::SetRandomGeneratorSeed(1);  // deterministic models for a given input
    std::string proto;
    if (!ok(sentencepiece::SentencePieceTrainer::Train(kwargs, &lines, &proto))) return -1;
    if (!ok(lines.status())) return -1;
    sentencepiece::SentencePieceProcessor trained;
    if (!ok(trained.LoadFromSerializedProto(proto))) return -1;
    std::ostringstream vocab;  // as sentencepiece writes it: piece, tab, score
    for (int id = 0; id < trained.GetPieceSize(); ++id) vocab << trained.IdToPiece(id) << "\t" << trained.GetScore(id) << "\n";
    write_whole(prefix + ".vocab", vocab.str());
    write_whole(prefix + ".model", proto);
    return 0;
  });
}
