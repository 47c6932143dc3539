// The one place that knows which LibTorch we compile against. Debian's libtorch-dev is
// 1.13 (CPU); GPU users build against an official LibTorch 2.x. Everything
// version-specific goes through here.
#pragma once
#include <torch/torch.h>
#include <torch/version.h>

#define ETHOS_TORCH_2 (TORCH_VERSION_MAJOR >= 2)
// 2.4 renamed the CUDA autocast switches to device-generic ones.
#define ETHOS_TORCH_2_4 (TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4))

#if ETHOS_TORCH_2
#include <ATen/autocast_mode.h>
#endif

namespace ethos::compat {

// Attention over q,k,v [B,H,T,D] with an additive float mask [B,1,T,T] (0 = attend,
// -inf = blocked). 2.x: fused scaled_dot_product_attention; 1.13: softmax(QK^T/sqrt(D)+M)V.
inline torch::Tensor attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                               const torch::Tensor& mask) {
#if ETHOS_TORCH_2
  return at::scaled_dot_product_attention(q, k, v, mask);
#else
  auto scores = torch::matmul(q, k.transpose(-2, -1)) * (1.0 / std::sqrt(static_cast<double>(q.size(-1))));
  scores = scores + mask;
  return torch::matmul(torch::softmax(scores, -1), v);
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
