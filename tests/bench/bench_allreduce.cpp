// bench_allreduce: collective bandwidth through ethos::Comm (c10d; Gloo over loopback on CPU),
// the yardstick tests/bench/bench_dist.sh compares gradient communication in training with.
//
// Usage: bench_allreduce [--ranks 2] [--iters 20] [--warmup 3] [--max-mib 64] [--json PATH]
// Run without rank variables, it starts itself --ranks times through ethos::launch (the copies
// get --worker); under torchrun/Slurm variables it is one rank of that job. Each rank runs, in
// float32 on the CPU with one intra-op thread:
//   all-reduce (sum)   for 4 KiB, 16 KiB, ... (powers of 4) up to --max-mib MiB;
//   reduce-scatter sum and all-gather at 1 MiB and 16 MiB (bytes = the full W-part buffer).
// An iteration is barrier, then the timed collective (start to wait() returning); its time is the
// slowest rank's. Reported: the median over at least --iters iterations (fast sizes run more, for
// about 0.25 s) after --warmup untimed ones,
//   algbw = bytes / time;  busbw = algbw * 2(W-1)/W (all-reduce), algbw * (W-1)/W (the others),
// i.e. what each rank's link carries (the nccl-tests convention). Rank 0 prints the table and
// writes the JSON.
#include <torch/torch.h>

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "datasets/base/util.h"
#include "trainer/dist/process_group.h"
#include "trainer/dist/env.h"
#include "launch/launcher.h"

namespace {

using ethos::Error;

struct Args {
  int ranks = 2, iters = 20, warmup = 3;
  int64_t max_mib = 64;
  std::string json;
  bool worker = false;
};

const char* kUsage = "usage: bench_allreduce [--ranks N] [--iters N] [--warmup N] [--max-mib N] [--json PATH]";

int64_t int_value(const std::string& flag, const char* text, int64_t min) {
  size_t used = 0;
  int64_t v = 0;
  try {
    v = std::stoll(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || text[used] != '\0' || v < min)
    throw Error("bench_allreduce: " + flag + " needs an integer >= " + std::to_string(min) + ", got '" + text +
                "'. " + kUsage);
  return v;
}

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string f = argv[i];
    if (f == "--worker") {
      a.worker = true;
      continue;
    }
    if (i + 1 >= argc) throw Error("bench_allreduce: unknown or incomplete argument '" + f + "'. " + kUsage);
    const char* v = argv[++i];
    if (f == "--ranks") a.ranks = static_cast<int>(int_value(f, v, 1));
    else if (f == "--iters") a.iters = static_cast<int>(int_value(f, v, 1));
    else if (f == "--warmup") a.warmup = static_cast<int>(int_value(f, v, 1));
    else if (f == "--max-mib") a.max_mib = int_value(f, v, 1);
    else if (f == "--json") a.json = v;
    else throw Error("bench_allreduce: unknown argument '" + f + "'. " + kUsage);
  }
  return a;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// Times one collective: `run` starts it on this rank's buffers and returns its handle.
// Returns the median over iterations of the slowest rank's seconds, and the iteration count:
// at least --iters, more for fast collectives (up to 50x, ~0.25 s of them), whose times on a
// busy 2-core machine jump between the wake-up latency and a scheduler slice (0.4 vs 3 ms).
template <class Run>
std::pair<double, int> time_collective(ethos::Comm& comm, const Args& a, Run run) {
  auto once = [&] {
    comm.barrier("bench_allreduce: iteration start");
    const auto t0 = std::chrono::steady_clock::now();
    run().wait();
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  };
  std::vector<double> warm{once()};  // the warm-up also sizes the run
  for (int it = 1; it < a.warmup; ++it) warm[0] += once();
  comm.sum(warm);  // the same figure on every rank, so all agree on the count
  const double mean = warm[0] / a.warmup / comm.world();
  const int iters = std::clamp(static_cast<int>(0.25 / std::max(mean, 1e-6)), a.iters, 50 * a.iters);
  std::vector<double> secs(static_cast<size_t>(iters) * comm.world(), 0.0);  // [iter][rank]
  for (int it = 0; it < iters; ++it) secs[static_cast<size_t>(it) * comm.world() + comm.rank()] = once();
  comm.sum(secs);  // every rank filled only its own column
  std::vector<double> slowest;
  for (int it = 0; it < iters; ++it) {
    auto first = secs.begin() + static_cast<std::ptrdiff_t>(it) * comm.world();
    slowest.push_back(*std::max_element(first, first + comm.world()));
  }
  return {median(slowest), iters};
}

int worker(const Args& a) {
  torch::set_num_threads(1);
  ethos::Comm comm(ethos::dist_env(), torch::kCPU, ethos::CommOptions{});
  const int W = comm.world();
  nlohmann::json rows = nlohmann::json::array();
  auto record = [&](const std::string& op, int64_t bytes, std::pair<double, int> timed, double bus_factor) {
    const double algbw = static_cast<double>(bytes) / timed.first / 1e9;
    rows.push_back({{"op", op}, {"bytes", bytes}, {"median_ms", 1e3 * timed.first}, {"iters", timed.second},
                    {"algbw_gbps", algbw}, {"busbw_gbps", algbw * bus_factor}});
  };

  // All-reduce. The first warm-up result is checked (every rank adds rank+1), then zeroed.
  for (int64_t bytes = 4096; bytes <= a.max_mib * 1024 * 1024; bytes *= 4) {
    auto t = torch::full({bytes / 4}, static_cast<float>(comm.rank() + 1));
    comm.allreduce_sum(t).wait();
    const float want = static_cast<float>(W * (W + 1) / 2);
    if (t[0].item<float>() != want || t[-1].item<float>() != want)
      throw Error("bench_allreduce: all-reduce of " + std::to_string(bytes) + " bytes gave " +
                  std::to_string(t[0].item<float>()) + ", expected " + std::to_string(want));
    t.zero_();
    record("allreduce", bytes, time_collective(comm, a, [&] { return comm.allreduce_sum(t); }),
           2.0 * (W - 1) / W);
  }
  // Reduce-scatter and all-gather: `bytes` is the full buffer of W parts.
  for (int64_t mib : {1, 16}) {
    if (mib > a.max_mib) continue;
    const int64_t part = mib * 1024 * 1024 / 4 / W;  // float32 elements per rank
    const int64_t bytes = part * W * 4;
    auto full = torch::zeros({part * W});
    auto mine = torch::zeros({part});
    record("reduce_scatter", bytes, time_collective(comm, a, [&] { return comm.reduce_scatter_sum(full, mine); }),
           1.0 * (W - 1) / W);
    record("allgather", bytes, time_collective(comm, a, [&] { return comm.allgather(mine, full); }),
           1.0 * (W - 1) / W);
  }
  comm.barrier("bench_allreduce: done");
  if (!comm.main()) return 0;

  std::printf("%d ranks, %s, float32; median over iterations (after %d warm-up) of the slowest rank's time\n", W,
              comm.backend().c_str(), a.warmup);
  std::printf("%-15s %12s %6s %11s %13s %13s\n", "op", "bytes", "iters", "median ms", "algbw GB/s", "busbw GB/s");
  for (const auto& r : rows)
    std::printf("%-15s %12lld %6d %11.3f %13.3f %13.3f\n", r["op"].get<std::string>().c_str(),
                static_cast<long long>(r["bytes"].get<int64_t>()), r["iters"].get<int>(), r["median_ms"].get<double>(),
                r["algbw_gbps"].get<double>(), r["busbw_gbps"].get<double>());
  std::fflush(stdout);
  if (!a.json.empty()) {
    std::ofstream out(a.json);
    out << nlohmann::json{{"ranks", W}, {"backend", comm.backend()}, {"min_iters", a.iters}, {"warmup", a.warmup},
                          {"results", rows}}.dump(1)
        << "\n";
    if (!out) throw Error("bench_allreduce: cannot write " + a.json + ": check the directory exists and is writable");
  }
  return 0;
}

// Starts --ranks copies of this program (same arguments plus --worker) as one job.
int launcher(int argc, char** argv, const Args& a) {
  std::vector<char> self(4096, '\0');
  const ssize_t n = ::readlink("/proc/self/exe", self.data(), self.size() - 1);
  if (n <= 0) throw Error("bench_allreduce: cannot find its own executable (/proc/self/exe); run it on Linux");
  ethos::LaunchOptions o;
  o.nproc = a.ranks;
  o.command = {std::string(self.data(), static_cast<size_t>(n)), "--worker"};
  for (int i = 1; i < argc; ++i) o.command.push_back(argv[i]);
  return ethos::launch(o);
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const Args a = parse(argc, argv);
    if (a.worker || ethos::dist_env().source != "single") return worker(a);
    return launcher(argc, argv, a);
  } catch (const std::exception& e) {
    std::cerr << e.what() << std::endl;
    return 2;
  }
}
