// The chat template, shared by training, evaluation and generation. One of five families'
// turn formats (`chat_template:` in a recipe; `auto` picks by the tokenizer's special tokens):
//   ethos    <s> [<|system|> text <|end|>] <|user|> text <|end|> <|assistant|> [<|rationale|> why <|/rationale|>] action <|end|>
//   llama3   <|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\ntext<|eot_id|>...<|start_header_id|>assistant<|end_header_id|>\n\nanswer<|eot_id|>
//   chatml   <|im_start|>system\ntext<|im_end|>\n<|im_start|>user\ntext<|im_end|>\n<|im_start|>assistant\nanswer<|im_end|>\n   (Qwen2)
//   llama2   <s>[INST] <<SYS>>\nsystem\n<</SYS>>\n\nuser [/INST] answer </s><s>[INST] user [/INST]
//   mistral  <s>[INST] user [/INST]answer</s>[INST] user [/INST]   (a system prompt goes before the first user text)
// Role markers are special tokens (ids, never text); each text piece is encoded on its own, so a
// marker never merges with neighbouring text. Rationale spans need <|rationale|> and <|/rationale|>
// in the tokenizer: ethos's own has them; with another family they are used when the tokenizer
// has them as added tokens, and an explained record is an error otherwise (unless its rationale
// weight is 0, which drops the span).
// Documents render as  <s> text </s>.
// Loss weights: context (system/user turns, role markers, the assistant header) 0; assistant
// content and its end-of-turn token `action_weight`; rationale span incl. its markers `rationale_weight`.
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

  // The families, and "auto": ethos when the tokenizer has <|assistant|>, llama3 when it has
  // <|start_header_id|>, chatml when it has <|im_start|>, mistral when "[INST]" is one token;
  // otherwise an Error asking for chat_template.
  static std::vector<std::string> formats();
  // The family `format` names: itself unless "auto"; for auto, by the tokenizer's special tokens
  // as above, then by `model_dir`/config.json's model_type when there is one (llama -> llama2,
  // mistral/mixtral -> mistral, qwen2 -> chatml); otherwise an Error asking for chat_template.
  static std::string resolve(const std::string& format, const Tokenizer& tok, const std::string& model_dir = "");
  // Throws Error naming the missing marker when the tokenizer lacks a special token the format needs.
  explicit ChatTemplate(const Tokenizer& tok, const std::string& format = "auto");
  const std::string& format() const { return format_; }

  TokenizedExample render(const Record& r, const TemplateOptions& opt = {}) const;
  // The prompt a model continues at generation/eval time: context + the assistant's header.
  std::vector<int> render_prompt(const std::vector<Message>& context) const;
  // An assistant answer as it is trained and scored: its text and the end-of-turn token.
  // `field` names the text in an error (a record's "chosen", say).
  std::vector<int> render_answer(const std::string& text, const std::string& where = "",
                                 const char* field = "the assistant's answer") const;
  // The conversation as text in the family's published format (special tokens written out), with
  // the assistant's header at the end when `generation_prompt`; for reading and for tests.
  std::string render_text(const std::vector<Message>& messages, bool generation_prompt) const;
  // For preference pairs: prompt tokens and the two completions (each ending in <|end|>).
  // A record with a rationale renders chosen as  <|rationale|> why <|/rationale|> action <|end|>
  // (dropped when opt.rationale_weight is 0, as for explained records). chosen_weights[k] is the
  // NLL weight of chosen[k] (RPO's NLL term): rationale span rationale_weight, the rest action_weight.
  struct Pair {
    std::vector<int> prompt, chosen, rejected;
    std::vector<float> chosen_weights;
  };
  Pair render_pair(const Record& r, const TemplateOptions& opt = {}) const;

  int end_id() const { return end_; }  // ends an assistant turn: generation stops on it
  int rationale_id() const { return rationale_; }          // -1 when the tokenizer has no rationale markers
  int rationale_end_id() const { return rationale_end_; }  // -1 likewise
  bool has_rationale() const { return rationale_ >= 0 && rationale_end_ >= 0; }
  const Tokenizer& tokenizer() const { return tok_; }

 private:
  enum class Family { ethos, llama3, chatml, llama2, mistral };
  std::vector<int> start_ids() const;  // before the first turn
  bool folds_system() const { return family_ == Family::llama2 || family_ == Family::mistral; }
  // One system or user turn (weight 0); `folded` is a system prompt put in this turn (folds_system).
  std::vector<int> turn_ids(const Message& m, const std::string& folded, const std::string& where) const;
  std::vector<int> assistant_header() const;
  std::vector<int> after_answer() const;  // weight 0 (chatml's line break)
  std::vector<int> rationale_ids(const std::string& why, const std::string& where) const;
  std::vector<int> enc(const std::string& text, const std::string& where = "", const char* field = "a message's content") const;

  const Tokenizer& tok_;
  std::string format_;
  Family family_ = Family::ethos;
  int system_ = -1, user_ = -1, assistant_ = -1, end_ = -1, rationale_ = -1, rationale_end_ = -1;
  int header_start_ = -1, header_end_ = -1;  // llama3 <|start_header_id|> <|end_header_id|>; chatml <|im_start|>
};

}  // namespace ethos
