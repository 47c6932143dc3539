#!/usr/bin/python3
"""Reference training loop in plain PyTorch (no transformers) for tests/bench/bench_train.sh.

The same work as one `ethos train` step: a Llama-style decoder (RMSNorm in float32, RoPE in
the Hugging Face rotate_half layout, grouped-query attention with kv heads repeated,
SwiGLU MLP, optional tied embeddings), a document-aware causal mask built from doc ids
every step as an additive float mask [B,1,T,T] and attention as softmax(QK^T/sqrt(D)+M)V
with matmuls, token-weighted mean cross-entropy, backward, global-norm clip, AdamW with
decoupled weight decay (norms and embeddings excluded), on random token batches.

Warms up, times --steps steps, prints one JSON line:
  {"tokens_per_s", "step_ms", "median_step_ms", "params", "fwd_ms", "bwd_ms", "opt_ms", ...}
tokens_per_s = B*T*steps / elapsed; fwd_ms includes the mask and the loss; opt_ms is
clip + AdamW step + zero_grad. AdamW runs torch 1.13's default single-tensor update (the
update ethos's optimizer mirrors); --foreach 1 selects the multi-tensor one.
--profile prints the autograd profiler's top operators (self CPU time) to stderr.
On a GPU (tests/bench/bench_gpu.sh): --device cuda, --bf16 1 (autocast to bfloat16, as
`train.precision: bf16`), --sdpa 1 (F.scaled_dot_product_attention with a boolean mask, what
ethos runs on LibTorch 2.x) and --fused 1 (AdamW's fused CUDA update, as ethos's optimizer
there); the step times then synchronise the device, and peak_mem_gb is
torch.cuda.max_memory_allocated.

Shapes: B = batch rows, T = sequence length, C = hidden, H = heads, K = kv heads,
D = head dim, I = intermediate, V = vocabulary.
"""
import argparse
import contextlib
import json
import math
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class RMSNorm(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):  # [..., C]
        xf = x.float()
        normed = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * normed.to(x.dtype)


def rotate_half(x):  # [x1, x2] -> [-x2, x1] over the last dim
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


class Attention(nn.Module):
    def __init__(self, a):
        super().__init__()
        self.heads, self.kv_heads, self.head_dim = a.heads, a.kv_heads, a.hidden // a.heads
        self.q_proj = nn.Linear(a.hidden, self.heads * self.head_dim, bias=False)
        self.k_proj = nn.Linear(a.hidden, self.kv_heads * self.head_dim, bias=False)
        self.v_proj = nn.Linear(a.hidden, self.kv_heads * self.head_dim, bias=False)
        self.o_proj = nn.Linear(self.heads * self.head_dim, a.hidden, bias=False)
        self.sdpa = bool(a.sdpa)

    def forward(self, x, cos, sin, mask):  # x [B,T,C], cos/sin [B,1,T,D], mask [B,1,T,T]
        B, T, _ = x.shape
        q = self.q_proj(x).view(B, T, self.heads, self.head_dim).transpose(1, 2)     # [B,H,T,D]
        k = self.k_proj(x).view(B, T, self.kv_heads, self.head_dim).transpose(1, 2)  # [B,K,T,D]
        v = self.v_proj(x).view(B, T, self.kv_heads, self.head_dim).transpose(1, 2)  # [B,K,T,D]
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        n_rep = self.heads // self.kv_heads
        k = k.repeat_interleave(n_rep, dim=1)  # [B,H,T,D]
        v = v.repeat_interleave(n_rep, dim=1)
        if self.sdpa:  # mask: bool [B,1,T,T], True = attend
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        else:
            scores = torch.matmul(q, k.transpose(-2, -1)) * (1.0 / math.sqrt(self.head_dim)) + mask  # [B,H,T,T]
            out = torch.matmul(torch.softmax(scores, dim=-1), v)  # [B,H,T,D]
        return self.o_proj(out.transpose(1, 2).reshape(B, T, self.heads * self.head_dim))


class Mlp(nn.Module):
    def __init__(self, a):
        super().__init__()
        self.gate_proj = nn.Linear(a.hidden, a.intermediate, bias=False)
        self.up_proj = nn.Linear(a.hidden, a.intermediate, bias=False)
        self.down_proj = nn.Linear(a.intermediate, a.hidden, bias=False)

    def forward(self, x):  # [B,T,C] -> [B,T,I] -> [B,T,C]
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Layer(nn.Module):
    def __init__(self, a):
        super().__init__()
        self.self_attn = Attention(a)
        self.mlp = Mlp(a)
        self.input_layernorm = RMSNorm(a.hidden, 1e-5)
        self.post_attention_layernorm = RMSNorm(a.hidden, 1e-5)

    def forward(self, x, cos, sin, mask):
        h = x + self.self_attn(self.input_layernorm(x), cos, sin, mask)
        return h + self.mlp(self.post_attention_layernorm(h))


class Llama(nn.Module):
    def __init__(self, a):
        super().__init__()
        self.tied = a.tie
        self.embed_tokens = nn.Embedding(a.vocab, a.hidden)
        self.layers = nn.ModuleList(Layer(a) for _ in range(a.layers))
        self.norm = RMSNorm(a.hidden, 1e-5)
        self.lm_head = None if a.tie else nn.Linear(a.hidden, a.vocab, bias=False)
        D = a.hidden // a.heads
        self.sdpa = bool(a.sdpa)
        self.register_buffer("inv_freq", 1.0 / (10000.0 ** (torch.arange(0, D, 2, dtype=torch.int64).float() / D)),
                             persistent=False)  # [D/2]
        for name, p in self.named_parameters():
            if name.endswith("norm.weight"):
                nn.init.ones_(p)
            else:
                nn.init.normal_(p, 0.0, 0.02)

    def forward(self, tokens, positions, doc_ids):  # int64 [B,T] each -> logits [B,T,V]
        T = tokens.shape[1]
        same_doc = doc_ids.unsqueeze(2) == doc_ids.unsqueeze(1)  # [B,T,T]
        causal = torch.ones(T, T, dtype=torch.bool, device=tokens.device).tril()
        allowed = (same_doc & causal) | torch.eye(T, dtype=torch.bool, device=tokens.device)
        if self.sdpa:
            mask = allowed.unsqueeze(1)  # [B,1,T,T]
        else:
            mask = torch.zeros(allowed.shape, device=tokens.device).masked_fill(~allowed, float("-inf")).unsqueeze(1)
        h = self.embed_tokens(tokens)  # [B,T,C]
        freqs = positions.float().unsqueeze(-1) * self.inv_freq  # [B,T,D/2]
        angles = torch.cat((freqs, freqs), dim=-1).unsqueeze(1)  # [B,1,T,D]
        cos, sin = angles.cos(), angles.sin()
        for layer in self.layers:
            h = layer(h, cos, sin, mask)
        h = self.norm(h)
        return F.linear(h, self.embed_tokens.weight) if self.tied else self.lm_head(h)


def random_batch(a, gen):
    """Random tokens packed as documents of random length (mean --doc-len): doc ids number the
    documents within a row and positions restart at 0 for each, like ethos's packed rows."""
    B, T = a.batch, a.seq_len
    tokens = torch.randint(0, a.vocab, (B, T + 1), generator=gen)
    starts = torch.rand(B, T, generator=gen) < 1.0 / a.doc_len  # a new document begins here
    starts[:, 0] = True
    doc_ids = starts.long().cumsum(1) - 1  # [B,T]
    idx = torch.arange(T).expand(B, T)
    first = torch.where(starts, idx, torch.zeros_like(idx)).cummax(1).values  # start of each token's doc
    positions = idx - first
    weights = torch.ones(B, T)
    return tokens[:, :-1], tokens[:, 1:], positions, doc_ids, weights


def make_optimizer(model, a):
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2 and "embed_tokens" not in n]
    no_decay = [p for n, p in model.named_parameters() if not (p.dim() >= 2 and "embed_tokens" not in n)]
    groups = [{"params": decay, "weight_decay": a.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if a.fused:
        return torch.optim.AdamW(groups, lr=a.lr, betas=(0.9, 0.95), eps=1e-8, fused=True)
    return torch.optim.AdamW(groups, lr=a.lr, betas=(0.9, 0.95), eps=1e-8, foreach=bool(a.foreach))


def now(sync):
    if sync:
        torch.cuda.synchronize()
    return time.perf_counter()


def train_step(model, opt, batch, times, bf16=False):
    """One step; adds the seconds of forward (+mask, +loss), backward and clip+optimizer to times."""
    inputs, targets, positions, doc_ids, weights = batch
    sync = inputs.is_cuda
    t0 = now(sync)
    with torch.autocast("cuda", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext():
        logits = model(inputs, positions, doc_ids)  # [B,T,V]
    nll = F.cross_entropy(logits.float().view(-1, logits.shape[-1]), targets.reshape(-1), reduction="none")
    loss = (nll * weights.view(-1)).sum() / weights.sum()
    t1 = now(sync)
    loss.backward()
    t2 = now(sync)
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    opt.zero_grad(set_to_none=True)
    t3 = now(sync)
    times[0] += t1 - t0
    times[1] += t2 - t1
    times[2] += t3 - t2
    return loss.item()


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--vocab", type=int, required=True)
    p.add_argument("--hidden", type=int, required=True)
    p.add_argument("--layers", type=int, required=True)
    p.add_argument("--heads", type=int, required=True)
    p.add_argument("--kv-heads", type=int, required=True)
    p.add_argument("--intermediate", type=int, required=True)
    p.add_argument("--tie", type=int, choices=(0, 1), default=1, help="tie lm_head to the embedding (1)")
    p.add_argument("--batch", type=int, required=True, help="rows per step (B)")
    p.add_argument("--seq-len", type=int, required=True, help="tokens per row (T)")
    p.add_argument("--threads", type=int, required=True, help="torch.set_num_threads")
    p.add_argument("--warmup", type=int, default=5, help="untimed steps first")
    p.add_argument("--steps", type=int, default=20, help="timed steps")
    p.add_argument("--doc-len", type=float, default=1e9, help="mean document length in tokens (default: one per row)")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--weight-decay", type=float, default=0.01)
    p.add_argument("--foreach", type=int, choices=(0, 1), default=0, help="AdamW foreach (multi-tensor) update")
    p.add_argument("--profile", action="store_true", help="print the top operators of one timed step to stderr")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--bf16", type=int, choices=(0, 1), default=0, help="autocast to bfloat16 (CUDA)")
    p.add_argument("--sdpa", type=int, choices=(0, 1), default=0, help="F.scaled_dot_product_attention")
    p.add_argument("--fused", type=int, choices=(0, 1), default=0, help="AdamW's fused update (CUDA)")
    a = p.parse_args()
    problems = [f"--{k.replace('_', '-')} must be > 0 (got {v})"
                for k, v in vars(a).items() if k in ("vocab", "hidden", "layers", "heads", "kv_heads",
                                                     "intermediate", "batch", "seq_len", "threads", "steps")
                and v <= 0]
    if a.heads > 0 and a.kv_heads > 0 and a.heads % a.kv_heads:
        problems.append(f"--heads ({a.heads}) must be a multiple of --kv-heads ({a.kv_heads})")
    if a.heads > 0 and (a.hidden % a.heads or (a.hidden // a.heads) % 2):
        problems.append(f"--hidden ({a.hidden}) / --heads ({a.heads}) must be an even integer head dim")
    if problems:
        p.error("; ".join(problems))
    return a


def main():
    a = parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(1)
    device = torch.device(a.device)
    model = Llama(a).train().to(device)
    opt = make_optimizer(model, a)
    batches = [tuple(t.to(device) for t in random_batch(a, gen)) for _ in range(4)]  # made up front
    bf16 = bool(a.bf16)

    scratch = [0.0, 0.0, 0.0]
    for i in range(a.warmup):
        train_step(model, opt, batches[i % len(batches)], scratch, bf16)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    times = [0.0, 0.0, 0.0]
    step_s = []
    for i in range(a.steps):
        t0 = time.perf_counter()
        loss = train_step(model, opt, batches[i % len(batches)], times, bf16)
        step_s.append(time.perf_counter() - t0)
    elapsed = sum(step_s)
    if a.profile:
        with torch.autograd.profiler.profile() as prof:
            train_step(model, opt, batches[0], scratch)
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=25), file=sys.stderr)

    tokens = a.batch * a.seq_len * a.steps
    print(json.dumps({
        "tokens_per_s": tokens / elapsed,
        "step_ms": 1e3 * elapsed / a.steps,
        "median_step_ms": 1e3 * statistics.median(step_s),
        "fwd_ms": 1e3 * times[0] / a.steps,
        "bwd_ms": 1e3 * times[1] / a.steps,
        "opt_ms": 1e3 * times[2] / a.steps,
        "params": sum(p.numel() for p in model.parameters()),
        "threads": torch.get_num_threads(),
        "steps": a.steps,
        "final_loss": loss,
        "torch": torch.__version__,
        "device": str(device),
        "peak_mem_gb": torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else None,
    }), flush=True)


if __name__ == "__main__":
    main()
