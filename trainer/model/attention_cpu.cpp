#include "trainer/model/attention_cpu.h"

#include <ATen/Parallel.h>

#include <cmath>
#include <limits>
#include <vector>

namespace ethos {

bool attention_cpu_applies(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& mask) {
  return !torch::GradMode::is_enabled() && q.device().is_cpu() && q.scalar_type() == torch::kFloat32 &&
         k.scalar_type() == torch::kFloat32 && mask.scalar_type() == torch::kFloat32;
}

namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

struct Args {
  const float *q, *k, *v, *mask;
  float* out;
  int64_t H, T, D, R, S, ks0, ks1, ks2, vs0, vs1, vs2, ms0, ms2, ms3;
  float scale;
};

// Vectors of 8 floats (GCC's vector extension: one AVX register where the CPU has it, two SSE
// registers otherwise). They are passed only between inlined functions of this file, so the
// warning that their calling convention depends on AVX does not apply.
#pragma GCC diagnostic ignored "-Wpsabi"
typedef float F8 __attribute__((vector_size(32)));
typedef int32_t I8 __attribute__((vector_size(32)));

__attribute__((always_inline)) inline F8 load8(const float* p) {
  F8 v;
  __builtin_memcpy(&v, p, sizeof v);
  return v;
}
__attribute__((always_inline)) inline void store8(float* p, F8 v) { __builtin_memcpy(p, &v, sizeof v); }
__attribute__((always_inline)) inline F8 splat8(float x) { return F8{} + x; }
__attribute__((always_inline)) inline F8 select8(I8 m, F8 yes, F8 no) {
  return reinterpret_cast<F8>((m & reinterpret_cast<I8>(yes)) | (~m & reinterpret_cast<I8>(no)));
}
typedef float F4 __attribute__((vector_size(16)));
__attribute__((always_inline)) inline float hsum8(F8 v) {  // by halves: 3 adds, not 7 in a chain
  F4 x = __builtin_shufflevector(v, v, 0, 1, 2, 3) + __builtin_shufflevector(v, v, 4, 5, 6, 7);
  x += __builtin_shufflevector(x, x, 2, 3, 0, 1);
  x += __builtin_shufflevector(x, x, 1, 0, 3, 2);
  return x[0];
}
__attribute__((always_inline)) inline float hmax8(F8 v) {
  float m = v[0];
  for (int i = 1; i < 8; ++i) m = std::max(m, v[i]);
  return m;
}

// e^x for lanes x <= 0: 2^n * e^r with n = round(x / ln 2) and |r| <= ln(2) / 2, e^r by the
// degree-7 polynomial of the Cephes library's expf (relative error ~1e-7, as std::exp's float).
// Lanes below -87 (e^x < 2^-125, beside the row's largest weight 1) give 0, -inf included.
__attribute__((always_inline)) inline F8 exp8_nonpositive(F8 x) {
  const I8 tiny = x < splat8(-87.0f);
  const F8 xc = select8(tiny, splat8(-87.0f), x);
  const I8 n = __builtin_convertvector(xc * 1.44269504088896341f - 0.5f, I8);  // x < 0: truncation is ceil
  const F8 nf = __builtin_convertvector(n, F8);
  const F8 r = xc - nf * 0.693359375f + nf * 2.12194440e-4f;  // x - n ln 2, ln 2 in two parts
  F8 p = splat8(1.9875691500e-4f);
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const F8 scale = reinterpret_cast<F8>((n + 127) << 23);  // 2^n, n >= -126
  return select8(tiny, F8{}, p * scale);
}

constexpr int64_t kLanes = 8;
constexpr int64_t kFewQueries = 4;  // up to this many new queries per row: the decoding kernel
int64_t round_up8(int64_t n) { return (n + kLanes - 1) / kLanes * kLanes; }

__attribute__((always_inline)) inline float dot(const float* x, const float* y, int64_t D) {
  float sum = 0;
  int64_t d = 0;
  if (D >= kLanes) {
    F8 acc{};
    for (; d + kLanes <= D; d += kLanes) acc += load8(x + d) * load8(y + d);
    sum = hsum8(acc);
  }
  for (; d < D; ++d) sum += x[d] * y[d];
  return sum;
}

// o[0..D) = scale * sum over s of w[s] * values[s], skipping w[s] = 0 (blocked slots): the
// output in registers (32, 16 or 8 floats at a time), not read and written back for each key.
template <int NV>
__attribute__((always_inline)) inline void weighted_sum_block(const float* w, float scale, const float* values, int64_t stride,
                                                              int64_t S, float* o) {
  F8 acc[NV] = {};
  for (int64_t s = 0; s < S; ++s) {
    if (w[s] == 0) continue;
    const F8 p = splat8(w[s]);
    const float* v = values + s * stride;
    for (int i = 0; i < NV; ++i) acc[i] += p * load8(v + i * kLanes);
  }
  for (int i = 0; i < NV; ++i) store8(o + i * kLanes, acc[i] * scale);
}
__attribute__((always_inline)) inline void weighted_sum(const float* w, float scale, const float* values, int64_t stride,
                                                        int64_t S, int64_t D, float* o) {
  int64_t d = 0;
  for (; d + 4 * kLanes <= D; d += 4 * kLanes) weighted_sum_block<4>(w, scale, values + d, stride, S, o + d);
  if (d + 2 * kLanes <= D) {
    weighted_sum_block<2>(w, scale, values + d, stride, S, o + d);
    d += 2 * kLanes;
  }
  if (d + kLanes <= D) {
    weighted_sum_block<1>(w, scale, values + d, stride, S, o + d);
    d += kLanes;
  }
  for (; d < D; ++d) {
    float acc = 0;
    for (int64_t s = 0; s < S; ++s) acc += w[s] * values[s * stride + d];
    o[d] = acc * scale;
  }
}

// ---- few queries per row (decoding) ---------------------------------------------------
// (row, head) pairs [begin, end); w: S rounded up to 8 floats of scratch.
__attribute__((always_inline)) inline void attend(const Args& a, int64_t begin, int64_t end, float* w) {
  const int64_t D = a.D, S = a.S, S8 = round_up8(S);
  for (int64_t bh = begin; bh < end; ++bh) {
    const int64_t b = bh / a.H, h = bh % a.H, kv = h / a.R;
    const float* keys = a.k + b * a.ks0 + kv * a.ks1;
    const float* values = a.v + b * a.vs0 + kv * a.vs1;
    for (int64_t t = 0; t < a.T; ++t) {
      const float* query = a.q + (bh * a.T + t) * D;
      const float* m = a.mask + b * a.ms0 + t * a.ms2;
      float top = kNegInf;
      for (int64_t s = S; s < S8; ++s) w[s] = kNegInf;  // the last block's lanes past S weigh 0
      for (int64_t s = 0; s < S; ++s) {
        const float add = m[s * a.ms3];
        w[s] = add == kNegInf ? kNegInf : dot(query, keys + s * a.ks2, D) * a.scale + add;
        top = std::max(top, w[s]);
      }
      float* o = a.out + (bh * a.T + t) * D;
      if (top == kNegInf) {  // nothing to attend to (never for ethos's masks)
        for (int64_t d = 0; d < D; ++d) o[d] = 0;
        continue;
      }
      F8 total{};
      for (int64_t j = 0; j < S8; j += kLanes) {
        const F8 e = exp8_nonpositive(load8(w + j) - top);
        store8(w + j, e);
        total += e;
      }
      weighted_sum(w, 1.0f / hsum8(total), values, a.vs2, S, D, o);
    }
  }
}

// ---- many queries per row (a prompt's forward, a candidate continuing its cache) ----------
// A task is one (row, kv head): its keys are copied once into scratch blocked as [S/8][D][8], so
// the scores of one query come 8 keys at a time in one register, and its values transposed to
// [D][S], so each output component is a dot product in the same lanes; a query only touches the
// blocks between its first and last visible key (its mask row).

// Tasks [begin, end) of (row, kv head); scratch: keys S8 * D, values D * S8, weights S8, mask S8
// floats, S8 = S rounded up to 8.
__attribute__((always_inline)) inline void attend_many(const Args& a, int64_t begin, int64_t end, float* scratch) {
  const int64_t D = a.D, S = a.S, S8 = round_up8(S), K = a.H / a.R;
  float *keys_b = scratch, *values_t = keys_b + S8 * D, *w = values_t + D * S8, *mrow = w + S8;
  for (int64_t task = begin; task < end; ++task) {
    const int64_t b = task / K, kv = task % K;
    const float* keys = a.k + b * a.ks0 + kv * a.ks1;
    const float* values = a.v + b * a.vs0 + kv * a.vs1;
    for (int64_t s = 0; s < S8; ++s)
      for (int64_t d = 0; d < D; ++d) {
        const bool in = s < S;
        keys_b[(s / kLanes) * D * kLanes + d * kLanes + s % kLanes] = in ? keys[s * a.ks2 + d] : 0.0f;
        values_t[d * S8 + s] = in ? values[s * a.vs2 + d] : 0.0f;
      }
    for (int64_t t = 0; t < a.T; ++t) {
      const float* m = a.mask + b * a.ms0 + t * a.ms2;
      int64_t lo = 0, hi = S;  // the visible keys lie in [lo, hi)
      while (lo < S && m[lo * a.ms3] == kNegInf) ++lo;
      while (hi > lo && m[(hi - 1) * a.ms3] == kNegInf) --hi;
      const int64_t j0 = lo / kLanes, j1 = (hi + kLanes - 1) / kLanes;
      for (int64_t s = j0 * kLanes; s < j1 * kLanes; ++s) mrow[s] = s >= lo && s < hi ? m[s * a.ms3] : kNegInf;
      for (int64_t h = kv * a.R; h < (kv + 1) * a.R; ++h) {
        const int64_t bh = b * a.H + h;
        const float* query = a.q + (bh * a.T + t) * D;
        float* o = a.out + (bh * a.T + t) * D;
        if (lo >= hi) {  // nothing to attend to (never for ethos's masks)
          for (int64_t d = 0; d < D; ++d) o[d] = 0;
          continue;
        }
        // raw scores, four blocks at a time (four independent sums in flight), then scaled
        // and masked
        int64_t j = j0;
        for (; j + 4 <= j1; j += 4) {
          const float* kj = keys_b + j * D * kLanes;
          F8 acc0{}, acc1{}, acc2{}, acc3{};
          for (int64_t d = 0; d < D; ++d) {
            const F8 qd = splat8(query[d]);
            acc0 += qd * load8(kj + d * kLanes);
            acc1 += qd * load8(kj + (D + d) * kLanes);
            acc2 += qd * load8(kj + (2 * D + d) * kLanes);
            acc3 += qd * load8(kj + (3 * D + d) * kLanes);
          }
          store8(w + j * kLanes, acc0);
          store8(w + (j + 1) * kLanes, acc1);
          store8(w + (j + 2) * kLanes, acc2);
          store8(w + (j + 3) * kLanes, acc3);
        }
        for (; j < j1; ++j) {
          const float* kj = keys_b + j * D * kLanes;
          F8 acc{};
          for (int64_t d = 0; d < D; ++d) acc += query[d] * load8(kj + d * kLanes);
          store8(w + j * kLanes, acc);
        }
        F8 top = splat8(kNegInf);
        for (j = j0; j < j1; ++j) {
          const F8 score = load8(w + j * kLanes) * a.scale + load8(mrow + j * kLanes);
          store8(w + j * kLanes, score);
          top = select8(score > top, score, top);
        }
        const float largest = hmax8(top);
        F8 total{};
        for (j = j0; j < j1; ++j) {
          const F8 e = exp8_nonpositive(load8(w + j * kLanes) - largest);
          store8(w + j * kLanes, e);
          total += e;
        }
        const float inv = 1.0f / hsum8(total);
        int64_t d = 0;  // output components four at a time
        for (; d + 4 <= D; d += 4) {
          const float* vd = values_t + d * S8;
          F8 acc0{}, acc1{}, acc2{}, acc3{};
          for (j = j0; j < j1; ++j) {
            const F8 p = load8(w + j * kLanes);
            acc0 += p * load8(vd + j * kLanes);
            acc1 += p * load8(vd + S8 + j * kLanes);
            acc2 += p * load8(vd + 2 * S8 + j * kLanes);
            acc3 += p * load8(vd + 3 * S8 + j * kLanes);
          }
          o[d] = hsum8(acc0) * inv;
          o[d + 1] = hsum8(acc1) * inv;
          o[d + 2] = hsum8(acc2) * inv;
          o[d + 3] = hsum8(acc3) * inv;
        }
        for (; d < D; ++d) {
          const float* vd = values_t + d * S8;
          F8 acc{};
          for (j = j0; j < j1; ++j) acc += load8(w + j * kLanes) * load8(vd + j * kLanes);
          o[d] = hsum8(acc) * inv;
        }
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
__attribute__((target("avx2,fma"))) void attend_many_avx2(const Args& a, int64_t begin, int64_t end, float* scratch) {
  attend_many(a, begin, end, scratch);
}
const bool kHasAvx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
void attend_any(const Args& a, int64_t begin, int64_t end, float* w) {
#if defined(__x86_64__) && defined(__GNUC__)
  if (kHasAvx2) return attend_avx2(a, begin, end, w);
#endif
  attend(a, begin, end, w);
}
void attend_many_any(const Args& a, int64_t begin, int64_t end, float* scratch) {
#if defined(__x86_64__) && defined(__GNUC__)
  if (kHasAvx2) return attend_many_avx2(a, begin, end, scratch);
#endif
  attend_many(a, begin, end, scratch);
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
  if (T <= kFewQueries) {
    at::parallel_for(0, B * H, 1, [&](int64_t begin, int64_t end) {
      std::vector<float> w(static_cast<size_t>(round_up8(S)));
      attend_any(a, begin, end, w.data());
    });
  } else {
    const int64_t S8 = round_up8(S);
    at::parallel_for(0, B * K, 1, [&](int64_t begin, int64_t end) {
      std::vector<float> scratch(static_cast<size_t>(2 * S8 * D + 2 * S8));
      attend_many_any(a, begin, end, scratch.data());
    });
  }
  return out;
}

}  // namespace ethos
