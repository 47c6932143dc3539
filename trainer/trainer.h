// The training loop: stages of SFT over packed JSONL data, with logging, atomic checkpoints,
// exact resume and an eval hook after every checkpoint.
#pragma once
#include <string>
#include <vector>

#include "trainer/config.h"
#include "trainer/eval_hook.h"

namespace ethos {

struct TrainResult {
  std::string run_dir;
  std::string final_checkpoint;
  int64_t global_step = 0;
  double final_loss = 0;
};

struct TrainOptions {
  // Train only the recipe's leading shared stages (share: true) into the stage cache, then stop:
  // the job that pre-trains once per seed before an ablation's cells start (ethos ablate --slurm).
  bool shared_only = false;
  // The ethos executable, for eval.async's child process (`ethos eval-checkpoint`); the CLI sets
  // it. A recipe with eval.async and no executable here is refused.
  std::string eval_exe;
};

// Runs (or resumes) every stage of the recipe. Throws ethos::Error on bad input or a
// non-finite loss (the last good checkpoint stays intact), Preempted after a stop signal
// (trainer/preempt.h; a checkpoint holds the state). Rank 0 holds the run directory's lock
// for the whole run and keeps its status.json and launches.jsonl (trainer/checkpoint/run_dir.h).
TrainResult train(const Recipe& recipe, EvalHook* hook = nullptr, const TrainOptions& opt = {});

// Throws Error when the tokenizer has more pieces than the model's vocabulary (a tokenizer
// that is not the model's), naming both sizes and the fix.
void check_vocab(const Llama& model, const Tokenizer& tok, const std::string& tok_path);

// Sets the intra-op thread count (0 = the cores this process may use) and returns it.
int configure_threads(int64_t requested);
// The cores this process may use, shared by the ranks on this node (configure_threads' 0).
int available_threads();

}  // namespace ethos
