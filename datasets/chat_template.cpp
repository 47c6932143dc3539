// The chat template: records -> token ids with per-token loss weights and span kinds.
// Each text piece is encoded on its own and the ids are concatenated with the role markers,
// so a marker never merges with neighbouring text.
#include "datasets/chat_template.h"

#include "datasets/base/limits.h"
#include "datasets/base/util.h"

namespace ethos {

std::vector<std::string> ChatTemplate::special_tokens() {
  return {kSystem, kUser, kAssistant, kEnd, kRationale, kRationaleEnd};
}

ChatTemplate::ChatTemplate(const Tokenizer& tok) : tok_(tok) {
  std::string missing;
  auto id_of = [&](const char* piece) {
    const int id = tok.piece_to_id(piece);
    if (id < 0) missing += (missing.empty() ? "" : ", ") + std::string(piece);
    return id;
  };
  system_ = id_of(kSystem);
  user_ = id_of(kUser);
  assistant_ = id_of(kAssistant);
  end_ = id_of(kEnd);
  rationale_ = id_of(kRationale);
  rationale_end_ = id_of(kRationaleEnd);
  if (!missing.empty())
    throw Error("the tokenizer has no chat marker " + missing +
                ": train the tokenizer with ChatTemplate::special_tokens() as user-defined symbols "
                "(`ethos tokenizer train` does this)");
}

namespace {

// Appends ids with one weight and span kind each.
struct Builder {
  TokenizedExample ex;
  void add(const std::vector<int>& ids, float weight, SpanKind span) {
    for (int id : ids) add(id, weight, span);
  }
  void add(int id, float weight, SpanKind span) {
    ex.tokens.push_back(id);
    ex.weights.push_back(weight);
    ex.span.push_back(span);
  }
};

// tok.encode with the tokenizer's input limit: sentencepiece holds about 90 bytes per input byte
// while it encodes (a 17 MiB text peaked at 1.7 GB), so one text is bounded, not only one line.
std::vector<int> encode(const Tokenizer& tok, const std::string& text, const std::string& where, const char* field) {
  const uint64_t max = limit_value(kMaxTokenizeBytes);
  if (text.size() > max)
    throw Error((where.empty() ? std::string("prompt") : where) + ": " + field + " is " + human_bytes(text.size()) +
                ", more than the tokenizer takes as one text (" + limit_hint(kMaxTokenizeBytes) +
                "); split a long document into several records");
  return tok.encode(text);
}

}  // namespace

TokenizedExample ChatTemplate::render(const Record& r, const TemplateOptions& opt) const {
  Builder b;
  if (r.kind == RecordKind::document) {
    if (tok_.bos_id() >= 0) b.add(tok_.bos_id(), 0.0f, span_context);
    b.add(encode(tok_, r.text, r.where, "field \"text\""), opt.document_weight, span_text);
    if (tok_.eos_id() >= 0) b.add(tok_.eos_id(), opt.document_weight, span_text);
    if (!b.ex.weights.empty()) b.ex.weights[0] = 0.0f;  // nothing predicts the first token
    return b.ex;
  }
  if (r.kind == RecordKind::preference)
    throw Error(r.where + ": a preference record renders as a pair (ChatTemplate::render_pair), not as one example");

  if (tok_.bos_id() >= 0) b.add(tok_.bos_id(), 0.0f, span_context);
  const bool with_rationale = r.kind == RecordKind::explained && opt.rationale_weight != 0.0f;
  for (size_t i = 0; i < r.messages.size(); ++i) {
    const Message& m = r.messages[i];
    if (m.role != "assistant") {
      b.add(m.role == "system" ? system_ : user_, 0.0f, span_context);
      b.add(encode(tok_, m.content, r.where, "a message's content"), 0.0f, span_context);
      b.add(end_, 0.0f, span_context);
      continue;
    }
    b.add(assistant_, 0.0f, span_context);
    if (with_rationale && i + 1 == r.messages.size()) {
      b.add(rationale_, opt.rationale_weight, span_rationale);
      b.add(encode(tok_, r.rationale, r.where, "field \"rationale\""), opt.rationale_weight, span_rationale);
      b.add(rationale_end_, opt.rationale_weight, span_rationale);
    }
    b.add(encode(tok_, m.content, r.where, "the assistant's answer"), opt.action_weight, span_action);
    b.add(end_, opt.action_weight, span_action);
  }
  return b.ex;
}

std::vector<int> ChatTemplate::render_prompt(const std::vector<Message>& context) const {
  std::vector<int> ids;
  if (tok_.bos_id() >= 0) ids.push_back(tok_.bos_id());
  for (const Message& m : context) {
    ids.push_back(m.role == "system" ? system_ : m.role == "user" ? user_ : assistant_);
    const std::vector<int> text = encode(tok_, m.content, "", "a message's content");
    ids.insert(ids.end(), text.begin(), text.end());
    ids.push_back(end_);
  }
  ids.push_back(assistant_);
  return ids;
}

ChatTemplate::Pair ChatTemplate::render_pair(const Record& r, const TemplateOptions& opt) const {
  if (r.kind != RecordKind::preference)
    throw Error(r.where + ": render_pair needs a preference record, got a " + to_string(r.kind) + " record");
  Pair p;
  p.prompt = render_prompt(r.messages);
  auto append = [](std::vector<int>& to, const std::vector<int>& ids) { to.insert(to.end(), ids.begin(), ids.end()); };
  if (!r.rationale.empty() && opt.rationale_weight != 0.0f) {
    p.chosen.push_back(rationale_);
    append(p.chosen, encode(tok_, r.rationale, r.where, "field \"rationale\""));
    p.chosen.push_back(rationale_end_);
    p.chosen_weights.assign(p.chosen.size(), opt.rationale_weight);
  }
  append(p.chosen, encode(tok_, r.chosen, r.where, "field \"chosen\""));
  p.chosen.push_back(end_);
  p.chosen_weights.resize(p.chosen.size(), opt.action_weight);
  p.rejected = encode(tok_, r.rejected, r.where, "field \"rejected\"");
  p.rejected.push_back(end_);
  return p;
}

}  // namespace ethos
