#!/usr/bin/env bash
# Preference-training throughput (tests/bench/README.md): policy tokens/s of DPO with the
# cached reference, DPO with a live reference, and SFT on the same sequences, in one run on
# the same machine. Prints figures; asserts nothing about time.
#
# Usage: tests/bench/bench_dpo.sh [build-dir]      (default: build)
# Environment: THREADS (2), STEPS (25 per run), WARMUP (5 steps skipped per run).
# Files: <build-dir>/bench_dpo/ (data, recipes, runs, summary.json).
set -euo pipefail

SRC=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:-$SRC/build}
PY=/usr/bin/python3
THREADS=${THREADS:-2}
STEPS=${STEPS:-25}
WARMUP=${WARMUP:-5}
# ~3.2M parameters; PAIRS pairs per step, each sequence PROMPT + ANSWER words long.
VOCAB=2048 HIDDEN=256 LAYERS=4 HEADS=8 KV_HEADS=4 INTER=688 PAIRS=4

die() { echo "bench_dpo.sh: $*" >&2; exit 1; }
[[ -d $BUILD ]] || die "build directory '$BUILD' not found. Configure it first: cmake -S $SRC -B $BUILD -DCMAKE_BUILD_TYPE=Release"
(( STEPS > WARMUP )) || die "STEPS ($STEPS) must exceed WARMUP ($WARMUP)"
BUILD=$(cd "$BUILD" && pwd)
if ! log=$(cmake --build "$BUILD" --target ethos -j"$THREADS" 2>&1); then
  echo "$log" | tail -30 >&2
  die "building ethos in $BUILD failed (output above)"
fi
WORK=$BUILD/bench_dpo
rm -rf "$WORK"
mkdir -p "$WORK"

# Pairs whose chosen and rejected answers have the same number of words, and the same
# sequences as SFT demonstrations (prompt -> chosen, prompt -> rejected): both objectives see
# the same tokens. Padding differs: DPO pads rows to the longest pair of a micro-batch, SFT
# packs; tokens/s counts real tokens only.
"$PY" - "$WORK" <<'EOF'
import json, random, sys
work = sys.argv[1]
rng = random.Random(0)
syl = [c + v for c in "bcdfghjklmnprstvwz" for v in "aeiou"]
words = ["".join(rng.choice(syl) for _ in range(rng.randint(1, 3))) for _ in range(3000)]
say = lambda n: " ".join(rng.choice(words) for _ in range(n))
with open(f"{work}/pairs.jsonl", "w") as p, open(f"{work}/sft.jsonl", "w") as s:
    for i in range(400):
        prompt, n = say(rng.randint(50, 70)), rng.randint(40, 60)
        chosen, rejected = say(n), say(n)
        p.write(json.dumps({"prompt": prompt, "chosen": chosen, "rejected": rejected}) + "\n")
        s.write(json.dumps({"prompt": prompt, "response": chosen}) + "\n")
        s.write(json.dumps({"prompt": prompt, "response": rejected}) + "\n")
EOF

recipe() {  # name objective data-kind data-file batch mode
  cat > "$WORK/$1.yaml" <<EOF
# Written by tests/bench/bench_dpo.sh
name: bench-$1
seed: 0
out_dir: $WORK/$1
resume: never
threads: $THREADS
cache_dir: $WORK/cache
tokenizer: {path: $WORK/tokenizer.model, train_files: [$WORK/pairs.jsonl], vocab_size: $VOCAB}
model:
  arch: {vocab_size: $VOCAB, hidden_size: $HIDDEN, intermediate_size: $INTER, num_hidden_layers: $LAYERS,
         num_attention_heads: $HEADS, num_key_value_heads: $KV_HEADS}
data:
  seq_len: 512
  sources: [{path: $4, kind: $3}]
train: {objective: $2, steps: $STEPS, batch_size: $5, lr: 1.0e-4, schedule: constant, log_every: 1,
        checkpoint_every: $((STEPS * 10)), keep_last: 1 $6}
EOF
}
recipe dpo_cached dpo preference "$WORK/pairs.jsonl" $PAIRS ", reference_mode: cached"
recipe dpo_live dpo preference "$WORK/pairs.jsonl" $PAIRS ", reference_mode: live"
recipe sft sft demonstration "$WORK/sft.jsonl" $((2 * PAIRS)) ""

for run in sft dpo_cached dpo_live; do
  echo "[bench] ethos train $run: $STEPS steps (first $WARMUP skipped), $THREADS threads" >&2
  start=$(date +%s%N)
  if ! "$BUILD/ethos" train "$WORK/$run.yaml" > "$WORK/$run.out" 2>&1; then
    tail -30 "$WORK/$run.out" >&2
    die "ethos train $run failed (output above; full log in $WORK/$run.out)"
  fi
  echo $(( ($(date +%s%N) - start) / 1000000 )) > "$WORK/$run.wall_ms"
done

"$PY" - "$WORK" "$WARMUP" <<'EOF'
import json, statistics, sys
work, warmup = sys.argv[1], int(sys.argv[2])
def tps(run):
    ev = [json.loads(l) for l in open(f"{work}/{run}/train.jsonl") if l.strip()]
    ev = [e for e in ev if e.get("event") == "train" and e["stage_step"] > warmup]
    # median over steps: robust to a burst of load from elsewhere on the machine
    return statistics.median(e["tokens"] / e["seconds"] for e in ev), len(ev)
res = {run: tps(run) for run in ("sft", "dpo_cached", "dpo_live")}
wall = {run: int(open(f"{work}/{run}.wall_ms").read()) / 1e3 for run in res}
sft = res["sft"][0]
rows = [(run, f"{t:8.0f} policy tokens/s  (median of {n} steps; {t / sft:.3f}x SFT; whole command {wall[run]:.1f} s)")
        for run, (t, n) in res.items()]
rows.append(("target", "dpo_cached >= 0.9x SFT; a live reference costs about 1.33x the FLOPs (0.75x expected)"))
width = max(len(k) for k, _ in rows)
print("\n".join(f"{k:<{width}}  {v}" for k, v in rows))
json.dump({k: {"tokens_per_s": v[0], "vs_sft": v[0] / sft, "wall_s": wall[k]} for k, v in res.items()},
          open(f"{work}/summary.json", "w"), indent=1)
EOF
