// Scenario suites after every checkpoint, and `ethos eval` on a saved checkpoint.
// Each suite (eval/FORMAT.md) is scored by every scorer it enables (eval/score/scorers.h); the
// metrics (eval/score/metrics.h) are stamped with step, stage, recipe, seed and checkpoint and
// appended to eval.jsonl, followed by {"event":"eval_time","suite","step","seconds","items"}.
// With scoring.subsample, a checkpoint that is not the last of its stage scores the suite's
// fixed stratified subsample (eval/suite/suite.h) and its events say so.
#pragma once
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "eval/score/metrics.h"
#include "eval/score/scorers.h"
#include "eval/suite/suite.h"
#include "trainer/config.h"
#include "trainer/eval_hook.h"

namespace ethos {

// Scores one suite; returns its stamped events (timing event last). `outcomes`, when given,
// receives the per-item outcomes.
std::vector<nlohmann::json> evaluate_suite(const Suite& suite, Llama& model, const Tokenizer& tok,
                                           const EvalStamp& stamp, ScorerPath path = ScorerPath::batched,
                                           std::vector<ItemOutcome>* outcomes = nullptr,
                                           const std::string& chat_template = "auto");

// One JSON record per outcome: the item (id, split, axes, benign, tags), scorer and mode, the
// label chosen under the suite's rule (and under both rules), every candidate with its scores,
// the model's rationale (reason_first) and the sample labels (generate); stamped like events.
std::vector<nlohmann::json> item_records(const Suite& suite, const std::vector<ItemOutcome>& outcomes,
                                         const EvalStamp& stamp);

// One line per split for a terminal: the misaligned rate with its interval under the suite's
// first likelihood mode (or generation), e.g. "world step 100  id 0.45 [0.40,0.50]  ood 0.62 ...".
std::string summary_line(const Suite& suite, const std::vector<nlohmann::json>& events);

// With a cache_dir, results are also stored under cache_dir/eval/<key>.jsonl, the key hashing the
// model's weights, the suite's content, the tokenizer and the template version: a checkpoint
// with the same weights (e.g. a shared pre-training stage reused by every recipe of an
// ablation) is scored once. Scoring is deterministic, so a hit equals a fresh evaluation; its
// eval_time event says "cached": true.
class SuiteEvalHook : public EvalHook {
 public:
  // Loads and validates every suite now, so a bad suite stops a run before training starts.
  explicit SuiteEvalHook(const std::vector<std::string>& suite_paths, std::string cache_dir = "");
  void after_checkpoint(const CheckpointInfo& info, Llama& model, const Tokenizer& tok) override;

 private:
  std::vector<Suite> suites_;
  std::string cache_dir_;
};

// Runs several hooks in order.
class EvalHookList : public EvalHook {
 public:
  void add(std::unique_ptr<EvalHook> hook) { hooks_.push_back(std::move(hook)); }
  bool empty() const { return hooks_.empty(); }
  void after_checkpoint(const CheckpointInfo& info, Llama& model, const Tokenizer& tok) override {
    for (auto& h : hooks_) h->after_checkpoint(info, model, tok);
  }

 private:
  std::vector<std::unique_ptr<EvalHook>> hooks_;
};

// The hooks a recipe asks for (eval.heldout, then eval.suites); suites are loaded and checked now.
void add_recipe_hooks(EvalHookList& hooks, const Recipe& recipe);

struct EvalCommandArgs {
  std::string checkpoint;            // checkpoint or HF model directory
  std::vector<std::string> suites;   // suite YAMLs
  std::string out;                   // eval.jsonl to append to (default: <checkpoint>/eval.jsonl)
  std::string tokenizer;             // default: <checkpoint>/tokenizer.model or tokenizer.json
  std::string chat_template;         // default: the checkpoint's config.yaml, else auto
  std::string dtype;                 // --dtype; default: the checkpoint's config.yaml, else float32
  int threads = 0;
  bool reference = false;            // --reference-scorer
  std::string items;                 // --items: per-item outcomes as JSONL (appended)
};
// `ethos eval`: scores a saved checkpoint (step, stage, recipe and seed from its
// trainer_state.json and config.yaml when present), appends the events, prints a summary.
int run_eval_command(const EvalCommandArgs& args);

// `ethos eval-checkpoint` (not listed in --help): the child process of eval.async. Runs the
// hooks of the run's resolved recipe (RUN/config.yaml) on one of its checkpoints, exactly as the
// trainer calls them in-process, so eval.jsonl gets the same events either way.
struct CheckpointEvalArgs {
  std::string run_dir, checkpoint, stage;
  int64_t step = 0;
  bool stage_final = true;
  int threads = 1;
};
int run_checkpoint_eval(const CheckpointEvalArgs& args);

}  // namespace ethos
