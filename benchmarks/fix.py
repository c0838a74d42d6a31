"""Test-guided repair on a real project: bugs injected one at a time, fixed by `patchcoder fix`'s pipeline
with three candidate orders side by side — the model's (`fix.order_key`: mean log p per token of the
script + weight · log Ochiai), the plain enumeration order (most suspicious line first, rewrites as
enumerated) and a random order.

    python benchmarks/fix.py PROJECT --test "PYTHONPATH=src python -m pytest -x -q -p no:cacheprovider" \
        --source src/cachetools --bugs 50 [--checkpoint DIR] [--weights 0,0.5,1,2] [--max-tries 200] \
        [--candidates wide,narrow] [--random-bugs N] [--shard I/N] [--out results.jsonl]
        [--ranks-only --features features.jsonl]      # no candidate run: where the exact fix stands
        [--localisation]                              # only localise: the bug line's rank per tie-break
    python benchmarks/fix.py --report results-0.jsonl results-1.jsonl      # the table of shards' JSON lines
    python benchmarks/fix.py --report features-0.jsonl features-1.jsonl    # order keys and weights compared

PROJECT is a folder holding the project (no training data may come from it). Bugs come from
`patchcoder synth SOURCE --evaluation-set` (one single-statement bug per example); a bug is kept if the
test command fails with it. For each kept bug, the pipeline of `patchcoder.fix.fix` runs once, step by
step, on a copy of the project holding the bug: the baseline run, the run under coverage (Ochiai), the
model's candidates for the 20 most suspicious lines (`fix.rank_candidates`, the enumeration order); then
each order (model at each weight, enumeration, random) walks its own list, up to --max-tries, and every
candidate is validated once (the test command in a scratch copy; a candidate that several orders try
runs once and its outcome is shared: the outcome of a run does not depend on the order). An order's wall
time is the time `patchcoder fix --jobs 1` would take: baseline + coverage run + ranking + the measured
run times of the candidates it tries before its first fix (the model is loaded once, not counted). Each
candidate first runs only the tests that failed (`patchcoder fix`'s default), then the whole command.
Reported per order: share fixed (tests pass), share identical to the original code, median tries to the
first fix, median wall time (fixed bugs), and where the exact fix (the original code, which passes the
tests) stands in the order: an upper bound on the tries to a fix that costs no run (`--ranks-only`).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import difflib
import json
import math
import random
import shutil
import signal
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


def bug_lines(row: dict) -> set[int]:
    """The buggy file's 0-based lines that differ from the original (for a deleted statement: the lines
    on either side of where it was)."""
    buggy, original = row["buggy"].splitlines(), row["original"].splitlines()
    lines: set[int] = set()
    for tag, i1, i2, _, _ in difflib.SequenceMatcher(None, buggy, original, autojunk=False).get_opcodes():
        if tag in ("replace", "delete"):
            lines.update(range(i1, i2))
        elif tag == "insert":
            lines.update({max(0, i1 - 1), i1})
    return lines


def bug_line_rank(suspects: list, row: dict) -> int | None:
    """1-based position of the first bug line among the suspects (None: not a suspect)."""
    lines = bug_lines(row)
    for k, s in enumerate(suspects):
        if s.path == row["path"] and s.line in lines:
            return k + 1
    return None


# Orders of the suspects compared by --localisation (each over Ochiai first): which breaks ties best.
TIE_BREAKS = {
    "failing, file order": lambda s: (-s.score, -s.failing, s.path, s.line),
    "traceback, failing, file order": lambda s: (-s.score, -s.stack, -s.failing, s.path, s.line),
    "failing, fewest passing, file order": lambda s: (-s.score, -s.failing, s.passing, s.path, s.line),
    "traceback, file order reversed": lambda s: (-s.score, -s.stack, s.path, -s.line),
}


def localisation_ranks(scratch, test: str, timeout: float, row: dict) -> dict:
    """The bug line's rank among the suspects under each tie-break, localising with -x as given and with
    every test run, and how many lines tie with the 20th suspect."""
    from patchcoder.localize import coverage_spectrum

    record = {"path": row["path"], "sstub": row["sstub"]}
    for every in (False, True):
        started = time.perf_counter()
        found, _ = coverage_spectrum(scratch, test, timeout, every_test=every)
        name = "every" if every else "as_given"
        record[f"{name}_s"] = round(time.perf_counter() - started, 2)
        if found is None:
            continue
        record[f"{name}_failing"], record[f"{name}_passing"] = found.failed, found.passed
        record[f"{name}_suspects"] = len(found.suspects)
        for tie, key in TIE_BREAKS.items():
            record[f"{name}: {tie}"] = bug_line_rank(sorted(found.suspects, key=key), row)
        ordered = sorted(found.suspects, key=TIE_BREAKS["failing, file order"])
        if len(ordered) >= 20:
            record[f"{name}_tied_with_20th"] = sum(s.score == ordered[19].score for s in ordered)
    return record


def report_localisation(records: list[dict]) -> None:
    """Per localisation and tie-break: share of bugs whose line is among the first 20 / 40 suspects."""
    records = [r for r in records if "as_given_s" in r]
    n = max(1, len(records))
    print(f"{len(records)} bugs")
    print(f"{'localisation':<10} {'tie-break':<40} {'top 1':>6} {'top 5':>6} {'top 20':>6} {'top 40':>6} {'median rank':>11}")
    for name in ("as_given", "every"):
        for tie in TIE_BREAKS:
            ranks = [r.get(f"{name}: {tie}") for r in records]
            found = [k for k in ranks if k is not None]
            med = statistics.median(found) if found else float("nan")
            print(f"{name:<10} {tie:<40} " + " ".join(f"{sum(1 for k in found if k <= t) / n:>6.0%}"
                                                     for t in (1, 5, 20, 40)) + f" {med:>11g}")
        tied = [r[f"{name}_tied_with_20th"] for r in records if f"{name}_tied_with_20th" in r]
        secs = [r[f"{name}_s"] for r in records]
        print(f"  {name}: median lines tied with the 20th suspect {statistics.median(tied) if tied else 0:g}, "
              f"median run under coverage {statistics.median(secs):.1f} s")


# Order keys compared offline on --features (higher first; ties by enumeration). A candidate is
# [suspect index, Ochiai, log p, mean log p per token, place in its line's enumeration, class, exact].
ORDER_KEYS = {
    "enumeration": lambda c, w: 0.0,
    "log p + w·log Ochiai": lambda c, w: c[2] + w * math.log(max(c[1], 1e-9)),
    "mean log p + w·log Ochiai": lambda c, w: c[3] + w * math.log(max(c[1], 1e-9)),
    "lines by suspicion, log p within": lambda c, w: -1e6 * c[0] + c[2],
    "lines by suspicion, mean log p within": lambda c, w: -1e6 * c[0] + c[3],
    "log p − w·log(1 + suspect index)": lambda c, w: c[2] - w * math.log1p(c[0]),
    "mean log p − w·log(1 + suspect index)": lambda c, w: c[3] - w * math.log1p(c[0]),
}


def report_orders(bugs: list[dict], weights=(0, 0.25, 0.5, 1, 2, 4, 8)) -> None:
    """Where the exact fix stands under each order key and weight, over the bugs of --features files."""
    print(f"{len(bugs)} bugs, exact fix within the candidates for "
          f"{sum(any(c[6] for c in b['candidates']) for b in bugs) / max(1, len(bugs)):.0%}")
    print(f"{'order key':<42} {'w':>5} {'exact ≤ 10':>10} {'≤ 25':>6} {'≤ 50':>6} {'≤ 200':>6} {'median rank':>11}")
    for name, key in ORDER_KEYS.items():
        for w in (weights if "w·" in name else (None,)):
            ranks = []
            for b in bugs:
                cands = b["candidates"]
                order = sorted(range(len(cands)), key=lambda i: (-key(cands[i], w), i))
                ranks.append(next((k + 1 for k, i in enumerate(order) if cands[i][6]), math.inf))
            n = max(1, len(ranks))
            print(f"{name:<42} {'' if w is None else f'{w:g}':>5} " + " ".join(
                f"{sum(r <= t for r in ranks) / n:>{width}.0%}" for t, width in ((10, 10), (25, 6), (50, 6), (200, 6)))
                + f" {statistics.median(ranks):>11g}")


def report(records: list[dict]) -> None:
    """The table: per candidate set, order and weight, over the bugs it ran on."""
    groups: dict[tuple, list[dict]] = {}
    for r in records:
        groups.setdefault((r["candidates_set"], r["order"], r["weight"]), []).append(r)
    print(f"{'candidates':<10} {'order':<12} {'weight':>6} {'bugs':>5} {'fixed':>7} {'identical':>9} "
          f"{'in reach':>8} {'median tries':>12} {'median s':>9} {'exact ≤ 200':>11} {'exact ≤ 25':>10} "
          f"{'median exact rank':>17}")
    for (name, order, weight), mine in sorted(groups.items(), key=lambda g: (g[0][0], g[0][1], g[0][2] or 0)):
        fixed = [r for r in mine if r["fixed"]]
        n = max(1, len(mine))
        tries = statistics.median(r["tries"] for r in fixed) if fixed else float("nan")
        secs = statistics.median(r["seconds"] for r in fixed) if fixed else float("nan")
        ran = all(r["fixed"] is not None for r in mine)
        # the exact fix passes the tests: its rank bounds the tries to a fix (absent: infinitely far)
        exact = [r.get("exact_rank") or math.inf for r in mine]
        print(f"{name:<10} {order:<12} {'' if weight is None else f'{weight:g}':>6} {len(mine):>5} "
              f"{f'{len(fixed) / n:.0%}' if ran else '-':>7} {sum(r['identical'] for r in mine) / n:>9.0%} "
              f"{sum(r['within_reach'] for r in mine) / n:>8.0%} {tries:>12g} {secs:>9.1f} "
              f"{sum(k <= 200 for k in exact) / n:>11.0%} {sum(k <= 25 for k in exact) / n:>10.0%} "
              f"{statistics.median(exact):>17g}")


def main() -> None:
    if sys.argv[1:2] == ["--report"]:  # the table of JSON lines files written with --out
        records = [json.loads(line) for name in sys.argv[2:] for line in Path(name).read_text().splitlines() if line]
        if records and isinstance(records[0].get("candidates"), list):
            report_orders(records)
        elif records and "order" not in records[0]:
            report_localisation(records)
        else:
            report(records)
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("project")
    parser.add_argument("--test", required=True)
    parser.add_argument("--source", required=True, help="folder of the project's code to inject bugs into")
    parser.add_argument("--bugs", type=int, default=50)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--per-file", type=int, default=12)
    parser.add_argument("--checkpoint")
    parser.add_argument("--weights", default="2", help="comma-separated weights of log Ochiai for the model order")
    parser.add_argument("--candidates", default="wide", help="comma-separated: wide, narrow (the candidate sets)")
    parser.add_argument("--random-bugs", type=int, default=None,
                        help="run the random order on the first N kept bugs only (it tries the most candidates)")
    parser.add_argument("--max-tries", type=int, default=200)
    parser.add_argument("--out", help="append one JSON line per (bug, order) here")
    parser.add_argument("--resume", action="store_true",
                        help="skip the bugs --out already holds (bugs are still counted the same way, by running "
                             "the suite on each injected row, so a stopped run continues where it was)")
    parser.add_argument("--every-test", action="store_true",
                        help="localise with pytest's -x/--maxfail ignored (every test runs under coverage)")
    parser.add_argument("--no-failing-first", action="store_true",
                        help="every candidate runs the whole test command (no quick run of the failing tests)")
    parser.add_argument("--ranks-only", action="store_true",
                        help="run no candidate: record only where the exact fix (the original code) stands in each "
                             "order (it passes the tests, so it bounds the tries to a fix from above)")
    parser.add_argument("--features", metavar="FILE",
                        help="append per bug every candidate's [suspect index, Ochiai, log p, mean log p per token, "
                             "place in its line's enumeration, class, is the exact fix] (to compare order keys)")
    parser.add_argument("--localisation", action="store_true",
                        help="only localise each bug (with -x as given and with every test) and write the bug "
                             "line's rank under each tie-break (see TIE_BREAKS); no candidate is run")
    parser.add_argument("--shard", default="0/1", metavar="I/N",
                        help="run only the kept bugs whose number is I modulo N (N processes side by side; "
                             "merge their --out files); every process still counts the bugs the same way")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # `kill` still removes the scratch copies
    shard, shards = (int(x) for x in args.shard.split("/"))

    from patchcoder.fix import FixConfig, _localise, order_key, rank_candidates
    from patchcoder.localize import only_tests
    from patchcoder.repair import Repairer
    from patchcoder.scratch import ScratchTree
    from patchcoder.search import try_candidate

    project = Path(args.project).resolve()
    repairer = None if args.localisation else Repairer.load(args.checkpoint)
    weights = [float(w) for w in args.weights.split(",") if w]
    sets = [c for c in args.candidates.split(",") if c]
    work = Path(tempfile.mkdtemp(prefix="fix-bench-"))
    results: dict[tuple, list[dict]] = {}
    done: set[int] = set()
    if args.resume and args.out and Path(args.out).exists():
        # lines are appended per bug in order (sets, then model weights, enumeration, random): a bug is done
        # once its last line is written; a bug stopped half-way loses its lines and runs again
        def last(bug: int) -> tuple:
            random_too = args.ranks_only or args.random_bugs is None or bug <= args.random_bugs
            return sets[-1], "random" if random_too else "enumeration"

        lines = [json.loads(line) for line in Path(args.out).read_text(encoding="utf-8").splitlines() if line]
        done = {r["bug"] for r in lines if "order" not in r or (r["candidates_set"], r["order"]) == last(r["bug"])}
        Path(args.out).write_text("".join(json.dumps(r) + "\n" for r in lines if r["bug"] in done), encoding="utf-8")
        print(f"resuming: {len(done)} bugs already in {args.out}", file=sys.stderr, flush=True)
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
                if kept % shards != shard or kept in done:
                    continue  # another process's bug, or one already measured
                timeout = 3 * baseline.seconds + 5
                if args.localisation:
                    record = localisation_ranks(scratch, args.test, timeout, row)
                    record.update(bug=kept, baseline_s=round(baseline.seconds, 2))
                    if args.out:
                        with open(args.out, "a", encoding="utf-8") as f:
                            f.write(json.dumps(record) + "\n")
                    print(json.dumps(record), file=sys.stderr, flush=True)
                    continue
                config = FixConfig(test=args.test, directory=str(tree), max_tries=args.max_tries, weight=0.0,
                                   order="enumeration")
                started = time.perf_counter()
                run, localisation = _localise(scratch, config, tree, ".", [], timeout, every_test=args.every_test)
                localise_s = time.perf_counter() - started
                if run.passed:
                    print(f"bug {kept} (row {looked}): flaky, left out", file=sys.stderr, flush=True)
                    continue
                print(f"bug {kept} (row {looked}): {row['path']} {row['sstub']}, {localisation.method}, "
                      f"baseline {baseline.seconds:.1f} s", file=sys.stderr, flush=True)
                suspicion = {(s.path, s.line): s.score for s in localisation.suspects}
                outcomes: dict[tuple[str, str], tuple[bool, float]] = {}
                quick = only_tests(localisation.failing_tests) if (
                    localisation.failing_tests and not args.no_failing_first) else contextlib.nullcontext()
                quick_env = quick.__enter__()
                runs = {"quick": 0, "full": 0}

                def outcome(candidate, outcomes=outcomes, scratch=scratch, timeout=timeout, quick_env=quick_env,
                            runs=runs) -> tuple[bool, float]:
                    key = (candidate.path, candidate.text)
                    if key not in outcomes:
                        trial = try_candidate(0, candidate, scratch, args.test, timeout, quick_env=quick_env)
                        runs["quick"] += trial.quick is not None
                        runs["full"] += trial.quick is None or trial.result is not trial.quick
                        outcomes[key] = (trial.plausible, trial.seconds)
                    return outcomes[key]

                for name in sets:
                    started = time.perf_counter()
                    enumeration = rank_candidates(repairer, tree, localisation.suspects[:config.suspects],
                                                  dataclasses.replace(config, wide=name == "wide"))
                    rank_s = time.perf_counter() - started
                    if args.features:
                        where = {(x.path, x.line): k for k, x in enumerate(localisation.suspects)}
                        with open(args.features, "a", encoding="utf-8") as f:
                            f.write(json.dumps({"bug": kept, "candidates_set": name, "path": row["path"],
                                                "sstub": row["sstub"], "rank_s": round(rank_s, 2),
                                                "baseline_s": round(baseline.seconds, 2),
                                                "localise_s": round(localise_s, 2), "candidates": [
                                [where.get((c.path, c.line)), round(suspicion.get((c.path, c.line), 0.0), 5),
                                 round(c.info.logp, 4), round(c.info.score, 4), c.info.rank, c.info.sstub,
                                 c.path == row["path"] and c.text == row["original"]]
                                for c in enumeration]}) + "\n")
                    orders = []
                    for w in weights:
                        keyed = sorted(range(len(enumeration)), key=lambda i: (-order_key(
                            enumeration[i].info, suspicion.get((enumeration[i].path, enumeration[i].line), 0.0), w), i))
                        orders.append(("model", w, [enumeration[i] for i in keyed]))
                    orders.append(("enumeration", None, enumeration))
                    if args.random_bugs is None or kept <= args.random_bugs or args.ranks_only:
                        shuffled = list(enumeration)
                        random.Random(args.seed * 1000 + kept).shuffle(shuffled)
                        orders.append(("random", None, shuffled))
                    for order, weight, candidates in orders:
                        seconds = baseline.seconds + localise_s + rank_s
                        tries, fixed = 0, None
                        for candidate in [] if args.ranks_only else candidates[:args.max_tries]:
                            tries += 1
                            passed, took = outcome(candidate)
                            seconds += took
                            if passed:
                                fixed = candidate
                                break
                        exact = next((k + 1 for k, c in enumerate(candidates)
                                      if c.path == row["path"] and c.text == row["original"]), None)
                        record = {"bug": kept, "path": row["path"], "sstub": row["sstub"], "candidates_set": name,
                                  "order": order, "weight": weight,
                                  "fixed": None if args.ranks_only else fixed is not None, "exact_rank": exact,
                                  "tries": tries if fixed else None, "candidates": len(enumeration),
                                  "seconds": round(seconds, 2), "baseline_s": round(baseline.seconds, 2),
                                  "identical": bool(fixed and fixed.text == row["original"]),
                                  "within_reach": any(c.path == row["path"] and c.text == row["original"]
                                                      for c in enumeration),
                                  "localisation": localisation.method,
                                  "line_rank": bug_line_rank(localisation.suspects, row),
                                  "failing_tests": len(localisation.failing_tests), "localise_s": round(localise_s, 2),
                                  "rank_s": round(rank_s, 2)}
                        results.setdefault((name, order, weight), []).append(record)
                        if args.out:
                            with open(args.out, "a", encoding="utf-8") as f:
                                f.write(json.dumps(record) + "\n")
                        print(json.dumps(record), file=sys.stderr, flush=True)
                quick.__exit__(None, None, None)
                print(f"bug {kept}: {len(outcomes)} candidates run ({runs['quick']} quick runs, {runs['full']} "
                      f"runs of the whole command), {sum(t for _, t in outcomes.values()):.0f} s",
                      file=sys.stderr, flush=True)
        print(f"{kept} bugs that make a test fail (of {looked} injected rows looked at); max {args.max_tries} tries")
        report([r for records in results.values() for r in records])
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
