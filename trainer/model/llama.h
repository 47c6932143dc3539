// Decoder-only Llama-family model: token embedding, RMSNorm, rotary position embeddings,
// grouped-query attention, SwiGLU MLP, optional tied embeddings, optional q/k/v bias
// (Qwen2) and o bias (Llama attention_bias). Parameter names are Hugging Face's:
//   model.embed_tokens.weight, model.layers.N.self_attn.{q,k,v,o}_proj.{weight,bias},
//   model.layers.N.mlp.{gate,up,down}_proj.weight, model.layers.N.{input,post_attention}_layernorm.weight,
//   model.norm.weight, lm_head.weight (absent when tied).
// Shapes: B = batch, T = sequence length, C = hidden size, H = heads, K = kv heads,
//         D = head dim, V = vocabulary.
#pragma once
#include <torch/torch.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace ethos {

struct ModelConfig {
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_hidden_layers = 0;
  int64_t num_attention_heads = 0;
  int64_t num_key_value_heads = 0;  // 0 = same as num_attention_heads
  int64_t head_dim = 0;             // 0 = hidden_size / num_attention_heads
  int64_t max_position_embeddings = 2048;
  double rope_theta = 10000.0;
  double rms_norm_eps = 1e-5;
  bool tie_word_embeddings = false;
  bool qkv_bias = false;  // Qwen2: bias on q/k/v projections
  bool o_bias = false;    // Llama attention_bias=true: bias on q/k/v AND o
  int64_t bos_token_id = 1;
  int64_t eos_token_id = 2;
  double initializer_range = 0.02;

  int64_t kv_heads() const { return num_key_value_heads ? num_key_value_heads : num_attention_heads; }
  int64_t dim_per_head() const { return head_dim ? head_dim : hidden_size / num_attention_heads; }
  // Every problem at once, e.g. "num_attention_heads (6) must be a multiple of num_key_value_heads (4)".
  std::vector<std::string> problems() const;
  void validate() const;  // throws Error listing problems()
  // Hugging Face config.json fields (model_type "llama", or "qwen2" for qkv_bias models).
  static ModelConfig from_hf_json(const nlohmann::json& j, const std::string& where);
  nlohmann::json to_hf_json() const;
  int64_t num_parameters() const;
};

// Per-layer key/value cache for incremental decoding.
struct KVCache {
  std::vector<torch::Tensor> k, v;  // per layer [B,K,t,D]
  int64_t length() const { return k.empty() || !k[0].defined() ? 0 : k[0].size(2); }
};

struct LlamaImpl : torch::nn::Module {
  explicit LlamaImpl(const ModelConfig& cfg);

  // tokens, positions, doc_ids: int64 [B,T]. A token attends to earlier tokens with the same
  // doc id (causal, document-aware). Returns logits [B,T,V] (float32 on CPU).
  torch::Tensor forward(const torch::Tensor& tokens, const torch::Tensor& positions,
                        const torch::Tensor& doc_ids);
  // Plain causal forward for one sequence per row (positions 0..T-1).
  torch::Tensor forward(const torch::Tensor& tokens);
  // Incremental decoding: appends tokens [B,t] after cache.length() tokens, updates the cache.
  // left_pad (optional, int64 [B]): row b starts with left_pad[b] padding slots that nothing
  // attends to; its positions count from its first real token (batched prompts of different lengths).
  torch::Tensor forward_cached(const torch::Tensor& tokens, KVCache& cache, const torch::Tensor& left_pad = {});

  // Parameters under Hugging Face names (lm_head.weight omitted when tied).
  std::vector<std::pair<std::string, torch::Tensor>> hf_parameters();
  // Deterministic initialisation from the current torch generator: normal(0, initializer_range)
  // for matrices and embeddings, ones for norms, zeros for biases.
  void init_weights();

  const ModelConfig& config() const { return cfg_; }

 private:
  struct Norm;   // RMSNorm with parameter "weight" (defined in llama.cpp)
  struct Layer;  // one decoder block: self_attn, mlp, input/post_attention layernorms

  // Embedding -> layers -> norm -> logits. mask: additive [B,1,T,T_total]; cache may be null.
  torch::Tensor run(const torch::Tensor& tokens, const torch::Tensor& positions, const torch::Tensor& mask,
                    KVCache* cache);
  void check_tokens(const torch::Tensor& tokens, const char* where) const;

  ModelConfig cfg_;
  std::shared_ptr<torch::nn::Module> model_;     // registered as "model"
  torch::nn::Embedding embed_tokens_{nullptr};   // model.embed_tokens
  torch::nn::ModuleList layers_{nullptr};        // model.layers
  std::shared_ptr<Norm> norm_;                   // model.norm
  torch::nn::Linear lm_head_{nullptr};           // lm_head (null when tied)
  torch::Tensor inv_freq_;  // [D/2] float32; not a registered buffer (README.md, stack note 5)
};
TORCH_MODULE(Llama);

}  // namespace ethos
