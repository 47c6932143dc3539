// SentencePieceTokenizer on top of the sentencepiece seam (spm_capi.h). This file never
// links sentencepiece: it dlopen()s libethos_spm.so with RTLD_LOCAL | RTLD_DEEPBIND so that
// sentencepiece's bundled protobuf-lite 3.14 stays apart from libtorch's protobuf 3.21
// (README.md, stack note 3), then calls the C functions through pointers.
#include "datasets/tokenizer/tokenizer.h"

#include <dlfcn.h>
#include <unistd.h>

#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <sstream>

#include "datasets/tokenizer/bpe.h"
#include "datasets/tokenizer/spm_capi.h"
#include "datasets/base/util.h"

namespace ethos {
namespace {

namespace fs = std::filesystem;

// The C functions of libethos_spm.so, resolved once.
struct SpmApi {
  decltype(&ethos_spm_last_error) last_error;
  decltype(&ethos_spm_load) load;
  decltype(&ethos_spm_free) free;
  decltype(&ethos_spm_encode) encode;
  decltype(&ethos_spm_decode) decode;
  decltype(&ethos_spm_piece_to_id) piece_to_id;
  decltype(&ethos_spm_id_to_piece) id_to_piece;
  decltype(&ethos_spm_vocab_size) vocab_size;
  decltype(&ethos_spm_bos_id) bos_id;
  decltype(&ethos_spm_eos_id) eos_id;
  decltype(&ethos_spm_unk_id) unk_id;
  decltype(&ethos_spm_is_unknown) is_unknown;
  decltype(&ethos_spm_train) train;
};

// Where libethos_spm.so may be: $ETHOS_SPM_LIB alone when set; otherwise next to the
// running executable, then where the build put it.
std::vector<std::string> library_candidates() {
  if (const char* env = std::getenv("ETHOS_SPM_LIB"); env != nullptr && *env != '\0') return {env};
  std::vector<std::string> paths;
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) paths.push_back((exe.parent_path() / "libethos_spm.so").string());
  paths.push_back(ETHOS_SPM_BUILD_PATH);
  return paths;
}

#if defined(__SANITIZE_ADDRESS__)
#define ETHOS_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ETHOS_ASAN 1
#endif
#endif

// dlopen, except under AddressSanitizer (tests/sanitize.sh), whose dlopen refuses RTLD_DEEPBIND
// and stops the process: there the seam is opened by glibc's own dlopen, found in libc.so.6.
// The seam then allocates from glibc's malloc and frees what it allocated itself; nothing crosses
// the C interface but the caller's buffers, so the two allocators never meet.
void* dlopen_deepbind(const char* path) {
  const int flags = RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND;
#ifdef ETHOS_ASAN
  using DlopenFn = void* (*)(const char*, int);
  static const DlopenFn real = [] {
    void* libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
    return libc ? reinterpret_cast<DlopenFn>(dlsym(libc, "dlopen")) : nullptr;
  }();
  if (real) return real(path, flags);
#endif
  return dlopen(path, flags);
}

void* open_library() {
  std::string tried;
  for (const auto& path : library_candidates()) {
    if (void* lib = dlopen_deepbind(path.c_str())) return lib;
    const char* why = dlerror();
    tried += "\n  " + path + ": " + (why != nullptr ? why : "unknown dlopen error");
  }
  throw Error("cannot load the sentencepiece seam libethos_spm.so; tried:" + tried +
              "\nSet ETHOS_SPM_LIB to the full path of libethos_spm.so (it is built beside the ethos binary).");
}

template <class F>
void resolve(void* lib, const char* name, F& fn) {
  fn = reinterpret_cast<F>(dlsym(lib, name));
  if (fn == nullptr)
    throw Error(std::string("libethos_spm.so lacks the function ") + name +
                "; it is from another ethos version. Rebuild it, or point ETHOS_SPM_LIB at the matching one.");
}

SpmApi load_api() {
  void* lib = open_library();  // kept open for the life of the process
  SpmApi a{};
  resolve(lib, "ethos_spm_last_error", a.last_error);
  resolve(lib, "ethos_spm_load", a.load);
  resolve(lib, "ethos_spm_free", a.free);
  resolve(lib, "ethos_spm_encode", a.encode);
  resolve(lib, "ethos_spm_decode", a.decode);
  resolve(lib, "ethos_spm_piece_to_id", a.piece_to_id);
  resolve(lib, "ethos_spm_id_to_piece", a.id_to_piece);
  resolve(lib, "ethos_spm_vocab_size", a.vocab_size);
  resolve(lib, "ethos_spm_bos_id", a.bos_id);
  resolve(lib, "ethos_spm_eos_id", a.eos_id);
  resolve(lib, "ethos_spm_unk_id", a.unk_id);
  resolve(lib, "ethos_spm_is_unknown", a.is_unknown);
  resolve(lib, "ethos_spm_train", a.train);
  return a;
}

const SpmApi& api() {
  static const SpmApi a = load_api();  // thread-safe; retried on the next call if it threw
  return a;
}

const ethos_spm* model(void* handle) { return static_cast<const ethos_spm*>(handle); }

// Calls call(buffer, capacity) -> needed size (negative: error) until the buffer fits.
template <class Buffer, class Call>
Buffer read_sized(size_t guess, const char* what, const std::string& model_path, Call call) {
  Buffer buf(guess, {});
  for (;;) {
    const long needed = call(buf.data(), buf.size());
    if (needed < 0) throw Error(std::string(what) + " with tokenizer " + model_path + ": " + api().last_error());
    const bool fits = static_cast<size_t>(needed) <= buf.size();
    buf.resize(static_cast<size_t>(needed));
    if (fits) return buf;
  }
}

bool has_space_or_comma(const std::string& s) {
  for (char c : s)
    if (c == ',' || std::isspace(static_cast<unsigned char>(c))) return true;
  return false;
}

void validate(const TokenizerTrainOptions& o) {
  if (o.model_type != "bpe" && o.model_type != "unigram")
    throw Error("tokenizer.model_type '" + o.model_type + "' is not supported; use bpe or unigram");
  if (o.vocab_size <= 0) throw Error("tokenizer.vocab_size must be positive (got " + std::to_string(o.vocab_size) + ")");
  if (!ends_with(o.model_path, ".model") || fs::path(o.model_path).stem().empty())
    throw Error("tokenizer model path '" + o.model_path + "' must end in .model (e.g. tokenizer.model)");
  if (o.input_files.empty()) throw Error("no input files to train the tokenizer " + o.model_path + " on");
  for (const auto& f : o.input_files) {
    if (f.find(',') != std::string::npos)
      throw Error("tokenizer training input '" + f + "' contains a comma, which sentencepiece cannot take; rename it");
    if (!file_exists(f)) throw Error("tokenizer training input '" + f + "' does not exist");
  }
  for (const auto& s : o.user_defined_symbols)
    if (s.empty() || has_space_or_comma(s))
      throw Error("user-defined tokenizer symbol '" + s +
                  "' is empty or contains a comma or whitespace; sentencepiece cannot take it. Pick a symbol without them.");
  if (!(o.character_coverage > 0 && o.character_coverage <= 1))
    throw Error("tokenizer character_coverage must be in (0, 1] (got " + std::to_string(o.character_coverage) + ")");
  if (o.num_threads < 1) throw Error("tokenizer training num_threads must be at least 1");
  if (o.max_sentence_length < 1) throw Error("tokenizer training max_sentence_length must be at least 1");
}

// The trainer flags. Fixed ids (unk 0, bos 1, eos 2, no pad) and identity normalisation
// that keeps whitespace as it is, so decode(encode(text)) == text; no sentence sampling or
// shuffling, so a given input always gives the same model.
std::map<std::string, std::string> trainer_flags(const TokenizerTrainOptions& o) {
  std::ostringstream coverage;
  coverage.precision(10);
  coverage << o.character_coverage;
  std::map<std::string, std::string> f = {
      {"input", join(o.input_files, ",")},
      {"model_prefix", o.model_path.substr(0, o.model_path.size() - std::string(".model").size())},
      {"model_type", o.model_type},
      {"vocab_size", std::to_string(o.vocab_size)},
      {"byte_fallback", o.byte_fallback ? "true" : "false"},
      {"character_coverage", coverage.str()},
      {"num_threads", std::to_string(o.num_threads)},
      {"max_sentence_length", std::to_string(o.max_sentence_length)},
      {"unk_id", "0"},
      {"bos_id", "1"},
      {"eos_id", "2"},
      {"pad_id", "-1"},
      {"normalization_rule_name", "identity"},
      {"remove_extra_whitespaces", "false"},
      {"input_sentence_size", "0"},
      {"shuffle_input_sentence", "false"},
      {"minloglevel", "2"},
  };
  if (!o.user_defined_symbols.empty()) f["user_defined_symbols"] = join(o.user_defined_symbols, ",");
  return f;
}

// sentencepiece's own message, with the fix for the failures users meet most.
std::string training_error(const TokenizerTrainOptions& o, const std::string& why) {
  std::string msg = "training the tokenizer " + o.model_path + " failed: " + why;
  if (why.find("Vocabulary size too high") != std::string::npos)
    msg += "\nThe training text is too small for vocab_size " + std::to_string(o.vocab_size) +
           ": lower tokenizer.vocab_size to the value sentencepiece suggests above, or add training text.";
  else if (why.find("required_chars") != std::string::npos)
    msg += "\nvocab_size " + std::to_string(o.vocab_size) +
           " cannot hold every character (and the 256 byte pieces with byte_fallback): raise tokenizer.vocab_size.";
  return msg;
}

}  // namespace

std::unique_ptr<SentencePieceTokenizer> SentencePieceTokenizer::load(const std::string& model_path) {
  if (!file_exists(model_path))
    throw Error("tokenizer model '" + model_path +
                "' does not exist. Point tokenizer.path at a sentencepiece tokenizer.model, or train one "
                "(ethos tokenizer train).");
  void* handle = api().load(model_path.c_str());
  if (handle == nullptr)
    throw Error("'" + model_path + "' is not a sentencepiece model (sentencepiece: " + api().last_error() +
                "). Point tokenizer.path at a tokenizer.model file.");
  std::unique_ptr<SentencePieceTokenizer> tok(new SentencePieceTokenizer);
  tok->handle_ = handle;
  tok->path_ = model_path;
  if (tok->vocab_size() <= 0)
    throw Error("'" + model_path + "' is a sentencepiece model with an empty vocabulary. Use a trained tokenizer.model.");
  tok->hash_ = hash_file(model_path);
  return tok;
}

void SentencePieceTokenizer::train(const TokenizerTrainOptions& options) {
  validate(options);
  const fs::path parent = fs::path(options.model_path).parent_path();
  if (!parent.empty()) fs::create_directories(parent);
  std::vector<const char*> keys, values;
  const auto flags = trainer_flags(options);
  for (const auto& [k, v] : flags) {
    keys.push_back(k.c_str());
    values.push_back(v.c_str());
  }
  if (api().train(keys.data(), values.data(), keys.size()) != 0) throw Error(training_error(options, api().last_error()));
  if (!file_exists(options.model_path))
    throw Error("sentencepiece reported success but wrote no " + options.model_path + "; check the directory is writable");
}

SentencePieceTokenizer::~SentencePieceTokenizer() {
  if (handle_ != nullptr) api().free(static_cast<ethos_spm*>(handle_));
}

std::vector<int> SentencePieceTokenizer::encode(std::string_view text) const {
  return read_sized<std::vector<int>>(text.size() + 8, "encode", path_, [&](int* ids, size_t capacity) {
    return api().encode(model(handle_), text.data(), text.size(), ids, capacity);
  });
}

std::string SentencePieceTokenizer::decode(const std::vector<int>& ids) const {
  return read_sized<std::string>(ids.size() * 8 + 16, "decode", path_, [&](char* out, size_t capacity) {
    return api().decode(model(handle_), ids.data(), ids.size(), out, capacity);
  });
}

int SentencePieceTokenizer::piece_to_id(std::string_view piece) const {
  const int id = api().piece_to_id(model(handle_), piece.data(), piece.size());
  if (id < 0) return -1;
  // sentencepiece answers the unknown id for any piece it does not know.
  if (api().is_unknown(model(handle_), id) && id_to_piece(id) != piece) return -1;
  return id;
}

std::string SentencePieceTokenizer::id_to_piece(int id) const {
  return read_sized<std::string>(32, "id_to_piece", path_, [&](char* out, size_t capacity) {
    return api().id_to_piece(model(handle_), id, out, capacity);
  });
}

int SentencePieceTokenizer::vocab_size() const { return api().vocab_size(model(handle_)); }
int SentencePieceTokenizer::bos_id() const { return api().bos_id(model(handle_)); }
int SentencePieceTokenizer::eos_id() const { return api().eos_id(model(handle_)); }
int SentencePieceTokenizer::unk_id() const { return api().unk_id(model(handle_)); }

namespace {
bool ends_with_json(const std::string& p) { return p.size() >= 5 && p.compare(p.size() - 5, 5, ".json") == 0; }
}  // namespace

std::string find_tokenizer_file(const std::string& dir) {
  std::error_code ec;
  for (const char* name : {"tokenizer.model", "tokenizer.json"})
    if (fs::exists(fs::path(dir) / name, ec)) return (fs::path(dir) / name).string();
  return "";
}

std::string resolve_tokenizer_path(const std::string& path) {
  std::error_code ec;
  if (!fs::is_directory(path, ec)) return path;
  if (std::string file = find_tokenizer_file(path); !file.empty()) return file;
  throw Error("'" + path + "' holds no tokenizer.model or tokenizer.json. Point at the tokenizer file itself, or "
              "copy the model's tokenizer into the directory.");
}

std::unique_ptr<Tokenizer> load_tokenizer(const std::string& path) {
  const std::string file = resolve_tokenizer_path(path);
  if (ends_with_json(file)) return ByteLevelBpeTokenizer::load(file);
  return SentencePieceTokenizer::load(file);
}

std::vector<std::pair<std::string, std::string>> tokenizer_files(const std::string& path) {
  const std::string file = resolve_tokenizer_path(path);
  if (!ends_with_json(file)) return {{file, "tokenizer.model"}};
  std::vector<std::pair<std::string, std::string>> out{{file, "tokenizer.json"}};
  const fs::path cfg = fs::path(file).parent_path() / "tokenizer_config.json";
  std::error_code ec;
  if (fs::exists(cfg, ec)) out.emplace_back(cfg.string(), "tokenizer_config.json");
  return out;
}

}  // namespace ethos
