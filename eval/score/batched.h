// Batched scoring: every scorer a suite enables, in one pass over batches of items.
//
// Items are sorted by prompt length and cut into batches by a token budget, so rows of a batch
// need little padding. For each batch:
//   1. the prompts run once (left-padded, in chunks of rows stacked into one cache; the output
//      projection only at the last slot);
//   2. direct: every candidate continues a copy of its item's prompt cache;
//   3. generate: every sample continues a copy of its item's prompt cache (its own seed);
//   4. reason_first: the same cache goes on with <|rationale|> and greedy decoding of all rows
//      together; a row that writes <|/rationale|> or <|end|>, or reaches the cap, is closed with
//      <|/rationale|> and idles as a hole (a slot that nothing attends to and that takes no
//      position) until half of the rows still decoding are closed; then the closed rows'
//      candidates continue their caches and those rows leave the decoding batch. The prompt and
//      the rationale are never run twice, and rows that stop early do not wait for the longest.
// A row's numbers do not depend on the other rows of its batch (up to float rounding of the
// batched shapes), so results equal scoring one item at a time. Batches run on worker threads
// (BatchedRequest::workers), one intra-op thread each.
#pragma once
#include <cstdint>
#include <vector>

#include "datasets/chat_template.h"
#include "eval/score/scorers.h"
#include "eval/suite/suite.h"
#include "trainer/model/generate.h"
#include "trainer/model/llama.h"

namespace ethos {

struct BatchedRequest {
  bool direct = false, reason_first = false;
  int max_rationale_tokens = 48;
  // generate (samples > 0): sample s of item i uses seed base_seed + 1000003 * i + s
  int samples = 0;
  SampleOptions sample;
  uint64_t base_seed = 0;
  int64_t batch_tokens = 16384;  // the token budget of one batch (see plan_batches)
  // Within a batch, the prompts run in chunks of rows of at most chunk_tokens slots, and the
  // candidates in chunks of rows holding at most cand_slots cache slots: a forward's memory
  // stays small (fewer fresh pages for glibc to fault in, data in cache) while decoding still
  // steps all of the batch's rows together. Results do not depend on either.
  int64_t chunk_tokens = 2048, cand_slots = 8192;
  // Threads that score whole batches side by side, each with one intra-op thread (0: as many as
  // the process's intra-op threads). At small model sizes a batch's operations are too small
  // to split across cores, so this uses them far better. Results do not depend on it: every
  // batch is computed the same way on whichever thread takes it.
  int workers = 0;
};

struct ItemScores {
  std::vector<ContinuationScore> direct, reason_first;  // per candidate, when asked
  std::vector<int> rationale;                           // reason_first: the model's, without markers
  std::vector<std::vector<int>> samples;                // generate: new tokens per sample (stop included)
};

// Batches of item indices: items by prompt length (shortest first, ties in item order); a batch
// grows while  items * (longest prompt + decoded tokens) + candidate rows * longest candidate
// + sample rows * (longest prompt + max_new_tokens)  stays within budget (always >= 1 item).
// decoded = max_rationale_tokens + 2 with reason_first, else 0.
std::vector<std::vector<size_t>> plan_batches(const std::vector<std::vector<int>>& prompts,
                                              const std::vector<std::vector<std::vector<int>>>& candidates,
                                              const BatchedRequest& req);

// Scores every item; candidates are token ids (text + <|end|>). The model should be in eval mode.
std::vector<ItemScores> score_batched(Llama& model, const ChatTemplate& tmpl, const std::vector<std::vector<int>>& prompts,
                                      const std::vector<std::vector<std::vector<int>>>& candidates,
                                      const BatchedRequest& req);

}  // namespace ethos
