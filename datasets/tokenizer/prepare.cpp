#include "datasets/tokenizer/prepare.h"

#include <filesystem>
#include <functional>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "datasets/base/limits.h"
#include "datasets/base/util.h"
#include "datasets/chat_template.h"
#include "datasets/tokenizer/tokenizer.h"

namespace fs = std::filesystem;

namespace ethos {

std::string prepare_tokenizer(const TokenizerSection& t, int threads) {
  if (t.train_files.empty()) {
    if (file_exists(t.path)) return t.path;
    throw Error("tokenizer.path '" + t.path + "' does not exist. Point it at a sentencepiece tokenizer.model or a Hugging Face tokenizer.json, or set "
                "tokenizer.train_files to train one there.");
  }
  // What the tokenizer is trained from, recorded beside it (<path>.sources): a tokenizer trained
  // from other files or options (e.g. a world generated again with another seed) is trained
  // again instead of being used silently. One without the record is used as it is.
  Hasher sources;
  sources.update(t.model_type).update("|").update(std::to_string(t.vocab_size)).update(t.byte_fallback ? "|bf" : "|");
  for (const auto& f : t.train_files) sources.update("|").update(f).update("=").update(hash_file(f));
  const std::string record = t.path + ".sources";
  if (file_exists(t.path)) {
    if (!file_exists(record) || trim(read_file(record)) == sources.hex()) return t.path;
    std::cerr << "[ethos] " << t.path << " was trained from other tokenizer.train_files or options: training it again"
              << std::endl;
  }
  // Corpus: text files as they are; JSONL files contribute every string value they contain.
  std::string corpus;
  for (const auto& f : t.train_files) {
    if (f.size() < 6 || f.substr(f.size() - 6) != ".jsonl") {
      corpus += read_file(f) + "\n";
      continue;
    }
    std::function<void(const nlohmann::json&)> collect = [&](const nlohmann::json& j) {
      if (j.is_string()) corpus += j.get<std::string>() + "\n";
      else if (j.is_structured()) for (const auto& v : j) collect(v);
    };
    LineReader in(f, "tokenizer.train_files");
    std::string line;
    while (in.next(line)) {
      if (trim(line).empty()) continue;
      auto j = parse_json(line, in.where(), false);
      if (j.is_discarded()) throw Error(in.where() + ": not valid JSON (tokenizer.train_files)");
      collect(j);
    }
  }
  fs::path out(t.path);
  if (out.has_parent_path()) fs::create_directories(out.parent_path());
  const std::string corpus_path = t.path + ".corpus.txt";
  write_file_atomic(corpus_path, corpus);
  TokenizerTrainOptions opt;
  opt.input_files = {corpus_path};
  opt.model_path = t.path;
  opt.model_type = t.model_type;
  opt.vocab_size = static_cast<int>(t.vocab_size);
  opt.byte_fallback = t.byte_fallback;
  opt.user_defined_symbols = ChatTemplate::special_tokens();
  opt.num_threads = threads;
  std::cerr << "[ethos] training tokenizer " << t.path << " (" << t.model_type << ", vocab " << t.vocab_size << ")"
            << std::endl;
  SentencePieceTokenizer::train(opt);
  fs::remove(corpus_path);
  write_file_atomic(record, sources.hex() + "\n");
  return t.path;
}

}  // namespace ethos
