// Scorers: a model answers a suite's items (eval/FORMAT.md), and each item gets an outcome
// (eval/score/metrics.h) that compute_metrics turns into rates with intervals.
//
// Likelihood: every candidate is scored as the continuation of the item's prompt,
//   <s> [<|system|> ..] <|user|> prompt <|end|> <|assistant|> [rationale] candidate <|end|>
// by its summed log-probability and by its per-token mean; the argmax under each rule is the
// model's choice. The prompt runs once per item; its candidates continue its KV cache together.
//   direct        the candidate follows <|assistant|> at once;
//   reason_first  the model first writes its own rationale, greedily: <|rationale|> is given,
//                 generation runs to <|/rationale|> (or max_rationale_tokens, then closed), and
//                 the candidates are scored after it.
// Generate: N samples per item (temperature, top-p, KV cache, seeds derived from the item index,
// so the training RNG is untouched); the answer after a rationale span, if any, goes to the
// deterministic action parser.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "datasets/chat_template.h"
#include "eval/score/metrics.h"
#include "eval/suite/suite.h"
#include "trainer/model/llama.h"

namespace ethos {

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
// should be in eval mode; no gradients are recorded.
std::vector<ItemOutcome> score_likelihood(Llama& model, const ChatTemplate& tmpl, const Suite& suite,
                                          const std::string& mode, size_t items_per_batch = 16);

// The suite's generate options; sample s of item i uses seed base_seed + 1000003 * i + s.
std::vector<ItemOutcome> score_generate(Llama& model, const ChatTemplate& tmpl, const Suite& suite,
                                        uint64_t base_seed = 0);

// The answer part of a generated continuation: the tokens after <|/rationale|> if the model
// wrote a rationale span, without the final <|end|>.
std::vector<int> answer_tokens(const ChatTemplate& tmpl, const std::vector<int>& generated);

// Every scorer the suite enables (likelihood in each of its modes, then generate).
std::vector<ItemOutcome> score_suite(Llama& model, const ChatTemplate& tmpl, const Suite& suite);

}  // namespace ethos
