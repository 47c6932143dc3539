#!/usr/bin/env bash
# Load time and peak memory of a ~1.1B-parameter checkpoint (TinyLlama's shape, random fp32
# weights, ~4.4 GB in 2 GiB shards) against its size on disk: ethos's memory-mapped load and the
# read-whole-shard path before it, each run twice, alternating, in fresh processes.
#   tests/bench/bench_load.sh [build-dir]           SHAPE="512 4 8 4 1408 32000" for a small one
# Needs ~5 GB of disk under build-dir/bench_load and ~7 GB of memory.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build="${1:-$root/build}"
shape="${SHAPE:-2048 22 32 4 5632 32000}"
cmake --build "$build" --target bench_load -j "$(nproc)" >/dev/null
out="$build/bench_load"
model="$out/model-${shape// /x}"
mkdir -p "$out"
if [ ! -f "$model/config.json" ]; then
  echo "[bench_load] writing random weights ($shape) to $model"
  "$build/tests/bench/bench_load" write "$model" $shape | tee "$out/write.json"
fi
: > "$out/results.jsonl"
if [ ! -f "$model-bf16/config.json" ]; then
  echo "[bench_load] writing its bf16 copy to $model-bf16"
  "$build/tests/bench/bench_load" write-bf16 "$model" "$model-bf16"
fi
for round in 1 2; do
  for mode in load load-copy; do
    "$build/tests/bench/bench_load" "$mode" "$model" | tee -a "$out/results.jsonl"
  done
  for dtype in bfloat16 float32; do  # the bf16 file, held in bf16 (model.dtype) and widened
    "$build/tests/bench/bench_load" load "$model-bf16" "$dtype" | sed 's/"mode":"load"/"mode":"bf16-'"$dtype"'"/' |
      tee -a "$out/results.jsonl"
  done
done
python3 - "$out/results.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
size = rows[0]["bytes"]
print(f"\nweights on disk: {size/2**30:.2f} GiB (float32), {[r for r in rows if r['mode'].startswith('bf16')][0]['bytes']/2**30:.2f} GiB (bf16)")
print(f"{'path':<36}{'build model s':>14}{'read weights s':>16}{'peak RSS GiB':>14}{'RSS / size':>12}")
for mode, name in (("load", "mmap (ethos)"), ("load-copy", "read whole shard (before)"),
                   ("bf16-bfloat16", "bf16 file, model.dtype bfloat16"), ("bf16-float32", "bf16 file, widened to float32")):
    for r in [r for r in rows if r["mode"] == mode]:
        print(f"{name:<36}{r['construct_s']:>14.2f}{r['load_s']:>16.2f}{r['peak_rss_bytes']/2**30:>14.2f}"
              f"{r['peak_rss_bytes']/r['bytes']:>12.2f}")
PY
