// The one place that knows which LibTorch we compile against. Debian's libtorch-dev is
// 1.13 (CPU); GPU users build against an official LibTorch 2.x. Everything
// version-specific goes through here.
#pragma once
#include <torch/torch.h>
#include <torch/version.h>

#include <cstdlib>

#define ETHOS_TORCH_2 (TORCH_VERSION_MAJOR >= 2)
// 2.4 renamed the CUDA autocast switches to device-generic ones.
#define ETHOS_TORCH_2_4 (TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4))

#if ETHOS_TORCH_2
#include <ATen/autocast_mode.h>
#endif

namespace ethos::compat {

// Causal/document attention with grouped-query heads.
//   q [B,H,T,D]: the last T of S positions; k, v [B,K,S,D] with H a multiple of K (query
//   head h reads kv head h/(H/K), as Hugging Face's repeat_kv); mask [B,1,T,S] additive
//   (0 = attend, -inf = blocked) and causal. Returns [B,H,T,D].
// 2.x: fused scaled_dot_product_attention on repeated k/v.
// 1.13 (matmuls): (a) the R = H/K query heads of a kv head form one [R*t, D] block, so k
// and v are never copied; (b) 1/sqrt(D) scales q, T/D times smaller than the scores;
// (c) queries go in blocks of 64 that only score the keys they can see (causal), which
// skips about half of the [T,S] scores and their softmax when T is large. (The KV-cache path
// without gradients, float32 on the CPU, goes to trainer/model/attention_cpu.h instead.)
inline torch::Tensor attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                               const torch::Tensor& mask) {
  const int64_t B = q.size(0), H = q.size(1), T = q.size(2), D = q.size(3), K = k.size(1), S = k.size(2);
  const int64_t R = H / K;
#if ETHOS_TORCH_2
  (void)B, (void)T, (void)D, (void)S;
  const auto kr = R == 1 ? k : k.repeat_interleave(R, /*dim=*/1);
  const auto vr = R == 1 ? v : v.repeat_interleave(R, /*dim=*/1);
  return at::scaled_dot_product_attention(q, kr, vr, mask);
#else
  constexpr int64_t kBlock = 64;
  const auto q5 = (q * (1.0 / std::sqrt(static_cast<double>(D)))).reshape({B, K, R, T, D});
  std::vector<torch::Tensor> out;
  for (int64_t t0 = 0; t0 < T; t0 += kBlock) {
    const int64_t t = std::min(kBlock, T - t0), keys = S - T + t0 + t;  // keys visible to this block
    const auto qb = q5.narrow(3, t0, t).reshape({B, K, R * t, D});
    auto scores = torch::matmul(qb, k.narrow(2, 0, keys).transpose(-2, -1)).view({B, K, R, t, keys});
    scores.add_(mask.narrow(2, t0, t).narrow(3, 0, keys).unsqueeze(2));  // [B,1,1,t,keys]
    const auto probs = torch::softmax(scores, -1).view({B, K, R * t, keys});
    out.push_back(torch::matmul(probs, v.narrow(2, 0, keys)).view({B, K, R, t, D}));
  }
  return (out.size() == 1 ? out[0] : torch::cat(out, 3)).view({B, H, T, D});
#endif
}

// Deterministic CUDA kernels for the whole process (before the first cuBLAS call): cuBLAS with a
// fixed workspace, ATen's deterministic algorithms (an op without one is an error), cuDNN's
// deterministic choices, and attention by the math kernel (the fused attention kernels' backward
// passes accumulate in a varying order). On 1.13 there is no fused attention to turn off.
inline void use_deterministic_cuda() {
  setenv("CUBLAS_WORKSPACE_CONFIG", ":4096:8", /*overwrite=*/0);
  at::globalContext().setDeterministicAlgorithms(true, /*warn_only=*/false);
  at::globalContext().setDeterministicCuDNN(true);
  at::globalContext().setBenchmarkCuDNN(false);
#if ETHOS_TORCH_2
  at::globalContext().setSDPUseFlash(false);
  at::globalContext().setSDPUseMemEfficient(false);
#endif
#if ETHOS_TORCH_2_4
  at::globalContext().setSDPUseCuDNN(false);
#endif
}

// bf16 autocast: available on CUDA with LibTorch 2.x only. Returns whether it is on.
inline bool autocast_supported(const torch::Device& device) {
#if ETHOS_TORCH_2
  return device.is_cuda();
#else
  (void)device;
  return false;
#endif
}

// Whether bf16 autocast is on in this thread (always false on 1.13, which has none).
inline bool autocast_enabled() {
#if ETHOS_TORCH_2_4
  return at::autocast::is_autocast_enabled(at::kCUDA);
#elif ETHOS_TORCH_2
  return at::autocast::is_enabled();
#else
  return false;
#endif
}

// RAII guard that enables bf16 autocast for the scope when supported (CUDA, 2.x).
class AutocastBf16 {
 public:
  explicit AutocastBf16(bool on) : on_(on) {
#if ETHOS_TORCH_2
    if (on_) {
#if ETHOS_TORCH_2_4
      at::autocast::set_autocast_dtype(at::kCUDA, at::kBFloat16);
      at::autocast::set_autocast_enabled(at::kCUDA, true);
#else
      at::autocast::set_autocast_gpu_dtype(at::kBFloat16);
      at::autocast::set_enabled(true);
#endif
      at::autocast::increment_nesting();
    }
#endif
  }
  ~AutocastBf16() {
#if ETHOS_TORCH_2
    if (on_) {
      if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
#if ETHOS_TORCH_2_4
      at::autocast::set_autocast_enabled(at::kCUDA, false);
#else
      at::autocast::set_enabled(false);
#endif
    }
#endif
  }
  AutocastBf16(const AutocastBf16&) = delete;
  AutocastBf16& operator=(const AutocastBf16&) = delete;

 private:
  bool on_;
};

// Whether a fused AdamW kernel can be used (2.x on CUDA). ethos's AdamW (optim.cpp) uses
// its own update on CPU and calls at::_fused_adamw_ where this is true.
inline bool fused_adamw_supported(const torch::Device& device) {
#if ETHOS_TORCH_2
  return device.is_cuda();
#else
  (void)device;
  return false;
#endif
}

}  // namespace ethos::compat
