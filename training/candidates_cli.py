"""Make candidate shards: token-shard examples followed by the candidates ranking would weigh against them.

  patchcoder candidates --data MINED_DIR --out DIR [--negatives K] [example options as for tokenize]
      for every example that `patchcoder tokenize` would make from MINED_DIR (a `patchcoder synth` folder
      is the usual one: its windows hold one single-statement bug each), the window followed by its true
      script and up to K rival scripts: "no change" and the rewrite engine's rewrites of the window, as
      rank mode scores them. `--no-change F` adds windows of correct code whose true answer is "no change"
      and whose rivals are all rewrites. Train on them with `patchcoder train --rank DIR`
      (training.candidates explains the layout; resumable with --resume).
      `--scorer MODEL --hard H` puts MODEL's H best-scoring wrong candidates first among the rivals (hard
      rivals: rank mode's own mistakes, under MODEL's --keep-heads best edit heads).
"""

from __future__ import annotations

import argparse
import json
import sys

from patchcoder.ground.argtypes import bounded_int, folder_path, location, positive_int
from patchcoder.ground.storage import Location


def add_arguments(p: argparse.ArgumentParser) -> None:
    from patchcoder.tokenizer.cli import add_example_arguments

    p.add_argument("--data", required=True, type=location, metavar="MINED_DIR",
                   help="folder (or URL) of mined or synthetic parquet shards (e.g. the output of `patchcoder synth`)")
    p.add_argument("--out", required=True, type=location, metavar="DIR", help="output folder for shards/ and manifest.json, or an fsspec URL such as s3://BUCKET/PREFIX "
                        "(docs/cluster.md)")
    p.add_argument("--negatives", type=positive_int, default=15, metavar="K",
                   help="rival candidates per example at most (default: %(default)s)")
    p.add_argument("--scorer", type=folder_path, metavar="MODEL",
                   help="model folder that ranks each window for --hard (its tokenizer is the default --vocab)")
    p.add_argument("--hard", type=bounded_int(0, 1000), default=0, metavar="H",
                   help="of the rivals, the scorer's H best-scoring wrong candidates come first (default: %(default)s)")
    p.add_argument("--keep-heads", type=positive_int, default=3, metavar="N",
                   help="the scorer ranks the rewrites under its N best edit heads (default: %(default)s)")
    add_example_arguments(p)


def run(args: argparse.Namespace) -> int:
    from patchcoder.ground.console import print_summary
    from patchcoder.tokenizer.cli import example_config
    from patchcoder.training.candidates import make_candidate_shards

    summary = make_candidate_shards(args.data, args.out, config=example_config(args), negatives=args.negatives,
                                    seed=args.seed, vocab=args.vocab, jobs=args.jobs, resume=args.resume,
                                    show_progress=not args.no_progress, ray=args.ray, scorer=args.scorer,
                                    hard=args.hard, keep_heads=args.keep_heads)
    print_summary(f"patchcoder candidates → {Location(args.out)}", summary.table_rows())
    if args.json:
        json.dump(summary.as_dict(), sys.stdout, indent=1)
        sys.stdout.write("\n")
    return 0
