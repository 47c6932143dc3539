// ethos: one binary, subcommands. Exit codes: 0 success, 1 a user-facing error (bad input,
// bad config, refused resume), 2 an internal error, 64 bad command-line usage, 75 stopped by
// SIGTERM or the preemption signal after writing a checkpoint (run the same command to resume).
#include <CLI/CLI.hpp>
#include <torch/torch.h>

#include <csignal>
#include <filesystem>
#include <iostream>

#include "datasets/chat_template.h"
#include "datasets/base/util.h"
#include "datasets/world/generate.h"
#include "launch/ablate.h"
#include "eval/report/report.h"
#include "eval/score/suite_hook.h"
#include "trainer/checkpoint/checkpoint.h"
#include "trainer/config.h"
#include "trainer/dist/env.h"
#include "launch/launcher.h"
#include "launch/slurm.h"
#include "trainer/preempt.h"
#include "trainer/tensorboard.h"
#include "trainer/model/generate.h"
#include "trainer/model/inference.h"
#include "trainer/model/weights.h"
#include "trainer/trainer.h"

namespace fs = std::filesystem;
using namespace ethos;

namespace {

int cmd_train(const std::string& recipe_path, const std::vector<std::string>& overrides, const TrainOptions& opt) {
  Recipe r = load_recipe(recipe_path, overrides);
  EvalHookList hooks;  // after every checkpoint: held-out loss, then the scenario suites
  add_recipe_hooks(hooks, r);
  TrainResult res = train(r, hooks.empty() ? nullptr : &hooks, opt);
  if (dist_env().rank == 0)
    std::cout << "run: " << res.run_dir << "\nfinal checkpoint: " << res.final_checkpoint << std::endl;
  return 0;
}

// ethos launch --nproc N -- SUBCOMMAND ...: N ranks of this binary on this machine.
int cmd_launch(LaunchOptions o, const std::vector<std::string>& rest) {
  if (rest.empty()) throw Error("ethos launch: nothing to run; usage: ethos launch --nproc 2 -- train RECIPE [overrides]");
  if (rest.front() == "launch") throw Error("ethos launch: the command to launch cannot be launch itself");
  std::error_code ec;
  const auto self = fs::read_symlink("/proc/self/exe", ec);
  o.command = {ec ? std::string("ethos") : self.string()};
  o.command.insert(o.command.end(), rest.begin(), rest.end());
  return launch(o);
}

int cmd_tokenizer_train(TokenizerTrainOptions opt, bool no_chat_tokens) {
  if (!no_chat_tokens) {
    auto specials = ChatTemplate::special_tokens();
    opt.user_defined_symbols.insert(opt.user_defined_symbols.begin(), specials.begin(), specials.end());
  }
  SentencePieceTokenizer::train(opt);
  auto tok = SentencePieceTokenizer::load(opt.model_path);
  std::cout << "tokenizer: " << opt.model_path << " (" << tok->vocab_size() << " pieces)" << std::endl;
  return 0;
}

struct GenerateArgs {
  std::string checkpoint, prompt, system, tokenizer, chat_template = "auto", dtype;
  bool raw = false;
  int max_new_tokens = 64, samples = 1;
  double temperature = 0, top_p = 1;
  uint64_t seed = 0;
  int threads = 0;
};

int cmd_generate(const GenerateArgs& a) {
  configure_threads(a.threads);
  InferenceModel loaded = load_for_inference(a.checkpoint, a.tokenizer, a.dtype);
  Llama& model = loaded.model;
  const Tokenizer* tok = loaded.tokenizer.get();
  std::vector<int> prompt;
  SampleOptions opt;
  opt.max_new_tokens = a.max_new_tokens;
  opt.temperature = a.temperature;
  opt.top_p = a.top_p;
  if (a.raw) {  // plain continuation of text
    if (tok->bos_id() >= 0) prompt.push_back(tok->bos_id());
    auto ids = tok->encode(a.prompt);
    prompt.insert(prompt.end(), ids.begin(), ids.end());
    if (tok->eos_id() >= 0) opt.stop_ids.push_back(tok->eos_id());
  } else {  // a chat turn through the training template
    ChatTemplate tmpl(*tok, inference_chat_template(a.checkpoint, *tok, a.chat_template));
    std::vector<Message> context;
    if (!a.system.empty()) context.push_back({"system", a.system});
    context.push_back({"user", a.prompt});
    prompt = tmpl.render_prompt(context);
    opt.stop_ids.push_back(tmpl.end_id());
  }
  for (int s = 0; s < a.samples; ++s) {
    opt.seed = a.seed + static_cast<uint64_t>(s);
    auto out = generate(model, {prompt}, opt)[0];
    if (!out.empty() && std::find(opt.stop_ids.begin(), opt.stop_ids.end(), out.back()) != opt.stop_ids.end())
      out.pop_back();
    std::cout << tok->decode(out) << std::endl;
  }
  return 0;
}

// In a multi-rank job, "rank 1/2: " before an error that does not already name its rank.
std::string rank_label(const std::string& message) {
  try {
    const DistEnv env = dist_env();
    if (env.world_size > 1 && message.rfind("rank ", 0) != 0)
      return "rank " + std::to_string(env.rank) + "/" + std::to_string(env.world_size) + ": ";
  } catch (const Error&) {  // the environment itself is what the error is about
  }
  return "";
}

// ethos export [--merge] CHECKPOINT --out DIR: a Hugging Face model directory (config.json,
// safetensors, tokenizer.model or tokenizer.json) from a checkpoint. A LoRA checkpoint needs --merge: its adapters
// are folded into the base (W + alpha/r B A); without adapters the weights are copied as they are.
// The weights are written in the dtype the checkpoint's model was held in (its recipe's
// model.dtype: a bf16 base stays bf16), or in --dtype.
int cmd_export(const std::string& checkpoint, const std::string& out, bool merge, const std::string& dtype) {
  if (fs::exists(out) && !fs::is_empty(out))
    throw Error("ethos export: " + out + " already exists and is not empty; choose a new --out directory");
  Llama model = load_model(checkpoint, inference_dtype(checkpoint, dtype));
  if (model->has_lora() && !merge)
    throw Error("ethos export: " + checkpoint + " holds LoRA adapters (adapter_config.json, which peft loads as they are); "
                "pass --merge to write the base with the adapters merged into its weights");
  model->merge_lora();
  fs::create_directories(out);
  save_model(model, out);
  if (const std::string tok = find_tokenizer_file(checkpoint); !tok.empty())
    for (const auto& [src, dst] : tokenizer_files(tok)) fs::copy_file(src, fs::path(out) / dst, fs::copy_options::overwrite_existing);
  std::cout << "exported " << checkpoint << " to " << out << (merge ? " (LoRA adapters merged)" : "") << std::endl;
  return 0;
}

// ethos tensorboard PATH: TensorBoard event files for a run (a directory with train.jsonl) or for
// every run under PATH, from their JSONL logs; then `tensorboard --logdir PATH`.
int cmd_tensorboard(const std::string& path) {
  std::vector<std::string> runs;
  if (fs::exists(fs::path(path) / "train.jsonl")) runs.push_back(path);
  else if (fs::is_directory(path))
    for (const auto& e : fs::recursive_directory_iterator(path, fs::directory_options::skip_permission_denied))
      if (e.is_regular_file() && e.path().filename() == "train.jsonl") runs.push_back(e.path().parent_path().string());
  if (runs.empty())
    throw Error("ethos tensorboard: no run under " + path + " (a run directory holds train.jsonl); give a run directory "
                "or a directory of runs");
  std::sort(runs.begin(), runs.end());
  for (const auto& r : runs) std::cout << write_tensorboard(r) << "\n";
  return 0;
}

// ethos checkpoint verify PATH: every file of a checkpoint (or of each checkpoint of a run)
// against the sizes and checksums recorded when it was written.
int cmd_checkpoint_verify(const std::string& path) {
  std::vector<fs::path> dirs;
  if (fs::exists(fs::path(path) / "trainer_state.json")) {
    dirs.push_back(path);
  } else if (fs::is_directory(fs::path(path) / "checkpoints")) {
    for (const auto& e : fs::directory_iterator(fs::path(path) / "checkpoints"))
      if (e.is_directory() && e.path().filename().string().rfind("step_", 0) == 0) dirs.push_back(e.path());
    std::sort(dirs.begin(), dirs.end());
  } else {
    throw Error(path + " is neither a checkpoint (no trainer_state.json) nor a run directory (no checkpoints/)");
  }
  if (dirs.empty()) throw Error(path + "/checkpoints holds no step_* checkpoint");
  int bad = 0;
  for (const auto& d : dirs) {
    const auto problems = checkpoint_problems(d.string());
    bad += !problems.empty();
    std::cout << (problems.empty() ? "ok       " : "DAMAGED  ") << d.string() << "\n";
    for (const auto& p : problems) std::cout << "         " << p << "\n";
  }
  if (dirs.size() > 1) {
    const auto chosen = find_latest_checkpoint(path);
    std::cout << "resume: auto would start from " << (chosen ? *chosen : std::string("nothing (no valid checkpoint)")) << "\n";
  }
  std::cout << dirs.size() - static_cast<size_t>(bad) << " of " << dirs.size() << " checkpoint(s) verified" << std::endl;
  return bad == 0 ? 0 : 1;
}

int cmd_version() {
  std::cout << "ethos " << "0.1.0" << "\nlibtorch " << TORCH_VERSION << "\nintra-op threads available "
            << configure_threads(0) << "\n"
            << at::get_parallel_info();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ethos: principle-based alignment training (SFT, recipes, checkpoints)"};
  app.require_subcommand(1);

  std::string recipe;
  std::vector<std::string> overrides;
  auto* train = app.add_subcommand("train", "Train (or resume) a recipe: ethos train RECIPE [key.path=value ...]");
  train->add_option("recipe", recipe, "recipe YAML")->required();
  train->add_option("overrides", overrides, "overrides such as seed=3 train.steps=200 stages.1.train.lr=1e-4");
  TrainOptions train_opt;
  train->add_flag("--shared-only", train_opt.shared_only,
                  "train only the leading shared stages (share: true) into the stage cache, then stop");

  auto* tokenizer = app.add_subcommand("tokenizer", "Tokenizer tools");
  tokenizer->require_subcommand(1);
  TokenizerTrainOptions topt;
  bool no_chat_tokens = false, no_byte_fallback = false;
  auto* ttrain = tokenizer->add_subcommand("train", "Train a sentencepiece tokenizer from text files");
  ttrain->add_option("--input", topt.input_files, "text files, one sentence or document per line")->required();
  ttrain->add_option("--out", topt.model_path, "output .model path")->required();
  ttrain->add_option("--vocab-size", topt.vocab_size, "vocabulary size")->capture_default_str();
  ttrain->add_option("--model-type", topt.model_type, "bpe or unigram")->capture_default_str();
  ttrain->add_option("--special", topt.user_defined_symbols, "extra user-defined symbols");
  ttrain->add_flag("--no-chat-tokens", no_chat_tokens, "do not add the chat template's role and rationale markers");
  ttrain->add_flag("--no-byte-fallback", no_byte_fallback, "disable byte fallback");
  ttrain->add_option("--threads", topt.num_threads, "trainer threads")->capture_default_str();

  GenerateArgs g;
  auto* gen = app.add_subcommand("generate", "Sample from a checkpoint (KV cache; greedy, temperature, top-p)");
  gen->add_option("--checkpoint", g.checkpoint, "checkpoint or Hugging Face model directory")->required();
  gen->add_option("--prompt", g.prompt, "the user's message (or raw text with --raw)")->required();
  gen->add_option("--system", g.system, "an optional system message");
  gen->add_option("--tokenizer", g.tokenizer, "tokenizer.model or tokenizer.json (default: the checkpoint's)");
  gen->add_option("--chat-template", g.chat_template,
                  "auto | ethos | llama3 | chatml | llama2 | mistral (default: the checkpoint's recipe's, else auto)");
  gen->add_option("--dtype", g.dtype, "float32 | bfloat16 | float16: what the weights are held in (default: the checkpoint's recipe's model.dtype, else float32)");
  gen->add_flag("--raw", g.raw, "continue the prompt as plain text instead of a chat turn");
  gen->add_option("--max-new-tokens", g.max_new_tokens, "tokens to generate")->capture_default_str();
  gen->add_option("--temperature", g.temperature, "0 = greedy")->capture_default_str();
  gen->add_option("--top-p", g.top_p, "nucleus sampling mass")->capture_default_str();
  gen->add_option("--samples", g.samples, "number of samples")->capture_default_str();
  gen->add_option("--seed", g.seed, "sampling seed")->capture_default_str();
  gen->add_option("--threads", g.threads, "intra-op threads (0 = all available)")->capture_default_str();

  EvalCommandArgs ev;
  auto* eval = app.add_subcommand("eval", "Score a checkpoint on eval suites: ethos eval --checkpoint DIR --suite S.yaml");
  eval->add_option("--checkpoint", ev.checkpoint, "checkpoint or Hugging Face model directory")->required();
  eval->add_option("--suite", ev.suites, "suite YAML (eval/FORMAT.md); repeat for several")->required();
  eval->add_option("--out", ev.out, "eval.jsonl to append to (default: CHECKPOINT/eval.jsonl)");
  eval->add_option("--tokenizer", ev.tokenizer, "tokenizer.model or tokenizer.json (default: the checkpoint's)");
  eval->add_option("--chat-template", ev.chat_template,
                   "auto | ethos | llama3 | chatml | llama2 | mistral (default: the checkpoint's recipe's, else auto)");
  eval->add_option("--dtype", ev.dtype, "float32 | bfloat16 | float16: what the weights are held in (default: the checkpoint's recipe's model.dtype, else float32)");
  eval->add_option("--threads", ev.threads, "intra-op threads (0 = all available)")->capture_default_str();
  eval->add_flag("--reference-scorer", ev.reference,
                 "score by the plain path (each mode on its own, rationales decoded then run again): slower, "
                 "the same outcomes up to float rounding; for checking the batched path");
  eval->add_option("--items", ev.items,
                   "also append one JSON line per item and scoring to this file: the label chosen, every candidate's "
                   "scores, the model's own rationale (eval/FORMAT.md, \"Per-item outcomes\")");

  CheckpointEvalArgs cev;  // eval.async's child process; not for users, so not in --help
  auto* eval_ckpt = app.add_subcommand("eval-checkpoint", "")->group("");
  eval_ckpt->add_option("--run", cev.run_dir, "run directory (its config.yaml)")->required();
  eval_ckpt->add_option("--checkpoint", cev.checkpoint, "checkpoint directory")->required();
  eval_ckpt->add_option("--stage", cev.stage, "stage name")->required();
  eval_ckpt->add_option("--step", cev.step, "global step")->required();
  eval_ckpt->add_option("--stage-final", cev.stage_final, "1: the last checkpoint of its stage")->required();
  eval_ckpt->add_option("--threads", cev.threads, "intra-op threads")->required();

  std::string matrix;
  std::vector<std::string> ablate_overrides;
  AblateOptions ablate_opt;
  bool slurm = false, no_report = false;
  auto* ablate = app.add_subcommand("ablate", "Run an ablation matrix (recipes x seeds), then its report: ethos ablate MATRIX");
  ablate->add_option("matrix", matrix, "matrix YAML (e.g. recipes/why_beats_rule.yaml)")->required();
  ablate->add_option("overrides", ablate_overrides, "overrides for every run, e.g. train.steps=50");
  ablate->add_flag("--local", "run here, one run after another (the default)");
  ablate->add_flag("--slurm", slurm, "submit to Slurm: job arrays written into OUT/slurm/ (launch/slurm.h)");
  ablate->add_flag("--dry-run", ablate_opt.dry_run, "list the runs (with --slurm: print the scripts) and stop");
  ablate->add_flag("--no-report", no_report, "skip the report at the end");
  std::string ablate_out;
  ablate->add_option("--out", ablate_out, "where the matrix's runs, worlds and report go (default: its out:)");
  bool status = false;
  ablate->add_flag("--status", status, "print each cell's state, last step and restarts, and stop");
  SlurmOptions so;
  ablate->add_option("--partition", so.partition, "Slurm partition");
  ablate->add_option("--account", so.account, "Slurm account");
  ablate->add_option("--qos", so.qos, "Slurm QOS");
  ablate->add_option("--time", so.time, "time limit per task (sbatch --time, e.g. 04:00:00)");
  ablate->add_option("--nodes", so.nodes, "nodes per cell")->capture_default_str();
  ablate->add_option("--gpus-per-node", so.gpus_per_node, "GPUs per node (one rank each); 0: CPU")->capture_default_str();
  ablate->add_option("--ntasks-per-node", so.ntasks_per_node, "ranks per node (default: --gpus-per-node, or 1)");
  ablate->add_option("--cpus-per-task", so.cpus_per_task, "CPUs per rank (sets OMP_NUM_THREADS)");
  ablate->add_option("--max-parallel", so.max_parallel, "cells running at once (array throttle); 0: no limit");
  ablate->add_option("--max-restarts", so.max_restarts, "requeues per task after a stop signal")->capture_default_str();
  ablate->add_option("--signal", so.signal, "the warning signal Slurm sends before the time limit")->capture_default_str();
  ablate->add_option("--signal-lead", so.signal_lead_s, "seconds before the time limit it is sent")->capture_default_str();
  ablate->add_option("--sbatch-arg", so.sbatch_args, "an extra #SBATCH line, e.g. --sbatch-arg=--constraint=a100 (repeat)");

  ReportConfig rep;
  auto* report = app.add_subcommand("report", "Charts, summary.json and index.html from runs: ethos report RUNS_DIR");
  report->add_option("runs_dir", rep.runs_dir, "directory of <recipe>/seed<k>/ runs")->required();
  report->add_option("--out", rep.out_dir, "output directory (default: RUNS_DIR/report)");
  report->add_option("--baseline", rep.baseline, "recipe the others are compared with (default: r1, else the first)");
  report->add_option("--primary", rep.primary, "scoring shown in charts: scorer/mode[/normalize], e.g. likelihood/direct/mean");
  report->add_option("--suite", rep.suite, "suite shown in charts (default: the one with the most eval events)");
  report->add_option("--criteria", rep.criteria,
                     "pre-registered criteria (YAML, e.g. recipes/why_beats_rule_test.criteria.yaml): each stated as held or not");
  report->add_option("--compare", rep.compare,
                     "with --criteria: a published study's summary.json or report directory; says where each "
                     "criterion agrees with it");
  report->add_option("--resamples", rep.resamples, "bootstrap resamples")->capture_default_str();

  WorldGenerateArgs world_args;
  auto* data = app.add_subcommand("data", "Datasets");
  data->require_subcommand(1);
  auto* dgen = data->add_subcommand("generate", "Generate the scenario world: pre-training corpus, recipe datasets, eval suites, manifest");
  dgen->add_option("--world", world_args.world, "world YAML (e.g. datasets/world/default.yaml)")->required();
  dgen->add_option("--seed", world_args.seed, "seed: the same seed gives byte-identical files")->capture_default_str();
  dgen->add_option("--out", world_args.out, "output directory (e.g. data/world)")->required();

  LaunchOptions lopt;
  auto* launch_cmd = app.add_subcommand(
      "launch", "Run N ranks of a data-parallel job on this machine: ethos launch --nproc 2 -- train RECIPE");
  launch_cmd->add_option("--nproc", lopt.nproc, "ranks (processes) to start")->capture_default_str();
  launch_cmd->add_option("--master-port", lopt.master_port, "rendezvous port (0: a free one)")->capture_default_str();
  launch_cmd->add_option("--master-addr", lopt.master_addr, "rendezvous address")->capture_default_str();
  launch_cmd->add_option("--kill-grace", lopt.kill_grace_seconds,
                         "seconds between SIGTERM and SIGKILL when stopping the ranks")->capture_default_str();
  std::vector<std::string> launch_rest;
  launch_cmd->add_option("command", launch_rest, "the ethos subcommand each rank runs, after --");

  auto* checkpoint = app.add_subcommand("checkpoint", "Checkpoint tools");
  checkpoint->require_subcommand(1);
  std::string verify_path;
  auto* verify = checkpoint->add_subcommand(
      "verify", "Check a checkpoint's files (or every checkpoint of a run) against their recorded sizes and checksums");
  verify->add_option("path", verify_path, "checkpoint directory, or run directory")->required();

  std::string export_from, export_out, export_dtype;
  bool export_merge = false;
  auto* export_cmd = app.add_subcommand(
      "export", "Write a checkpoint as a Hugging Face model directory: ethos export --merge CHECKPOINT --out DIR");
  export_cmd->add_option("checkpoint", export_from, "checkpoint directory (full weights or LoRA adapters)")->required();
  export_cmd->add_option("--out", export_out, "directory to create")->required();
  export_cmd->add_flag("--merge", export_merge, "merge LoRA adapters into the base weights");
  export_cmd->add_option("--dtype", export_dtype, "float32 | bfloat16 | float16: the written weights' dtype (default: the checkpoint's recipe's model.dtype, else float32)");

  std::string tb_path;
  auto* tb_cmd = app.add_subcommand(
      "tensorboard", "Write TensorBoard event files from the JSONL logs of a run, or of every run under a directory");
  tb_cmd->add_option("path", tb_path, "run directory, or a directory of runs")->required();

  app.add_subcommand("version", "Print versions and the threading setup");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 64;
  }
  try {
    if (train->parsed() || ablate->parsed()) install_stop_handlers(SIGUSR2);  // until the recipe names its own
    {  // eval.async's child is this binary
      std::error_code ec;
      const auto self = fs::read_symlink("/proc/self/exe", ec);
      train_opt.eval_exe = ablate_opt.train.eval_exe = ec ? std::string() : self.string();
    }
    if (train->parsed()) return cmd_train(recipe, overrides, train_opt);
    if (launch_cmd->parsed()) return cmd_launch(lopt, launch_rest);
    if (ttrain->parsed()) {
      topt.byte_fallback = !no_byte_fallback;
      return cmd_tokenizer_train(topt, no_chat_tokens);
    }
    if (gen->parsed()) return cmd_generate(g);
    if (eval->parsed()) return run_eval_command(ev);
    if (eval_ckpt->parsed()) return run_checkpoint_eval(cev);
    if (ablate->parsed()) {
      AblationMatrix m = load_matrix(matrix, ablate_overrides);
      if (!ablate_out.empty()) m.out = ablate_out;
      if (status) return ablation_status(m);
      if (slurm) {
        so.dry_run = ablate_opt.dry_run;
        so.report = !no_report;
        if (so.signal != "USR2") {  // the ranks must catch what Slurm sends
          so.signal = "SIG" == so.signal.substr(0, 3) ? so.signal.substr(3) : so.signal;
          AblationMatrix with_signal = m;
          with_signal.overrides.push_back("preempt_signal=" + so.signal);
          return submit_slurm(with_signal, so);
        }
        return submit_slurm(m, so);
      }
      ablate_opt.report = !no_report;
      return run_ablation(m, ablate_opt);
    }
    if (dgen->parsed()) return run_data_generate(world_args);
    if (verify->parsed()) return cmd_checkpoint_verify(verify_path);
    if (export_cmd->parsed()) return cmd_export(export_from, export_out, export_merge, export_dtype);
    if (tb_cmd->parsed()) return cmd_tensorboard(tb_path);
    if (report->parsed()) return run_report(rep);
    return cmd_version();
  } catch (const ethos::Preempted& e) {
    std::cerr << "\n[ethos] " << rank_label(e.what()) << e.what() << std::endl;
    return kExitPreempted;
  } catch (const ethos::Error& e) {
    std::cerr << "\nerror: " << rank_label(e.what()) << e.what() << std::endl;
    return 1;
  } catch (const c10::Error& e) {
    std::cerr << "\ninternal error (libtorch): " << e.what_without_backtrace() << std::endl;
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "\nerror: " << e.what() << std::endl;
    return 1;
  }
}
