#include "trainer/model/attention_cpu.h"

#include <ATen/Parallel.h>

#include <cmath>
#include <limits>
#include <vector>

namespace ethos {

bool attention_cpu_applies(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& mask) {
  return !torch::GradMode::is_enabled() && q.device().is_cpu() && q.scalar_type() == torch::kFloat32 &&
         k.scalar_type() == torch::kFloat32 && mask.scalar_type() == torch::kFloat32 && q.size(2) <= kAttentionCpuMaxQueries;
}

namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

struct Args {
  const float *q, *k, *v, *mask;
  float* out;
  int64_t H, T, D, R, S, ks0, ks1, ks2, vs0, vs1, vs2, ms0, ms2, ms3;
  float scale;
};

// (row, head) pairs [begin, end); w: S floats of scratch.
__attribute__((always_inline)) inline void attend(const Args& a, int64_t begin, int64_t end, float* w) {
  const int64_t D = a.D, S = a.S;
  for (int64_t bh = begin; bh < end; ++bh) {
    const int64_t b = bh / a.H, h = bh % a.H, kv = h / a.R;
    const float* keys = a.k + b * a.ks0 + kv * a.ks1;
    const float* values = a.v + b * a.vs0 + kv * a.vs1;
    for (int64_t t = 0; t < a.T; ++t) {
      const float* query = a.q + (bh * a.T + t) * D;
      const float* m = a.mask + b * a.ms0 + t * a.ms2;
      float top = kNegInf;
      for (int64_t s = 0; s < S; ++s) {
        const float add = m[s * a.ms3];
        if (add == kNegInf) {
          w[s] = kNegInf;
          continue;
        }
        const float* key = keys + s * a.ks2;
        float dot = 0;
        for (int64_t d = 0; d < D; ++d) dot += query[d] * key[d];
        w[s] = dot * a.scale + add;
        top = std::max(top, w[s]);
      }
      float* o = a.out + (bh * a.T + t) * D;
      for (int64_t d = 0; d < D; ++d) o[d] = 0;
      if (top == kNegInf) continue;  // nothing to attend to (never for ethos's masks)
      float total = 0;
      for (int64_t s = 0; s < S; ++s) {
        w[s] = w[s] == kNegInf ? 0.0f : std::exp(w[s] - top);
        total += w[s];
      }
      const float inv = 1.0f / total;
      for (int64_t s = 0; s < S; ++s) {
        if (w[s] == 0) continue;
        const float p = w[s] * inv;
        const float* value = values + s * a.vs2;
        for (int64_t d = 0; d < D; ++d) o[d] += p * value[d];
      }
    }
  }
}

// The same loops compiled twice: for AVX2+FMA (chosen at run time where the CPU has them) and
// for the baseline x86-64 the rest of the build targets.
#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target("avx2,fma"))) void attend_avx2(const Args& a, int64_t begin, int64_t end, float* w) {
  attend(a, begin, end, w);
}
const bool kHasAvx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
void attend_any(const Args& a, int64_t begin, int64_t end, float* w) {
#if defined(__x86_64__) && defined(__GNUC__)
  if (kHasAvx2) return attend_avx2(a, begin, end, w);
#endif
  attend(a, begin, end, w);
}

}  // namespace

torch::Tensor attention_cpu(const torch::Tensor& q_in, const torch::Tensor& k_in, const torch::Tensor& v_in,
                            const torch::Tensor& mask) {
  const auto q = q_in.contiguous();
  const auto k = k_in.stride(3) == 1 ? k_in : k_in.contiguous();
  const auto v = v_in.stride(3) == 1 ? v_in : v_in.contiguous();
  const int64_t B = q.size(0), H = q.size(1), T = q.size(2), D = q.size(3), K = k.size(1), S = k.size(2);
  auto out = torch::empty({B, H, T, D}, q.options());
  const Args a{q.data_ptr<float>(), k.data_ptr<float>(), v.data_ptr<float>(), mask.data_ptr<float>(), out.data_ptr<float>(),
               H, T, D, H / K, S, k.stride(0), k.stride(1), k.stride(2), v.stride(0), v.stride(1), v.stride(2),
               mask.stride(0), mask.stride(2), mask.stride(3), 1.0f / std::sqrt(static_cast<float>(D))};
  at::parallel_for(0, B * H, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> w(static_cast<size_t>(S));
    attend_any(a, begin, end, w.data());
  });
  return out;
}

}  // namespace ethos
