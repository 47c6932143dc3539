// Packing tokenized examples into fixed-length rows, a weighted mixture of sources,
// deterministic per-epoch shuffling, and an exactly restorable cursor.
//
// A row holds `seq_len` slots. An example of L tokens fills L-1 slots: inputs t0..t(L-2),
// targets t1..t(L-1), weights w1..w(L-1). Examples never straddle rows (next-fit: an
// example that does not fit the remaining slots starts the next row; the gap is padding
// with weight 0 and its own doc id). Documents longer than seq_len+1 are cut into chunks
// of seq_len+1 tokens that are separate examples; a conversation longer than that is an
// error in tokenize_records (truncation would cut its answer); PackedStream truncates any
// over-long example it is handed directly (counted in `truncated`). doc_ids number examples within a row (0,1,2,...;
// padding gets -1) and positions restart at 0 for every example.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "datasets/chat_template.h"

namespace ethos {

// Renders records with the template. Documents longer than seq_len+1 tokens become several
// chunk examples (each at most seq_len+1 tokens); nothing else is split.
std::vector<TokenizedExample> tokenize_records(const std::vector<Record>& records, const ChatTemplate& tmpl,
                                               const TemplateOptions& opt, int seq_len);

struct PackedBatch {
  int rows = 0, seq_len = 0;
  // Row-major [rows, seq_len].
  std::vector<int32_t> inputs, targets, doc_ids, positions;
  std::vector<float> weights;
  double weight_sum() const;  // sum of weights: the loss normaliser of this batch
};

struct DataSource {
  std::string name;   // path or label, for messages and the cursor
  double weight = 1;  // mixture weight (share of examples drawn from this source)
  std::vector<TokenizedExample> examples;
};

// Where the stream stands. Saved in checkpoints; restoring it reproduces the stream exactly.
struct DataCursor {
  uint64_t drawn = 0;  // examples drawn so far from the mixture
  struct Source {
    uint64_t epoch = 0, index = 0;  // position in that epoch's shuffled order
  };
  std::vector<Source> sources;
  int64_t pending = -1;  // source of an example drawn but not yet placed (-1: none)
  nlohmann::json to_json() const;
  static DataCursor from_json(const nlohmann::json& j);  // throws Error on a malformed cursor
};

class PackedStream {
 public:
  PackedStream(std::vector<DataSource> sources, int seq_len, uint64_t seed);
  // The next `rows` packed rows. Deterministic given (sources, seq_len, seed, cursor).
  PackedBatch next_batch(int rows);
  DataCursor cursor() const;
  void restore(const DataCursor& c);  // throws Error if it does not fit these sources
  uint64_t truncated() const { return truncated_; }
  int seq_len() const { return seq_len_; }

 private:
  // Everything that decides the stream is in (sources_, seq_len_, seed_, cur_); the rest is
  // derived from it and rebuilt on restore().
  struct Draw {
    size_t source, example;
  };
  Draw draw();                                           // the next example of the mixture
  size_t previous_example(size_t source) const;          // the example before a source's position
  const std::vector<uint32_t>& order(size_t source, uint64_t epoch);  // cached shuffled order
  void fill_row(PackedBatch& b, int row);

  std::vector<DataSource> sources_;
  int seq_len_;
  uint64_t seed_;
  DataCursor cur_;
  std::vector<double> cumulative_;  // normalised cumulative mixture weights (empty sources: no share)
  std::vector<std::vector<uint32_t>> order_;  // per source: the shuffled order of order_epoch_
  std::vector<uint64_t> order_epoch_;
  size_t pending_example_ = 0;  // with cur_.pending >= 0: the example drawn but not yet placed
  uint64_t truncated_ = 0;
};

}  // namespace ethos
