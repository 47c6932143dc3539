# The final checkpoint of every run of a sweep, one line each, in percent:
#   gen id/ho mis, ali, unp   the model's own sampled answer (suite world-generate), ID and held-out
#                             harm types (the dev group): misaligned, aligned (the right action for
#                             the item's own situation), unparseable
#   lik ho mis dir/rf         likelihood ranking on held-out harm types, direct and reason-first
#   named id/ho               reason-first: the model's own rationale names the item's principle
#   ali|named ho, ali|not ho  held-out harm types: aligned when it named it / when it did not
# Then the prior (R0: the pre-training stage's eval, once per base), and the paired differences
# against R1 per cell and seed (same world, same cell, same seed: the same base model).
# With --steps, also every checkpoint of the alignment stage (a sweep that scores during
# alignment, e.g. sweeps/align_curves.yaml): the held-out right action and misaligned answers
# and the ID right action per step, mean over seeds, and R2 - R1 per step.
#   python3 recipes/sweeps/table.py runs/<sweep> [--steps]
import json, sys, glob, os, statistics

root = sys.argv[1]
steps_too = "--steps" in sys.argv[2:]
COLS = ["gen id mis", "gen id ali", "gen id unp", "gen ho mis", "gen ho ali", "gen ho unp",
        "lik ho mis dir", "lik ho mis rf", "named id", "named ho", "ali|named ho", "ali|not ho"]


def row(ev):
    def get(suite, split, metric, mode=None, group="all", gv=None):
        for e in ev:
            if e["suite"] == suite and e.get("split") == split and e["metric"] == metric and e.get("group") == group \
               and (mode is None or e.get("mode") == mode) and (gv is None or e.get("group_value") == gv):
                return e["value"]
        return float("nan")
    r = []
    for split in ("id", "ood"):
        r += [get("world-generate", split, m) for m in ("misaligned_rate", "aligned_rate", "unparseable_rate")]
    for mode in ("direct", "reason_first"):
        r += [get("world", "ood", "misaligned_rate", mode, "shift", "harm")]
    r += [get("world", "id", "principle_named_rate", "reason_first"),
          get("world", "ood", "principle_named_rate", "reason_first", "shift", "harm"),
          get("world", "ood", "aligned_rate_if_named", "reason_first", "shift", "harm"),
          get("world", "ood", "aligned_rate_if_not_named", "reason_first", "shift", "harm")]
    return r


def pct(x):
    return f"{x*100:.0f}" if x == x else "-"


finals, priors = {}, {}  # (cell dir, seed dir) -> row; (cell without its recipe, seed dir) -> row
curves = {}  # (cell dir, seed dir) -> {alignment step: row}, step 0 the base
for f in sorted(glob.glob(os.path.join(root, "*", "seed*", "eval.jsonl"))):
    ev = [json.loads(l) for l in open(f)]
    ev = [e for e in ev if e.get("event") == "eval" and "metric" in e]
    if not ev:
        continue
    cell, seed = f.split(os.sep)[-3], f.split(os.sep)[-2]
    last = max(e["step"] for e in ev)
    finals[(cell, seed)] = (last, row([e for e in ev if e["step"] == last]))
    pre = [e for e in ev if e.get("stage") == "pretrain"]
    if pre:
        # the base: world and axis values (an axis of the alignment stage repeats the same base)
        world = cell.partition("-")[2] or "-"
        at = max(e["step"] for e in pre)
        base_row = row([e for e in pre if e["step"] == at])
        priors.setdefault((world, seed), (at, base_row))
        curves[(cell, seed)] = {0: base_row}
        for s in sorted({e["step"] for e in ev if e.get("stage") != "pretrain"}):
            curves[(cell, seed)][s - at] = row([e for e in ev if e["step"] == s])

print(" | ".join(["run", "step"] + COLS))
for (cell, seed), (step, r) in finals.items():
    print(" | ".join([cell + "/" + seed, str(step)] + [pct(x) for x in r]))
if priors:
    print("\nthe prior (R0: the pre-training stage's last eval)")
    print(" | ".join(["base/seed", "step"] + COLS))
    for (world, seed), (step, r) in sorted(priors.items()):
        print(" | ".join([world + "/" + seed, str(step)] + [pct(x) for x in r]))

# Paired against R1: same cell (the name without its recipe), same seed.
pairs = {}  # (recipe, rest of the cell) -> [(seed, diff row)]
for (cell, seed), (_, r) in finals.items():
    recipe, _, rest = cell.partition("-")
    if recipe == "r1" or ("r1-" + rest, seed) not in finals:
        continue
    base = finals[("r1-" + rest, seed)][1]
    pairs.setdefault((recipe, rest), []).append((seed, [a - b for a, b in zip(r, base)]))
if pairs:
    print("\npaired difference against R1 (points), per seed, and the mean over seeds [min, max]")
    for key in ("gen ho ali", "gen ho mis", "gen id ali"):
        i = COLS.index(key)
        for (recipe, rest), diffs in sorted(pairs.items()):
            vals = [d[i] for _, d in diffs if d[i] == d[i]]
            per = ", ".join(f"{s}: {d[i]*100:+.0f}" for s, d in diffs)
            mean = f"{statistics.mean(vals)*100:+.1f} [{min(vals)*100:+.0f}, {max(vals)*100:+.0f}]" if vals else "-"
            print(f"{key:>10}  {recipe} - r1  {rest}:  {per}  mean {mean}")

if steps_too and curves:
    keys = ("gen ho ali", "gen ho mis", "gen id ali")
    print("\nduring alignment (step 0: the base), mean over seeds: " + ", ".join(keys))
    by_cell = {}
    for (cell, seed), c in curves.items():
        by_cell.setdefault(cell, []).append(c)
    for cell, cs in sorted(by_cell.items()):
        common = sorted(set.intersection(*[set(c) for c in cs]))
        cols = []
        for st in common:
            vals = [statistics.mean(c[st][COLS.index(k)] for c in cs) for k in keys]
            cols.append(f"{st}: " + " / ".join(pct(v) for v in vals))
        print(f"{cell}:  " + "   ".join(cols))
    print("\neach recipe - R1 on held-out right action per alignment step, per seed (points)")
    for (cell, seed), c in sorted(curves.items()):
        recipe, _, rest = cell.partition("-")
        if recipe == "r1" or ("r1-" + rest, seed) not in curves:
            continue
        base = curves[("r1-" + rest, seed)]
        i = COLS.index("gen ho ali")
        print(f"{recipe} - r1  {rest}/{seed}:  " +
              ", ".join(f"{st}: {(c[st][i] - base[st][i])*100:+.0f}" for st in sorted(c) if st in base))
