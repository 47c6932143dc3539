#include "eval/score/heldout.h"

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "datasets/sampling/packing.h"
#include "datasets/base/util.h"
#include "datasets/chat_template.h"
#include "eval/score/cache_entry.h"
#include "trainer/objective/batch.h"
#include "trainer/objective/reference.h"

namespace ethos {

HeldoutLossHook::HeldoutLossHook(std::vector<HeldoutFile> files, int seq_len, int batch_rows, std::string cache_dir)
    : files_(std::move(files)), seq_len_(seq_len), batch_rows_(batch_rows), cache_dir_(std::move(cache_dir)) {
  if (files_.empty()) throw Error("held-out loss: no files given");
  Hasher h;
  for (const auto& f : files_) {
    records_.push_back(read_records(f.path, record_kind_from_string(f.kind)));
    h.update(hash_file(f.path)).update("|").update(f.kind).update("|");
  }
  files_hash_ = h.hex();
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
  double value = 0;
  std::string cached;
  bool hit = false;
  if (!cache_dir_.empty()) {
    const std::string key = Hasher().update(weights_hash(model)).update("|").update(files_hash_).update("|")
                                .update(tok.content_hash()).update("|").update(kTemplateVersion).update("|")
                                .update(info.chat_template).update("|").update(std::to_string(seq_len_)).update("|")
                                .update(std::to_string(batch_rows_)).update("|")
                                .update(std::to_string(torch::get_num_threads())).hex();
    cached = (std::filesystem::path(cache_dir_) / "eval" / ("heldout-" + key + ".jsonl")).string();
    const auto entry = read_cache_entry(cached);  // one line {"value", "n"}; a damaged entry is scored again
    if (entry.size() == 1 && entry[0].contains("value") && entry[0]["value"].is_number() && entry[0].contains("n") &&
        entry[0]["n"].is_number_integer()) {
      value = entry[0]["value"].get<double>();
      n = entry[0]["n"].get<int64_t>();
      hit = true;
    }
  }
  if (!hit) {
    value = loss(model, tok, &n, info.chat_template);
    if (!cached.empty()) write_cache_entry(cached, {nlohmann::json{{"value", value}, {"n", n}}});
  }
  nlohmann::json event{{"event", "eval"}, {"step", info.step},       {"stage", info.stage},
                       {"recipe", info.recipe}, {"seed", info.seed}, {"checkpoint", info.dir},
                       {"suite", "heldout"}, {"split", "id"},       {"metric", "loss"},
                       {"value", value},     {"n", n}};
  if (hit) event["cached"] = true;
  std::ofstream out(std::filesystem::path(info.run_dir) / "eval.jsonl", std::ios::app);
  out << event.dump() << "\n" << std::flush;
}

}  // namespace ethos
