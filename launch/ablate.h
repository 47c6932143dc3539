// `ethos ablate MATRIX`: an ablation matrix run to completion, then reported.
//   name: why_beats_rule              # runs go to <out>/<cell>/seed<k>/
//   out: runs/why_beats_rule          # default: runs/<name>
//   recipes: [world/r0.yaml, ...]     # relative to the matrix file
//   seeds: [0, 1, 2]                  # the recipe's seed (alignment order, and the base unless base_seeds)
//   base_seeds: [0, 1]                # optional: seeds of the shared stages (the pre-trained base),
//                                     # crossed with seeds; run directories base<b>-seed<k>
//   axes:                             # optional: any recipe key, crossed with everything else
//     model.arch.hidden_size: [64, 128]
//     stages.1.train.steps: {name: align_steps, values: [50, 150]}
//   worlds:                           # optional: generated worlds, crossed with everything else
//     data_dir: data/world            # where the recipes read the world's files
//     seed: 7                         # generation seed (default 7)
//     list:
//       - {name: stories, world: ../datasets/world/default.yaml}
//       - {name: no_stories, world: ../datasets/world/default.yaml, set: {pretrain.principle_stories: false}}
//       - {name: rs25, world: ..., set: {alignment.rationale_share: 0.25},
//          overrides: ["stages.1.data.sources.0.weight=0.25"]}   # recipe keys for this world's runs only
//   overrides: ["train.steps=100"]    # optional, applied to every run (key=value, as on `ethos train`)
// A cell is one recipe with one value of every axis and one world; its directory name is the
// recipe's file stem followed by "-name=value" per world and axis (r0-world=stories-hidden_size=64),
// so `ethos report` compares every combination as its own row. Each world is generated once into
// <out>/worlds/<name>/data (again only when its file, seed or the generator changed), and the
// cell's recipe reads it there (recipe key `rebase`; a tokenizer trained from the world's files
// moves to <out>/worlds/<name>/tokenizer.model).
// Runs go one after another in this process (--local); each run resumes where it stopped, so a
// killed ablation continues when started again. Shared stages (stage `share: true`) are trained
// once per base (seed, axis values and world) and reused by the other recipes. The report follows.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "trainer/trainer.h"

namespace ethos {

struct MatrixAxis {
  std::string key;                  // recipe key path, as in an override (stages.1.train.lr)
  std::string name;                 // in directory names: the key's last part unless given
  std::vector<std::string> values;  // YAML scalars
};

struct MatrixWorld {
  std::string name;
  std::string config;               // the world YAML (resolved path)
  std::vector<std::string> set;     // knob overrides "pretrain.fiction_share=0.5"
  std::vector<std::string> overrides;  // recipe overrides for this world's cells (after the matrix's)
};

struct AblationMatrix {
  std::string name, out, path;
  std::vector<std::string> recipes;  // resolved paths
  std::vector<int64_t> seeds;
  std::vector<int64_t> base_seeds;   // empty: shared stages use the run's seed
  std::vector<MatrixAxis> axes;
  std::vector<MatrixWorld> worlds;
  std::string world_dir;             // the path prefix the recipes use for the world's files
  uint64_t world_seed = 7;
  std::vector<std::string> overrides;
};

// One cell of the matrix: a recipe with one value per axis and one world, trained with one seed
// (and base seed) into its run directory.
struct AblationCell {
  std::string recipe;  // the recipe file
  std::string stem;    // the cell's name and directory: recipe stem + "-name=value" per world/axis
  int64_t seed = 0;
  int64_t base_seed = -1;  // -1: none (shared stages use `seed`)
  std::string world;       // "" without worlds
  std::vector<std::pair<std::string, std::string>> axis_values;  // name -> value
  std::string dir;     // <out>/<stem>/<unit()>
  std::vector<std::string> overrides;  // the matrix's, the world's own, the axes', the world's data, then seeds and out_dir=
  std::string unit() const;  // "seed<k>" or "base<b>-seed<k>": the pairing unit in the report
};
// Every cell; base seeds outermost, then seeds, worlds, axis values, recipes (the order --local
// runs them in: a shared stage is trained by the first cell of its base and reused by the rest).
std::vector<AblationCell> ablation_cells(const AblationMatrix& m);

// Reads and checks the matrix (every recipe loads with every axis value before anything runs).
AblationMatrix load_matrix(const std::string& path, const std::vector<std::string>& extra_overrides = {});

// The world directory of world `name`: <out>/worlds/<name> (data/ and tokenizer.model inside).
std::string world_root(const AblationMatrix& m, const std::string& name);
// Generates every world of the matrix that is missing or stale (rank 0); returns what it did.
void prepare_worlds(const AblationMatrix& m);

struct AblateOptions {
  bool dry_run = false;  // list the runs and stop
  bool report = true;
  TrainOptions train;  // for every run (the ethos executable, for eval.async)
};
int run_ablation(const AblationMatrix& m, const AblateOptions& opt);
// <out>/ablation.json: the matrix's cells (cell name, seeds, axis values, world, run directory
// relative to <out>), so that `ethos report` can say which cells are missing.
void write_ablation_manifest(const AblationMatrix& m, const std::vector<AblationCell>& cells);

}  // namespace ethos
