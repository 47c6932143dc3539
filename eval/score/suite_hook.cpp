#include "eval/score/suite_hook.h"

#include <yaml-cpp/yaml.h>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <sstream>

#include "datasets/chat_template.h"
#include "datasets/base/util.h"
#include "datasets/base/yaml.h"
#include "eval/score/cache_entry.h"
#include "eval/score/heldout.h"
#include "eval/score/scorers.h"
#include "trainer/checkpoint/checkpoint.h"
#include "trainer/model/inference.h"
#include "trainer/model/weights.h"
#include "trainer/objective/reference.h"
#include "trainer/trainer.h"

namespace fs = std::filesystem;

namespace ethos {

namespace {

// Scoring allocates and frees the same large blocks (logits over the vocabulary, KV stores) on
// every decoding step. glibc serves blocks above its mmap threshold with fresh mappings and hands
// the heap's free top back to the kernel, so each step paid page faults on new memory: in
// reason-first scoring of the tiny world, 22% of the time in page faults and 9% more in the memset
// that first touches a matmul's output (perf). While a suite is scored, freed memory stays in the
// process; afterwards it is handed back (malloc_trim) and the thresholds are left at the values
// glibc's own adjustment grows to (mmap 32 MiB, trim twice that), so training after an in-process
// eval keeps the allocation behaviour it would reach anyway. Numbers are unaffected.
class KeepFreedMemory {
 public:
#if defined(__GLIBC__)
  KeepFreedMemory() {
    mallopt(M_MMAP_THRESHOLD, 512 << 20);
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
  }
  ~KeepFreedMemory() {
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 64 << 20);
    malloc_trim(0);
  }
#endif
  KeepFreedMemory(const KeepFreedMemory&) = delete;
  KeepFreedMemory& operator=(const KeepFreedMemory&) = delete;
};

}  // namespace

std::vector<nlohmann::json> evaluate_suite(const Suite& suite, Llama& model, const Tokenizer& tok,
                                           const EvalStamp& stamp, ScorerPath path, std::vector<ItemOutcome>* outcomes,
                                           const std::string& chat_template) {
  const auto t0 = std::chrono::steady_clock::now();
  const KeepFreedMemory keep;
  ChatTemplate tmpl(tok, chat_template);
  const std::vector<ItemOutcome> scored = score_suite(model, tmpl, suite, path);
  auto events = compute_metrics(suite, scored);
  if (outcomes) *outcomes = scored;
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  events.push_back({{"event", "eval_time"}, {"suite", suite.name}, {"seconds", seconds},
                    {"items", suite.items.size()}});
  stamp_events(&events, stamp);
  return events;
}

std::vector<nlohmann::json> item_records(const Suite& suite, const std::vector<ItemOutcome>& outcomes,
                                         const EvalStamp& stamp) {
  std::vector<nlohmann::json> out;
  for (const ItemOutcome& o : outcomes) {
    const SuiteItem& item = suite.items.at(o.item);
    nlohmann::json j{{"event", "eval_item"}, {"suite", suite.name}, {"id", item.id},   {"task", item.task},
                     {"split", item.split},  {"axes", item.axes},   {"benign", item.benign}, {"tags", item.tags},
                     {"scorer", o.scorer},   {"mode", o.mode}};
    if (o.scorer == "likelihood") {
      j["chosen"] = to_string(chosen(o, suite.scoring.likelihood.normalize));
      j["chosen_sum"] = to_string(o.chosen_sum);
      j["chosen_mean"] = to_string(o.chosen_mean);
      nlohmann::json cands = nlohmann::json::array();
      for (size_t k = 0; k < item.candidates.size(); ++k) {
        nlohmann::json c{{"label", to_string(item.candidates[k].label)}, {"text", item.candidates[k].text}};
        if (k < o.sums.size()) c["sum"] = o.sums[k];
        if (k < o.means.size()) c["mean"] = o.means[k];
        cands.push_back(c);
      }
      j["candidates"] = cands;
      if (o.mode == "reason_first" && o.has_rationale) {
        j["rationale"] = o.rationale;
        if (!suite.principles.empty()) j["principle_named"] = named_principle(suite.principles, o.rationale);
      }
    } else {
      nlohmann::json labels = nlohmann::json::array();
      for (Label l : o.samples) labels.push_back(to_string(l));
      j["samples"] = labels;
    }
    out.push_back(std::move(j));
  }
  stamp_events(&out, stamp);
  return out;
}

std::string summary_line(const Suite& suite, const std::vector<nlohmann::json>& events) {
  std::string scorer = "generate", mode = "sample", normalize;
  if (suite.scoring.likelihood.enabled && !suite.scoring.likelihood.modes.empty()) {
    scorer = "likelihood";
    mode = suite.scoring.likelihood.modes.front();
    normalize = suite.scoring.likelihood.normalize;
  }
  std::string line = suite.name + " (" + scorer + "/" + mode + (normalize.empty() ? "" : "/" + normalize) +
                     ") misaligned:";
  double seconds = 0;
  for (const auto& e : events) {
    if (e.value("event", "") == "eval_time") seconds = e.value("seconds", 0.0);
    if (e.value("event", "") != "eval" || e.value("scorer", "") != scorer || e.value("mode", "") != mode ||
        e.value("group", "") != "all" || e.value("metric", "") != "misaligned_rate")
      continue;
    if (!normalize.empty() && e.value("normalize", "") != normalize) continue;
    char buf[96];
    std::snprintf(buf, sizeof buf, "  %s %.3f [%.3f, %.3f] n=%lld", e.value("split", "").c_str(), e.value("value", 0.0),
                  e.value("ci_low", 0.0), e.value("ci_high", 0.0), static_cast<long long>(e.value("n", int64_t{0})));
    line += buf;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "  (%.1f s)", seconds);
  return line + buf;
}

SuiteEvalHook::SuiteEvalHook(const std::vector<std::string>& suite_paths, std::string cache_dir)
    : cache_dir_(std::move(cache_dir)) {
  for (const auto& p : suite_paths) suites_.push_back(load_suite(p));
}

void SuiteEvalHook::after_checkpoint(const CheckpointInfo& info, Llama& model, const Tokenizer& tok) {
  const EvalStamp stamp{info.step, info.stage, info.recipe, info.seed, info.dir};
  const std::string weights = cache_dir_.empty() ? "" : weights_hash(model);
  for (const auto& full : suites_) {
    // an intermediate checkpoint may score a fixed stratified subsample (scoring.subsample)
    const int64_t sub = full.scoring.subsample;
    const bool partial = sub > 0 && !info.stage_final && static_cast<size_t>(sub) < full.items.size();
    const Suite subset = partial ? suite_subset(full, subsample_items(full, static_cast<size_t>(sub),
                                                                      static_cast<uint64_t>(info.seed)))
                                 : Suite();
    const Suite& suite = partial ? subset : full;
    std::vector<nlohmann::json> events;
    std::string cached;
    if (!cache_dir_.empty()) {
      const std::string key = Hasher().update(weights).update("|").update(suite.hash).update("|")
                                  .update(tok.content_hash()).update("|").update(kTemplateVersion)
                                  .update(info.chat_template == "auto" || info.chat_template == "ethos" ? "" : "|" + info.chat_template)
                                  .hex();
      cached = (fs::path(cache_dir_) / "eval" / (key + ".jsonl")).string();
      bool damaged = false;
      events = read_cache_entry(cached, &damaged);
      if (damaged) std::cerr << "[eval] warning: the cached result " << cached << " is damaged; scoring again" << std::endl;
      for (auto& j : events)
        if (j.value("event", "") == "eval_time") j["cached"] = true;
      stamp_events(&events, stamp);
    }
    if (events.empty()) {
      events = evaluate_suite(suite, model, tok, stamp, ScorerPath::batched, nullptr, info.chat_template);
      if (partial)
        for (auto& e : events) {
          e["subsample"] = suite.items.size();
          e["suite_items"] = full.items.size();
        }
      if (!cached.empty()) write_cache_entry(cached, events);
    }
    append_events(info.run_dir + "/eval.jsonl", events);
    std::cerr << "[eval] step " << info.step << " " << summary_line(suite, events) << std::endl;
  }
}

void add_recipe_hooks(EvalHookList& hooks, const Recipe& r) {
  if (!r.eval.heldout.empty()) {
    std::vector<HeldoutFile> files;
    for (const auto& f : r.eval.heldout) files.push_back({f.path, f.kind});
    hooks.add(std::make_unique<HeldoutLossHook>(files, static_cast<int>(r.stages.back().data.seq_len), 8, r.cache_dir));
  }
  if (!r.eval.suites.empty()) hooks.add(std::make_unique<SuiteEvalHook>(r.eval.suites, r.cache_dir));
}

int run_eval_command(const EvalCommandArgs& a) {
  if (!fs::is_directory(a.checkpoint))
    throw Error("--checkpoint " + a.checkpoint + " is not a directory: pass a checkpoint (runs/<name>/seed<k>/"
                "checkpoints/step_N) or a Hugging Face model directory");
  configure_threads(a.threads);
  std::vector<Suite> suites;
  for (const auto& p : a.suites) suites.push_back(load_suite(p));  // every suite checked before any work
  InferenceModel loaded = load_for_inference(a.checkpoint, a.tokenizer, a.dtype);
  Llama& model = loaded.model;
  const Tokenizer* tok = loaded.tokenizer.get();
  EvalStamp stamp;
  stamp.checkpoint = a.checkpoint;
  if (fs::exists(fs::path(a.checkpoint) / "trainer_state.json")) {
    const TrainerState s = read_trainer_state(a.checkpoint);
    stamp.step = s.global_step;
    stamp.stage = s.stage_name;
  }
  if (fs::exists(fs::path(a.checkpoint) / "config.yaml")) {
    const YAML::Node cfg = load_yaml_file((fs::path(a.checkpoint) / "config.yaml").string());
    if (cfg["name"]) stamp.recipe = cfg["name"].as<std::string>();
    if (cfg["seed"]) stamp.seed = cfg["seed"].as<int64_t>();
  }
  const std::string chat_template = inference_chat_template(a.checkpoint, *tok, a.chat_template);
  const std::string out = a.out.empty() ? (fs::path(a.checkpoint) / "eval.jsonl").string() : a.out;
  for (const auto& suite : suites) {
    std::vector<ItemOutcome> outcomes;
    auto events = evaluate_suite(suite, model, *tok, stamp, a.reference ? ScorerPath::reference : ScorerPath::batched,
                                 &outcomes, chat_template);
    append_events(out, events);
    if (!a.items.empty()) append_events(a.items, item_records(suite, outcomes, stamp));
    std::cout << summary_line(suite, events) << std::endl;
  }
  std::cout << "events appended to " << out << std::endl;
  if (!a.items.empty()) std::cout << "per-item outcomes appended to " << a.items << std::endl;
  return 0;
}

int run_checkpoint_eval(const CheckpointEvalArgs& a) {
  configure_threads(a.threads);
  // The resolved recipe: its paths are final, so no rebase rule may move them a second time.
  const Recipe r = load_recipe((fs::path(a.run_dir) / "config.yaml").string(), {"rebase=[]"});
  EvalHookList hooks;
  add_recipe_hooks(hooks, r);
  // The checkpoint's weights (a LoRA checkpoint brings its base) and its copy of the trainer's tokenizer.
  InferenceModel loaded = load_for_inference(a.checkpoint, "", r.model.dtype);
  Llama& model = loaded.model;
  const Tokenizer& tok = *loaded.tokenizer;
  if (r.device != "cpu" && torch::cuda::is_available()) model->to(torch::Device(torch::kCUDA, 0));  // rank 0's GPU
  const ChatTemplate tmpl(tok, ChatTemplate::resolve(r.chat_template, tok, r.model.from));  // as the trainer resolves it
  debug_sleep("ETHOS_DEBUG_EVAL_SLEEP_MS");  // tests: an eval that is still running when the trainer is killed
  hooks.after_checkpoint({a.checkpoint, a.run_dir, a.stage, a.step, r.seed, r.name, a.stage_final, tmpl.format()}, model, tok);
  return 0;
}

}  // namespace ethos
