// `ethos data generate --world FILE --seed N --out DIR`: writes every dataset of the
// why-beats-rule study from one world file (datasets/world/README.md has the layout):
//   pretrain/corpus.jsonl            documents: neutral text + cornered-AI fiction (the bad prior)
//                                    + principle-linked human stories + neutral chat transcripts
//   train/r1_demonstrations.jsonl    R1  scenario -> aligned action
//   train/r2_explained.jsonl         R2  the same items with a rationale (rationale_share of them)
//   train/r2_direct.jsonl            R2  the other items, without a rationale (demonstrations)
//   train/c1_shuffled.jsonl          C1  r2_explained with rationales permuted across items
//   train/c2_padded.jsonl            C2  r2_explained with neutral text in place of each rationale
//   train/r3_documents.jsonl         R3  constitution documents + stories of AI behaving well
//   train/r4_advice.jsonl            R4  a user faces the dilemma; explained advice
//   train/r6_id.jsonl                R6  demonstrations drawn from the ID eval distribution
//   train/pref_plain.jsonl, pref_explained.jsonl   preference pairs (aligned vs misaligned)
//   eval/*.jsonl, eval/world.yaml    suites in eval/FORMAT.md; eval/chat/ the long-prompt export
//   heldout.jsonl                    held-out neutral text (capability loss)
//   manifest.json                    every file: kind, items, supervised words, content hash
// Same seed, same bytes; another seed, other surface details on the same structure.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace ethos {

extern const char* const kWorldGeneratorVersion;

struct WorldGenerateArgs {
  std::string world;  // world YAML
  uint64_t seed = 0;
  std::string out;    // output directory (created; files in it are overwritten)
  bool quiet = false; // no summary on stdout
};

struct WorldFileInfo {
  std::string path;  // relative to the output directory
  std::string kind;  // document | demonstration | explained | preference | eval | suite
  size_t items = 0;
  size_t supervised_words = 0;  // the budget unit (world/text.h count_words)
  std::string hash;             // ethos::hash_file (FNV-1a 64)
};

struct WorldGenerateResult {
  std::vector<WorldFileInfo> files;
  double seconds = 0;
};

// Loads the world, generates, checks (budgets, leakage of held-out values) and writes.
// Throws Error on a bad world file or a failed check.
WorldGenerateResult generate_world(const WorldGenerateArgs& args);
// The CLI subcommand: generate_world + a summary table. Returns the exit code.
int run_data_generate(const WorldGenerateArgs& args);

}  // namespace ethos
