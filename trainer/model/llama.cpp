// Llama-family decoder (Llama, Mistral, Qwen2 layouts) and its Hugging Face config.json mapping.
// The math follows Hugging Face's LlamaForCausalLM so that its checkpoints load and give the
// same logits: RMSNorm in float32, rotary embeddings in the "rotate_half" layout (first half /
// second half of each head, not interleaved), grouped-query attention with kv heads repeated
// as repeat_kv does, SwiGLU MLP.
// Shapes: B = batch, T = new tokens, S = keys (cached + new), C = hidden, H = heads,
//         K = kv heads, D = head dim, I = intermediate, V = vocabulary.
#include "trainer/model/llama.h"

#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <set>

#include "datasets/base/util.h"
#include "trainer/compat.h"
#include "trainer/model/attention_cpu.h"

namespace ethos {
namespace {

using json = nlohmann::json;
using torch::Tensor;

// ---- config.json ------------------------------------------------------------------------

std::string field_error(const std::string& where, const std::string& key, const char* expected, const json& v) {
  return where + ": field '" + key + "' must be " + expected + ", found " + std::string(v.type_name()) + " " +
         v.dump() + ". Fix the value in config.json.";
}

// Optional fields: absent or null keeps the default.
void read_int(const json& j, const std::string& key, int64_t& out, const std::string& where) {
  if (!j.contains(key) || j[key].is_null()) return;
  if (!j[key].is_number_integer()) throw Error(field_error(where, key, "an integer", j[key]));
  out = j[key].get<int64_t>();
}

void read_double(const json& j, const std::string& key, double& out, const std::string& where) {
  if (!j.contains(key) || j[key].is_null()) return;
  if (!j[key].is_number()) throw Error(field_error(where, key, "a number", j[key]));
  out = j[key].get<double>();
}

void read_bool(const json& j, const std::string& key, bool& out, const std::string& where) {
  if (!j.contains(key) || j[key].is_null()) return;
  if (!j[key].is_boolean()) throw Error(field_error(where, key, "true or false", j[key]));
  out = j[key].get<bool>();
}

void read_required_int(const json& j, const std::string& key, int64_t& out, const std::string& where) {
  if (!j.contains(key) || j[key].is_null())
    throw Error(where + ": required field '" + key + "' is missing. A Hugging Face config.json for a Llama-family "
                "model must set it.");
  read_int(j, key, out, where);
}

// bos/eos ids: an integer, or a list of integers (Llama 3 lists several eos ids; the first is used).
void read_token_id(const json& j, const std::string& key, int64_t& out, const std::string& where) {
  if (j.contains(key) && j[key].is_array()) {
    if (j[key].empty() || !j[key][0].is_number_integer())
      throw Error(field_error(where, key, "an integer or a non-empty list of integers", j[key]));
    out = j[key][0].get<int64_t>();
    return;
  }
  read_int(j, key, out, where);
}

// ---- building blocks --------------------------------------------------------------------

// Set while a LlamaImpl is built without default initialisation (LlamaImpl(cfg, false)), with
// the dtype its parameters get.
thread_local bool skip_default_init = false;
thread_local torch::ScalarType build_dtype = torch::kFloat32;

// A module built at size 1 (its initialiser then costs nothing) and its parameter given the
// real, uninitialised storage: same module type, same names, no random fill of a tensor that
// load_weights overwrites (for a 1.1B model that fill took 16 s of a 29 s load).
void give_storage(Tensor& p, std::vector<int64_t> shape) {
  torch::NoGradGuard no_grad;
  p.set_data(torch::empty(shape, p.options().dtype(build_dtype)));  // as Module::to(dtype) does: set_ keeps the old dtype
}

torch::nn::Linear linear(int64_t in, int64_t out, bool bias) {
  if (!skip_default_init) return torch::nn::Linear(torch::nn::LinearOptions(in, out).bias(bias));
  torch::nn::Linear l(torch::nn::LinearOptions(1, 1).bias(bias));
  l->options.in_features(in).out_features(out);
  give_storage(l->weight, {out, in});
  if (bias) give_storage(l->bias, {out});
  return l;
}

torch::nn::Embedding embedding(int64_t n, int64_t dim) {
  if (!skip_default_init) return torch::nn::Embedding(n, dim);
  torch::nn::Embedding e(1, 1);
  e->options.num_embeddings(n).embedding_dim(dim);
  give_storage(e->weight, {n, dim});
  return e;
}

// A projection's LoRA adapter: A [r, in], B [out, r]; undefined when the projection has none.
struct Adapter {
  Tensor A, B;
  std::shared_ptr<LlamaImpl::LoraState> state;
};

// The adapter of projection `name`, or an empty one (looked up, never inserted: eval worker
// threads share the model).
const Adapter& adapter_of(const std::map<std::string, Adapter, std::less<>>& adapters, std::string_view name) {
  static const Adapter none;
  const auto it = adapters.find(name);
  return it == adapters.end() ? none : it->second;
}

// x W^T for a frozen W held in a narrower dtype than x (a bf16 base under float32 activations):
// W is widened for the product only, and backward keeps W itself rather than the wide copy, so
// a bf16 base costs its own size during training too (autograd would otherwise save the float32
// copy of every projection until backward).
struct WidenedMatmul : torch::autograd::Function<WidenedMatmul> {
  static Tensor forward(torch::autograd::AutogradContext* ctx, const Tensor& x, const Tensor& w) {
    ctx->save_for_backward({w});
    return torch::matmul(x, w.to(x.scalar_type()).t());
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad) {
    const Tensor w = ctx->get_saved_variables()[0];
    return {torch::matmul(grad[0], w.to(grad[0].scalar_type())), Tensor()};
  }
};

// x W^T + b in x's dtype whatever W is held in (see LlamaImpl's constructor); under CUDA bf16
// autocast, as autocast casts it.
Tensor linear_of(const Tensor& x, const Tensor& w, const Tensor& b) {
  namespace F = torch::nn::functional;
  if (w.scalar_type() == x.scalar_type() || compat::autocast_enabled()) return F::linear(x, w, b);
  const auto wide = [&](const Tensor& t) { return t.defined() ? t.to(x.scalar_type()) : t; };
  if (w.requires_grad()) return F::linear(x, wide(w), wide(b));  // a trained weight: its gradient flows through the cast
  const Tensor y = WidenedMatmul::apply(x, w);
  return b.defined() ? y + wide(b) : y;
}

// base(x) + (alpha / r) * dropout(x) A^T B^T; the adapter in its own dtype (float32), the sum in
// the activations'.
Tensor project(torch::nn::Linear& base, const Adapter& a, const Tensor& x, bool training) {
  auto y = linear_of(x, base->weight, base->bias);
  if (!a.A.defined() || !a.state->enabled) return y;
  const auto& cfg = a.state->cfg;
  auto in = x.to(a.A.scalar_type());
  if (training && cfg.dropout > 0) in = torch::dropout(in, cfg.dropout, /*train=*/true);
  namespace F = torch::nn::functional;
  return y + (F::linear(F::linear(in, a.A), a.B) * cfg.scale()).to(y.scalar_type());
}

// HF rotate_half: [x1, x2] -> [-x2, x1] with x1, x2 the two halves of the last dim.
Tensor rotate_half(const Tensor& x) {
  const int64_t half = x.size(-1) / 2;
  return torch::cat({-x.narrow(-1, half, half), x.narrow(-1, 0, half)}, -1);
}

// x: [B,N,T,D]; cos, sin: [B,1,T,D]
Tensor apply_rope(const Tensor& x, const Tensor& cos, const Tensor& sin) { return x * cos + rotate_half(x) * sin; }

// Additive mask [B,1,T,S] from a boolean "may attend" [B,T,S]: 0 where allowed, -inf elsewhere.
Tensor additive_mask(const Tensor& allowed, torch::ScalarType dtype) {
  auto mask = torch::zeros(allowed.sizes(), torch::TensorOptions().dtype(dtype).device(allowed.device()));
  return mask.masked_fill(allowed.logical_not(), -std::numeric_limits<double>::infinity()).unsqueeze(1);
}

// Appends fresh [B,K,t,D] to a cache layer: `store` [B,K,capacity,D] grows by doubling for a
// decoding step (t = 1), so a step copies only its own keys, not the whole cache, and exactly
// for a block of tokens (a prompt, or a candidate continuing a copied cache: no room is left
// that nothing would fill); `view` is its filled part. A store that another KVCache shares (a
// copied cache) is copied before it is written. The store is this cache's own when only the
// cache holds it: its own reference, plus the one its view keeps to its base (LibTorch tracks
// views under NoGradGuard too; not under InferenceMode). Counting only the first made every
// decoding step copy the whole cache (half of a sampled eval's time).
Tensor append_kv(Tensor& view, Tensor& store, const Tensor& fresh) {
  const int64_t used = view.defined() ? view.size(2) : 0, t = fresh.size(2);
  const int64_t refs = 1 + (view.defined() && view.is_view() ? 1 : 0);
  const bool own = store.defined() && static_cast<int64_t>(store.use_count()) == refs && used > 0 && view.data_ptr() == store.data_ptr();
  if (!own || store.size(2) < used + t || store.size(0) != fresh.size(0)) {
    auto sizes = fresh.sizes().vec();
    sizes[2] = t > 1 ? used + t : std::max<int64_t>({used + 1, 2 * used, 16});  // room to decode; a block, exactly
    Tensor grown = torch::empty(sizes, fresh.options());
    if (used > 0) grown.narrow(2, 0, used).copy_(view);
    store = grown;
  }
  store.narrow(2, used, t).copy_(fresh);
  view = store.narrow(2, 0, used + t);
  return view;
}

struct AttentionImpl : torch::nn::Module {
  explicit AttentionImpl(const ModelConfig& c)
      : heads(c.num_attention_heads), kv_heads(c.kv_heads()), head_dim(c.dim_per_head()) {
    q_proj = register_module("q_proj", linear(c.hidden_size, heads * head_dim, c.qkv_bias));
    k_proj = register_module("k_proj", linear(c.hidden_size, kv_heads * head_dim, c.qkv_bias));
    v_proj = register_module("v_proj", linear(c.hidden_size, kv_heads * head_dim, c.qkv_bias));
    o_proj = register_module("o_proj", linear(heads * head_dim, c.hidden_size, c.o_bias));
  }

  // x: [B,T,C]; cos/sin [B,1,T,D]; mask [B,1,T,S]. With a cache, k/v [B,K,t,D] (post-RoPE,
  // before repetition) are appended to the cache's layer `layer`.
  Tensor forward(const Tensor& x, const Tensor& cos, const Tensor& sin, const Tensor& mask, KVCache* cache,
                 size_t layer) {
    const int64_t B = x.size(0), T = x.size(1);
    const bool tr = is_training();
    auto q = project(q_proj, adapter_of(adapter, "q_proj"), x, tr).view({B, T, heads, head_dim}).transpose(1, 2);     // [B,H,T,D]
    auto k = project(k_proj, adapter_of(adapter, "k_proj"), x, tr).view({B, T, kv_heads, head_dim}).transpose(1, 2);  // [B,K,T,D]
    auto v = project(v_proj, adapter_of(adapter, "v_proj"), x, tr).view({B, T, kv_heads, head_dim}).transpose(1, 2);  // [B,K,T,D]
    q = apply_rope(q, cos, sin);
    k = apply_rope(k, cos, sin);
    if (cache) {
      k = append_kv(cache->k[layer], cache->k_store[layer], k);  // [B,K,S,D]
      v = append_kv(cache->v[layer], cache->v_store[layer], v);
    }
    // The CPU inference kernels only on the KV-cache path (decoding, prompts, continuations):
    // forward() without a cache keeps one attention for training and for the no-grad passes
    // that must match it to the last bit (a DPO reference equal to the policy gives ln 2).
    const bool kernel = cache && attention_cpu_applies(q, k, mask);
    auto out = kernel ? attention_cpu(q, k, v, mask) : compat::attention(q, k, v, mask);  // [B,H,T,D]; kv heads shared by groups of H/K
    return project(o_proj, adapter_of(adapter, "o_proj"), out.transpose(1, 2).reshape({B, T, heads * head_dim}), tr);  // [B,T,C]
  }

  torch::nn::Linear& by_name(const std::string& name) {
    return name == "q_proj" ? q_proj : name == "k_proj" ? k_proj : name == "v_proj" ? v_proj : o_proj;
  }

  int64_t heads, kv_heads, head_dim;
  torch::nn::Linear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, o_proj{nullptr};
  std::map<std::string, Adapter, std::less<>> adapter;  // by projection name (LoRA)
};
TORCH_MODULE(Attention);

struct MlpImpl : torch::nn::Module {
  explicit MlpImpl(const ModelConfig& c) {
    gate_proj = register_module("gate_proj", linear(c.hidden_size, c.intermediate_size, false));
    up_proj = register_module("up_proj", linear(c.hidden_size, c.intermediate_size, false));
    down_proj = register_module("down_proj", linear(c.intermediate_size, c.hidden_size, false));
  }
  // [B,T,C] -> [B,T,I] -> [B,T,C]
  Tensor forward(const Tensor& x) {
    const bool tr = is_training();
    const auto h = torch::silu(project(gate_proj, adapter_of(adapter, "gate_proj"), x, tr)) * project(up_proj, adapter_of(adapter, "up_proj"), x, tr);
    return project(down_proj, adapter_of(adapter, "down_proj"), h, tr);
  }

  torch::nn::Linear& by_name(const std::string& name) {
    return name == "gate_proj" ? gate_proj : name == "up_proj" ? up_proj : down_proj;
  }

  torch::nn::Linear gate_proj{nullptr}, up_proj{nullptr}, down_proj{nullptr};
  std::map<std::string, Adapter, std::less<>> adapter;  // by projection name (LoRA)
};
TORCH_MODULE(Mlp);

}  // namespace

// ---- ModelConfig ------------------------------------------------------------------------

std::vector<std::string> ModelConfig::problems() const {
  std::vector<std::string> p;
  auto positive = [&](const char* name, int64_t v) {
    if (v <= 0) p.push_back(std::string(name) + " (" + std::to_string(v) + ") must be > 0");
  };
  positive("vocab_size", vocab_size);
  positive("hidden_size", hidden_size);
  positive("intermediate_size", intermediate_size);
  positive("num_hidden_layers", num_hidden_layers);
  positive("num_attention_heads", num_attention_heads);
  positive("max_position_embeddings", max_position_embeddings);
  if (num_key_value_heads < 0) p.push_back("num_key_value_heads (" + std::to_string(num_key_value_heads) + ") must be >= 0 (0 = num_attention_heads)");
  if (head_dim < 0) p.push_back("head_dim (" + std::to_string(head_dim) + ") must be >= 0 (0 = hidden_size / num_attention_heads)");
  if (num_attention_heads > 0 && num_key_value_heads > 0 && num_attention_heads % num_key_value_heads != 0)
    p.push_back("num_attention_heads (" + std::to_string(num_attention_heads) + ") must be a multiple of num_key_value_heads (" +
                std::to_string(num_key_value_heads) + ")");
  if (head_dim == 0 && num_attention_heads > 0 && hidden_size % num_attention_heads != 0)
    p.push_back("hidden_size (" + std::to_string(hidden_size) + ") must be a multiple of num_attention_heads (" +
                std::to_string(num_attention_heads) + "), or set head_dim");
  if (num_attention_heads > 0 && dim_per_head() % 2 != 0)
    p.push_back("head dim (" + std::to_string(dim_per_head()) + ") must be even for rotary embeddings");
  if (!(rope_theta > 0)) p.push_back("rope_theta (" + std::to_string(rope_theta) + ") must be > 0");
  if (!(rms_norm_eps > 0)) p.push_back("rms_norm_eps (" + std::to_string(rms_norm_eps) + ") must be > 0");
  if (!(initializer_range >= 0)) p.push_back("initializer_range (" + std::to_string(initializer_range) + ") must be >= 0");
  if (o_bias && !qkv_bias)
    p.push_back("o_bias requires qkv_bias (Llama's attention_bias puts a bias on q, k, v and o together)");
  return p;
}

void ModelConfig::validate() const {
  const auto p = problems();
  if (p.empty()) return;
  std::string msg = "invalid model config:";
  for (const auto& s : p) msg += "\n  - " + s;
  throw Error(msg);
}

ModelConfig ModelConfig::from_hf_json(const json& j, const std::string& where) {
  if (!j.is_object()) throw Error(where + ": expected a JSON object (Hugging Face config.json), found " + j.type_name());
  if (!j.contains("model_type") || !j["model_type"].is_string())
    throw Error(where + ": field 'model_type' must be a string: one of \"llama\", \"mistral\", \"qwen2\"");
  const std::string type = j["model_type"].get<std::string>();
  if (type != "llama" && type != "mistral" && type != "qwen2")
    throw Error(where + ": model_type \"" + type + "\" is not supported; ethos loads \"llama\", \"mistral\" and \"qwen2\" models");
  if (j.contains("rope_scaling") && !j["rope_scaling"].is_null())
    throw Error(where + ": rope_scaling " + j["rope_scaling"].dump() + " is not supported yet; use a model without "
                "rope_scaling (set it to null only if the checkpoint was trained without it)");
  if (j.contains("hidden_act") && j["hidden_act"] != "silu")
    throw Error(where + ": hidden_act " + j["hidden_act"].dump() + " is not supported; Llama-family models use \"silu\"");

  ModelConfig c;
  c.rms_norm_eps = 1e-6;  // Hugging Face's default for all three model types
  read_required_int(j, "vocab_size", c.vocab_size, where);
  read_required_int(j, "hidden_size", c.hidden_size, where);
  read_required_int(j, "intermediate_size", c.intermediate_size, where);
  read_required_int(j, "num_hidden_layers", c.num_hidden_layers, where);
  read_required_int(j, "num_attention_heads", c.num_attention_heads, where);
  read_int(j, "num_key_value_heads", c.num_key_value_heads, where);
  read_int(j, "head_dim", c.head_dim, where);
  read_int(j, "max_position_embeddings", c.max_position_embeddings, where);
  read_double(j, "rope_theta", c.rope_theta, where);
  read_double(j, "rms_norm_eps", c.rms_norm_eps, where);
  read_bool(j, "tie_word_embeddings", c.tie_word_embeddings, where);
  read_token_id(j, "bos_token_id", c.bos_token_id, where);
  read_token_id(j, "eos_token_id", c.eos_token_id, where);
  read_double(j, "initializer_range", c.initializer_range, where);
  if (type == "qwen2") {
    c.qkv_bias = true;
    c.o_bias = false;
  } else {
    bool attention_bias = false;
    read_bool(j, "attention_bias", attention_bias, where);
    c.qkv_bias = c.o_bias = attention_bias;
  }
  const auto p = c.problems();
  if (!p.empty()) {
    std::string msg = where + ": invalid model config:";
    for (const auto& s : p) msg += "\n  - " + s;
    throw Error(msg);
  }
  return c;
}

json ModelConfig::to_hf_json() const {
  const bool qwen2 = qkv_bias && !o_bias;
  json j{
      {"architectures", {qwen2 ? "Qwen2ForCausalLM" : "LlamaForCausalLM"}},
      {"model_type", qwen2 ? "qwen2" : "llama"},
      {"vocab_size", vocab_size},
      {"hidden_size", hidden_size},
      {"intermediate_size", intermediate_size},
      {"num_hidden_layers", num_hidden_layers},
      {"num_attention_heads", num_attention_heads},
      {"num_key_value_heads", kv_heads()},
      {"head_dim", dim_per_head()},
      {"max_position_embeddings", max_position_embeddings},
      {"rope_theta", rope_theta},
      {"rope_scaling", nullptr},
      {"rms_norm_eps", rms_norm_eps},
      {"tie_word_embeddings", tie_word_embeddings},
      {"hidden_act", "silu"},
      {"attention_dropout", 0.0},
      {"initializer_range", initializer_range},
      {"bos_token_id", bos_token_id},
      {"eos_token_id", eos_token_id},
      {"torch_dtype", "float32"},
      {"use_cache", true},
  };
  if (qwen2) {
    j["use_sliding_window"] = false;
  } else {
    j["attention_bias"] = qkv_bias;
    j["mlp_bias"] = false;
    j["pretraining_tp"] = 1;
  }
  return j;
}

int64_t ModelConfig::num_parameters() const {
  const int64_t C = hidden_size, D = dim_per_head(), H = num_attention_heads, K = kv_heads();
  const int64_t attention = C * H * D + 2 * C * K * D + H * D * C + (qkv_bias ? H * D + 2 * K * D : 0) + (o_bias ? C : 0);
  const int64_t mlp = 3 * C * intermediate_size;
  const int64_t layer = attention + mlp + 2 * C;
  return vocab_size * C * (tie_word_embeddings ? 1 : 2) + num_hidden_layers * layer + C;
}

// ---- modules ----------------------------------------------------------------------------

// RMSNorm: x * rsqrt(mean(x^2) + eps) * weight, computed in float32 and cast back (as HF does).
struct LlamaImpl::Norm : torch::nn::Module {
  Norm(int64_t dim, double eps_) : eps(eps_) {
    weight = register_parameter("weight", torch::ones({dim}, torch::dtype(build_dtype)));
  }
  Tensor forward(const Tensor& x) {  // [..., C]
    const auto xf = x.to(torch::kFloat32);
    const auto normed = xf * torch::rsqrt(xf.pow(2).mean(-1, /*keepdim=*/true) + eps);
    return weight * normed.to(x.scalar_type());
  }
  double eps;
  Tensor weight;
};

struct LlamaImpl::Layer : torch::nn::Module {
  explicit Layer(const ModelConfig& c) {
    self_attn = register_module("self_attn", Attention(c));
    mlp = register_module("mlp", Mlp(c));
    input_layernorm = register_module("input_layernorm", std::make_shared<Norm>(c.hidden_size, c.rms_norm_eps));
    post_attention_layernorm =
        register_module("post_attention_layernorm", std::make_shared<Norm>(c.hidden_size, c.rms_norm_eps));
  }
  // x: [B,T,C] -> [B,T,C]
  Tensor forward(const Tensor& x, const Tensor& cos, const Tensor& sin, const Tensor& mask, KVCache* cache,
                 size_t layer) {
    const auto h = x + self_attn->forward(input_layernorm->forward(x), cos, sin, mask, cache, layer);
    return h + mlp->forward(post_attention_layernorm->forward(h));
  }
  Attention self_attn{nullptr};
  Mlp mlp{nullptr};
  std::shared_ptr<Norm> input_layernorm, post_attention_layernorm;
};

LlamaImpl::LlamaImpl(const ModelConfig& cfg, bool default_init, torch::ScalarType dtype) : cfg_(cfg) {
  cfg_.validate();
  if (!c10::isFloatingType(dtype)) throw Error(std::string("Llama: parameters must be of a floating dtype, not ") + c10::toString(dtype));
  // Without default initialisation the size-1 modules' initialisers still draw a few numbers:
  // the CPU generator's state is put back afterwards, so building a model for loading leaves
  // the random stream where it was.
  struct Scope {
    bool before = skip_default_init;
    torch::ScalarType before_dtype = build_dtype;
    at::Generator gen = at::detail::getDefaultCPUGenerator();
    torch::Tensor state;
    ~Scope() {
      skip_default_init = before;
      build_dtype = before_dtype;
      if (state.defined()) {
        std::lock_guard<std::mutex> lock(gen.mutex());
        gen.set_state(state);
      }
    }
  } scope;
  skip_default_init = !default_init;
  build_dtype = default_init ? torch::kFloat32 : dtype;  // initialised in float32, then narrowed
  if (!default_init) {
    std::lock_guard<std::mutex> lock(scope.gen.mutex());
    scope.state = scope.gen.get_state();
  }
  model_ = register_module("model", std::make_shared<torch::nn::Module>("LlamaModel"));
  embed_tokens_ = model_->register_module("embed_tokens", embedding(cfg_.vocab_size, cfg_.hidden_size));
  layers_ = model_->register_module("layers", torch::nn::ModuleList());
  for (int64_t i = 0; i < cfg_.num_hidden_layers; ++i) layers_->push_back(std::make_shared<Layer>(cfg_));
  norm_ = model_->register_module("norm", std::make_shared<Norm>(cfg_.hidden_size, cfg_.rms_norm_eps));
  if (!cfg_.tie_word_embeddings) lm_head_ = register_module("lm_head", linear(cfg_.hidden_size, cfg_.vocab_size, false));
  // inv_freq[i] = 1 / theta^(2i/D), i = 0..D/2-1, in float32 like HF.
  const int64_t D = cfg_.dim_per_head();
  inv_freq_ = 1.0 / torch::pow(cfg_.rope_theta, torch::arange(0, D, 2, torch::kInt64).to(torch::kFloat32) / D);
  if (default_init && dtype != torch::kFloat32) torch::nn::Module::to(dtype);
}

torch::ScalarType LlamaImpl::dtype() const { return embed_tokens_->weight.scalar_type(); }

void LlamaImpl::check_tokens(const Tensor& tokens, const char* where) const {
  if (tokens.dim() != 2 || tokens.scalar_type() != torch::kInt64)
    throw Error(std::string(where) + ": tokens must be an int64 tensor [B,T], got " + std::to_string(tokens.dim()) +
                "-d " + std::string(c10::toString(tokens.scalar_type())));
  if (tokens.numel() == 0) throw Error(std::string(where) + ": no tokens to process (empty [B,T] tensor)");
  const int64_t lo = tokens.min().item<int64_t>(), hi = tokens.max().item<int64_t>();
  if (lo < 0 || hi >= cfg_.vocab_size)
    throw Error(std::string(where) + ": token id " + std::to_string(lo < 0 ? lo : hi) + " is outside the vocabulary [0, " +
                std::to_string(cfg_.vocab_size) + "); the tokenizer does not match the model's vocab_size");
}

Tensor LlamaImpl::run(const Tensor& tokens, const Tensor& positions, const Tensor& mask, KVCache* cache,
                      Output output) {
  auto h = embed_tokens_->forward(tokens);  // [B,T,C]
  if (h.scalar_type() != torch::kFloat32) h = h.to(torch::kFloat32);  // activations are float32 (constructor)
  // Rotary angles per token: [B,T,D/2] -> duplicated halves [B,1,T,D]
  const auto freqs = positions.to(torch::kFloat32).unsqueeze(-1) * inv_freq_.to(h.device());
  const auto angles = torch::cat({freqs, freqs}, -1).unsqueeze(1);
  const auto cos = angles.cos().to(h.scalar_type()), sin = angles.sin().to(h.scalar_type());
  for (size_t i = 0; i < layers_->size(); ++i) h = layers_[i]->as<Layer>()->forward(h, cos, sin, mask, cache, i);
  if (output == Output::last) h = h.narrow(1, h.size(1) - 1, 1);
  h = norm_->forward(h);
  return output == Output::hidden ? h : logits_of(h);
}

Tensor LlamaImpl::logits_of(const Tensor& hidden) {
  const auto logits = cfg_.tie_word_embeddings ? linear_of(hidden, embed_tokens_->weight, {})
                                               : linear_of(hidden, lm_head_->weight, lm_head_->bias);  // [..,V]
  return logits.to(torch::kFloat32);
}

Tensor LlamaImpl::forward(const Tensor& tokens, const Tensor& positions, const Tensor& doc_ids) {
  check_tokens(tokens, "Llama::forward");
  if (positions.sizes() != tokens.sizes() || doc_ids.sizes() != tokens.sizes())
    throw Error("Llama::forward: tokens, positions and doc_ids must have the same shape [B,T]");
  const int64_t T = tokens.size(1);
  // may attend: same document and not in the future; the diagonal always (so a padding token
  // never has an all-blocked row, which would give NaN).
  const auto same_doc = doc_ids.unsqueeze(2) == doc_ids.unsqueeze(1);  // [B,T,T]
  const auto causal = torch::ones({T, T}, tokens.options().dtype(torch::kBool)).tril();
  const auto diagonal = torch::eye(T, tokens.options().dtype(torch::kBool));
  const auto mask = additive_mask((same_doc & causal) | diagonal, torch::kFloat32);
  return run(tokens, positions, mask, nullptr);
}

Tensor LlamaImpl::forward(const Tensor& tokens) {
  check_tokens(tokens, "Llama::forward");
  const int64_t T = tokens.size(1);
  const auto positions = torch::arange(T, tokens.options()).unsqueeze(0).expand_as(tokens);
  return forward(tokens, positions, torch::zeros_like(tokens));
}

KVCache KVCache::select_rows(const Tensor& index) const {
  KVCache out;
  for (const auto& t : k) out.k.push_back(t.index_select(0, index));
  for (const auto& t : v) out.v.push_back(t.index_select(0, index));
  if (real.defined()) out.real = real.index_select(0, index);
  if (next_pos.defined()) out.next_pos = next_pos.index_select(0, index);
  return out;
}

KVCache KVCache::stack_rows(const std::vector<KVCache>& parts) {
  if (parts.empty()) throw Error("KVCache::stack_rows: no caches to stack");
  if (parts.size() == 1) return parts[0];
  int64_t S = 0;
  const size_t L = parts[0].k.size();
  for (const auto& p : parts) {
    if (p.length() == 0 || p.k.size() != L || p.v.size() != L || !p.real.defined())
      throw Error("KVCache::stack_rows: every part must hold tokens of a model with the same layer count");
    S = std::max(S, p.length());
  }
  auto left_padded = [S](const Tensor& t, int64_t dim) {  // holes on the left up to S slots
    const int64_t pad = S - t.size(dim);
    if (pad == 0) return t;
    auto sizes = t.sizes().vec();
    sizes[dim] = pad;
    return torch::cat({torch::zeros(sizes, t.options()), t}, dim);
  };
  KVCache out;
  std::vector<Tensor> pieces;
  for (size_t l = 0; l < L; ++l) {
    pieces.clear();
    for (const auto& p : parts) pieces.push_back(left_padded(p.k[l], 2));
    out.k.push_back(torch::cat(pieces, 0));
    pieces.clear();
    for (const auto& p : parts) pieces.push_back(left_padded(p.v[l], 2));
    out.v.push_back(torch::cat(pieces, 0));
  }
  pieces.clear();
  for (const auto& p : parts) pieces.push_back(left_padded(p.real, 1));
  out.real = torch::cat(pieces, 0);
  pieces.clear();
  for (const auto& p : parts) pieces.push_back(p.next_pos);
  out.next_pos = torch::cat(pieces, 0);
  return out;
}

Tensor LlamaImpl::forward_cached(const Tensor& tokens, KVCache& cache, const Tensor& left_pad) {
  if (!left_pad.defined() || cache.length() > 0) return extend(tokens, cache);
  check_tokens(tokens, "Llama::forward_cached");
  const int64_t B = tokens.size(0), T = tokens.size(1);
  const auto pad = left_pad.to(tokens.device(), torch::kInt64).view({B, 1});
  return extend(tokens, cache, torch::arange(T, tokens.options()).unsqueeze(0) >= pad);
}

Tensor LlamaImpl::extend(const Tensor& tokens, KVCache& cache, const Tensor& real, bool last_only) {
  return extend_impl(tokens, cache, real, last_only ? Output::last : Output::all);
}

Tensor LlamaImpl::extend_hidden(const Tensor& tokens, KVCache& cache, const Tensor& real) {
  return extend_impl(tokens, cache, real, Output::hidden);
}

Tensor LlamaImpl::extend_impl(const Tensor& tokens, KVCache& cache, const Tensor& real_in, Output output) {
  check_tokens(tokens, "Llama::extend");
  const auto L = static_cast<size_t>(cfg_.num_hidden_layers);
  if (cache.k.size() != L || cache.v.size() != L) {
    if (cache.length() != 0) throw Error("Llama::extend: the KV cache belongs to a model with another layer count");
    cache.k.assign(L, Tensor());
    cache.v.assign(L, Tensor());
  }
  cache.k_store.resize(L);
  cache.v_store.resize(L);
  const int64_t past = cache.length(), B = tokens.size(0), T = tokens.size(1);
  if (past > 0 && cache.rows() != B)
    throw Error("Llama::extend: batch size " + std::to_string(B) + " differs from the cache's " +
                std::to_string(cache.rows()));
  const auto opts = tokens.options();
  const auto real = real_in.defined() ? real_in.to(tokens.device(), torch::kBool)
                                      : torch::ones({B, T}, opts.dtype(torch::kBool));  // [B,T]
  if (real.sizes() != tokens.sizes()) throw Error("Llama::extend: real must have the tokens' shape [B,T]");
  if (past == 0 || !cache.real.defined()) {
    cache.real = torch::ones({B, past}, opts.dtype(torch::kBool));
    cache.next_pos = torch::full({B}, past, opts);
  }
  // real tokens count on from the row's next position; a hole takes its predecessor's (unused)
  const auto counted = real.to(torch::kInt64).cumsum(1);                             // [B,T]
  const auto positions = (cache.next_pos.unsqueeze(1) + counted - 1).clamp_min(0);   // [B,T]
  cache.next_pos = cache.next_pos + counted.select(1, T - 1);
  cache.real = torch::cat({cache.real, real}, 1);                                    // [B,S]
  // new token i (slot past+i) sees its row's real slots up to its own; every slot sees itself,
  // so no row of the mask is all blocked (which would give NaN)
  const auto key_slot = torch::arange(past + T, opts).view({1, 1, past + T});        // [1,1,S]
  const auto query_slot = torch::arange(past, past + T, opts).view({1, T, 1});       // [1,T,1]
  const auto allowed = ((key_slot <= query_slot) & cache.real.unsqueeze(1)) | (key_slot == query_slot);  // [B,T,S]
  const auto mask = additive_mask(allowed, torch::kFloat32);                          // [B,1,T,S]
  return run(tokens, positions, mask, &cache, output);
}

std::vector<std::pair<std::string, Tensor>> LlamaImpl::hf_parameters() {
  std::vector<std::pair<std::string, Tensor>> out;
  for (const auto& item : named_parameters(/*recurse=*/true)) out.emplace_back(item.key(), item.value());
  return out;
}

void LlamaImpl::init_weights() {
  torch::NoGradGuard no_grad;
  for (auto& [name, p] : hf_parameters()) {
    if (ends_with(name, "norm.weight")) p.fill_(1.0);
    else if (ends_with(name, ".bias")) p.zero_();
    else p.normal_(0.0, cfg_.initializer_range);
  }
}

// ---- LoRA -------------------------------------------------------------------------------

const std::vector<std::string>& LoraConfig::projections() {
  static const std::vector<std::string> names = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"};
  return names;
}

std::vector<std::string> LoraConfig::problems() const {
  std::vector<std::string> p;
  if (rank <= 0 || rank > 65536) p.push_back("rank (" + std::to_string(rank) + ") must be in [1, 65536]");
  if (!(alpha > 0)) p.push_back("alpha (" + std::to_string(alpha) + ") must be > 0");
  if (!(dropout >= 0 && dropout < 1)) p.push_back("dropout (" + std::to_string(dropout) + ") must be in [0, 1)");
  if (targets.empty()) p.push_back("targets is empty: name at least one of " + join(projections(), ", "));
  std::set<std::string> seen;
  for (const auto& t : targets) {
    if (std::find(projections().begin(), projections().end(), t) == projections().end())
      p.push_back("targets: \"" + t + "\" is not a projection of a Llama layer; use " + join(projections(), ", ") +
                  in_parens(did_you_mean(t, projections())));
    else if (!seen.insert(t).second)
      p.push_back("targets: \"" + t + "\" is listed twice");
  }
  return p;
}

namespace {

// Each adapted projection of the model, with its PEFT module name (without ".lora_A.weight").
template <class F> void for_each_adapter(torch::nn::ModuleList& layers, F f) {
  for (size_t i = 0; i < layers->size(); ++i) {
    auto* layer = layers[i].get();
    const std::string prefix = "base_model.model.model.layers." + std::to_string(i) + ".";
    for (const auto& child : layer->named_children()) {
      if (auto* attn = child.value()->as<AttentionImpl>())
        for (auto& [name, a] : attn->adapter) f(prefix + "self_attn." + name, a, attn->by_name(name));
      if (auto* mlp = child.value()->as<MlpImpl>())
        for (auto& [name, a] : mlp->adapter) f(prefix + "mlp." + name, a, mlp->by_name(name));
    }
  }
}

}  // namespace

void LlamaImpl::add_lora(const LoraConfig& lora, const std::string& base) {
  if (lora_) throw Error("add_lora: the model already has LoRA adapters");
  const auto p = lora.problems();
  if (!p.empty()) throw Error("invalid LoRA config: " + join(p, "; "));
  torch::NoGradGuard no_grad;
  for (auto& param : parameters()) param.set_requires_grad(false);  // the base stays frozen
  lora_ = std::make_shared<LoraState>(LoraState{lora, base, true});
  auto& targets = lora_->cfg.targets;  // in the layer's order, whatever order they were listed in
  const auto& order = LoraConfig::projections();
  std::sort(targets.begin(), targets.end(), [&](const std::string& a, const std::string& b) {
    return std::find(order.begin(), order.end(), a) < std::find(order.begin(), order.end(), b);
  });
  auto add = [&](auto* module, std::initializer_list<const char*> names) {
    for (const char* name : names) {  // a fixed order: the draws do not depend on how targets are listed
      if (std::find(lora.targets.begin(), lora.targets.end(), name) == lora.targets.end()) continue;
      const Tensor& w = module->by_name(name)->weight;  // [out, in]
      if (lora.rank > std::min(w.size(0), w.size(1)))
        throw Error("LoRA rank " + std::to_string(lora.rank) + " is larger than " + name + " itself (" +
                    std::to_string(w.size(0)) + " x " + std::to_string(w.size(1)) + "): choose a rank of at most " +
                    std::to_string(std::min(w.size(0), w.size(1))));
      const auto opts = torch::TensorOptions().dtype(torch::kFloat32).device(w.device());
      const double bound = 1.0 / std::sqrt(static_cast<double>(w.size(1)));
      Adapter a;
      a.A = torch::empty({lora.rank, w.size(1)}, opts).uniform_(-bound, bound).set_requires_grad(true);
      a.B = torch::zeros({w.size(0), lora.rank}, opts).set_requires_grad(true);
      a.state = lora_;
      module->adapter[name] = a;
    }
  };
  for (size_t i = 0; i < layers_->size(); ++i)
    for (const auto& child : layers_[i]->named_children()) {
      if (auto* attn = child.value()->as<AttentionImpl>()) add(attn, {"q_proj", "k_proj", "v_proj", "o_proj"});
      if (auto* mlp = child.value()->as<MlpImpl>()) add(mlp, {"gate_proj", "up_proj", "down_proj"});
    }
}

const LoraConfig& LlamaImpl::lora_config() const {
  if (!lora_) throw Error("the model has no LoRA adapters");
  return lora_->cfg;
}

const std::string& LlamaImpl::lora_base() const {
  if (!lora_) throw Error("the model has no LoRA adapters");
  return lora_->base;
}

std::vector<std::pair<std::string, Tensor>> LlamaImpl::lora_parameters() {
  std::vector<std::pair<std::string, Tensor>> out;
  for_each_adapter(layers_, [&](const std::string& name, Adapter& a, torch::nn::Linear&) {
    out.emplace_back(name + ".lora_A.weight", a.A);
    out.emplace_back(name + ".lora_B.weight", a.B);
  });
  return out;
}

void LlamaImpl::set_lora_enabled(bool on) {
  if (lora_) lora_->enabled = on;
}

void LlamaImpl::merge_lora() {
  if (!lora_) return;
  torch::NoGradGuard no_grad;
  const double scale = lora_->cfg.scale();
  for_each_adapter(layers_, [&](const std::string&, Adapter& a, torch::nn::Linear& base) {
    base->weight.copy_(base->weight.to(torch::kFloat32) + torch::mm(a.B, a.A).to(torch::kFloat32) * scale);
  });
  for (size_t i = 0; i < layers_->size(); ++i)
    for (const auto& child : layers_[i]->named_children()) {
      if (auto* attn = child.value()->as<AttentionImpl>()) attn->adapter.clear();
      if (auto* mlp = child.value()->as<MlpImpl>()) mlp->adapter.clear();
    }
  lora_.reset();
  for (auto& param : parameters()) param.set_requires_grad(true);
}

void LlamaImpl::to(torch::Device device, bool non_blocking) {
  torch::nn::Module::to(device, non_blocking);
  torch::NoGradGuard no_grad;
  for_each_adapter(layers_, [&](const std::string&, Adapter& a, torch::nn::Linear&) {
    if (a.A.device() == device) return;
    a.A = a.A.to(device).set_requires_grad(true);
    a.B = a.B.to(device).set_requires_grad(true);
  });
}

std::vector<std::pair<std::string, Tensor>> LlamaImpl::trainable_parameters() {
  return lora_ ? lora_parameters() : hf_parameters();
}

}  // namespace ethos
