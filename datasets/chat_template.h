// The one chat template, shared by training and evaluation. Role markers are special
// (user-defined) tokens of the tokenizer:
//   <s> [<|system|> text <|end|>] <|user|> text <|end|> <|assistant|> [<|rationale|> why <|/rationale|>] action <|end|>
// Documents render as  <s> text </s>.
// Loss weights: context (system/user turns, role markers) 0; assistant content and its
// <|end|> `action_weight`; rationale span incl. its markers `rationale_weight`.
// A rationale weight of exactly 0 DROPS the span, so explained data with rationale_weight 0
// is token-for-token the demonstration of the same item (the R1-vs-R2 control).
#pragma once
#include <string>
#include <vector>

#include "datasets/records.h"
#include "datasets/tokenizer/tokenizer.h"

namespace ethos {

// weights[k] is the loss weight for predicting tokens[k] from tokens[0..k-1]; weights[0] = 0.
struct TokenizedExample {
  std::vector<int> tokens;
  std::vector<float> weights;
  std::vector<unsigned char> span;  // per token: SpanKind, for metrics and tests
};

enum SpanKind : unsigned char { span_context = 0, span_action = 1, span_rationale = 2, span_text = 3 };

struct TemplateOptions {
  float action_weight = 1.0f;
  float rationale_weight = 1.0f;
  float document_weight = 1.0f;
};

class ChatTemplate {
 public:
  static constexpr const char* kSystem = "<|system|>";
  static constexpr const char* kUser = "<|user|>";
  static constexpr const char* kAssistant = "<|assistant|>";
  static constexpr const char* kEnd = "<|end|>";
  static constexpr const char* kRationale = "<|rationale|>";
  static constexpr const char* kRationaleEnd = "<|/rationale|>";
  static std::vector<std::string> special_tokens();  // the user-defined symbols to train with

  // Throws Error naming the missing marker when the tokenizer lacks a special token.
  explicit ChatTemplate(const Tokenizer& tok);

  TokenizedExample render(const Record& r, const TemplateOptions& opt = {}) const;
  // The prompt a model continues at generation/eval time: context + "<|assistant|>".
  std::vector<int> render_prompt(const std::vector<Message>& context) const;
  // For preference pairs: prompt tokens and the two completions (each ending in <|end|>).
  // A record with a rationale renders chosen as  <|rationale|> why <|/rationale|> action <|end|>
  // (dropped when opt.rationale_weight is 0, as for explained records). chosen_weights[k] is the
  // NLL weight of chosen[k] (RPO's NLL term): rationale span rationale_weight, the rest action_weight.
  struct Pair {
    std::vector<int> prompt, chosen, rejected;
    std::vector<float> chosen_weights;
  };
  Pair render_pair(const Record& r, const TemplateOptions& opt = {}) const;

  int end_id() const { return end_; }
  int rationale_id() const { return rationale_; }
  int rationale_end_id() const { return rationale_end_; }
  const Tokenizer& tokenizer() const { return tok_; }

 private:
  const Tokenizer& tok_;
  int system_, user_, assistant_, end_, rationale_, rationale_end_;
};

}  // namespace ethos
