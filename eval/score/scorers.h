// Scorers: a model answers a suite's items (eval/FORMAT.md), and each item gets an outcome
// (eval/score/metrics.h) that compute_metrics turns into rates with intervals.
//
// Likelihood: every candidate is scored as the continuation of the item's prompt,
//   <s> [<|system|> ..] <|user|> prompt <|end|> <|assistant|> [rationale] candidate <|end|>
// by its summed log-probability and by its per-token mean; the argmax under each rule is the
// model's choice.
//   direct        the candidate follows <|assistant|> at once;
//   reason_first  the model first writes its own rationale, greedily: <|rationale|> is given,
//                 generation runs to <|/rationale|> (or max_rationale_tokens, then closed), and
//                 the candidates are scored after it.
// Generate: N samples per item (temperature, top-p, KV cache, seeds derived from the item index,
// so the training RNG is untouched); the answer after a rationale span, if any, goes to the
// deterministic action parser.
//
// Two paths give the same outcomes (up to float rounding): the batched one (score_suite's
// default, eval/score/batched.h: each prompt runs once for every scorer and mode, rationales
// are decoded for a whole batch and the candidates continue their cache) and the plain one
// (ScorerPath::reference: one scorer and mode at a time, rationales decoded and then run
// again), kept as the check of the first and as the benchmark's baseline.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "datasets/chat_template.h"
#include "eval/score/metrics.h"
#include "eval/suite/suite.h"
#include "trainer/model/llama.h"

namespace ethos {

// reason_first scoring needs the rationale markers in the tokenizer: an Error saying how to fix it otherwise.
void require_rationale_markers(const ChatTemplate& tmpl);

// The prompt tokens of an item (system + conversation + <|assistant|>).
std::vector<int> item_prompt(const ChatTemplate& tmpl, const SuiteItem& item);

// Summed and mean log-prob of each candidate continuation after its item's prefix. A prefix
// runs once (KV cache) and its candidates continue it as a batch; items_per_batch items per pass.
struct ContinuationScore {
  double sum = 0, mean = 0;
  int64_t tokens = 0;
};
std::vector<std::vector<ContinuationScore>> score_candidates(Llama& model, const std::vector<std::vector<int>>& prefixes,
                                                             const std::vector<std::vector<std::vector<int>>>& candidates,
                                                             size_t items_per_batch = 16);

// mode: "direct" or "reason_first". Returns one outcome per item, in suite order. The model
// should be in eval mode; no gradients are recorded. Batched (eval/score/batched.h).
std::vector<ItemOutcome> score_likelihood(Llama& model, const ChatTemplate& tmpl, const Suite& suite,
                                          const std::string& mode);

// The same by the plain path, kept as the check of the batched one: reason_first decodes every
// rationale (generate_batch), then runs prompt + rationale again to score the candidates;
// items_per_batch items per pass, in suite order.
std::vector<ItemOutcome> score_likelihood_reference(Llama& model, const ChatTemplate& tmpl, const Suite& suite,
                                                    const std::string& mode, size_t items_per_batch = 16);

// The suite's generate options by the plain path; sample s of item i uses seed
// base_seed + 1000003 * i + s (so does the batched path).
std::vector<ItemOutcome> score_generate(Llama& model, const ChatTemplate& tmpl, const Suite& suite,
                                        uint64_t base_seed = 0);

// The seed of sample s of item i (both paths).
inline uint64_t sample_seed(uint64_t base_seed, size_t item, int sample) {
  return base_seed + 1000003ULL * item + static_cast<uint64_t>(sample);
}

// The parser's label for a generated continuation: its answer part (below), decoded.
Label generated_label(const ChatTemplate& tmpl, const Suite& suite, const SuiteItem& item, const std::vector<int>& generated);

// The answer part of a generated continuation: the tokens after <|/rationale|> if the model
// wrote a rationale span, without the final <|end|>.
std::vector<int> answer_tokens(const ChatTemplate& tmpl, const std::vector<int>& generated);

// Every scorer the suite enables (likelihood in each of its modes, then generate). batched: one
// pass in which each prompt runs once for all of them; reference: each scorer and mode by the
// plain path (slower; the same outcomes up to float rounding).
enum class ScorerPath { batched, reference };
std::vector<ItemOutcome> score_suite(Llama& model, const ChatTemplate& tmpl, const Suite& suite,
                                     ScorerPath path = ScorerPath::batched);

}  // namespace ethos
