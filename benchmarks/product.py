"""The product's speed: `patchcoder suggest` on a 300-line file (cold and warm) and batch-repair
throughput at batch 1 vs 16 vs 64, in one run.

    python benchmarks/product.py [--checkpoint DIR] [--mode generate|rank|both] [--repeats 3]
    python benchmarks/product.py --scoring [--repeats 5]
    python benchmarks/product.py --phases [--repeats 3]

cold: a fresh `patchcoder suggest FILE --json` process (interpreter, imports, model load, decoding);
warm: `Repairer.repair` on the same file in this process after a first call. Batch throughput repairs
the same 64 real functions (from the standard library) at each batch size, interleaved per repeat.
--phases: where batch repair's time goes at batch 1 and 16 (prefill, head scores, reading, the rest).
--scoring: candidate ranking's scoring of every candidate of the 300-line file's windows, in the
precision suggest uses: each window's candidates read as a trie in one pass per loop (`tree_hidden`),
one row per candidate in one pass per loop, and token by token through the cached decoder, interleaved.
"""

from __future__ import annotations

import argparse
import ast
import inspect
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def three_hundred_lines() -> str:
    """A real stdlib module of about 300 lines (copy.py: 304) that parses, so candidate ranking has
    every rewrite of every line to score, as on a developer's file. (Until 2026-11-22 this was the
    first 300 lines of json/decoder.py, cut inside a docstring: it did not parse, no rewrite was
    enumerated, and rank mode only scored "no change".)"""
    import copy

    return Path(inspect.getsourcefile(copy)).read_text()


def functions(n: int) -> list[str]:
    import difflib
    import textwrap

    tree = ast.parse(Path(inspect.getsourcefile(difflib)).read_text())
    source = Path(inspect.getsourcefile(difflib)).read_text().splitlines(keepends=True)
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and 4 <= node.end_lineno - node.lineno <= 30:
            out.append(textwrap.dedent("".join(source[node.lineno - 1:node.end_lineno])))
    return (out * (n // max(1, len(out)) + 1))[:n]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cold-only", action="store_true", help="only the cold and warm suggest timings")
    parser.add_argument("--scoring", action="store_true", help="only: tries vs one row per candidate vs token by token")
    parser.add_argument("--phases", action="store_true",
                        help="only: where batch repair's time goes (model phases vs the rest) at batch 1 and 16")
    parser.add_argument("--mode", choices=("generate", "rank", "both"),
                        help="decoding mode (default: the Repairer's and suggest's default)")
    args = parser.parse_args()

    from patchcoder import Repairer

    code = three_hundred_lines()
    if args.scoring:
        return scoring(Repairer.load(args.checkpoint), code, args.repeats)
    if args.phases:
        return phases(Repairer.load(args.checkpoint), args.repeats)
    options = {"mode": args.mode} if args.mode else {}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "decoder.py"
        path.write_text(code)
        cmd = [sys.executable, "-m", "patchcoder", "suggest", str(path), "--json"]
        if args.checkpoint:
            cmd += ["--checkpoint", args.checkpoint]
        if args.mode:
            cmd += ["--mode", args.mode]
        cold = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            result = subprocess.run(cmd, capture_output=True, text=True)
            cold.append(time.perf_counter() - start)
            if result.returncode not in (0, 1):
                sys.exit(f"suggest failed: {result.stderr.strip()}")
    repairer = Repairer.load(args.checkpoint)
    item = {"code": code, "path": "decoder.py"}
    repairer.repair([item], **options)
    warm = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        repairer.repair([item], **options)
        warm.append(time.perf_counter() - start)
    print(f"suggest on a 300-line file: cold {statistics.median(cold):.2f} s (median of {args.repeats}), "
          f"warm {statistics.median(warm):.2f} s; target < 2 s cold")

    if args.cold_only:
        return
    items = [{"code": f, "path": "difflib.py"} for f in functions(64)]
    rates: dict[int, list[float]] = {1: [], 16: [], 64: []}
    for _ in range(args.repeats):
        for size in rates:
            start = time.perf_counter()
            repairer.repair(items, batch_size=size, show_progress=False, **options)
            rates[size].append(len(items) / (time.perf_counter() - start))
    med = {size: statistics.median(r) for size, r in rates.items()}
    print("| batch size | items/s (median) | vs batch 1 |")
    print("|---:|---:|---:|")
    for size, rate in med.items():
        print(f"| {size} | {rate:.2f} | {rate / med[1]:.2f}× |")
    print("target: ≥ 4× at batch 16 vs batch 1")


def phases(repairer, repeats: int) -> None:
    """Batch repair of the 64 functions at batch 1 and 16, interleaved, with the time of each model
    phase of candidate ranking (prefill, head scores, reading the candidates) summed; "the rest" is
    everything else (windows, rewrites, parse checks, scripts, patches)."""
    from patchcoder.decoding import CandidateScorer

    spent: dict[str, float] = {}

    def timed(name, function):
        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                spent[name] = spent.get(name, 0.0) + time.perf_counter() - start
        return wrapper

    CandidateScorer.__init__ = timed("prefill", CandidateScorer.__init__)
    CandidateScorer.head_scores = timed("head scores", CandidateScorer.head_scores)
    CandidateScorer.scores = timed("reading candidates", CandidateScorer.scores)
    items = [{"code": f, "path": "difflib.py"} for f in functions(64)]
    repairer.repair(items[:16], batch_size=16, show_progress=False)
    runs: dict[int, list[dict[str, float]]] = {1: [], 16: []}
    for _ in range(repeats):
        for size in runs:
            spent.clear()
            start = time.perf_counter()
            repairer.repair(items, batch_size=size, show_progress=False)
            total = time.perf_counter() - start
            runs[size].append({**spent, "the rest": total - sum(spent.values()), "total": total})
    names = ["prefill", "head scores", "reading candidates", "the rest", "total"]
    med = {size: {n: statistics.median(r[n] for r in rs) for n in names} for size, rs in runs.items()}
    print(f"batch repair of {len(items)} functions, ms per item, median of {repeats}:")
    print("| phase | batch 1 | batch 16 | batch 1 / batch 16 |")
    print("|---|---:|---:|---:|")
    for n in names:
        a, b = (1e3 * med[size][n] / len(items) for size in (1, 16))
        print(f"| {n} | {a:.1f} | {b:.1f} | {a / b:.2f}× |")


def scoring(repairer, code: str, repeats: int) -> None:
    import torch

    from patchcoder import ranking
    from patchcoder.decoding import autocast, score_candidates
    from patchcoder.ground.languages import language_of
    from patchcoder.windows import windows_for

    source = ranking.Source(code, language_of("decoder.py"))
    windows = windows_for(repairer.tokenizer, code, max_tokens=repairer.max_tokens, language=source.language,
                          path="decoder.py")
    found = ranking.rewrites(source, windows)
    prompts = [w.prompt for w in windows]
    candidates = [ranking.candidates(repairer.tokenizer, source, w, found) for w in windows]
    n = sum(map(len, candidates))
    ways = {"tries": {}, "one row per candidate": {"share_prefixes": False}, "token by token": {"stepwise": True}}
    times: dict[str, list[float]] = {name: [] for name in ways}
    results = {}
    with torch.no_grad(), autocast(repairer.model, repairer.precision):  # the precision suggest decodes in
        for _ in range(repeats):
            for name, options in ways.items():
                start = time.perf_counter()
                results[name] = score_candidates(repairer.model, prompts, candidates, **options)
                times[name].append(time.perf_counter() - start)
    med = {name: statistics.median(t) for name, t in times.items()}
    print(f"scoring {n} candidates of {len(windows)} windows (300-line file), median of {repeats}:")
    print("| scoring | s | vs tries | max score difference to tries |")
    print("|---|---:|---:|---:|")
    for name in ways:
        diff = max(abs(a - b) for x, y in zip(results["tries"], results[name], strict=True)
                   for a, b in zip(x, y, strict=True))
        print(f"| {name} | {med[name]:.3f} | {med[name] / med['tries']:.2f}× | {diff:.1e} |")


if __name__ == "__main__":
    main()
