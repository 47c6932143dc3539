// Attention for inference on the CPU (the KV-cache path: no gradients, float32; Llama::forward
// keeps compat::attention, so that no-grad passes match training's). compat::attention on
// LibTorch 1.13 runs one small gemm per (row, kv head) and writes the scores, the mask added to
// them and their softmax, [B,H,T,S] each: at small model sizes the calls and that memory traffic
// cost far more than the arithmetic (attention was more than half of a likelihood eval's time). Two
// kernels instead, parallel over rows and heads, computing in vectors of 8 floats (AVX2+FMA
// where the CPU has them):
//   - few new queries per row (decoding, T <= 4): each query reads its row's keys and values
//     in place;
//   - more (a prompt's forward, a candidate continuing a cache): one (row, kv head) at a time,
//     its keys and values copied once into scratch laid out for vector loads, and each query
//     touching only the keys between its first and last visible one. Nothing of size [T,S] is
//     written.
// The softmax's exponential is a polynomial (relative error ~1e-7, as std::exp's in float32);
// results equal compat::attention's within 1e-5 (tests/test_generate.cpp).
// Shapes as compat::attention: q [B,H,T,D], k, v [B,K,S,D] (any strides with unit stride on
// D), mask [B,1,T,S] additive (0 or -inf; broadcast strides allowed). Returns [B,H,T,D].
#pragma once
#include <torch/torch.h>

namespace ethos {

// True when attention_cpu handles the call: CPU float32 tensors, no gradient recording.
bool attention_cpu_applies(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& mask);

torch::Tensor attention_cpu(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                            const torch::Tensor& mask);

}  // namespace ethos
