#!/usr/bin/env bash
# eval.async end to end (tests/bench/README.md): one recipe trained three times from the same
# start, one after another on the same machine: in-process eval with every core for training
# (the default), in-process eval with training on the thread count async leaves it, and
# eval.async. Prints wall time, training seconds, the seconds training stood still for eval,
# the eval share, and whether the async run's eval values equal those of the in-process run
# with the same training threads (they must: the weights depend only on that count).
#
# Usage: tests/bench/bench_async_eval.sh RECIPE [override ...]
#   e.g. (after launch/demo.sh) the quick study's R1 alignment, scored every 10 steps:
#   tests/bench/bench_async_eval.sh 'runs/quick_study/r1-world=linked/seed0/config.yaml' \
#       stages.1.train.checkpoint_every=10
# Environment: BUILD (default build). Each run gets a fresh run directory and eval cache; a
# shared stage already in the recipe's stage cache is reused by all three (linked, not copied).
# Run it alone: another busy process on the same cores ruins the numbers.
set -euo pipefail
SRC=$(cd "$(dirname "$0")/../.." && pwd)
RECIPE=${1:?usage: bench_async_eval.sh RECIPE [override ...]}
shift
BUILD=${BUILD:-$SRC/build}
WORK=$BUILD/bench_async_eval
rm -rf "$WORK"
mkdir -p "$WORK"
cache=$(sed -n 's/^cache_dir: *//p' "$RECIPE" | head -1)
cache=${cache:-runs/cache}
cores=$(nproc)
half=$(( cores / 2 > 0 ? cores / 2 : 1 ))
rest=$(( cores - half > 0 ? cores - half : 1 ))
variants=("sync:threads=$cores" "sync_same:threads=$rest" "async:eval.async=true threads=$rest eval.threads=$half")
for v in "${variants[@]}"; do
  name=${v%%:*}
  mkdir -p "$WORK/$name/cache"
  [ -d "$cache/stages" ] && ln -s "$(cd "$cache/stages" && pwd)" "$WORK/$name/cache/stages"
  start=$(date +%s.%N)
  # shellcheck disable=SC2086
  "$BUILD/ethos" train "$RECIPE" "$@" out_dir="$WORK/$name/run" cache_dir="$WORK/$name/cache" ${v#*:} \
    > "$WORK/$name.log" 2>&1 || { echo "bench_async_eval: $name failed, see $WORK/$name.log" >&2; tail -5 "$WORK/$name.log" >&2; exit 1; }
  echo "$start $(date +%s.%N)" > "$WORK/$name.wall"
done
/usr/bin/python3 - "$WORK" "$cores" "$half" "$rest" "${variants[@]}" <<'EOF'
import json, sys
work, cores, half, rest, variants = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:]
def events(path):
    return [json.loads(l) for l in open(path) if l.strip()]
def values(name):
    out = []
    for e in events(f"{work}/{name}/run/eval.jsonl"):
        if e.get("event") == "eval_time": continue
        e.pop("checkpoint", None); e.pop("seconds", None)
        out.append(e)
    return out
print(f"{cores} cores; async: training {rest} thread(s), eval process {half}")
print(f"{'variant':<42}{'wall s':>8}{'train s':>9}{'eval s':>8}{'stood still':>12}{'eval share':>11}")
walls = {}
for v in variants:
    name, settings = v.split(":", 1)
    log = events(f"{work}/{name}/run/train.jsonl")
    train = sum(e.get("seconds", 0) for e in log if e.get("event") == "train")
    ckpt = sum(e.get("seconds", 0) for e in log if e.get("event") == "checkpoint")
    evals = sum(e.get("seconds", 0) for e in log if e.get("event") == "eval_hook")
    still = sum(e.get("seconds", 0) for e in log if e.get("event") == "eval_wait" or
                (e.get("event") == "eval_hook" and not e.get("async")))
    t0, t1 = map(float, open(f"{work}/{name}.wall").read().split())
    walls[name] = t1 - t0
    print(f"{name + ' (' + settings + ')':<42}{walls[name]:>8.1f}{train:>9.1f}{evals:>8.1f}{still:>12.1f}"
          f"{100 * still / (train + ckpt + still):>10.1f}%")
same = values("async") == values("sync_same")
print(f"async vs sync (all cores): {walls['sync'] / walls['async']:.2f}x; vs sync at the same training threads: "
      f"{walls['sync_same'] / walls['async']:.2f}x (>1: async is faster)")
print(f"async eval values equal the in-process run's at the same training threads: {'yes' if same else 'NO'}")
EOF
