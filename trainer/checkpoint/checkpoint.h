// Checkpoints (README.md "Models and checkpoints"):
//   <run>/checkpoints/step_000123/
//     config.json, model.safetensors   Hugging Face format (loads in transformers unchanged)
//     tokenizer.model | tokenizer.json copy of the run's tokenizer (+ tokenizer_config.json beside a .json)
//     optimizer.safetensors            AdamW moments under "<param>.exp_avg(_sq)", or (ZeRO-1,
//                                      dist.checkpoint: sharded) one file per rank,
//     optimizer-rank00000-of-00002.safetensors  "<param>@<offset>.exp_avg(_sq)" 1-D slices, and
//     optimizer.index.json             world size, files, parameter shapes; loading reassembles
//                                      whole moments, so any world size can resume
//     trainer_state.json               step, stage, RNG state, data cursor, hashes, file sizes and
//                                      checksums (checksum_file: verified before any resume)
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
  nlohmann::json checksums = nlohmann::json::object();  // file name -> checksum_file() (verified on resume)
  int64_t world_size = 1;    // ranks of the run that wrote it (informational: any world size resumes)
  bool preempt = false;      // written because the run was asked to stop (not on the checkpoint_every
                             // schedule): not evaluated, and removed once a later checkpoint exists

  nlohmann::json to_json() const;
  static TrainerState from_json(const nlohmann::json& j, const std::string& where);
};

std::string checkpoint_name(int64_t global_step);  // "step_000123"

// The optimizer part of a checkpoint: whole moments ("<param>.exp_avg(_sq)"), or, when
// `shard_index` is set, shards the ranks already wrote into the temporary directory
// (write_optimizer_shard) and the index that lists them.
struct OptimizerCheckpoint {
  std::vector<std::pair<std::string, torch::Tensor>> tensors;
  int64_t step_count = 0;
  nlohmann::json shard_index;  // null: whole moments in optimizer.safetensors
};

// Writes a checkpoint atomically and updates `latest`; prunes to the newest keep_last (0 = keep all).
// Returns the checkpoint directory. keep_tmp: the temporary directory was prepared
// (prepare_checkpoint_tmp) and already holds files of other ranks.
std::string save_checkpoint(const std::string& run_dir, TrainerState state, Llama& model,
                            const OptimizerCheckpoint* opt, const std::string& tokenizer_path,
                            const std::string& resolved_yaml, int64_t keep_last, bool keep_tmp = false);
// Sharded checkpoints: rank 0 empties the temporary directory, every rank writes its shard into
// it, rank 0 then calls save_checkpoint(..., keep_tmp = true) with optimizer_shard_index().
std::string checkpoint_tmp_dir(const std::string& run_dir, int64_t global_step);  // checkpoints/.tmp-step_N
std::string prepare_checkpoint_tmp(const std::string& run_dir, int64_t global_step);
void write_optimizer_shard(const std::string& tmp_dir, int rank, int world,
                           const std::vector<std::pair<std::string, torch::Tensor>>& slices, int64_t step_count);
nlohmann::json optimizer_shard_index(int world, int64_t step_count,
                                     const std::vector<std::pair<std::string, torch::Tensor>>& params);
// Whole moments of a checkpoint, from optimizer.safetensors or reassembled from its shards
// (Error naming the file when a shard is missing, damaged or does not cover a tensor).
std::map<std::string, torch::Tensor> read_optimizer_state(const std::string& dir, int64_t* step_count = nullptr);

// Problems that make a checkpoint unusable (missing files, sizes or checksums that differ from
// those recorded, unreadable state); empty when valid. Checkpoints written before checksums were
// recorded are checked by size only.
std::vector<std::string> checkpoint_problems(const std::string& dir);
// The newest valid checkpoint of a run (skipping invalid ones with a warning on stderr), if any.
std::optional<std::string> find_latest_checkpoint(const std::string& run_dir);
TrainerState read_trainer_state(const std::string& dir);

// Test hook: sleeps for the milliseconds given in environment variable `name`, if set
// (ETHOS_DEBUG_STEP_SLEEP_MS after each step, ETHOS_DEBUG_SAVE_SLEEP_MS mid-save), so tests can
// SIGKILL a real run at a chosen moment.
void debug_sleep(const char* name);

// Torch CPU generator state <-> hex, for exact resume.
std::string torch_rng_state();
void set_torch_rng_state(const std::string& hex);

}  // namespace ethos
