#include "datasets/tokenizer/bpe.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <unicode/normalizer2.h>
#include <unicode/unistr.h>

#include <algorithm>
#include <filesystem>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <queue>
#include <tuple>

#include "datasets/base/error.h"
#include "datasets/base/limits.h"
#include "datasets/base/util.h"

namespace ethos {

namespace {

using json = nlohmann::json;

// GPT-2's pre-tokeniser pattern (ByteLevel with use_regex: true).
constexpr const char* kGpt2Pattern = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
// Ids above this are refused: the id -> token table is sized by the largest id.
constexpr int64_t kMaxTokenId = 1 << 24;
// Backtracking budget of one regex match (a hostile pattern is an error, not a hang).
constexpr uint32_t kMatchLimit = 10'000'000;

// GPT-2's byte-to-unicode map: printable Latin-1 bytes stand for themselves, the other 68 bytes
// for the code points 256, 257, ... in byte order.
struct ByteMap {
  std::string to_text[256];  // byte -> UTF-8 of its character
  int from_cp[512];          // code point -> byte, -1 when it stands for no byte
  ByteMap() {
    std::fill(std::begin(from_cp), std::end(from_cp), -1);
    int extra = 0;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
      const int cp = printable ? b : 256 + extra++;
      from_cp[cp] = b;
      to_text[b] = cp < 0x80 ? std::string(1, static_cast<char>(cp))
                             : std::string{static_cast<char>(0xC0 | (cp >> 6)), static_cast<char>(0x80 | (cp & 0x3F))};
    }
  }
};
const ByteMap& byte_map() {
  static const ByteMap m;
  return m;
}

// Next code point of UTF-8 `s` at `i` (advances i); -1 for an invalid byte (consumed alone).
int32_t next_cp(std::string_view s, size_t& i) {
  const auto c = static_cast<unsigned char>(s[i]);
  int len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
  if (len == 0 || i + len > s.size()) {
    ++i;
    return -1;
  }
  int32_t cp = len == 1 ? c : c & (0x7F >> len);
  for (int k = 1; k < len; ++k) {
    const auto d = static_cast<unsigned char>(s[i + k]);
    if ((d & 0xC0) != 0x80) {
      ++i;
      return -1;
    }
    cp = (cp << 6) | (d & 0x3F);
  }
  i += len;
  return cp;
}

std::string dump_short(const json& j) {
  std::string s = j.dump();
  return s.size() > 80 ? s.substr(0, 77) + "..." : s;
}

}  // namespace

struct ByteLevelBpeTokenizer::Impl {
  enum class Behavior { isolated, removed, merged_with_previous, merged_with_next, contiguous };
  struct Step {
    bool byte_level = false;  // else a Split
    bool add_prefix_space = false;
    std::shared_ptr<pcre2_code> re;  // ByteLevel with use_regex, or Split by a Regex (owned)
    std::string literal;       // Split by a String
    Behavior behavior = Behavior::isolated;
    bool invert = false;
  };
  struct Added {
    int id;
    std::string content;
    bool single_word, lstrip, rstrip;
  };
  std::vector<Step> steps;
  std::vector<const icu::Normalizer2*> normalizers;
  std::vector<Added> added;
  // A byte trie over the added tokens' contents: node -> (byte -> child), and the token ending there.
  std::vector<std::map<unsigned char, int>> trie{1};
  std::vector<int> trie_token{-1};
  pcre2_match_context* mctx = nullptr;
  std::string where;

  ~Impl() {
    if (mctx) pcre2_match_context_free(mctx);
  }

  std::shared_ptr<pcre2_code> compile(const std::string& pattern, const std::string& key) const {
    int code = 0;
    PCRE2_SIZE offset = 0;
    pcre2_code* re = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                                   PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &code, &offset, nullptr);
    if (re == nullptr) {
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(code, msg, sizeof msg);
      throw Error(where + ": " + key + ": the regex does not compile at offset " + std::to_string(offset) + ": " +
                  reinterpret_cast<const char*>(msg) + ". Fix the pattern, or use the tokenizer.json the model ships with.");
    }
    std::shared_ptr<pcre2_code> owned(re, pcre2_code_free);
    pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);  // faster where the JIT exists; the interpreter otherwise
    return owned;
  }

  // Every match of `re` in `s`: [start, end) byte ranges, non-overlapping, left to right.
  std::vector<std::pair<size_t, size_t>> matches(pcre2_code* re, std::string_view s) const {
    std::vector<std::pair<size_t, size_t>> out;
    pcre2_match_data* md = pcre2_match_data_create_from_pattern(re, nullptr);
    if (md == nullptr) throw std::bad_alloc();
    size_t at = 0;
    while (at <= s.size()) {
      const int rc = pcre2_match(re, reinterpret_cast<PCRE2_SPTR>(s.data()), s.size(), at, 0, md, mctx);
      if (rc == PCRE2_ERROR_NOMATCH) break;
      if (rc < 0) {
        pcre2_match_data_free(md);
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(rc, msg, sizeof msg);
        throw Error(where + ": a pre_tokenizer regex failed on a text of " + std::to_string(s.size()) +
                    " bytes: " + reinterpret_cast<const char*>(msg));
      }
      const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
      const size_t b = ov[0], e = ov[1];
      if (e > b) out.emplace_back(b, e);
      if (e > at) at = e;
      else {  // an empty match: step over one character
        if (at >= s.size()) break;
        next_cp(s, at);
      }
    }
    pcre2_match_data_free(md);
    return out;
  }

  std::vector<std::pair<size_t, size_t>> literal_matches(const std::string& lit, std::string_view s) const {
    std::vector<std::pair<size_t, size_t>> out;
    if (lit.empty()) return out;
    for (size_t at = s.find(lit); at != std::string_view::npos; at = s.find(lit, at + lit.size()))
      out.emplace_back(at, at + lit.size());
    return out;
  }

  // One Split step on one piece, by its behavior (as the tokenizers library defines them).
  void split(const Step& st, const std::string& piece, std::vector<std::string>& out) const {
    const auto found = st.re ? matches(st.re.get(), piece) : literal_matches(st.literal, piece);
    std::vector<std::pair<std::string, bool>> parts;  // (text, is a match)
    size_t at = 0;
    for (const auto& [b, e] : found) {
      if (b > at) parts.emplace_back(piece.substr(at, b - at), false);
      parts.emplace_back(piece.substr(b, e - b), true);
      at = e;
    }
    if (at < piece.size()) parts.emplace_back(piece.substr(at), false);
    if (st.invert)
      for (auto& p : parts) p.second = !p.second;
    std::vector<std::string> pieces;
    bool last_match = false;
    for (size_t k = 0; k < parts.size(); ++k) {
      auto& [text, is_match] = parts[k];
      switch (st.behavior) {
        case Behavior::isolated: pieces.push_back(text); break;
        case Behavior::removed:
          if (!is_match) pieces.push_back(text);
          break;
        case Behavior::merged_with_previous:
          if (is_match && !pieces.empty() && !last_match) pieces.back() += text;
          else pieces.push_back(text);
          break;
        case Behavior::merged_with_next:
          if (is_match && k + 1 < parts.size() && !parts[k + 1].second) parts[k + 1].first = text + parts[k + 1].first;
          else pieces.push_back(text);
          break;
        case Behavior::contiguous:
          if (is_match && last_match && !pieces.empty()) pieces.back() += text;
          else pieces.push_back(text);
          break;
      }
      last_match = is_match;
    }
    for (auto& p : pieces)
      if (!p.empty()) out.push_back(std::move(p));
  }

  std::string normalize(std::string_view text) const {
    if (normalizers.empty()) return std::string(text);
    icu::UnicodeString u = icu::UnicodeString::fromUTF8(icu::StringPiece(text.data(), static_cast<int32_t>(text.size())));
    for (const auto* n : normalizers) {
      UErrorCode status = U_ZERO_ERROR;
      u = n->normalize(u, status);
      if (U_FAILURE(status)) throw Error(where + ": normalising a text failed (ICU: " + u_errorName(status) + ")");
    }
    std::string out;
    u.toUTF8String(out);
    return out;
  }

  void add_trie(const Added& a, int index) {
    int node = 0;
    for (unsigned char c : a.content) {
      auto it = trie[node].find(c);
      if (it == trie[node].end()) {
        trie.emplace_back();
        trie_token.push_back(-1);
        it = trie[node].emplace(c, static_cast<int>(trie.size()) - 1).first;
      }
      node = it->second;
    }
    if (trie_token[node] < 0) trie_token[node] = index;
  }
};

namespace {

bool is_word_byte(unsigned char c) { return std::isalnum(c) || c == '_' || c >= 0x80; }
bool is_space_byte(unsigned char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

// The member `key` of `j`, which must be there. (A pointer, not a reference: GCC 13 and later warn
// that a returned reference may dangle whenever an argument is a temporary string.)
const json* need(const json& j, const char* key, const std::string& where, const std::string& path) {
  auto it = j.find(key);
  if (it == j.end()) throw Error(where + ": " + path + " has no '" + key + "'");
  return &*it;
}

bool flag(const json& j, const char* key, bool fallback, const std::string& where, const std::string& path) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  if (!it->is_boolean()) throw Error(where + ": " + path + "." + key + " must be true or false, not " + dump_short(*it));
  return it->get<bool>();
}

std::string text_of(const json& j, const std::string& where, const std::string& path) {
  if (!j.is_string()) throw Error(where + ": " + path + " must be a string, not " + dump_short(j));
  return j.get<std::string>();
}

// An optional string key: its text, the fallback when absent or null, an error when of another type.
std::string text_or(const json& j, const char* key, const std::string& fallback, const std::string& where,
                    const std::string& path) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  return text_of(*it, where, path + "." + key);
}

// The string at j[key], or "" when j is not an object, has no such key or holds another type
// (for keys that only select an optional behaviour).
std::string string_field(const json& j, const char* key) {
  if (!j.is_object()) return "";
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

int token_id(const json& j, const std::string& where, const std::string& path) {
  if (!j.is_number_integer() || j.get<int64_t>() < 0 || j.get<int64_t>() >= kMaxTokenId)
    throw Error(where + ": " + path + " must be a token id in [0, " + std::to_string(kMaxTokenId) + "), not " +
                dump_short(j));
  return static_cast<int>(j.get<int64_t>());
}

// A special token as tokenizer_config.json writes it: "<s>", {"content": "<s>", ...} or null.
std::optional<std::string> config_token(const json& cfg, const char* key) {
  auto it = cfg.find(key);
  if (it == cfg.end()) return std::nullopt;
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object() && it->contains("content") && (*it)["content"].is_string()) return (*it)["content"].get<std::string>();
  return std::string();  // null: the model has none
}

// The first special token a TemplateProcessing post-processor puts before the sequence.
std::string template_bos(const json& pp) {
  if (!pp.is_object()) return "";
  const std::string type = string_field(pp, "type");
  if (type == "Sequence" && pp.contains("processors") && pp["processors"].is_array()) {
    for (const auto& p : pp["processors"])
      if (auto s = template_bos(p); !s.empty()) return s;
    return "";
  }
  if (type != "TemplateProcessing" || !pp.contains("single") || !pp["single"].is_array() || pp["single"].empty())
    return "";
  const json& first = pp["single"][0];
  if (first.is_object() && first.contains("SpecialToken") && first["SpecialToken"].is_object() &&
      first["SpecialToken"].contains("id") && first["SpecialToken"]["id"].is_string())
    return first["SpecialToken"]["id"].get<std::string>();
  return "";
}

}  // namespace

ByteLevelBpeTokenizer::ByteLevelBpeTokenizer() : impl_(std::make_unique<Impl>()) {}
ByteLevelBpeTokenizer::~ByteLevelBpeTokenizer() = default;

std::unique_ptr<ByteLevelBpeTokenizer> ByteLevelBpeTokenizer::load(const std::string& path) {
  if (!file_exists(path))
    throw Error("tokenizer '" + path + "' does not exist. Point tokenizer.path at a tokenizer.json or tokenizer.model.");
  const std::string text = read_text_file(path, kMaxConfigBytes, "tokenizer.json");
  const std::string cfg_path = (std::filesystem::path(path).parent_path() / "tokenizer_config.json").string();
  const std::string cfg = file_exists(cfg_path) ? read_text_file(cfg_path, kMaxConfigBytes, "tokenizer_config.json") : "";
  auto tok = parse(text, path, cfg);
  tok->path_ = path;
  Hasher h;
  h.update(text).update("|").update(cfg);
  tok->hash_ = h.hex();
  return tok;
}

std::unique_ptr<ByteLevelBpeTokenizer> ByteLevelBpeTokenizer::parse(const std::string& json_text, const std::string& where,
                                                                    const std::string& config_json) {
  json j = parse_json(json_text, where, false);
  if (j.is_discarded()) throw Error(where + ": not valid JSON. A tokenizer.json is the JSON file Hugging Face models ship.");
  if (!j.is_object()) throw Error(where + ": a tokenizer.json is a JSON object, not " + dump_short(j));
  std::unique_ptr<ByteLevelBpeTokenizer> t(new ByteLevelBpeTokenizer);
  Impl& im = *t->impl_;
  im.where = where;
  im.mctx = pcre2_match_context_create(nullptr);
  if (im.mctx == nullptr) throw std::bad_alloc();
  pcre2_set_match_limit(im.mctx, kMatchLimit);
  pcre2_set_depth_limit(im.mctx, kMatchLimit);

  // --- model: vocabulary and merges -------------------------------------------------------
  const json& model = *need(j, "model", where, "the file");
  if (!model.is_object()) throw Error(where + ": model must be an object");
  if (model.contains("type") && model["type"] != "BPE")
    throw Error(where + ": model.type is " + dump_short(model["type"]) +
                "; ethos reads byte-level BPE tokenizer.json files (GPT-2, Llama 3, Qwen2). For sentencepiece models "
                "(Llama 2, Mistral) point tokenizer.path at their tokenizer.model.");
  if (flag(model, "byte_fallback", false, where, "model"))
    throw Error(where + ": model.byte_fallback is true: this is a sentencepiece-style BPE converted to JSON, not a "
                "byte-level one. Point tokenizer.path at the model's tokenizer.model instead.");
  for (const char* k : {"continuing_subword_prefix", "end_of_word_suffix"})
    if (model.contains(k) && !model[k].is_null() && model[k] != "")
      throw Error(where + ": model." + k + " is set (" + dump_short(model[k]) + "); ethos reads byte-level BPE without it");
  if (model.contains("dropout") && !model["dropout"].is_null() &&
      !(model["dropout"].is_number() && model["dropout"].get<double>() == 0.0))
    throw Error(where + ": model.dropout is " + dump_short(model["dropout"]) +
                "; BPE dropout is a training-time augmentation and makes encoding random: set it to null");
  t->ignore_merges_ = flag(model, "ignore_merges", false, where, "model");
  const json& vocab = *need(model, "vocab", where, "model");
  if (!vocab.is_object()) throw Error(where + ": model.vocab must be an object {token: id}");
  struct Entry {
    int id;
    std::string token, path;
  };
  std::vector<Entry> entries;  // the id table is built once every id is known (its size is checked first)
  auto put = [&](const std::string& tok, int id, const std::string& path) {
    if (tok.empty()) throw Error(where + ": " + path + ": an empty token");
    entries.push_back({id, tok, path});
    auto [it, fresh] = t->vocab_.emplace(tok, id);
    if (!fresh && it->second != id)
      throw Error(where + ": " + path + ": '" + tok + "' has two ids, " + std::to_string(it->second) + " and " +
                  std::to_string(id));
  };
  for (auto it = vocab.begin(); it != vocab.end(); ++it) put(it.key(), token_id(it.value(), where, "model.vocab." + it.key()), "model.vocab");
  if (t->vocab_.empty()) throw Error(where + ": model.vocab is empty");

  const json& merges = *need(model, "merges", where, "model");
  if (!merges.is_array()) throw Error(where + ": model.merges must be a list");
  for (size_t r = 0; r < merges.size(); ++r) {
    const std::string path = "model.merges[" + std::to_string(r) + "]";
    std::string a, b;
    const json& m = merges[r];
    if (m.is_string()) {  // "a b"
      const std::string s = m.get<std::string>();
      const size_t sp = s.find(' ');
      if (sp == std::string::npos || sp == 0 || sp + 1 >= s.size() || s.find(' ', sp + 1) != std::string::npos)
        throw Error(where + ": " + path + " is '" + s + "', not two tokens separated by one space");
      a = s.substr(0, sp), b = s.substr(sp + 1);
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {  // ["a", "b"]
      a = m[0].get<std::string>(), b = m[1].get<std::string>();
    } else {
      throw Error(where + ": " + path + " must be \"a b\" or [\"a\", \"b\"], not " + dump_short(m));
    }
    auto ia = t->vocab_.find(a), ib = t->vocab_.find(b), iab = t->vocab_.find(a + b);
    if (ia == t->vocab_.end() || ib == t->vocab_.end() || iab == t->vocab_.end())
      throw Error(where + ": " + path + " merges '" + a + "' and '" + b + "' but '" +
                  (ia == t->vocab_.end() ? a : ib == t->vocab_.end() ? b : a + b) + "' is not in model.vocab");
    const uint64_t key = (static_cast<uint64_t>(ia->second) << 32) | static_cast<uint32_t>(ib->second);
    t->merges_.emplace(key, std::make_pair(static_cast<int>(r), iab->second));  // the first (lowest) rank wins
  }
  if (model.contains("unk_token") && model["unk_token"].is_string()) {
    auto it = t->vocab_.find(model["unk_token"].get<std::string>());
    if (it != t->vocab_.end()) t->unk_ = it->second;
  }

  // --- added tokens ---------------------------------------------------------------------------
  if (j.contains("added_tokens") && !j["added_tokens"].is_null()) {
    const json& added = j["added_tokens"];
    if (!added.is_array()) throw Error(where + ": added_tokens must be a list");
    for (size_t k = 0; k < added.size(); ++k) {
      const std::string path = "added_tokens[" + std::to_string(k) + "]";
      const json& a = added[k];
      if (!a.is_object()) throw Error(where + ": " + path + " must be an object {id, content, ...}");
      Impl::Added e{token_id(*need(a, "id", where, path), where, path + ".id"),
                    text_of(*need(a, "content", where, path), where, path + ".content"),
                    flag(a, "single_word", false, where, path), flag(a, "lstrip", false, where, path),
                    flag(a, "rstrip", false, where, path)};
      put(e.content, e.id, path);
      im.add_trie(e, static_cast<int>(im.added.size()));
      im.added.push_back(std::move(e));
    }
  }
  // Ids are dense in real tokenizers (0..n-1, added tokens after); a sparse table is refused
  // rather than allocated (one id of 2^24 in a 1 KB file would ask for 512 MB).
  int max_id = 0;
  for (const auto& e : entries) max_id = std::max(max_id, e.id);
  if (static_cast<size_t>(max_id) >= 2 * entries.size() + 65536)
    throw Error(where + ": the largest token id is " + std::to_string(max_id) + " but there are only " +
                std::to_string(entries.size()) + " tokens; ids must be about dense (0..n-1)");
  t->id_to_token_.assign(max_id + 1, std::string());
  for (const auto& e : entries) {
    std::string& slot = t->id_to_token_[e.id];
    if (!slot.empty() && slot != e.token)
      throw Error(where + ": " + e.path + ": id " + std::to_string(e.id) + " is already '" + slot + "'");
    slot = e.token;
  }
  t->added_.assign(t->id_to_token_.size(), false);
  for (const auto& a : im.added) t->added_[a.id] = true;

  // --- normalizer -----------------------------------------------------------------------------
  std::function<void(const json&, const std::string&)> add_normalizer = [&](const json& n, const std::string& path) {
    if (n.is_null()) return;
    const std::string type = n.is_object() ? text_or(n, "type", "", where, path) : "";
    UErrorCode status = U_ZERO_ERROR;
    const icu::Normalizer2* icu = nullptr;
    if (type == "Sequence") {
      const json& list = *need(n, "normalizers", where, path);
      if (!list.is_array()) throw Error(where + ": " + path + ".normalizers must be a list");
      for (size_t k = 0; k < list.size(); ++k) add_normalizer(list[k], path + ".normalizers[" + std::to_string(k) + "]");
      return;
    }
    if (type == "NFC") icu = icu::Normalizer2::getNFCInstance(status);
    else if (type == "NFKC") icu = icu::Normalizer2::getNFKCInstance(status);
    else if (type == "NFD") icu = icu::Normalizer2::getNFDInstance(status);
    else if (type == "NFKD") icu = icu::Normalizer2::getNFKDInstance(status);
    else
      throw Error(where + ": " + path + " is " + dump_short(n) +
                  "; ethos supports the Unicode normalisers NFC, NFKC, NFD, NFKD (and Sequence of them) on byte-level BPE");
    if (U_FAILURE(status) || icu == nullptr) throw Error(where + ": " + path + ": ICU has no " + type + " normaliser");
    im.normalizers.push_back(icu);
  };
  if (j.contains("normalizer")) add_normalizer(j["normalizer"], "normalizer");

  // --- pre-tokenizer --------------------------------------------------------------------------
  bool byte_level = false;
  std::function<void(const json&, const std::string&)> add_step = [&](const json& p, const std::string& path) {
    if (!p.is_object()) throw Error(where + ": " + path + " must be an object with a 'type'");
    const std::string type = text_or(p, "type", "", where, path);
    if (byte_level)
      throw Error(where + ": " + path + " (" + type + ") comes after the ByteLevel step; ethos supports ByteLevel last");
    Impl::Step st;
    if (type == "Sequence") {
      const json& list = *need(p, "pretokenizers", where, path);
      if (!list.is_array()) throw Error(where + ": " + path + ".pretokenizers must be a list");
      for (size_t k = 0; k < list.size(); ++k) add_step(list[k], path + ".pretokenizers[" + std::to_string(k) + "]");
      return;
    } else if (type == "ByteLevel") {
      st.byte_level = true;
      st.add_prefix_space = flag(p, "add_prefix_space", true, where, path);
      if (flag(p, "use_regex", true, where, path)) st.re = im.compile(kGpt2Pattern, path);
      byte_level = true;
    } else if (type == "Split") {
      const json& pat = *need(p, "pattern", where, path);
      if (pat.is_object() && pat.contains("Regex")) st.re = im.compile(text_of(pat["Regex"], where, path + ".pattern.Regex"), path + ".pattern.Regex");
      else if (pat.is_object() && pat.contains("String")) st.literal = text_of(pat["String"], where, path + ".pattern.String");
      else throw Error(where + ": " + path + ".pattern must be {\"Regex\": ...} or {\"String\": ...}");
      const std::string b = text_or(p, "behavior", "Isolated", where, path);
      if (b == "Isolated") st.behavior = Impl::Behavior::isolated;
      else if (b == "Removed") st.behavior = Impl::Behavior::removed;
      else if (b == "MergedWithPrevious") st.behavior = Impl::Behavior::merged_with_previous;
      else if (b == "MergedWithNext") st.behavior = Impl::Behavior::merged_with_next;
      else if (b == "Contiguous") st.behavior = Impl::Behavior::contiguous;
      else throw Error(where + ": " + path + ".behavior '" + b + "' is not one of Isolated, Removed, MergedWithPrevious, MergedWithNext, Contiguous");
      st.invert = flag(p, "invert", false, where, path);
    } else {
      throw Error(where + ": " + path + ".type '" + type +
                  "' is not supported; ethos reads byte-level BPE pre-tokenizers (ByteLevel, Split, Sequence)");
    }
    im.steps.push_back(std::move(st));
  };
  if (j.contains("pre_tokenizer") && !j["pre_tokenizer"].is_null()) add_step(j["pre_tokenizer"], "pre_tokenizer");
  if (!byte_level)
    throw Error(where + ": pre_tokenizer has no ByteLevel step, so this is not a byte-level BPE tokenizer. "
                "ethos reads byte-level tokenizer.json files (GPT-2, Llama 3, Qwen2) and sentencepiece tokenizer.model files.");
  if (j.contains("decoder") && !j["decoder"].is_null()) {
    const json& d = j["decoder"];
    if (string_field(d, "type") != "ByteLevel")
      throw Error(where + ": decoder is " + dump_short(d) + "; a byte-level BPE tokenizer decodes with ByteLevel");
  }

  // Every byte's character must be a token (the byte-level alphabet).
  const ByteMap& bm = byte_map();
  t->byte_id_.assign(256, -1);
  for (int b = 0; b < 256; ++b) {
    auto it = t->vocab_.find(bm.to_text[b]);
    if (it != t->vocab_.end()) t->byte_id_[b] = it->second;
  }

  // --- BOS / EOS --------------------------------------------------------------------------------
  auto id_of = [&](const std::string& s) {
    auto it = t->vocab_.find(s);
    return it == t->vocab_.end() ? -1 : it->second;
  };
  std::optional<std::string> bos, eos;
  if (!config_json.empty()) {
    const std::string cw = std::filesystem::path(where).parent_path().empty()
                               ? std::string("tokenizer_config.json")
                               : (std::filesystem::path(where).parent_path() / "tokenizer_config.json").string();
    json cfg = parse_json(config_json, cw, false);
    if (cfg.is_discarded() || !cfg.is_object()) throw Error(cw + ": not a JSON object");
    bos = config_token(cfg, "bos_token"), eos = config_token(cfg, "eos_token");
    for (const auto& [name, v] : {std::pair{"bos_token", &bos}, std::pair{"eos_token", &eos}})
      if (*v && !(*v)->empty() && id_of(**v) < 0)
        throw Error(cw + ": " + name + " '" + **v + "' is not a token of " + where);
  }
  if (!bos && j.contains("post_processor")) bos = template_bos(j["post_processor"]);
  if (!eos)
    for (const char* name : {"<|end_of_text|>", "<|endoftext|>", "</s>"})
      if (id_of(name) >= 0) {
        eos = name;
        break;
      }
  t->bos_ = bos && !bos->empty() ? id_of(*bos) : -1;
  t->eos_ = eos && !eos->empty() ? id_of(*eos) : -1;
  return t;
}

// Merges `piece` (one piece's bytes) by rank: a min-heap of adjacent pairs keyed by (rank,
// position), stale entries skipped, so a long piece costs O(n log n).
void ByteLevelBpeTokenizer::bpe(const std::string& piece, std::vector<int>& out) const {
  if (ignore_merges_) {
    std::string mapped;
    for (unsigned char c : piece) mapped += byte_map().to_text[c];
    auto it = vocab_.find(mapped);
    if (it != vocab_.end()) {
      out.push_back(it->second);
      return;
    }
  }
  struct Sym {
    int id, prev, next;
  };
  std::vector<Sym> s;
  s.reserve(piece.size());
  for (unsigned char c : piece) {
    int id = byte_id_[c];
    if (id < 0) {
      if (unk_ < 0)
        throw Error((path_.empty() ? std::string("tokenizer.json") : path_) + ": byte " + std::to_string(c) +
                    " has no token and the model has no unk_token: not a complete byte-level vocabulary");
      id = unk_;
    }
    const int k = static_cast<int>(s.size());
    s.push_back({id, k - 1, k + 1});
  }
  if (s.empty()) return;
  s.back().next = -1;
  using Entry = std::tuple<int, int, int, int, int>;  // rank, left position, left id, right id, merged id
  std::priority_queue<Entry, std::vector<Entry>, std::greater<Entry>> heap;
  auto push = [&](int left) {
    if (left < 0 || s[left].next < 0) return;
    const int right = s[left].next;
    auto it = merges_.find((static_cast<uint64_t>(s[left].id) << 32) | static_cast<uint32_t>(s[right].id));
    if (it != merges_.end()) heap.emplace(it->second.first, left, s[left].id, s[right].id, it->second.second);
  };
  for (int k = 0; k + 1 < static_cast<int>(s.size()); ++k) push(k);
  std::vector<bool> dead(s.size(), false);
  while (!heap.empty()) {
    const auto [rank, left, lid, rid, merged] = heap.top();
    heap.pop();
    if (dead[left] || s[left].id != lid || s[left].next < 0 || s[s[left].next].id != rid) continue;
    const int right = s[left].next;
    s[left].id = merged;
    dead[right] = true;
    s[left].next = s[right].next;
    if (s[right].next >= 0) s[s[right].next].prev = left;
    push(s[left].prev);
    push(left);
  }
  for (int k = 0; k >= 0; k = s[k].next) out.push_back(s[k].id);
}

// Text between added tokens: normalise, pre-tokenise, BPE each piece.
void ByteLevelBpeTokenizer::encode_segment(std::string_view text, std::vector<int>& out) const {
  if (text.empty()) return;
  const Impl& im = *impl_;
  std::vector<std::string> pieces{im.normalize(text)};
  for (const auto& st : im.steps) {
    std::vector<std::string> next;
    for (auto& p : pieces) {
      if (st.byte_level && st.add_prefix_space && (p.empty() || p[0] != ' ')) p.insert(p.begin(), ' ');
      if (st.byte_level && !st.re) {
        if (!p.empty()) next.push_back(std::move(p));
      } else {
        im.split(st, p, next);  // a ByteLevel step with GPT-2's regex splits Isolated (its Step defaults)
      }
    }
    pieces = std::move(next);
  }
  for (const auto& p : pieces) bpe(p, out);
}

std::vector<int> ByteLevelBpeTokenizer::encode(std::string_view text) const {
  const uint64_t max = limit_value(kMaxTokenizeBytes);
  if (text.size() > max)
    throw Error("a text of " + human_bytes(text.size()) + " to tokenize is too long: " + limit_hint(kMaxTokenizeBytes));
  const Impl& im = *impl_;
  std::vector<int> out;
  // Added tokens first: at each position the longest one that matches (and whose single_word
  // rule holds); lstrip/rstrip take the whitespace beside it along.
  size_t seg = 0, i = 0;
  while (i < text.size()) {
    int best = -1;
    size_t best_end = 0;
    for (size_t k = i, node = 0; k < text.size();) {
      auto it = im.trie[node].find(static_cast<unsigned char>(text[k]));
      if (it == im.trie[node].end()) break;
      node = it->second;
      ++k;
      const int tok = im.trie_token[node];
      if (tok < 0) continue;
      const auto& a = im.added[tok];
      if (a.single_word && ((i > 0 && is_word_byte(text[i - 1])) || (k < text.size() && is_word_byte(text[k])))) continue;
      best = tok, best_end = k;
    }
    if (best < 0) {
      ++i;
      continue;
    }
    const auto& a = im.added[best];
    size_t start = i, end = best_end;
    if (a.lstrip)
      while (start > seg && is_space_byte(text[start - 1])) --start;
    if (a.rstrip)
      while (end < text.size() && is_space_byte(text[end])) ++end;
    encode_segment(text.substr(seg, start - seg), out);
    out.push_back(a.id);
    seg = i = end;
  }
  encode_segment(text.substr(seg), out);
  return out;
}

std::string ByteLevelBpeTokenizer::decode(const std::vector<int>& ids) const {
  const ByteMap& bm = byte_map();
  std::string out;
  for (int id : ids) {
    if (id < 0 || id >= vocab_size() || id_to_token_[id].empty())
      throw Error("cannot decode token id " + std::to_string(id) + ": " + (path_.empty() ? "the tokenizer" : path_) +
                  " has no such id (vocabulary size " + std::to_string(vocab_size()) + ")");
    const std::string& t = id_to_token_[id];
    if (added_[id]) {
      out += t;
      continue;
    }
    for (size_t i = 0; i < t.size();) {
      const size_t at = i;
      const int32_t cp = next_cp(t, i);
      if (cp >= 0 && cp < 512 && bm.from_cp[cp] >= 0) out += static_cast<char>(bm.from_cp[cp]);
      else out.append(t, at, i - at);  // a character that stands for no byte: as it is
    }
  }
  return out;
}

int ByteLevelBpeTokenizer::piece_to_id(std::string_view piece) const {
  auto it = vocab_.find(std::string(piece));
  return it == vocab_.end() ? -1 : it->second;
}

std::string ByteLevelBpeTokenizer::id_to_piece(int id) const {
  if (id < 0 || id >= vocab_size()) return "";
  return id_to_token_[id];
}

}  // namespace ethos
