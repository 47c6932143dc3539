#include "eval/score/heldout.h"

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "datasets/sampling/packing.h"
#include "datasets/base/util.h"
#include "trainer/objective/batch.h"

namespace ethos {

HeldoutLossHook::HeldoutLossHook(std::vector<HeldoutFile> files, int seq_len, int batch_rows)
    : files_(std::move(files)), seq_len_(seq_len), batch_rows_(batch_rows) {
  if (files_.empty()) throw Error("held-out loss: no files given");
  for (const auto& f : files_) records_.push_back(read_records(f.path, record_kind_from_string(f.kind)));
}

namespace {

// One example per row, padded to the longest in the group (padding: weight 0, doc id -1).
PackedBatch one_per_row(const std::vector<TokenizedExample>& ex, size_t begin, size_t end) {
  PackedBatch b;
  b.rows = static_cast<int>(end - begin);
  for (size_t i = begin; i < end; ++i) b.seq_len = std::max<int>(b.seq_len, static_cast<int>(ex[i].tokens.size()) - 1);
  const size_t cells = static_cast<size_t>(b.rows) * static_cast<size_t>(b.seq_len);
  b.inputs.assign(cells, 0);
  b.targets.assign(cells, 0);
  b.positions.assign(cells, 0);
  b.doc_ids.assign(cells, -1);
  b.weights.assign(cells, 0.0f);
  for (size_t i = begin; i < end; ++i) {
    const auto& e = ex[i];
    const size_t row = (i - begin) * static_cast<size_t>(b.seq_len);
    for (size_t k = 0; k + 1 < e.tokens.size(); ++k) {
      b.inputs[row + k] = e.tokens[k];
      b.targets[row + k] = e.tokens[k + 1];
      b.weights[row + k] = e.weights[k + 1];
      b.positions[row + k] = static_cast<int32_t>(k);
      b.doc_ids[row + k] = 0;
    }
  }
  return b;
}

}  // namespace

double HeldoutLossHook::loss(Llama& model, const Tokenizer& tok, int64_t* tokens, const std::string& chat_template) const {
  torch::NoGradGuard no_grad;
  ChatTemplate tmpl(tok, chat_template);
  double nll = 0, weight = 0;
  for (const auto& records : records_) {
    const auto examples = tokenize_records(records, tmpl, TemplateOptions{}, seq_len_);
    for (size_t begin = 0; begin < examples.size(); begin += static_cast<size_t>(batch_rows_)) {
      const size_t end = std::min(examples.size(), begin + static_cast<size_t>(batch_rows_));
      const PackedBatch batch = one_per_row(examples, begin, end);
      if (batch.seq_len == 0) continue;
      const BatchTensors x = to_tensors(batch, model->parameters().front().device());
      nll += weighted_nll_sum(model->forward(x.inputs, x.positions, x.doc_ids), x.targets, x.weights).item<double>();
      weight += batch.weight_sum();
    }
  }
  if (tokens) *tokens = static_cast<int64_t>(weight);
  return weight > 0 ? nll / weight : 0.0;
}

void HeldoutLossHook::after_checkpoint(const CheckpointInfo& info, Llama& model, const Tokenizer& tok) {
  int64_t n = 0;
  const double value = loss(model, tok, &n, info.chat_template);
  nlohmann::json event{{"event", "eval"}, {"step", info.step},       {"stage", info.stage},
                       {"recipe", info.recipe}, {"seed", info.seed}, {"checkpoint", info.dir},
                       {"suite", "heldout"}, {"split", "id"},       {"metric", "loss"},
                       {"value", value},     {"n", n}};
  std::ofstream out(std::filesystem::path(info.run_dir) / "eval.jsonl", std::ios::app);
  out << event.dump() << "\n" << std::flush;
}

}  // namespace ethos
