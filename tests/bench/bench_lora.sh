#!/usr/bin/env bash
# LoRA against full fine-tuning of the same model on CPU, and LoRA on a bf16 base against LoRA on
# a float32 one: optimizer state bytes, checkpoint bytes, peak RSS and step time, in one run
# (README.md here).
#   tests/bench/bench_lora.sh [build-dir]        THREADS=2 STEPS=12 RANK=16
set -euo pipefail
SRC=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=$(cd "${1:-$SRC/build}" && pwd)
THREADS=${THREADS:-2} STEPS=${STEPS:-12} WARMUP=${WARMUP:-3} RANK=${RANK:-16}
VOCAB=2048 HIDDEN=512 LAYERS=8 HEADS=8 KV_HEADS=4 INTER=1408 BATCH=4 SEQ=256
cmake --build "$BUILD" --target ethos -j"$THREADS" >/dev/null
WORK=$BUILD/bench_lora
rm -rf "$WORK"
mkdir -p "$WORK"
/usr/bin/python3 "$SRC/tests/bench/bench_docs.py" "$WORK/docs.jsonl"

recipe() {  # name, extra model lines
  cat > "$WORK/$1.yaml" <<EOF
name: bench-lora-$1
seed: 0
out_dir: $WORK/$1
resume: never
threads: $THREADS
tokenizer: {path: $WORK/tokenizer.model, train_files: [$WORK/docs.jsonl], model_type: bpe, vocab_size: $VOCAB}
model:
  arch: {vocab_size: $VOCAB, hidden_size: $HIDDEN, intermediate_size: $INTER, num_hidden_layers: $LAYERS,
         num_attention_heads: $HEADS, num_key_value_heads: $KV_HEADS, tie_word_embeddings: false}
$2
data:
  seq_len: $SEQ
  sources: [{path: $WORK/docs.jsonl, kind: document, weight: 1.0}]
train: {steps: $STEPS, batch_size: $BATCH, lr: 1.0e-3, schedule: constant, weight_decay: 0.0, grad_clip: 1.0,
        log_every: 1, checkpoint_every: $STEPS, keep_last: 1}
EOF
}
run() {  # name
  echo "[bench_lora] ethos train $1 ($STEPS steps, $THREADS threads)" >&2
  /usr/bin/time -f "%M" -o "$WORK/$1.rss" "$BUILD/ethos" train "$WORK/$1.yaml" > "$WORK/$1.out" 2>&1 ||
    { tail -20 "$WORK/$1.out" >&2; exit 1; }
}
# The base: a short full run from scratch, exported as a Hugging Face model directory.
recipe base ""
run base
"$BUILD/ethos" export "$WORK/base/checkpoints/step_$(printf %06d "$STEPS")" --out "$WORK/base_model" >/dev/null
recipe full "  from: $WORK/base_model"
recipe lora "  from: $WORK/base_model
  lora: {rank: $RANK, alpha: $((2 * RANK)), dropout: 0.0, targets: [q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj]}"
recipe lora_bf16 "  from: $WORK/base_model
  dtype: bfloat16
  lora: {rank: $RANK, alpha: $((2 * RANK)), dropout: 0.0, targets: [q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj]}"
for round in 1 2; do
  for r in full lora lora_bf16; do run $r; mv "$WORK/$r" "$WORK/${r}_$round"; mv "$WORK/$r.rss" "$WORK/${r}_$round.rss"; done
done

/usr/bin/python3 - "$WORK" "$STEPS" "$WARMUP" <<'PY'
import json, os, statistics, sys
work, steps, warmup = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def measure(run):
    d = os.path.join(work, run)
    ev = [json.loads(l) for l in open(os.path.join(d, "train.jsonl")) if '"event":"train"' in l.replace(" ", "")]
    secs = [e["seconds"] for e in ev if e["step"] > warmup]
    ck = os.path.join(d, "checkpoints", "step_%06d" % steps)
    files = {f: os.path.getsize(os.path.join(ck, f)) for f in os.listdir(ck)}
    opt = sum(v for f, v in files.items() if f.startswith("optimizer"))
    weights = sum(v for f, v in files.items() if f.endswith(".safetensors") and not f.startswith("optimizer"))
    rss = int(open(os.path.join(work, run + ".rss")).read().split()[-1]) * 1024
    return dict(step_s=statistics.median(secs), tokens_s=statistics.median(e["tokens_per_s"] for e in ev if e["step"] > warmup),
                opt=opt, weights=weights, rss=rss)
rows = {f"{r}_{k}": measure(f"{r}_{k}") for k in (1, 2) for r in ("full", "lora", "lora_bf16")}
print(f"\n{'run':<12}{'step s':>8}{'tokens/s':>10}{'optimizer MiB':>15}{'saved weights MiB':>19}{'peak RSS MiB':>14}")
for r, m in rows.items():
    print(f"{r:<12}{m['step_s']:>8.3f}{m['tokens_s']:>10.0f}{m['opt']/2**20:>15.2f}{m['weights']/2**20:>19.2f}{m['rss']/2**20:>14.0f}")
best = lambda name: min((rows[name + "_1"], rows[name + "_2"]), key=lambda m: m["step_s"])
f, l, h = best("full"), best("lora"), best("lora_bf16")
print(f"\nLoRA / full (faster run of each): step time {l['step_s']/f['step_s']:.2f}x, optimizer state "
      f"{l['opt']/f['opt']:.4f}x, checkpoint weights {l['weights']/f['weights']:.4f}x, peak RSS {l['rss']/f['rss']:.2f}x")
print(f"LoRA on a bf16 base / LoRA on a float32 base: step time {h['step_s']/l['step_s']:.2f}x, peak RSS {h['rss']/l['rss']:.2f}x")
json.dump(rows, open(os.path.join(work, "summary.json"), "w"), indent=1)
PY
