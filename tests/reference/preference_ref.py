#!/usr/bin/env python3
"""Reference numbers for tests/test_preference.cpp: each DPO-family objective's loss, gradients
with respect to the policy log-probs, and implicit rewards on fixed log-probabilities, computed in
float64 with PyTorch autograd. Written from the papers' formulas, not from ethos's code:
  dpo           Rafailov et al. 2023: softplus(-beta*h), h = policy-vs-reference log-ratio difference
  ipo           Azar et al. 2023: (h - 1/(2 beta))^2 on per-token averaged log-probs (as TRL)
  conservative  cDPO: binary cross-entropy of beta*h against the smoothed label 1-e
  robust        Chowdhury et al. 2024: ((1-e) L(beta h) - e L(-beta h)) / (1-2e), L = softplus(-.)
  simpo         Meng et al. 2024: softplus(-(beta (pc/|c| - pr/|r|) - gamma))
  rpo           Pang et al. 2024: dpo + alpha * NLL of the chosen answer per token

Usage: /usr/bin/python3 preference_ref.py  > tests/golden/preference.json
"""
import json

import torch
import torch.nn.functional as F

BETA, SMOOTHING, SIMPO_GAMMA, RPO_ALPHA = 0.25, 0.2, 0.8, 0.7
INPUTS = {
    "policy_chosen": [-12.5, -30.25, -7.0, -55.0, -3.125],
    "policy_rejected": [-14.0, -28.5, -9.75, -50.0, -6.5],
    "ref_chosen": [-13.0, -29.0, -8.5, -52.0, -4.0],
    "ref_rejected": [-13.5, -29.5, -8.0, -51.5, -5.25],
    "chosen_tokens": [5.0, 12.0, 3.0, 20.0, 1.0],
    "rejected_tokens": [6.0, 10.0, 4.0, 18.0, 2.0],
}
SMOOTHED = ("robust", "conservative")


def losses(name, pc, pr, rc, rr, nc, nr):
    """Per-pair losses of one objective."""
    e = SMOOTHING if name in SMOOTHED else 0.0
    z = BETA * ((pc - rc) - (pr - rr))
    if name == "dpo":
        return F.softplus(-z)
    if name == "ipo":
        h = (pc / nc - pr / nr) - (rc / nc - rr / nr)
        return (h - 1 / (2 * BETA)) ** 2
    if name == "conservative":
        return F.binary_cross_entropy_with_logits(z, torch.full_like(z, 1 - e), reduction="none")
    if name == "robust":
        return ((1 - e) * F.softplus(-z) - e * F.softplus(z)) / (1 - 2 * e)
    if name == "simpo":
        return F.softplus(-(BETA * (pc / nc - pr / nr) - SIMPO_GAMMA))
    if name == "rpo":
        return F.softplus(-z) + RPO_ALPHA * (-pc / nc)
    raise ValueError(name)


def rewards(name, pc, pr, rc, rr, nc, nr):
    if name == "simpo":
        return BETA * pc / nc, BETA * pr / nr
    if name == "ipo":
        return BETA * (pc - rc) / nc, BETA * (pr - rr) / nr
    return BETA * (pc - rc), BETA * (pr - rr)


def main():
    t = {k: torch.tensor(v, dtype=torch.float64) for k, v in INPUTS.items()}
    out = {"beta": BETA, "simpo_gamma": SIMPO_GAMMA, "rpo_alpha": RPO_ALPHA, "inputs": INPUTS, "objectives": {}}
    for name in ("dpo", "ipo", "robust", "conservative", "simpo", "rpo"):
        pc = t["policy_chosen"].clone().requires_grad_(True)
        pr = t["policy_rejected"].clone().requires_grad_(True)
        args = (pc, pr, t["ref_chosen"], t["ref_rejected"], t["chosen_tokens"], t["rejected_tokens"])
        loss = losses(name, *args).mean()
        loss.backward()
        chosen, rejected = rewards(name, *args)
        out["objectives"][name] = {
            "label_smoothing": SMOOTHING if name in SMOOTHED else 0.0,
            "loss": loss.item(),
            "grad_policy_chosen": pc.grad.tolist(),
            "grad_policy_rejected": pr.grad.tolist(),
            "chosen_reward": chosen.detach().tolist(),
            "rejected_reward": rejected.detach().tolist(),
        }
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
