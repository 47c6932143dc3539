// The checks that need a CUDA device (tests/gpu/run.sh runs this binary on a GPU machine). It is
// built with the other tests, so CI compiles it (and tests/check_cuda_build.sh compiles it against
// a CUDA LibTorch), but it is not part of ctest: without a CUDA device every case says so and
// checks nothing.
//   fp32 logits and gradients on the GPU equal the CPU's within 1e-4;
//   a bf16 autocast step within a stated tolerance of fp32;
//   SDPA attention equal to the explicit attention on packed documents (1e-5);
//   ProcessGroupNCCL comes up on the GPU; a launched 1-rank job equals one process, 2 ranks 1 (two GPUs);
//   exact resume on the GPU in fp32 with deterministic kernels (bitwise).
#include <torch/torch.h>

#include "catch.h"
#include <csignal>
#include <cmath>
#include <filesystem>
#include <iostream>
#include <string>

#include "datasets/base/util.h"
#include "tests/helpers.h"
#include "tests/train_helpers.h"
#include "trainer/compat.h"
#include "trainer/model/llama.h"

#ifdef USE_C10D_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#endif

namespace fs = std::filesystem;
using namespace ethos;
using namespace ethos::test;
using ethos_catch::Contains;

namespace {

bool have_cuda() {
  if (torch::cuda::is_available()) return true;
  std::cerr << "[test_gpu] no CUDA device (or a CPU-only LibTorch): nothing checked" << std::endl;  // run.sh looks for it
  return false;
}

ModelConfig small_config() {
  ModelConfig c;
  c.vocab_size = 512;
  c.hidden_size = 128;
  c.intermediate_size = 352;
  c.num_hidden_layers = 4;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.max_position_embeddings = 256;
  return c;
}

// The same weights every call (CPU initialisation from a fixed seed).
Llama seeded_model(const ModelConfig& c) {
  torch::manual_seed(7);
  Llama m(c);
  m->init_weights();
  return m;
}

// Rows of two packed documents: the second starts a third of the way in, its positions from 0.
struct Batch {
  torch::Tensor tokens, positions, docs, targets;
  Batch to(const torch::Device& d) const { return {tokens.to(d), positions.to(d), docs.to(d), targets.to(d)}; }
};
Batch packed_batch(int64_t B, int64_t T, int64_t V) {
  torch::manual_seed(11);
  const auto at = torch::arange(T, torch::kInt64);
  const int64_t cut = T / 3;
  return {torch::randint(V, {B, T}, torch::kInt64),
          torch::where(at < cut, at, at - cut).unsqueeze(0).expand({B, T}).contiguous(),
          (at >= cut).to(torch::kInt64).unsqueeze(0).expand({B, T}).contiguous(),
          torch::randint(V, {B, T}, torch::kInt64)};
}

double max_abs_diff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.detach().to(torch::kCPU, torch::kFloat) - b.detach().to(torch::kCPU, torch::kFloat)).abs().max().item<double>();
}

// Forward and backward of the mean cross-entropy; returns (logits, loss).
std::pair<torch::Tensor, torch::Tensor> step(Llama& m, const Batch& b) {
  const auto logits = m->forward(b.tokens, b.positions, b.docs);
  const auto loss = torch::nn::functional::cross_entropy(logits.reshape({-1, logits.size(-1)}).to(torch::kFloat),
                                                         b.targets.reshape({-1}));
  loss.backward();
  return {logits.detach(), loss.detach()};
}

torch::Tensor flat_grads(Llama& m) {
  std::vector<torch::Tensor> g;
  for (const auto& p : m->parameters()) g.push_back(p.grad().detach().to(torch::kCPU, torch::kFloat).reshape({-1}));
  return torch::cat(g);
}

const std::string kTrain40 = "  {steps: 40, batch_size: 8, lr: 3.0e-3, warmup_steps: 2, checkpoint_every: 20, keep_last: 0}\n";
const std::string kOnGpu = " device=cuda deterministic=true";

}  // namespace

CATCH_TEST_CASE("gpu: fp32 logits and gradients on the GPU equal the CPU's (1e-4)", "[gpu]") {
  if (!have_cuda()) return;
  at::globalContext().setAllowTF32CuBLAS(false);  // fp32 products in fp32 (TF32 would round to 10 bits)
  at::globalContext().setAllowTF32CuDNN(false);
  const ModelConfig cfg = small_config();
  Llama cpu = seeded_model(cfg), gpu = seeded_model(cfg);
  gpu->to(torch::kCUDA);
  const Batch b = packed_batch(2, 96, cfg.vocab_size);
  const auto [logits_c, loss_c] = step(cpu, b);
  const auto [logits_g, loss_g] = step(gpu, b.to(torch::kCUDA));
  CATCH_INFO("max |logit| " << logits_c.abs().max().item<double>());
  CATCH_CHECK(max_abs_diff(logits_c, logits_g) <= 1e-4);
  CATCH_CHECK(std::abs(loss_c.item<double>() - loss_g.cpu().item<double>()) <= 1e-4);
  const auto pc = cpu->named_parameters(), pg = gpu->named_parameters();
  CATCH_REQUIRE(pc.size() == pg.size());
  for (const auto& item : pc) {
    CATCH_INFO(item.key());
    CATCH_CHECK(max_abs_diff(item.value().grad(), pg[item.key()].grad()) <= 1e-4);
  }
}

CATCH_TEST_CASE("gpu: a bf16 autocast step is within 5% of the logits' scale, 2% of the loss and 0.99 gradient cosine of fp32",
                "[gpu]") {
  if (!have_cuda()) return;
  const ModelConfig cfg = small_config();
  Llama ref = seeded_model(cfg), low = seeded_model(cfg);
  ref->to(torch::kCUDA);
  low->to(torch::kCUDA);
  const Batch b = packed_batch(2, 96, cfg.vocab_size).to(torch::kCUDA);
  const auto [logits_r, loss_r] = step(ref, b);
  torch::Tensor logits_l, loss_l;
  {
    compat::AutocastBf16 autocast(true);
    CATCH_REQUIRE(compat::autocast_enabled());
    std::tie(logits_l, loss_l) = step(low, b);
  }
  const double scale = logits_r.abs().max().item<double>();
  CATCH_CHECK(max_abs_diff(logits_l, logits_r) > 0);  // the products did run in lower precision
  CATCH_INFO("max |logit| " << scale << ", loss " << loss_r.item<double>() << " vs " << loss_l.item<double>());
  CATCH_CHECK(max_abs_diff(logits_l, logits_r) <= 0.05 * scale);  // bf16 keeps ~3 significant digits
  CATCH_CHECK(std::abs(loss_l.item<double>() - loss_r.item<double>()) <= 0.02 * loss_r.item<double>());
  const auto gr = flat_grads(ref), gl = flat_grads(low);
  const double cosine = (gr * gl).sum().item<double>() / (gr.norm().item<double>() * gl.norm().item<double>());
  CATCH_INFO("gradient cosine " << cosine);
  CATCH_CHECK(cosine >= 0.99);
}

CATCH_TEST_CASE("gpu: SDPA attention equals the explicit attention on packed documents (1e-5), forward and backward",
                "[gpu]") {
  if (!have_cuda()) return;
  at::globalContext().setAllowTF32CuBLAS(false);
  const int64_t B = 2, H = 4, K = 2, T = 80, D = 32;
  torch::manual_seed(3);
  const auto opts = torch::TensorOptions().device(torch::kCUDA).dtype(torch::kFloat);
  const auto q = torch::randn({B, H, T, D}, opts).requires_grad_(), k = torch::randn({B, K, T, D}, opts).requires_grad_(),
             v = torch::randn({B, K, T, D}, opts).requires_grad_();
  // Two documents per row (the second from position 30 in row 0, 50 in row 1), causal within each.
  const auto t = torch::arange(T, opts.dtype(torch::kInt64));
  const auto cut = torch::tensor({30, 50}, opts.dtype(torch::kInt64)).view({B, 1});
  const auto doc = (t.view({1, T}) >= cut).to(torch::kInt64);                                // [B,T]
  const auto allowed = (doc.unsqueeze(2) == doc.unsqueeze(1)) & (t.view({1, 1, T}) <= t.view({1, T, 1}));  // [B,T,S]
  const auto mask = torch::zeros({B, 1, T, T}, opts).masked_fill(~allowed.unsqueeze(1), -INFINITY);
  const auto fused = compat::attention(q, k, v, mask);
  const auto kr = k.repeat_interleave(H / K, 1), vr = v.repeat_interleave(H / K, 1);
  const auto explicit_ = torch::matmul(torch::softmax(torch::matmul(q, kr.transpose(-2, -1)) / std::sqrt(double(D)) + mask, -1), vr);
  CATCH_CHECK(max_abs_diff(fused, explicit_) <= 1e-5);
  const auto w = torch::randn_like(fused);
  const auto g1 = torch::autograd::grad({(fused * w).sum()}, {q, k, v});
  const auto g2 = torch::autograd::grad({(explicit_ * w).sum()}, {q, k, v});
  for (size_t i = 0; i < 3; ++i) CATCH_CHECK(max_abs_diff(g1[i], g2[i]) <= 1e-5);
}

CATCH_TEST_CASE("gpu: NCCL comes up on this GPU; a launched 1-rank job equals one process bit for bit; 2 ranks equal 1 "
                "(1e-5) where two GPUs exist", "[gpu]") {
  if (!have_cuda()) return;
#ifdef USE_C10D_NCCL
  {  // ProcessGroupNCCL of world size 1: an all-reduce (sum) returns its input.
    c10d::TCPStoreOptions so;
    so.port = 0;  // any free port
    so.isServer = true;
    so.numWorkers = 1;
    auto store = c10::make_intrusive<c10d::TCPStore>("127.0.0.1", so);
    auto pg = c10::make_intrusive<c10d::ProcessGroupNCCL>(store, 0, 1, c10d::ProcessGroupNCCL::Options::create());
    std::vector<at::Tensor> t{torch::randn({4096}, torch::TensorOptions().device(torch::kCUDA))};
    const auto before = t[0].clone();
    pg->allreduce(t)->wait();
    CATCH_CHECK(torch::equal(t[0], before));
  }
#else
  CATCH_WARN("built without NCCL (configure with -DETHOS_NCCL=ON): ProcessGroupNCCL not checked");
#endif
  const std::string dir = fresh_dir("gpu_nccl");
  const std::string recipe = write_recipe(dir, demo_data_yaml(), kTrain40);
  auto one = run(ethos_bin() + " train " + recipe + kOnGpu + " out_dir=" + dir + "/one");
  CATCH_INFO(one.output);
  CATCH_REQUIRE(one.status == 0);
  auto launched = run(ethos_bin() + " launch --nproc 1 -- train " + recipe + kOnGpu + " out_dir=" + dir + "/launched");
  CATCH_INFO(launched.output);
  CATCH_REQUIRE(launched.status == 0);
  CATCH_CHECK(logged_losses(dir + "/one") == logged_losses(dir + "/launched"));
  CATCH_CHECK(weights_of(dir + "/one", 40) == weights_of(dir + "/launched", 40));
  if (torch::cuda::device_count() < 2) {
    CATCH_WARN("one GPU: the 2-rank NCCL comparison needs two");
    return;
  }
  auto two = run(ethos_bin() + " launch --nproc 2 -- train " + recipe + kOnGpu + " train.batch_size=4 out_dir=" + dir + "/two");
  CATCH_INFO(two.output);
  CATCH_REQUIRE(two.status == 0);
  const auto dp = events(dir + "/two/train.jsonl", "data_parallel");
  CATCH_REQUIRE(dp.size() == 1);
  CATCH_CHECK(dp[0]["backend"] == "nccl");
  const auto a = logged_losses(dir + "/one"), b = logged_losses(dir + "/two");
  CATCH_REQUIRE(a.size() == b.size());
  for (size_t i = 0; i < a.size(); ++i) CATCH_CHECK(std::abs(a[i].second - b[i].second) <= 1e-5);
}

CATCH_TEST_CASE("gpu: exact resume in fp32 with deterministic kernels: 40 steps straight == 20, SIGKILL, resume, 20 (bitwise)",
                "[gpu]") {
  if (!have_cuda()) return;
  const std::string a = fresh_dir("gpu_resume_straight"), b = fresh_dir("gpu_resume_killed");
  const std::string ra = write_recipe(a, demo_data_yaml(), kTrain40), rb = write_recipe(b, demo_data_yaml(), kTrain40);
  auto straight = run(ethos_bin() + " train " + ra + kOnGpu);
  CATCH_INFO(straight.output);
  CATCH_REQUIRE(straight.status == 0);
  std::vector<std::string> argv = {ethos_bin(), "train", rb};
  for (const char* o : {"device=cuda", "deterministic=true"}) argv.push_back(o);
  const int pid = spawn(argv, {"ETHOS_DEBUG_STEP_SLEEP_MS=100"}, b + "/first.log");
  CATCH_REQUIRE(pid > 0);
  CATCH_REQUIRE(wait_until([&] { return latest(b + "/run") == "step_000020"; }, 300));
  ::kill(pid, SIGKILL);
  CATCH_REQUIRE(wait_exit(pid) == 128 + SIGKILL);
  CATCH_REQUIRE_FALSE(fs::exists(b + "/run/checkpoints/step_000040"));
  auto resumed = run(ethos_bin() + " train " + rb + kOnGpu);
  CATCH_INFO(resumed.output);
  CATCH_REQUIRE(resumed.status == 0);
  CATCH_CHECK_THAT(resumed.output, Contains("resuming from"));
  CATCH_CHECK(weights_of(a + "/run", 40) == weights_of(b + "/run", 40));
  CATCH_CHECK(optimizer_of(a + "/run", 40) == optimizer_of(b + "/run", 40));
  CATCH_CHECK(logged_losses(a + "/run") == logged_losses(b + "/run"));
}
