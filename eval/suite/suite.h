// Eval suites (eval/FORMAT.md): a suite YAML (item files, scoring options, parser patterns,
// what to report) and its JSONL items, read into typed structs and validated. Every problem
// found is reported at once in one ethos::Error, one per line, each naming file:line (items) or
// the key path and line (YAML) and how to fix it.
#pragma once
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "datasets/records.h"
#include "eval/suite/parser.h"

namespace ethos {

struct SuiteItem {
  std::string id;
  std::string task = "scenario";            // scenario | qa
  std::string split;                        // id | ood
  std::string family;                       // template family
  std::map<std::string, std::string> axes;  // axis name -> value
  bool benign = false;                      // a benign twin: acting is right, refusal = over-refusal
  std::string system;                       // "" when none
  std::vector<Message> messages;            // the conversation, ending with a user turn (prompt -> one user message)
  std::vector<Candidate> candidates;        // >= 2, exactly one aligned
  PatternSet patterns;                      // per-item parser patterns (tried before the suite's)
  nlohmann::json tags = nlohmann::json::object();
  std::string where;                        // "file:line"

  size_t aligned_index() const;             // the one aligned candidate
};

struct LikelihoodScoring {
  bool enabled = true;
  std::string normalize = "mean";           // the choice rule: mean (per token) | sum; both are reported
  std::vector<std::string> modes{"direct", "reason_first"};
  int max_rationale_tokens = 48;
};

struct GenerateScoring {
  bool enabled = false;
  int samples = 4;
  double temperature = 0.7;
  double top_p = 1.0;
  int max_new_tokens = 48;
};

struct ScoringOptions {
  LikelihoodScoring likelihood;
  GenerateScoring generate;
  int64_t batch_tokens = 16384;             // token budget of one scoring batch (speed and memory only)
  int64_t subsample = 0;                    // > 0: intermediate checkpoints score this many items (stratified)
};

struct ReportOptions {
  std::vector<std::string> splits{"id", "ood"};
  std::vector<std::string> axes;            // default: every axis name the items use, sorted
};

struct Suite {
  std::string name;                         // default: the YAML file's stem
  std::string path;                         // the YAML file
  std::vector<std::string> files;           // item files, resolved
  std::vector<SuiteItem> items;             // in file order
  ScoringOptions scoring;
  PatternSet patterns;                      // suite-wide parser patterns
  ReportOptions report;
  // principles: id -> texts that state it (a world's rationale paraphrases and rule): which
  // principle a model's own reason-first rationale names (eval/score/metrics.h). Optional.
  std::map<std::string, std::vector<std::string>> principles;
  std::string hash;                         // content hash (FNV-1a) of the YAML and every item file
};

// Which of `principles` a rationale names: the one whose closest text has the largest share
// of its content words (4+ letters) in the rationale, if that share is >= 0.5 and no other
// principle ties it; "none" otherwise (also for an empty rationale).
std::string named_principle(const std::map<std::string, std::vector<std::string>>& principles,
                            const std::string& rationale);

// Reads and validates the suite YAML and all of its item files.
Suite load_suite(const std::string& yaml_path);

// A fixed stratified subsample of n item indices (sorted): strata are (split, harm axis,
// family); each stratum gets its share of n by largest remainder (ties to the larger stratum,
// then the first in order), at least one item while n allows, and its items are drawn by a
// shuffle seeded from `seed` and the stratum. n >= the suite's size gives every item.
std::vector<size_t> subsample_items(const Suite& suite, size_t n, uint64_t seed);
// The suite restricted to `items` (indices into suite.items, in that order); the hash notes it.
Suite suite_subset(const Suite& suite, const std::vector<size_t>& items);

// Parses one item line (used by load_suite; exposed for tests and tools). Problems are appended
// to *problems, each prefixed with `where` ("file:line"); the returned item is complete only
// when no problem was added.
SuiteItem parse_item(const std::string& line, const std::string& where, std::vector<std::string>* problems);

// The generation scorer's parser applied to one item of a suite (item patterns, then the
// suite's, then the item's candidate texts; see parser.h).
Label parse_generation(const Suite& suite, const SuiteItem& item, const std::string& text);

}  // namespace ethos
