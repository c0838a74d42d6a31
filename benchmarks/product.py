"""The product's speed: `patchcoder suggest` on a 300-line file (cold and warm) and batch-repair
throughput at batch 1 vs 16 vs 64, in one run.

    python benchmarks/product.py [--checkpoint DIR] [--mode generate|rank|both] [--repeats 3]

cold: a fresh `patchcoder suggest FILE --json` process (interpreter, imports, model load, decoding);
warm: `Repairer.repair` on the same file in this process after a first call. Batch throughput repairs
the same 64 real functions (from the standard library) at each batch size, interleaved per repeat.
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
    """The first 300 lines of a real stdlib module (real code nobody here wrote)."""
    import json.decoder

    return "".join(Path(inspect.getsourcefile(json.decoder)).read_text().splitlines(keepends=True)[:300])


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
    parser.add_argument("--mode", choices=("generate", "rank", "both"),
                        help="decoding mode (default: the Repairer's and suggest's default)")
    args = parser.parse_args()

    from patchcoder import Repairer

    code = three_hundred_lines()
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


if __name__ == "__main__":
    main()
