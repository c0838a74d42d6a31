"""Synthetic-bug generation cost: where the time of `patchcoder synth` goes, and what the incremental check saves.

    python benchmarks/synth.py [--files 150] [--per-file 4] [--repeats 3] [--seed 0]

On a sample of standard-library modules (the same files in every round, rounds interleaved so that machine
noise hits every measurement alike), per round:
- walk: parse + collect every site of every file (`rewrites.analyse`, what `enumerate_rewrites` costs);
- inject: `inject_bugs(code, rng, per_file)` — the walk plus drawing and checking `per_file` bugs per file,
  each check an incremental tree-sitter reparse and a compile of the changed top-level statement;
- whole-file check: the same bugs checked the simple way (fresh tree-sitter parse + compile of the whole
  file), the baseline the incremental check replaces;
- rows: `file_examples` (read, filters, parse check, inject, pygit2 diff, row dicts) — one process's share of
  a `patchcoder synth` run.
Prints the medians (CPU seconds of this process) and the ratio whole-file / incremental check.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sysconfig
import time
from pathlib import Path


def main() -> None:
    from patchcoder.tokenizer import rewrites
    from patchcoder.training.synth import SourceFile, SynthConfig, file_examples

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=150)
    parser.add_argument("--per-file", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    stdlib = Path(sysconfig.get_paths()["stdlib"])
    candidates = sorted(p for p in stdlib.glob("*.py") if p.stat().st_size <= 200_000)
    paths = random.Random(args.seed).sample(candidates, min(args.files, len(candidates)))
    codes = [p.read_text(encoding="utf-8", errors="replace") for p in paths]
    codes = [c for c in codes if rewrites.parses(c)]
    total_bytes = sum(len(c.encode()) for c in codes)
    bugs = [rewrites.inject_bugs(c, random.Random(i), args.per_file) for i, c in enumerate(codes)]
    n_bugs = sum(len(b) for b in bugs)
    config = SynthConfig(seed=args.seed, per_file=args.per_file)
    files = [SourceFile("synth:bench", p.name, str(p)) for p in paths]

    def walk() -> None:
        for code in codes:
            rewrites.analyse(code, "python")

    def inject() -> None:
        for i, code in enumerate(codes):
            rewrites.inject_bugs(code, random.Random(i), args.per_file)

    def whole_file_check() -> None:
        for found in bugs:
            for bug in found:
                rewrites.parses(bug.code)

    def incremental_check() -> None:
        for code, found in zip(codes, bugs, strict=True):  # includes the walk, subtracted below
            checker = rewrites.analyse(code, "python").checker
            for bug in found:
                checker.parses(bug)

    def rows() -> None:
        for file in files:
            file_examples(file, config)

    runs: dict[str, list[float]] = {name: [] for name in
                                     ("walk", "inject", "whole_file_check", "incremental_check", "rows")}
    for _ in range(args.repeats):
        for name, fn in (("walk", walk), ("inject", inject), ("whole_file_check", whole_file_check),
                         ("incremental_check", incremental_check), ("rows", rows)):
            start = time.process_time()
            fn()
            runs[name].append(time.process_time() - start)
    median = {name: statistics.median(values) for name, values in runs.items()}
    check_incremental = max(median["incremental_check"] - median["walk"], 1e-9)

    print(f"{len(codes)} stdlib files, {total_bytes / 1e6:.1f} MB, {n_bugs} bugs ({args.per_file} per file), "
          f"{args.repeats} rounds, CPU seconds (median)")
    print(f"  walk (parse + every site)          {median['walk']:7.2f} s  {total_bytes / 1e6 / median['walk']:6.2f} MB/s")
    print(f"  inject_bugs                        {median['inject']:7.2f} s  {n_bugs / median['inject']:6.0f} bugs/s")
    print(f"  check, whole file (parse+compile)  {median['whole_file_check']:7.2f} s  "
          f"{1e3 * median['whole_file_check'] / n_bugs:6.2f} ms/bug")
    print(f"  check, incremental                 {check_incremental:7.2f} s  {1e3 * check_incremental / n_bugs:6.2f} ms/bug")
    print(f"  rows (file_examples, whole path)   {median['rows']:7.2f} s  {n_bugs / median['rows']:6.0f} examples/s")
    print(f"ratio whole-file / incremental check: {median['whole_file_check'] / check_incremental:.1f}x")


if __name__ == "__main__":
    main()
