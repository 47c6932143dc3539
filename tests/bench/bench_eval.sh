#!/usr/bin/env bash
# Eval harness cost (tests/bench/README.md): likelihood-scoring throughput in items/s for each
# mode on a suite, by the plain path (--reference-scorer, the scorer before batching) and the
# batched path side by side in one run, and the share of wall time spent in eval hooks.
#
# Usage: tests/bench/bench_eval.sh RUNS [SUITE_YAML] [build-dir]
#   RUNS        a finished run (its newest checkpoint is scored), or a study directory such as
#               runs/why_beats_rule_tiny (its first run's checkpoint is scored; the eval share
#               is summed over every <recipe>/seed<k> run under it)
#   SUITE_YAML  default: data/world-tiny/eval/world.yaml
# Environment: THREADS (2); BASELINE_BIN: another ethos binary (e.g. a build of an older commit)
# whose default path is timed too, as a third column. Run it alone: another busy process on the
# same cores ruins the numbers.
set -euo pipefail
SRC=$(cd "$(dirname "$0")/../.." && pwd)
RUNS=${1:?usage: bench_eval.sh RUNS [SUITE_YAML] [build-dir]}
SUITE=${2:-data/world-tiny/eval/world.yaml}
BUILD=${3:-$SRC/build}
THREADS=${THREADS:-2}
PY=/usr/bin/python3
if [ -f "$RUNS/train.jsonl" ]; then
  run=$RUNS
  logs=("$RUNS/train.jsonl")
else
  mapfile -t logs < <(find "$RUNS" -mindepth 3 -maxdepth 3 -name train.jsonl | sort)
  [ ${#logs[@]} -gt 0 ] || { echo "bench_eval: no <recipe>/seed<k>/train.jsonl under $RUNS" >&2; exit 1; }
  run=$(dirname "${logs[0]}")
fi
ckpt="$run/checkpoints/$(cat "$run/checkpoints/latest")"
WORK=$BUILD/bench_eval
rm -rf "$WORK"
mkdir -p "$WORK"
suite_dir=$(dirname "$SUITE")
for mode in direct reason_first both; do
  modes=$mode
  [ "$mode" = both ] && modes="direct, reason_first"
  yaml="$suite_dir/.bench_$mode.yaml"
  sed -E "s/modes: \[[^]]*\]/modes: [$modes]/" "$SUITE" > "$yaml"
  for path in reference batched; do
    flag=""
    [ "$path" = reference ] && flag=--reference-scorer
    "$BUILD/ethos" eval --checkpoint "$ckpt" --suite "$yaml" --threads "$THREADS" $flag \
      --out "$WORK/$path-$mode.jsonl" > "$WORK/$path-$mode.out"
  done
  if [ -n "${BASELINE_BIN:-}" ]; then
    "$BASELINE_BIN" eval --checkpoint "$ckpt" --suite "$yaml" --threads "$THREADS" \
      --out "$WORK/baseline-$mode.jsonl" > "$WORK/baseline-$mode.out"
  fi
  rm -f "$yaml"
done
"$PY" - "$WORK" "$ckpt" "$SUITE" "${logs[@]}" <<'EOF'
import json, os, sys
work, ckpt, suite, logs = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
baseline = os.path.exists(f"{work}/baseline-direct.jsonl")
def timing(path, mode):
    t = [json.loads(l) for l in open(f"{work}/{path}-{mode}.jsonl") if '"eval_time"' in l][0]
    return t["items"] / t["seconds"], t["items"], t["seconds"]
def values(path, mode):
    return {(e["mode"], e["normalize"], e["split"], e["group"], e["group_value"], e["metric"]): e["value"]
            for e in map(json.loads, open(f"{work}/{path}-{mode}.jsonl")) if e.get("event") == "eval"}
DIAGNOSTICS = {"principle_named_rate", "aligned_rate_if_named", "aligned_rate_if_not_named"}
def agree(plain, batched):
    # every metric of the plain path equal in the batched one; the batched path may add only the
    # reason-first chain's diagnostics, which the plain path does not report (those are compared
    # between the batched path and BASELINE_BIN)
    extra = {k[-1] for k in batched.keys() - plain.keys()}
    return bool(plain) and plain.keys() <= batched.keys() and extra <= DIAGNOSTICS and \
        all(plain[k] == batched[k] for k in plain)
print(f"checkpoint {ckpt}\nsuite      {suite}")
print(f"{'likelihood mode':<24}{'plain items/s':>14}{'batched items/s':>17}{'speed-up':>10}" +
      (f"{'baseline bin':>14}{'vs it':>8}" if baseline else "") + "  same metrics")
for mode in ("direct", "reason_first", "both"):
    old, new = timing("reference", mode), timing("batched", mode)
    same = agree(values("reference", mode), values("batched", mode))
    label = mode if mode != "both" else "direct + reason_first"
    extra = ""
    if baseline:
        base = timing("baseline", mode)
        extra = f"{base[0]:>14.1f}{new[0] / base[0]:>7.2f}x"
        same = same and values("baseline", mode) == values("batched", mode)  # every metric
    print(f"{label:<24}{old[0]:>14.1f}{new[0]:>17.1f}{new[0] / old[0]:>9.2f}x{extra}  {'yes' if same else 'NO'}"
          f"   ({old[1]} items: {old[2]:.2f} s -> {new[2]:.2f} s)")
train = ckpt_s = hooks = 0.0
for log in logs:
    for e in map(json.loads, filter(str.strip, open(log))):
        ev = e.get("event")
        if ev == "train": train += e.get("seconds", 0)
        elif ev == "checkpoint": ckpt_s += e.get("seconds", 0)
        elif ev == "eval_hook" and not e.get("async"): hooks += e.get("seconds", 0)
        elif ev == "eval_wait": hooks += e.get("seconds", 0)  # eval.async: only the wait stops training
total = train + ckpt_s + hooks
print(f"eval hooks over {len(logs)} run(s): {hooks:.1f} s of {total:.1f} s (train {train:.1f}, checkpoints "
      f"{ckpt_s:.1f}) = {100 * hooks / total:.1f}% (target <= 20%)")
EOF
