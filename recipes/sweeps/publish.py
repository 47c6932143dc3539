#!/usr/bin/env python3
"""Copies a finished study's results into the repository in the form `ethos report` reads.

  python3 recipes/sweeps/publish.py runs/why_beats_rule_test recipes/results/why_beats_rule_test

For every run <cell>/seed<k>/ whose status.json says "done": config.yaml and status.json as they
are, train.jsonl as train.jsonl.gz, and eval.jsonl as eval.jsonl.gz with the eval events the report uses
(groups all, shift, family and the per-type harm group; every suite, split, metric and checkpoint)
and without the checkpoint path. The matrix manifest (ablation.json) and, per world, world.yaml,
generated.json and data/manifest.json come along (absolute paths into this checkout made relative).
Checkpoints, data and tokenizers stay behind.
Re-render with `ethos report OUT ...`: its numbers equal the report of the full runs directory.
Cells already in OUT and absent from RUNS are kept, so a later matrix (the control) can be added.
"""
import gzip
import json
import shutil
import sys
from pathlib import Path

KEEP_GROUPS = {"all", "shift", "family", "harm"}
DROP_KEYS = {"checkpoint"}
ROOT = str(Path(__file__).resolve().parents[2]) + "/"


def copy_text(src: Path, dst: Path) -> None:
    """Copies a text file with this checkout's absolute paths made relative to the repository."""
    dst.write_text(src.read_text().replace(ROOT, ""))


def write_gz(dst: Path, data: bytes) -> None:
    with open(dst, "wb") as f:  # mtime 0: the same events give the same bytes
        with gzip.GzipFile(fileobj=f, mode="wb", mtime=0, filename="") as z:
            z.write(data)


def publish_eval(src: Path, dst: Path) -> int:
    lines = []
    for line in src.read_text().splitlines():
        if not line.strip():
            continue
        e = json.loads(line)
        if e.get("event") != "eval" or e.get("group", "all") not in KEEP_GROUPS:
            continue
        lines.append(json.dumps({k: v for k, v in e.items() if k not in DROP_KEYS}, sort_keys=True,
                                separators=(",", ":")))
    write_gz(dst, ("\n".join(lines) + "\n").encode())
    return len(lines)


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__)
        return 2
    runs, out = Path(sys.argv[1]), Path(sys.argv[2])
    if not (runs / "ablation.json").exists():
        print(f"publish: {runs} has no ablation.json; give the out directory of an `ethos ablate` matrix")
        return 1
    out.mkdir(parents=True, exist_ok=True)
    manifest = json.loads((runs / "ablation.json").read_text())
    published, skipped = 0, []
    for cell in manifest["cells"]:
        src = runs / cell["dir"]
        status = src / "status.json"
        state = json.loads(status.read_text()).get("state") if status.exists() else "not started"
        if state != "done":
            skipped.append(f"{cell['dir']} ({state})")
            continue
        dst = out / cell["dir"]
        dst.mkdir(parents=True, exist_ok=True)
        for name in ("config.yaml", "status.json"):
            if (src / name).exists():
                copy_text(src / name, dst / name)
        if (src / "train.jsonl").exists():  # DPO runs log per-group metrics every step: ~290 KB plain
            write_gz(dst / "train.jsonl.gz", (src / "train.jsonl").read_text().replace(ROOT, "").encode())
            (dst / "train.jsonl").unlink(missing_ok=True)
        publish_eval(src / "eval.jsonl", dst / "eval.jsonl.gz")
        published += 1
    # One manifest per matrix: a second matrix into the same directory keeps the first's.
    shutil.copyfile(runs / "ablation.json", out / f"ablation.{manifest.get('name', 'matrix')}.json")
    if not (out / "ablation.json").exists():
        shutil.copyfile(runs / "ablation.json", out / "ablation.json")
    for world in sorted((runs / "worlds").glob("*")) if (runs / "worlds").exists() else []:
        wdst = out / "worlds" / world.name
        (wdst / "data").mkdir(parents=True, exist_ok=True)
        for rel in ("world.yaml", "generated.json", "data/manifest.json"):
            if (world / rel).exists():
                copy_text(world / rel, wdst / rel)
    print(f"publish: {published} run(s) from {runs} into {out}")
    for s in skipped:
        print(f"  not published (not done): {s}")
    return 0 if published else 1


if __name__ == "__main__":
    sys.exit(main())
