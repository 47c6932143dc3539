// Held-out loss after every checkpoint: the capability measure (recipes/README.md "Measuring").
// Appends one event per checkpoint to <run>/eval.jsonl:
//   {"event":"eval","step","stage","recipe","seed","checkpoint","suite":"heldout","split":"id",
//    "metric":"loss","value","n"}   (n = supervised target tokens scored)
// With a cache_dir the value is also stored under cache_dir/eval/heldout-<key>.jsonl (eval/score/cache_entry.h), the key
// hashing the weights, the files' content and kinds, the tokenizer, the template, seq_len, the
// batch rows and the intra-op thread count (which can move the last bits): a checkpoint with the
// same weights (a shared stage reused by every recipe of an ablation) is scored once; its event
// then says "cached": true.
#pragma once
#include <string>
#include <vector>

#include "datasets/records.h"
#include "trainer/eval_hook.h"

namespace ethos {

struct HeldoutFile {
  std::string path;
  std::string kind;  // record kind, as in data sources
};

class HeldoutLossHook : public EvalHook {
 public:
  HeldoutLossHook(std::vector<HeldoutFile> files, int seq_len, int batch_rows = 8, std::string cache_dir = "");
  void after_checkpoint(const CheckpointInfo& info, Llama& model, const Tokenizer& tok) override;
  // Token-weighted mean loss of `model` on the files (same template and weights as training).
  double loss(Llama& model, const Tokenizer& tok, int64_t* tokens = nullptr, const std::string& chat_template = "auto") const;

 private:
  std::vector<HeldoutFile> files_;
  std::vector<std::vector<Record>> records_;  // read once, at construction
  int seq_len_, batch_rows_;
  std::string cache_dir_, files_hash_;
};

}  // namespace ethos
