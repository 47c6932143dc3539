// The process group of a data-parallel job, on c10d: a TCPStore rendezvous at MASTER_ADDR:
// MASTER_PORT (rank 0 serves it), then Gloo (CPU tensors) or NCCL (CUDA, one GPU per local
// rank; needs a CUDA LibTorch with NCCL). World size 1 creates nothing: every collective is
// the identity, so single-process runs pay nothing.
//
// Every collective has a deadline (dist.timeout_s). A failed or timed-out collective becomes an
// ethos::Error that names this rank, the operation and the likely cause (another rank died:
// its output and the launcher's say which); Gloo notices a dead peer's closed connection at
// once, so survivors stop within seconds instead of hanging.
#pragma once
#include <torch/torch.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "trainer/dist/env.h"

namespace c10d {
class Work;
}

namespace ethos {

struct CommOptions {
  std::string backend = "auto";  // auto (nccl for CUDA, else gloo) | gloo | nccl
  double timeout_s = 300;        // deadline of every collective and of the rendezvous
};

class Comm;

// An asynchronous collective. wait() blocks until it finished (or throws the rank's Error);
// a handle that was never started (world size 1) is already finished.
class CommWork {
 public:
  CommWork() = default;
  void wait();
  bool pending() const { return static_cast<bool>(work_); }

 private:
  friend class Comm;
  const Comm* comm_ = nullptr;
  std::string what_;
  std::shared_ptr<void> work_;    // c10d work (type-erased so this header stays light)
  std::function<void()> after_;   // local completion (e.g. summing all-to-all pieces)
  std::chrono::milliseconds timeout_{0};  // 0: the collective deadline (dist.timeout_s)
};

class Comm {
 public:
  // Joins the job described by `env` (world size 1: nothing to join).
  Comm(const DistEnv& env, const torch::Device& device, const CommOptions& opt);
  ~Comm();
  Comm(const Comm&) = delete;
  Comm& operator=(const Comm&) = delete;

  void set_timeout(double seconds);  // the deadline of later collectives
  int rank() const { return env_.rank; }
  int world() const { return env_.world_size; }
  bool main() const { return env_.rank == 0; }
  const DistEnv& env() const { return env_; }
  std::string backend() const { return backend_; }  // "none" for world size 1
  // "rank 1/4" — the prefix of this rank's messages.
  std::string who() const;

  // Asynchronous collectives on contiguous tensors of this rank's device.
  CommWork allreduce_sum(torch::Tensor t);  // in place
  // in: W*S elements (rank r's part is in[r*S, (r+1)*S)); out: S elements = the sum over ranks
  // of their part r. Gloo has no reduce-scatter: all-to-all, then a local sum in rank order.
  CommWork reduce_scatter_sum(torch::Tensor in, torch::Tensor out);
  // in: S elements; out: W*S elements, rank r's in at out[r*S, (r+1)*S).
  CommWork allgather(torch::Tensor in, torch::Tensor out);

  // Blocking helpers.
  void broadcast(torch::Tensor t, int root = 0);
  void sum(std::vector<double>& values);  // element-wise sum over ranks, in place (float64)
  // Waits for every rank. timeout_s <= 0: the collective deadline (dist.timeout_s).
  void barrier(const std::string& what, double timeout_s = 0);
  // Rank 0 runs fn (writing files, evaluating) while the others wait; then all go on.
  // rank0_first: then the other ranks run fn too (e.g. reading what rank 0 prepared).
  // These waits have no collective deadline (rank 0's work may take long); a rank that dies
  // still ends them at once.
  void rank0_only(const std::string& what, const std::function<void()>& fn);
  void rank0_first(const std::string& what, const std::function<void()>& fn);
  // Rank 0's `value` on every rank (through the store; `key` must be unique per call site and use).
  std::string share(const std::string& key, const std::string& value);

 private:
  friend class CommWork;
  struct Impl;  // the c10d store and process group (dist.cpp), kept out of this header
  CommWork start(const std::string& what, const std::function<c10::intrusive_ptr<c10d::Work>()>& launch,
                 std::function<void()> after = nullptr);
  [[noreturn]] void fail(const std::string& what, const std::exception& e) const;
  std::string dead_ranks() const;
  void check_same_world();
  std::string join_hint() const;  // "rank 1 (pid 123) is no longer running: ..." or ""

  DistEnv env_;
  CommOptions opt_;
  std::string backend_ = "none";
  std::unique_ptr<Impl> impl_;
};

// The job this process belongs to, joined on first use and kept for the life of the process,
// so that several runs in one process (an ablation) share one rendezvous. A later call must
// ask for the same device and backend; its timeout applies to the waits from then on. A
// single process (world size 1) gets a fresh, free Comm each time.
Comm& job_comm(const DistEnv& env, const torch::Device& device, const CommOptions& opt);

}  // namespace ethos
