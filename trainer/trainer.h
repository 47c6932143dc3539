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

// Runs (or resumes) every stage of the recipe. Throws ethos::Error on bad input or a
// non-finite loss (the last good checkpoint stays intact).
TrainResult train(const Recipe& recipe, EvalHook* hook = nullptr);

// Throws Error when the tokenizer has more pieces than the model's vocabulary (a tokenizer
// that is not the model's), naming both sizes and the fix.
void check_vocab(const Llama& model, const Tokenizer& tok, const std::string& tok_path);

// Sets the intra-op thread count (0 = the cores this process may use) and returns it.
int configure_threads(int64_t requested);

}  // namespace ethos
