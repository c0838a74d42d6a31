"""Split mined (or synthetic) pairs into train / valid / test by repository.

A repository lives in exactly one split, and an identical change (same old → new blobs) found in
several splits is kept only in the most held-out one (test, then valid). Writes
OUT/{train,valid,test}/shards/*.parquet (the miner's schema; tokenize each split separately) and
OUT/split.json (which repository went where, and what was dropped).
"""

from __future__ import annotations

import argparse
import json
import sys

from patchcoder.ground.argtypes import fraction, integer
from patchcoder.ground.errors import UsageError


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("data", nargs="+", metavar="MINED_DIR", help="output folders of `patchcoder mine` or `patchcoder synth`")
    p.add_argument("--out", required=True, metavar="DIR", help="folder for train/, valid/, test/ and split.json")
    p.add_argument("--valid", type=fraction, default=0.05, metavar="F", help="share of rows for validation (default: %(default)s)")
    p.add_argument("--test", type=fraction, default=0.05, metavar="F", help="share of rows for test (default: %(default)s)")
    p.add_argument("--seed", type=integer, default=0, help="orders the repositories before they are poured into splits")
    p.add_argument("--test-repos", metavar="NAMES", help="comma-separated repositories pinned to test")
    p.add_argument("--valid-repos", metavar="NAMES", help="comma-separated repositories pinned to valid")
    p.add_argument("--train-repos", metavar="NAMES", help="comma-separated repositories pinned to train")
    p.add_argument("--json", action="store_true", help="print the summary as JSON on stdout")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from patchcoder.ground.console import stderr
    from patchcoder.mining.pool import stop_on_sigterm
    from patchcoder.training.split import split_by_repository

    if args.valid + args.test >= 1:
        raise UsageError("--valid and --test leave nothing for training")
    pinned = {}
    for split in ("test", "valid", "train"):
        for name in filter(None, (getattr(args, f"{split}_repos") or "").split(",")):
            if name.strip() in pinned:
                raise UsageError(f"repository {name.strip()!r} is pinned to two splits")
            pinned[name.strip()] = split
    with stop_on_sigterm():  # SIGTERM says so in one line, as Ctrl-C does; nothing half-written is left in --out
        summary = split_by_repository(args.data, args.out, valid=args.valid, test=args.test, seed=args.seed,
                                      pinned=pinned, show_progress=not args.no_progress)
    for split in ("train", "valid", "test"):
        stderr().print(f"{split:5s}: {summary['rows'][split]:,} rows from {len(summary['repositories'][split])} "
                       f"repositories")
    if args.json:
        json.dump(summary, sys.stdout, indent=1)
        sys.stdout.write("\n")
    return 0
