// SentencePieceTokenizer through the dlopen()ed seam: training (bpe, unigram, determinism,
// option and vocab-size errors), loading errors, chat markers as single pieces, exact
// round trips with byte fallback, piece lookups, and libtorch working in the same process
// without the binary linking sentencepiece (README.md, stack note 3).
#include <torch/torch.h>

#include "catch.h"

#include <algorithm>
#include <fstream>
#include <random>

#include <unistd.h>

#include "datasets/tokenizer/tokenizer.h"
#include "datasets/base/util.h"
#include "tests/helpers.h"

using ethos_catch::Contains;
using namespace ethos;

namespace {

const std::vector<std::string> kMarkers = {"<|system|>", "<|user|>",      "<|assistant|>",
                                           "<|end|>",    "<|rationale|>", "<|/rationale|>"};

// ~400 lines of English-like text from a fixed generator: the same bytes on every run.
std::string corpus_text() {
  const std::vector<std::string> words = {
      "the",     "a",        "assistant", "user",      "should",  "never",   "always",  "because", "harm",
      "help",    "honest",   "principle", "reason",    "action",  "refuse",  "explain", "why",     "river",
      "quickly", "carefully", "model",    "question",  "answer",  "safety",  "people",  "trust",   "rule",
      "world",   "scenario", "choose",    "consider",  "outcome", "value",   "truth",   "kind",    "fair",
      "Alice",   "Bob",      "report",    "data",      "42",      "2024",    "is",      "and",     "of"};
  const std::vector<std::string> ends = {".", "!", "?", ",", ";"};
  std::mt19937 rng(7);
  std::string text;
  for (int line = 0; line < 400; ++line) {
    const int n = 4 + static_cast<int>(rng() % 12);
    for (int w = 0; w < n; ++w) text += (w ? " " : "") + words[rng() % words.size()];
    text += ends[rng() % ends.size()] + "\n";
  }
  return text;
}

// Writes the corpus into `dir` and returns options to train `name` there.
TokenizerTrainOptions options_in(const std::string& dir, const std::string& name, const std::string& type) {
  const std::string corpus = dir + "/corpus.txt";
  if (!file_exists(corpus)) test::write_text(corpus, corpus_text());
  TokenizerTrainOptions o;
  o.input_files = {corpus};
  o.model_path = dir + "/" + name;
  o.model_type = type;
  o.vocab_size = 330;  // 256 byte pieces + 3 specials + 6 markers + ~45 characters + merges
  o.user_defined_symbols = kMarkers;
  return o;
}

// One trained BPE model shared by the lookup and round-trip tests.
const SentencePieceTokenizer& shared_bpe() {
  static const std::unique_ptr<SentencePieceTokenizer> tok = [] {
    const auto o = options_in(test::fresh_dir("tokenizer_shared"), "tok.model", "bpe");
    SentencePieceTokenizer::train(o);
    return SentencePieceTokenizer::load(o.model_path);
  }();
  return *tok;
}

std::string train_error(const TokenizerTrainOptions& o) {
  try {
    SentencePieceTokenizer::train(o);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

std::string load_error(const std::string& path) {
  try {
    SentencePieceTokenizer::load(path);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// [[0,1,2],[3,4,5]] @ ones(3,2) = [[3,3],[12,12]]
void check_torch_matmul() {
  const auto a = torch::arange(6, torch::kFloat32).reshape({2, 3});
  const auto c = torch::matmul(a, torch::ones({3, 2}));
  CATCH_REQUIRE(c.sizes() == torch::IntArrayRef({2, 2}));
  CATCH_CHECK(torch::allclose(c, torch::tensor({{3.0f, 3.0f}, {12.0f, 12.0f}}), /*rtol=*/0, /*atol=*/1e-6));
}

}  // namespace

CATCH_TEST_CASE("libtorch and sentencepiece share one process; the binary does not link sentencepiece") {
  check_torch_matmul();
  const auto& tok = shared_bpe();
  const auto ids = tok.encode("the assistant should explain why");
  CATCH_CHECK(tok.decode(ids) == "the assistant should explain why");
  check_torch_matmul();
  const auto t = torch::tensor(std::vector<int64_t>(ids.begin(), ids.end()));  // [n]
  CATCH_CHECK(t.numel() == static_cast<int64_t>(ids.size()));

  // Linked: not sentencepiece. Loaded (via dlopen): sentencepiece, next to libtorch.
  const auto ldd = test::run("ldd /proc/" + std::to_string(::getpid()) + "/exe");
  CATCH_REQUIRE(ldd.status == 0);
  CATCH_CHECK_THAT(ldd.output, Contains("libtorch"));
  CATCH_CHECK_THAT(ldd.output, !Contains("libsentencepiece"));
  const std::string maps = read_file("/proc/self/maps");
  CATCH_CHECK_THAT(maps, Contains("libethos_spm.so"));
  CATCH_CHECK_THAT(maps, Contains("libsentencepiece"));
}

CATCH_TEST_CASE("bpe and unigram models train, load and use the fixed special ids") {
  const std::string dir = test::fresh_dir("tokenizer_types");
  for (const std::string type : {"bpe", "unigram"}) {
    CATCH_SECTION(type) {
      // A directory that does not exist yet is created.
      const auto o = options_in(dir, "nested/" + type + "/tokenizer.model", type);
      SentencePieceTokenizer::train(o);
      const auto tok = SentencePieceTokenizer::load(o.model_path);
      CATCH_CHECK(tok->vocab_size() == 330);
      CATCH_CHECK(tok->unk_id() == 0);
      CATCH_CHECK(tok->bos_id() == 1);
      CATCH_CHECK(tok->eos_id() == 2);
      CATCH_CHECK(tok->id_to_piece(0) == "<unk>");
      CATCH_CHECK(tok->id_to_piece(1) == "<s>");
      CATCH_CHECK(tok->id_to_piece(2) == "</s>");
      CATCH_CHECK(tok->path() == o.model_path);
      CATCH_CHECK(tok->content_hash() == hash_file(o.model_path));
      CATCH_CHECK(file_exists(dir + "/nested/" + type + "/tokenizer.vocab"));
      const std::string text = "Alice should explain why the outcome is fair.";
      const auto ids = tok->encode(text);
      CATCH_CHECK(ids.size() < text.size());  // merges happened: fewer pieces than bytes
      CATCH_CHECK(tok->decode(ids) == text);
    }
  }
}

CATCH_TEST_CASE("chat markers are single pieces") {
  const auto& tok = shared_bpe();
  std::string text;
  for (const auto& m : kMarkers) {
    const int id = tok.piece_to_id(m);
    CATCH_REQUIRE(id >= 3);  // after <unk> <s> </s>
    CATCH_CHECK(tok.id_to_piece(id) == m);
    text += m + "help";
  }
  const auto ids = tok.encode(text);
  for (const auto& m : kMarkers) CATCH_CHECK(std::count(ids.begin(), ids.end(), tok.piece_to_id(m)) == 1);
  CATCH_CHECK(tok.decode(ids) == text);
}

CATCH_TEST_CASE("encode and decode round-trip exactly, unseen characters through byte fallback") {
  const auto& tok = shared_bpe();
  const std::vector<std::string> texts = {
      "The assistant should refuse because of harm.",
      "  two leading spaces,\tone tab\nand a newline  ",
      "Bob paid 12\u20ac for caf\u00e9 \xF0\x9F\x98\x80 today",  // €, é, 😀: not in the corpus
      "",
  };
  for (const auto& text : texts) {
    const auto ids = tok.encode(text);
    CATCH_CHECK(std::count(ids.begin(), ids.end(), tok.unk_id()) == 0);
    CATCH_CHECK(tok.decode(ids) == text);
  }
  // The emoji's four UTF-8 bytes become four byte pieces.
  const auto ids = tok.encode("\xF0\x9F\x98\x80");
  std::vector<std::string> pieces;
  for (int id : ids) pieces.push_back(tok.id_to_piece(id));
  CATCH_CHECK(std::count(pieces.begin(), pieces.end(), "<0xF0>") == 1);
  CATCH_CHECK(std::count(pieces.begin(), pieces.end(), "<0x80>") == 1);
  CATCH_CHECK(tok.decode({tok.piece_to_id("<0xC3>"), tok.piece_to_id("<0xA9>")}) == "\u00e9");
}

CATCH_TEST_CASE("piece lookups: unknown pieces are -1, ids out of range are errors") {
  const auto& tok = shared_bpe();
  CATCH_CHECK(tok.piece_to_id("zzqqxxnotapiece") == -1);
  CATCH_CHECK(tok.piece_to_id("<|nomarker|>") == -1);
  CATCH_CHECK(tok.piece_to_id("") == -1);
  CATCH_CHECK(tok.piece_to_id("<unk>") == 0);
  const int v = tok.vocab_size();
  CATCH_REQUIRE_THROWS_WITH(tok.id_to_piece(v), Contains("outside the vocabulary [0, " + std::to_string(v) + ")"));
  CATCH_REQUIRE_THROWS_AS(tok.id_to_piece(-1), Error);
  CATCH_REQUIRE_THROWS_WITH(tok.decode({5, v + 3}), Contains("id " + std::to_string(v + 3) + " at position 1"));
}

CATCH_TEST_CASE("training is deterministic: the same input gives a byte-identical model") {
  const std::string dir = test::fresh_dir("tokenizer_determinism");
  for (const std::string type : {"bpe", "unigram"}) {
    const auto o = options_in(dir, type + ".model", type);
    SentencePieceTokenizer::train(o);
    const std::string first = read_file(o.model_path);
    SentencePieceTokenizer::train(o);
    CATCH_CHECK(first.size() > 1000);
    CATCH_CHECK(read_file(o.model_path) == first);
  }
}

CATCH_TEST_CASE("loading a missing or non-model file is a clean error naming the path") {
  const std::string dir = test::fresh_dir("tokenizer_load_errors");
  const std::string missing = dir + "/nope.model";
  CATCH_CHECK_THAT(load_error(missing), Contains(missing) && Contains("does not exist"));
  const std::string garbage = dir + "/garbage.model";
  test::write_text(garbage, "this is not a sentencepiece model\n");
  CATCH_CHECK_THAT(load_error(garbage), Contains(garbage) && Contains("not a sentencepiece model"));
  const std::string empty = dir + "/empty.model";
  test::write_text(empty, "");
  CATCH_CHECK_THAT(load_error(empty), Contains(empty) && Contains("not a sentencepiece model"));
}

CATCH_TEST_CASE("bad training options are errors that say the fix") {
  const std::string dir = test::fresh_dir("tokenizer_train_errors");
  auto o = options_in(dir, "tok.model", "bpe");

  o.vocab_size = 50000;
  CATCH_CHECK_THAT(train_error(o), Contains("Vocabulary size too high") && Contains("lower tokenizer.vocab_size"));
  o.vocab_size = 330;

  auto bad = o;
  bad.model_type = "wordpiece";
  CATCH_CHECK_THAT(train_error(bad), Contains("wordpiece") && Contains("bpe or unigram"));
  bad = o;
  bad.user_defined_symbols.push_back("<|a,b|>");
  CATCH_CHECK_THAT(train_error(bad), Contains("<|a,b|>") && Contains("comma"));
  bad = o;
  bad.user_defined_symbols.push_back("<|a b|>");
  CATCH_CHECK_THAT(train_error(bad), Contains("<|a b|>"));
  bad = o;
  bad.model_path = dir + "/tok.bin";
  CATCH_CHECK_THAT(train_error(bad), Contains("tok.bin") && Contains("must end in .model"));
  bad = o;
  bad.input_files = {dir + "/absent.txt"};
  CATCH_CHECK_THAT(train_error(bad), Contains("absent.txt") && Contains("does not exist"));
  CATCH_CHECK(!file_exists(o.model_path));
}

CATCH_TEST_CASE("a seam library that cannot be loaded is an error naming the path and ETHOS_SPM_LIB") {
  const std::string dir = test::fresh_dir("tokenizer_seam_missing");
  const auto o = options_in(dir, "tok.model", "bpe");
  const auto r = test::run("ETHOS_SPM_LIB=" + dir + "/missing/libethos_spm.so " + test::ethos_bin() +
                           " tokenizer train --input " + o.input_files[0] + " --out " + o.model_path);
  CATCH_CHECK(r.status == 1);
  CATCH_CHECK_THAT(r.output, Contains(dir + "/missing/libethos_spm.so") && Contains("Set ETHOS_SPM_LIB"));
  CATCH_CHECK(!file_exists(o.model_path));
}
