#!/usr/bin/env bash
# The main job, end to end on CPU: the quick why-beats-rule study, set beside the published one.
#   1. install what is missing and build (launch/install.sh);
#   2. ethos ablate recipes/why_beats_rule_quick.yaml, then its control
#      recipes/why_beats_rule_quick_control.yaml: generate the two worlds (AI transcripts that name
#      the principle before the right action, `linked`, and the same transcripts without it,
#      `unlinked`), pre-train a base per world and seed, align it with R0, R1, R2, C1 (R1, R2 on
#      `unlinked`), and score the model's own sampled answers on the trained, dev and test harm types;
#   3. ethos report with the pre-registered criteria (recipes/why_beats_rule_test.criteria.yaml),
#      each compared with the published study (recipes/results/why_beats_rule_test/): where the
#      quick study agrees with it and where it does not.
# About 14 minutes on 2 cores once built (the first build adds about 15). Killed, it resumes where it stopped.
#   launch/demo.sh                 the quick study (2 bases, a 2-layer model, a shorter pre-training)
#   launch/demo.sh --long          the quick study with the study's own 4-layer model (about 21 minutes)
#   launch/demo.sh --full          the pre-registered study itself (recipes/why_beats_rule_test.yaml and
#                                  its control: 65 runs, about 3 h 20 min)
#   launch/demo.sh --tiny          the whole study at toy size (every recipe, both controls; 5 minutes, noise)
#   launch/demo.sh [...] --dry-run list the runs
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
study=quick args=() long=0
for a in "$@"; do
  case "$a" in
    --full) study=test ;;
    --tiny) study=tiny ;;
    --long) long=1 ;;
    *) args+=("$a") ;;
  esac
done
runs=runs/why_beats_rule_$study
[ "$study" = quick ] && runs=runs/quick_study
if [ "$long" = 1 ]; then
  [ "$study" = quick ] || { echo "demo.sh: --long gives the quick study the study's 4-layer model; not with --full or --tiny" >&2; exit 64; }
  runs=runs/quick_study_long
  args+=(--out "$runs" model.arch.num_hidden_layers=4)
fi
launch/install.sh build
build/ethos ablate "recipes/why_beats_rule_$study.yaml" --no-report ${args[@]+"${args[@]}"}
build/ethos ablate "recipes/why_beats_rule_${study}_control.yaml" --no-report ${args[@]+"${args[@]}"}
for a in ${args[@]+"${args[@]}"}; do [ "$a" = --dry-run ] && exit 0; done
echo
build/ethos report "$runs" --suite world-test-generate --primary generate/sample --baseline r1-world=linked \
  --criteria recipes/why_beats_rule_test.criteria.yaml --compare recipes/results/why_beats_rule_test/report
echo
echo "study:   $runs/<recipe>-world=<world>/seed<k>/   (config.yaml, train.jsonl, eval.jsonl, checkpoints/)"
echo "report:  $runs/report/index.html   (criteria, agreement with the published study, charts, summary.json)"
echo "ID view: build/ethos report $runs --suite world-generate --primary generate/sample --baseline r1-world=linked --out $runs/report-id"
