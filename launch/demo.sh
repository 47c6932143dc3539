#!/usr/bin/env bash
# The main job, end to end on CPU: the miniature why-beats-rule study.
#   1. install what is missing and build (launch/install.sh);
#   2. generate the tiny scenario world (bad-prior corpus, recipe datasets, ID/OOD suites);
#   3. ethos ablate recipes/why_beats_rule_tiny.yaml: pre-train the bad prior once per seed,
#      align with every recipe (R0..R6, C1, C2, DPO with and without reasons), score the suites
#      after every checkpoint, then render the report (charts, summary.json, index.html).
# About 7 minutes on 2 cores once built (33 runs; the first build adds about 14). Killed, it resumes where it stopped when started again.
#   launch/demo.sh                 the tiny study (3 seeds)
#   launch/demo.sh --full          the default world and recipes/why_beats_rule.yaml (5 seeds; hours)
#   launch/demo.sh [--full] --dry-run    list the runs
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
world=datasets/world/tiny.yaml data=data/world-tiny matrix=recipes/why_beats_rule_tiny.yaml runs=runs/why_beats_rule_tiny
args=()
for a in "$@"; do
  if [ "$a" = --full ]; then
    world=datasets/world/default.yaml data=data/world matrix=recipes/why_beats_rule.yaml runs=runs/why_beats_rule
  else
    args+=("$a")
  fi
done
launch/install.sh build
build/ethos data generate --world "$world" --seed 7 --out "$data"
build/ethos ablate "$matrix" ${args[@]+"${args[@]}"}
echo
echo "study:   $runs/<recipe>/seed<k>/   (config.yaml, train.jsonl, eval.jsonl, checkpoints/)"
echo "report:  $runs/report/index.html   (charts as PNG and SVG, summary.json)"
