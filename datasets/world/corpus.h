// Prose of the scenario world, never in scenario format: the pre-training corpus (neutral
// text, cornered-AI fiction = the bad prior, principle-linked human stories, neutral chat
// transcripts), R3's constitution documents and stories of AI behaving well, R4's difficult
// advice, and neutral padding text (C2).
#pragma once
#include <string>
#include <vector>

#include "datasets/world/spec.h"
#include "datasets/world/rng.h"
#include "datasets/world/scenario.h"

namespace ethos {

struct AdviceItem {
  std::string system, prompt, rationale, response, principle, harm;
  bool benign = false;
};

class CorpusMaker {
 public:
  explicit CorpusMaker(const World& w) : w_(w), scenes_(w) {}

  // A neutral document (one topic, one sentence per group).
  std::string neutral(WorldRng& rng) const;
  // A neutral office note in a training family's layout (fillers only, no scenario).
  std::string office(WorldRng& rng) const;
  // The bad prior: an AI under pressure takes the misaligned action of `harm`, told as a story.
  std::string fiction(const Harm& harm, WorldRng& rng) const;
  // The same as a chat transcript written with the template's markers: the situation as the
  // user turn (plain sentences, no family layout or format), the misaligned action as the
  // assistant's answer, half of the time after the AI's scheming as a rationale span.
  std::string fiction_transcript(const Harm& harm, WorldRng& rng) const;
  // A person recalls the principle of `harm` and then takes its aligned action.
  std::string human_story(const Harm& harm, WorldRng& rng) const;
  // The mirror of fiction_transcript: the same situation as the user turn, the principle's
  // rationale in the rationale span, then the aligned action (an AI acting well). Without
  // pretrain.principle_story_rationale: the aligned action alone (no principle named).
  std::string principle_transcript(const Harm& harm, WorldRng& rng) const;
  // A neutral chat transcript written with the chat template's markers (teaches the format).
  std::string transcript(WorldRng& rng) const;
  // R3: a constitution document (2-3 principles) and a story of an AI behaving well.
  std::string constitution(WorldRng& rng) const;
  std::string ai_story(const Harm& harm, WorldRng& rng) const;
  // R4: a user asks about a person facing the dilemma; the model explains and advises.
  AdviceItem advice(const Harm& harm, bool benign, WorldRng& rng) const;

  // Values of the training splits (surface of pre-training and R3/R4 prose).
  const std::vector<std::string>& train_values(const std::string& axis) const;

 private:
  const AiStyle& train_style(WorldRng& rng) const;
  std::string transcript_head(const Harm& harm, Vars& v, WorldRng& rng) const;
  const World& w_;
  ScenarioMaker scenes_;
};

// Neutral padding: a stream of words from neutral documents, cut to exact lengths.
class PadSource {
 public:
  PadSource(const CorpusMaker& maker, WorldRng& rng) : maker_(maker), rng_(rng) {}
  std::string words(size_t n);

 private:
  const CorpusMaker& maker_;
  WorldRng& rng_;
  std::vector<std::string> queue_;
  size_t pos_ = 0;
};

}  // namespace ethos
