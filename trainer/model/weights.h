// Model directories in Hugging Face format: config.json + model.safetensors, or shards
// model-0000k-of-0000n.safetensors with model.safetensors.index.json.
#pragma once
#include <string>

#include "trainer/model/llama.h"

namespace ethos {

ModelConfig read_model_config(const std::string& dir);  // dir/config.json
// Copies weights from dir into `model`. Every model parameter must be present with the right
// shape (lm_head.weight may be absent when tied); dtypes are converted. Errors name file and tensor.
void load_weights(Llama& model, const std::string& dir);
Llama load_model(const std::string& dir);  // config + weights
// Writes config.json and the weights (sharded when larger than max_shard_bytes) atomically
// into dir (which must exist). Loadable by transformers' LlamaForCausalLM unchanged.
void save_model(Llama& model, const std::string& dir, size_t max_shard_bytes = size_t(2) << 30);

}  // namespace ethos
