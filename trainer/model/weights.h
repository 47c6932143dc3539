// Model directories in Hugging Face format: config.json + model.safetensors, or shards
// model-0000k-of-0000n.safetensors with model.safetensors.index.json.
#pragma once
#include <string>
#include <vector>

#include "trainer/model/llama.h"

namespace ethos {

ModelConfig read_model_config(const std::string& dir);  // dir/config.json
// Copies weights from dir into `model`; from an adapter directory (is_adapter_dir), into the
// model's LoRA adapters (load_adapter_weights). Every model parameter must be present with the right
// shape (lm_head.weight may be absent when tied); dtypes are converted. Errors name file and tensor.
void load_weights(Llama& model, const std::string& dir);
// config + weights; for a LoRA adapter directory (is_adapter_dir), its base model with the
// adapters attached (not merged). dtype: what the model's parameters are held in (a recipe's
// model.dtype); a file's weights are converted into it, so a bf16 file loaded as bfloat16 costs
// its own size, and as float32 twice that. LoRA adapters stay float32 whatever the base's dtype.
Llama load_model(const std::string& dir, torch::ScalarType dtype = torch::kFloat32);
// model.dtype's names: float32, bfloat16, float16 (as config.json's torch_dtype writes them).
// Anything else is an Error naming `where` and the choices.
torch::ScalarType model_dtype(const std::string& name, const std::string& where);
const char* model_dtype_name(torch::ScalarType dtype);
inline const std::vector<std::string>& model_dtypes() {  // header-only: the recipe checker uses it without the loader
  static const std::vector<std::string> names = {"float32", "bfloat16", "float16"};
  return names;
}
// Writes config.json and the weights (sharded when larger than max_shard_bytes) atomically
// into dir (which must exist). Loadable by transformers' LlamaForCausalLM unchanged.
void save_model(Llama& model, const std::string& dir, size_t max_shard_bytes = size_t(2) << 30);

// LoRA adapter directories as PEFT's save_pretrained writes them, which peft.PeftModel loads:
//   adapter_config.json       {"peft_type": "LORA", "r", "lora_alpha", "lora_dropout", "target_modules",
//                              "base_model_name_or_path", "task_type": "CAUSAL_LM", ...}
//   adapter_model.safetensors base_model.model.model.layers.N.self_attn.q_proj.lora_{A,B}.weight, ...
bool is_adapter_dir(const std::string& dir);
void save_adapter(Llama& model, const std::string& dir);  // the model's adapters and its lora_base()
// What a checkpoint or a cache entry keeps of a model: its adapters when it has some (the base is
// on disk already), otherwise the whole model directory (save_model).
void save_trained_weights(Llama& model, const std::string& dir);
// The adapter's config; `base` (optional) receives base_model_name_or_path. Errors name the key
// and say what ethos supports (plain LoRA on the seven projections).
LoraConfig read_adapter_config(const std::string& dir, std::string* base = nullptr);
// The same from the file's text (`path` names it in errors).
LoraConfig parse_adapter_config(const std::string& text, const std::string& path, std::string* base = nullptr);
// Copies the adapter weights of dir into a model that has adapters of the same config.
void load_adapter_weights(Llama& model, const std::string& dir);

}  // namespace ethos
