// Bad input through the real binary: each is a clear error (what, where, how to fix) and a
// non-zero exit, never a crash.
#include <torch/torch.h>

#include "catch.h"
#include <filesystem>

#include "datasets/base/util.h"
#include "tests/helpers.h"
#include "trainer/config.h"
#include "trainer/trainer.h"

namespace fs = std::filesystem;
using namespace ethos;
using namespace ethos::test;
using ethos_catch::Contains;

namespace {

std::string tiny_data(const std::string& file) { return source_dir() + "/datasets/data/tiny/" + file; }

const std::string& tokenizer() {
  static const std::string path = [] {
    TokenizerSection t;
    t.path = fresh_dir("cli_tokenizer") + "/tokenizer.model";
    t.train_files = {tiny_data("tiny_demonstrations.jsonl"), tiny_data("tiny_documents.jsonl")};
    t.vocab_size = 1024;
    return prepare_tokenizer(t, 1);
  }();
  return path;
}

std::string recipe(const std::string& dir, const std::string& data_path, const std::string& extra = "") {
  const std::string path = dir + "/recipe.yaml";
  write_text(path, "name: e\nthreads: 1\nout_dir: " + dir + "/run\ntokenizer: {path: " + tokenizer() +
                       "}\nmodel: {arch: {hidden_size: 32, intermediate_size: 64, num_hidden_layers: 1, "
                       "num_attention_heads: 2}}\ndata: {seq_len: 256, sources: [{path: " +
                       data_path + ", kind: demonstration}]}\ntrain: {steps: 2, batch_size: 2}\n" + extra);
  return path;
}

RunResult train_cmd(const std::string& recipe_path, const std::string& overrides = "") {
  return run(ethos_bin() + " train " + recipe_path + " " + overrides);
}

}  // namespace

CATCH_TEST_CASE("malformed JSONL line: file:line in the message, exit 1") {
  const std::string d = fresh_dir("cli_bad_json");
  write_text(d + "/data.jsonl", "{\"prompt\": \"a\", \"response\": \"b\"}\n{\"prompt\": \"a\", \"response\": \n");
  auto r = train_cmd(recipe(d, d + "/data.jsonl"));
  CATCH_CHECK(r.status == 1);
  CATCH_CHECK_THAT(r.output, Contains("data.jsonl:2"));
}

CATCH_TEST_CASE("missing field and wrong type in a record name the field") {
  const std::string d = fresh_dir("cli_bad_field");
  write_text(d + "/missing.jsonl", "{\"prompt\": \"a\"}\n");
  auto r = train_cmd(recipe(d, d + "/missing.jsonl"));
  CATCH_CHECK(r.status == 1);
  CATCH_CHECK_THAT(r.output, Contains("missing.jsonl:1"));
  CATCH_CHECK_THAT(r.output, Contains("response"));

  write_text(d + "/typed.jsonl", "{\"prompt\": \"a\", \"response\": 7}\n");
  r = train_cmd(recipe(d, d + "/typed.jsonl"));
  CATCH_CHECK(r.status == 1);
  CATCH_CHECK_THAT(r.output, Contains("typed.jsonl:1"));
  CATCH_CHECK_THAT(r.output, Contains("response"));
}

CATCH_TEST_CASE("unknown YAML key and wrongly typed value: key path, line, suggestion; all at once") {
  const std::string d = fresh_dir("cli_bad_yaml");
  const std::string p = recipe(d, tiny_data("tiny_demonstrations.jsonl"), "eval_every: 3\n");
  auto r = train_cmd(p, "train.stpes=3 train.lr=fast");
  CATCH_CHECK(r.status == 1);
  CATCH_CHECK_THAT(r.output, Contains("eval_every"));
  CATCH_CHECK_THAT(r.output, Contains("recipe.yaml:8"));
  CATCH_CHECK_THAT(r.output, Contains("train.stpes"));
  CATCH_CHECK_THAT(r.output, Contains("steps"));
  CATCH_CHECK_THAT(r.output, Contains("train.lr"));
}

CATCH_TEST_CASE("tokenizer/model vocabulary mismatch is refused before training") {
  const std::string d = fresh_dir("cli_vocab");
  auto r = train_cmd(recipe(d, tiny_data("tiny_demonstrations.jsonl")), "model.arch.vocab_size=100");
  CATCH_CHECK(r.status == 1);
  CATCH_CHECK_THAT(r.output, Contains("vocabulary mismatch"));
  CATCH_CHECK_FALSE(fs::exists(d + "/run/checkpoints"));
}

CATCH_TEST_CASE("missing files: recipe, data, tokenizer, checkpoint") {
  const std::string d = fresh_dir("cli_missing");
  auto r = train_cmd(d + "/nope.yaml");
  CATCH_CHECK(r.status == 1);
  CATCH_CHECK_THAT(r.output, Contains("nope.yaml"));

  r = train_cmd(recipe(d, d + "/absent.jsonl"));
  CATCH_CHECK(r.status == 1);
  CATCH_CHECK_THAT(r.output, Contains("absent.jsonl"));

  r = train_cmd(recipe(d, tiny_data("tiny_demonstrations.jsonl")), "tokenizer.path=" + d + "/none.model");
  CATCH_CHECK(r.status == 1);
  CATCH_CHECK_THAT(r.output, Contains("none.model"));

  r = run(ethos_bin() + " generate --checkpoint " + d + "/no_ckpt --prompt hi");
  CATCH_CHECK(r.status == 1);
  CATCH_CHECK_THAT(r.output, Contains("no_ckpt"));
}

CATCH_TEST_CASE("usage errors exit 64; --help exits 0 on every subcommand") {
  CATCH_CHECK(run(ethos_bin() + " frobnicate").status == 64);
  CATCH_CHECK(run(ethos_bin() + " train").status == 64);
  for (const char* sub : {"", " train", " tokenizer", " tokenizer train", " generate", " version"})
    CATCH_CHECK(run(ethos_bin() + sub + " --help").status == 0);
}

CATCH_TEST_CASE("train then generate from the checkpoint through the CLI") {
  const std::string d = fresh_dir("cli_generate");
  auto r = train_cmd(recipe(d, tiny_data("tiny_demonstrations.jsonl")), "train.steps=4");
  CATCH_REQUIRE(r.status == 0);
  CATCH_CHECK_THAT(r.output, Contains("final checkpoint"));
  const std::string ck = d + "/run/checkpoints/step_000004";
  auto g = run(ethos_bin() + " generate --checkpoint " + ck + " --prompt 'What now?' --max-new-tokens 8");
  CATCH_CHECK(g.status == 0);
  auto s = run(ethos_bin() + " generate --checkpoint " + ck +
               " --prompt 'What now?' --max-new-tokens 8 --temperature 0.8 --top-p 0.9 --seed 3 --samples 2");
  CATCH_CHECK(s.status == 0);
  auto v = run(ethos_bin() + " version");
  CATCH_CHECK(v.status == 0);
  CATCH_CHECK_THAT(v.output, Contains("libtorch"));
}
