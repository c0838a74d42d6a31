"""The candidate ceiling: for how many bugs is the exact fix among the rewrite engine's candidates, and what
the candidates cost in number — the narrow set (the classes of the synthetic bugs, what `suggest` ranks)
beside the wide set (`wide=True`, what `patchcoder fix` and `Repairer.candidates` search).

    python benchmarks/ceiling.py DATA [DATA...] [--limit N] [--json]

DATA is a folder of parquet shards with `old` (buggy), `new` (fixed), `language` and `sstub` columns:
mined real fixes (training/recipe/realfixes.py) or `patchcoder synth --evaluation-set` output. For each
row, the rewrites of the lines the fix changes (rewrites touching them, whatever their class) are
enumerated on `old`, kept when they parse, and the fix is "within reach" when one of them gives `new`
exactly. Reported per set and per sstub class: the share within reach, narrow and wide; and the cost:
candidates per changed region and candidates per line over the whole files (what a window of W lines
holds is about W times that).
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import time
from pathlib import Path


def rows_of(folder: Path, limit: int | None) -> list[dict]:
    import pyarrow.parquet as pq

    rows: list[dict] = []
    for shard in sorted(folder.rglob("*.parquet")):
        table = pq.read_table(shard, columns=["old", "new", "language", "sstub"])
        rows.extend(table.to_pylist())
        if limit is not None and len(rows) >= limit:
            return rows[:limit]
    return rows


def changed_region(old: str, new: str) -> tuple[int, int]:
    """0-based [first, last) lines of `old` that differ from `new` (first == last: an insertion)."""
    from patchcoder.ground.sstub import common_affixes
    from patchcoder.tokenizer.edits import split_lines

    a, b = split_lines(old), split_lines(new)
    prefix, suffix = common_affixes(a, b)
    return prefix, len(a) - suffix


def measure(rows: list[dict]) -> dict:
    from patchcoder.tokenizer.rewrites import UnsupportedLanguage, enumerate_rewrites, rewrite_checker

    reach = {"narrow": collections.Counter(), "wide": collections.Counter()}
    region_candidates = {"narrow": 0, "wide": 0}
    file_candidates = {"narrow": 0, "wide": 0}
    seconds = {"narrow": 0.0, "wide": 0.0}
    examples = collections.Counter()
    lines = 0
    for row in rows:
        language = row.get("language") or "python"
        old, new = row["old"], row["new"]
        try:
            checker = rewrite_checker(old, language)
        except UnsupportedLanguage:
            continue
        if checker is None:
            continue  # the buggy side does not parse cleanly: no rewrite of it is enumerated
        first, last = changed_region(old, new)
        sstub = row.get("sstub") or "none"
        examples[sstub] += 1
        lines += old.count("\n") + 1
        for name, wide in (("narrow", False), ("wide", True)):
            started = time.perf_counter()
            found = enumerate_rewrites(old, language, lines=(first, max(last, first + 1)), wide=wide)
            found = [r for r in found if checker(r)]
            region_candidates[name] += len(found)
            file_candidates[name] += len(enumerate_rewrites(old, language, wide=wide))
            seconds[name] += time.perf_counter() - started
            if any(r.code == new for r in found):
                reach[name][sstub] += 1
    total = sum(examples.values())
    out = {"examples": total, "lines": lines}
    for name in ("narrow", "wide"):
        out[name] = {
            "within_reach": sum(reach[name].values()) / max(1, total),
            "fixes_within_reach": sum(reach[name].values()),
            "candidates_per_region": region_candidates[name] / max(1, total),
            "candidates_per_line": file_candidates[name] / max(1, lines),
            "seconds": round(seconds[name], 2),
            "by_sstub": {k: f"{reach[name][k]}/{n}" for k, n in sorted(examples.items(), key=lambda kv: -kv[1])},
        }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", nargs="+", type=Path)
    parser.add_argument("--limit", type=int, help="rows per set at most")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    report = {}
    for folder in args.data:
        report[str(folder)] = measure(rows_of(folder, args.limit))
    if args.json:
        json.dump(report, sys.stdout, indent=1)
        print()
        return 0
    for folder, r in report.items():
        print(f"## {folder}: {r['examples']} bugs, {r['lines']} lines")
        print("| | within reach | candidates per changed region | per line (whole files) | seconds |")
        print("|---|---|---|---|---|")
        for name in ("narrow", "wide"):
            m = r[name]
            print(f"| {name} | {m['within_reach']:.1%} ({m['fixes_within_reach']}) | "
                  f"{m['candidates_per_region']:.1f} | {m['candidates_per_line']:.2f} | {m['seconds']} |")
        print("\n| sstub class | narrow | wide |\n|---|---|---|")
        for k in r["narrow"]["by_sstub"]:
            print(f"| {k} | {r['narrow']['by_sstub'][k]} | {r['wide']['by_sstub'][k]} |")
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
