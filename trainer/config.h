// Recipes: typed config filled from YAML.
//  - `include: base.yaml` (path relative to the including file) is deep-merged under the file;
//  - command-line overrides `a.b=value` (YAML scalar syntax; list items by index: stages.1.train.lr=1e-4);
//  - unknown keys are errors with their key path, file:line and the nearest valid name;
//  - a wrongly typed value is an error with key path, file:line and the expected type;
//  - every problem is collected and reported at once (one ethos::Error, one problem per line);
//  - the resolved config (all defaults written out, stages expanded) is written to the run dir.
// Stages: `data` and `train` at the top level are defaults; each entry of `stages` may override
// any of their keys (deep merge). Without `stages` the recipe has one stage named "main".
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "datasets/tokenizer/prepare.h"
#include "trainer/model/llama.h"

namespace ethos {

struct ModelSection {
  std::string from;  // HF model dir to start from ("" = fresh init from `arch`)
  ModelConfig arch;  // HF config.json field names (vocab_size defaults to the tokenizer's when 0)
  LoraConfig lora;   // rank 0 (the default): full fine-tuning; otherwise adapters on a frozen base
  // What the weights are held in: float32 (the default), or bfloat16/float16 for a frozen base
  // under LoRA (half the memory; activations and adapters stay float32).
  std::string dtype = "float32";
};

struct DataSourceSpec {
  std::string path;             // JSONL file
  std::string kind;             // document | demonstration | explained | preference
  double weight = 1.0;          // mixture weight
};

struct DataSection {
  std::vector<DataSourceSpec> sources;
  int64_t seq_len = 256;
  double action_weight = 1.0;
  double rationale_weight = 1.0;  // 0 drops rationale spans (== demonstration-only training)
  double document_weight = 1.0;
};

struct TrainSection {
  // sft, or a preference objective on `preference` data: dpo | ipo | robust | conservative | simpo | rpo
  std::string objective = "sft";
  int64_t steps = 100;
  int64_t batch_size = 8;         // rows per micro-batch (per rank)
  int64_t grad_accum = 1;         // micro-batches per optimizer step
  double lr = 1e-3;
  std::string schedule = "cosine";  // cosine | linear | constant
  int64_t warmup_steps = 0;
  double min_lr_ratio = 0.1;      // final lr = lr * min_lr_ratio
  double weight_decay = 0.0;
  double beta1 = 0.9, beta2 = 0.95, eps = 1e-8;
  double grad_clip = 1.0;         // global-norm clip; 0 = off
  bool decay_norms_biases_embeddings = false;  // default: excluded from weight decay
  std::string precision = "fp32"; // fp32 | bf16 (bf16 autocast where the build supports it)
  int64_t log_every = 1;
  int64_t checkpoint_every = 50;  // steps; the final step is always checkpointed
  int64_t keep_last = 3;          // checkpoints kept (0 = all)
  // Preference objectives (trainer/objective/preference.h has the formulas).
  double beta = 0.1;
  double label_smoothing = 0.0;   // robust / conservative only: assumed share of flipped labels
  double simpo_gamma = 0.5;       // simpo: target reward margin
  double rpo_alpha = 1.0;         // rpo: weight of the chosen answer's NLL (rationale spans weighted
                                  // by data.rationale_weight, as in SFT)
  std::string reference;          // "" : the stage's starting weights; or a checkpoint / HF model dir
  std::string reference_mode = "cached";  // cached: log-probs computed once, stored in cache_dir
                                          // live: a frozen copy of the reference runs every step
  std::string kl_prompts;         // JSONL (preference/demonstration): KL(policy||reference) estimated
                                  // on these prompts at every checkpoint ("" = off)
  int64_t kl_max_new_tokens = 32; // length of the policy samples the KL estimate uses
};

struct StageSection {
  std::string name = "main";
  std::string init;  // "" : previous stage's final weights (stage 0: model.from or fresh init);
                     // otherwise a checkpoint or HF model dir
  DataSection data;
  TrainSection train;
  // Reuse this stage's result across runs with identical inputs (trainer/checkpoint/stage_cache.h), e.g.
  // pre-training shared by every recipe of an ablation.
  bool share = false;
  // The seed of this stage's data order (and, for stage 0, of the fresh model's weights).
  // -1 (default): the recipe's seed. A matrix with base seeds sets it on the shared stages, so one
  // pre-trained base serves several alignment seeds.
  int64_t seed = -1;
};

// Evaluation run after every checkpoint (rank 0): in-process, or with async in a child process
// while training goes on. The eval harness adds suites.
struct EvalFileSpec {
  std::string path;                   // JSONL file
  std::string kind = "demonstration"; // record kind, as in data sources
};
struct EvalSection {
  std::vector<EvalFileSpec> heldout;  // held-out loss (capability) on these files
  std::vector<std::string> suites;    // eval suite YAMLs (eval/FORMAT.md) scored after every checkpoint
  // async: a checkpoint is scored by a child `ethos` process while training continues (at most
  // one at a time; it finishes before the next checkpoint is written). Same eval.jsonl values.
  // Neither key is hashed (they change when results arrive, not what they are) nor written to
  // the resolved YAML while at its default.
  bool async = false;
  int64_t threads = 0;  // the async eval's threads; 0: half the cores (at least 1). Training gets the rest
                        // unless `threads` is set.
};

// Data parallelism: used when the job has several ranks (ethos launch, Slurm, torchrun variables);
// a one-rank run ignores it. Not part of the config hash: a run may resume with other settings
// (e.g. ZeRO-1 on, or sharded checkpoints) and on another number of ranks.
struct DistSection {
  std::string backend = "auto";     // auto (nccl on CUDA, else gloo) | gloo | nccl
  double bucket_mb = 25;            // gradient all-reduce bucket size, MiB
  int64_t zero = 0;                 // 0: every rank holds the optimizer state; 1: ZeRO-1 (sharded across ranks)
  std::string checkpoint = "full";  // full: one optimizer.safetensors (gathered to rank 0);
                                    // sharded: each rank writes its ZeRO-1 shard, plus an index
  double timeout_s = 300;           // deadline of every collective and of the rendezvous, seconds
};

struct LogSection {
  // TensorBoard event files in <run>/tensorboard/, rewritten from train.jsonl and eval.jsonl after
  // every checkpoint (and its eval) and at the end of the run (trainer/tensorboard.h).
  bool tensorboard = false;
};

struct Recipe {
  std::string name = "run";
  int64_t seed = 0;
  std::string out_dir;        // default: runs/<name>/seed<seed>
  std::string resume = "auto";  // auto | never | <checkpoint dir>
  bool allow_changed = false;   // resume even when config/data/tokenizer hashes differ
  int64_t threads = 0;          // intra-op threads; 0 = the cores available to this process
  std::string device = "cpu";   // cpu | cuda (one GPU: cuda:LOCAL_RANK once data-parallel) | auto
  // CUDA: deterministic algorithms only (cuBLAS workspace fixed, attention by the math kernel),
  // so that a resumed run repeats an uninterrupted one bit for bit there too; slower. CPU
  // training is deterministic at a fixed thread count either way.
  bool deterministic = false;
  std::string cache_dir = "runs/cache";  // content-addressed caches shared by runs (reference log-probs)
  std::string preempt_signal = "USR2";   // besides SIGTERM, the signal that makes the run checkpoint and
                                         // stop at the next step (trainer/preempt.h); none: SIGTERM only
  // Path prefixes replaced in every file the recipe reads ("OLD=NEW": data/world/x.jsonl becomes
  // NEW/x.jsonl), e.g. to run the same recipe on another generated world (`ethos ablate` worlds).
  // Applied when the recipe loads; the resolved config shows the replaced paths.
  std::vector<std::string> rebase;
  TokenizerSection tokenizer;
  // The turn format: auto | ethos | llama3 | chatml | llama2 | mistral (datasets/chat_template.h);
  // auto picks by the tokenizer's special tokens. Training, eval hooks and generation all use it.
  std::string chat_template = "auto";
  ModelSection model;
  std::vector<StageSection> stages;  // resolved: always >= 1
  EvalSection eval;
  DistSection dist;
  LogSection log;
  std::string source_path;           // the recipe file (not written out)

  std::string run_dir() const;  // out_dir, or its default
  int64_t stage_seed(size_t stage) const;  // stages[stage].seed, or the recipe's seed when -1
};

// Loads `path` (following include:), applies overrides ("a.b=value"), checks types, unknown
// keys and values (validate()), and returns the typed recipe. Throws Error listing every problem.
Recipe load_recipe(const std::string& path, const std::vector<std::string>& overrides = {});
// Every semantic problem at once (e.g. "stages[1].train.lr: must be > 0 (got -1)").
std::vector<std::string> validate(const Recipe& r);
// The resolved config as YAML, every default written out; stable (same recipe -> same text).
std::string to_yaml(const Recipe& r);
// Hash of the resolved config minus keys that may change across a resume
// (resume, allow_changed, threads, out_dir, cache_dir, preempt_signal, dist). The batch enters as the global
// batch of a `world`-rank job (batch_size x grad_accum x world): a run may resume on another
// number of ranks, or with another split into micro-batches, when the global batch is the same.
std::string config_hash(const Recipe& r, int world = 1);

}  // namespace ethos
