// bench_matmul: the machine's fp32 matmul rate through LibTorch, the yardstick that
// tests/bench/bench_train.sh divides the training FLOP/s by.
// Usage: bench_matmul [threads=1] [n=2048] [reps=10]
// Times `reps` products of two [n,n] float32 matrices (after two warm-up products) and
// prints one JSON line: {"gflops", "ms_per_matmul", "n", "threads", "reps"}. FLOPs = 2*n^3.
#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <string>

namespace {

// Parses argv[i] as a positive integer, or returns `fallback` when absent. Throws on garbage.
int64_t positive_arg(int argc, char** argv, int i, int64_t fallback, const char* name) {
  if (i >= argc) return fallback;
  size_t used = 0;
  int64_t v = 0;
  try {
    v = std::stoll(argv[i], &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || argv[i][used] != '\0' || v <= 0)
    throw std::invalid_argument(std::string("bench_matmul: argument ") + std::to_string(i) + " (" + name +
                                ") must be a positive integer, got '" + argv[i] +
                                "'. Usage: bench_matmul [threads] [n] [reps]");
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const int64_t threads = positive_arg(argc, argv, 1, 1, "threads");
    const int64_t n = positive_arg(argc, argv, 2, 2048, "n");
    const int64_t reps = positive_arg(argc, argv, 3, 10, "reps");
    torch::set_num_threads(static_cast<int>(threads));
    torch::manual_seed(0);
    const auto a = torch::randn({n, n});  // [n,n] float32
    const auto b = torch::randn({n, n});
    auto c = torch::empty({n, n});
    for (int i = 0; i < 2; ++i) torch::mm_out(c, a, b);  // warm-up: thread pool, caches
    const auto t0 = std::chrono::steady_clock::now();
    for (int64_t i = 0; i < reps; ++i) torch::mm_out(c, a, b);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double flops = 2.0 * static_cast<double>(n) * static_cast<double>(n) * static_cast<double>(n) * reps;
    std::printf("{\"gflops\": %.2f, \"ms_per_matmul\": %.3f, \"n\": %lld, \"threads\": %d, \"reps\": %lld}\n",
                flops / seconds / 1e9, 1e3 * seconds / static_cast<double>(reps), static_cast<long long>(n),
                torch::get_num_threads(), static_cast<long long>(reps));
    return 0;
  } catch (const std::exception& e) {
    std::cerr << e.what() << std::endl;
    return 2;
  }
}
