// c10d process group behind Comm (see dist.h).
#include "trainer/dist/process_group.h"

// The c10d headers hide each backend behind its build flag; LibTorch's CMake config does not
// pass them on. Gloo is in every LibTorch we build against (Debian's and the official ones);
// NCCL is switched on by CMake (ETHOS_NCCL) for CUDA builds.
#ifndef USE_C10D_GLOO
#define USE_C10D_GLOO
#endif
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#ifdef USE_C10D_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>

#include "datasets/base/util.h"
#include "trainer/compat.h"

namespace ethos {
namespace {

#if ETHOS_TORCH_2
using ProcessGroupBase = c10d::Backend;  // 2.x: Gloo and NCCL are backends of a ProcessGroup
#else
using ProcessGroupBase = c10d::ProcessGroup;
#endif

std::string first_line(const std::string& s) {
  const auto nl = s.find('\n');
  return nl == std::string::npos ? s : s.substr(0, nl);
}

// LibTorch 2.4 and later serve and reach the store through libuv by default, which a build may
// lack (Debian's 2.14 does); such a build is asked for the older socket backend instead.
template <class Options>
auto use_legacy_store(Options& o, int) -> decltype(o.useLibUV = false, bool()) {
  o.useLibUV = false;
  return true;
}
template <class Options>
bool use_legacy_store(Options&, long) { return false; }  // 1.13: no libuv option

c10::intrusive_ptr<c10d::TCPStore> make_store(const std::string& addr, c10d::TCPStoreOptions so) {
  try {
    return c10::make_intrusive<c10d::TCPStore>(addr, so);
  } catch (const std::exception& e) {
    if (std::string(e.what()).find("without libuv") == std::string::npos || !use_legacy_store(so, 0)) throw;
    return c10::make_intrusive<c10d::TCPStore>(addr, so);
  }
}

bool is_loopback(const std::string& addr) { return addr == "localhost" || addr.rfind("127.", 0) == 0; }

std::chrono::milliseconds millis(double seconds) {
  return std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000.0));
}

std::string host_name() {
  char buf[256] = {0};
  return ::gethostname(buf, sizeof buf - 1) == 0 ? buf : "?";
}

// Whether a process of this machine is still running (a zombie, dead but not yet reaped by
// its parent, counts as gone).
bool process_running(long pid) {
  if (pid <= 0 || ::kill(static_cast<pid_t>(pid), 0) != 0) return false;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return true;
  const auto paren = line.rfind(')');
  return paren == std::string::npos || paren + 2 >= line.size() || line[paren + 2] != 'Z';
}

}  // namespace

struct Comm::Impl {
  torch::Device device = torch::kCPU;
  std::chrono::milliseconds timeout{0};
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<ProcessGroupBase> pg;
  int64_t shares = 0;
};

namespace {
struct WorkHolder {
  c10::intrusive_ptr<c10d::Work> work;
};
}  // namespace

void CommWork::wait() {
  if (!work_) return;
  auto holder = std::static_pointer_cast<WorkHolder>(work_);
  work_.reset();
  try {
    holder->work->wait(timeout_.count() > 0 ? timeout_ : comm_->impl_->timeout);
  } catch (const std::exception& e) {
    comm_->fail(what_, e);
  }
  if (after_) after_();
  after_ = nullptr;
}

Comm::Comm(const DistEnv& env, const torch::Device& device, const CommOptions& opt)
    : env_(env), opt_(opt), impl_(std::make_unique<Impl>()) {
  impl_->device = device;
  impl_->timeout = millis(opt.timeout_s);
  if (!(opt.timeout_s > 0))
    throw Error("dist.timeout_s must be > 0 (got " + std::to_string(opt.timeout_s) + "): the deadline, in seconds, "
                "of every collective");
  if (opt.backend != "auto" && opt.backend != "gloo" && opt.backend != "nccl")
    throw Error("dist.backend: unknown \"" + opt.backend + "\"; use auto, gloo or nccl");
  if (env.world_size == 1) return;
  backend_ = opt.backend == "auto" ? (device.is_cuda() ? "nccl" : "gloo") : opt.backend;
  if (backend_ == "nccl" && !device.is_cuda())
    throw Error(who() + ": dist.backend nccl needs CUDA tensors, but this run's device is " + device.str() +
                ". Use dist.backend: gloo (or auto) on CPU.");
#ifndef USE_C10D_NCCL
  if (backend_ == "nccl")
    throw Error(who() + ": this build of ethos has no NCCL (LibTorch " + std::string(TORCH_VERSION) +
                " without CUDA/NCCL). Build against a CUDA LibTorch (Torch_DIR), or use dist.backend: gloo.");
#endif

  // Rendezvous: rank 0 serves the store and waits for the others (up to the timeout).
  c10d::TCPStoreOptions so;
  so.port = static_cast<std::uint16_t>(env.master_port);
  so.isServer = env.rank == 0;
  so.numWorkers = static_cast<size_t>(env.world_size);
  so.waitWorkers = false;  // check_same_world waits for each rank by name; the store would only count them
  so.timeout = impl_->timeout;
  const std::string where = env.master_addr + ":" + std::to_string(env.master_port);
  try {
    impl_->store = make_store(env.master_addr, so);
  } catch (const std::exception& e) {
    throw Error(who() + ": rendezvous at " + where + " failed: " + first_line(e.what()) +
                (env.rank == 0 ? ". Is the port in use? Set MASTER_PORT to a free port." : join_hint()));
  }
  check_same_world();
  try {
    if (backend_ == "gloo") {
      auto o = c10d::ProcessGroupGloo::Options::create(impl_->timeout);
      if (const char* ifname = std::getenv("GLOO_SOCKET_IFNAME"))
        o->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
      else if (is_loopback(env.master_addr))
        o->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
      else
        o->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
      o->threads = 2;
      impl_->pg = c10::make_intrusive<c10d::ProcessGroupGloo>(impl_->store, env.rank, env.world_size, o);
    }
#ifdef USE_C10D_NCCL
    if (backend_ == "nccl") {
      auto o = c10d::ProcessGroupNCCL::Options::create();
      o->timeout = impl_->timeout;
      impl_->pg = c10::make_intrusive<c10d::ProcessGroupNCCL>(impl_->store, env.rank, env.world_size, o);
    }
#endif
  } catch (const std::exception& e) {
    throw Error(who() + ": creating the " + backend_ + " process group failed: " + first_line(e.what()));
  }
  // Where each rank runs, so that a survivor can say which rank died.
  impl_->store->set("ethos/proc/" + std::to_string(env.rank),
                    [] { const std::string s = host_name() + " " + std::to_string(::getpid()); return std::vector<uint8_t>(s.begin(), s.end()); }());
  barrier("joining the job");  // every rank is connected before training starts
}

// What to check when the ranks do not meet.
std::string Comm::join_hint() const {
  return ". Did all " + std::to_string(world()) + " ranks start, with the same MASTER_ADDR/MASTER_PORT (rank 0 serves "
         "them: " + env_.master_addr + ":" + std::to_string(env_.master_port) + ")? dist.timeout_s (" +
         std::to_string(static_cast<int>(opt_.timeout_s)) + " s) is the wait." +
         (env_.source == "slurm" ? " Under Slurm, start the ranks with srun: a batch script alone is one process "
                                   "although SLURM_NTASKS says " + std::to_string(world()) + "."
                                 : "");
}

// Every rank must have been started with the same world size; a mismatch would otherwise
// surface as a process group that never forms. Rank 0 serves the store and stops at the first
// mismatch, so the others read its entry before they publish their own: once rank 0 can see
// theirs, they no longer need its store.
void Comm::check_same_world() {
  auto bytes = [](const std::string& s) { return std::vector<uint8_t>(s.begin(), s.end()); };
  auto get = [&](int r) {
    const auto v = impl_->store->get("ethos/world/" + std::to_string(r));
    return std::string(v.begin(), v.end());
  };
  int r = 0;
  try {
    const std::string rank0 = rank() != 0 ? get(0) : "";
    impl_->store->set("ethos/world/" + std::to_string(rank()), bytes(std::to_string(world())));
    for (r = 0; r < world(); ++r) {
      const std::string theirs = r == 0 && rank() != 0 ? rank0 : get(r);
      if (theirs != std::to_string(world()))
        throw Error(who() + ": rank " + std::to_string(r) + " was started with a world size of " + theirs + ", this rank with " +
                    std::to_string(world()) + " (" + env_.source + " variables). Start every rank of the job with the same "
                    "WORLD_SIZE / SLURM_NTASKS.");
    }
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    throw Error(who() + ": rank " + std::to_string(r) + " did not join the job (" + first_line(e.what()) + ")" +
                join_hint());
  }
}

std::string Comm::dead_ranks() const {
  if (!impl_->store) return "";
  std::string dead;
  try {
    const std::string me = host_name();
    for (int r = 0; r < world(); ++r) {
      const std::string key = "ethos/proc/" + std::to_string(r);
      if (r == rank() || !impl_->store->check({key})) continue;
      const auto v = impl_->store->get(key);
      std::istringstream in(std::string(v.begin(), v.end()));
      std::string host;
      long pid = 0;
      in >> host >> pid;
      if (host == me && !process_running(pid))
        dead += (dead.empty() ? "" : ", ") + ("rank " + std::to_string(r) + " (pid " + std::to_string(pid) + ")");
    }
  } catch (const std::exception&) {
    if (rank() != 0) return "rank 0 (it serves the rendezvous store) is unreachable: it has died";
    return "";
  }
  return dead.empty() ? "" : dead + " is no longer running: it died first";
}

Comm::~Comm() = default;

void Comm::set_timeout(double seconds) {
  if (!(seconds > 0)) throw Error("dist.timeout_s must be > 0 (got " + std::to_string(seconds) + ")");
  opt_.timeout_s = seconds;
  impl_->timeout = millis(seconds);
}

Comm& job_comm(const DistEnv& env, const torch::Device& device, const CommOptions& opt) {
  static std::unique_ptr<Comm> single;
  if (env.world_size == 1) {
    single = std::make_unique<Comm>(env, device, opt);
    return *single;
  }
  // Never destroyed: the process group and the store stay up until the process exits.
  static Comm* job = nullptr;
  static std::string job_device, job_backend;
  if (!job) {
    job = new Comm(env, device, opt);
    job_device = device.str();
    job_backend = opt.backend;
    return *job;
  }
  if (device.str() != job_device || opt.backend != job_backend)
    throw Error(job->who() + ": this process joined its job with device " + job_device + " and dist.backend " +
                job_backend + "; a later run asks for " + device.str() + " and " + opt.backend +
                ". Runs in one process (an ablation) must use the same device and dist.backend.");
  job->set_timeout(opt.timeout_s);
  return *job;
}

std::string Comm::who() const {
  return "rank " + std::to_string(env_.rank) + "/" + std::to_string(env_.world_size);
}

void Comm::fail(const std::string& what, const std::exception& e) const {
  const std::string dead = dead_ranks();
  throw Error(who() + ": " + what + " failed: " + first_line(e.what()) + ". " +
              (dead.empty() ? "Another rank has probably died or stopped responding (see its output; the launcher "
                              "names it); a collective waits at most dist.timeout_s = " +
                                  std::to_string(static_cast<int>(opt_.timeout_s)) + " s."
                            : dead + " (see its output).") +
              " The last complete checkpoint is intact: run again to resume.");
}

// Starts a collective (`launch` returns its c10d work); a failure to start is this rank's Error.
CommWork Comm::start(const std::string& what, const std::function<c10::intrusive_ptr<c10d::Work>()>& launch,
                     std::function<void()> after) {
  CommWork cw;
  cw.comm_ = this;
  cw.what_ = what;
  cw.after_ = std::move(after);
  try {
    cw.work_ = std::make_shared<WorkHolder>(WorkHolder{launch()});
  } catch (const std::exception& e) {
    fail(what, e);
  }
  return cw;
}

CommWork Comm::allreduce_sum(torch::Tensor t) {
  if (world() == 1) return {};
  return start("all-reduce", [&] {
    std::vector<at::Tensor> ts{t};
    return impl_->pg->allreduce(ts);
  });
}

CommWork Comm::reduce_scatter_sum(torch::Tensor in, torch::Tensor out) {
  const int64_t S = out.numel();
  if (in.numel() != S * world())
    throw Error("reduce_scatter_sum: input has " + std::to_string(in.numel()) + " elements, expected " +
                std::to_string(S * world()));
  if (world() == 1) {
    out.copy_(in);
    return {};
  }
#ifdef USE_C10D_NCCL
  if (backend_ == "nccl") return start("reduce-scatter", [&] { return impl_->pg->_reduce_scatter_base(out, in); });
#endif
  // Gloo: all-to-all sends part r to rank r; the W parts received are summed in rank order.
  auto parts = torch::empty_like(in);
  const int W = world();
  return start(
      "reduce-scatter",
      [&] {
        std::vector<int64_t> even;  // empty: equal splits
        return impl_->pg->alltoall_base(parts, in, even, even);
      },
      [parts, out, S, W]() mutable {
        torch::NoGradGuard no_grad;
        out.copy_(parts.narrow(0, 0, S));
        for (int r = 1; r < W; ++r) out.add_(parts.narrow(0, r * S, S));
      });
}

CommWork Comm::allgather(torch::Tensor in, torch::Tensor out) {
  const int64_t S = in.numel();
  if (out.numel() != S * world())
    throw Error("allgather: output has " + std::to_string(out.numel()) + " elements, expected " +
                std::to_string(S * world()));
  if (world() == 1) {
    out.copy_(in);
    return {};
  }
#ifdef USE_C10D_NCCL
  if (backend_ == "nccl") return start("all-gather", [&] { return impl_->pg->_allgather_base(out, in); });
#endif
  return start("all-gather", [&] {
    std::vector<std::vector<at::Tensor>> outs(1);
    for (int r = 0; r < world(); ++r) outs[0].push_back(out.narrow(0, r * S, S));
    std::vector<at::Tensor> ins{in};
    return impl_->pg->allgather(outs, ins);
  });
}

void Comm::broadcast(torch::Tensor t, int root) {
  if (world() == 1) return;
  start("broadcast", [&] {
    std::vector<at::Tensor> ts{t};
    c10d::BroadcastOptions o;
    o.rootRank = root;
    return impl_->pg->broadcast(ts, o);
  }).wait();
}

void Comm::sum(std::vector<double>& values) {
  if (world() == 1 || values.empty()) return;
  auto t = torch::tensor(values, torch::kFloat64).to(impl_->device);
  allreduce_sum(t).wait();
  auto cpu = t.cpu();
  for (size_t i = 0; i < values.size(); ++i) values[i] = cpu[static_cast<int64_t>(i)].item<double>();
}

void Comm::barrier(const std::string& what, double timeout_s) {
  if (world() == 1) return;
  c10d::BarrierOptions o;
  o.timeout = timeout_s > 0 ? millis(timeout_s) : impl_->timeout;
  if (impl_->device.is_cuda()) o.device_ids = {impl_->device.index()};
  CommWork cw = start("barrier (" + what + ")", [&] { return impl_->pg->barrier(o); });
  cw.timeout_ = o.timeout;
  cw.wait();
}

namespace {
constexpr double kRank0Wait = 7 * 24 * 3600.0;  // no practical deadline; a dead peer ends it at once
}

void Comm::rank0_only(const std::string& what, const std::function<void()>& fn) {
  if (main()) fn();
  barrier(what, kRank0Wait);
}

void Comm::rank0_first(const std::string& what, const std::function<void()>& fn) {
  rank0_only(what, fn);
  if (!main()) fn();
}

std::string Comm::share(const std::string& key, const std::string& value) {
  if (world() == 1) return value;
  const std::string k = "ethos/share/" + std::to_string(impl_->shares++) + "/" + key;
  try {
    if (main()) impl_->store->set(k, std::vector<uint8_t>(value.begin(), value.end()));
    const auto v = impl_->store->get(k);
    return std::string(v.begin(), v.end());
  } catch (const std::exception& e) {
    fail("sharing " + key + " from rank 0", e);
  }
}

}  // namespace ethos
