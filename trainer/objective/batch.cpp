#include "trainer/objective/batch.h"

namespace ethos {

BatchTensors to_tensors(const PackedBatch& b, const torch::Device& device) {
  auto as_long = [&](const std::vector<int32_t>& v) {
    return torch::tensor(torch::ArrayRef<int32_t>(v), torch::kInt32).view({b.rows, b.seq_len}).to(device, torch::kInt64);
  };
  BatchTensors t;
  t.inputs = as_long(b.inputs);
  t.targets = as_long(b.targets);
  t.positions = as_long(b.positions);
  t.doc_ids = as_long(b.doc_ids);
  t.weights = torch::tensor(torch::ArrayRef<float>(b.weights), torch::kFloat32).view({b.rows, b.seq_len}).to(device);
  t.real_tokens = (t.doc_ids >= 0).sum().item<int64_t>();
  return t;
}

torch::Tensor token_logprobs(const torch::Tensor& logits, const torch::Tensor& targets) {
  return torch::log_softmax(logits.to(torch::kFloat32), -1).gather(-1, targets.unsqueeze(-1)).squeeze(-1);
}

torch::Tensor weighted_nll_sum(const torch::Tensor& logits, const torch::Tensor& targets, const torch::Tensor& weights) {
  return -(token_logprobs(logits, targets) * weights).sum();
}

}  // namespace ethos
