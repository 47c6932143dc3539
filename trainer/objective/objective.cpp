#include "trainer/objective/objective.h"

#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>
#include <set>

#include "datasets/sampling/packing.h"
#include "datasets/base/util.h"
#include "trainer/objective/batch.h"
#include "trainer/checkpoint/checkpoint.h"
#include "trainer/model/generate.h"
#include "trainer/model/weights.h"
#include "trainer/objective/pairs.h"
#include "trainer/objective/preference.h"
#include "trainer/objective/reference.h"

namespace fs = std::filesystem;

namespace ethos {
namespace {

TemplateOptions template_options(const DataSection& d) {
  TemplateOptions opt;
  opt.action_weight = static_cast<float>(d.action_weight);
  opt.rationale_weight = static_cast<float>(d.rationale_weight);
  opt.document_weight = static_cast<float>(d.document_weight);
  return opt;
}

uint64_t stage_seed(const ObjectiveSetup& s) {
  return static_cast<uint64_t>(s.recipe.stage_seed(static_cast<size_t>(s.stage_index))) * 1000003ULL + static_cast<uint64_t>(s.stage_index);
}

// ---- SFT -------------------------------------------------------------------------------

class SftObjective : public Objective {
 public:
  SftObjective(const ObjectiveSetup& s)
      : stage_(s.stage.name), device_(s.device), comm_(s.comm),
        stream_(load(s), static_cast<int>(s.stage.data.seq_len), stage_seed(s)) {}

  void next_step(int64_t micro_batches, int64_t rows) override {
    micro_.clear();
    norm_ = 0;
    const int W = comm_.world(), me = comm_.rank();
    for (int64_t i = 0; i < micro_batches; ++i)
      for (int r = 0; r < W; ++r) {  // rank r's rows of micro-batch i
        PackedBatch b = stream_.next_batch(static_cast<int>(rows));
        norm_ += b.weight_sum();
        if (r == me) micro_.push_back(std::move(b));
      }
    if (norm_ <= 0) throw Error("stage '" + stage_ + "': a batch has no supervised tokens; check data.*_weight and the data files.");
    loss_sum_ = 0;
    tokens_ = 0;
  }

  torch::Tensor micro_loss(Llama& model, int64_t i) override {
    BatchTensors x = to_tensors(micro_[static_cast<size_t>(i)], device_);
    auto logits = model->forward(x.inputs, x.positions, x.doc_ids);  // [B,T,V]
    auto nll = weighted_nll_sum(logits, x.targets, x.weights);       // fp32 log-softmax
    loss_sum_ += nll.item<double>();
    tokens_ += x.real_tokens;
    return nll / norm_;
  }

  StepResult finish_step() override {
    std::vector<double> sums{loss_sum_, static_cast<double>(tokens_)};
    comm_.sum(sums);
    return {sums[0] / norm_, static_cast<int64_t>(sums[1]), nlohmann::json::object()};
  }
  nlohmann::json cursor() const override { return stream_.cursor().to_json(); }
  void restore(const nlohmann::json& c) override { stream_.restore(DataCursor::from_json(c)); }

 private:
  static std::vector<DataSource> load(const ObjectiveSetup& s) {
    std::vector<DataSource> sources;
    for (const auto& spec : s.stage.data.sources) {
      auto records = read_records(spec.path, record_kind_from_string(spec.kind));
      sources.push_back({spec.path, spec.weight,
                         tokenize_records(records, s.tmpl, template_options(s.stage.data), static_cast<int>(s.stage.data.seq_len))});
    }
    return sources;
  }

  std::string stage_;
  torch::Device device_;
  Comm& comm_;
  PackedStream stream_;
  std::vector<PackedBatch> micro_;
  double norm_ = 0, loss_sum_ = 0;
  int64_t tokens_ = 0;
};

// ---- preference ------------------------------------------------------------------------

// Running sums of the step's per-pair statistics, overall and per tag ("harm=coercion").
struct PairStats {
  double n = 0, correct = 0, margin = 0, chosen_reward = 0, rejected_reward = 0, chosen_drift = 0, rejected_drift = 0;
  static constexpr size_t kFields = 7;
  void append_to(std::vector<double>& v) const {
    v.insert(v.end(), {n, correct, margin, chosen_reward, rejected_reward, chosen_drift, rejected_drift});
  }
  static PairStats from(const double* f) { return {f[0], f[1], f[2], f[3], f[4], f[5], f[6]}; }
  nlohmann::json to_json(bool with_reference) const {
    nlohmann::json j = {{"pairs", n}, {"accuracy", correct / n}, {"margin", margin / n},
                        {"chosen_reward", chosen_reward / n}, {"rejected_reward", rejected_reward / n}};
    if (with_reference) {
      j["chosen_logp_drift"] = chosen_drift / n;
      j["rejected_logp_drift"] = rejected_drift / n;
    }
    return j;
  }
};

class DpoFamilyObjective : public Objective {
 public:
  DpoFamilyObjective(const ObjectiveSetup& s, Llama& model) : setup_(s), device_(s.device) {
    const TrainSection& T = s.stage.train;
    opt_.objective = preference_objective_from_string(T.objective);
    opt_.beta = T.beta;
    opt_.label_smoothing = T.label_smoothing;
    opt_.simpo_gamma = T.simpo_gamma;
    opt_.rpo_alpha = T.rpo_alpha;
    for (const auto& spec : s.stage.data.sources) {
      auto pairs = tokenize_pairs(read_records(spec.path, RecordKind::preference), s.tmpl,
                                  template_options(s.stage.data), static_cast<int>(s.stage.data.seq_len));
      pool_.insert(pool_.end(), std::make_move_iterator(pairs.begin()), std::make_move_iterator(pairs.end()));
    }
    order_ = std::make_unique<PairOrder>(pool_.size(), stage_seed(s));
    if (opt_.objective != PreferenceObjective::simpo || !T.kl_prompts.empty()) {
      // Rank 0 first: it saves the reference weights and fills the log-prob cache, which the
      // other ranks then read (a cache hit). The wait has no collective deadline: it lasts as
      // long as the reference pass (a dead rank 0 still ends it at once).
      comm().rank0_first("rank 0 prepares the reference", [&] { setup_reference(model); });
    }
    if (!T.kl_prompts.empty()) {
      for (const Record& r : read_records(T.kl_prompts, RecordKind::preference)) {
        kl_prompts_.push_back(s.tmpl.render_prompt(r.messages));
        if (kl_prompts_.size() == 64) break;
      }
    }
  }

  void next_step(int64_t micro_batches, int64_t rows) override {
    micro_.clear();
    step_pairs_.clear();
    const int W = comm().world(), me = comm().rank();
    for (int64_t i = 0; i < micro_batches; ++i)
      for (int r = 0; r < W; ++r) {  // rank r's pairs of micro-batch i
        auto pairs = order_->next(static_cast<size_t>(rows));
        step_pairs_.insert(step_pairs_.end(), pairs.begin(), pairs.end());
        if (r == me) micro_.push_back(std::move(pairs));
      }
    total_pairs_ = static_cast<double>(micro_batches * rows * W);
    loss_sum_ = 0;
    tokens_ = 0;
    stats_ = {};
    by_tag_.clear();
  }

  torch::Tensor micro_loss(Llama& model, int64_t i) override {
    const PairRows rows = pair_rows(pool_, micro_[static_cast<size_t>(i)], device_);
    const PairLogprobs policy = pair_logprobs(model, rows);  // one forward: chosen and rejected rows
    PreferenceBatch b;
    b.policy_chosen = policy.chosen;
    b.policy_rejected = policy.rejected;
    b.chosen_tokens = rows.chosen_tokens;
    b.rejected_tokens = rows.rejected_tokens;
    if (opt_.objective == PreferenceObjective::rpo) b.chosen_nll = policy.chosen_nll;
    if (uses_reference()) reference_logprobs(rows, b.ref_chosen, b.ref_rejected);
    const PreferenceOutput out = preference_loss(b, opt_);
    const double n = static_cast<double>(rows.index.size());
    loss_sum_ += out.loss.item<double>() * n;
    tokens_ += rows.real_tokens;
    accumulate(rows, b, out);
    return out.loss * (n / total_pairs_);
  }

  StepResult finish_step() override {
    if (comm().world() > 1) sum_across_ranks();
    nlohmann::json m = stats_.to_json(uses_reference());
    m["objective"] = preference_objective_name(opt_.objective);
    if (!by_tag_.empty()) {
      m["by_tag"] = nlohmann::json::object();
      for (const auto& [tag, st] : by_tag_) m["by_tag"][tag] = st.to_json(uses_reference());
    }
    return {loss_sum_ / total_pairs_, tokens_, m};
  }

  nlohmann::json cursor() const override { return order_->cursor(); }
  void restore(const nlohmann::json& c) override { order_->restore(c); }

  std::string progress(const StepResult& r) const override {
    char buf[64];
    std::snprintf(buf, sizeof buf, "acc %.2f  margin %.3f", r.metrics.value("accuracy", 0.0), r.metrics.value("margin", 0.0));
    return buf;
  }

  // KL(policy || reference) on held-out prompts: the mean over prompts of
  // log pi(y|x) - log pi_ref(y|x) for y sampled from the policy (temperature 1, fixed seed).
  std::vector<nlohmann::json> checkpoint_events(Llama& model, int64_t step) override {
    if (kl_prompts_.empty()) return {};
    torch::NoGradGuard no_grad;
    SampleOptions so;
    so.max_new_tokens = static_cast<int>(setup_.stage.train.kl_max_new_tokens);
    so.temperature = 1.0;
    so.seed = 0x6b6c;  // the same samples' seed at every checkpoint; the training RNG is untouched
    so.stop_ids = {setup_.tmpl.end_id()};
    std::vector<PairExample> samples;
    const auto outs = generate(model, kl_prompts_, so);
    for (size_t i = 0; i < outs.size(); ++i) {
      if (outs[i].empty()) continue;
      // Scored as a pair with itself: only the chosen half is read.
      samples.push_back({kl_prompts_[i], outs[i], outs[i], std::vector<float>(outs[i].size(), 1.0f), "", {}});
    }
    if (samples.empty()) return {};
    torch::Tensor pc, pr, rc, rr;
    compute_pair_logprobs(model, samples, 16, device_, pc, pr);
    {
      const auto off = reference_scope();
      compute_pair_logprobs(*reference_, samples, 16, device_, rc, rr);
    }
    const double kl = (pc - rc).mean().item<double>();
    return {{{"event", "kl"}, {"step", step}, {"stage", setup_.stage.name}, {"value", kl},
             {"prompts", samples.size()}, {"max_new_tokens", so.max_new_tokens}}};
  }

 private:
  bool uses_reference() const { return opt_.objective != PreferenceObjective::simpo; }
  Comm& comm() const { return setup_.comm; }

  // The step's loss and statistics over every rank's pairs. The tags are those of all pairs the
  // step drew (each rank knows them all), so every rank sums the same vector layout.
  void sum_across_ranks() {
    std::set<std::string> tags;
    for (size_t i : step_pairs_) {
      const auto& t = pool_[i].tags;
      for (auto it = t.begin(); it != t.end(); ++it) tags.insert(tag_key(it.key(), *it));
    }
    std::vector<double> v;
    v.reserve(2 + PairStats::kFields * (1 + tags.size()));
    v.push_back(loss_sum_);
    v.push_back(static_cast<double>(tokens_));
    stats_.append_to(v);
    for (const auto& tag : tags) by_tag_[tag].append_to(v);
    comm().sum(v);
    loss_sum_ = v[0];
    tokens_ = static_cast<int64_t>(v[1]);
    stats_ = PairStats::from(&v[2]);
    size_t at = 2 + PairStats::kFields;
    for (const auto& tag : tags) {
      by_tag_[tag] = PairStats::from(&v[at]);
      at += PairStats::kFields;
    }
  }
  static std::string tag_key(const std::string& key, const nlohmann::json& value) {
    return key + "=" + (value.is_string() ? value.get<std::string>() : value.dump());
  }

  // The reference: train.reference, or the stage's starting weights, which are saved into
  // <run>/reference/stage<k> when the stage starts, so a resumed run finds them again.
  void setup_reference(Llama& model) {
    const TrainSection& T = setup_.stage.train;
    std::string dir = T.reference;
    // LoRA: the reference is the policy's base, the same model with its adapters switched off.
    reference_is_base_ = dir.empty() && model->has_lora();
    if (dir.empty() && !reference_is_base_) {
      dir = (fs::path(setup_.run_dir) / "reference" / ("stage" + std::to_string(setup_.stage_index))).string();
      if (!setup_.resuming && comm().main()) save_reference(model, dir);
      else if (!fs::exists(fs::path(dir) / "config.json"))
        throw Error("stage '" + setup_.stage.name + "': resuming needs the reference weights saved when the stage began, "
                    "and " + dir + " is missing. Set train.reference to the stage's starting checkpoint, or start the "
                    "run over (resume=never, another out_dir).");
    }
    if (reference_is_base_) {
      reference_ = std::make_unique<Llama>(model);  // the same module: no second copy of the weights
    } else {
      reference_ = std::make_unique<Llama>(load_model(dir, model->dtype()));  // held like the trained model's base
      (*reference_)->to(device_);
      (*reference_)->eval();
      for (auto& p : (*reference_)->parameters()) p.set_requires_grad(false);
    }
    if (T.reference_mode == "cached" && uses_reference()) {
      const auto off = reference_scope();
      const std::string key = reference_cache_key(weights_hash(*reference_), setup_.tokenizer_hash, pairs_hash(pool_));
      auto c = cached_reference_logprobs(setup_.recipe.cache_dir, key, *reference_, pool_, T.batch_size, device_);
      std::cerr << "[" << setup_.stage.name << "] reference log-probs: " << (c.hit ? "cache hit " : "computed, cached in ")
                << c.path << std::endl;
      cached_chosen_ = c.chosen.to(device_);
      cached_rejected_ = c.rejected.to(device_);
      if (T.kl_prompts.empty()) reference_.reset();  // not needed any more
    }
  }

  static void save_reference(Llama& model, const std::string& dir) {
    const std::string tmp = dir + ".tmp";
    fs::remove_all(tmp);
    fs::create_directories(tmp);
    save_model(model, tmp);
    fsync_path(tmp);
    fs::remove_all(dir);
    fs::rename(tmp, dir);
    fsync_path(fs::path(dir).parent_path().string());
  }

  void reference_logprobs(const PairRows& rows, torch::Tensor& chosen, torch::Tensor& rejected) {
    if (cached_chosen_.defined()) {
      auto idx = torch::tensor(std::vector<int64_t>(rows.index.begin(), rows.index.end()), torch::kInt64).to(device_);
      chosen = cached_chosen_.index_select(0, idx);
      rejected = cached_rejected_.index_select(0, idx);
      return;
    }
    torch::NoGradGuard no_grad;
    const auto off = reference_scope();
    const PairLogprobs ref = pair_logprobs(*reference_, rows);
    chosen = ref.chosen;
    rejected = ref.rejected;
  }

  void accumulate(const PairRows& rows, const PreferenceBatch& b, const PreferenceOutput& out) {
    const auto cr = out.chosen_reward.to(torch::kCPU, torch::kDouble), rr = out.rejected_reward.to(torch::kCPU, torch::kDouble);
    torch::Tensor cd, rd;
    if (uses_reference()) {
      cd = (b.policy_chosen - b.ref_chosen).detach().to(torch::kCPU, torch::kDouble);
      rd = (b.policy_rejected - b.ref_rejected).detach().to(torch::kCPU, torch::kDouble);
    }
    for (size_t k = 0; k < rows.index.size(); ++k) {
      const int64_t i = static_cast<int64_t>(k);
      auto add = [&](PairStats& s) {
        const double c = cr[i].item<double>(), r = rr[i].item<double>();
        s.n += 1;
        s.correct += c > r;
        s.margin += c - r;
        s.chosen_reward += c;
        s.rejected_reward += r;
        if (cd.defined()) {
          s.chosen_drift += cd[i].item<double>();
          s.rejected_drift += rd[i].item<double>();
        }
      };
      add(stats_);
      const auto& tags = pool_[rows.index[k]].tags;
      for (auto it = tags.begin(); it != tags.end(); ++it)
        add(by_tag_[tag_key(it.key(), *it)]);
    }
  }

  ObjectiveSetup setup_;
  torch::Device device_;
  PreferenceOptions opt_;
  std::vector<PairExample> pool_;
  std::unique_ptr<PairOrder> order_;
  std::unique_ptr<Llama> reference_;
  bool reference_is_base_ = false;  // reference_ is the policy itself, read with its adapters off
  // While it lives, reference_ computes the reference (adapters off when it is the policy's base).
  std::unique_ptr<LoraOff> reference_scope() {
    return reference_is_base_ ? std::make_unique<LoraOff>(**reference_) : nullptr;
  }
  torch::Tensor cached_chosen_, cached_rejected_;
  std::vector<std::vector<int>> kl_prompts_;
  std::vector<std::vector<size_t>> micro_;
  std::vector<size_t> step_pairs_;  // every rank's pairs of this step
  double total_pairs_ = 0, loss_sum_ = 0;
  int64_t tokens_ = 0;
  PairStats stats_;
  std::map<std::string, PairStats> by_tag_;
};

}  // namespace

std::unique_ptr<Objective> make_objective(const ObjectiveSetup& setup, Llama& model) {
  if (setup.stage.train.objective == "sft") return std::make_unique<SftObjective>(setup);
  return std::make_unique<DpoFamilyObjective>(setup, model);
}

}  // namespace ethos
