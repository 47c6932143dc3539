// Data parallelism on c10d (the C++ API has no DistributedDataParallel): gradient buckets
// all-reduced while backward is still running, and ZeRO-1 (optimizer state sharded across
// ranks). With one rank it is AdamW + global-norm clipping and nothing else.
//
// Step protocol (trainer.cpp):
//   for each micro-batch: arm(last micro-batch); loss.backward();
//   finish();               3. gradient sync: wait for the buckets still in flight
//   clip(max_norm);         4. global-norm clip (the norm of the summed gradient)
//   step(lr); zero_grad();  5. update (ZeRO-1: own shard, then all-gather the parameters)
//
// Gradients are SUMMED across ranks, not averaged: every rank's loss is already divided by the
// step's global normaliser (target tokens or pairs summed over ranks and micro-batches), so the
// sum is exactly the one-process gradient of the same global batch.
//
// Buckets: parameters in reverse order (the order backward produces their gradients), filled up
// to dist.bucket_mb. A hook after each parameter's gradient accumulation copies the gradient into
// its bucket's flat buffer; when a bucket is complete it is launched (in bucket order, the same
// on every rank), so communication overlaps the rest of backward. Micro-batches before the last
// are not synchronised (their gradients only accumulate locally).
//
// ZeRO-1: each bucket's buffer (padded to a multiple of the world size) is split into W equal
// parts; rank r owns part r of every bucket: its slice of the summed gradient arrives by
// reduce-scatter, AdamW updates the parameter elements of that slice (the same element-wise
// math as AdamW over whole tensors), and an all-gather brings every rank's updated slice back.
#pragma once
#include <torch/torch.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "trainer/dist/process_group.h"
#include "trainer/optim.h"

namespace ethos {

struct DataParallelOptions {
  double bucket_mb = 25;  // gradient bucket size in MiB
  bool zero1 = false;     // shard the optimizer state across ranks
};

class DataParallel {
 public:
  using Named = std::vector<std::pair<std::string, torch::Tensor>>;
  DataParallel(Comm& comm, Named params, std::vector<bool> decay, AdamWOptions adam, DataParallelOptions opt);
  ~DataParallel();
  DataParallel(const DataParallel&) = delete;
  DataParallel& operator=(const DataParallel&) = delete;

  // Rank 0's parameters on every rank (at the start of a stage).
  void broadcast_parameters();
  // Before each backward: sync = whether it is the step's last micro-batch.
  void arm(bool sync);
  // 3. After the last backward: launches what is left and waits for every bucket.
  void finish();
  // 4. Global L2 norm of the summed gradient (clip_grad_norm's rule); clips when max_norm > 0.
  double clip(double max_norm);
  // 5. AdamW step at learning rate lr; then zero_grad() before the next step.
  void step(double lr);
  void zero_grad();
  int64_t step_count() const { return adam_->step_count(); }

  bool sharded() const { return zero1_; }
  // Optimizer moments as "<param>.exp_avg" / "<param>.exp_avg_sq", whole tensors (under ZeRO-1 a
  // collective: every rank must call it).
  Named full_state();
  // ZeRO-1: this rank's slices, "<param>@<offset>.exp_avg(_sq)", 1-D (offset: flat element index).
  Named shard_state() const;
  // Loads whole moments (from a full or a resharded checkpoint) into this rank's optimizer.
  void load_full_state(const std::map<std::string, torch::Tensor>& tensors, int64_t step_count);

  // The last step: seconds finish() waited for communication (the part not hidden behind
  // backward); and the bucket count.
  double comm_wait_seconds() const { return wait_s_; }
  // Buckets whose collective started during backward (from the hooks), not in finish().
  size_t buckets_launched_in_backward() const { return launched_in_backward_; }
  size_t buckets() const { return buckets_.size(); }

 private:
  struct Slot {
    size_t param;        // index into params_
    int64_t offset = 0;  // in the bucket's flat buffer
    int64_t numel = 0;
  };
  struct Bucket {
    std::vector<Slot> slots;
    int64_t numel = 0, padded = 0;  // padded: a multiple of the world size
    torch::Tensor grad;             // [padded] flat gradients
    torch::Tensor grad_shard;       // ZeRO-1: [padded / W], this rank's part of the sum
    torch::Tensor param_shard, param_full;  // ZeRO-1: all-gather buffers
    size_t ready = 0;
    bool launched = false;
    CommWork work;
  };
  void on_grad_ready(size_t param);
  void launch_ready();
  void launch(Bucket& b);

  Comm& comm_;
  Named params_;
  std::vector<bool> decay_;
  bool zero1_ = false;
  std::vector<Bucket> buckets_;
  std::vector<std::pair<size_t, size_t>> where_;  // param -> (bucket, slot)
  std::vector<bool> param_ready_;
  size_t next_launch_ = 0, launched_in_backward_ = 0;
  bool armed_ = false;
  double wait_s_ = 0;
  // The optimizer: over whole parameters, or (ZeRO-1) over this rank's slices of them.
  Named pieces_;                          // ZeRO-1: "<param>@<offset>" -> view into the parameter
  std::vector<std::pair<size_t, int64_t>> piece_at_;  // ZeRO-1: piece -> (bucket, offset in its shard)
  std::unique_ptr<AdamW> adam_;
  std::vector<std::shared_ptr<void>> accumulators_;  // keeps the hooked grad accumulators alive
  std::shared_ptr<bool> alive_;                      // hooks do nothing once this object is gone
};

}  // namespace ethos
