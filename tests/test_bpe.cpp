// Hugging Face tokenizer.json byte-level BPE (datasets/tokenizer/bpe.h) against two real
// tokenizers, GPT-2 and Llama 3: encodings of fixed strings equal those of independent
// implementations (tests/reference/bpe_reference.mjs, the npm packages gpt-3-encoder and
// llama3-tokenizer-js) and the token ids those packages publish in their own tests; decode
// round trips; the format's options on small hand-written files; malformed files are clear errors.
#include "catch.h"
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "datasets/base/error.h"
#include "datasets/base/util.h"
#include "datasets/tokenizer/bpe.h"
#include "tests/helpers.h"

using namespace ethos;
using namespace ethos::test;
using ethos_catch::Contains;
namespace fs = std::filesystem;

namespace {

// The reference data, written once per build directory (node + two npm packages, ~3 s).
const std::string& fixtures() { return bpe_reference_dir(); }

// (Names as const char*: GCC 13 and later warn that a returned reference may dangle when an
// argument is a temporary std::string.)
const ByteLevelBpeTokenizer& tokenizer(const char* name) {
  static std::map<std::string, std::unique_ptr<ByteLevelBpeTokenizer>> cache;
  auto& t = cache[name];
  if (!t) t = ByteLevelBpeTokenizer::load(fixtures() + "/" + std::string(name) + "/tokenizer.json");
  return *t;
}

// A small tokenizer.json: the 256 byte characters, then `extra` tokens (merged pieces) and merges.
nlohmann::json small_tokenizer(const std::vector<std::string>& merges) {
  nlohmann::json vocab = nlohmann::json::object();
  int id = 0, extra = 0;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
    const int cp = printable ? b : 256 + extra++;
    std::string s = cp < 0x80 ? std::string(1, static_cast<char>(cp))
                              : std::string{static_cast<char>(0xC0 | (cp >> 6)), static_cast<char>(0x80 | (cp & 0x3F))};
    vocab[s] = id++;
  }
  for (const auto& m : merges) {
    const auto sp = m.find(' ');
    const std::string merged = m.substr(0, sp) + m.substr(sp + 1);
    if (!vocab.contains(merged)) vocab[merged] = id++;
  }
  return {{"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", merges}}},
          {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}}},
          {"decoder", {{"type", "ByteLevel"}}}};
}

std::vector<std::string> pieces(const Tokenizer& t, const std::vector<int>& ids) {
  std::vector<std::string> out;
  for (int id : ids) out.push_back(t.id_to_piece(id));
  return out;
}

}  // namespace

CATCH_TEST_CASE("GPT-2 and Llama 3 encodings equal independent implementations, and decode round trips") {
  const auto cases = nlohmann::json::parse(read_file(fixtures() + "/cases.json"));
  CATCH_REQUIRE(cases.size() >= 70);
  int checked = 0;
  for (const auto& c : cases) {
    const std::string name = c["tokenizer"].get<std::string>();
    const auto& tok = tokenizer(name.c_str());
    const std::string text = c["text"].get<std::string>();
    CATCH_INFO(c["tokenizer"].get<std::string>() << ": " << nlohmann::json(text).dump());
    const std::vector<int> ids = tok.encode(text);
    CATCH_CHECK(ids == c["ids"].get<std::vector<int>>());
    CATCH_CHECK(tok.decode(ids) == text);
    ++checked;
  }
  CATCH_CHECK(checked == static_cast<int>(cases.size()));
}

CATCH_TEST_CASE("published token ids: GPT-2 and Llama 3") {
  const auto& gpt2 = tokenizer("gpt2");
  CATCH_CHECK(gpt2.encode("Hello world") == std::vector<int>{15496, 995});
  CATCH_CHECK(gpt2.vocab_size() == 50257);
  CATCH_CHECK(gpt2.eos_id() == 50256);
  CATCH_CHECK(gpt2.bos_id() == -1);  // no tokenizer_config.json, and GPT-2's post-processor adds none
  CATCH_CHECK(gpt2.encode("a<|endoftext|>b") == std::vector<int>{64, 50256, 65});
  CATCH_CHECK(pieces(gpt2, gpt2.encode(" the\n")) == std::vector<std::string>{"Ġthe", "Ċ"});

  // llama3-tokenizer-js's own test cases (its README: checked against Meta's tokenizer).
  const auto& l3 = tokenizer("llama3");
  CATCH_CHECK(l3.vocab_size() == 128256);
  CATCH_CHECK(l3.bos_id() == 128000);
  CATCH_CHECK(l3.eos_id() == 128009);  // tokenizer_config.json: <|eot_id|>
  const std::vector<std::pair<std::string, std::vector<int>>> published = {
      {"grabbed", {59312, 2788}},
      {" grabbed", {30418}},
      {"           grabbed", {1881, 30418}},
      {"\n", {198}},
      {" \n", {720}},
      {"\ttabs\t\t\t\tout here", {3324, 3518, 573, 14294, 1618}},
      {"ax\n####\nboo", {710, 198, 71050, 34093}},
      {"镇", {104643}},
      {"🦙", {9468, 99, 247}},
      {"🦙Ꙋ", {9468, 99, 247, 166, 247, 232}},
      {"Ꙋ🦙", {166, 247, 232, 9468, 99, 247}},
      {"This is a test sentence.", {2028, 374, 264, 1296, 11914, 13}},
      {"<|start_header_id|>This text has special tokens<|eom_id|> in the middle of it.<|end_header_id|><|eot_id|>",
       {128006, 2028, 1495, 706, 3361, 11460, 128008, 304, 279, 6278, 315, 433, 13, 128007, 128009}},
  };
  for (const auto& [text, ids] : published) {
    CATCH_INFO(nlohmann::json(text).dump());
    CATCH_CHECK(l3.encode(text) == ids);
    CATCH_CHECK(l3.decode(ids) == text);
  }
  CATCH_CHECK(l3.decode({128000, 2028, 374, 264, 1296, 11914, 13, 128001}) ==
              "<|begin_of_text|>This is a test sentence.<|end_of_text|>");
  CATCH_CHECK(l3.piece_to_id("<|eot_id|>") == 128009);
  CATCH_CHECK(l3.piece_to_id("<|no such token|>") == -1);
}

CATCH_TEST_CASE("load_tokenizer picks the file; a checkpoint keeps tokenizer.json with its tokenizer_config.json") {
  const std::string dir = fixtures() + "/llama3";
  CATCH_CHECK(resolve_tokenizer_path(dir) == dir + "/tokenizer.json");
  auto t = load_tokenizer(dir);
  CATCH_CHECK(t->vocab_size() == 128256);
  CATCH_CHECK(t->path() == dir + "/tokenizer.json");
  const auto files = tokenizer_files(dir);
  CATCH_REQUIRE(files.size() == 2);
  CATCH_CHECK(files[1].second == "tokenizer_config.json");
  CATCH_CHECK(tokenizer_files(fixtures() + "/gpt2/tokenizer.json").size() == 1);
  const std::string empty = fresh_dir("bpe_empty_dir");
  CATCH_CHECK_THROWS_WITH(load_tokenizer(empty), Contains("holds no tokenizer.model or tokenizer.json"));
  // Without tokenizer_config.json: BOS from the post-processor, EOS by its usual name.
  auto bare = ByteLevelBpeTokenizer::parse(read_file(dir + "/tokenizer.json"), "llama3/tokenizer.json");
  CATCH_CHECK(bare->bos_id() == 128000);
  CATCH_CHECK(bare->eos_id() == 128001);
  CATCH_CHECK(t->content_hash() != load_tokenizer(fixtures() + "/gpt2")->content_hash());
}

CATCH_TEST_CASE("the format's options: merge ranks, ignore_merges, split behaviours, added-token stripping, NFC") {
  // Ranks decide, not order of appearance: "b c" (rank 0) before "a b" (rank 1) in "abc".
  auto j = small_tokenizer({"b c", "a b"});
  auto t = ByteLevelBpeTokenizer::parse(j.dump(), "small.json");
  CATCH_CHECK(pieces(*t, t->encode("abc")) == std::vector<std::string>{"a", "bc"});
  j = small_tokenizer({"a b", "b c"});
  t = ByteLevelBpeTokenizer::parse(j.dump(), "small.json");
  CATCH_CHECK(pieces(*t, t->encode("abc")) == std::vector<std::string>{"ab", "c"});
  // Equal ranks: leftmost first ("aaa" -> "aa" "a").
  j = small_tokenizer({"a a"});
  t = ByteLevelBpeTokenizer::parse(j.dump(), "small.json");
  CATCH_CHECK(pieces(*t, t->encode("aaa")) == std::vector<std::string>{"aa", "a"});
  CATCH_CHECK(t->encode("aaaa").size() == 2);

  // ignore_merges: a piece that is a token is taken whole even when no merge path reaches it.
  j = small_tokenizer({"a b"});
  j["model"]["vocab"]["abc"] = 300;
  t = ByteLevelBpeTokenizer::parse(j.dump(), "small.json");
  CATCH_CHECK(pieces(*t, t->encode("abc")) == std::vector<std::string>{"ab", "c"});
  j["model"]["ignore_merges"] = true;
  t = ByteLevelBpeTokenizer::parse(j.dump(), "small.json");
  CATCH_CHECK(pieces(*t, t->encode("abc")) == std::vector<std::string>{"abc"});

  // Split behaviours on "a1b22c" split by \d+ (ByteLevel without its own regex after it).
  auto split = [&](const std::string& behavior, bool invert) {
    auto s = small_tokenizer({});
    s["pre_tokenizer"] = {{"type", "Sequence"},
                          {"pretokenizers",
                           {{{"type", "Split"}, {"pattern", {{"Regex", "\\d+"}}}, {"behavior", behavior}, {"invert", invert}},
                            {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}}}}};
    s["model"]["ignore_merges"] = true;
    for (const char* w : {"a1", "1b", "b22", "22c", "a1b", "22", "1", "a", "b", "c", "1b22", "b22c"})
      if (!s["model"]["vocab"].contains(w)) s["model"]["vocab"][w] = 400 + static_cast<int>(s["model"]["vocab"].size());
    auto tk = ByteLevelBpeTokenizer::parse(s.dump(), "split.json");
    return pieces(*tk, tk->encode("a1b22c"));
  };
  using V = std::vector<std::string>;
  CATCH_CHECK(split("Isolated", false) == V{"a", "1", "b", "22", "c"});
  CATCH_CHECK(split("Removed", false) == V{"a", "b", "c"});
  CATCH_CHECK(split("MergedWithPrevious", false) == V{"a1", "b22", "c"});
  CATCH_CHECK(split("MergedWithNext", false) == V{"a", "1b", "22c"});
  CATCH_CHECK(split("Removed", true) == V{"1", "22"});

  // Added tokens: longest match wins; lstrip/rstrip take the spaces beside them.
  j = small_tokenizer({});
  j["added_tokens"] = {{{"id", 1000}, {"content", "<x>"}, {"special", true}},
                       {{"id", 1001}, {"content", "<x>y"}, {"special", true}},
                       {{"id", 1002}, {"content", "[S]"}, {"lstrip", true}, {"rstrip", true}}};
  t = ByteLevelBpeTokenizer::parse(j.dump(), "added.json");
  CATCH_CHECK(t->encode("<x>y<x>") == std::vector<int>{1001, 1000});
  CATCH_CHECK(t->encode("a  [S]  b") == std::vector<int>{'a', 1002, 'b'});
  CATCH_CHECK(t->vocab_size() == 1003);

  // NFC: "e" + combining acute becomes "é" (two bytes) before byte-level BPE.
  j = small_tokenizer({"Ã ©"});
  t = ByteLevelBpeTokenizer::parse(j.dump(), "nfd.json");
  CATCH_CHECK(t->encode("e\xCC\x81").size() == 3);  // e, 0xCC, 0x81
  j["normalizer"] = {{"type", "NFC"}};
  t = ByteLevelBpeTokenizer::parse(j.dump(), "nfc.json");
  CATCH_CHECK(pieces(*t, t->encode("e\xCC\x81")) == std::vector<std::string>{"Ã©"});
  CATCH_CHECK(t->decode(t->encode("e\xCC\x81")) == "\xC3\xA9");

  // A long run of one symbol is one piece: the heap keeps it O(n log n) (1 MB here).
  j = small_tokenizer({"! !", "!! !!"});
  t = ByteLevelBpeTokenizer::parse(j.dump(), "long.json");
  const std::string bang(1 << 20, '!');
  CATCH_CHECK(t->encode(bang).size() == (1u << 18));
}

CATCH_TEST_CASE("malformed tokenizer.json files are clear errors") {
  const auto good = small_tokenizer({"a b"});
  auto err = [](const nlohmann::json& j) {
    try {
      ByteLevelBpeTokenizer::parse(j.dump(), "bad/tokenizer.json");
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("(no error)");
  };
  auto with = [&](const std::string& ptr, const nlohmann::json& v) {
    auto j = good;
    j[nlohmann::json::json_pointer(ptr)] = v;
    return err(j);
  };
  try {
    ByteLevelBpeTokenizer::parse("{not json", "bad/tokenizer.json");
    CATCH_FAIL("no error");
  } catch (const Error& e) {
    CATCH_CHECK_THAT(e.what(), Contains("bad/tokenizer.json: not valid JSON"));
  }
  CATCH_CHECK_THAT(err(nlohmann::json::object()), Contains("has no 'model'"));
  CATCH_CHECK_THAT(with("/model/type", "WordPiece"), Contains("model.type is \"WordPiece\""));
  CATCH_CHECK_THAT(with("/model/byte_fallback", true), Contains("Point tokenizer.path at the model's tokenizer.model"));
  CATCH_CHECK_THAT(with("/model/merges/0", "a zz"), Contains("model.merges[0] merges 'a' and 'zz' but 'zz' is not in model.vocab"));
  CATCH_CHECK_THAT(with("/model/merges/0", "ab"), Contains("not two tokens separated by one space"));
  CATCH_CHECK_THAT(with("/model/merges/0", 7), Contains("model.merges[0] must be"));
  CATCH_CHECK_THAT(with("/model/vocab/a", -1), Contains("model.vocab.a must be a token id in [0, 16777216)"));
  CATCH_CHECK_THAT(with("/model/vocab/a", 2147483647), Contains("must be a token id"));
  CATCH_CHECK_THAT(with("/model/vocab/a", 16777215), Contains("the largest token id is 16777215 but there are only 257 tokens"));
  CATCH_CHECK_THAT(with("/model/vocab/a", 98), Contains("id 98 is already 'a'"));
  CATCH_CHECK_THAT(with("/model/dropout", 0.1), Contains("model.dropout"));
  CATCH_CHECK_THAT(with("/pre_tokenizer", nlohmann::json{{"type", "Metaspace"}}), Contains("pre_tokenizer.type 'Metaspace' is not supported"));
  CATCH_CHECK_THAT(with("/pre_tokenizer", nullptr), Contains("no ByteLevel step"));
  CATCH_CHECK_THAT(with("/pre_tokenizer", nlohmann::json::parse(R"({"type":"Sequence","pretokenizers":[{"type":"Split","pattern":{"Regex":"(unclosed"},"behavior":"Isolated"},{"type":"ByteLevel"}]})")),
                   Contains("pre_tokenizer.pretokenizers[0].pattern.Regex: the regex does not compile"));
  CATCH_CHECK_THAT(with("/pre_tokenizer", nlohmann::json::parse(R"({"type":"Split","pattern":{"Regex":"x"},"behavior":"Sideways"})")),
                   Contains("behavior 'Sideways'"));
  CATCH_CHECK_THAT(with("/normalizer", nlohmann::json{{"type", "Lowercase"}}), Contains("NFC, NFKC, NFD, NFKD"));
  CATCH_CHECK_THAT(with("/decoder", nlohmann::json{{"type", "Metaspace"}}), Contains("decodes with ByteLevel"));
  // A key of the wrong JSON type is the same kind of error, not a json exception (found by fuzz_tokenizer_json).
  CATCH_CHECK_THAT(with("/pre_tokenizer/type", nlohmann::json{{"ByteLevel", 1}}), Contains("pre_tokenizer.type must be a string, not {"));
  CATCH_CHECK_THAT(with("/normalizer", nlohmann::json{{"type", 3}}), Contains("normalizer.type must be a string, not 3"));
  CATCH_CHECK_THAT(with("/pre_tokenizer", nlohmann::json::parse(R"({"type":"Split","pattern":{"Regex":"x"},"behavior":[1]})")),
                   Contains("pre_tokenizer.behavior must be a string"));
  CATCH_CHECK_THAT(with("/decoder", nlohmann::json{{"type", false}}), Contains("decodes with ByteLevel"));
  CATCH_CHECK_NOTHROW(ByteLevelBpeTokenizer::parse(
      [&] { auto j = good; j["post_processor"] = nlohmann::json{{"type", 1}}; return j.dump(); }(), "ok.json"));
  CATCH_CHECK_THAT(with("/added_tokens", nlohmann::json::parse(R"([{"id": 5, "content": 3}])")),
                   Contains("added_tokens[0].content must be a string"));
  CATCH_CHECK_THAT(with("/added_tokens", nlohmann::json::parse(R"([{"content": "<x>"}])")), Contains("added_tokens[0] has no 'id'"));
  CATCH_CHECK_THAT(with("/model/vocab", nlohmann::json::object()), Contains("model.vocab is empty"));
  try {
    ByteLevelBpeTokenizer::parse(good.dump(), "dir/tokenizer.json", R"({"bos_token": "<nope>"})");
    CATCH_FAIL("no error");
  } catch (const Error& e) {
    CATCH_CHECK_THAT(e.what(), Contains("dir/tokenizer_config.json: bos_token '<nope>' is not a token of dir/tokenizer.json"));
  }
  auto t = ByteLevelBpeTokenizer::parse(good.dump(), "ok.json");
  CATCH_CHECK_THROWS_WITH(t->decode({5000}), Contains("cannot decode token id 5000"));
}
