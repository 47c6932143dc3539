// Recipe loading: values and defaults, includes, overrides, stages, type and unknown-key
// problems (with file:line), validate(), to_yaml round trip and config_hash.
#include <torch/torch.h>

#include "catch.h"

#include "datasets/base/util.h"
#include "tests/helpers.h"
#include "trainer/config.h"

using ethos_catch::Contains;
using namespace ethos;

namespace {

std::string fixture(const std::string& name) {
  return test::source_dir() + "/tests/fixtures/config/" + name;
}

// The message of the Error that loading throws ("" when it loads).
std::string load_error(const std::string& path, const std::vector<std::string>& overrides = {}) {
  try {
    load_recipe(path, overrides);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

size_t count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

}  // namespace

CATCH_TEST_CASE("a full recipe parses with every value") {
  const Recipe r = load_recipe(fixture("full.yaml"));
  CATCH_CHECK(r.name == "tiny-sft");
  CATCH_CHECK(r.seed == 7);
  CATCH_CHECK(r.out_dir == "/tmp/ethos-out");
  CATCH_CHECK(r.run_dir() == "/tmp/ethos-out");
  CATCH_CHECK(r.resume == "never");
  CATCH_CHECK(r.allow_changed);
  CATCH_CHECK(r.threads == 2);
  CATCH_CHECK(r.tokenizer.path == "tok/tokenizer.model");
  CATCH_CHECK(r.tokenizer.train_files == std::vector<std::string>{"a.jsonl", "b.jsonl"});
  CATCH_CHECK(r.tokenizer.model_type == "unigram");
  CATCH_CHECK(r.tokenizer.vocab_size == 512);
  CATCH_CHECK_FALSE(r.tokenizer.byte_fallback);
  const ModelConfig& a = r.model.arch;
  CATCH_CHECK(a.hidden_size == 96);
  CATCH_CHECK(a.num_attention_heads == 6);
  CATCH_CHECK(a.num_key_value_heads == 2);
  CATCH_CHECK(a.head_dim == 16);
  CATCH_CHECK(a.rope_theta == 500000.0);
  CATCH_CHECK(a.rms_norm_eps == 1e-6);
  CATCH_CHECK(a.tie_word_embeddings);
  CATCH_CHECK(a.qkv_bias);
  CATCH_CHECK(a.eos_token_id == 6);
  CATCH_CHECK(a.initializer_range == 0.01);
  CATCH_REQUIRE(r.stages.size() == 1);
  CATCH_CHECK(r.stages[0].name == "main");
  const DataSection& d = r.stages[0].data;
  CATCH_REQUIRE(d.sources.size() == 2);
  CATCH_CHECK(d.sources[0].path == "docs.jsonl");
  CATCH_CHECK(d.sources[0].kind == "document");
  CATCH_CHECK(d.sources[0].weight == 0.25);
  CATCH_CHECK(d.sources[1].weight == 3.0);
  CATCH_CHECK(d.seq_len == 128);
  CATCH_CHECK(d.rationale_weight == 0.5);
  const TrainSection& t = r.stages[0].train;
  CATCH_CHECK(t.steps == 300);
  CATCH_CHECK(t.grad_accum == 2);
  CATCH_CHECK(t.lr == 3e-4);
  CATCH_CHECK(t.schedule == "linear");
  CATCH_CHECK(t.warmup_steps == 30);
  CATCH_CHECK(t.beta2 == 0.99);
  CATCH_CHECK(t.eps == 1e-6);
  CATCH_CHECK(t.decay_norms_biases_embeddings);
  CATCH_CHECK(t.precision == "bf16");
  CATCH_CHECK(t.keep_last == 0);
  CATCH_CHECK(r.source_path == fixture("full.yaml"));
}

CATCH_TEST_CASE("missing keys take their defaults") {
  const Recipe r = load_recipe(fixture("minimal.yaml"));
  CATCH_CHECK(r.seed == 0);
  CATCH_CHECK(r.resume == "auto");
  CATCH_CHECK(r.threads == 0);
  CATCH_CHECK(r.run_dir() == "runs/mini/seed0");
  CATCH_CHECK(r.tokenizer.model_type == "bpe");
  CATCH_CHECK(r.tokenizer.vocab_size == 1000);
  CATCH_CHECK(r.model.arch.max_position_embeddings == 2048);
  CATCH_CHECK(r.model.arch.num_key_value_heads == 0);
  CATCH_REQUIRE(r.stages.size() == 1);
  CATCH_CHECK(r.stages[0].name == "main");
  CATCH_CHECK(r.stages[0].init.empty());
  CATCH_CHECK(r.stages[0].data.seq_len == 256);
  CATCH_REQUIRE(r.stages[0].data.sources.size() == 1);
  CATCH_CHECK(r.stages[0].data.sources[0].weight == 1.0);
  const TrainSection& t = r.stages[0].train;
  CATCH_CHECK(t.objective == "sft");
  CATCH_CHECK(t.steps == 100);
  CATCH_CHECK(t.batch_size == 8);
  CATCH_CHECK(t.lr == 1e-3);
  CATCH_CHECK(t.schedule == "cosine");
  CATCH_CHECK(t.min_lr_ratio == 0.1);
  CATCH_CHECK(t.beta2 == 0.95);
  CATCH_CHECK(t.grad_clip == 1.0);
  CATCH_CHECK(t.precision == "fp32");
  CATCH_CHECK(t.checkpoint_every == 50);
  CATCH_CHECK(t.keep_last == 3);
}

CATCH_TEST_CASE("include deep-merges the including file over the included one") {
  CATCH_SECTION("one level") {
    const Recipe r = load_recipe(fixture("child.yaml"));
    CATCH_CHECK(r.name == "child");   // overridden
    CATCH_CHECK(r.seed == 1);         // base only
    CATCH_REQUIRE(r.stages.size() == 1);
    const StageSection& s = r.stages[0];
    CATCH_CHECK(s.train.lr == 0.0005);         // overridden inside a map
    CATCH_CHECK(s.train.weight_decay == 0.05);  // base-only key of the same map kept
    CATCH_CHECK(s.data.seq_len == 64);
    CATCH_REQUIRE(s.data.sources.size() == 1);  // lists replace, not append
    CATCH_CHECK(s.data.sources[0].path == "child.jsonl");
  }
  CATCH_SECTION("nested, relative to each including file") {
    const Recipe r = load_recipe(fixture("nested/grandchild.yaml"));
    CATCH_CHECK(r.seed == 9);
    CATCH_CHECK(r.name == "child");
    CATCH_CHECK(r.stages[0].train.lr == 0.0005);
    CATCH_CHECK(r.stages[0].train.weight_decay == 0.05);
  }
  CATCH_SECTION("a cycle is an error") {
    const std::string msg = load_error(fixture("cycle_a.yaml"));
    CATCH_CHECK_THAT(msg, Contains("include cycle"));
    CATCH_CHECK_THAT(msg, Contains("cycle_b.yaml:1"));
  }
  CATCH_SECTION("problems in an included file name that file and line") {
    const std::string msg = load_error(fixture("includes_bad.yaml"));
    CATCH_CHECK_THAT(msg, Contains("train.wramup_steps: unknown key (" + fixture("bad_base.yaml") +
                                   ":4); did you mean \"warmup_steps\"?"));
  }
}

CATCH_TEST_CASE("missing files and YAML syntax errors name the file") {
  CATCH_CHECK_THAT(load_error(fixture("nope.yaml")), Contains("recipe file not found: " + fixture("nope.yaml")));
  const std::string msg = load_error(fixture("syntax.yaml"));
  CATCH_CHECK_THAT(msg, Contains(fixture("syntax.yaml") + ":"));
  CATCH_CHECK_THAT(msg, Contains("YAML syntax error"));
}

CATCH_TEST_CASE("command-line overrides") {
  CATCH_SECTION("scalars, flow lists and list items by index") {
    const Recipe r = load_recipe(fixture("stages.yaml"),
                                 {"seed=3", "train.steps=200", "stages.1.train.lr=5e-5",
                                  "data.sources=[{path: a.jsonl, kind: document}]"});
    CATCH_CHECK(r.seed == 3);
    CATCH_REQUIRE(r.stages.size() == 2);
    CATCH_CHECK(r.stages[0].train.steps == 10);   // the stage's own value wins over the default
    CATCH_CHECK(r.stages[1].train.steps == 200);
    CATCH_CHECK(r.stages[1].train.lr == 5e-5);
    CATCH_CHECK(r.stages[0].train.lr == 0.002);
    CATCH_REQUIRE(r.stages[0].data.sources.size() == 1);
    CATCH_CHECK(r.stages[0].data.sources[0].path == "a.jsonl");
    CATCH_CHECK(r.stages[1].data.sources[0].path == "demo.jsonl");
    CATCH_CHECK(r.run_dir() == "runs/staged/seed3");
  }
  CATCH_SECTION("a wrongly typed override") {
    const std::string msg = load_error(fixture("minimal.yaml"), {"train.steps=ten"});
    CATCH_CHECK_THAT(msg, Contains("train.steps: expected an integer, got \"ten\" (command line)"));
    CATCH_CHECK_THAT(load_error(fixture("stages.yaml"), {"stages.1.train.lr=[1]"}),
                     Contains("stages[1].train.lr: expected a number, got a list (command line)"));
  }
  CATCH_SECTION("an unknown override key") {
    CATCH_CHECK_THAT(load_error(fixture("minimal.yaml"), {"train.stpes=3"}),
                     Contains("train.stpes: unknown key (command line); did you mean \"steps\"?"));
    CATCH_CHECK_THAT(load_error(fixture("minimal.yaml"), {"trian.steps=3"}),
                     Contains("trian: unknown key (command line); did you mean \"train\"?"));
  }
  CATCH_SECTION("malformed overrides") {
    CATCH_CHECK_THAT(load_error(fixture("minimal.yaml"), {"steps"}), Contains("expected key.path=value"));
    CATCH_CHECK_THAT(load_error(fixture("minimal.yaml"), {"=3"}), Contains("expected key.path=value"));
    CATCH_CHECK_THAT(load_error(fixture("stages.yaml"), {"stages.2.name=x"}), Contains("stages: no item \"2\""));
  }
}

CATCH_TEST_CASE("an unknown key names its path, file:line and the nearest valid key") {
  const std::string path = fixture("typo.yaml");
  const std::string msg = load_error(path);
  CATCH_CHECK(msg == path + ": train.stpes: unknown key (" + path + ":9); did you mean \"steps\"?");
}

CATCH_TEST_CASE("wrong types: every problem in one message, one per line, with file:line") {
  const std::string path = fixture("bad_types.yaml");
  const std::string msg = load_error(path);
  const std::string at = " (" + path + ":";
  CATCH_CHECK_THAT(msg, Contains("name: expected a string, got a map" + at + "2)"));
  CATCH_CHECK_THAT(msg, Contains("tokenizer.train_files: expected a list, got \"a.jsonl\"" + at + "5)"));
  CATCH_CHECK_THAT(msg, Contains("model.arch.tie_word_embeddings: expected true or false, got \"maybe\"" + at + "7)"));
  CATCH_CHECK_THAT(msg, Contains("data.seq_len: expected an integer, got \"1.5\"" + at + "10)"));
  CATCH_CHECK_THAT(msg, Contains("train.steps: expected an integer, got \"ten\"" + at + "12)"));
  CATCH_CHECK_THAT(msg, Contains("train.lr: expected a number, got a list" + at + "13)"));
  CATCH_CHECK_THAT(msg, Contains("stages[1].train.lrr: unknown key" + at + "18); did you mean \"lr\"?"));
  // validate() problems come in the same message
  CATCH_CHECK_THAT(msg, Contains("stages[0].train.schedule: \"cosin\" is not one of: cosine, linear, constant"));
  // a top-level default is read once per stage but reported once
  CATCH_CHECK(count(msg, "train.steps: expected") == 1);
  // one problem per line, each prefixed with the recipe path
  const std::vector<std::string> lines = split(msg, '\n');
  CATCH_CHECK(lines.size() == 9);  // 7 type/key problems + schedule in each of the 2 stages
  for (const auto& line : lines) CATCH_CHECK(line.rfind(path + ": ", 0) == 0);
}

CATCH_TEST_CASE("stages inherit the top-level data and train unless they override them") {
  const Recipe r = load_recipe(fixture("stages.yaml"));
  CATCH_REQUIRE(r.stages.size() == 2);
  const StageSection &pre = r.stages[0], &align = r.stages[1];
  CATCH_CHECK(pre.name == "pretrain");
  CATCH_CHECK(pre.init.empty());
  CATCH_CHECK(pre.train.steps == 10);
  CATCH_CHECK(pre.train.lr == 0.002);    // inherited
  CATCH_CHECK(pre.data.sources[0].path == "docs.jsonl");
  CATCH_CHECK(align.name == "align");
  CATCH_CHECK(align.init == "ckpt/step_000010");
  CATCH_CHECK(align.train.steps == 20);  // inherited
  CATCH_CHECK(align.train.lr == 1e-4);   // overridden
  CATCH_CHECK(align.data.seq_len == 64);
  CATCH_REQUIRE(align.data.sources.size() == 1);
  CATCH_CHECK(align.data.sources[0].path == "demo.jsonl");
  CATCH_CHECK(align.data.sources[0].weight == 2.0);
}

CATCH_TEST_CASE("to_yaml writes every default, expands stages and round-trips") {
  const std::string dir = test::fresh_dir("config_round_trip");
  for (const char* name : {"full.yaml", "minimal.yaml", "stages.yaml"}) {
    const Recipe r = load_recipe(fixture(name));
    const std::string text = to_yaml(r);
    CATCH_CHECK(to_yaml(r) == text);  // stable
    CATCH_CHECK(text.find("\ndata:") == std::string::npos);   // only stages are written
    CATCH_CHECK(text.find("\ntrain:") == std::string::npos);
    CATCH_CHECK_THAT(text, Contains("checkpoint_every:"));      // defaults written out
    CATCH_CHECK_THAT(text, Contains("initializer_range:"));
    const std::string path = dir + "/" + name;
    test::write_text(path, text);
    const Recipe again = load_recipe(path);
    CATCH_CHECK(to_yaml(again) == text);
    CATCH_CHECK(config_hash(again) == config_hash(r));
  }
}

CATCH_TEST_CASE("config_hash ignores resume-time keys and sees training keys") {
  const Recipe r = load_recipe(fixture("minimal.yaml"));
  const std::string h = config_hash(r);
  CATCH_CHECK(h.size() == 16);
  Recipe same = r;
  same.threads = 8;
  same.resume = "never";
  same.allow_changed = true;
  same.out_dir = "elsewhere";
  CATCH_CHECK(config_hash(same) == h);
  CATCH_CHECK(config_hash(load_recipe(fixture("minimal.yaml"), {"threads=4", "resume=never"})) == h);
  Recipe changed = r;
  changed.stages[0].train.lr = 2e-3;
  CATCH_CHECK(config_hash(changed) != h);
  CATCH_CHECK(config_hash(load_recipe(fixture("minimal.yaml"), {"train.lr=2e-3"})) != h);
  // Deterministic CUDA kernels change the numbers there: hashed when asked for; at its default
  // the key leaves the hash as it was before the key existed (earlier runs resume).
  CATCH_CHECK(to_yaml(r).find("\ndeterministic: false\n") != std::string::npos);
  CATCH_CHECK(config_hash(load_recipe(fixture("minimal.yaml"), {"deterministic=false"})) == h);
  CATCH_CHECK(config_hash(load_recipe(fixture("minimal.yaml"), {"deterministic=true"})) != h);
}

CATCH_TEST_CASE("config_hash sees the global batch, not how ranks and micro-batches split it; dist is not hashed") {
  const auto hash = [](std::vector<std::string> o, int world) { return config_hash(load_recipe(fixture("minimal.yaml"), o), world); };
  const std::string h = hash({"train.batch_size=8", "train.grad_accum=1"}, 1);
  CATCH_CHECK(hash({"train.batch_size=4"}, 2) == h);                        // 2 ranks x 4
  CATCH_CHECK(hash({"train.batch_size=2", "train.grad_accum=2"}, 2) == h);  // 2 ranks x 2 x accumulation 2
  CATCH_CHECK(hash({"train.batch_size=4", "train.grad_accum=2"}, 1) == h);
  CATCH_CHECK(hash({"train.batch_size=4"}, 1) != h);                        // another global batch
  CATCH_CHECK(hash({"train.batch_size=8", "dist.zero=1", "dist.bucket_mb=1", "dist.checkpoint=sharded"}, 1) == h);
}

CATCH_TEST_CASE("eval.async and eval.threads: not hashed, written only when set, round-trip, checked") {
  const Recipe r = load_recipe(fixture("minimal.yaml"));
  CATCH_CHECK(to_yaml(r).find("async") == std::string::npos);  // a recipe without them resolves as before they existed
  const Recipe a = load_recipe(fixture("minimal.yaml"), {"eval.async=true", "eval.threads=3"});
  CATCH_CHECK(a.eval.async);
  CATCH_CHECK(a.eval.threads == 3);
  CATCH_CHECK(config_hash(a) == config_hash(r));  // when the eval runs does not change what is trained
  const std::string dir = test::fresh_dir("config_async");
  test::write_text(dir + "/a.yaml", to_yaml(a));
  const Recipe again = load_recipe(dir + "/a.yaml");
  CATCH_CHECK(again.eval.async);
  CATCH_CHECK(again.eval.threads == 3);
  CATCH_CHECK_THAT(load_error(fixture("minimal.yaml"), {"eval.threads=-1"}), Contains("eval.threads: must be >= 0"));
}

CATCH_TEST_CASE("dist settings are validated with their key paths") {
  const std::string msg = load_error(fixture("minimal.yaml"), {"dist.zero=2", "dist.backend=mpi", "dist.bucket_mb=0",
                                                               "dist.timeout_s=-1"});
  CATCH_CHECK_THAT(msg, Contains("dist.zero: must be 0 (no sharding) or 1 (ZeRO-1), got 2"));
  CATCH_CHECK_THAT(msg, Contains("dist.backend"));
  CATCH_CHECK_THAT(msg, Contains("dist.bucket_mb: must be > 0"));
  CATCH_CHECK_THAT(msg, Contains("dist.timeout_s: must be > 0"));
  CATCH_CHECK_THAT(load_error(fixture("minimal.yaml"), {"dist.checkpoint=sharded"}),
                   Contains("dist.checkpoint: sharded checkpoints hold ZeRO-1 optimizer shards: set dist.zero: 1"));
}

CATCH_TEST_CASE("validate reports every semantic problem with its key path") {
  CATCH_SECTION("through load_recipe") {
    const std::string msg = load_error(fixture("minimal.yaml"), {"train.lr=-1", "train.schedule=cosin"});
    CATCH_CHECK_THAT(msg, Contains("stages[0].train.lr: must be > 0 (got -1.0)"));
    CATCH_CHECK_THAT(msg, Contains("stages[0].train.schedule: \"cosin\" is not one of: cosine, linear, constant"));
  }
  CATCH_SECTION("on a struct") {
    Recipe r = load_recipe(fixture("stages.yaml"));
    CATCH_CHECK(validate(r).empty());
    r.tokenizer.path.clear();
    r.threads = -1;
    r.model.arch.num_key_value_heads = 3;  // 4 heads: not a multiple
    r.stages[1].name = "pretrain";
    StageSection& s = r.stages[1];
    s.data.sources[0].kind = "story";
    s.data.sources[0].weight = 0;
    s.data.seq_len = 1;
    s.train.objective = "dpp";
    s.train.warmup_steps = 20;
    s.train.min_lr_ratio = 1.5;
    s.train.beta2 = 1.0;
    s.train.precision = "fp16";
    s.train.checkpoint_every = 0;
    std::string all;
    for (const auto& p : validate(r)) all += p + "\n";
    CATCH_CHECK_THAT(all, Contains("tokenizer.path: must name"));
    CATCH_CHECK_THAT(all, Contains("threads: must be >= 0 (got -1)"));
    CATCH_CHECK_THAT(all, Contains("model.arch: num_attention_heads (4) must be a multiple of num_key_value_heads (3)"));
    CATCH_CHECK_THAT(all, Contains("stages[1].name: \"pretrain\" is used by an earlier stage"));
    CATCH_CHECK_THAT(all, Contains("stages[1].data.sources[0].kind: \"story\" is not one of: document, demonstration, explained, preference"));
    CATCH_CHECK_THAT(all, Contains("stages[1].data.sources[0].weight: must be > 0 (got 0.0)"));
    CATCH_CHECK_THAT(all, Contains("stages[1].data.seq_len: must be >= 2 (got 1)"));
    CATCH_CHECK_THAT(all, Contains("stages[1].train.objective: \"dpp\" is not one of: sft, dpo, ipo, robust, conservative, simpo, rpo"));
    CATCH_CHECK_THAT(all, Contains("stages[1].train.warmup_steps: must be >= 0 and < steps (got 20, steps 20)"));
    CATCH_CHECK_THAT(all, Contains("stages[1].train.min_lr_ratio: must be in [0, 1] (got 1.5)"));
    CATCH_CHECK_THAT(all, Contains("stages[1].train.beta2: must be in [0, 1) (got 1.0)"));
    CATCH_CHECK_THAT(all, Contains("stages[1].train.precision: \"fp16\" is not one of: fp32, bf16"));
    CATCH_CHECK_THAT(all, Contains("stages[1].train.checkpoint_every: must be > 0 (got 0)"));
    CATCH_CHECK(count(all, "\n") == 13);
    CATCH_CHECK(count(all, "stages[0]") == 0);  // the untouched stage stays clean
  }
  CATCH_SECTION("model.from skips the architecture checks") {
    Recipe r = load_recipe(fixture("minimal.yaml"));
    r.model.arch = ModelConfig{};
    CATCH_CHECK_FALSE(validate(r).empty());
    r.model.from = "models/tinyllama";
    CATCH_CHECK(validate(r).empty());
  }
}

CATCH_TEST_CASE("rebase moves every path under OLD/ to NEW/, and only at a directory boundary") {
  const Recipe r = load_recipe(fixture("stages.yaml"),
                               {"rebase=[\"docs.jsonl=w/docs2.jsonl\", \"ckpt/=runs/base\"]",
                                "eval.heldout=[{path: ckpt2/held.jsonl}]", "eval.suites=[ckpt/s.yaml]",
                                "tokenizer.train_files=[ckpt/corpus.jsonl]"});
  CATCH_CHECK(r.stages[0].data.sources[0].path == "w/docs2.jsonl");     // the whole path
  CATCH_CHECK(r.stages[1].init == "runs/base/step_000010");              // a prefix directory
  CATCH_CHECK(r.stages[1].data.sources[0].path == "demo.jsonl");         // no match
  CATCH_CHECK(r.eval.heldout[0].path == "ckpt2/held.jsonl");             // "ckpt" is not "ckpt2"
  CATCH_CHECK(r.eval.suites[0] == "runs/base/s.yaml");
  CATCH_CHECK(r.tokenizer.train_files[0] == "runs/base/corpus.jsonl");
  CATCH_CHECK(r.tokenizer.path == "tok.model");
  CATCH_CHECK_THAT(load_error(fixture("stages.yaml"), {"rebase=[nothing, \"=x\"]"}),
                   Contains("rebase[0]: \"nothing\" must be OLD=NEW"));
  CATCH_CHECK_THAT(load_error(fixture("stages.yaml"), {"rebase=[nothing, \"=x\"]"}), Contains("rebase[1]: \"=x\" must be OLD=NEW"));
}

CATCH_TEST_CASE("a stage's seed defaults to the recipe's; an explicit one is checked") {
  const Recipe r = load_recipe(fixture("stages.yaml"), {"seed=5", "stages.0.seed=2"});
  CATCH_CHECK(r.stage_seed(0) == 2);
  CATCH_CHECK(r.stage_seed(1) == 5);
  CATCH_CHECK(config_hash(r) != config_hash(load_recipe(fixture("stages.yaml"), {"seed=5"})));
  CATCH_CHECK_THAT(load_error(fixture("stages.yaml"), {"stages.1.seed=-3"}),
                   Contains("stages[1].seed: must be >= 0, or -1 for the recipe's seed (got -3)"));
}
