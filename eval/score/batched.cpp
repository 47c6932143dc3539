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
std::vector<double> continuation_sums(Llama& model, const KVCache& cache, const Tensor& last, const Tensor& item_row,
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
    if (!slot.empty()) {
      const auto picked = hidden.reshape({R * W, hidden.size(2)}).index_select(0, torch::tensor(slot, torch::kInt64).to(dev));
      const auto logits = model->logits_of(picked);  // [N,V]
      const auto logp = logits.gather(1, torch::tensor(target, torch::kInt64).to(dev).unsqueeze(1)).squeeze(1) -
                        logits.logsumexp(1);  // [N]
      sums.index_add_(0, torch::tensor(owner, torch::kInt64).to(dev), logp.to(torch::kDouble));
    }
  }
  sums = sums.to(torch::kCPU).contiguous();
  return std::vector<double>(sums.data_ptr<double>(), sums.data_ptr<double>() + R);
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

// Greedy rationales for every row of `cache` (prompts in it, last [B,V] their final logits).
// Returns, per row, the logits after its closing <|/rationale|> ([B,V]); the cache ends up
// holding every row's prompt, <|rationale|>, rationale and <|/rationale|>, with holes after.
Tensor decode_rationales(Llama& model, const ChatTemplate& tmpl, KVCache& cache, int cap,
                         std::vector<std::vector<int>>& rationale) {
  const int64_t B = cache.rows();
  const auto dev = cache.k[0].device();
  const int open_id = tmpl.rationale_id(), close_id = tmpl.rationale_end_id(), end_id = tmpl.end_id();
  std::vector<int64_t> pending(B, open_id);  // the token each row is fed next
  std::vector<int> picks(B, 0);
  std::vector<uint8_t> closed(B, 0);
  rationale.assign(B, {});
  Tensor after_close;  // [B,V]
  for (int64_t open = B; open > 0;) {
    std::vector<int64_t> live(B);
    for (int64_t r = 0; r < B; ++r) live[r] = closed[r] ? 0 : 1;
    const auto shape = std::vector<int64_t>{B, 1};
    const auto logits = model->extend(torch::tensor(pending, torch::kInt64).view(shape).to(dev), cache,
                                      torch::tensor(live, torch::kInt64).view(shape).to(dev, torch::kBool)).select(1, 0);
    if (!after_close.defined()) after_close = torch::zeros_like(logits);
    const auto best = logits.argmax(-1).to(torch::kCPU).contiguous();
    const auto best_at = best.accessor<int64_t, 1>();
    std::vector<int64_t> just_closed;
    for (int64_t r = 0; r < B; ++r) {
      if (closed[r]) continue;
      if (pending[r] == close_id) {  // its <|/rationale|> is in the cache now
        closed[r] = 1;
        --open;
        just_closed.push_back(r);
        pending[r] = 0;
      } else if (picks[r] == cap) {
        pending[r] = close_id;  // at the cap: closed for the model
      } else {
        const int t = static_cast<int>(best_at[r]);
        ++picks[r];
        if (t == close_id || t == end_id) {
          pending[r] = close_id;
        } else {
          rationale[r].push_back(t);
          pending[r] = t;
        }
      }
    }
    if (!just_closed.empty()) {
      const auto rows = torch::tensor(just_closed, torch::kInt64).to(dev);
      after_close.index_copy_(0, rows, logits.index_select(0, rows));
    }
  }
  return after_close;
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
    std::vector<const std::vector<int>*> rows;
    for (size_t i : batch) rows.push_back(&prompts[i]);
    const LeftPadded in = left_pad_rows(rows);
    KVCache cache;
    const auto last = model->extend(in.tokens.to(dev), cache, in.real.to(dev), /*last_only=*/true).select(1, 0);  // [B,V]
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
      fill_scores(continuation_sums(model, cache, last, cand_index, cand_tokens), cand_tokens, cand_owner, out, false);
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
      std::vector<std::vector<int>> rationale;
      const auto after = decode_rationales(model, tmpl, cache, req.max_rationale_tokens, rationale);
      for (int64_t b = 0; b < B; ++b) out[batch[b]].rationale = rationale[b];
      if (!cand_tokens.empty())
        fill_scores(continuation_sums(model, cache, after, cand_index, cand_tokens), cand_tokens, cand_owner, out, true);
    }
  };
  const auto batches = plan_batches(prompts, candidates, req);
  const int workers = static_cast<int>(std::min<size_t>(
      batches.size(), static_cast<size_t>(req.workers > 0 ? req.workers : at::get_num_threads())));
  if (workers <= 1 || !dev.is_cpu()) {
    torch::NoGradGuard no_grad;
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
        torch::NoGradGuard no_grad;
        for (size_t i; (i = next++) < batches.size();) score_batch(batches[i]);
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
