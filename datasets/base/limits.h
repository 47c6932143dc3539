// Input limits. ethos reads files that users download or generate; each reader bounds what one
// input can make it allocate, so a hostile or careless file is a clear error ("what, where, the
// limit, how to raise it"), never std::bad_alloc or a machine out of memory. Every limit has a
// generous default and an environment variable that raises it.
#pragma once
#include <cstdint>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

namespace ethos {

struct Limit {
  const char* env;       // ETHOS_MAX_...: a positive integer overrides the default
  uint64_t default_value;
  const char* unit;      // "bytes" (printed as KiB/MiB/GiB), "nodes", "levels"
};

// One JSONL line (one record) of a dataset, suite, eval cache or run log: 16 MiB.
extern const Limit kMaxRecordBytes;
// One text handed to the tokenizer (a document, message or answer): 4 MiB. sentencepiece holds
// about 90 bytes per input byte while it encodes one text (4 MiB: about 400 MB).
extern const Limit kMaxTokenizeBytes;
// A YAML or JSON configuration file (recipe, matrix, world, suite, config.json, index): 64 MiB.
extern const Limit kMaxConfigBytes;
// Nodes of a YAML document once its aliases are expanded (a recipe, world or suite is a few
// thousand): 1,000,000. Anchors and aliases can make a 1 KiB file expand into billions.
extern const Limit kMaxYamlNodes;
// Nesting depth of a JSON record or YAML document: 256.
extern const Limit kMaxNestingDepth;

uint64_t limit_value(const Limit& limit);  // the default, or the environment's override (Error if malformed)
// "the limit is 16 MiB; raise it with ETHOS_MAX_RECORD_BYTES=<bytes> if the input is genuine"
std::string limit_hint(const Limit& limit);
std::string human_bytes(uint64_t n);  // "16 MiB", "1.5 GiB", "312 bytes"

// nlohmann::json::parse with the nesting limit: a value nested deeper than
// limit_value(kMaxNestingDepth) is an Error naming `where` (nested values are walked recursively
// later, so depth is stack). Otherwise as nlohmann's parse: with allow_exceptions, a syntax error
// throws json::parse_error; without, it returns a discarded value.
nlohmann::json parse_json(const std::string& text, const std::string& where, bool allow_exceptions = true);

// Reads a text file whole, refusing one longer than `limit` (checked before reading where the
// size is known, and while reading for pipes and devices). `what` names the file's role.
std::string read_text_file(const std::string& path, const Limit& limit, const std::string& what);

// Reads a text file line by line with at most limit_value(kMaxRecordBytes) bytes in memory: a
// longer line is an Error "path:line: ... longer than ...". Lines keep no trailing '\n' (nor '\r').
class LineReader {
 public:
  LineReader(const std::string& path, const std::string& what);  // Error if the file cannot be opened
  ~LineReader();
  LineReader(const LineReader&) = delete;
  LineReader& operator=(const LineReader&) = delete;
  bool next(std::string& line);   // false at the end of the file
  size_t line_number() const { return line_; }  // of the line last returned (1-based)
  std::string where() const { return path_ + ":" + std::to_string(line_); }

 private:
  std::string path_, what_;
  std::FILE* f_ = nullptr;
  size_t line_ = 0;
  uint64_t max_;
};

}  // namespace ethos
