#include "trainer/objective/pairs.h"

#include <algorithm>
#include <random>

#include "datasets/base/util.h"
#include "trainer/objective/batch.h"

namespace ethos {

std::vector<PairExample> tokenize_pairs(const std::vector<Record>& records, const ChatTemplate& tmpl,
                                        const TemplateOptions& opt, int seq_len) {
  std::vector<PairExample> out;
  out.reserve(records.size());
  for (const Record& r : records) {
    ChatTemplate::Pair p = tmpl.render_pair(r, opt);
    // The reader refuses empty and identical strings; these catch what only tokenization shows.
    if (p.chosen.size() < 2 || p.rejected.size() < 2)
      throw Error(r.where + ": the " + std::string(p.chosen.size() < 2 ? "chosen" : "rejected") +
                  " answer tokenizes to nothing: give it some text, or drop the pair");
    if (p.chosen == p.rejected)
      throw Error(r.where + ": chosen and rejected tokenize identically (they differ only in ways the tokenizer "
                  "normalises away, e.g. whitespace): the pair teaches nothing; fix or drop it");
    const size_t longest = p.prompt.size() + std::max(p.chosen.size(), p.rejected.size());
    if (longest > static_cast<size_t>(seq_len) + 1)
      throw Error(r.where + ": this pair is " + std::to_string(longest) + " tokens (prompt " +
                  std::to_string(p.prompt.size()) + " + longest answer), more than data.seq_len + 1 = " +
                  std::to_string(seq_len + 1) + ". Raise data.seq_len to at least " + std::to_string(longest - 1) +
                  " or shorten the prompt; pairs are never truncated (that would cut the answers).");
    out.push_back({std::move(p.prompt), std::move(p.chosen), std::move(p.rejected), std::move(p.chosen_weights),
                   r.where, r.tags});
  }
  return out;
}

std::string pairs_hash(const std::vector<PairExample>& pairs) {
  Hasher h;
  auto add = [&](const auto& v) {
    const uint64_t n = v.size();
    h.update(&n, sizeof n);
    if (!v.empty()) h.update(v.data(), v.size() * sizeof(v[0]));
  };
  for (const auto& p : pairs) {
    add(p.prompt);
    add(p.chosen);
    add(p.rejected);
    add(p.chosen_weights);
  }
  return h.hex();
}

// ---- order -------------------------------------------------------------------------------

PairOrder::PairOrder(size_t n, uint64_t seed) : n_(n), seed_(seed) {
  if (n == 0) throw Error("no preference pairs to train on: the data sources are empty");
  shuffle();
}

void PairOrder::shuffle() {
  order_.resize(n_);
  for (size_t i = 0; i < n_; ++i) order_[i] = i;
  std::mt19937_64 rng(seed_ * 0x9E3779B97F4A7C15ULL + epoch_);
  for (size_t i = n_ - 1; i > 0; --i) std::swap(order_[i], order_[rng() % (i + 1)]);  // Fisher-Yates
}

std::vector<size_t> PairOrder::next(size_t count) {
  std::vector<size_t> out;
  out.reserve(count);
  while (out.size() < count) {
    if (index_ == n_) {
      ++epoch_;
      index_ = 0;
      shuffle();
    }
    out.push_back(order_[index_++]);
  }
  return out;
}

nlohmann::json PairOrder::cursor() const { return {{"epoch", epoch_}, {"index", index_}}; }

void PairOrder::restore(const nlohmann::json& c) {
  if (!c.is_object() || !c.contains("epoch") || !c.contains("index") || !c["epoch"].is_number_unsigned() ||
      !c["index"].is_number_unsigned() || c["index"].get<uint64_t>() > n_)
    throw Error("the checkpoint's data cursor " + c.dump() + " does not fit these " + std::to_string(n_) +
                " preference pairs (expected {\"epoch\": E, \"index\": I} with I <= pairs): was the data changed?");
  epoch_ = c["epoch"].get<uint64_t>();
  index_ = c["index"].get<uint64_t>();
  shuffle();
}

// ---- rows --------------------------------------------------------------------------------

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
