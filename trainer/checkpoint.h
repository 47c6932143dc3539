// Checkpoints (design.md "Checkpoint"):
//   <run>/checkpoints/step_000123/
//     config.json, model.safetensors   Hugging Face format (loads in transformers unchanged)
//     tokenizer.model                  copy of the run's tokenizer
//     optimizer.safetensors            AdamW moments under "<param>.exp_avg(_sq)"
//     trainer_state.json               step, stage, RNG state, data cursor, hashes, file sizes
//     config.yaml                      the resolved recipe
//   <run>/checkpoints/latest           name of the newest complete checkpoint, written last
// A checkpoint is written into checkpoints/.tmp-step_000123, every file fsynced, then renamed;
// a crash at any moment leaves the previous checkpoints and `latest` intact.
#pragma once
#include <torch/torch.h>

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "trainer/model/llama.h"
#include "trainer/optim.h"

namespace ethos {

struct TrainerState {
  int64_t global_step = 0;   // optimizer steps taken over all stages
  int64_t stage_index = 0;
  std::string stage_name;
  int64_t stage_step = 0;    // optimizer steps taken in this stage
  int64_t stage_steps = 0;   // the stage's total (stage_step == stage_steps: stage finished)
  nlohmann::json data_cursor;
  std::string torch_rng;     // hex of the CPU generator state
  std::string config_hash, data_hash, tokenizer_hash;
  nlohmann::json files = nlohmann::json::object();  // file name -> size in bytes (validity check)

  nlohmann::json to_json() const;
  static TrainerState from_json(const nlohmann::json& j, const std::string& where);
};

std::string checkpoint_name(int64_t global_step);  // "step_000123"

// Writes a checkpoint atomically and updates `latest`; prunes to the newest keep_last (0 = keep all).
// Returns the checkpoint directory.
std::string save_checkpoint(const std::string& run_dir, TrainerState state, Llama& model, const AdamW* opt,
                            const std::string& tokenizer_path, const std::string& resolved_yaml, int64_t keep_last);

// Problems that make a checkpoint unusable (missing files, sizes that differ from those recorded,
// unreadable state); empty when valid.
std::vector<std::string> checkpoint_problems(const std::string& dir);
// The newest valid checkpoint of a run (skipping invalid ones with a warning on stderr), if any.
std::optional<std::string> find_latest_checkpoint(const std::string& run_dir);
TrainerState read_trainer_state(const std::string& dir);
// Loads the optimizer moments of a checkpoint into `opt`.
void load_optimizer(AdamW& opt, const std::string& dir, int64_t step_count);

// Test hook: sleeps for the milliseconds given in environment variable `name`, if set
// (ETHOS_DEBUG_STEP_SLEEP_MS after each step, ETHOS_DEBUG_SAVE_SLEEP_MS mid-save), so tests can
// SIGKILL a real run at a chosen moment.
void debug_sleep(const char* name);

// Torch CPU generator state <-> hex, for exact resume.
std::string torch_rng_state();
void set_torch_rng_state(const std::string& hex);

}  // namespace ethos
