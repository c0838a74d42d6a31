"""Synthetic-bug generation cost: where the time of `patchcoder synth` goes, and what the rewrite checker saves.

    python benchmarks/synth.py [--files 150] [--per-file 4] [--repeats 3] [--seed 0]
    python benchmarks/synth.py --long FILE [--repeats 3]   # every rewrite of one (long) file, both checkers

On a sample of standard-library modules (the same files in every round, rounds interleaved so that machine
noise hits every measurement alike), per round:
- walk: parse + collect every site of every file (`rewrites.analyse`, what `enumerate_rewrites` costs);
- inject: `inject_bugs(code, rng, per_file)` — the walk plus drawing and checking `per_file` bugs per file,
  each check (`Checker`, session 19) a tree-sitter parse and a compile of the changed top-level statement;
- whole-file check: the same bugs checked the simple way (fresh tree-sitter parse + compile of the whole
  file), the baseline;
- incremental check: the checker before session 19 — tree-sitter's incremental reparse of the whole file
  from the original's tree, and a compile of the changed top-level statement;
- statement check: today's `Checker` (the walk it needs is measured apart and subtracted, for both checkers);
- rows: `file_examples` (read, filters, parse check, inject, pygit2 diff, row dicts) — one process's share of
  a `patchcoder synth` run.
Prints the medians (CPU seconds of this process) and the ratios of the three checks.
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
    parser.add_argument("--long", metavar="FILE", help="instead: check every rewrite of FILE (what ranking a long "
                        "file asks) with the incremental checker and today's, rounds interleaved")
    args = parser.parse_args()
    if args.long:
        return _long(Path(args.long), args.repeats)

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
            top = [(c.start_byte, c.end_byte) for c in checker.tree.root_node.children]  # as the old one kept
            for bug in found:
                _incremental(checker, top, bug)

    def statement_check() -> None:
        for code, found in zip(codes, bugs, strict=True):  # includes the walk, subtracted below
            checker = rewrites.analyse(code, "python").checker
            for bug in found:
                checker.parses(bug)

    def rows() -> None:
        for file in files:
            file_examples(file, config)

    steps = (("walk", walk), ("inject", inject), ("whole_file_check", whole_file_check),
             ("incremental_check", incremental_check), ("statement_check", statement_check), ("rows", rows))
    runs: dict[str, list[float]] = {name: [] for name, _ in steps}
    for _ in range(args.repeats):
        for name, fn in steps:
            start = time.process_time()
            fn()
            runs[name].append(time.process_time() - start)
    median = {name: statistics.median(values) for name, values in runs.items()}
    check_incremental = max(median["incremental_check"] - median["walk"], 1e-9)
    check_statement = max(median["statement_check"] - median["walk"], 1e-9)

    print(f"{len(codes)} stdlib files, {total_bytes / 1e6:.1f} MB, {n_bugs} bugs ({args.per_file} per file), "
          f"{args.repeats} rounds, CPU seconds (median)")
    print(f"  walk (parse + every site)          {median['walk']:7.2f} s  {total_bytes / 1e6 / median['walk']:6.2f} MB/s")
    print(f"  inject_bugs                        {median['inject']:7.2f} s  {n_bugs / median['inject']:6.0f} bugs/s")
    print(f"  check, whole file (parse+compile)  {median['whole_file_check']:7.2f} s  "
          f"{1e3 * median['whole_file_check'] / n_bugs:6.2f} ms/bug")
    print(f"  check, incremental                 {check_incremental:7.2f} s  {1e3 * check_incremental / n_bugs:6.2f} ms/bug")
    print(f"  check, statement (today's)         {check_statement:7.2f} s  {1e3 * check_statement / n_bugs:6.2f} ms/bug")
    print(f"  rows (file_examples, whole path)   {median['rows']:7.2f} s  {n_bugs / median['rows']:6.0f} examples/s")
    print(f"ratio whole-file / incremental check: {median['whole_file_check'] / check_incremental:.1f}x; "
          f"whole-file / statement: {median['whole_file_check'] / check_statement:.1f}x; "
          f"incremental / statement: {check_incremental / check_statement:.1f}x")


def _long(path: Path, repeats: int) -> None:
    from patchcoder.tokenizer import rewrites

    code = path.read_text(encoding="utf-8")
    checker = rewrites.analyse(code, "python").checker
    top = [(c.start_byte, c.end_byte) for c in checker.tree.root_node.children]
    every = rewrites.enumerate_rewrites(code, "python", check=False)
    times: dict[str, list[float]] = {"incremental": [], "statement": []}
    verdicts = {}
    for _ in range(repeats):
        for name, check in (("incremental", lambda r: _incremental(checker, top, r)), ("statement", checker.parses)):
            start = time.process_time()
            verdicts[name] = [check(r) for r in every]
            times[name].append(time.process_time() - start)
    assert verdicts["incremental"] == verdicts["statement"]
    inc, st = (statistics.median(times[n]) for n in ("incremental", "statement"))
    print(f"{path.name}: {code.count(chr(10)):,} lines, {len(every):,} rewrites ({sum(verdicts['statement']):,} parse), "
          f"{repeats} rounds, CPU seconds (median): incremental {inc:.2f} s ({1e3 * inc / len(every):.2f} ms each), "
          f"statement {st:.2f} s ({1e3 * st / len(every):.2f} ms each); ratio {inc / st:.1f}x")


def _incremental(checker, top: list[tuple[int, int]], rewrite) -> bool:
    """The rewrite checker before session 19 (the baseline): tree-sitter reparses the whole rewritten file
    incrementally from the original's tree; Python compiles the top-level statement that holds the change."""
    import bisect

    from patchcoder.tokenizer.rewrites.check import compiles

    text = rewrite.text.encode()
    new = checker.source[:rewrite.start] + text + checker.source[rewrite.end:]
    tree = checker.tree.copy()
    new_end = rewrite.start + len(text)
    tree.edit(rewrite.start, rewrite.end, new_end, checker._point(rewrite.start), checker._point(rewrite.end),
              checker._point(new_end, text, rewrite.start))
    if checker.parser.parse(new, tree).root_node.has_error:
        return False
    chunk = new
    i = bisect.bisect_right(top, (rewrite.start, float("inf"))) - 1
    if i >= 0 and top[i][0] <= rewrite.start and rewrite.end <= top[i][1]:
        start, end = top[i]
        chunk = new[start:end + len(text) - (rewrite.end - rewrite.start)]
    return compiles(chunk)


if __name__ == "__main__":
    main()
