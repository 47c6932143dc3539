#include "eval/score/scorers.h"

#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <algorithm>

#include "datasets/base/util.h"
#include "trainer/objective/batch.h"
#include "eval/score/batched.h"
#include "trainer/model/generate.h"

namespace ethos {

void require_rationale_markers(const ChatTemplate& tmpl) {
  if (!tmpl.has_rationale())
    throw Error("reason_first scoring lets the model write its rationale between <|rationale|> and <|/rationale|>, but the "
                "tokenizer has no such tokens (chat_template " + tmpl.format() + "): score in direct mode, or add the two "
                "markers to the tokenizer as added tokens");
}

std::vector<int> item_prompt(const ChatTemplate& tmpl, const SuiteItem& item) {
  std::vector<Message> context;
  if (!item.system.empty()) context.push_back({"system", item.system});
  context.insert(context.end(), item.messages.begin(), item.messages.end());
  return tmpl.render_prompt(context);
}

std::vector<std::vector<ContinuationScore>> score_candidates(Llama& model, const std::vector<std::vector<int>>& prefixes,
                                                             const std::vector<std::vector<std::vector<int>>>& candidates,
                                                             size_t items_per_batch) {
  if (prefixes.size() != candidates.size())
    throw Error("score_candidates: " + std::to_string(prefixes.size()) + " prefixes but " +
                std::to_string(candidates.size()) + " candidate lists");
  torch::NoGradGuard no_grad;
  const auto dev = model->parameters().front().device();
  const int64_t max_pos = model->config().max_position_embeddings;
  std::vector<std::vector<ContinuationScore>> out(prefixes.size());
  for (size_t start = 0; start < prefixes.size(); start += items_per_batch) {
    const size_t end = std::min(prefixes.size(), start + items_per_batch);
    const int64_t B = static_cast<int64_t>(end - start);
    // 1. prefixes, left-padded: [B,P]
    size_t P = 1, C = 1;
    int64_t R = 0;
    for (size_t i = start; i < end; ++i) {
      if (prefixes[i].empty()) throw Error("score_candidates: prefix " + std::to_string(i) + " is empty");
      P = std::max(P, prefixes[i].size());
      for (const auto& c : candidates[i]) {
        if (c.empty()) throw Error("score_candidates: item " + std::to_string(i) + " has an empty candidate");
        C = std::max(C, c.size());
        if (max_pos > 0 && static_cast<int64_t>(prefixes[i].size() + c.size()) > max_pos)
          throw Error("an eval item with its candidate is " + std::to_string(prefixes[i].size() + c.size()) +
                      " tokens, beyond the model's max_position_embeddings (" + std::to_string(max_pos) +
                      "): shorten the suite's prompts");
        ++R;
      }
    }
    std::vector<int64_t> ptok(B * P, 0), pad(B), row_item, ctok(R * C, 0);
    std::vector<float> cmask(R * C, 0);
    for (int64_t b = 0; b < B; ++b) {
      const auto& p = prefixes[start + b];
      pad[b] = static_cast<int64_t>(P - p.size());
      std::copy(p.begin(), p.end(), ptok.begin() + b * static_cast<int64_t>(P) + pad[b]);
      for (const auto& c : candidates[start + b]) {
        const int64_t r = static_cast<int64_t>(row_item.size());
        row_item.push_back(b);
        std::copy(c.begin(), c.end(), ctok.begin() + r * static_cast<int64_t>(C));
        std::fill(cmask.begin() + r * static_cast<int64_t>(C), cmask.begin() + r * static_cast<int64_t>(C) + c.size(), 1.0f);
      }
    }
    const auto left_pad = torch::tensor(pad, torch::kInt64).to(dev);
    KVCache cache;
    const auto plogits = model->forward_cached(torch::tensor(ptok, torch::kInt64).view({B, (int64_t)P}).to(dev), cache,
                                               left_pad);  // [B,P,V]
    // 2. every candidate row continues its item's cache: [R,C]
    const auto idx = torch::tensor(row_item, torch::kInt64).to(dev);
    KVCache rows = cache.select_rows(idx);
    const auto cand = torch::tensor(ctok, torch::kInt64).view({R, (int64_t)C}).to(dev);
    const auto clogits = model->forward_cached(cand, rows);  // [R,C,V]
    // token j of a candidate is predicted by the prefix's last position (j = 0) or by candidate position j-1
    const auto first = plogits.select(1, -1).index_select(0, idx).unsqueeze(1);              // [R,1,V]
    const auto predictors = torch::cat({first, clogits.narrow(1, 0, (int64_t)C - 1)}, 1);  // [R,C,V]
    const auto logp = token_logprobs(predictors, cand);                                     // [R,C]
    const auto sums = (logp * torch::tensor(cmask, torch::kFloat32).view({R, (int64_t)C}).to(dev)).sum(1)
                          .to(torch::kCPU, torch::kDouble);
    int64_t r = 0;
    for (int64_t b = 0; b < B; ++b) {
      for (const auto& c : candidates[start + b]) {
        ContinuationScore s;
        s.tokens = static_cast<int64_t>(c.size());
        s.sum = sums[r++].item<double>();
        s.mean = s.sum / static_cast<double>(s.tokens);
        out[start + b].push_back(s);
      }
    }
  }
  return out;
}

namespace {

constexpr size_t kGenerateRows = 64;  // sequences decoded together

// The model's own rationale after the prompt: <|rationale|> given, greedy to <|/rationale|>.
std::vector<std::vector<int>> reason_first_prefixes(Llama& model, const ChatTemplate& tmpl,
                                                    const std::vector<std::vector<int>>& prompts, int max_tokens) {
  require_rationale_markers(tmpl);
  std::vector<std::vector<int>> starts;
  for (const auto& p : prompts) {
    starts.push_back(p);
    starts.back().push_back(tmpl.rationale_id());
  }
  SampleOptions opt;
  opt.max_new_tokens = max_tokens;
  opt.temperature = 0;
  opt.stop_ids = {tmpl.rationale_end_id(), tmpl.end_id()};
  std::vector<std::vector<int>> generated;
  for (size_t at = 0; at < starts.size(); at += kGenerateRows) {
    const std::vector<std::vector<int>> chunk(starts.begin() + at, starts.begin() + std::min(starts.size(), at + kGenerateRows));
    auto g = generate_batch(model, chunk, opt, std::vector<uint64_t>(chunk.size(), 0));
    generated.insert(generated.end(), g.begin(), g.end());
  }
  for (size_t i = 0; i < starts.size(); ++i) {
    std::vector<int> g = generated[i];
    if (!g.empty() && (g.back() == tmpl.rationale_end_id() || g.back() == tmpl.end_id())) g.pop_back();
    starts[i].insert(starts[i].end(), g.begin(), g.end());
    starts[i].push_back(tmpl.rationale_end_id());  // closed here when the model did not close it
  }
  return starts;
}

}  // namespace

namespace {

// Items are tokenized on the intra-op threads (encoding is const and thread-safe): for the tiny
// world's 600 items and 2,400 candidates that was a tenth of a likelihood eval's time.
template <typename Fn>
void for_each_item(const Suite& suite, const Fn& fn) {
  at::parallel_for(0, static_cast<int64_t>(suite.items.size()), 16, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) fn(static_cast<size_t>(i));
  });
}

std::vector<std::vector<std::vector<int>>> candidate_tokens(const ChatTemplate& tmpl, const Suite& suite) {
  std::vector<std::vector<std::vector<int>>> out(suite.items.size());
  for_each_item(suite, [&](size_t i) {
    for (const auto& c : suite.items[i].candidates) out[i].push_back(tmpl.render_answer(c.text));
  });
  return out;
}

// The argmax candidate of each item under each rule.
ItemOutcome likelihood_outcome(const Suite& suite, size_t i, const std::string& mode,
                               const std::vector<ContinuationScore>& scores) {
  const auto& cands = suite.items[i].candidates;
  size_t best_sum = 0, best_mean = 0;
  for (size_t k = 0; k < cands.size(); ++k) {
    if (scores[k].sum > scores[best_sum].sum) best_sum = k;
    if (scores[k].mean > scores[best_mean].mean) best_mean = k;
  }
  ItemOutcome o;
  o.item = i;
  o.scorer = "likelihood";
  o.mode = mode;
  o.chosen_sum = cands[best_sum].label;
  o.chosen_mean = cands[best_mean].label;
  for (const auto& s : scores) {
    o.sums.push_back(s.sum);
    o.means.push_back(s.mean);
  }
  return o;
}

void check_mode(const std::string& mode) {
  if (mode != "direct" && mode != "reason_first")
    throw Error("likelihood mode '" + mode + "': use direct or reason_first");
}

std::vector<std::vector<int>> suite_prompts(const ChatTemplate& tmpl, const Suite& suite) {
  std::vector<std::vector<int>> prompts(suite.items.size());
  for_each_item(suite, [&](size_t i) { prompts[i] = item_prompt(tmpl, suite.items[i]); });
  return prompts;
}

GenerateScoring generate_options(const Suite& suite, const ChatTemplate& tmpl, SampleOptions* opt) {
  const GenerateScoring& g = suite.scoring.generate;
  opt->max_new_tokens = g.max_new_tokens;
  opt->temperature = g.temperature;
  opt->top_p = g.top_p;
  opt->stop_ids = {tmpl.end_id()};
  return g;
}

// The batched request for likelihood modes (none: generation only).
BatchedRequest likelihood_request(const Suite& suite, const std::vector<std::string>& modes) {
  BatchedRequest req;
  req.direct = std::find(modes.begin(), modes.end(), "direct") != modes.end();
  req.reason_first = std::find(modes.begin(), modes.end(), "reason_first") != modes.end();
  req.max_rationale_tokens = suite.scoring.likelihood.max_rationale_tokens;
  req.batch_tokens = suite.scoring.batch_tokens;
  return req;
}

}  // namespace

std::vector<ItemOutcome> score_likelihood_reference(Llama& model, const ChatTemplate& tmpl, const Suite& suite,
                                                    const std::string& mode, size_t items_per_batch) {
  check_mode(mode);
  std::vector<std::vector<int>> prompts = suite_prompts(tmpl, suite);
  if (mode == "reason_first")
    prompts = reason_first_prefixes(model, tmpl, prompts, suite.scoring.likelihood.max_rationale_tokens);
  const auto scores = score_candidates(model, prompts, candidate_tokens(tmpl, suite), items_per_batch);
  std::vector<ItemOutcome> out;
  for (size_t i = 0; i < suite.items.size(); ++i) out.push_back(likelihood_outcome(suite, i, mode, scores[i]));
  return out;
}

std::vector<ItemOutcome> score_likelihood(Llama& model, const ChatTemplate& tmpl, const Suite& suite,
                                          const std::string& mode) {
  check_mode(mode);
  const BatchedRequest req = likelihood_request(suite, {mode});
  const auto scores = score_batched(model, tmpl, suite_prompts(tmpl, suite), candidate_tokens(tmpl, suite), req);
  std::vector<ItemOutcome> out;
  for (size_t i = 0; i < suite.items.size(); ++i)
    out.push_back(likelihood_outcome(suite, i, mode, req.direct ? scores[i].direct : scores[i].reason_first));
  return out;
}

std::vector<int> answer_tokens(const ChatTemplate& tmpl, const std::vector<int>& generated) {
  auto begin = generated.begin();
  const auto close = std::find(generated.begin(), generated.end(), tmpl.rationale_end_id());
  if (close != generated.end()) begin = close + 1;
  auto end = std::find(begin, generated.end(), tmpl.end_id());
  return std::vector<int>(begin, end);
}

Label generated_label(const ChatTemplate& tmpl, const Suite& suite, const SuiteItem& item, const std::vector<int>& generated) {
  return parse_generation(suite, item, tmpl.tokenizer().decode(answer_tokens(tmpl, generated)));
}

std::vector<ItemOutcome> score_generate(Llama& model, const ChatTemplate& tmpl, const Suite& suite,
                                        uint64_t base_seed) {
  SampleOptions opt;
  const GenerateScoring g = generate_options(suite, tmpl, &opt);
  // Rows: (item, sample) pairs, decoded kGenerateRows at a time.
  std::vector<std::vector<int>> prompts;
  std::vector<uint64_t> seeds;
  std::vector<size_t> owner;
  for (size_t i = 0; i < suite.items.size(); ++i) {
    const auto prompt = item_prompt(tmpl, suite.items[i]);
    for (int s = 0; s < g.samples; ++s) {
      prompts.push_back(prompt);
      seeds.push_back(sample_seed(base_seed, i, s));
      owner.push_back(i);
    }
  }
  std::vector<ItemOutcome> out(suite.items.size());
  for (size_t i = 0; i < out.size(); ++i) {
    out[i].item = i;
    out[i].scorer = "generate";
    out[i].mode = "sample";
  }
  for (size_t at = 0; at < prompts.size(); at += kGenerateRows) {
    const size_t end = std::min(prompts.size(), at + kGenerateRows);
    const auto generated = generate_batch(model, {prompts.begin() + at, prompts.begin() + end}, opt,
                                          {seeds.begin() + at, seeds.begin() + end});
    for (size_t r = at; r < end; ++r)
      out[owner[r]].samples.push_back(generated_label(tmpl, suite, suite.items[owner[r]], generated[r - at]));
  }
  return out;
}

std::vector<ItemOutcome> score_suite(Llama& model, const ChatTemplate& tmpl, const Suite& suite, ScorerPath path) {
  std::vector<ItemOutcome> out;
  const auto& L = suite.scoring.likelihood;
  if (path == ScorerPath::reference) {
    if (L.enabled)
      for (const auto& mode : L.modes) {
        auto o = score_likelihood_reference(model, tmpl, suite, mode);
        out.insert(out.end(), o.begin(), o.end());
      }
    if (suite.scoring.generate.enabled) {
      auto o = score_generate(model, tmpl, suite);
      out.insert(out.end(), o.begin(), o.end());
    }
    return out;
  }
  // one pass: the prompt of each item runs once for every scorer and mode
  if (L.enabled)
    for (const auto& mode : L.modes) check_mode(mode);
  BatchedRequest req = likelihood_request(suite, L.enabled ? L.modes : std::vector<std::string>{});
  if (suite.scoring.generate.enabled) req.samples = generate_options(suite, tmpl, &req.sample).samples;
  const auto scores = score_batched(model, tmpl, suite_prompts(tmpl, suite), candidate_tokens(tmpl, suite), req);
  if (L.enabled)
    for (const auto& mode : L.modes)
      for (size_t i = 0; i < suite.items.size(); ++i) {
        out.push_back(likelihood_outcome(suite, i, mode, mode == "direct" ? scores[i].direct : scores[i].reason_first));
        if (mode == "reason_first") {
          out.back().rationale = tmpl.tokenizer().decode(scores[i].rationale);
          out.back().has_rationale = true;
        }
      }
  if (suite.scoring.generate.enabled)
    for (size_t i = 0; i < suite.items.size(); ++i) {
      ItemOutcome o;
      o.item = i;
      o.scorer = "generate";
      o.mode = "sample";
      for (const auto& g : scores[i].samples)
        o.samples.push_back(generated_label(tmpl, suite, suite.items[i], g));
      out.push_back(o);
    }
  return out;
}

}  // namespace ethos
