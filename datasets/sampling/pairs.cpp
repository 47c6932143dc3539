#include "datasets/sampling/pairs.h"

#include <algorithm>
#include <random>

#include "datasets/base/util.h"

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

// ---- order ------------------------------------------------------------------------------

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

}  // namespace ethos
