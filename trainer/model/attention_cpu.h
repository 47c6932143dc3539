// Attention for inference on the CPU when each row has few new queries (decoding one token,
// or a short continuation after a KV cache). LibTorch 1.13's CPU bmm runs one small gemm per
// (row, kv head), whose call costs far more than its arithmetic at these sizes, and a
// broadcast product materialises [B,K,R,T,S,D]; this kernel loops over (row, head) pairs in
// parallel and reads each key and value once per query, in float32.
// Shapes as compat::attention: q [B,H,T,D], k, v [B,K,S,D] (any strides with unit stride on
// D), mask [B,1,T,S] additive (0 or -inf; broadcast strides allowed). Returns [B,H,T,D].
#pragma once
#include <torch/torch.h>

namespace ethos {

// True when attention_cpu handles the call: CPU float32 tensors, no gradient recording, at
// most kMaxQueries new queries per row.
constexpr int64_t kAttentionCpuMaxQueries = 4;
bool attention_cpu_applies(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& mask);

torch::Tensor attention_cpu(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                            const torch::Tensor& mask);

}  // namespace ethos
