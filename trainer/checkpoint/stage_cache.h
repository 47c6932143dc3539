// Shared stages: a stage marked `share: true` (typically pre-training the bad prior) is trained
// once and reused by every run whose stage has the same inputs: the stage's resolved config,
// the stage's seed (stages[i].seed, by default the recipe's), its index, the starting weights, the tokenizer, the chat template and the content
// of its data files. The result (config.json + model.safetensors + stage.json) lives in
// <cache_dir>/stages/<key>/, published by an atomic rename, so the recipes of an ablation
// pre-train once per seed instead of once per recipe. A reused stage is bit-identical to
// training it again (the stage's data order depends only on the stage's seed and index).
#pragma once
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "trainer/config.h"
#include "trainer/model/llama.h"

namespace ethos {

std::string shared_stage_key(const Recipe& r, size_t stage_index, Llama& start_weights,
                             const std::string& tokenizer_hash, int world = 1);
// The cached stage directory for `key`, if a complete one exists.
std::optional<std::string> find_shared_stage(const std::string& cache_dir, const std::string& key);
// Stores the stage's final weights under `key` (info goes into stage.json).
void store_shared_stage(const std::string& cache_dir, const std::string& key, Llama& model,
                        const nlohmann::json& info);

}  // namespace ethos
