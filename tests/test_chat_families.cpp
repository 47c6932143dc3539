// The chat template's model families (datasets/chat_template.h) against their published formats:
// the text of a fixed conversation equals each family's format, and the ids equal the family's
// reference tokenization of that text: Llama 3 and ChatML encode the whole rendered text with the
// special tokens recognised (Hugging Face's apply_chat_template then encode; the real Llama 3
// tokenizer, and GPT-2's byte-level BPE with ChatML's markers); Llama 2 encodes each dialog turn
// "[INST] user [/INST] answer " as one text between BOS and EOS (Meta's reference code);
// Mistral encodes each message on its own (mistral-common). Then loss masks, auto-detection,
// rationale markers, and a run end to end on a tokenizer.json with the chatml template.
#include "catch.h"
#include <filesystem>
#include <nlohmann/json.hpp>

#include "datasets/base/error.h"
#include "datasets/base/util.h"
#include "datasets/chat_template.h"
#include "datasets/tokenizer/bpe.h"
#include "tests/helpers.h"
#include "tests/train_helpers.h"

using namespace ethos;
using namespace ethos::test;
using ethos_catch::Contains;
namespace fs = std::filesystem;

namespace {

const std::vector<Message> kConversation = {
    {"system", "You are terse."}, {"user", "What is 2+2?"}, {"assistant", "4"}, {"user", "And 3+3?"}};

// (A const char* name: GCC 13 and later warn that a returned reference may dangle when an
// argument is a temporary std::string.)
const Tokenizer& bpe(const char* name) {
  static std::map<std::string, std::unique_ptr<Tokenizer>> cache;
  auto& t = cache[name];
  if (!t) t = load_tokenizer(bpe_reference_dir() + "/" + std::string(name));
  return *t;
}
const Tokenizer& spm() {
  static auto t = load_tokenizer(shared_tokenizer());
  return *t;
}

std::vector<int> cat(std::vector<int> a, const std::vector<int>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

Record demonstration(std::vector<Message> messages, RecordKind kind = RecordKind::demonstration) {
  Record r;
  r.kind = kind;
  r.where = "test:1";
  r.messages = std::move(messages);
  return r;
}

}  // namespace

CATCH_TEST_CASE("llama3: text and ids equal Meta's format encoded whole by the real Llama 3 tokenizer") {
  const Tokenizer& tok = bpe("llama3");
  ChatTemplate t(tok, "llama3");
  const std::string text =
      "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are terse.<|eot_id|>"
      "<|start_header_id|>user<|end_header_id|>\n\nWhat is 2+2?<|eot_id|>"
      "<|start_header_id|>assistant<|end_header_id|>\n\n4<|eot_id|>"
      "<|start_header_id|>user<|end_header_id|>\n\nAnd 3+3?<|eot_id|>"
      "<|start_header_id|>assistant<|end_header_id|>\n\n";
  CATCH_CHECK(t.render_text(kConversation, true) == text);
  CATCH_CHECK(t.render_prompt(kConversation) == tok.encode(text));
  CATCH_CHECK(t.end_id() == 128009);
  // Content is trimmed, as Meta's template does.
  CATCH_CHECK(t.render_prompt({{"user", "  hi \n"}}) == t.render_prompt({{"user", "hi"}}));
}

CATCH_TEST_CASE("chatml: text and ids equal the ChatML format encoded whole") {
  const Tokenizer& tok = bpe("chatml");
  ChatTemplate t(tok, "chatml");
  const std::string text =
      "<|im_start|>system\nYou are terse.<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n"
      "<|im_start|>assistant\n4<|im_end|>\n<|im_start|>user\nAnd 3+3?<|im_end|>\n<|im_start|>assistant\n";
  CATCH_CHECK(t.render_text(kConversation, true) == text);
  CATCH_CHECK(t.render_prompt(kConversation) == tok.encode(text));
  CATCH_CHECK(t.end_id() == 50258);
  // Training: the answer and <|im_end|> carry the loss, the line break after it does not.
  const auto ex = t.render(demonstration({{"user", "What is 2+2?"}, {"assistant", "Four, of course."}}));
  CATCH_CHECK(ex.tokens == tok.encode("<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\nFour, of course.<|im_end|>\n"));
  const std::vector<int> answer = tok.encode("Four, of course.");
  size_t weighted = 0;
  for (float w : ex.weights) weighted += w > 0;
  CATCH_CHECK(weighted == answer.size() + 1);
  CATCH_CHECK(ex.weights[ex.weights.size() - 2] == 1.0f);  // <|im_end|>
  CATCH_CHECK(ex.weights.back() == 0.0f);                  // "\n"
}

CATCH_TEST_CASE("llama2: text, and ids as Meta's reference encodes each dialog turn") {
  const Tokenizer& tok = spm();
  ChatTemplate t(tok, "llama2");
  const std::string text = "<s>[INST] <<SYS>>\nYou are terse.\n<</SYS>>\n\nWhat is 2+2? [/INST] 4 </s><s>[INST] And 3+3? [/INST]";
  CATCH_CHECK(t.render_text(kConversation, true) == text);
  const std::vector<int> expected =
      cat(cat(cat({tok.bos_id()}, tok.encode("[INST] <<SYS>>\nYou are terse.\n<</SYS>>\n\nWhat is 2+2? [/INST] 4 ")),
              {tok.eos_id(), tok.bos_id()}),
          tok.encode("[INST] And 3+3? [/INST]"));
  CATCH_CHECK(t.render_prompt(kConversation) == expected);
  CATCH_CHECK(t.end_id() == tok.eos_id());
}

CATCH_TEST_CASE("mistral: text, and ids as mistral-common encodes each message") {
  const Tokenizer& tok = spm();
  ChatTemplate t(tok, "mistral");
  CATCH_CHECK(t.render_text(kConversation, true) ==
              "<s>[INST] You are terse.\n\nWhat is 2+2? [/INST]4</s>[INST] And 3+3? [/INST]");
  const std::vector<int> expected =
      cat(cat(cat(cat({tok.bos_id()}, tok.encode("[INST] You are terse.\n\nWhat is 2+2? [/INST]")), tok.encode("4")),
              {tok.eos_id()}),
          tok.encode("[INST] And 3+3? [/INST]"));
  CATCH_CHECK(t.render_prompt(kConversation) == expected);
  CATCH_CHECK_THROWS_WITH(t.render_prompt({{"system", "s"}}), Contains("a system prompt must be followed by a user turn"));
}

CATCH_TEST_CASE("every family: the prompt is a prefix of the trained example, and only the answer carries loss") {
  struct Case {
    const Tokenizer* tok;
    const char* format;
  };
  for (const Case& c : {Case{&bpe("llama3"), "llama3"}, Case{&bpe("chatml"), "chatml"}, Case{&spm(), "llama2"},
                        Case{&spm(), "mistral"}, Case{&spm(), "ethos"}}) {
    CATCH_INFO(c.format);
    ChatTemplate t(*c.tok, c.format);
    const std::vector<Message> context = {{"system", "Be kind."}, {"user", "Help me."}};
    auto messages = context;
    messages.push_back({"assistant", "Gladly."});
    const auto ex = t.render(demonstration(messages));
    const auto prompt = t.render_prompt(context);
    CATCH_REQUIRE(ex.tokens.size() > prompt.size());
    CATCH_CHECK(std::vector<int>(ex.tokens.begin(), ex.tokens.begin() + prompt.size()) == prompt);
    const auto answer = t.render_answer("Gladly.");
    CATCH_CHECK(std::vector<int>(ex.tokens.begin() + prompt.size(), ex.tokens.begin() + prompt.size() + answer.size()) == answer);
    CATCH_CHECK(answer.back() == t.end_id());
    for (size_t k = 0; k < ex.tokens.size(); ++k) {
      const bool in_answer = k >= prompt.size() && k < prompt.size() + answer.size();
      CATCH_CHECK(ex.weights[k] == (in_answer ? 1.0f : 0.0f));
    }
  }
}

CATCH_TEST_CASE("auto picks the family by the tokenizer's special tokens; rationale spans need their markers") {
  CATCH_CHECK(ChatTemplate(bpe("llama3")).format() == "llama3");
  CATCH_CHECK(ChatTemplate(bpe("chatml")).format() == "chatml");
  CATCH_CHECK(ChatTemplate(spm()).format() == "ethos");
  CATCH_CHECK_THROWS_WITH(ChatTemplate(bpe("gpt2")), Contains("set chat_template to the model family's format"));
  CATCH_CHECK_THROWS_WITH(ChatTemplate(bpe("gpt2"), "llama3"), Contains("has no <|start_header_id|>, <|end_header_id|>, <|eot_id|>"));
  CATCH_CHECK_THROWS_WITH(ChatTemplate(spm(), "vicuna"), Contains("is not one of auto, ethos, llama3"));

  ChatTemplate t(bpe("llama3"), "llama3");
  CATCH_CHECK_FALSE(t.has_rationale());
  Record r = demonstration({{"user", "Help me."}, {"assistant", "Gladly."}}, RecordKind::explained);
  r.rationale = "Helping is right.";
  CATCH_CHECK_THROWS_WITH(t.render(r), Contains("test:1: a rationale span needs the tokens <|rationale|> and <|/rationale|>"));
  TemplateOptions drop;
  drop.rationale_weight = 0;  // the span dropped: the demonstration of the same item
  CATCH_CHECK(t.render(r, drop).tokens == t.render(demonstration(r.messages)).tokens);
}

CATCH_TEST_CASE("a run on a tokenizer.json with the chatml template: trains, checkpoints the tokenizer, generates") {
  const std::string dir = fresh_dir("chat_families_run");
  const std::string tok = bpe_reference_dir() + "/chatml/tokenizer.json";
  write_text(dir + "/demos.jsonl",
             "{\"messages\": [{\"role\": \"user\", \"content\": \"Say hi.\"}, {\"role\": \"assistant\", \"content\": \"Hi there.\"}]}\n"
             "{\"messages\": [{\"role\": \"system\", \"content\": \"Be brief.\"}, {\"role\": \"user\", \"content\": \"Name a colour.\"}, {\"role\": \"assistant\", \"content\": \"Blue.\"}]}\n");
  write_text(dir + "/recipe.yaml",
             "name: chatml\nseed: 0\nout_dir: " + dir + "/run\nthreads: 1\nchat_template: chatml\n"
             "tokenizer: {path: " + tok + "}\n"
             "model:\n  arch: {vocab_size: 0, hidden_size: 16, intermediate_size: 32, num_hidden_layers: 1,"
             " num_attention_heads: 2, num_key_value_heads: 1}\n"
             "data:\n  seq_len: 64\n  sources: [{path: " + dir + "/demos.jsonl, kind: demonstration}]\n"
             "train: {steps: 3, batch_size: 2, lr: 0.001, warmup_steps: 0, checkpoint_every: 3, log_every: 1}\n");
  const auto r = run(ethos_bin() + " train " + dir + "/recipe.yaml 2>&1");
  CATCH_INFO(r.output);
  CATCH_REQUIRE(r.status == 0);
  const std::string ckpt = dir + "/run/checkpoints/step_000003";
  CATCH_CHECK(fs::exists(ckpt + "/tokenizer.json"));
  CATCH_CHECK_FALSE(fs::exists(ckpt + "/tokenizer.model"));
  CATCH_CHECK(read_file(ckpt + "/tokenizer.json") == read_file(tok));
  CATCH_CHECK(read_file(ckpt + "/config.yaml").find("chat_template: chatml") != std::string::npos);
  const auto g = run(ethos_bin() + " generate --checkpoint " + ckpt + " --prompt 'Say hi.' --max-new-tokens 4 2>&1");
  CATCH_INFO(g.output);
  CATCH_CHECK(g.status == 0);
  // Another family's template on the same tokenizer is refused before any work.
  const auto bad = run(ethos_bin() + " generate --checkpoint " + ckpt + " --chat-template llama3 --prompt x 2>&1");
  CATCH_CHECK(bad.status != 0);
  CATCH_CHECK_THAT(bad.output, Contains("chat_template llama3: the tokenizer"));
}

CATCH_TEST_CASE("auto falls back to the model's config.json model_type when the tokenizer names no family") {
  const std::string dir = fresh_dir("chat_families_model_type");
  const Tokenizer& plain = bpe("gpt2");  // no family's special tokens
  auto with_type = [&](const std::string& type) {
    write_text(dir + "/config.json", "{\"model_type\": \"" + type + "\"}");
    return ChatTemplate::resolve("auto", plain, dir);
  };
  CATCH_CHECK(with_type("llama") == "llama2");
  CATCH_CHECK(with_type("mistral") == "mistral");
  CATCH_CHECK(with_type("mixtral") == "mistral");
  CATCH_CHECK(with_type("qwen2") == "chatml");
  CATCH_CHECK_THROWS_WITH(with_type("gemma"), Contains("model_type 'gemma' names no family; set chat_template"));
  CATCH_CHECK_THROWS_WITH(ChatTemplate::resolve("auto", plain, ""), Contains("set chat_template"));
  // The tokenizer's own markers come first; an explicit value is taken as it is.
  write_text(dir + "/config.json", "{\"model_type\": \"llama\"}");
  CATCH_CHECK(ChatTemplate::resolve("auto", bpe("chatml"), dir) == "chatml");
  CATCH_CHECK(ChatTemplate::resolve("llama3", plain, dir) == "llama3");
}

CATCH_TEST_CASE("a preference pair's too-long answer is named by its field in every family") {
  ::setenv("ETHOS_MAX_TOKENIZE_BYTES", "40", 1);  // more than llama2's "[INST] Help. [/INST]"
  Record r;
  r.kind = RecordKind::preference;
  r.where = "pairs.jsonl:3";
  r.messages = {{"user", "Help."}};
  for (const char* format : {"ethos", "llama2"}) {
    ChatTemplate t(spm(), format);
    r.chosen = "a chosen answer that is longer than forty bytes", r.rejected = "no";
    CATCH_CHECK_THROWS_WITH(t.render_pair(r), Contains("pairs.jsonl:3: field \"chosen\" is"));
    r.chosen = "ok", r.rejected = "a rejected answer that is longer than forty bytes";
    CATCH_CHECK_THROWS_WITH(t.render_pair(r), Contains("pairs.jsonl:3: field \"rejected\" is"));
  }
  ::unsetenv("ETHOS_MAX_TOKENIZE_BYTES");
}
