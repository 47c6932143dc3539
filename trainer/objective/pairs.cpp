#include "trainer/objective/pairs.h"

#include <algorithm>

#include "datasets/base/util.h"
#include "trainer/objective/batch.h"

namespace ethos {

PairRows pair_rows(const std::vector<PairExample>& pool, const std::vector<size_t>& index,
                   const torch::Device& device) {
  const int64_t N = static_cast<int64_t>(index.size()), R = 2 * N;
  size_t longest = 2;
  for (size_t i : index)
    longest = std::max(longest, pool[i].prompt.size() + std::max(pool[i].chosen.size(), pool[i].rejected.size()));
  const int64_t T = static_cast<int64_t>(longest) - 1;
  std::vector<int64_t> inputs(R * T, 0), targets(R * T, 0), positions(R * T, 0), doc_ids(R * T, -1);
  std::vector<float> logp_w(R * T, 0), nll_w(R * T, 0), nc(N), nr(N);
  int64_t real = 0;
  auto fill = [&](int64_t row, const std::vector<int>& prompt, const std::vector<int>& answer,
                  const std::vector<float>* weights) {
    std::vector<int> seq(prompt);
    seq.insert(seq.end(), answer.begin(), answer.end());
    for (size_t k = 0; k + 1 < seq.size(); ++k) {
      const int64_t at = row * T + static_cast<int64_t>(k);
      inputs[at] = seq[k];
      targets[at] = seq[k + 1];
      positions[at] = static_cast<int64_t>(k);
      doc_ids[at] = 0;
      if (k + 1 >= prompt.size()) {  // target k+1 is an answer token
        const size_t a = k + 1 - prompt.size();
        logp_w[at] = 1.0f;
        if (weights) nll_w[at] = (*weights)[a];
      }
    }
    real += static_cast<int64_t>(seq.size()) - 1;
  };
  for (int64_t n = 0; n < N; ++n) {
    const PairExample& p = pool[index[n]];
    fill(n, p.prompt, p.chosen, &p.chosen_weights);
    fill(N + n, p.prompt, p.rejected, nullptr);
    nc[n] = static_cast<float>(p.chosen.size());
    nr[n] = static_cast<float>(p.rejected.size());
  }
  auto longs = [&](std::vector<int64_t>& v) { return torch::tensor(v, torch::kInt64).view({R, T}).to(device); };
  auto floats = [&](std::vector<float>& v, std::vector<int64_t> shape) {
    return torch::tensor(v, torch::kFloat32).view(shape).to(device);
  };
  PairRows rows;
  rows.inputs = longs(inputs);
  rows.targets = longs(targets);
  rows.positions = longs(positions);
  rows.doc_ids = longs(doc_ids);
  rows.logp_weights = floats(logp_w, {R, T});
  rows.nll_weights = floats(nll_w, {R, T});
  rows.chosen_tokens = floats(nc, {N});
  rows.rejected_tokens = floats(nr, {N});
  rows.index = index;
  rows.real_tokens = real;
  return rows;
}

PairLogprobs pair_logprobs(Llama& model, const PairRows& rows) {
  const int64_t N = rows.chosen_tokens.size(0);
  auto logits = model->forward(rows.inputs, rows.positions, rows.doc_ids);  // [2N,T,V]
  auto logp = token_logprobs(logits, rows.targets);                          // [2N,T]
  auto seq = (logp * rows.logp_weights).sum(1);  // [2N]
  PairLogprobs out;
  out.chosen = seq.slice(0, 0, N);
  out.rejected = seq.slice(0, N, 2 * N);
  auto w = rows.nll_weights.slice(0, 0, N);
  out.chosen_nll = -(logp.slice(0, 0, N) * w).sum(1) / w.sum(1).clamp_min(1e-12);
  return out;
}

}  // namespace ethos
