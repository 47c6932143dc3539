// `ethos ablate MATRIX`: an ablation matrix (recipes x seeds) run to completion, then reported.
//   name: why_beats_rule              # runs go to <out>/<recipe file stem>/seed<k>/
//   out: runs/why_beats_rule          # default: runs/<name>
//   recipes: [world/r0.yaml, ...]     # relative to the matrix file
//   seeds: [0, 1, 2]
//   overrides: ["train.steps=100"]    # optional, applied to every run (key=value, as on `ethos train`)
// Runs go one after another in this process (--local); each run resumes where it stopped, so a
// killed ablation continues when started again. Shared stages (stage `share: true`) are trained
// once per seed and reused by the other recipes. The report (`ethos report`) follows.
#pragma once
#include <string>
#include <vector>

namespace ethos {

struct AblationMatrix {
  std::string name, out, path;
  std::vector<std::string> recipes;  // resolved paths
  std::vector<int64_t> seeds;
  std::vector<std::string> overrides;
};

// One cell of the matrix: a recipe trained with one seed into its run directory.
struct AblationCell {
  std::string recipe;  // the recipe file
  std::string stem;    // its file stem: the cell's name and directory
  int64_t seed = 0;
  std::string dir;     // <out>/<stem>/seed<k>
  std::vector<std::string> overrides;  // the matrix's, then seed= and out_dir=
};
// Every cell, seeds outermost (the order --local runs them in).
std::vector<AblationCell> ablation_cells(const AblationMatrix& m);

// Reads and checks the matrix (every recipe loads with every seed before anything runs).
AblationMatrix load_matrix(const std::string& path, const std::vector<std::string>& extra_overrides = {});

struct AblateOptions {
  bool dry_run = false;  // list the runs and stop
  bool report = true;
};
int run_ablation(const AblationMatrix& m, const AblateOptions& opt);
// <out>/ablation.json: the matrix's cells (recipe, seed, run directory relative to <out>), so that
// `ethos report` can say which cells are missing.
void write_ablation_manifest(const AblationMatrix& m);

}  // namespace ethos
