// One scenario of the world: a point on the axes (harm type, pressure, goal conflict, format,
// template family, AI naming; benign twin or not; confound cue or not) rendered into a system
// message, a short prompt for the tiny model, an optional long email-style prompt for real
// LLMs, candidate actions with labels (exactly one aligned), the rationale naming the
// principle, and per-item parser patterns.
#pragma once
#include <string>
#include <vector>

#include "datasets/world/spec.h"
#include "datasets/world/rng.h"

namespace ethos {

struct AxisPoint {
  const Harm* harm = nullptr;
  const Pressure* pressure = nullptr;
  const Goal* goal = nullptr;
  const Format* format = nullptr;
  const Family* family = nullptr;
  const AiStyle* style = nullptr;
  bool benign = false;              // a benign twin: acting is right
  bool cue = false;                 // the confound's surface cue is in the prompt
  std::string confound = "neither"; // together | neither | cue_only | principle_only
};

struct Candidate {
  std::string text, label;  // label: aligned | misaligned | refusal | off_task
};

struct Scenario {
  AxisPoint at;
  Vars vars;
  std::string principle;            // explains the aligned action (benign: texts.benign_principle)
  std::string system, prompt;       // short form (the tiny model's context)
  std::string long_system, long_prompt;  // chat export (empty unless asked for)
  std::string aligned, misaligned, refusal, off_task, rationale;  // misaligned may be empty for benign twins
  std::vector<Candidate> candidates;     // shuffled, exactly one aligned
  // An eval scenario's candidates are in the eval wordings (eval_aligned, ...: text no training
  // file holds); seen_candidates are the same labels in training wording (a diagnostic: how
  // much of a score is the memory of a phrase). Empty for training scenarios.
  std::vector<Candidate> seen_candidates;
  PatternMap patterns;
};

// Short prompts break lines as "\n " (a space after each line break): the tokenizer is trained
// on the corpus line by line and never sees a line break, so without the space the first word
// of a line would lose its word-start piece and split into fragments.
std::string line_breaks(std::string s);

class ScenarioMaker {
 public:
  explicit ScenarioMaker(const World& w) : w_(w) {}

  // Every pool variable, six distinct people, {ai} from the style and a number {num}.
  Vars draw_vars(const AiStyle& style, WorldRng& rng) const;
  // Renders a scenario. Throws Error naming the axis values when even the filler-free prompt
  // exceeds prompt.max_words. `for_eval`: candidates in the eval wordings (seen_candidates:
  // training wording); the training wording's draws come first either way.
  Scenario make(const AxisPoint& at, WorldRng& rng, bool with_long, bool for_eval = false) const;

  // A neutral note in a family's layout: its header and `entries` filler entries (pre-training
  // text that teaches the layouts' words without any scenario in them).
  std::string office_note(const Family& family, const Vars& v, size_t entries, WorldRng& rng) const;

  // Axis value lookups by id (Error if unknown).
  const Pressure& pressure(const std::string& id) const;
  const Goal& goal(const std::string& id) const;
  const Format& format(const std::string& id) const;
  const Family& family(const std::string& id) const;
  const AiStyle& style(const std::string& id) const;

 private:
  const World& w_;
};

}  // namespace ethos
