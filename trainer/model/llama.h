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

// LoRA adapters (Hu et al. 2021, the layout of Hugging Face PEFT): a target projection
// y = x W^T (+ b) becomes y = x W^T (+ b) + (alpha / rank) * dropout(x) A^T B^T, with A [rank, in]
// drawn uniform(-1/sqrt(in), 1/sqrt(in)) (PEFT's kaiming-uniform default) and B [out, rank] zero, so
// the adapted model starts equal to its base. The base's parameters are frozen; the adapters are
// not registered module parameters, so hf_parameters() stays the base's Hugging Face weights.
struct LoraConfig {
  int64_t rank = 0;      // 0: no adapters
  double alpha = 8.0;    // PEFT's default lora_alpha
  double dropout = 0.0;  // on the adapter's input, in training mode only
  std::vector<std::string> targets = {"q_proj", "v_proj"};  // PEFT's default for Llama models
  bool enabled() const { return rank > 0; }
  double scale() const { return alpha / static_cast<double>(rank); }
  std::vector<std::string> problems() const;  // e.g. "targets: \"qproj\" is not a projection; ..."
  static const std::vector<std::string>& projections();  // q_proj k_proj v_proj o_proj gate_proj up_proj down_proj
};

// Per-layer key/value cache for incremental decoding. Rows may hold slots that are not tokens
// of their row (left padding of a shorter prompt, or the steps after a row finished while the
// others went on): `real` marks the slots that are, and nothing attends to the others.
// Copying a KVCache is cheap and safe: a shared store is copied before either copy appends.
struct KVCache {
  std::vector<torch::Tensor> k, v;  // per layer [B,K,S,D]: views of the filled part of the stores
  std::vector<torch::Tensor> k_store, v_store;  // per layer [B,K,capacity,D] (grown by doubling)
  torch::Tensor real;               // [B,S] bool
  torch::Tensor next_pos;           // [B] int64: the position the row's next real token takes
  int64_t length() const { return k.empty() || !k[0].defined() ? 0 : k[0].size(2); }
  int64_t rows() const { return length() == 0 ? 0 : k[0].size(0); }
  // A cache whose row i is this cache's row index[i] (int64 [N], repeats allowed): e.g. one
  // copy of a prompt's cache per candidate continuation.
  KVCache select_rows(const torch::Tensor& index) const;
  // The rows of every part, one part after another, in one cache: a part shorter than the
  // longest gets hole slots on the left (as a shorter prompt's left padding). E.g. prompts run
  // in small chunks of rows (less memory per forward), then decoded together.
  static KVCache stack_rows(const std::vector<KVCache>& parts);
};

struct LlamaImpl : torch::nn::Module {
  // default_init false: parameters are allocated but not initialised (LibTorch's module
  // initialisers are skipped), for a model whose every weight is about to be loaded (load_model).
  // dtype: what the parameters are held in. float32 trains; bfloat16 (or float16) holds a frozen
  // base at half the memory (LoRA on a bf16 base, inference). Whatever the weights are held in,
  // the activations are float32: a narrower weight is widened for each product (so the result is
  // the float32 model with its weights rounded once), except under CUDA bf16 autocast, where the
  // products run in bf16 anyway.
  explicit LlamaImpl(const ModelConfig& cfg, bool default_init = true, torch::ScalarType dtype = torch::kFloat32);

  // tokens, positions, doc_ids: int64 [B,T]. A token attends to earlier tokens with the same
  // doc id (causal, document-aware). Returns logits [B,T,V] (float32 on CPU).
  torch::Tensor forward(const torch::Tensor& tokens, const torch::Tensor& positions,
                        const torch::Tensor& doc_ids);
  // Plain causal forward for one sequence per row (positions 0..T-1).
  torch::Tensor forward(const torch::Tensor& tokens);
  // Incremental decoding: appends tokens [B,t] after the cache's slots, updates the cache and
  // returns logits [B,t,V]. left_pad (optional, int64 [B], first call only): row b starts with
  // left_pad[b] padding slots (batched prompts of different lengths).
  torch::Tensor forward_cached(const torch::Tensor& tokens, KVCache& cache, const torch::Tensor& left_pad = {});
  // The general form: real (optional, bool [B,t]) marks which new slots hold a token of their
  // row; the others are holes that take no position and that nothing attends to. Real tokens
  // are numbered 0, 1, 2, .. per row, so a row's logits do not depend on its holes or on the
  // other rows. last_only: logits of the last slot only ([B,1,V]; the other slots skip the
  // output projection, which is most of a small model's work on a long prompt).
  torch::Tensor extend(const torch::Tensor& tokens, KVCache& cache, const torch::Tensor& real = {},
                       bool last_only = false);
  // As extend, but returns the final hidden states [B,t,C] (after the last norm); logits_of
  // turns any [.., C] of them into logits (float32). A scorer that needs the log-probs of a few
  // slots projects only those.
  torch::Tensor extend_hidden(const torch::Tensor& tokens, KVCache& cache, const torch::Tensor& real = {});
  torch::Tensor logits_of(const torch::Tensor& hidden);

  // Parameters under Hugging Face names (lm_head.weight omitted when tied).
  std::vector<std::pair<std::string, torch::Tensor>> hf_parameters();
  // Deterministic initialisation from the current torch generator: normal(0, initializer_range)
  // for matrices and embeddings, ones for norms, zeros for biases.
  void init_weights();

  const ModelConfig& config() const { return cfg_; }
  torch::ScalarType dtype() const;  // the parameters' (the embedding's)

  // ---- LoRA ----
  // Adds adapters (initialised from the current torch generator, on the base weights' device)
  // and freezes the base. `base` records where the base weights came from (adapter_config.json's
  // base_model_name_or_path).
  void add_lora(const LoraConfig& lora, const std::string& base);
  bool has_lora() const { return lora_ != nullptr; }
  const LoraConfig& lora_config() const;
  const std::string& lora_base() const;
  // Adapter tensors under PEFT's names, e.g.
  //   base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight  [rank, in]
  //   base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight  [out, rank]
  std::vector<std::pair<std::string, torch::Tensor>> lora_parameters();
  // Off: the model computes its base exactly (a DPO reference without a second copy).
  void set_lora_enabled(bool on);
  bool lora_enabled() const { return lora_ && lora_->enabled; }
  // W += (alpha / rank) B A for every adapted projection (summed in float32, rounded once to W's
  // dtype), then drops the adapters.
  void merge_lora();
  // Moves the adapters with the model (they are not registered parameters).
  using torch::nn::Module::to;
  void to(torch::Device device, bool non_blocking = false) override;
  // What the optimizer trains: the adapters when there are some, otherwise every parameter.
  std::vector<std::pair<std::string, torch::Tensor>> trainable_parameters();

  struct LoraState {  // shared by the model and its adapted projections
    LoraConfig cfg;
    std::string base;
    bool enabled = true;
  };

 private:
  struct Norm;   // RMSNorm with parameter "weight" (defined in llama.cpp)
  struct Layer;  // one decoder block: self_attn, mlp, input/post_attention layernorms

  // Embedding -> layers -> norm -> logits. mask: additive [B,1,T,T_total]; cache may be null.
  enum class Output { all, last, hidden };
  torch::Tensor run(const torch::Tensor& tokens, const torch::Tensor& positions, const torch::Tensor& mask,
                    KVCache* cache, Output output = Output::all);
  torch::Tensor extend_impl(const torch::Tensor& tokens, KVCache& cache, const torch::Tensor& real, Output output);
  void check_tokens(const torch::Tensor& tokens, const char* where) const;

  ModelConfig cfg_;
  std::shared_ptr<torch::nn::Module> model_;     // registered as "model"
  torch::nn::Embedding embed_tokens_{nullptr};   // model.embed_tokens
  torch::nn::ModuleList layers_{nullptr};        // model.layers
  std::shared_ptr<Norm> norm_;                   // model.norm
  torch::nn::Linear lm_head_{nullptr};           // lm_head (null when tied)
  torch::Tensor inv_freq_;  // [D/2] float32; not a registered buffer (README.md, stack note 5)
  std::shared_ptr<LoraState> lora_;
};

// Switches a model's adapters off for a scope (a no-op for a model without adapters).
class LoraOff {
 public:
  explicit LoraOff(LlamaImpl& m) : m_(m), was_(m.lora_enabled()) { m_.set_lora_enabled(false); }
  ~LoraOff() { m_.set_lora_enabled(was_); }
  LoraOff(const LoraOff&) = delete;
  LoraOff& operator=(const LoraOff&) = delete;

 private:
  LlamaImpl& m_;
  bool was_;
};
TORCH_MODULE(Llama);

}  // namespace ethos
