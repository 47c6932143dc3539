// What a stage trains on and how its loss is computed. The training loop (trainer.cpp) is the
// same for every objective:
//   next_step (1. batch) -> micro_loss + backward per micro-batch (2.) -> finish_step (loss,
//   metrics) -> sync, clip, step, log, checkpoint (cursor) -> checkpoint_events -> eval hook.
// Data parallelism: every rank draws every micro-batch of the global step (W per micro-step, in
// rank order) and keeps its own, so the ranks read disjoint parts of one global stream, the
// cursor is the same on every rank, and a checkpoint resumes on any world size with the global
// sample order preserved. Losses are divided by the normaliser of the whole global step (every
// rank computes it from the batches it drew), so gradients sum across ranks; finish_step sums
// the logged loss and metrics across ranks.
// SftObjective: packed documents/demonstrations, loss = weighted NLL normalised by the target
// weight summed over the step's micro-batches.
// PreferenceObjective: DPO-family losses on preference pairs (trainer/objective/preference.h), chosen and
// rejected in one forward, the reference cached on disk or live (trainer/objective/reference.h).
#pragma once
#include <torch/torch.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "datasets/chat_template.h"
#include "trainer/config.h"
#include "trainer/dist/process_group.h"
#include "trainer/model/llama.h"

namespace ethos {

struct StepResult {
  double loss = 0;
  int64_t tokens = 0;        // real (non-padding) tokens the policy processed
  nlohmann::json metrics;    // extra fields for the step's train.jsonl event
};

class Objective {
 public:
  virtual ~Objective() = default;
  // 1. Draws the micro-batches of the next optimizer step (this rank's share of them).
  virtual void next_step(int64_t micro_batches, int64_t rows) = 0;
  // 2. Forward and loss of micro-batch i, scaled so that the step's gradient is the sum of
  //    backward() over its micro-batches.
  virtual torch::Tensor micro_loss(Llama& model, int64_t i) = 0;
  // The finished step's loss and metrics (after every micro_loss of the step).
  virtual StepResult finish_step() = 0;
  // The data position, saved in checkpoints; restore() reproduces the stream exactly.
  virtual nlohmann::json cursor() const = 0;
  virtual void restore(const nlohmann::json& cursor) = 0;
  // Extra events measured at a checkpoint (e.g. the KL estimate to the reference).
  virtual std::vector<nlohmann::json> checkpoint_events(Llama& /*model*/, int64_t /*step*/) { return {}; }
  // A line for the live progress display (e.g. "acc 0.75").
  virtual std::string progress(const StepResult&) const { return ""; }
};

struct ObjectiveSetup {
  const Recipe& recipe;
  const StageSection& stage;
  int64_t stage_index = 0;
  const ChatTemplate& tmpl;
  std::string tokenizer_hash;
  std::string run_dir;
  torch::Device device = torch::kCPU;
  bool resuming = false;  // false: `model` holds the stage's starting weights
  Comm& comm;             // the job's ranks (one process: world size 1)
};

// Reads and tokenizes the stage's data and prepares what the objective needs (for preference
// objectives: the reference and, in cached mode, its log-probs).
std::unique_ptr<Objective> make_objective(const ObjectiveSetup& setup, Llama& model);

}  // namespace ethos
