#!/usr/bin/env bash
# Eval harness cost (tests/bench/README.md): likelihood-scoring throughput in items/s for each
# mode on a suite, and the share of a run's wall time spent in eval hooks.
#
# Usage: tests/bench/bench_eval.sh RUN_DIR [SUITE_YAML] [build-dir]
#   RUN_DIR     a finished run (its newest checkpoint is scored; its train.jsonl gives the share)
#   SUITE_YAML  default: data/world-tiny/eval/world.yaml
# Environment: THREADS (2).
set -euo pipefail
SRC=$(cd "$(dirname "$0")/../.." && pwd)
RUN=${1:?usage: bench_eval.sh RUN_DIR [SUITE_YAML] [build-dir]}
SUITE=${2:-data/world-tiny/eval/world.yaml}
BUILD=${3:-$SRC/build}
THREADS=${THREADS:-2}
PY=/usr/bin/python3
ckpt="$RUN/checkpoints/$(cat "$RUN/checkpoints/latest")"
WORK=$BUILD/bench_eval
rm -rf "$WORK"
mkdir -p "$WORK"
for mode in direct reason_first; do
  sed -E "s/modes: \[[^]]*\]/modes: [$mode]/" "$SUITE" > "$(dirname "$SUITE")/.bench_$mode.yaml"
  "$BUILD/ethos" eval --checkpoint "$ckpt" --suite "$(dirname "$SUITE")/.bench_$mode.yaml" --threads "$THREADS" \
    --out "$WORK/$mode.jsonl" > "$WORK/$mode.out"
  rm -f "$(dirname "$SUITE")/.bench_$mode.yaml"
done
"$PY" - "$WORK" "$RUN" <<'EOF'
import json, sys
work, run = sys.argv[1], sys.argv[2]
for mode in ("direct", "reason_first"):
    t = [json.loads(l) for l in open(f"{work}/{mode}.jsonl") if '"eval_time"' in l][0]
    print(f"likelihood {mode:<13} {t['items'] / t['seconds']:8.1f} items/s  ({t['items']} items in {t['seconds']:.1f} s)")
ev = [json.loads(l) for l in open(f"{run}/train.jsonl") if l.strip()]
train = sum(e.get("seconds", 0) for e in ev if e.get("event") == "train")
ckpt = sum(e.get("seconds", 0) for e in ev if e.get("event") == "checkpoint")
hooks = sum(e.get("seconds", 0) for e in ev if e.get("event") == "eval_hook")
total = train + ckpt + hooks
print(f"eval hooks in {run}: {hooks:.1f} s of {total:.1f} s (train {train:.1f}, checkpoints {ckpt:.1f}) = "
      f"{100 * hooks / total:.1f}% (target <= 15%)")
EOF
