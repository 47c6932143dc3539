// The eval hook: called by the training loop after every checkpoint is written (rank 0),
// in-process. Implementations live in eval/ (the dependency points eval -> trainer).
// An implementation must not touch the training RNG streams: the loop saves and restores
// the torch generator state around the call, so resume stays exact with eval on.
#pragma once
#include <cstdint>
#include <string>

#include "datasets/tokenizer/tokenizer.h"
#include "trainer/model/llama.h"

namespace ethos {

struct CheckpointInfo {
  std::string dir;         // the checkpoint directory just written
  std::string run_dir;     // where eval.jsonl lives
  std::string stage;
  int64_t step = 0;        // global step
  int64_t seed = 0;
  std::string recipe;
  bool stage_final = true;  // the last checkpoint of its stage (intermediate ones may be subsampled)
  std::string chat_template = "auto";  // the run's chat template family, resolved (datasets/chat_template.h)
};

class EvalHook {
 public:
  virtual ~EvalHook() = default;
  // The model is in eval mode during the call and is put back in train mode afterwards.
  virtual void after_checkpoint(const CheckpointInfo& info, Llama& model, const Tokenizer& tok) = 0;
};

}  // namespace ethos
