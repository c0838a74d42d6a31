"""Test-guided repair on a real project: bugs injected one at a time, fixed by `patchcoder fix`'s pipeline
with three candidate orders side by side — the model's (log p + weight · log Ochiai), the plain
enumeration order (most suspicious line first, rewrites as enumerated) and a random order.

    python benchmarks/fix.py PROJECT --test "PYTHONPATH=src python -m pytest -x -q -p no:cacheprovider" \
        --source src/cachetools --bugs 50 [--checkpoint DIR] [--orders model,enumeration,random] \
        [--weights 0,0.5,1,2] [--max-tries 200] [--jobs 1] [--out results.jsonl]

PROJECT is a folder holding the project (no training data may come from it). Bugs come from
`patchcoder synth SOURCE --evaluation-set` (one single-statement bug per example); a bug is kept if the
test command fails with it. For each kept bug, each order runs the whole pipeline (baseline, coverage,
ranking, validation in scratch copies) on a copy of the project holding the bug. Reported per order:
share fixed (tests pass), share identical to the original code, median tries to the first fix, median
wall time (fixed bugs), and with --weights the model order's figures for each weight of log Ochiai.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def inject(project: Path, source: str, seed: int, per_file: int, out: Path) -> list[dict]:
    """Rows (path relative to the project, buggy text, original text, class) from `patchcoder synth`."""
    import pyarrow.parquet as pq

    subprocess.run([sys.executable, "-m", "patchcoder", "synth", str(project / source), "--evaluation-set",
                    "--seed", str(seed), "--per-file", str(per_file), "--out", str(out), "--jobs", "1",
                    "--no-progress"], check=True, stdout=subprocess.DEVNULL)
    rows = []
    for shard in sorted((out / "shards").rglob("*.parquet")):
        for row in pq.read_table(shard, columns=["path", "old", "new", "sstub"]).to_pylist():
            rows.append({"path": f"{source}/{row['path']}".replace("//", "/"), "buggy": row["old"],
                         "original": row["new"], "sstub": row["sstub"]})
    random.Random(seed).shuffle(rows)
    return rows


def fails(project: Path, test: str, timeout: float) -> bool:
    from patchcoder.scratch import run_command

    result = run_command(test, project, timeout)
    return not result.passed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("project")
    parser.add_argument("--test", required=True)
    parser.add_argument("--source", required=True, help="folder of the project's code to inject bugs into")
    parser.add_argument("--bugs", type=int, default=50)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--per-file", type=int, default=12)
    parser.add_argument("--checkpoint")
    parser.add_argument("--orders", default="model,enumeration,random")
    parser.add_argument("--weights", default="", help="comma-separated weights of log Ochiai for the model order")
    parser.add_argument("--max-tries", type=int, default=200)
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--out", help="append one JSON line per (bug, order) here")
    args = parser.parse_args()

    from patchcoder.fix import WEIGHT, FixConfig, fix
    from patchcoder.repair import Repairer

    project = Path(args.project).resolve()
    repairer = Repairer.load(args.checkpoint)
    work = Path(tempfile.mkdtemp(prefix="fix-bench-"))
    try:
        rows = inject(project, args.source, args.seed, args.per_file, work / "synth")
        runs = [(order, WEIGHT) for order in args.orders.split(",")]
        runs += [("model", float(w)) for w in args.weights.split(",") if w and float(w) != WEIGHT]
        results: dict[tuple[str, float], list[dict]] = {run: [] for run in runs}
        kept = 0
        for row in rows:
            if kept >= args.bugs:
                break
            tree = work / "tree"
            shutil.rmtree(tree, ignore_errors=True)
            shutil.copytree(project, tree, ignore=shutil.ignore_patterns(".git", "__pycache__", ".pytest_cache"))
            (tree / row["path"]).write_text(row["buggy"], encoding="utf-8")
            if not fails(tree, args.test, 120):
                continue
            kept += 1
            for order, weight in runs:
                started = time.perf_counter()
                result = fix(repairer, FixConfig(test=args.test, directory=str(tree), max_tries=args.max_tries,
                                                 jobs=args.jobs, weight=weight, order=order))
                seconds = time.perf_counter() - started
                first = result.fixes[0] if result.fixes else None
                record = {"bug": kept, "path": row["path"], "sstub": row["sstub"], "order": order, "weight": weight,
                          "status": result.status, "tries": result.tries if first else None,
                          "candidates": result.candidates, "seconds": round(seconds, 2),
                          "identical": bool(first and first.patch.apply(first.patch.original) == row["original"]),
                          "ceiling": result.ceiling if hasattr(result, "ceiling") else None,
                          "localisation": result.localisation.method if result.localisation else None}
                results[(order, weight)].append(record)
                if args.out:
                    with open(args.out, "a", encoding="utf-8") as f:
                        f.write(json.dumps(record) + "\n")
                print(json.dumps(record), file=sys.stderr)
        print(f"{kept} bugs that make a test fail (of {len(rows)} injected rows looked at); "
              f"max {args.max_tries} tries, {args.jobs} job(s)")
        print(f"{'order':<12} {'weight':>6} {'fixed':>7} {'identical':>9} {'median tries':>12} {'median s':>9}")
        for (order, weight), records in results.items():
            fixed = [r for r in records if r["status"] == "fixed"]
            n = max(1, len(records))
            tries = statistics.median(r["tries"] for r in fixed) if fixed else float("nan")
            secs = statistics.median(r["seconds"] for r in fixed) if fixed else float("nan")
            print(f"{order:<12} {weight:>6g} {len(fixed) / n:>7.0%} {sum(r['identical'] for r in records) / n:>9.0%} "
                  f"{tries:>12g} {secs:>9.1f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
