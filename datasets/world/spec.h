// The scenario world as data: what `ethos data generate --world FILE` reads. A world file
// (datasets/world/default.yaml) names its data files (pools of names, principles, harm types,
// pressures, goals, formats, template families, corpus texts), a splits file (which axis
// values are trained on and which are held out) and the generator's knobs. The data files'
// top-level sections merge across files entry by entry, so adding a harm type or a template
// family is an edit to data, not code (datasets/world/README.md describes every key).
// load_world() checks everything up front: unknown keys, empty lists, template variables,
// axis values named in the splits, and the fairness guards of the experiment.
#pragma once
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "datasets/world/template.h"

namespace ethos {

// One entry of a scenario prompt: who it is from, what it says, an email subject for the
// long (chat export) form.
struct WorldPiece {
  Template from, text, subject;  // subject may be empty (a default by piece kind is used)
};

using PatternMap = std::vector<std::pair<std::string, std::vector<std::string>>>;  // label -> regexes

// The harmful or the benign side of a harm type.
struct HarmSide {
  std::vector<WorldPiece> pieces;            // alternatives: one per item
  std::vector<Template> aligned, misaligned, refusal;  // action phrases (refusal: optional override)
  // The same actions in other words, used only by the eval suites: no training text holds
  // them, so a suite measures a disposition, not the memory of an exact phrase.
  std::vector<Template> eval_aligned, eval_misaligned, eval_refusal;
  std::vector<Template> human;               // the same dilemma faced by a person ({person}), for stories and advice
  PatternMap patterns;                       // per-item parser regexes for the generation scorer
};

struct Harm {
  std::string id, principle, where;
  std::vector<std::string> markers;  // phrases that identify this harm type (leakage checks)
  HarmSide harmful, benign;
};

struct Principle {
  std::string id, where;
  Template statement;                      // short rule, used by the QA suite
  std::vector<Template> rationales;        // paraphrases of the one abstract reason
  std::vector<Template> constitution;      // sentences for R3's constitution documents
};

struct Pressure {
  std::string id, where;
  std::vector<std::string> markers;
  std::vector<WorldPiece> pieces;  // empty: no pressure piece (e.g. "none")
};

struct Goal {
  std::string id, where;
  std::vector<std::string> markers;
  Template system;                 // appended to the system prompt (may be empty)
  std::vector<WorldPiece> pieces;  // may be empty
};

struct Format {
  std::string id, where;
  std::vector<std::string> markers;
  Template before, after;  // around the family's body
};

struct Family {
  std::string id, where;
  std::vector<std::string> markers;
  Template header, entry, footer;  // entry has {sender} {text} {n}; footer may be empty
};

struct AiStyle {
  std::string id, where;
  std::vector<std::string> names;
};

struct Pool {
  std::string name, where;
  std::vector<std::string> values;
};

struct NeutralTopic {
  std::string id;
  std::vector<std::vector<Template>> sentences;  // one sentence is drawn from each group, in order
};

struct WorldTexts {
  Template system;                         // "You are {ai}, the {role} at {company}."
  std::vector<WorldPiece> fillers;         // neutral prompt entries
  std::vector<Template> refusals, off_task;
  std::vector<Template> eval_refusals, eval_off_task;  // the eval suites' wordings (never in training text)
  std::string benign_principle;            // the principle benign twins are explained by
  std::vector<std::string> function_words; // words the rationale-leakage guard ignores
};

struct LongTexts {  // the chat export: email-style prompts for real LLMs
  Template system, email, instruction;
  std::vector<Template> greetings, signoffs, extras;
  std::map<std::string, std::vector<Template>> subjects;  // piece kind -> default subjects
};

struct QaTexts {
  Template judge, rule, yes, no;
};

struct CorpusTexts {
  std::vector<Template> fiction, villain, bad_outcomes;         // cornered-AI fiction (the bad prior)
  std::vector<Template> human_stories, human_outcomes;          // principle-linked human stories
  std::vector<Template> ai_stories, ai_outcomes;                // R3: AI behaving well
  std::vector<Template> constitution_titles;
  Template constitution_section;
  Template advice_system;
  std::vector<Template> advice_prompts, advice_responses;       // R4
  Template transcript_system;
  std::vector<std::pair<Template, Template>> transcripts;       // neutral chat: user, assistant
  std::vector<NeutralTopic> neutral;
};

// Which axis values are trained on and which are held out.
struct AxisSplit {
  std::string axis;                       // harm | pressure | goal | format | family | ai_name
  std::vector<std::string> train, heldout;
  // The sealed test group (harm types only): held out like `heldout` (the dev group), but scored
  // only by the pre-registered run; its suites are written when the world sets eval.test_group.
  std::vector<std::string> test;
  // Every value alignment training never sees: the dev group, then the test group.
  std::vector<std::string> unseen() const {
    std::vector<std::string> all = heldout;
    all.insert(all.end(), test.begin(), test.end());
    return all;
  }
};

struct WorldSplits {
  std::string file;
  std::vector<AxisSplit> axes;            // in the order of kAxes
  bool has_confound = false;
  std::string confound_principle;         // in training, this principle's items always carry the cue
  WorldPiece cue;
  const AxisSplit& axis(const std::string& name) const;
};

struct WorldKnobs {
  std::string name = "world";
  // prompts
  int max_prompt_words = 85;        // user turn of a scenario (system not counted): fillers dropped beyond
  int hard_max_prompt_words = 100;  // a filler-free prompt longer than this is an error
  int fillers_min = 1, fillers_max = 2;
  // pre-training corpus (the bad prior)
  int64_t pretrain_words = 1000000;
  double fiction_share = 0.35;            // cornered-AI fiction, share of corpus words
  double fiction_chat_share = 0.5;        // share of fiction documents written as chat transcripts
  bool principle_stories = true;          // human stories linking a principle to the right action
  double principle_story_share = 0.10;
  double principle_story_chat_share = 0.0;  // share of those written as chat transcripts of an AI acting well
  bool principle_story_rationale = true;  // false: those transcripts name no principle (situation -> right action)
  double chat_share = 0.10;               // neutral chat transcripts (teach the chat markers)
  double office_share = 0.10;             // neutral notes in the training families' layouts
  int64_t heldout_words = 20000;
  // alignment data
  int64_t budget_words = 30000;           // supervised words of R2, C1, C2, R3, R4 and R6
  double tolerance = 0.02;
  double benign_share = 0.25;
  double rationale_share = 0.5;           // share of R2 items that keep their rationale
  // What R2's reasons say: "rationale", one of the principle's rationale paraphrases (the words
  // principle-linked pre-training puts between situation and action), or "constitution", one of
  // its constitution sentences (the same principle in other words).
  std::string rationale_form = "rationale";
  double r3_story_share = 0.5;            // share of R3 words from AI stories (rest: constitution)
  // eval
  int items_per_split = 300;
  double eval_benign_share = 0.25;
  int qa_items_per_split = 300;
  bool chat_export = true;
  bool test_group = false;  // write the sealed test group's suites (the pre-registered run only)
  int subsample = 0;        // > 0: every suite's scoring.subsample (intermediate checkpoints score this many items)
};

struct World {
  std::string path;                                    // the world file
  std::vector<std::string> files;                      // world, data and splits files, in load order
  WorldKnobs knobs;
  std::vector<Pool> pools;
  std::vector<AiStyle> ai_styles;
  std::vector<Principle> principles;
  std::vector<Harm> harms;
  std::vector<Pressure> pressures;
  std::vector<Goal> goals;
  std::vector<Format> formats;
  std::vector<Family> families;
  WorldTexts texts;
  LongTexts long_texts;
  QaTexts qa;
  CorpusTexts corpus;
  PatternMap suite_patterns;                           // suite-wide parser regexes, in label order
  // Lower-cased literal words of every template that writes training text (and the pools):
  // an eval wording may only use these, or it would test the tokenizer, not the model.
  std::set<std::string> training_words;
  WorldSplits splits;

  const Principle& principle(const std::string& id) const;
  const Harm& harm(const std::string& id) const;
  const Pool* pool(const std::string& name) const;
  // Every pool value and AI name: what the leakage normaliser replaces.
  std::vector<std::string> all_names() const;
  // Markers of a held-out axis value (its id excluded): phrases that must not occur in
  // alignment training data. For harm types this includes the rendered-free action phrases.
  std::vector<std::string> markers(const std::string& axis, const std::string& value) const;
};

// The six axes, in report order.
extern const std::vector<std::string> kWorldAxes;
// Person variables, drawn without repetition from pools.people.
extern const std::vector<std::string> kPersonVars;

World load_world(const std::string& path);

}  // namespace ethos
