#!/usr/bin/env bash
# Data-parallel benchmark (tests/bench/README.md), on this machine:
#   a. tokens/s of a 2-rank job (`ethos launch --nproc 2`, threads=1 and B rows per rank) against
#      one process (threads=2, 2B rows): the same global batch, model, data and steps;
#   b. collective bandwidth over loopback Gloo (bench_allreduce);
#   c. how much of the gradient all-reduce the 2-rank job hides behind backward;
#   d. with GPUs (nvidia-smi and a CUDA build of ethos): GPUs ranks with NCCL against one GPU,
#      tokens/s and MFU. Skipped on CPU machines.
# Prints figures; asserts nothing about time.
#
# Usage: tests/bench/bench_dist.sh [build-dir]      (default: build)
# Environment: STEPS (25), WARMUP (5 steps skipped), BATCH (4 rows per rank), BUCKET_MB (1),
#              GPU part: PEAK_TFLOPS (989: H100 SXM dense bf16, per GPU), GPU_STEPS (30),
#              GPU_BATCH (8 rows of 1024 tokens per rank).
# Files: <build-dir>/bench_dist/ (data, recipes, runs one_{1,2} two_{1,2}, allreduce_{1,2}.json,
#        *.out logs, summary.json; summary_gpu.json with GPUs).
set -euo pipefail

SRC=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:-$SRC/build}
PY=/usr/bin/python3
STEPS=${STEPS:-25}
WARMUP=${WARMUP:-5}
BATCH=${BATCH:-4}
BUCKET_MB=${BUCKET_MB:-1}
PEAK_TFLOPS=${PEAK_TFLOPS:-989}
GPU_STEPS=${GPU_STEPS:-30}

die() { echo "bench_dist.sh: $*" >&2; exit 1; }
[[ -d $BUILD ]] || die "build directory '$BUILD' not found. Configure it first: cmake -S $SRC -B $BUILD -DCMAKE_BUILD_TYPE=Release"
[[ -x $PY ]] || die "$PY not found (it generates the data and computes the figures)"
(( STEPS > WARMUP )) || die "STEPS ($STEPS) must exceed WARMUP ($WARMUP)"
BUILD=$(cd "$BUILD" && pwd)
if ! log=$(cmake --build "$BUILD" --target ethos bench_allreduce -j2 2>&1); then
  echo "$log" | tail -30 >&2
  die "building ethos and bench_allreduce in $BUILD failed (output above)"
fi
ETHOS=$BUILD/ethos
WORK=$BUILD/bench_dist
rm -rf "$WORK"
mkdir -p "$WORK"
busy() {
  local n; n=$(pgrep -c cc1plus || true)
  (( n == 0 )) || echo "[bench] WARNING: $n compiler processes are running: the timings below are spoiled" >&2
}

# Data: long documents of pseudo-words (tests/bench/bench_docs.py).
"$PY" "$SRC/tests/bench/bench_docs.py" "$WORK/docs.jsonl"

# write_recipe FILE STEPS HIDDEN LAYERS HEADS KV_HEADS INTER SEQ: the model of bench_train.sh by
# default; threads, batch size, device, out_dir and dist.* come as overrides on the command line.
VOCAB=2048
write_recipe() {
  cat > "$1" <<EOF
# Written by tests/bench/bench_dist.sh
name: bench-dist
seed: 0
resume: never
tokenizer:
  path: $WORK/tokenizer.model
  train_files: [$WORK/docs.jsonl]
  model_type: bpe
  vocab_size: $VOCAB
model:
  arch:
    vocab_size: $VOCAB
    hidden_size: $3
    intermediate_size: $7
    num_hidden_layers: $4
    num_attention_heads: $5
    num_key_value_heads: $6
    tie_word_embeddings: true
data:
  seq_len: $8
  sources:
    - {path: $WORK/docs.jsonl, kind: document, weight: 1.0}
train:
  steps: $2
  lr: 1.0e-3
  schedule: constant
  weight_decay: 0.01
  grad_clip: 1.0
  log_every: 1
  checkpoint_every: $(($2 * 10))
  keep_last: 1
EOF
}
SHAPE="256 6 8 4 688 256"  # hidden layers heads kv_heads intermediate seq_len: ~4.9M parameters
write_recipe "$WORK/recipe.yaml" "$STEPS" $SHAPE

# run NAME ARGS...: one training job, output in $WORK/NAME.out; a failure prints the command.
run() {
  local name=$1; shift
  if ! "$@" > "$WORK/$name.out" 2>&1; then
    tail -30 "$WORK/$name.out" >&2
    die "this command failed (output above; full log in $WORK/$name.out):
  $*"
  fi
}

# Each side runs twice, interleaved (1, 2, 1, 2); the faster run of each side is kept, so a burst of
# load from elsewhere on the machine hurts one run of a side, not the comparison. bench_allreduce runs
# before and after them; the faster median of the two is kept for each size.
busy
allreduce() {
  echo "[bench] b. ($1/2) bench_allreduce --ranks 2 (Gloo over loopback)" >&2
  run allreduce_$1 "$BUILD/tests/bench/bench_allreduce" --ranks 2 --json "$WORK/allreduce_$1.json"
}
allreduce 1
for i in 1 2; do
  echo "[bench] a. ($i/2) 1 process: threads=2, batch $((2 * BATCH)) rows, $STEPS steps" >&2
  run one_$i "$ETHOS" train "$WORK/recipe.yaml" out_dir="$WORK/one_$i" threads=2 train.batch_size=$((2 * BATCH))
  echo "[bench] a. ($i/2) 2 ranks: threads=1 each, batch $BATCH rows per rank, dist.bucket_mb=$BUCKET_MB" >&2
  run two_$i "$ETHOS" launch --nproc 2 -- train "$WORK/recipe.yaml" out_dir="$WORK/two_$i" threads=1 \
    train.batch_size="$BATCH" dist.bucket_mb="$BUCKET_MB"
done
allreduce 2
busy

# The figures of a-c, from the runs' train.jsonl and allreduce_{1,2}.json.
"$PY" - "$WORK" "$WARMUP" "$BATCH" "$BUCKET_MB" $VOCAB $SHAPE <<'EOF'
import json, math, statistics, sys
work, warmup, B, bucket_mb = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
V, C, L, H, K, I, T = map(int, sys.argv[5:])
D = C // H

def steps(run):
    ev = [json.loads(l) for l in open(f"{work}/{run}/train.jsonl") if l.strip()]
    ev = [e for e in ev if e.get("event") == "train" and e["step"] > warmup]
    if not ev:
        sys.exit(f"bench_dist.sh: no train events after step {warmup} in {work}/{run}/train.jsonl")
    return ev

# Parameters in registration order (trainer/model/llama.cpp), tied embeddings.
layer = [C * H * D, C * K * D, C * K * D, H * D * C, C * I, C * I, I * C, C, C]  # q k v o gate up down 2 norms
sizes = [V * C] + layer * L + [C]
params = sum(sizes)
# Buckets as trainer/dist/data_parallel.cpp fills them: parameters in reverse order, a new bucket once
# the current one holds >= bucket_mb MiB of fp32 gradients; padded to a multiple of the ranks.
cap = max(1, int(bucket_mb * 1024 * 1024 / 4))
buckets = []
for n in reversed(sizes):
    if not buckets or buckets[-1] >= cap:
        buckets.append(0)
    buckets[-1] += n
buckets = [(b + 1) // 2 * 2 * 4 for b in buckets]  # bytes, 2 ranks

med = lambda ev, k: statistics.median(e[k] for e in ev)
faster = lambda side: max((steps(f"{side}_{i}") for i in (1, 2)), key=lambda ev: med(ev, "tokens_per_s"))
one, two = faster("one"), faster("two")
all_tps = {side: [med(steps(f"{side}_{i}"), "tokens_per_s") for i in (1, 2)] for side in ("one", "two")}
tps1, tps2 = med(one, "tokens_per_s"), med(two, "tokens_per_s")
s1, s2 = med(one, "seconds"), med(two, "seconds")
wait = med(two, "comm_wait_s")

ars = [json.load(open(f"{work}/allreduce_{i}.json"))["results"] for i in (1, 2)]
best = {}  # bytes -> the faster of the two runs' median seconds
for r in ars[0] + ars[1]:
    if r["op"] == "allreduce":
        best[r["bytes"]] = min(best.get(r["bytes"], math.inf), r["median_ms"] / 1e3)
pts = sorted(best.items())
def ar_seconds(nbytes):
    """Standalone all-reduce time of nbytes: log-log interpolation between measured sizes."""
    if nbytes <= pts[0][0]:
        return pts[0][1] * nbytes / pts[0][0]
    for (b0, t0), (b1, t1) in zip(pts, pts[1:]):
        if nbytes <= b1:
            f = math.log(nbytes / b0) / math.log(b1 / b0)
            return math.exp(math.log(t0) + f * math.log(t1 / t0))
    return pts[-1][1] * nbytes / pts[-1][0]  # beyond the largest size: its bandwidth
ar_total = sum(ar_seconds(b) for b in buckets)

rows = [
    ("model", f"V={V} C={C} L={L} H={H} K={K} I={I} T={T}, tied; {params:,} parameters, "
              f"{4 * params / 2**20:.1f} MiB of fp32 gradients"),
    ("global batch", f"{2 * B} rows x {T} tokens; steps after the first {warmup}: {len(one)} / {len(two)}"),
    ("1 process", f"{tps1:.0f} tokens/s (median), {1e3 * s1:.1f} ms/step; threads=2, batch {2 * B}; "
                  f"faster of runs at {all_tps['one'][0]:.0f}, {all_tps['one'][1]:.0f}"),
    ("2 ranks", f"{tps2:.0f} tokens/s (median), {1e3 * s2:.1f} ms/step; threads=1 each, batch {B} per rank; "
                f"faster of runs at {all_tps['two'][0]:.0f}, {all_tps['two'][1]:.0f}"),
    ("ratio 2 ranks/1", f"{tps2 / tps1:.3f}"),
    ("buckets", f"{len(buckets)} at dist.bucket_mb={bucket_mb:g} (sizes "
                + ", ".join(f"{b / 2**20:.2f}" for b in buckets) + " MiB)"),
    ("all-reduce alone", f"{1e3 * ar_total:.1f} ms for the step's buckets (sum of each bucket's all-reduce time, "
                         f"interpolated from bench_allreduce, faster of its two runs); "
                         f"{cap * 4 / ar_seconds(cap * 4) / 1e9:.2f} GB/s algbw at {bucket_mb:g} MiB"),
    ("comm wait", f"{1e3 * wait:.1f} ms median comm_wait_s (step waited for gradients after backward)"),
    ("exposed share", f"{100 * wait / s2:.1f}% of the step = median comm_wait_s / median step seconds"),
    ("hidden share", f"{100 * (1 - wait / ar_total):.1f}% = 1 - median comm_wait_s / all-reduce alone"),
]
w = max(len(k) for k, _ in rows)
print("\n".join(f"{k:<{w}}  {v}" for k, v in rows))
json.dump({"runs_tokens_per_s": all_tps, "params": params, "global_batch_rows": 2 * B, "seq_len": T, "one_tokens_per_s": tps1,
           "two_tokens_per_s": tps2, "ratio": tps2 / tps1, "one_step_s": s1, "two_step_s": s2,
           "bucket_mb": bucket_mb, "buckets": len(buckets), "bucket_bytes": buckets,
           "allreduce_alone_s": ar_total, "comm_wait_s": wait, "exposed_share": wait / s2,
           "hidden_share": 1 - wait / ar_total}, open(f"{work}/summary.json", "w"), indent=1)
EOF
for i in 1 2; do
  echo; echo "b. bench_allreduce ($i/2, $([[ $i == 1 ]] && echo before || echo after) the training runs)"
  sed 's/^\[rank 0\] //' "$WORK/allreduce_$i.out"
done

# d. GPUs: GPUS ranks (NCCL, one GPU each, GPU_BATCH rows each) against one process on one GPU with
# the same global batch as GPUS micro-batches (train.grad_accum), so it fits in one GPU's memory;
# a larger model, bf16 autocast. Needs nvidia-smi and ethos linked against a CUDA LibTorch.
if ! command -v nvidia-smi > /dev/null; then
  echo; echo "d. GPU: skipped (no nvidia-smi on this machine)"; exit 0
fi
if [[ $(ldd "$ETHOS" 2>/dev/null | grep -c libtorch_cuda || true) == 0 ]]; then
  echo; echo "d. GPU: skipped ($ETHOS is not linked against a CUDA LibTorch; build with -DTorch_DIR=...)"; exit 0
fi
GPUS=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU' || true)
if (( GPUS == 0 )); then
  echo; echo "d. GPU: skipped (nvidia-smi lists no GPU)"; exit 0
fi
if (( GPUS > 1 )) && ! grep -q '^ETHOS_NCCL:BOOL=ON' "$BUILD/CMakeCache.txt"; then
  echo; echo "d. GPU: skipped ($GPUS GPUs but $BUILD has no NCCL: configure with -DETHOS_NCCL=ON)"; exit 0
fi
GPU_BATCH=${GPU_BATCH:-8}
GPU_SHAPE="1024 12 16 8 2816 1024"  # ~140M parameters
write_recipe "$WORK/recipe_gpu.yaml" "$GPU_STEPS" $GPU_SHAPE
echo "[bench] d. 1 GPU: $GPUS micro-batches of $GPU_BATCH rows, bf16, $GPU_STEPS steps" >&2
run gpu_one "$ETHOS" train "$WORK/recipe_gpu.yaml" out_dir="$WORK/gpu_one" device=cuda train.precision=bf16 \
  train.batch_size="$GPU_BATCH" train.grad_accum="$GPUS"
if (( GPUS > 1 )); then
  echo "[bench] d. $GPUS GPUs (NCCL): batch $GPU_BATCH rows per rank" >&2
  run gpu_all "$ETHOS" launch --nproc "$GPUS" -- train "$WORK/recipe_gpu.yaml" out_dir="$WORK/gpu_all" \
    device=cuda dist.backend=nccl train.precision=bf16 train.batch_size="$GPU_BATCH"
fi
echo
"$PY" - "$WORK" "$WARMUP" "$GPUS" "$PEAK_TFLOPS" $VOCAB $GPU_SHAPE <<'EOF'
import json, os, statistics, sys
work, warmup, gpus, peak = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
V, C, L, H, K, I, T = map(int, sys.argv[5:])
D = C // H
params = V * C + L * (C * H * D + 2 * C * K * D + H * D * C + 3 * C * I + 2 * C) + C
out = {"gpus": gpus, "params": params, "peak_tflops_per_gpu": peak, "precision": "bf16 autocast"}
print(f"d. GPU: {params:,} parameters, T={T}, bf16 autocast; MFU = 6 x params x tokens/s / "
      f"(GPUs x {peak:g} TFLOP/s, PEAK_TFLOPS = dense bf16 peak per GPU)")
for run, n in (("gpu_one", 1), ("gpu_all", gpus)):
    if not os.path.exists(f"{work}/{run}/train.jsonl"):
        continue
    ev = [json.loads(l) for l in open(f"{work}/{run}/train.jsonl") if l.strip()]
    tps = statistics.median(e["tokens_per_s"] for e in ev if e.get("event") == "train" and e["step"] > warmup)
    mfu = 6 * params * tps / (n * peak * 1e12)
    out[run] = {"ranks": n, "tokens_per_s": tps, "mfu": mfu}
    print(f"  {n} GPU(s): {tps:.0f} tokens/s (median), MFU {100 * mfu:.1f}%")
if "gpu_all" in out:
    print(f"  ratio {gpus} GPUs / 1: {out['gpu_all']['tokens_per_s'] / out['gpu_one']['tokens_per_s']:.2f}")
json.dump(out, open(f"{work}/summary_gpu.json", "w"), indent=1)
EOF
