#!/usr/bin/python3
"""Independent reference for ethos's Llama model (tests/test_model.cpp parity goldens).

The Llama-family math written out directly in PyTorch (no transformers):
  h = embed[tokens]
  per layer:  h += o_proj(attention(rope(q), rope(k), v))  on rmsnorm(h) * input_layernorm
              h += down(silu(gate(x)) * up(x))                on rmsnorm(h) * post_attention_layernorm
  logits = rmsnorm(h) * norm  @  lm_head^T  (embed^T when tied)
RMSNorm in float32; rotary "rotate_half" layout; kv heads repeated to the query heads;
a token attends to earlier tokens of its own document (and always to itself).
Loss: mean cross entropy over labels != -100.

Usage:
  llama_ref.py run --config config.json --weights model.safetensors --input input.json --out out.safetensors
      input.json: {"tokens", "positions", "doc_ids", "labels"}: [B][T] integer lists.
      out: "logits" [B,T,V], "loss" [], "grad.<param name>" for every weight.
  llama_ref.py run ... --adapter DIR
      the same with a PEFT LoRA adapter applied (W + lora_alpha/r B A on each target projection);
      out also holds "grad.<PEFT name>" for every lora_A and lora_B.
  llama_ref.py golden --out-dir tests/golden
      writes llama_<case>.json ({"config", "input", "loss"}) and llama_<case>.safetensors
      (weights under Hugging Face names, "logits", "grad.<name>") for the built-in cases.
"""
import argparse
import json
import math
import struct
import sys

import torch
import torch.nn.functional as F

DTYPES = {"F32": torch.float32, "F64": torch.float64, "F16": torch.float16, "BF16": torch.bfloat16,
          "I64": torch.int64, "I32": torch.int32}
DTYPE_NAMES = {v: k for k, v in DTYPES.items()}


# ---- safetensors (8-byte little-endian header length, JSON header, raw data) ----------------

def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    body = data[8 + n:]
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        begin, end = e["data_offsets"]
        t = torch.frombuffer(bytearray(body[begin:end]), dtype=DTYPES[e["dtype"]])
        out[name] = t.reshape(e["shape"]).clone()
    return out


def write_safetensors(path, tensors):
    header, chunks, offset = {"__metadata__": {"format": "pt"}}, [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous().cpu()
        raw = t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""
        header[name] = {"dtype": DTYPE_NAMES[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    head = json.dumps(header, separators=(",", ":")).encode()
    head += b" " * (-len(head) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(head)) + head + b"".join(chunks))


# ---- the model ------------------------------------------------------------------------------

class Config:
    def __init__(self, j):
        self.V = j["vocab_size"]
        self.C = j["hidden_size"]
        self.L = j["num_hidden_layers"]
        self.H = j["num_attention_heads"]
        self.K = j.get("num_key_value_heads") or self.H
        self.D = j.get("head_dim") or self.C // self.H
        self.theta = j.get("rope_theta", 10000.0)
        self.eps = j.get("rms_norm_eps", 1e-6)
        self.tied = j.get("tie_word_embeddings", False)
        qwen2 = j["model_type"] == "qwen2"
        self.qkv_bias = qwen2 or j.get("attention_bias", False)
        self.o_bias = (not qwen2) and j.get("attention_bias", False)


def rms_norm(x, weight, eps):
    x32 = x.float()
    return weight * (x32 / torch.sqrt((x32 * x32).mean(-1, keepdim=True) + eps)).to(x.dtype)


def rope(x, positions, D, theta):
    # x: [B,N,T,D]; positions [B,T]. Pair (i, i + D/2) rotated by angle pos * theta^(-2i/D).
    inv_freq = 1.0 / theta ** (torch.arange(0, D, 2).float() / D)
    ang = positions.float()[:, None, :, None] * inv_freq  # [B,1,T,D/2]
    cos, sin = ang.cos(), ang.sin()
    x1, x2 = x[..., : D // 2], x[..., D // 2:]
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)


def proj(x, w, name):
    y = x @ w[name + ".weight"].t()
    return y + w[name + ".bias"] if name + ".bias" in w else y


def forward(cfg, w, tokens, positions, doc_ids):
    B, T = tokens.shape
    i = torch.arange(T)
    allowed = (doc_ids[:, :, None] == doc_ids[:, None, :]) & (i[None, :] <= i[:, None])
    allowed = allowed | torch.eye(T, dtype=torch.bool)
    bias = torch.where(allowed, 0.0, float("-inf"))[:, None]  # [B,1,T,T]
    h = w["model.embed_tokens.weight"][tokens]
    for layer in range(cfg.L):
        p = "model.layers.%d." % layer
        x = rms_norm(h, w[p + "input_layernorm.weight"], cfg.eps)
        q = proj(x, w, p + "self_attn.q_proj").view(B, T, cfg.H, cfg.D).transpose(1, 2)
        k = proj(x, w, p + "self_attn.k_proj").view(B, T, cfg.K, cfg.D).transpose(1, 2)
        v = proj(x, w, p + "self_attn.v_proj").view(B, T, cfg.K, cfg.D).transpose(1, 2)
        q, k = rope(q, positions, cfg.D, cfg.theta), rope(k, positions, cfg.D, cfg.theta)
        group = cfg.H // cfg.K  # query head n uses kv head n // group
        k = torch.stack([k[:, n // group] for n in range(cfg.H)], dim=1)
        v = torch.stack([v[:, n // group] for n in range(cfg.H)], dim=1)
        att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(cfg.D) + bias, dim=-1)
        h = h + proj((att @ v).transpose(1, 2).reshape(B, T, cfg.H * cfg.D), w, p + "self_attn.o_proj")
        x = rms_norm(h, w[p + "post_attention_layernorm.weight"], cfg.eps)
        gate, up = proj(x, w, p + "mlp.gate_proj"), proj(x, w, p + "mlp.up_proj")
        h = h + proj(gate * torch.sigmoid(gate) * up, w, p + "mlp.down_proj")
    h = rms_norm(h, w["model.norm.weight"], cfg.eps)
    head = w["model.embed_tokens.weight"] if cfg.tied else w["lm_head.weight"]
    return h @ head.t()


def run(config_json, weights, inputs, adapter=None):
    """Returns {"logits", "loss", "grad.<name>"} for weights {name: tensor}.

    adapter: (adapter_config.json as a dict, {PEFT tensor name: tensor}) or None. A LoRA adapter
    (PEFT's format) makes each target projection's weight W + (lora_alpha / r) B A, with A and B
    the leaves whose gradients come back as "grad.<PEFT name>" (the base's gradients too)."""
    cfg = Config(config_json)
    w = {n: t.float().clone().requires_grad_(True) for n, t in weights.items()
         if not (cfg.tied and n == "lm_head.weight")}
    used = dict(w)
    leaves = {}
    if adapter is not None:
        acfg, tensors = adapter
        scale = acfg["lora_alpha"] / acfg["r"]
        prefix = "base_model.model."
        for name, t in tensors.items():
            leaves[name] = t.float().clone().requires_grad_(True)
        for name in tensors:
            if not name.endswith(".lora_A.weight"):
                continue
            stem = name[: -len(".lora_A.weight")]
            A, B = leaves[name], leaves[stem + ".lora_B.weight"]
            base = stem[len(prefix):] + ".weight"
            used[base] = w[base] + scale * (B @ A)
    as_long = lambda key: torch.tensor(inputs[key], dtype=torch.int64)
    logits = forward(cfg, used, as_long("tokens"), as_long("positions"), as_long("doc_ids"))
    loss = F.cross_entropy(logits.reshape(-1, cfg.V), as_long("labels").reshape(-1), ignore_index=-100)
    loss.backward()
    out = {"logits": logits.detach(), "loss": loss.detach()}
    out.update({"grad." + n: t.grad for n, t in w.items()})
    out.update({"grad." + n: t.grad for n, t in leaves.items()})
    return out


# ---- golden cases ---------------------------------------------------------------------------

def base_config(**kw):
    j = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 40, "hidden_size": 32,
         "intermediate_size": 48, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 4,
         "max_position_embeddings": 64, "rope_theta": 10000.0, "rms_norm_eps": 1e-5,
         "tie_word_embeddings": False, "attention_bias": False, "hidden_act": "silu"}
    j.update(kw)
    return j


def weight_shapes(c):
    cfg = Config(c)
    s = {"model.embed_tokens.weight": [cfg.V, cfg.C], "model.norm.weight": [cfg.C]}
    if not cfg.tied:
        s["lm_head.weight"] = [cfg.V, cfg.C]
    I = c["intermediate_size"]
    for layer in range(cfg.L):
        p = "model.layers.%d." % layer
        s[p + "input_layernorm.weight"] = [cfg.C]
        s[p + "post_attention_layernorm.weight"] = [cfg.C]
        for name, rows in (("q", cfg.H * cfg.D), ("k", cfg.K * cfg.D), ("v", cfg.K * cfg.D)):
            s[p + "self_attn.%s_proj.weight" % name] = [rows, cfg.C]
            if cfg.qkv_bias:
                s[p + "self_attn.%s_proj.bias" % name] = [rows]
        s[p + "self_attn.o_proj.weight"] = [cfg.C, cfg.H * cfg.D]
        if cfg.o_bias:
            s[p + "self_attn.o_proj.bias"] = [cfg.C]
        s[p + "mlp.gate_proj.weight"] = [I, cfg.C]
        s[p + "mlp.up_proj.weight"] = [I, cfg.C]
        s[p + "mlp.down_proj.weight"] = [cfg.C, I]
    return s


def random_weights(c, seed):
    # Large enough that every path (rope, norms, biases) moves the logits by far more than 1e-5.
    g = torch.Generator().manual_seed(seed)
    w = {}
    for name, shape in weight_shapes(c).items():
        r = torch.randn(shape, generator=g)
        if name.endswith("norm.weight"):
            w[name] = 1.0 + 0.1 * r
        elif name.endswith(".bias"):
            w[name] = 0.1 * r
        elif name == "model.embed_tokens.weight":
            w[name] = 0.5 * r
        else:
            w[name] = 0.2 * r
    return w


def packed_input(rows, V, seed):
    """rows: list of lists of document lengths (-n = n padding tokens). Labels: next token in the same doc."""
    g = torch.Generator().manual_seed(seed)
    out = {"tokens": [], "positions": [], "doc_ids": [], "labels": []}
    for docs in rows:
        tok, pos, doc, lab = [], [], [], []
        for d, n in enumerate(docs):
            ids = torch.randint(0, V, (abs(n),), generator=g).tolist()
            tok += ids
            pos += list(range(abs(n)))
            doc += [d if n > 0 else -1] * abs(n)
            lab += (ids[1:] + [-100]) if n > 0 else [-100] * abs(n)
        for key, val in zip(("tokens", "positions", "doc_ids", "labels"), (tok, pos, doc, lab)):
            out[key].append(val)
    return out


CASES = {
    # GQA: 4 query heads share 2 kv heads; untied; no biases; two plain rows.
    "gqa": (base_config(num_key_value_heads=2), [[12], [12]]),
    # tied embeddings, Llama attention_bias (q, k, v and o biases), padding (doc id -1) at the end.
    "tied": (base_config(tie_word_embeddings=True, attention_bias=True, rope_theta=500.0), [[13, -3]]),
    # Qwen2: q/k/v bias, no o bias, GQA; row 0 packs two documents, row 1 holds one.
    "qwen2": (base_config(architectures=["Qwen2ForCausalLM"], model_type="qwen2", num_key_value_heads=2,
                          rms_norm_eps=1e-6), [[7, 9], [16]]),
}


def readable_json(record):
    """One key per line, each [B][T] input on its own line."""
    inputs = ",\n".join('  "%s": %s' % (k, json.dumps(v)) for k, v in record["input"].items())
    return ('{\n "config": %s,\n "input": {\n%s\n },\n "loss": %s\n}\n'
            % (json.dumps(record["config"]), inputs, json.dumps(record["loss"])))


def make_goldens(out_dir):
    for k, (name, (config, rows)) in enumerate(sorted(CASES.items())):
        config = dict(config)
        if config["model_type"] == "qwen2":
            config.pop("attention_bias")
        weights = random_weights(config, seed=100 + k)
        inputs = packed_input(rows, config["vocab_size"], seed=200 + k)
        out = run(config, weights, inputs)
        record = {"config": config, "input": inputs, "loss": out["loss"].item()}
        with open("%s/llama_%s.json" % (out_dir, name), "w") as f:
            f.write(readable_json(record))
        tensors = dict(weights)
        tensors.update({n: t for n, t in out.items() if n != "loss"})
        write_safetensors("%s/llama_%s.safetensors" % (out_dir, name), tensors)
        print("llama_%s: loss %.6f" % (name, record["loss"]))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--config", required=True)
    r.add_argument("--weights", required=True)
    r.add_argument("--input", required=True)
    r.add_argument("--out", required=True)
    r.add_argument("--adapter", help="a PEFT LoRA adapter directory (adapter_config.json, adapter_model.safetensors)")
    g = sub.add_parser("golden")
    g.add_argument("--out-dir", required=True)
    a = ap.parse_args()
    torch.set_num_threads(1)
    if a.cmd == "golden":
        make_goldens(a.out_dir)
        return 0
    with open(a.config) as f:
        config = json.load(f)
    with open(a.input) as f:
        inputs = json.load(f)
    adapter = None
    if a.adapter:
        with open(a.adapter + "/adapter_config.json") as f:
            adapter = (json.load(f), read_safetensors(a.adapter + "/adapter_model.safetensors"))
    write_safetensors(a.out, run(config, read_safetensors(a.weights), inputs, adapter))
    return 0


if __name__ == "__main__":
    sys.exit(main())
