"""Test-guided repair on a real project: bugs injected one at a time, fixed by `patchcoder fix`'s pipeline
with three candidate orders side by side — the model's (log p + weight · log Ochiai), the plain
enumeration order (most suspicious line first, rewrites as enumerated) and a random order.

    python benchmarks/fix.py PROJECT --test "PYTHONPATH=src python -m pytest -x -q -p no:cacheprovider" \
        --source src/cachetools --bugs 50 [--checkpoint DIR] [--weights 0,0.5,1,2] [--max-tries 200] \
        [--candidates wide,narrow] [--random-bugs N] [--shard I/N] [--out results.jsonl]
    python benchmarks/fix.py --report results-0.jsonl results-1.jsonl      # the table of shards' JSON lines

PROJECT is a folder holding the project (no training data may come from it). Bugs come from
`patchcoder synth SOURCE --evaluation-set` (one single-statement bug per example); a bug is kept if the
test command fails with it. For each kept bug, the pipeline of `patchcoder.fix.fix` runs once, step by
step, on a copy of the project holding the bug: the baseline run, the run under coverage (Ochiai), the
model's candidates for the 20 most suspicious lines (`fix.rank_candidates`, the enumeration order); then
each order (model at each weight, enumeration, random) walks its own list, up to --max-tries, and every
candidate is validated once (the test command in a scratch copy; a candidate that several orders try
runs once and its outcome is shared: the outcome of a run does not depend on the order). An order's wall
time is the time `patchcoder fix --jobs 1` would take: baseline + coverage run + ranking + the measured
run times of the candidates it tries before its first fix (the model is loaded once, not counted).
Reported per order: share fixed (tests pass), share identical to the original code, median tries to the
first fix, median wall time (fixed bugs).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
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


def report(records: list[dict]) -> None:
    """The table: per candidate set, order and weight, over the bugs it ran on."""
    groups: dict[tuple, list[dict]] = {}
    for r in records:
        groups.setdefault((r["candidates_set"], r["order"], r["weight"]), []).append(r)
    print(f"{'candidates':<10} {'order':<12} {'weight':>6} {'bugs':>5} {'fixed':>7} {'identical':>9} "
          f"{'in reach':>8} {'median tries':>12} {'median s':>9}")
    for (name, order, weight), mine in groups.items():
        fixed = [r for r in mine if r["fixed"]]
        n = max(1, len(mine))
        tries = statistics.median(r["tries"] for r in fixed) if fixed else float("nan")
        secs = statistics.median(r["seconds"] for r in fixed) if fixed else float("nan")
        print(f"{name:<10} {order:<12} {'' if weight is None else f'{weight:g}':>6} {len(mine):>5} "
              f"{len(fixed) / n:>7.0%} {sum(r['identical'] for r in mine) / n:>9.0%} "
              f"{sum(r['within_reach'] for r in mine) / n:>8.0%} {tries:>12g} {secs:>9.1f}")


def main() -> None:
    if sys.argv[1:2] == ["--report"]:  # the table of JSON lines files written with --out
        report([json.loads(line) for name in sys.argv[2:] for line in Path(name).read_text().splitlines() if line])
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("project")
    parser.add_argument("--test", required=True)
    parser.add_argument("--source", required=True, help="folder of the project's code to inject bugs into")
    parser.add_argument("--bugs", type=int, default=50)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--per-file", type=int, default=12)
    parser.add_argument("--checkpoint")
    parser.add_argument("--weights", default="1", help="comma-separated weights of log Ochiai for the model order")
    parser.add_argument("--candidates", default="wide", help="comma-separated: wide, narrow (the candidate sets)")
    parser.add_argument("--random-bugs", type=int, default=None,
                        help="run the random order on the first N kept bugs only (it tries the most candidates)")
    parser.add_argument("--max-tries", type=int, default=200)
    parser.add_argument("--out", help="append one JSON line per (bug, order) here")
    parser.add_argument("--shard", default="0/1", metavar="I/N",
                        help="run only the kept bugs whose number is I modulo N (N processes side by side; "
                             "merge their --out files); every process still counts the bugs the same way")
    args = parser.parse_args()
    shard, shards = (int(x) for x in args.shard.split("/"))

    from patchcoder.fix import FixConfig, _localise, rank_candidates
    from patchcoder.repair import Repairer
    from patchcoder.scratch import ScratchTree

    project = Path(args.project).resolve()
    repairer = Repairer.load(args.checkpoint)
    weights = [float(w) for w in args.weights.split(",") if w]
    sets = [c for c in args.candidates.split(",") if c]
    work = Path(tempfile.mkdtemp(prefix="fix-bench-"))
    results: dict[tuple, list[dict]] = {}
    try:
        rows = inject(project, args.source, args.seed, args.per_file, work / "synth")
        kept = looked = 0
        for row in rows:
            if kept >= args.bugs:
                break
            looked += 1
            tree = work / "tree"
            shutil.rmtree(tree, ignore_errors=True)
            shutil.copytree(project, tree, ignore=shutil.ignore_patterns(".git", "__pycache__", ".pytest_cache"))
            (tree / row["path"]).write_text(row["buggy"], encoding="utf-8")
            with ScratchTree(tree) as scratch:
                baseline = scratch.run(args.test, 120)
                if baseline.passed:
                    continue
                kept += 1
                if kept % shards != shard:
                    continue  # another process's bug
                timeout = 3 * baseline.seconds + 5
                config = FixConfig(test=args.test, directory=str(tree), max_tries=args.max_tries, weight=0.0,
                                   order="enumeration")
                started = time.perf_counter()
                run, localisation = _localise(scratch, config, tree, ".", [], timeout)
                localise_s = time.perf_counter() - started
                if run.passed:
                    print(f"bug {kept} (row {looked}): flaky, left out", file=sys.stderr, flush=True)
                    continue
                print(f"bug {kept} (row {looked}): {row['path']} {row['sstub']}, {localisation.method}, "
                      f"baseline {baseline.seconds:.1f} s", file=sys.stderr, flush=True)
                suspicion = {(s.path, s.line): s.score for s in localisation.suspects}
                outcomes: dict[tuple[str, str], tuple[bool, float]] = {}

                def outcome(candidate, outcomes=outcomes, scratch=scratch, timeout=timeout) -> tuple[bool, float]:
                    key = (candidate.path, candidate.text)
                    if key not in outcomes:
                        scratch.write(candidate.path, candidate.text)
                        result = scratch.run(args.test, timeout)
                        scratch.restore()
                        outcomes[key] = (result.passed, result.seconds)
                    return outcomes[key]

                for name in sets:
                    started = time.perf_counter()
                    enumeration = rank_candidates(repairer, tree, localisation.suspects[:config.suspects],
                                                  dataclasses.replace(config, wide=name == "wide"))
                    rank_s = time.perf_counter() - started
                    orders = []
                    for w in weights:
                        keyed = sorted(range(len(enumeration)), key=lambda i: (
                            -(enumeration[i].score + w * math.log(max(suspicion.get(
                                (enumeration[i].path, enumeration[i].line), 1e-9), 1e-9))), i))
                        orders.append(("model", w, [enumeration[i] for i in keyed]))
                    orders.append(("enumeration", None, enumeration))
                    if args.random_bugs is None or kept <= args.random_bugs:
                        shuffled = list(enumeration)
                        random.Random(args.seed * 1000 + kept).shuffle(shuffled)
                        orders.append(("random", None, shuffled))
                    for order, weight, candidates in orders:
                        seconds = baseline.seconds + localise_s + rank_s
                        tries, fixed = 0, None
                        for candidate in candidates[:args.max_tries]:
                            tries += 1
                            passed, took = outcome(candidate)
                            seconds += took
                            if passed:
                                fixed = candidate
                                break
                        record = {"bug": kept, "path": row["path"], "sstub": row["sstub"], "candidates_set": name,
                                  "order": order, "weight": weight, "fixed": fixed is not None,
                                  "tries": tries if fixed else None, "candidates": len(enumeration),
                                  "seconds": round(seconds, 2), "baseline_s": round(baseline.seconds, 2),
                                  "identical": bool(fixed and fixed.text == row["original"]),
                                  "within_reach": any(c.path == row["path"] and c.text == row["original"]
                                                      for c in enumeration),
                                  "localisation": localisation.method}
                        results.setdefault((name, order, weight), []).append(record)
                        if args.out:
                            with open(args.out, "a", encoding="utf-8") as f:
                                f.write(json.dumps(record) + "\n")
                        print(json.dumps(record), file=sys.stderr, flush=True)
        print(f"{kept} bugs that make a test fail (of {looked} injected rows looked at); max {args.max_tries} tries")
        report([r for records in results.values() for r in records])
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
