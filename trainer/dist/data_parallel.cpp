// Bucketed gradient sync overlapped with backward, and ZeRO-1 (see data_parallel.h).
#include "trainer/dist/data_parallel.h"

#include <torch/csrc/autograd/utils/lambda_post_hook.h>
#include <torch/csrc/autograd/variable.h>

#include <chrono>
#include <cmath>

#include "datasets/base/util.h"

namespace ethos {

DataParallel::DataParallel(Comm& comm, Named params, std::vector<bool> decay, AdamWOptions adam,
                           DataParallelOptions opt)
    : comm_(comm), params_(std::move(params)), decay_(std::move(decay)), alive_(std::make_shared<bool>(true)) {
  if (!(opt.bucket_mb > 0)) throw Error("dist.bucket_mb must be > 0 (got " + std::to_string(opt.bucket_mb) + ")");
  const int W = comm_.world();
  zero1_ = opt.zero1 && W > 1;
  if (W == 1) {  // one process: plain AdamW, no buckets, no hooks
    adam_ = std::make_unique<AdamW>(params_, decay_, adam);
    return;
  }
  // Buckets over the parameters in reverse order.
  const int64_t cap = std::max<int64_t>(1, static_cast<int64_t>(opt.bucket_mb * 1024 * 1024 / 4));  // fp32 elements
  where_.resize(params_.size());
  for (size_t k = params_.size(); k-- > 0;) {
    const torch::Tensor& p = params_[k].second;
    if (!p.is_contiguous()) throw Error("data parallel: parameter " + params_[k].first + " is not contiguous");
    if (p.scalar_type() != torch::kFloat)
      throw Error("data parallel: parameter " + params_[k].first + " is " + std::string(c10::toString(p.scalar_type())) +
                  "; parameters are kept in fp32 (bf16 runs autocast)");
    if (buckets_.empty() || buckets_.back().numel >= cap) buckets_.emplace_back();
    Bucket& b = buckets_.back();
    where_[k] = {buckets_.size() - 1, b.slots.size()};
    b.slots.push_back({k, b.numel, p.numel()});
    b.numel += p.numel();
  }
  const auto opts = params_.front().second.options();
  for (auto& b : buckets_) {
    b.padded = (b.numel + W - 1) / W * W;
    b.grad = torch::zeros({b.padded}, opts);
    if (zero1_) {
      b.grad_shard = torch::zeros({b.padded / W}, opts);
      b.param_shard = torch::zeros({b.padded / W}, opts);
      b.param_full = torch::zeros({b.padded}, opts);
    }
  }
  param_ready_.assign(params_.size(), false);

  if (!zero1_) {
    adam_ = std::make_unique<AdamW>(params_, decay_, adam);
  } else {
    // This rank's part [r*S, (r+1)*S) of each bucket, cut into per-parameter pieces.
    std::vector<bool> piece_decay;
    for (size_t bi = 0; bi < buckets_.size(); ++bi) {
      const Bucket& b = buckets_[bi];
      const int64_t S = b.padded / W, lo = comm_.rank() * S, hi = lo + S;
      for (const Slot& s : b.slots) {
        const int64_t a = std::max(lo, s.offset), e = std::min(hi, s.offset + s.numel);
        if (a >= e) continue;
        const auto& [name, p] = params_[s.param];
        torch::Tensor view = p.detach().view(-1).narrow(0, a - s.offset, e - a);  // shares p's storage
        pieces_.emplace_back(name + "@" + std::to_string(a - s.offset), view);
        piece_at_.emplace_back(bi, a - lo);
        piece_decay.push_back(decay_[s.param]);
      }
    }
    adam_ = std::make_unique<AdamW>(pieces_, piece_decay, adam);
  }

  // A hook after each parameter's gradient accumulation (AccumulateGrad's post hook). The
  // accumulators are kept alive here, or autograd would make new ones without the hook (held
  // through a copy of the handle: a std::shared_ptr in older LibTorch, a c10::intrusive_ptr in
  // newer ones).
  for (size_t k = 0; k < params_.size(); ++k) {
    auto acc = torch::autograd::impl::grad_accumulator(params_[k].second);
    if (!acc) throw Error("data parallel: parameter " + params_[k].first + " does not require grad");
    std::weak_ptr<bool> alive = alive_;
    acc->add_post_hook(std::make_unique<torch::autograd::utils::LambdaPostHook>(
        [this, k, alive](const torch::autograd::variable_list& outputs, const torch::autograd::variable_list&) {
          if (alive.lock()) on_grad_ready(k);
          return outputs;
        }));
    accumulators_.push_back(std::make_shared<decltype(acc)>(acc));
  }
}

DataParallel::~DataParallel() { *alive_ = false; }

void DataParallel::broadcast_parameters() {
  if (comm_.world() == 1) return;
  torch::NoGradGuard no_grad;
  for (auto& b : buckets_) {  // one broadcast per bucket, through its gradient buffer
    for (const Slot& s : b.slots) b.grad.narrow(0, s.offset, s.numel).copy_(params_[s.param].second.view(-1));
    comm_.broadcast(b.grad);
    for (const Slot& s : b.slots) params_[s.param].second.view(-1).copy_(b.grad.narrow(0, s.offset, s.numel));
  }
}

void DataParallel::arm(bool sync) {
  if (comm_.world() == 1) return;
  armed_ = sync;
  if (!sync) return;
  std::fill(param_ready_.begin(), param_ready_.end(), false);
  for (auto& b : buckets_) {
    b.ready = 0;
    b.launched = false;
  }
  next_launch_ = 0;
  wait_s_ = 0;
}

void DataParallel::on_grad_ready(size_t k) {
  if (!armed_ || param_ready_[k]) return;
  param_ready_[k] = true;
  const auto [bi, si] = where_[k];
  Bucket& b = buckets_[bi];
  const Slot& s = b.slots[si];
  torch::NoGradGuard no_grad;
  const torch::Tensor& g = params_[k].second.grad();
  if (g.defined()) b.grad.narrow(0, s.offset, s.numel).copy_(g.reshape(-1));
  else b.grad.narrow(0, s.offset, s.numel).zero_();
  if (++b.ready == b.slots.size()) launch_ready();
}

// Launches complete buckets in bucket order, so every rank issues the same collectives in the
// same order whatever order autograd finished them in.
void DataParallel::launch_ready() {
  while (next_launch_ < buckets_.size() && buckets_[next_launch_].ready == buckets_[next_launch_].slots.size())
    launch(buckets_[next_launch_++]);
}

void DataParallel::launch(Bucket& b) {
  if (b.padded > b.numel) b.grad.narrow(0, b.numel, b.padded - b.numel).zero_();
  b.work = zero1_ ? comm_.reduce_scatter_sum(b.grad, b.grad_shard) : comm_.allreduce_sum(b.grad);
  b.launched = true;
}

void DataParallel::finish() {
  if (comm_.world() == 1) return;
  if (!armed_) throw Error("data parallel: finish() without arm(true) before the last backward");
  launched_in_backward_ = next_launch_;
  // Parameters that got no gradient in the last backward (unused in this step's graph): their
  // accumulated gradient, or zeros, so every bucket can complete.
  for (size_t k = 0; k < params_.size(); ++k)
    if (!param_ready_[k]) on_grad_ready(k);
  const auto t0 = std::chrono::steady_clock::now();
  for (auto& b : buckets_) b.work.wait();
  wait_s_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  armed_ = false;
  torch::NoGradGuard no_grad;
  if (!zero1_) {  // the summed gradient, read in place from the bucket
    for (auto& b : buckets_)
      for (const Slot& s : b.slots) {
        torch::Tensor& p = params_[s.param].second;
        p.mutable_grad() = b.grad.narrow(0, s.offset, s.numel).view(p.sizes());
      }
  } else {  // this rank's pieces read their slice of the summed gradient
    for (size_t i = 0; i < pieces_.size(); ++i) {
      const auto [bi, off] = piece_at_[i];
      pieces_[i].second.mutable_grad() = buckets_[bi].grad_shard.narrow(0, off, pieces_[i].second.numel());
    }
    for (auto& [name, p] : params_) p.mutable_grad() = torch::Tensor();  // whole-tensor grads are not used
  }
}

double DataParallel::clip(double max_norm) {
  if (!zero1_) return clip_grad_norm(params_, max_norm);
  // The norm over every rank's shard: sum of squares here, summed across ranks.
  torch::NoGradGuard no_grad;
  std::vector<double> sq{0.0};
  for (auto& b : buckets_) sq[0] += b.grad_shard.pow(2).sum().item<double>();
  comm_.sum(sq);
  const double total = std::sqrt(sq[0]);
  if (max_norm > 0 && std::isfinite(total) && total > max_norm) {
    const double scale = max_norm / (total + 1e-6);
    for (auto& b : buckets_) b.grad_shard.mul_(scale);
  }
  return total;
}

void DataParallel::step(double lr) {
  adam_->step(lr);
  if (!zero1_) return;
  // Every rank's updated slice to every rank.
  torch::NoGradGuard no_grad;
  for (auto& b : buckets_) b.param_shard.zero_();
  for (size_t i = 0; i < pieces_.size(); ++i) {
    const auto [bi, off] = piece_at_[i];
    buckets_[bi].param_shard.narrow(0, off, pieces_[i].second.numel()).copy_(pieces_[i].second);
  }
  for (auto& b : buckets_) b.work = comm_.allgather(b.param_shard, b.param_full);
  for (auto& b : buckets_) {
    b.work.wait();
    for (const Slot& s : b.slots) params_[s.param].second.view(-1).copy_(b.param_full.narrow(0, s.offset, s.numel));
  }
}

void DataParallel::zero_grad() {
  for (auto& [name, p] : params_) p.mutable_grad() = torch::Tensor();
  for (auto& [name, p] : pieces_) p.mutable_grad() = torch::Tensor();
}

DataParallel::Named DataParallel::full_state() {
  if (!zero1_) return adam_->state_tensors();
  torch::NoGradGuard no_grad;
  const auto pieces_state = adam_->state_tensors();  // piece i: [2i] exp_avg, [2i+1] exp_avg_sq
  Named out;
  std::map<std::string, torch::Tensor> whole;
  const char* suffixes[2] = {".exp_avg", ".exp_avg_sq"};
  for (size_t which = 0; which < 2; ++which) {
    const std::string suffix = suffixes[which];
    for (auto& b : buckets_) b.param_shard.zero_();  // the all-gather buffers; step() refills them
    for (size_t i = 0; i < pieces_.size(); ++i) {
      const auto [bi, off] = piece_at_[i];
      buckets_[bi].param_shard.narrow(0, off, pieces_[i].second.numel()).copy_(pieces_state[2 * i + which].second);
    }
    for (auto& b : buckets_) {
      comm_.allgather(b.param_shard, b.param_full).wait();
      for (const Slot& s : b.slots) {
        const auto& [name, p] = params_[s.param];
        whole[name + suffix] = b.param_full.narrow(0, s.offset, s.numel).clone().view(p.sizes());
      }
    }
  }
  for (const auto& [name, p] : params_) {
    out.emplace_back(name + ".exp_avg", whole.at(name + ".exp_avg"));
    out.emplace_back(name + ".exp_avg_sq", whole.at(name + ".exp_avg_sq"));
  }
  return out;
}

DataParallel::Named DataParallel::shard_state() const {
  if (!zero1_) throw Error("data parallel: shard_state() without ZeRO-1");
  return adam_->state_tensors();
}

void DataParallel::load_full_state(const std::map<std::string, torch::Tensor>& tensors, int64_t step_count) {
  if (!zero1_) {
    adam_->load_state(tensors, step_count);
    return;
  }
  // Check the whole tensors against the model (the parameters give the moments' shapes), then
  // cut this rank's pieces.
  Named whole;
  for (const auto& [name, p] : params_) {
    whole.emplace_back(name + ".exp_avg", p);
    whole.emplace_back(name + ".exp_avg_sq", p);
  }
  check_moments(whole, tensors);
  std::map<std::string, torch::Tensor> pieces;
  for (const auto& [piece, view] : pieces_) {
    const auto at = piece.rfind('@');
    const std::string name = piece.substr(0, at);
    const int64_t offset = std::stoll(piece.substr(at + 1));
    for (const char* suffix : {".exp_avg", ".exp_avg_sq"})
      pieces[piece + suffix] = tensors.at(name + suffix).reshape(-1).narrow(0, offset, view.numel());
  }
  adam_->load_state(pieces, step_count);
}

}  // namespace ethos
