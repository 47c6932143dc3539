#include "trainer/trainer.h"

#include <sched.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>
#include <thread>

#include "datasets/base/util.h"
#include "trainer/async_eval.h"
#include "trainer/checkpoint/checkpoint.h"
#include "trainer/checkpoint/run_dir.h"
#include "trainer/checkpoint/stage_cache.h"
#include "trainer/compat.h"
#include "trainer/dist/data_parallel.h"
#include "trainer/dist/process_group.h"
#include "trainer/model/weights.h"
#include "trainer/objective/objective.h"
#include "trainer/optim.h"
#include "trainer/preempt.h"
#include "trainer/tensorboard.h"

namespace fs = std::filesystem;

namespace ethos {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// ---- data ------------------------------------------------------------------------------

// Content hash of every data file the recipe trains on, in stage order.
std::string data_hash(const Recipe& r) {
  Hasher h;
  for (const auto& s : r.stages)
    for (const auto& src : s.data.sources) h.update(src.path).update(hash_file(src.path));
  return h.hex();
}

// ---- logging ---------------------------------------------------------------------------

// An event log (train.jsonl, eval.jsonl) made to agree with the point a run starts from:
// emptied for a fresh run; on resume, events after the resumed step (written by the run
// that died) are dropped, so a resumed run's logs equal an uninterrupted run's.
void rewind_events(const std::string& path, std::optional<int64_t> resume_step) {
  if (!resume_step) {
    write_file_atomic(path, "");
    return;
  }
  if (!fs::exists(path)) return;
  std::istringstream in(read_file(path));
  std::string line, kept;
  while (std::getline(in, line)) {
    auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (!j.is_discarded() && j.value("step", int64_t{0}) <= *resume_step) kept += line + "\n";
  }
  write_file_atomic(path, kept);
}

// train.jsonl, one event per line, flushed as written; written by rank 0 only (an empty path:
// the other ranks, which log nothing).
class MetricsLog {
 public:
  explicit MetricsLog(const std::string& path) : path_(path) {
    if (path.empty()) return;
    out_.open(path, std::ios::app);
    if (!out_) throw Error("cannot append to " + path);
  }
  // A lost line is an error, not a silent gap in the run's record (a full disk stops the run here).
  void write(const nlohmann::json& event) {
    if (!out_.is_open()) return;
    out_ << event.dump() << "\n" << std::flush;
    if (!out_) throw Error("cannot append to " + path_ + " (disk full?): free space and run the same command again to resume");
  }

 private:
  std::string path_;
  std::ofstream out_;
};

std::string format_duration(double s) {
  char buf[32];
  const long t = static_cast<long>(s + 0.5);
  if (t >= 3600) std::snprintf(buf, sizeof buf, "%ldh%02ldm", t / 3600, t / 60 % 60);
  else std::snprintf(buf, sizeof buf, "%ldm%02lds", t / 60, t % 60);
  return buf;
}

// ---- model -----------------------------------------------------------------------------

// cuda: one GPU per local rank (cuda:LOCAL_RANK).
torch::Device resolve_device(const std::string& name, const DistEnv& env) {
  const bool cuda = torch::cuda::is_available();
  if (name == "cuda" && !cuda)
    throw Error("device: cuda, but this build/machine has no CUDA device (LibTorch " + std::string(TORCH_VERSION) +
                "). Set device: cpu, or build against a CUDA LibTorch (Torch_DIR).");
  if (!(name == "cuda" || (name == "auto" && cuda))) return torch::Device(torch::kCPU);
  const int gpus = static_cast<int>(torch::cuda::device_count());
  if (env.local_rank >= gpus)
    throw Error("rank " + std::to_string(env.rank) + " is local rank " + std::to_string(env.local_rank) + " but this node has " +
                std::to_string(gpus) + " GPUs: start at most one rank per GPU (--nproc / --ntasks-per-node)");
  return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(env.local_rank));
}

Llama fresh_model(const Recipe& r, int vocab) {
  ModelConfig cfg = r.model.arch;
  if (cfg.vocab_size == 0) cfg.vocab_size = vocab;
  cfg.validate();
  torch::manual_seed(static_cast<uint64_t>(r.stage_seed(0)));  // the weights are stage 0's starting point
  Llama m(cfg);
  m->init_weights();
  return m;
}


void check_hashes(const TrainerState& s, const std::string& dir, const Recipe& r, int world, const std::string& data,
                  const std::string& tok, bool allow) {
  std::vector<std::string> changed;
  const std::string cfg = config_hash(r, world);
  if (s.config_hash != cfg && s.world_size != world && config_hash(r, static_cast<int>(s.world_size)) == s.config_hash) {
    // Only the number of ranks changed, and with it the global batch.
    const auto& T = r.stages.at(static_cast<size_t>(s.stage_index)).train;
    const int64_t before = s.world_size * T.batch_size * T.grad_accum, now = world * T.batch_size * T.grad_accum;
    changed.push_back("the global batch (ranks x train.batch_size x train.grad_accum: " + std::to_string(s.world_size) +
                      " x " + std::to_string(T.batch_size) + " x " + std::to_string(T.grad_accum) + " = " +
                      std::to_string(before) + " rows when it was written, " + std::to_string(world) + " x " +
                      std::to_string(T.batch_size) + " x " + std::to_string(T.grad_accum) + " = " + std::to_string(now) + " rows" +
                      " now; " +
                      (before % (world * T.grad_accum) == 0
                           ? "keep it with train.batch_size=" + std::to_string(before / (world * T.grad_accum))
                           : "no whole train.batch_size keeps it on " + std::to_string(world) + " ranks") +
                      ")");
  } else if (s.config_hash != cfg) {
    changed.push_back("config (the resolved recipe)");
  }
  if (s.data_hash != data) changed.push_back("data (the content of a data file)");
  if (s.tokenizer_hash != tok) changed.push_back("tokenizer (tokenizer.model or tokenizer.json)");
  if (changed.empty()) return;
  std::string what;
  for (const auto& c : changed) what += (what.empty() ? "" : ", ") + c;
  if (allow) {
    std::cerr << "[ethos] warning: resuming from " << dir << " although these changed: " << what
              << " (allow_changed=true)" << std::endl;
    return;
  }
  throw Error("refusing to resume from " + dir + ": " + what +
              " changed since the checkpoint was written. Start a fresh run (another out_dir, or resume=never), "
              "or pass allow_changed=true to resume anyway.");
}

// ---- one stage -------------------------------------------------------------------------

struct RunContext {
  const Recipe& recipe;
  std::string run_dir, resolved_yaml, tokenizer_path;
  const Tokenizer& tok;
  const ChatTemplate& tmpl;
  MetricsLog& log;
  EvalHook* hook;  // rank 0's; nullptr on the other ranks
  torch::Device device;
  Comm& comm;
  std::string preempt_checkpoint;  // a preemption checkpoint this run resumed from: removed once a later one exists
  bool async_eval = false;     // eval.async with something to evaluate (known on every rank)
  AsyncEval* async = nullptr;  // rank 0's child process, when async_eval
  int eval_threads = 0;
};

void log_eval_done(RunContext& ctx, const std::optional<AsyncEval::Done>& done) {
  if (done) ctx.log.write({{"event", "eval_hook"}, {"step", done->step}, {"seconds", done->seconds}, {"async", true}});
}

// eval.async: the eval still running finishes (and is logged) before the next checkpoint is
// written, so the newest checkpoint is the only one that can lack its eval. A collective.
void finish_eval(RunContext& ctx) {
  if (!ctx.async_eval) return;
  ctx.comm.rank0_only("rank 0 finishes the previous checkpoint's eval", [&] {
    if (!ctx.async || !ctx.async->busy()) return;
    const auto t = Clock::now();
    log_eval_done(ctx, ctx.async->wait());
    ctx.log.write({{"event", "eval_wait"}, {"step", ctx.async->step()}, {"seconds", seconds_since(t)}});
  });
}

// The eval hook after a checkpoint; its completion is logged as an "eval_hook" event, so a
// resume can tell whether the checkpoint it starts from was evaluated. With eval.async it
// starts the child process and returns (rank 0; finish_eval ran before the checkpoint).
void run_eval_hook(RunContext& ctx, Llama& model, const std::string& stage, int64_t step, const std::string& dir,
                   bool stage_final) {
  if (!ctx.hook) return;
  if (ctx.async) {  // (submit refuses a second child: finish_eval collected the last one)
    ctx.async->submit(step, {"--run", ctx.run_dir, "--checkpoint", dir, "--stage", stage, "--step", std::to_string(step),
                             "--stage-final", stage_final ? "1" : "0", "--threads", std::to_string(ctx.eval_threads)});
    return;
  }
  const auto t_eval = Clock::now();
  const std::string rng = torch_rng_state();  // eval must not shift the training RNG stream
  model->eval();
  ctx.hook->after_checkpoint({dir, ctx.run_dir, stage, step, ctx.recipe.seed, ctx.recipe.name, stage_final,
                             ctx.tmpl.format()}, model,
                             ctx.tok);
  model->train();
  set_torch_rng_state(rng);
  ctx.log.write({{"event", "eval_hook"}, {"step", step}, {"seconds", seconds_since(t_eval)}});
}

// Whether an event log holds {"event": event, "step": step}.
bool has_event(const std::string& path, const std::string& event, int64_t step) {
  if (!fs::exists(path)) return false;
  std::istringstream in(read_file(path));
  std::string line;
  while (std::getline(in, line)) {
    auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (!j.is_discarded() && j.value("event", "") == event && j.value("step", int64_t{-1}) == step) return true;
  }
  return false;
}

struct StepStats {
  double loss, lr, grad_norm;
  int64_t tokens;  // real tokens since the last log line
  double seconds, eta_seconds;
};

// One train.jsonl event and one live progress line (redrawn in place on a terminal).
// `metrics` (the objective's extra fields) are added to the event; `extra` to the progress line.
void log_step(RunContext& ctx, const TrainerState& state, const StepStats& s, const nlohmann::json& metrics,
              const std::string& extra) {
  const double tps = s.tokens / std::max(s.seconds, 1e-9);
  nlohmann::json event = {{"event", "train"}, {"step", state.global_step}, {"stage", state.stage_name},
                          {"stage_step", state.stage_step}, {"loss", s.loss}, {"lr", s.lr}, {"grad_norm", s.grad_norm},
                          {"tokens", s.tokens}, {"tokens_per_s", tps}, {"seconds", s.seconds}};
  if (metrics.is_object()) event.update(metrics);
  ctx.log.write(event);
  char line[320];
  std::snprintf(line, sizeof line, "[%s] step %lld/%lld  loss %.4f  %s%slr %.2e  tok/s %.0f  ETA %s",
                state.stage_name.c_str(), static_cast<long long>(state.stage_step),
                static_cast<long long>(state.stage_steps), s.loss, extra.c_str(), extra.empty() ? "" : "  ", s.lr, tps,
                format_duration(s.eta_seconds).c_str());
  const bool tty = ::isatty(STDERR_FILENO);
  std::cerr << (tty ? "\r" : "") << line << (tty ? "\033[K" : "\n") << std::flush;
}

// A checkpoint of every rank's state: the weights (the same on every rank) and trainer state
// from rank 0; the optimizer state whole from rank 0 (under ZeRO-1 gathered first), or, with
// dist.checkpoint: sharded, one shard per rank written by its owner plus rank 0's index.
std::string save_checkpoint_all_ranks(RunContext& ctx, TrainerState& state, Llama& model, DataParallel& dp,
                                      int64_t keep_last) {
  Comm& comm = ctx.comm;
  state.world_size = comm.world();
  const std::string dir = (fs::path(ctx.run_dir) / "checkpoints" / checkpoint_name(state.global_step)).string();
  OptimizerCheckpoint opt;
  opt.step_count = dp.step_count();
  if (dp.sharded() && ctx.recipe.dist.checkpoint == "sharded") {
    const std::string tmp = checkpoint_tmp_dir(ctx.run_dir, state.global_step);
    comm.rank0_only("rank 0 prepares the checkpoint directory", [&] { prepare_checkpoint_tmp(ctx.run_dir, state.global_step); });
    write_optimizer_shard(tmp, comm.rank(), comm.world(), dp.shard_state(), dp.step_count());
    fsync_path(tmp);
    comm.barrier("every rank wrote its optimizer shard");
    comm.rank0_only("rank 0 publishes the checkpoint", [&] {
      opt.shard_index = optimizer_shard_index(comm.world(), dp.step_count(), model->trainable_parameters());
      save_checkpoint(ctx.run_dir, state, model, &opt, ctx.tokenizer_path, ctx.resolved_yaml, keep_last, /*keep_tmp=*/true);
    });
    return dir;
  }
  opt.tensors = dp.full_state();  // a collective under ZeRO-1
  comm.rank0_only("rank 0 writes the checkpoint", [&] {
    save_checkpoint(ctx.run_dir, state, model, &opt, ctx.tokenizer_path, ctx.resolved_yaml, keep_last);
  });
  return dir;
}

// The signal that asked this job to stop, agreed by every rank at a step boundary (one sum over
// ranks: a signal that reached only some ranks stops all of them at the same step); 0: go on.
int agreed_stop(Comm& comm) {
  const int sig = stop_requested();
  if (comm.world() == 1) return sig;
  std::vector<double> v = {sig != 0 ? 1.0 : 0.0, static_cast<double>(sig)};
  comm.sum(v);
  if (v[0] == 0) return 0;
  return sig != 0 ? sig : static_cast<int>(v[1] / v[0] + 0.5);
}

// Logs the stop and leaves the run (train() records it in status.json; the CLI exits 75). With
// eval.async the eval still running (of the newest checkpoint) is let finish first, so its result
// is kept; the child ignores the stop signal. A collective, like the stop itself.
[[noreturn]] void stop_run(RunContext& ctx, int sig, int64_t step, const std::string& dir, const std::string& where) {
  if (ctx.async_eval)
    ctx.comm.rank0_only("rank 0 finishes the eval before stopping", [&] {
      if (!ctx.async || !ctx.async->busy()) return;
      std::cerr << "[ethos] waiting for the eval of step " << ctx.async->step() << " before stopping" << std::endl;
      try {
        log_eval_done(ctx, ctx.async->wait());
      } catch (const std::exception& e) {  // the stop is what the caller must see; the resumed run re-evaluates
        std::cerr << "[ethos] " << e.what() << std::endl;
      }
    });
  ctx.log.write({{"event", "preempted"}, {"step", step}, {"signal", signal_name(sig)}, {"dir", dir}});
  throw Preempted("stopped by " + signal_name(sig) + " " + where + " (step " + std::to_string(step) + ", " + dir +
                      "); run the same command again (resume: auto) to continue",
                  sig, step);
}

// A preemption checkpoint the run resumed from, removed once `newer` exists (rank 0).
void drop_preempt_checkpoint(RunContext& ctx, const std::string& newer) {
  if (!ctx.preempt_checkpoint.empty() && ctx.preempt_checkpoint != newer) fs::remove_all(ctx.preempt_checkpoint);
}

// Trains one stage from `state` (stage_step > 0: resuming from `resume_dir`). Returns the
// last loss; state.global_step / stage_step advance as steps are taken.
double train_stage(RunContext& ctx, const StageSection& stage, Llama& model, TrainerState& state,
                   const std::string& resume_dir) {
  const TrainSection& T = stage.train;
  const bool bf16 = T.precision == "bf16";
  if (bf16 && !compat::autocast_supported(ctx.device))
    throw Error("stage '" + stage.name + "': train.precision=bf16 needs CUDA and LibTorch 2.x (this run: " +
                ctx.device.str() + ", LibTorch " + std::string(TORCH_VERSION) + "). Set train.precision: fp32.");
  const bool resuming = state.stage_step > 0;
  auto objective = make_objective({ctx.recipe, stage, state.stage_index, ctx.tmpl, ctx.tok.content_hash(), ctx.run_dir,
                                   ctx.device, resuming, ctx.comm}, model);
  auto params = model->trainable_parameters();  // the adapters only, under LoRA
  // The optimizer behind data parallelism (one rank: plain AdamW).
  DataParallel dp(ctx.comm, params, default_decay_mask(params, T.decay_norms_biases_embeddings),
                  {T.lr, T.beta1, T.beta2, T.eps, T.weight_decay}, {ctx.recipe.dist.bucket_mb, ctx.recipe.dist.zero == 1});
  if (resuming) {  // optimizer moments (whole, or reassembled from another world size's shards), data cursor, RNG
    dp.load_full_state(read_optimizer_state(resume_dir), state.stage_step);
    objective->restore(state.data_cursor);
    set_torch_rng_state(state.torch_rng);
  }
  dp.broadcast_parameters();  // every rank starts from rank 0's weights
  if (ctx.comm.world() > 1)
    ctx.log.write({{"event", "data_parallel"}, {"step", state.global_step}, {"stage", stage.name},
                   {"ranks", ctx.comm.world()}, {"backend", ctx.comm.backend()}, {"buckets", dp.buckets()},
                   {"bucket_mb", ctx.recipe.dist.bucket_mb}, {"zero", ctx.recipe.dist.zero},
                   {"global_batch", ctx.comm.world() * T.batch_size * T.grad_accum}});
  const ScheduleOptions sched{T.schedule, T.warmup_steps, T.steps, T.min_lr_ratio};
  model->train();
  StepResult result;
  auto t_log = Clock::now();
  int64_t tokens_since_log = 0;
  const auto t_stage = Clock::now();
  const int64_t first_step = state.stage_step;

  for (int64_t step = state.stage_step; step < T.steps; ++step) {
    const double lr = T.lr * lr_multiplier(sched, step);
    // 1. batch: grad_accum micro-batches of batch_size rows (SFT) or pairs (preference)
    objective->next_step(T.grad_accum, T.batch_size);
    // 2. forward -> loss -> backward, per micro-batch; the last one's backward launches the
    //    gradient buckets' all-reduce as they fill
    for (int64_t i = 0; i < T.grad_accum; ++i) {
      torch::Tensor loss;
      {
        compat::AutocastBf16 autocast(bf16);
        loss = objective->micro_loss(model, i);
      }
      dp.arm(i + 1 == T.grad_accum);
      loss.backward();
    }
    // 3. gradient sync: wait for the buckets still in flight
    dp.finish();
    result = objective->finish_step();  // loss and metrics summed over ranks
    tokens_since_log += result.tokens;
    if (!std::isfinite(result.loss))
      throw Error("stage '" + stage.name + "' step " + std::to_string(step + 1) + ": loss is " + std::to_string(result.loss) +
                  ". Stopped before updating the weights; the last good checkpoint in " + ctx.run_dir +
                  "/checkpoints is intact. Lower train.lr or raise train.warmup_steps, then run again.");
    // 4. clip, 5. step
    const double grad_norm = dp.clip(T.grad_clip);
    dp.step(lr);
    dp.zero_grad();
    ++state.stage_step;
    ++state.global_step;
    debug_sleep("ETHOS_DEBUG_STEP_SLEEP_MS");
    // 6. log (rank 0)
    if (ctx.comm.main() && (state.stage_step % T.log_every == 0 || state.stage_step == T.steps)) {
      const double dt = seconds_since(t_log);
      const double eta = seconds_since(t_stage) / double(state.stage_step - first_step) * double(T.steps - state.stage_step);
      nlohmann::json metrics = result.metrics;
      if (ctx.comm.world() > 1) {
        if (!metrics.is_object()) metrics = nlohmann::json::object();
        metrics["ranks"] = ctx.comm.world();
        metrics["comm_wait_s"] = dp.comm_wait_seconds();  // gradient sync not hidden behind backward
        metrics["buckets_in_backward"] = dp.buckets_launched_in_backward();
      }
      log_step(ctx, state, {result.loss, lr, grad_norm, tokens_since_log, dt, eta}, metrics,
               objective->progress(result));
      t_log = Clock::now();
      tokens_since_log = 0;
    }
    if (ctx.async) log_eval_done(ctx, ctx.async->poll());  // an async eval that finished (a failed one stops the run)
    // 7. checkpoint, then the eval hook
    //    (a stop request skips the eval: the resumed run evaluates this checkpoint first; at the
    //    stage's last step it waits for the stage boundary, where train() honours it)
    const bool scheduled = state.stage_step % T.checkpoint_every == 0 || state.stage_step == T.steps;
    const int stop = state.stage_step < T.steps ? agreed_stop(ctx.comm) : 0;
    if (scheduled) {
      if (ctx.comm.main() && ::isatty(STDERR_FILENO)) std::cerr << "\n";
      finish_eval(ctx);  // logged as eval_wait, not as the checkpoint's time
      const auto t_ckpt = Clock::now();
      state.data_cursor = objective->cursor();
      state.torch_rng = torch_rng_state();
      const std::string dir = save_checkpoint_all_ranks(ctx, state, model, dp, T.keep_last);
      ctx.comm.rank0_only("rank 0 evaluates the checkpoint", [&] {
        ctx.log.write({{"event", "checkpoint"}, {"step", state.global_step}, {"dir", dir}, {"seconds", seconds_since(t_ckpt)}});
        std::cerr << "[" << stage.name << "] checkpoint " << dir << std::endl;
        for (const auto& e : objective->checkpoint_events(model, state.global_step)) ctx.log.write(e);
        if (!stop) run_eval_hook(ctx, model, stage.name, state.global_step, dir, state.stage_step == T.steps);
        if (ctx.recipe.log.tensorboard) write_tensorboard(ctx.run_dir);
        drop_preempt_checkpoint(ctx, dir);
      });
      ctx.preempt_checkpoint.clear();
      t_log = Clock::now();
    }
    // 8. a stop request (SIGTERM, the warning signal): checkpoint unless this step just did, leave
    if (stop) {
      std::string dir = (fs::path(ctx.run_dir) / "checkpoints" / checkpoint_name(state.global_step)).string();
      if (!scheduled) {
        state.data_cursor = objective->cursor();
        state.torch_rng = torch_rng_state();
        state.preempt = true;
        finish_eval(ctx);
        dir = save_checkpoint_all_ranks(ctx, state, model, dp, T.keep_last);
        state.preempt = false;
        ctx.comm.rank0_only("rank 0 records the stop", [&] { drop_preempt_checkpoint(ctx, dir); });
      }
      stop_run(ctx, stop, state.global_step, dir, "during stage '" + stage.name + "'");
    }
  }
  return result.loss;
}

}  // namespace

void check_vocab(const Llama& m, const Tokenizer& tok, const std::string& tok_path) {
  if (tok.vocab_size() > m->config().vocab_size)
    throw Error("tokenizer/model vocabulary mismatch: " + tok_path + " has " + std::to_string(tok.vocab_size()) +
                " pieces but the model's vocab_size is " + std::to_string(m->config().vocab_size) +
                ". Use the tokenizer the model was trained with, or set model.arch.vocab_size: 0 to take the "
                "tokenizer's size for a fresh model.");
}

int available_threads() {
  cpu_set_t set;
  const int n = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : static_cast<int>(std::thread::hardware_concurrency());
  int local_ranks = 1;
  try {
    local_ranks = dist_env().local_world_size;
  } catch (const Error&) {  // a bad environment is reported where the job is joined
  }
  return std::max(n / std::max(local_ranks, 1), 1);
}

int configure_threads(int64_t requested) {
  const int n = requested > 0 ? static_cast<int>(requested) : available_threads();
  torch::set_num_threads(n);  // libtorch's default here is ONE thread (README.md, stack note 2)
  return n;
}

namespace {

TrainResult train_locked(const Recipe& r, EvalHook* hook, const TrainOptions& opt, const DistEnv& env);

// status.json after a stop, best effort: on a full disk this write fails too, and the error the
// user must see is the one that stopped the run, not this one.
void record_stop(const std::string& run_dir, const std::string& state, int64_t step, const nlohmann::json& extra) {
  try {
    write_run_status(run_dir, state, step, extra);
  } catch (const std::exception& e) {
    std::cerr << "[ethos] could not record the stop in status.json: " << e.what() << std::endl;
  }
}

}  // namespace

TrainResult train(const Recipe& r, EvalHook* hook, const TrainOptions& opt) {
  // The job's ranks (ethos launch, Slurm, torchrun variables); one process: world size 1.
  const DistEnv env = dist_env();
  install_stop_handlers(parse_stop_signal(r.preempt_signal, "preempt_signal"));
  if (env.rank != 0) return train_locked(r, hook, opt, env);
  // Rank 0 holds the run directory for the whole run, and says what became of it.
  const std::string run_dir = r.run_dir();
  fs::create_directories(run_dir);
  RunLock lock(run_dir);
  record_launch(run_dir);
  write_run_status(run_dir, "running", 0);
  try {
    TrainResult res = train_locked(r, hook, opt, env);
    write_run_status(run_dir, "done", res.global_step, {{"final_checkpoint", res.final_checkpoint}});
    return res;
  } catch (const Preempted& p) {
    record_stop(run_dir, "preempted", p.step, {{"signal", signal_name(p.signal)}, {"message", p.what()}});
    throw;
  } catch (const std::exception& e) {
    record_stop(run_dir, "failed", -1, {{"error", e.what()}});
    throw;
  }
}

namespace {

TrainResult train_locked(const Recipe& r, EvalHook* hook, const TrainOptions& opt, const DistEnv& env) {
  // eval.async splits the cores: the eval process gets eval.threads (0: half), training the rest
  // unless `threads` says otherwise. Training's thread count is what its numbers depend on.
  const bool async_eval = r.eval.async && (!r.eval.suites.empty() || !r.eval.heldout.empty());
  int eval_threads = 0, train_threads = static_cast<int>(r.threads);
  if (async_eval) {
    const int cores = available_threads();
    eval_threads = r.eval.threads > 0 ? static_cast<int>(r.eval.threads) : std::max(1, cores / 2);
    if (train_threads <= 0) train_threads = std::max(1, cores - eval_threads);
  }
  const int threads = configure_threads(train_threads);
  const torch::Device device = resolve_device(r.device, env);
  if (r.deterministic && device.is_cuda()) compat::use_deterministic_cuda();
  Comm& comm = job_comm(env, device, {r.dist.backend, r.dist.timeout_s});
  const bool main = comm.main();
  if (!main) hook = nullptr;  // rank 0 evaluates
  if (async_eval && hook && opt.eval_exe.empty())
    throw Error("eval.async: true starts `ethos eval-checkpoint` processes, but this caller gave no ethos executable "
                "(TrainOptions::eval_exe): run the recipe with `ethos train` or `ethos ablate`, or set eval.async: false");
  std::optional<AsyncEval> async;  // declared before ctx: an error unwinds ctx first, then kills the child
  if (async_eval && hook) async.emplace(std::vector<std::string>{opt.eval_exe, "eval-checkpoint"});
  const std::string run_dir = r.run_dir();
  fs::create_directories(run_dir);
  const std::string resolved = to_yaml(r);
  std::string tok_path;  // rank 0 trains the tokenizer if needed, then the others find it
  comm.rank0_first("rank 0 prepares the tokenizer", [&] { tok_path = prepare_tokenizer(r.tokenizer, threads); });
  auto tok = load_tokenizer(tok_path);
  ChatTemplate tmpl(*tok, ChatTemplate::resolve(r.chat_template, *tok, r.model.from));
  const std::string cfg_hash = config_hash(r, comm.world()), dat_hash = data_hash(r);

  // Where to start: the newest valid checkpoint (resume: auto), a given one, or nothing; rank
  // 0 decides, so every rank resumes from the same one.
  std::optional<TrainerState> resume;
  std::string resume_dir;
  if (main) {
    if (r.resume == "auto") {
      if (auto d = find_latest_checkpoint(run_dir)) resume_dir = *d;
    } else if (r.resume != "never") {
      auto problems = checkpoint_problems(r.resume);
      if (!problems.empty()) throw Error("cannot resume from " + r.resume + ": " + problems.front());
      resume_dir = r.resume;
    }
  }
  resume_dir = comm.share("resume_dir", resume_dir);
  if (!resume_dir.empty()) {
    resume = read_trainer_state(resume_dir);
    check_hashes(*resume, resume_dir, r, comm.world(), dat_hash, tok->content_hash(), r.allow_changed);
    if (resume->stage_index >= static_cast<int64_t>(r.stages.size()))
      throw Error(resume_dir + " is from stage " + std::to_string(resume->stage_index) + " but the recipe has " +
                  std::to_string(r.stages.size()) + " stages");
    if (main) {
      std::cerr << "[ethos] resuming from " << resume_dir << " (step " << resume->global_step << ")";
      if (resume->world_size != comm.world())
        std::cerr << "; it was written by " << resume->world_size << " rank(s), this run has " << comm.world()
                  << ": the sample order continues, the global batch is now " << comm.world() << " x train.batch_size x train.grad_accum";
      std::cerr << std::endl;
    }
  }
  const fs::path ckpt_root = fs::path(run_dir) / "checkpoints";
  if (!resume && fs::exists(ckpt_root)) {  // never mix a fresh run into an old one's checkpoints
    for (const auto& e : fs::directory_iterator(ckpt_root))
      if (e.path().filename().string().rfind("step_", 0) == 0)
        throw Error(run_dir + " already holds checkpoints of another run (" + e.path().filename().string() +
                    ") and none will be resumed (resume=" + r.resume + "). Use resume=auto to continue it, or "
                    "another out_dir / seed, or delete the directory to start over.");
  }
  const auto resume_step = resume ? std::optional<int64_t>(resume->global_step) : std::nullopt;
  // A run that died between writing the checkpoint and finishing its eval: drop that
  // checkpoint's partial eval results and evaluate it again below.
  // A preemption checkpoint (off the checkpoint_every schedule) is never evaluated.
  const bool reeval = comm.share("reeval", resume && hook && !resume->preempt &&
                                                   !has_event(run_dir + "/train.jsonl", "eval_hook", resume->global_step)
                                               ? "1" : "0") == "1";
  if (main) {
    write_file_atomic(run_dir + "/config.yaml", resolved);
    rewind_events(run_dir + "/train.jsonl", resume_step);
    rewind_events(run_dir + "/eval.jsonl", reeval ? std::optional<int64_t>(*resume_step - 1) : resume_step);
  }
  MetricsLog log(main ? run_dir + "/train.jsonl" : "");
  RunContext ctx{r, run_dir, resolved, tok_path, *tok, tmpl, log, hook, device, comm,
                 resume && resume->preempt ? resume_dir : std::string(), async_eval, async ? &*async : nullptr,
                 eval_threads};
  if (main)
    std::cerr << "[ethos] run " << run_dir << " | " << device.str() << ", " << threads << " threads"
              << (async ? " + " + std::to_string(eval_threads) + " for the async eval" : "")
              << (comm.world() > 1 ? " x " + std::to_string(comm.world()) + " ranks (" + comm.backend() + ")" : "")
              << " | vocab " << tok->vocab_size() << std::endl;

  TrainResult result;
  result.run_dir = run_dir;
  Llama model{nullptr};
  TrainerState state;
  state.config_hash = cfg_hash;
  state.data_hash = dat_hash;
  state.tokenizer_hash = tok->content_hash();
  for (size_t si = 0; si < r.stages.size(); ++si) {
    const StageSection& stage = r.stages[si];
    if (opt.shared_only && !stage.share) break;  // the shared stages lead: the rest is the cells' work
    const bool resume_here = resume && resume->stage_index == static_cast<int64_t>(si);
    if (resume && static_cast<int64_t>(si) < resume->stage_index) {  // finished before the checkpoint
      state.global_step += stage.train.steps;
      continue;
    }
    // The stage's starting weights.
    std::string base_dir;  // where the stage's starting weights came from (a LoRA adapter's base)
    const torch::ScalarType dtype = model_dtype(r.model.dtype, "model.dtype");
    if (resume_here) model = load_model(resume_dir, dtype);
    else if (!stage.init.empty()) model = load_model(base_dir = stage.init, dtype);
    else if (!model) model = r.model.from.empty() ? fresh_model(r, tok->vocab_size()) : load_model(base_dir = r.model.from, dtype);
    if (r.model.lora.enabled() && !model->has_lora()) {
      // Adapters on a frozen base; their A matrices are drawn from the stage's seed.
      if (base_dir.empty())
        throw Error("stage '" + stage.name + "': model.lora needs a base model on disk (model.from or the stage's init), "
                    "since LoRA checkpoints hold the adapters only");
      torch::manual_seed(static_cast<uint64_t>(r.stage_seed(si)));
      model->add_lora(r.model.lora, base_dir);
    }
    check_vocab(model, *tok, tok_path);
    model->to(device);
    if (resume_here && reeval)
      comm.rank0_only("rank 0 evaluates the checkpoint", [&] {
        run_eval_hook(ctx, model, stage.name, resume->global_step, resume_dir, resume->stage_step == stage.train.steps);
      });
    state.stage_index = static_cast<int64_t>(si);
    state.stage_name = stage.name;
    state.stage_steps = stage.train.steps;
    state.stage_step = 0;
    if (resume_here) {
      state.global_step = resume->global_step;
      state.stage_step = resume->stage_step;
      state.data_cursor = resume->data_cursor;
      state.torch_rng = resume->torch_rng;
      result.final_checkpoint = resume_dir;
    }
    if (state.stage_step < stage.train.steps) {
      std::string share_key;  // a shared stage already trained by another run with the same inputs: reuse it
      if (stage.share && state.stage_step == 0) {
        share_key = shared_stage_key(r, si, model, tok->content_hash(), comm.world());
        std::string cached;  // rank 0 looks, every rank follows
        if (main)
          if (auto c = find_shared_stage(r.cache_dir, share_key)) cached = *c;
        cached = comm.share("shared_stage", cached);
        if (!cached.empty()) {
          finish_eval(ctx);
          load_weights(model, cached);
          state.global_step += stage.train.steps;
          if (opt.shared_only) {  // already trained: nothing to write for this stage
            if (main) std::cerr << "[" << stage.name << "] already in the stage cache: " << cached << std::endl;
            continue;
          }
          state.stage_step = stage.train.steps;
          state.data_cursor = nullptr;
          state.torch_rng = torch_rng_state();
          state.world_size = comm.world();
          result.final_checkpoint = (fs::path(run_dir) / "checkpoints" / checkpoint_name(state.global_step)).string();
          comm.rank0_only("rank 0 evaluates the checkpoint", [&] {
            save_checkpoint(run_dir, state, model, nullptr, tok_path, resolved, stage.train.keep_last);
            log.write({{"event", "stage_reused"}, {"step", state.global_step}, {"stage", stage.name}, {"from", cached}});
            std::cerr << "[" << stage.name << "] reused the shared stage " << cached << std::endl;
            run_eval_hook(ctx, model, stage.name, state.global_step, result.final_checkpoint, true);
          });
          continue;
        }
      }
      result.final_loss = train_stage(ctx, stage, model, state, resume_dir);
      result.final_checkpoint = (fs::path(run_dir) / "checkpoints" / checkpoint_name(state.global_step)).string();
      if (!share_key.empty())
        comm.rank0_only("rank 0 stores the shared stage", [&] {
          store_shared_stage(r.cache_dir, share_key, model,
                             {{"key", share_key}, {"stage", stage.name}, {"steps", stage.train.steps},
                              {"recipe", r.name}, {"seed", r.seed}, {"final_loss", result.final_loss}});
        });
      // A stop that came during the stage's last step: the stage is complete (checkpoint, eval,
      // shared-stage cache); stop before the next one, which the resumed run starts.
      const bool more = si + 1 < r.stages.size() && !(opt.shared_only && !r.stages[si + 1].share);
      if (const int sig = more ? agreed_stop(comm) : 0)
        stop_run(ctx, sig, state.global_step, result.final_checkpoint, "at the end of stage '" + stage.name + "'");
    }
  }
  result.global_step = state.global_step;
  finish_eval(ctx);  // the run is done when its last checkpoint is scored
  comm.barrier("the end of training");  // rank 0 serves the rendezvous store: nobody leaves early
  if (main && r.log.tensorboard) write_tensorboard(run_dir);
  if (main) std::cerr << "[ethos] done: " << result.final_checkpoint << std::endl;
  return result;
}

}  // namespace

}  // namespace ethos
