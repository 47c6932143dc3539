#include "eval/score/batched.h"

#include <torch/torch.h>

#include <algorithm>
#include <numeric>
#include <atomic>
#include <dlfcn.h>
#include <exception>
#include <mutex>
#include <thread>
#include <ATen/Parallel.h>

#include "datasets/base/util.h"
#include "trainer/model/generate.h"
#include "trainer/objective/batch.h"

namespace ethos {
namespace {

using torch::Tensor;

// Summed log-prob of each candidate row r continuing row item_row[r] of `cache`, whose first
// token is predicted by that row's logits in last [B,V]. cands: one token list per row. Only
// the slots that predict a candidate token go through the output projection (no padding, no
// last slot).
std::vector<double> continuation_sums_rows(Llama& model, const KVCache& cache, const Tensor& last, const Tensor& item_row,
                                           const std::vector<const std::vector<int>*>& cands) {
  const int64_t R = static_cast<int64_t>(cands.size());
  size_t C = 1;
  for (const auto* c : cands) C = std::max(C, c->size());
  const auto dev = last.device();
  // token 0 of each row, from its item's logits (normalised once per item)
  std::vector<int64_t> head(R);
  for (int64_t r = 0; r < R; ++r) head[r] = (*cands[r])[0];
  const auto head_t = torch::tensor(head, torch::kInt64).to(dev);
  auto sums = (last.index({item_row, head_t}) - last.logsumexp(1).index_select(0, item_row)).to(torch::kDouble);  // [R]
  if (C > 1) {
    // slots 0..C-2 of every row; slot j predicts token j+1 when the candidate has one
    const int64_t W = static_cast<int64_t>(C) - 1;
    std::vector<int64_t> tok(R * W, 0), real(R * W, 0), slot, target, owner;
    for (int64_t r = 0; r < R; ++r) {
      const auto& c = *cands[r];
      for (int64_t j = 0; j + 1 < static_cast<int64_t>(c.size()); ++j) {
        tok[r * W + j] = c[j];
        real[r * W + j] = 1;
        slot.push_back(r * W + j);
        target.push_back(c[j + 1]);
        owner.push_back(r);
      }
    }
    const auto shape = std::vector<int64_t>{R, W};
    KVCache rows = cache.select_rows(item_row);
    const auto hidden = model->extend_hidden(torch::tensor(tok, torch::kInt64).view(shape).to(dev), rows,
                                             torch::tensor(real, torch::kInt64).view(shape).to(dev, torch::kBool));  // [R,W,C]
    // The output projection in chunks of slots: [N,V] logits at once would be tens of MB per
    // batch (vocabulary 2048: 8 KB a slot), which glibc maps fresh and faults in again for every
    // batch on a worker thread; a chunk stays small and in cache. Numbers do not depend on it.
    const auto flat = hidden.reshape({R * W, hidden.size(2)});
    const int64_t N = static_cast<int64_t>(slot.size());
    const int64_t chunk = std::max<int64_t>(1, (int64_t{1} << 19) / std::max<int64_t>(1, model->config().vocab_size));
    const auto slot_t = torch::tensor(slot, torch::kInt64).to(dev), target_t = torch::tensor(target, torch::kInt64).to(dev);
    const auto owner_t = torch::tensor(owner, torch::kInt64).to(dev);
    for (int64_t n0 = 0; n0 < N; n0 += chunk) {
      const int64_t n = std::min(chunk, N - n0);
      const auto logits = model->logits_of(flat.index_select(0, slot_t.narrow(0, n0, n)));  // [n,V]
      const auto logp = logits.gather(1, target_t.narrow(0, n0, n).unsqueeze(1)).squeeze(1) - logits.logsumexp(1);  // [n]
      sums.index_add_(0, owner_t.narrow(0, n0, n), logp.to(torch::kDouble));
    }
  }
  sums = sums.to(torch::kCPU).contiguous();
  return std::vector<double>(sums.data_ptr<double>(), sums.data_ptr<double>() + R);
}

// continuation_sums_rows on chunks of candidate rows, each holding at most `slots` cache slots
// (its rows' copies of their item's cache plus the candidate tokens): memory per forward stays
// small whatever the batch's size.
std::vector<double> continuation_sums(Llama& model, const KVCache& cache, const Tensor& last, const Tensor& item_row,
                                      const std::vector<const std::vector<int>*>& cands, int64_t slots) {
  const int64_t R = static_cast<int64_t>(cands.size()), S = cache.length();
  std::vector<double> sums;
  for (int64_t r0 = 0; r0 < R;) {
    int64_t r1 = r0, C = 0;
    while (r1 < R) {
      const int64_t c2 = std::max(C, static_cast<int64_t>(cands[r1]->size()));
      if (r1 > r0 && (r1 + 1 - r0) * (S + c2) > slots) break;
      C = c2;
      ++r1;
    }
    const std::vector<const std::vector<int>*> part(cands.begin() + r0, cands.begin() + r1);
    const auto got = continuation_sums_rows(model, cache, last, item_row.narrow(0, r0, r1 - r0), part);
    sums.insert(sums.end(), got.begin(), got.end());
    r0 = r1;
  }
  return sums;
}

void fill_scores(const std::vector<double>& sums, const std::vector<const std::vector<int>*>& cands,
                 const std::vector<size_t>& owner, std::vector<ItemScores>& out, bool reason_first) {
  for (size_t r = 0; r < sums.size(); ++r) {
    ContinuationScore s;
    s.tokens = static_cast<int64_t>(cands[r]->size());
    s.sum = sums[r];
    s.mean = s.sum / static_cast<double>(s.tokens);
    (reason_first ? out[owner[r]].reason_first : out[owner[r]].direct).push_back(s);
  }
}

// Reason-first scoring of every row of `cache` (its prompts): greedy rationales for all rows
// together, starting with <|rationale|>; a row that writes <|/rationale|> or <|end|>, or reaches
// the cap, is closed with <|/rationale|> and its candidates (cands[b]) continue its cache after
// that. A closed row idles as a hole (a slot that nothing attends to and that takes no position)
// until half of the rows still decoding are closed: then the closed rows' candidates are scored
// and those rows leave, the open ones going on in a copy of their part of the cache. So a batch
// whose rows mostly stop early does not pay for the steps of its longest rationale on every row
// (in the tiny study, most rationales close within a few tokens and some run to the cap).
// Results do not depend on when rows leave (holes change no number). Returns per row its
// rationale (without markers) and one log-prob sum per candidate.
void reason_first_rows(Llama& model, const ChatTemplate& tmpl, KVCache cache, int cap,
                       const std::vector<std::vector<const std::vector<int>*>>& cands, int64_t cand_slots,
                       std::vector<std::vector<int>>& rationale, std::vector<std::vector<double>>& sums) {
  const int64_t B = cache.rows();
  const auto dev = cache.k[0].device();
  const int open_id = tmpl.rationale_id(), close_id = tmpl.rationale_end_id(), end_id = tmpl.end_id();
  rationale.assign(B, {});
  sums.assign(B, {});
  std::vector<int64_t> row(B);  // the batch row of each row of `cache`
  std::iota(row.begin(), row.end(), int64_t{0});
  std::vector<int64_t> pending(B, open_id);  // the token each row is fed next
  std::vector<int> picks(B, 0);
  std::vector<uint8_t> closed(B, 0);
  Tensor after_close;  // [n,V]: a closed row's logits after its <|/rationale|>
  int64_t n_closed = 0;
  while (!row.empty()) {
    const int64_t n = static_cast<int64_t>(row.size());
    std::vector<int64_t> live(n), open;  // open: the rows still decoding, whose logits are read
    for (int64_t i = 0; i < n; ++i) {
      live[i] = closed[i] ? 0 : 1;
      if (!closed[i]) open.push_back(i);
    }
    const auto shape = std::vector<int64_t>{n, 1};
    const auto hidden = model->extend_hidden(torch::tensor(pending, torch::kInt64).view(shape).to(dev), cache,
                                             torch::tensor(live, torch::kInt64).view(shape).to(dev, torch::kBool)).select(1, 0);
    // the output projection (most of a step's arithmetic at small sizes) only for open rows
    const bool all_open = static_cast<int64_t>(open.size()) == n;
    const auto logits = model->logits_of(all_open ? hidden : hidden.index_select(0, torch::tensor(open, torch::kInt64).to(dev)));
    if (!after_close.defined()) after_close = torch::zeros({n, logits.size(1)}, logits.options());
    const auto best = logits.argmax(-1).to(torch::kCPU).contiguous();
    const auto best_at = best.accessor<int64_t, 1>();
    std::vector<int64_t> just_closed, closed_at;  // rows of `cache`, and of `logits`
    for (int64_t j = 0; j < static_cast<int64_t>(open.size()); ++j) {
      const int64_t i = open[j];
      if (pending[i] == close_id) {  // its <|/rationale|> is in the cache now
        closed[i] = 1;
        ++n_closed;
        just_closed.push_back(i);
        closed_at.push_back(j);
        pending[i] = 0;
      } else if (picks[i] == cap) {
        pending[i] = close_id;  // at the cap: closed for the model
      } else {
        const int t = static_cast<int>(best_at[j]);
        ++picks[i];
        if (t == close_id || t == end_id) {
          pending[i] = close_id;
        } else {
          rationale[row[i]].push_back(t);
          pending[i] = t;
        }
      }
    }
    if (!just_closed.empty())
      after_close.index_copy_(0, torch::tensor(just_closed, torch::kInt64).to(dev),
                              logits.index_select(0, torch::tensor(closed_at, torch::kInt64).to(dev)));
    if (n_closed == 0 || (2 * n_closed < n && n_closed < n)) continue;
    // the closed rows' candidates, then the open rows on their own
    std::vector<int64_t> cand_row, owner, keep;
    std::vector<const std::vector<int>*> cand_tokens;
    for (int64_t i = 0; i < n; ++i) {
      if (!closed[i]) {
        keep.push_back(i);
        continue;
      }
      for (const auto* c : cands[row[i]]) {
        cand_row.push_back(i);
        owner.push_back(row[i]);
        cand_tokens.push_back(c);
      }
    }
    if (!cand_tokens.empty()) {
      const auto got = continuation_sums(model, cache, after_close, torch::tensor(cand_row, torch::kInt64).to(dev),
                                         cand_tokens, cand_slots);
      for (size_t r = 0; r < got.size(); ++r) sums[owner[r]].push_back(got[r]);
    }
    if (keep.empty()) break;
    cache = cache.select_rows(torch::tensor(keep, torch::kInt64).to(dev));
    after_close = Tensor();
    std::vector<int64_t> row2, pending2;
    std::vector<int> picks2;
    for (int64_t i : keep) {
      row2.push_back(row[i]);
      pending2.push_back(pending[i]);
      picks2.push_back(picks[i]);
    }
    row.swap(row2);
    pending.swap(pending2);
    picks.swap(picks2);
    closed.assign(row.size(), 0);
    n_closed = 0;
  }
}

// This thread's OpenMP thread count (LibTorch's intra-op pool is OpenMP's; looked up at run
// time, as this file is not built with -fopenmp): at::set_num_threads would also change the
// count every new thread starts from.
void set_omp_threads(int n) {
  static const auto set = reinterpret_cast<void (*)(int)>(dlsym(RTLD_DEFAULT, "omp_set_num_threads"));
  if (set) set(n);
}

// A pthreads OpenBLAS keeps its own thread count (LibTorch's does not reach it); while batches
// run side by side each gemm stays on its caller's thread. (The OpenMP OpenBLAS follows each
// thread's OpenMP count, but its setter also sets the calling thread's: that is put back.)
// Found at run time: another BLAS is left alone.
class OneBlasThread {
 public:
  OneBlasThread() {
    set_ = reinterpret_cast<void (*)(int)>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"));
    auto get = reinterpret_cast<int (*)()>(dlsym(RTLD_DEFAULT, "openblas_get_num_threads"));
    omp_before_ = at::get_num_threads();
    if (set_ && get) {
      before_ = get();
      set_(1);
    }
  }
  ~OneBlasThread() {
    if (set_ && before_ > 0) set_(before_);
    set_omp_threads(omp_before_);
  }
  OneBlasThread(const OneBlasThread&) = delete;
  OneBlasThread& operator=(const OneBlasThread&) = delete;

 private:
  void (*set_)(int) = nullptr;
  int before_ = 0, omp_before_ = 1;
};

}  // namespace

std::vector<std::vector<size_t>> plan_batches(const std::vector<std::vector<int>>& prompts,
                                              const std::vector<std::vector<std::vector<int>>>& candidates,
                                              const BatchedRequest& req) {
  std::vector<size_t> order(prompts.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return prompts[a].size() < prompts[b].size(); });
  const int64_t decoded = req.reason_first ? req.max_rationale_tokens + 2 : 0;
  const int64_t cand_passes = (req.direct ? 1 : 0) + (req.reason_first ? 1 : 0);
  std::vector<std::vector<size_t>> batches;
  int64_t P = 0, C = 0, rows = 0;
  for (size_t i : order) {
    int64_t c = 0;
    for (const auto& cand : candidates[i]) c = std::max<int64_t>(c, static_cast<int64_t>(cand.size()));
    const int64_t p2 = std::max<int64_t>(P, static_cast<int64_t>(prompts[i].size())), c2 = std::max(C, c);
    const int64_t rows2 = rows + static_cast<int64_t>(candidates[i].size());
    const int64_t n2 = batches.empty() ? 1 : static_cast<int64_t>(batches.back().size()) + 1;
    const int64_t cost = n2 * (p2 + decoded) + cand_passes * rows2 * c2 +
                         n2 * req.samples * (p2 + (req.samples ? req.sample.max_new_tokens : 0));
    if (batches.empty() || cost > req.batch_tokens) {
      batches.push_back({i});
      P = static_cast<int64_t>(prompts[i].size());
      C = c;
      rows = static_cast<int64_t>(candidates[i].size());
    } else {
      batches.back().push_back(i);
      P = p2;
      C = c2;
      rows = rows2;
    }
  }
  return batches;
}

std::vector<ItemScores> score_batched(Llama& model, const ChatTemplate& tmpl, const std::vector<std::vector<int>>& prompts,
                                      const std::vector<std::vector<std::vector<int>>>& candidates,
                                      const BatchedRequest& req) {
  if (prompts.size() != candidates.size())
    throw Error("score_batched: " + std::to_string(prompts.size()) + " prompts but " +
                std::to_string(candidates.size()) + " candidate lists");
  if (req.reason_first) require_rationale_markers(tmpl);
  const int64_t max_pos = model->config().max_position_embeddings;
  const int64_t decoded = req.reason_first ? req.max_rationale_tokens + 2 : 0;
  for (size_t i = 0; i < prompts.size(); ++i) {
    if (prompts[i].empty()) throw Error("score_batched: prompt " + std::to_string(i) + " is empty");
    for (const auto& c : candidates[i]) {
      if (c.empty()) throw Error("score_batched: item " + std::to_string(i) + " has an empty candidate");
      const int64_t n = static_cast<int64_t>(prompts[i].size() + c.size()) + decoded;
      if (max_pos > 0 && n > max_pos)
        throw Error("an eval item with its " + std::string(decoded ? "rationale and " : "") + "candidate is up to " +
                    std::to_string(n) + " tokens, beyond the model's max_position_embeddings (" +
                    std::to_string(max_pos) + "): shorten the suite's prompts");
    }
  }
  const auto dev = model->parameters().front().device();
  std::vector<ItemScores> out(prompts.size());
  // One batch; items of different batches are distinct, so batches may run on any thread.
  auto score_batch = [&](const std::vector<size_t>& batch) {
    const int64_t B = static_cast<int64_t>(batch.size());
    // the prompts in chunks of rows of at most req.chunk_tokens slots (the batch is in order of
    // length), stacked into one cache
    std::vector<KVCache> parts;
    std::vector<Tensor> lasts;
    for (int64_t b0 = 0; b0 < B;) {
      int64_t b1 = b0 + 1;
      while (b1 < B && (b1 + 1 - b0) * static_cast<int64_t>(prompts[batch[b1]].size()) <= req.chunk_tokens) ++b1;
      std::vector<const std::vector<int>*> rows;
      for (int64_t b = b0; b < b1; ++b) rows.push_back(&prompts[batch[b]]);
      const LeftPadded in = left_pad_rows(rows);
      parts.emplace_back();
      lasts.push_back(model->extend(in.tokens.to(dev), parts.back(), in.real.to(dev), /*last_only=*/true).select(1, 0));
      b0 = b1;
    }
    KVCache cache = KVCache::stack_rows(parts);
    parts.clear();
    const auto last = lasts.size() == 1 ? lasts[0] : torch::cat(lasts, 0);  // [B,V]
    // candidate rows of the batch: (item, candidate), in item order
    std::vector<int64_t> cand_row;
    std::vector<size_t> cand_owner;
    std::vector<const std::vector<int>*> cand_tokens;
    for (int64_t b = 0; b < B; ++b)
      for (const auto& c : candidates[batch[b]]) {
        cand_row.push_back(b);
        cand_owner.push_back(batch[b]);
        cand_tokens.push_back(&c);
      }
    const auto cand_index = torch::tensor(cand_row, torch::kInt64).to(dev);
    if (req.direct && !cand_tokens.empty())
      fill_scores(continuation_sums(model, cache, last, cand_index, cand_tokens, req.cand_slots), cand_tokens, cand_owner, out, false);
    if (req.samples > 0) {
      std::vector<int64_t> sample_row;
      std::vector<uint64_t> seeds;
      for (int64_t b = 0; b < B; ++b)
        for (int s = 0; s < req.samples; ++s) {
          sample_row.push_back(b);
          seeds.push_back(sample_seed(req.base_seed, batch[b], s));
        }
      const auto index = torch::tensor(sample_row, torch::kInt64).to(dev);
      KVCache copy = cache.select_rows(index);
      const auto generated = continue_batch(model, copy, last.index_select(0, index), req.sample, seeds);
      for (size_t r = 0; r < generated.size(); ++r) out[batch[sample_row[r]]].samples.push_back(generated[r]);
    }
    if (req.reason_first) {
      std::vector<std::vector<const std::vector<int>*>> row_cands(B);
      for (int64_t b = 0; b < B; ++b)
        for (const auto& c : candidates[batch[b]]) row_cands[b].push_back(&c);
      std::vector<std::vector<int>> rationale;
      std::vector<std::vector<double>> sums;
      reason_first_rows(model, tmpl, std::move(cache), req.max_rationale_tokens, row_cands, req.cand_slots, rationale, sums);
      std::vector<double> flat;
      for (int64_t b = 0; b < B; ++b) {
        out[batch[b]].rationale = rationale[b];
        flat.insert(flat.end(), sums[b].begin(), sums[b].end());
      }
      fill_scores(flat, cand_tokens, cand_owner, out, true);
    }
  };
  const auto batches = plan_batches(prompts, candidates, req);
  const int workers = static_cast<int>(std::min<size_t>(
      batches.size(), static_cast<size_t>(req.workers > 0 ? req.workers : at::get_num_threads())));
  if (workers <= 1 || !dev.is_cpu()) {
    c10::InferenceMode inference;
    for (const auto& batch : batches) score_batch(batch);
    return out;
  }
  OneBlasThread blas;
  std::atomic<size_t> next{0};
  std::exception_ptr failure;
  std::mutex failure_mutex;
  std::vector<std::thread> pool;
  for (int w = 0; w < workers; ++w)
    pool.emplace_back([&] {
      try {
        at::internal::lazy_init_num_threads();  // then this thread's own count: one
        set_omp_threads(1);
        c10::InferenceMode inference;
        // the batches of longest prompts first: the last to finish is a short one
        for (size_t i; (i = next++) < batches.size();) score_batch(batches[batches.size() - 1 - i]);
      } catch (...) {
        std::lock_guard<std::mutex> lock(failure_mutex);
        if (!failure) failure = std::current_exception();
        next = batches.size();
      }
    });
  for (auto& t : pool) t.join();
  if (failure) std::rethrow_exception(failure);
  return out;
}

}  // namespace ethos
