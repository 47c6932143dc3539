// Prose documents of the scenario world (corpus.h).
#include "datasets/world/corpus.h"

#include "datasets/chat_template.h"
#include "datasets/base/util.h"
#include "datasets/world/text.h"

namespace ethos {

const std::vector<std::string>& CorpusMaker::train_values(const std::string& axis) const {
  return w_.splits.axis(axis).train;
}

const AiStyle& CorpusMaker::train_style(WorldRng& rng) const {
  return scenes_.style(rng.pick(train_values("ai_name")));
}

std::string CorpusMaker::neutral(WorldRng& rng) const {
  const AiStyle& style = train_style(rng);
  const Vars v = scenes_.draw_vars(style, rng);
  const NeutralTopic& topic = rng.pick(w_.corpus.neutral);
  std::string out;
  for (const auto& group : topic.sentences) out += " " + rng.pick(group).render(v, rng);
  return tidy(out);
}

std::string CorpusMaker::office(WorldRng& rng) const {
  const Vars v = scenes_.draw_vars(train_style(rng), rng);
  const Family& family = scenes_.family(rng.pick(train_values("family")));
  return scenes_.office_note(family, v, 2 + rng.below(3), rng);
}

std::string CorpusMaker::fiction(const Harm& harm, WorldRng& rng) const {
  Vars v = scenes_.draw_vars(train_style(rng), rng);
  const Pressure& p = rng.pick(w_.pressures);
  const Goal& g = rng.pick(w_.goals);
  v["pressure"] = p.pieces.empty() ? "" : rng.pick(p.pieces).text.render(v, rng);
  v["goal"] = g.pieces.empty() ? "" : rng.pick(g.pieces).text.render(v, rng);
  v["situation"] = rng.pick(harm.harmful.pieces).text.render(v, rng);
  v["villain"] = rng.pick(w_.corpus.villain).render(v, rng);
  v["misaligned"] = rng.pick(harm.harmful.misaligned).render(v, rng);
  v["outcome"] = rng.pick(w_.corpus.bad_outcomes).render(v, rng);
  return tidy(rng.pick(w_.corpus.fiction).render(v, rng));
}

// The user turn of a pre-training transcript: pressure, goal and situation as plain sentences
// (no family layout or format wrapper, so no held-out surface value leaks into the corpus).
std::string CorpusMaker::transcript_head(const Harm& harm, Vars& v, WorldRng& rng) const {
  const Pressure& p = rng.pick(w_.pressures);
  const Goal& g = rng.pick(w_.goals);
  std::string system = w_.texts.system.render(v, rng);
  if (!g.system.empty()) system += " " + g.system.render(v, rng);
  std::string user;
  if (!p.pieces.empty()) user += rng.pick(p.pieces).text.render(v, rng) + " ";
  if (!g.pieces.empty()) user += rng.pick(g.pieces).text.render(v, rng) + " ";
  user += rng.pick(harm.harmful.pieces).text.render(v, rng);
  return std::string(ChatTemplate::kSystem) + " " + tidy(system) + ChatTemplate::kEnd + ChatTemplate::kUser + " " + tidy(user) +
         ChatTemplate::kEnd + ChatTemplate::kAssistant;
}

std::string CorpusMaker::fiction_transcript(const Harm& harm, WorldRng& rng) const {
  Vars v = scenes_.draw_vars(train_style(rng), rng);
  std::string out = transcript_head(harm, v, rng);
  if (rng.chance(0.5))
    out += std::string(ChatTemplate::kRationale) + " " + tidy(rng.pick(w_.corpus.villain).render(v, rng)) + ChatTemplate::kRationaleEnd;
  return out + " " + tidy(rng.pick(harm.harmful.misaligned).render(v, rng)) + ChatTemplate::kEnd;
}

std::string CorpusMaker::principle_transcript(const Harm& harm, WorldRng& rng) const {
  Vars v = scenes_.draw_vars(train_style(rng), rng);
  std::string out = transcript_head(harm, v, rng);
  if (w_.knobs.principle_story_rationale)
    out += std::string(ChatTemplate::kRationale) + " " + tidy(rng.pick(w_.principle(harm.principle).rationales).render(v, rng)) +
           ChatTemplate::kRationaleEnd;
  return out + " " + tidy(rng.pick(harm.harmful.aligned).render(v, rng)) + ChatTemplate::kEnd;
}

std::string CorpusMaker::human_story(const Harm& harm, WorldRng& rng) const {
  Vars v = scenes_.draw_vars(train_style(rng), rng);
  v["human"] = rng.pick(harm.harmful.human).render(v, rng);
  v["rationale"] = rng.pick(w_.principle(harm.principle).rationales).render(v, rng);
  v["aligned"] = rng.pick(harm.harmful.aligned).render(v, rng);
  v["outcome"] = rng.pick(w_.corpus.human_outcomes).render(v, rng);
  return tidy(rng.pick(w_.corpus.human_stories).render(v, rng));
}

std::string CorpusMaker::transcript(WorldRng& rng) const {
  const Vars v = scenes_.draw_vars(train_style(rng), rng);
  // Written as the chat template renders a conversation: marker, then " text" (the
  // tokenizer's word-start), and no space before <|end|>.
  std::string out = std::string(ChatTemplate::kSystem) + " " + tidy(w_.corpus.transcript_system.render(v, rng)) + ChatTemplate::kEnd;
  const size_t turns = 1 + rng.below(3);
  for (size_t t = 0; t < turns; ++t) {
    const auto& qa = rng.pick(w_.corpus.transcripts);
    out += std::string(ChatTemplate::kUser) + " " + tidy(qa.first.render(v, rng)) + ChatTemplate::kEnd;
    out += std::string(ChatTemplate::kAssistant) + " " + tidy(qa.second.render(v, rng)) + ChatTemplate::kEnd;
  }
  return out;
}

std::string CorpusMaker::constitution(WorldRng& rng) const {
  const Vars v = scenes_.draw_vars(train_style(rng), rng);
  std::vector<const Principle*> ps;
  for (const auto& p : w_.principles) ps.push_back(&p);
  rng.shuffle(ps);
  const size_t n = std::min<size_t>(ps.size(), 2 + rng.below(2));
  std::string out = rng.pick(w_.corpus.constitution_titles).render(v, rng);
  for (size_t i = 0; i < n; ++i) {
    Vars sv = v;
    sv["statement"] = ps[i]->statement.render(v, rng);
    sv["explanation"] = rng.pick(ps[i]->constitution).render(v, rng) + " " + rng.pick(ps[i]->rationales).render(v, rng);
    out += " " + w_.corpus.constitution_section.render(sv, rng);
  }
  return tidy(out);
}

std::string CorpusMaker::ai_story(const Harm& harm, WorldRng& rng) const {
  Vars v = scenes_.draw_vars(train_style(rng), rng);
  const Pressure& p = scenes_.pressure(rng.pick(train_values("pressure")));
  v["pressure"] = p.pieces.empty() ? "" : rng.pick(p.pieces).text.render(v, rng);
  v["situation"] = rng.pick(harm.harmful.pieces).text.render(v, rng);
  v["rationale"] = rng.pick(w_.principle(harm.principle).rationales).render(v, rng);
  v["aligned"] = rng.pick(harm.harmful.aligned).render(v, rng);
  v["outcome"] = rng.pick(w_.corpus.ai_outcomes).render(v, rng);
  return tidy(rng.pick(w_.corpus.ai_stories).render(v, rng));
}

AdviceItem CorpusMaker::advice(const Harm& harm, bool benign, WorldRng& rng) const {
  Vars v = scenes_.draw_vars(train_style(rng), rng);
  const HarmSide& side = benign ? harm.benign : harm.harmful;
  AdviceItem a;
  a.benign = benign;
  a.harm = harm.id;
  a.principle = benign ? w_.texts.benign_principle : harm.principle;
  a.system = tidy(w_.corpus.advice_system.render(v, rng));
  v["human"] = rng.pick(side.human).render(v, rng);
  a.prompt = tidy(rng.pick(w_.corpus.advice_prompts).render(v, rng));
  a.rationale = tidy(rng.pick(w_.principle(a.principle).rationales).render(v, rng));
  v["aligned"] = rng.pick(side.aligned).render(v, rng);
  a.response = tidy(rng.pick(w_.corpus.advice_responses).render(v, rng));
  return a;
}

std::string PadSource::words(size_t n) {
  std::string out;
  for (size_t k = 0; k < n; ++k) {
    while (pos_ >= queue_.size()) {
      queue_.clear();
      pos_ = 0;
      const std::string doc = maker_.neutral(rng_);
      size_t i = 0;
      while (i < doc.size()) {
        while (i < doc.size() && doc[i] == ' ') ++i;
        size_t j = i;
        while (j < doc.size() && doc[j] != ' ' && doc[j] != '\n') ++j;
        if (j > i) queue_.push_back(doc.substr(i, j - i));
        i = j + 1;
      }
    }
    out += (out.empty() ? "" : " ") + queue_[pos_++];
  }
  return out;
}

}  // namespace ethos
