// The chat template against hand-written token/weight/span expectations (byte-level fake
// tokenizer: 'x' -> 10 + 'x'; markers system 3, user 4, assistant 5, end 6, rationale 7, /rationale 8).
#include <torch/torch.h>

#include "catch.h"

#include "datasets/chat_template.h"
#include "datasets/base/util.h"
#include "tests/test_tokenizer_fake.h"

using ethos_catch::Contains;
using namespace ethos;

namespace {

constexpr int B = 1, E = 2, SYS = 3, USR = 4, AST = 5, END = 6, RAT = 7, RATE = 8;
int c(char ch) { return test::FakeTokenizer::kByteBase + static_cast<unsigned char>(ch); }

Record demonstration(std::vector<Message> messages) {
  Record r;
  r.kind = RecordKind::demonstration;
  r.where = "test:1";
  r.messages = std::move(messages);
  return r;
}

}  // namespace

CATCH_TEST_CASE("template: a demonstration's tokens, weights and spans", "[template]") {
  test::FakeTokenizer tok;
  ChatTemplate tmpl(tok);
  TemplateOptions opt;
  opt.action_weight = 0.5f;
  const auto ex = tmpl.render(demonstration({{"system", "s"}, {"user", "hi"}, {"assistant", "ok"}}), opt);
  const std::vector<int> tokens{B, SYS, c('s'), END, USR, c('h'), c('i'), END, AST, c('o'), c('k'), END};
  const std::vector<float> weights{0, 0, 0, 0, 0, 0, 0, 0, 0, 0.5f, 0.5f, 0.5f};
  const std::vector<unsigned char> span{0, 0, 0, 0, 0, 0, 0, 0, 0, span_action, span_action, span_action};
  CATCH_CHECK(ex.tokens == tokens);
  CATCH_CHECK(ex.weights == weights);
  CATCH_CHECK(ex.span == span);

  // Every assistant turn of a multi-turn demonstration is a target.
  const auto multi = tmpl.render(demonstration({{"user", "a"}, {"assistant", "b"}, {"user", "c"}, {"assistant", "d"}}));
  const std::vector<int> mt{B, USR, c('a'), END, AST, c('b'), END, USR, c('c'), END, AST, c('d'), END};
  const std::vector<float> mw{0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 1, 1};
  CATCH_CHECK(multi.tokens == mt);
  CATCH_CHECK(multi.weights == mw);
}

CATCH_TEST_CASE("template: an explained record puts the weighted rationale before the action", "[template]") {
  test::FakeTokenizer tok;
  ChatTemplate tmpl(tok);
  Record r = demonstration({{"user", "q"}, {"assistant", "no"}});
  r.kind = RecordKind::explained;
  r.rationale = "why";
  TemplateOptions opt;
  opt.rationale_weight = 0.25f;
  const auto ex = tmpl.render(r, opt);
  const std::vector<int> tokens{B, USR, c('q'), END, AST, RAT, c('w'), c('h'), c('y'), RATE, c('n'), c('o'), END};
  const std::vector<float> weights{0, 0, 0, 0, 0, 0.25f, 0.25f, 0.25f, 0.25f, 0.25f, 1, 1, 1};
  const std::vector<unsigned char> span{0, 0, 0, 0, 0, 2, 2, 2, 2, 2, 1, 1, 1};
  CATCH_CHECK(ex.tokens == tokens);
  CATCH_CHECK(ex.weights == weights);
  CATCH_CHECK(ex.span == span);

  // rationale_weight 0 drops the span: token-for-token the demonstration of the same item.
  opt.rationale_weight = 0.0f;
  const auto dropped = tmpl.render(r, opt);
  const auto demo = tmpl.render(demonstration(r.messages), opt);
  CATCH_CHECK(dropped.tokens == demo.tokens);
  CATCH_CHECK(dropped.weights == demo.weights);
  CATCH_CHECK(dropped.span == demo.span);
  CATCH_CHECK(dropped.tokens.size() == tokens.size() - 5);
}

CATCH_TEST_CASE("template: documents are BOS text EOS", "[template]") {
  Record doc;
  doc.kind = RecordKind::document;
  doc.text = "ab";
  TemplateOptions opt;
  opt.document_weight = 0.75f;
  test::FakeTokenizer tok;
  const auto ex = ChatTemplate(tok).render(doc, opt);
  CATCH_CHECK(ex.tokens == std::vector<int>{B, c('a'), c('b'), E});
  CATCH_CHECK(ex.weights == std::vector<float>{0, 0.75f, 0.75f, 0.75f});
  CATCH_CHECK(ex.span == std::vector<unsigned char>{0, span_text, span_text, span_text});

  test::FakeTokenizer no_bos("", /*with_bos=*/false);
  const auto nb = ChatTemplate(no_bos).render(doc, opt);
  CATCH_CHECK(nb.tokens == std::vector<int>{c('a'), c('b'), E});
  CATCH_CHECK(nb.weights == std::vector<float>{0, 0.75f, 0.75f});
}

CATCH_TEST_CASE("template: render_prompt is exactly the prefix of render", "[template]") {
  test::FakeTokenizer tok;
  ChatTemplate tmpl(tok);
  const std::vector<std::vector<Message>> conversations{
      {{"user", "hello"}, {"assistant", "hi there"}},
      {{"system", "be brief"}, {"user", "a"}, {"assistant", "b"}, {"user", "c"}, {"assistant", "d"}},
  };
  for (const auto& conv : conversations) {
    const std::vector<Message> context(conv.begin(), conv.end() - 1);
    const std::vector<int> prompt = tmpl.render_prompt(context);
    for (RecordKind kind : {RecordKind::demonstration, RecordKind::explained}) {
      Record r = demonstration(conv);
      r.kind = kind;
      r.rationale = "because";
      const auto full = tmpl.render(r);
      CATCH_REQUIRE(full.tokens.size() > prompt.size());
      CATCH_CHECK(std::vector<int>(full.tokens.begin(), full.tokens.begin() + prompt.size()) == prompt);
      CATCH_CHECK(prompt.back() == AST);
      // The final turn's marker carries no loss; the token right after it does.
      CATCH_CHECK(full.weights[prompt.size() - 1] == 0.0f);
      CATCH_CHECK(full.weights[prompt.size()] > 0.0f);
    }
  }
}

CATCH_TEST_CASE("template: preference pairs", "[template]") {
  test::FakeTokenizer tok;
  ChatTemplate tmpl(tok);
  Record r;
  r.kind = RecordKind::preference;
  r.messages = {{"user", "q"}};
  r.chosen = "y";
  r.rejected = "nn";
  const auto pair = tmpl.render_pair(r);
  CATCH_CHECK(pair.prompt == std::vector<int>{B, USR, c('q'), END, AST});
  CATCH_CHECK(pair.chosen == std::vector<int>{c('y'), END});
  CATCH_CHECK(pair.rejected == std::vector<int>{c('n'), c('n'), END});
  CATCH_REQUIRE_THROWS_WITH(tmpl.render(r), Contains("render_pair"));
  CATCH_REQUIRE_THROWS_WITH(tmpl.render_pair(demonstration({{"user", "q"}, {"assistant", "a"}})),
                            Contains("needs a preference record"));
}

CATCH_TEST_CASE("template: a tokenizer without the markers is an error that says how to fix it", "[template]") {
  test::FakeTokenizer tok(ChatTemplate::kRationaleEnd);
  CATCH_REQUIRE_THROWS_AS(ChatTemplate(tok), Error);
  CATCH_REQUIRE_THROWS_WITH(ChatTemplate(tok), Contains("<|/rationale|>") && Contains("ChatTemplate::special_tokens()"));
  CATCH_CHECK(ChatTemplate::special_tokens().size() == 6);
}
