// The chat template: records -> token ids with per-token loss weights and span kinds, in one of
// five families' formats (chat_template.h). Each text piece is encoded on its own and the ids
// are concatenated with the role markers, so a marker never merges with neighbouring text.
#include "datasets/chat_template.h"

#include <nlohmann/json.hpp>

#include "datasets/base/limits.h"
#include "datasets/base/util.h"

namespace ethos {

std::vector<std::string> ChatTemplate::special_tokens() {
  return {kSystem, kUser, kAssistant, kEnd, kRationale, kRationaleEnd};
}

std::vector<std::string> ChatTemplate::formats() { return {"auto", "ethos", "llama3", "chatml", "llama2", "mistral"}; }

std::string ChatTemplate::resolve(const std::string& format, const Tokenizer& tok, const std::string& model_dir) {
  if (format != "auto") return format;
  if (tok.piece_to_id(kAssistant) >= 0) return "ethos";
  if (tok.piece_to_id("<|start_header_id|>") >= 0) return "llama3";
  if (tok.piece_to_id("<|im_start|>") >= 0) return "chatml";
  if (tok.piece_to_id("[INST]") >= 0) return "mistral";
  std::string model_type;
  const std::string cfg = model_dir.empty() ? "" : model_dir + "/config.json";
  if (!cfg.empty() && file_exists(cfg)) {
    const nlohmann::json j = parse_json(read_text_file(cfg, kMaxConfigBytes, "model config.json"), cfg, false);
    if (j.is_object() && j.contains("model_type") && j["model_type"].is_string()) model_type = j["model_type"].get<std::string>();
    if (model_type == "llama") return "llama2";
    if (model_type == "mistral" || model_type == "mixtral") return "mistral";
    if (model_type == "qwen2") return "chatml";
  }
  throw Error("chat_template auto: the tokenizer " + (tok.path().empty() ? std::string() : tok.path() + " ") +
              "has none of <|assistant|> (ethos), <|start_header_id|> (llama3), <|im_start|> (chatml) or [INST] "
              "(mistral)" + (model_type.empty() ? std::string() : " and model_type '" + model_type + "' names no family") +
              "; set chat_template to the model family's format (llama2, mistral, chatml, llama3, ethos)");
}

ChatTemplate::ChatTemplate(const Tokenizer& tok, const std::string& format)
    : tok_(tok), format_(resolve(format, tok)) {
  std::string missing;
  auto id_of = [&](const char* piece) {
    const int id = tok.piece_to_id(piece);
    if (id < 0) missing += (missing.empty() ? "" : ", ") + std::string(piece);
    return id;
  };
  if (format_ == "ethos") {
    family_ = Family::ethos;
    system_ = id_of(kSystem);
    user_ = id_of(kUser);
    assistant_ = id_of(kAssistant);
    end_ = id_of(kEnd);
    rationale_ = id_of(kRationale);
    rationale_end_ = id_of(kRationaleEnd);
    if (!missing.empty())
      throw Error("the tokenizer has no chat marker " + missing +
                  ": train the tokenizer with ChatTemplate::special_tokens() as user-defined symbols "
                  "(`ethos tokenizer train` does this), or set chat_template to the model family's format");
    return;
  }
  if (format_ == "llama3") {
    family_ = Family::llama3;
    header_start_ = id_of("<|start_header_id|>");
    header_end_ = id_of("<|end_header_id|>");
    end_ = id_of("<|eot_id|>");
    if (tok.bos_id() < 0) missing += (missing.empty() ? "" : ", ") + std::string("a BOS token (<|begin_of_text|>)");
  } else if (format_ == "chatml") {
    family_ = Family::chatml;
    header_start_ = id_of("<|im_start|>");
    end_ = id_of("<|im_end|>");
  } else if (format_ == "llama2" || format_ == "mistral") {
    family_ = format_ == "llama2" ? Family::llama2 : Family::mistral;
    end_ = tok.eos_id();
    if (tok.bos_id() < 0 || end_ < 0) missing = "a BOS and an EOS token (<s>, </s>)";
  } else {
    throw Error("chat_template '" + format_ + "' is not one of auto, ethos, llama3, chatml, llama2, mistral");
  }
  if (!missing.empty())
    throw Error("chat_template " + format_ + ": the tokenizer " + (tok.path().empty() ? std::string() : tok.path() + " ") +
                "has no " + missing + "; use the tokenizer of that model family, or the family's own chat_template");
  // Rationale spans, where the tokenizer has the markers (added tokens).
  rationale_ = tok.piece_to_id(kRationale);
  rationale_end_ = tok.piece_to_id(kRationaleEnd);
  if (rationale_ < 0 || rationale_end_ < 0) rationale_ = rationale_end_ = -1;
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

std::vector<int> ChatTemplate::enc(const std::string& text, const std::string& where, const char* field) const {
  return encode(tok_, text, where, field);
}

std::vector<int> ChatTemplate::start_ids() const {
  switch (family_) {
    case Family::ethos: return tok_.bos_id() >= 0 ? std::vector<int>{tok_.bos_id()} : std::vector<int>{};
    case Family::llama3:
    case Family::mistral: return {tok_.bos_id()};
    case Family::chatml:
    case Family::llama2: return {};  // llama2: a BOS opens every [INST] turn instead
  }
  return {};
}

namespace {
std::vector<int> cat(std::vector<int> a, const std::vector<int>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}
}  // namespace

std::vector<int> ChatTemplate::turn_ids(const Message& m, const std::string& folded, const std::string& where) const {
  switch (family_) {
    case Family::ethos: return cat(cat({m.role == "system" ? system_ : user_}, enc(m.content, where)), {end_});
    case Family::llama3:
      return cat(cat(cat({header_start_}, enc(m.role)), {header_end_}), cat(enc("\n\n" + trim(m.content), where), {end_}));
    case Family::chatml: return cat(cat({header_start_}, enc(m.role + "\n" + m.content, where)), cat({end_}, enc("\n")));
    case Family::llama2: {
      const std::string sys = folded.empty() ? "" : "<<SYS>>\n" + trim(folded) + "\n<</SYS>>\n\n";
      return cat({tok_.bos_id()}, enc("[INST] " + sys + trim(m.content) + " [/INST]", where));
    }
    case Family::mistral: return enc("[INST] " + (folded.empty() ? "" : folded + "\n\n") + m.content + " [/INST]", where);
  }
  return {};
}

std::vector<int> ChatTemplate::assistant_header() const {
  switch (family_) {
    case Family::ethos: return {assistant_};
    case Family::llama3: return cat(cat({header_start_}, enc("assistant")), cat({header_end_}, enc("\n\n")));
    case Family::chatml: return cat({header_start_}, enc("assistant\n"));
    case Family::llama2:
    case Family::mistral: return {};  // the user turn's [/INST] opens the answer
  }
  return {};
}

std::vector<int> ChatTemplate::render_answer(const std::string& text, const std::string& where, const char* field) const {
  switch (family_) {
    case Family::ethos:
    case Family::chatml:
    case Family::mistral: return cat(enc(text, where, field), {end_});
    case Family::llama3: return cat(enc(trim(text), where, field), {end_});
    case Family::llama2: return cat(enc(trim(text) + " ", where, field), {end_});  // "answer </s>"
  }
  return {};
}

std::vector<int> ChatTemplate::after_answer() const { return family_ == Family::chatml ? enc("\n") : std::vector<int>{}; }

std::vector<int> ChatTemplate::rationale_ids(const std::string& why, const std::string& where) const {
  if (!has_rationale())
    throw Error(where + ": a rationale span needs the tokens <|rationale|> and <|/rationale|>, which this tokenizer (chat_template " +
                format_ + ") lacks: add them to the tokenizer as added tokens, or set the rationale weight to 0 to drop the span");
  return cat(cat({rationale_}, encode(tok_, why, where, "field \"rationale\"")), {rationale_end_});
}

namespace {
// Walks a conversation's turns: system prompts are their own turn, except in llama2 and mistral,
// which fold a system prompt into the next user turn.
template <class Turn, class Answer>
void walk(const std::vector<Message>& messages, bool fold_system, const std::string& where, Turn turn, Answer answer) {
  std::string pending;
  for (size_t i = 0; i < messages.size(); ++i) {
    const Message& m = messages[i];
    if (m.role == "assistant") {
      if (!pending.empty()) throw Error(where + ": a system prompt must be followed by a user turn in this chat template");
      answer(i, m);
    } else if (m.role == "system" && fold_system) {
      pending += (pending.empty() ? "" : "\n\n") + m.content;
    } else {
      turn(m, pending);
      pending.clear();
    }
  }
  if (!pending.empty()) throw Error(where + ": a system prompt must be followed by a user turn in this chat template");
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

  b.add(start_ids(), 0.0f, span_context);
  const bool with_rationale = r.kind == RecordKind::explained && opt.rationale_weight != 0.0f;
  walk(r.messages, folds_system(), r.where, [&](const Message& m, const std::string& folded) {
    b.add(turn_ids(m, folded, r.where), 0.0f, span_context);
  }, [&](size_t i, const Message& m) {
    b.add(assistant_header(), 0.0f, span_context);
    if (with_rationale && i + 1 == r.messages.size()) b.add(rationale_ids(r.rationale, r.where), opt.rationale_weight, span_rationale);
    b.add(render_answer(m.content, r.where), opt.action_weight, span_action);
    b.add(after_answer(), 0.0f, span_context);
  });
  return b.ex;
}

std::vector<int> ChatTemplate::render_prompt(const std::vector<Message>& context) const {
  std::vector<int> ids = start_ids();
  walk(context, folds_system(), "prompt", [&](const Message& m, const std::string& folded) {
    ids = cat(std::move(ids), turn_ids(m, folded, ""));
  }, [&](size_t, const Message& m) {
    ids = cat(cat(std::move(ids), assistant_header()), cat(render_answer(m.content), after_answer()));
  });
  return cat(std::move(ids), assistant_header());
}

std::string ChatTemplate::render_text(const std::vector<Message>& messages, bool generation_prompt) const {
  auto piece = [&](int id) { return tok_.id_to_piece(id); };
  std::string out;
  switch (family_) {
    case Family::ethos: out = tok_.bos_id() >= 0 ? piece(tok_.bos_id()) : ""; break;
    case Family::llama3:
    case Family::mistral: out = piece(tok_.bos_id()); break;
    default: break;
  }
  walk(messages, folds_system(), "conversation", [&](const Message& m, const std::string& folded) {
    switch (family_) {
      case Family::ethos: out += (m.role == "system" ? kSystem : kUser) + m.content + kEnd; break;
      case Family::llama3: out += "<|start_header_id|>" + m.role + "<|end_header_id|>\n\n" + trim(m.content) + "<|eot_id|>"; break;
      case Family::chatml: out += "<|im_start|>" + m.role + "\n" + m.content + "<|im_end|>\n"; break;
      case Family::llama2:
        out += piece(tok_.bos_id()) + "[INST] " + (folded.empty() ? "" : "<<SYS>>\n" + trim(folded) + "\n<</SYS>>\n\n") +
               trim(m.content) + " [/INST]";
        break;
      case Family::mistral: out += "[INST] " + (folded.empty() ? "" : folded + "\n\n") + m.content + " [/INST]"; break;
    }
  }, [&](size_t, const Message& m) {
    switch (family_) {
      case Family::ethos: out += std::string(kAssistant) + m.content + kEnd; break;
      case Family::llama3: out += "<|start_header_id|>assistant<|end_header_id|>\n\n" + trim(m.content) + "<|eot_id|>"; break;
      case Family::chatml: out += "<|im_start|>assistant\n" + m.content + "<|im_end|>\n"; break;
      case Family::llama2: out += " " + trim(m.content) + " " + piece(end_); break;
      case Family::mistral: out += m.content + piece(end_); break;
    }
  });
  if (generation_prompt) {
    switch (family_) {
      case Family::ethos: out += kAssistant; break;
      case Family::llama3: out += "<|start_header_id|>assistant<|end_header_id|>\n\n"; break;
      case Family::chatml: out += "<|im_start|>assistant\n"; break;
      default: break;
    }
  }
  return out;
}

ChatTemplate::Pair ChatTemplate::render_pair(const Record& r, const TemplateOptions& opt) const {
  if (r.kind != RecordKind::preference)
    throw Error(r.where + ": render_pair needs a preference record, got a " + to_string(r.kind) + " record");
  Pair p;
  p.prompt = render_prompt(r.messages);
  auto append = [](std::vector<int>& to, const std::vector<int>& ids) { to.insert(to.end(), ids.begin(), ids.end()); };
  if (!r.rationale.empty() && opt.rationale_weight != 0.0f) {
    append(p.chosen, rationale_ids(r.rationale, r.where));
    p.chosen_weights.assign(p.chosen.size(), opt.rationale_weight);
  }
  append(p.chosen, render_answer(r.chosen, r.where, "field \"chosen\""));
  p.chosen_weights.resize(p.chosen.size(), opt.action_weight);
  p.rejected = render_answer(r.rejected, r.where, "field \"rejected\"");
  return p;
}

}  // namespace ethos
