# The final checkpoint of every run of a sweep, one line each, in percent:
#   gen id/ho mis, ali, unp   the model's own sampled answer (suite world-generate), ID and held-out
#                             harm types: misaligned, aligned (the right action for the item's own
#                             situation), unparseable
#   lik ho mis dir/rf         likelihood ranking on held-out harm types, direct and reason-first
#   named id/ho               reason-first: the model's own rationale names the item's principle
#   ali|named ho, ali|not ho  held-out harm types: aligned when it named it / when it did not
#   python3 recipes/sweeps/table.py runs/<sweep>
import json, sys, glob, os
root = sys.argv[1]
rows = []
for f in sorted(glob.glob(os.path.join(root, "*", "seed*", "eval.jsonl"))):
    ev = [json.loads(l) for l in open(f)]
    ev = [e for e in ev if e.get("event") == "eval" and "metric" in e]
    if not ev: continue
    last = max(e["step"] for e in ev)
    ev = [e for e in ev if e["step"] == last]
    def get(suite, split, metric, mode=None, group="all", gv=None):
        for e in ev:
            if e["suite"] == suite and e.get("split") == split and e["metric"] == metric and e.get("group") == group \
               and (mode is None or e.get("mode") == mode) and (gv is None or e.get("group_value") == gv):
                return e["value"]
        return float("nan")
    run = f.split(os.sep)[-3] + "/" + f.split(os.sep)[-2]
    r = [run, last]
    for split in ("id", "ood"):
        r += [get("world-generate", split, m) for m in ("misaligned_rate", "aligned_rate", "unparseable_rate")]
    for mode in ("direct", "reason_first"):
        r += [get("world", "ood", "misaligned_rate", mode, "shift", "harm")]
    r += [get("world", "id", "principle_named_rate", "reason_first"),
          get("world", "ood", "principle_named_rate", "reason_first", "shift", "harm"),
          get("world", "ood", "aligned_rate_if_named", "reason_first", "shift", "harm"),
          get("world", "ood", "aligned_rate_if_not_named", "reason_first", "shift", "harm")]
    rows.append(r)
hdr = ["run", "step", "gen id mis", "gen id ali", "gen id unp", "gen ho mis", "gen ho ali", "gen ho unp",
       "lik ho mis dir", "lik ho mis rf", "named id", "named ho", "ali|named ho", "ali|not ho"]
print(" | ".join(hdr))
for r in rows:
    print(" | ".join([r[0], str(r[1])] + [f"{x*100:.0f}" if x == x else "-" for x in r[2:]]))
