#!/usr/bin/env bash
# Training throughput benchmark (tests/bench/README.md): `ethos train` against the same model
# trained by a plain PyTorch loop (torch_ref_train.py) with the same shapes and threads, and
# the achieved FLOP/s as a share of a large fp32 matmul (bench_matmul), all in one run.
# Prints figures; asserts nothing about time.
#
# Usage: tests/bench/bench_train.sh [build-dir]      (default: build)
# Environment: THREADS (2), STEPS (40 ethos steps), WARMUP (5 steps skipped on each side),
#              REF_STEPS (15 timed steps per reference run).
# Files: <build-dir>/bench_train/ (recipe, data, tokenizer, the run's train.jsonl, JSON results).
set -euo pipefail

SRC=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:-$SRC/build}
PY=/usr/bin/python3  # Debian's python3-torch; a pyenv python3 earlier on PATH cannot see torch
THREADS=${THREADS:-2}
STEPS=${STEPS:-40}
WARMUP=${WARMUP:-5}
REF_STEPS=${REF_STEPS:-15}
# The model (~4.9M parameters) and batch: B rows of T tokens.
VOCAB=2048 HIDDEN=256 LAYERS=6 HEADS=8 KV_HEADS=4 INTER=688 TIE=1 BATCH=8 SEQ=256

die() { echo "bench_train.sh: $*" >&2; exit 1; }
[[ -d $BUILD ]] || die "build directory '$BUILD' not found. Configure it first: cmake -S $SRC -B $BUILD -DCMAKE_BUILD_TYPE=Release"
[[ -x $PY ]] || die "$PY not found; install python3-torch (Debian) for the reference loop"
(( STEPS > WARMUP )) || die "STEPS ($STEPS) must exceed WARMUP ($WARMUP)"
BUILD=$(cd "$BUILD" && pwd)
if ! log=$(cmake --build "$BUILD" --target ethos bench_matmul -j"$THREADS" 2>&1); then
  echo "$log" | tail -30 >&2
  die "building ethos and bench_matmul in $BUILD failed (output above)"
fi
WORK=$BUILD/bench_train
rm -rf "$WORK"
mkdir -p "$WORK"

# Data: long documents of pseudo-words (tests/bench/bench_docs.py).
"$PY" "$SRC/tests/bench/bench_docs.py" "$WORK/docs.jsonl"

cat > "$WORK/recipe.yaml" <<EOF
# Written by tests/bench/bench_train.sh
name: bench-train
seed: 0
out_dir: $WORK/run
resume: never
threads: $THREADS
tokenizer:
  path: $WORK/tokenizer.model
  train_files: [$WORK/docs.jsonl]
  model_type: bpe
  vocab_size: $VOCAB
model:
  arch:
    vocab_size: $VOCAB
    hidden_size: $HIDDEN
    intermediate_size: $INTER
    num_hidden_layers: $LAYERS
    num_attention_heads: $HEADS
    num_key_value_heads: $KV_HEADS
    tie_word_embeddings: $([[ $TIE == 1 ]] && echo true || echo false)
data:
  seq_len: $SEQ
  sources:
    - {path: $WORK/docs.jsonl, kind: document, weight: 1.0}
train:
  steps: $STEPS
  batch_size: $BATCH
  lr: 1.0e-3
  schedule: constant
  weight_decay: 0.01
  grad_clip: 1.0
  log_every: 1
  checkpoint_every: $((STEPS * 10))
  keep_last: 1
EOF

ref() {
  "$PY" "$SRC/tests/bench/torch_ref_train.py" --vocab $VOCAB --hidden $HIDDEN --layers $LAYERS --heads $HEADS \
    --kv-heads $KV_HEADS --intermediate $INTER --tie $TIE --batch $BATCH --seq-len $SEQ --threads "$THREADS" \
    --warmup "$WARMUP" --steps "$REF_STEPS"
}

# Reference and matmul run before and after ethos; the faster of each pair is kept, so a burst
# of load from elsewhere on the machine can only make ethos look worse, never better.
echo "[bench] fp32 matmul 2048^3, $THREADS threads" >&2
"$BUILD/tests/bench/bench_matmul" "$THREADS" 2048 10 > "$WORK/matmul_1.json"
echo "[bench] PyTorch reference (1/2): $REF_STEPS timed steps after $WARMUP warm-up, $THREADS threads" >&2
ref > "$WORK/torch_1.json"
echo "[bench] ethos train: $STEPS steps (first $WARMUP skipped), $THREADS threads" >&2
if ! "$BUILD/ethos" train "$WORK/recipe.yaml" > "$WORK/ethos.out" 2>&1; then
  tail -30 "$WORK/ethos.out" >&2
  die "ethos train failed (output above; full log in $WORK/ethos.out)"
fi
echo "[bench] PyTorch reference (2/2)" >&2
ref > "$WORK/torch_2.json"
echo "[bench] fp32 matmul 2048^3, $THREADS threads" >&2
"$BUILD/tests/bench/bench_matmul" "$THREADS" 2048 10 > "$WORK/matmul_2.json"

"$PY" - "$WORK" "$WARMUP" $VOCAB $HIDDEN $LAYERS $HEADS $KV_HEADS $INTER $TIE $BATCH $SEQ "$THREADS" <<'EOF'
import json, statistics, sys
work, warmup = sys.argv[1], int(sys.argv[2])
V, C, L, H, K, I, tie, B, T, threads = map(int, sys.argv[3:])
D = C // H

# Parameters, and training FLOPs per token (README.md): 6 * matmul weights + 12 * L * T * H * D.
layer_mm = C * H * D + 2 * C * K * D + H * D * C + 3 * C * I  # q, k, v, o, gate, up, down
params = V * C * (1 if tie else 2) + L * (layer_mm + 2 * C) + C
mm_params = L * layer_mm + V * C  # the embedding lookup is no matmul; lm_head (tied or not) is
flops_per_token = 6 * mm_params + 12 * L * T * H * D

steps = [json.loads(l) for l in open(f"{work}/run/train.jsonl") if l.strip()]
steps = [e for e in steps if e.get("event") == "train" and e["step"] > warmup]
if not steps:
    sys.exit(f"bench_train.sh: no train events after step {warmup} in {work}/run/train.jsonl")
secs = [e["seconds"] for e in steps]
refs = [json.load(open(f"{work}/torch_{i}.json")) for i in (1, 2)]
ref = min(refs, key=lambda r: r["median_step_ms"])
mm = max((json.load(open(f"{work}/matmul_{i}.json")) for i in (1, 2)), key=lambda m: m["gflops"])

# tokens/s = B*T token slots (the work done, padding included) / median step seconds.
slots = B * T
ethos_tps = slots / statistics.median(secs)
torch_tps = slots / (ref["median_step_ms"] / 1e3)
ethos_mean_tps, torch_mean_tps = slots * len(secs) / sum(secs), slots / (ref["step_ms"] / 1e3)
ethos_real = sum(e["tokens"] for e in steps) / sum(secs)
achieved = flops_per_token * ethos_tps / 1e9
share = achieved / mm["gflops"]
rows = [
    ("model", f"V={V} C={C} L={L} H={H} K={K} I={I} tied={bool(tie)}; B={B} T={T}; {threads} threads"),
    ("parameters", f"{params:,} (reference counts {refs[0]['params']:,})"),
    ("ethos step", f"{1e3 * statistics.median(secs):.1f} ms median, {1e3 * sum(secs) / len(secs):.1f} ms mean "
                   f"({len(secs)} steps)"),
    ("torch step", f"{ref['median_step_ms']:.1f} ms median, {ref['step_ms']:.1f} ms mean (faster of two runs; "
                   "medians " + ", ".join(f"{r['median_step_ms']:.1f}" for r in refs) + " ms)"),
    ("torch phases", f"forward {ref['fwd_ms']:.1f} ms, backward {ref['bwd_ms']:.1f} ms, "
                     f"clip+AdamW {ref['opt_ms']:.1f} ms (means)"),
    ("ethos tokens/s", f"{ethos_tps:.0f} (mean steps: {ethos_mean_tps:.0f}; real tokens only: {ethos_real:.0f}/s, "
                       f"{100 * ethos_real / ethos_mean_tps:.1f}% of slots)"),
    ("torch tokens/s", f"{torch_tps:.0f} (mean steps: {torch_mean_tps:.0f})"),
    ("ratio ethos/torch", f"{ethos_tps / torch_tps:.3f} (mean steps: {ethos_mean_tps / torch_mean_tps:.3f}; "
                          "target >= 1.2)"),
    ("FLOPs per token", f"{flops_per_token / 1e6:.2f} M = 6*{mm_params:,} + 12*{L}*{T}*{H * D}"),
    ("ethos GFLOP/s", f"{achieved:.1f}"),
    ("matmul GFLOP/s", f"{mm['gflops']:.1f} (fp32 {mm['n']}^3, {mm['threads']} threads, faster of two runs)"),
    ("share of matmul", f"{100 * share:.1f}% (target >= 60%)"),
]
width = max(len(k) for k, _ in rows)
print("\n".join(f"{k:<{width}}  {v}" for k, v in rows))
summary = {"ethos_tokens_per_s": ethos_tps, "ethos_real_tokens_per_s": ethos_real, "torch_tokens_per_s": torch_tps,
           "ratio": ethos_tps / torch_tps, "params": params, "flops_per_token": flops_per_token,
           "ethos_gflops": achieved, "matmul_gflops": mm["gflops"], "share": share}
json.dump(summary, open(f"{work}/summary.json", "w"), indent=1)
EOF
