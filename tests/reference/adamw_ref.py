#!/usr/bin/env python3
"""Reference numbers for tests/test_optim.cpp: torch.optim.AdamW with two parameter groups
(decay / no decay), torch.nn.utils.clip_grad_norm_, and a warmup + cosine schedule written out
by hand, on a small fixed problem. Every initial value and gradient is a small dyadic rational,
exact in float32, so C++ builds the identical problem from the same formulas.

Usage: /usr/bin/python3 adamw_ref.py  > tests/golden/optim_adamw.json
"""
import json
import math

import torch

BASE_LR, WARMUP, TOTAL, MIN_RATIO = 1e-2, 2, 5, 0.1
BETAS, EPS, WEIGHT_DECAY, MAX_NORM = (0.9, 0.95), 1e-8, 0.1, 1.0
# (name, shape, decayed): the decay flags follow ethos's default_decay_mask rule.
PARAMS = [
    ("model.layers.0.mlp.up_proj.weight", (4, 3), True),
    ("model.layers.0.input_layernorm.weight", (3,), False),
    ("model.embed_tokens.weight", (5, 3), False),
]


def initial(i, shape):
    n = math.prod(shape)
    return torch.tensor([((k * 5 + 3 * i + 1) % 11 - 5) / 4 for k in range(n)], dtype=torch.float32).reshape(shape)


def gradient(i, shape, step):
    n = math.prod(shape)
    return torch.tensor([((k * 7 + step * 13 + i * 3) % 17 - 8) / 8 for k in range(n)],
                        dtype=torch.float32).reshape(shape)


def lr_multiplier(step):
    if step < WARMUP:
        return (step + 1) / WARMUP
    progress = min(1.0, (step - WARMUP) / (TOTAL - 1 - WARMUP))
    return MIN_RATIO + (1 - MIN_RATIO) * 0.5 * (1 + math.cos(math.pi * progress))


def main():
    params = [torch.nn.Parameter(initial(i, shape)) for i, (_, shape, _) in enumerate(PARAMS)]
    groups = [
        {"params": [p for p, spec in zip(params, PARAMS) if spec[2]], "weight_decay": WEIGHT_DECAY},
        {"params": [p for p, spec in zip(params, PARAMS) if not spec[2]], "weight_decay": 0.0},
    ]
    opt = torch.optim.AdamW(groups, lr=BASE_LR, betas=BETAS, eps=EPS, foreach=False)
    lrs, norms = [], []
    for step in range(TOTAL):
        for i, (p, (_, shape, _)) in enumerate(zip(params, PARAMS)):
            p.grad = gradient(i, shape, step)
        norms.append(torch.nn.utils.clip_grad_norm_(params, MAX_NORM).item())
        lr = BASE_LR * lr_multiplier(step)
        lrs.append(lr)
        for g in opt.param_groups:
            g["lr"] = lr
        opt.step()
    out = {"lrs": lrs, "grad_norms": norms, "params": {}, "exp_avg": {}, "exp_avg_sq": {}}
    for p, (name, _, _) in zip(params, PARAMS):
        out["params"][name] = p.detach().flatten().tolist()
        out["exp_avg"][name] = opt.state[p]["exp_avg"].flatten().tolist()
        out["exp_avg_sq"][name] = opt.state[p]["exp_avg_sq"].flatten().tolist()
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
