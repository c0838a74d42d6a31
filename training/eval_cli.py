"""Evaluate a checkpoint on held-out changes with the constrained decoder.

Reads a folder of parquet shards in the miner's schema (`patchcoder mine`, `patchcoder synth`, or a
split made by `patchcoder split`), windows each change exactly as training does, decodes an edit
script greedily under the edit grammar, and reports exact-match patch rate, patch-applies rate,
well-formed rate, localisation accuracy (first edited line correct) and seconds per example —
overall, per language and per single-statement bug class.
"""

from __future__ import annotations

import argparse
import json
import sys

from patchcoder.cli import positive_int


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", required=True, metavar="DIR",
                   help="an exported model folder (model.safetensors, config.json, tokenizer.json)")
    p.add_argument("--data", required=True, metavar="DIR_OR_SHARDS", help="mined or synthetic parquet shards")
    p.add_argument("--limit", type=positive_int, metavar="N", help="evaluate at most N examples")
    p.add_argument("--batch-size", type=positive_int, default=16, metavar="N", help="examples decoded together (default: %(default)s)")
    p.add_argument("--max-new-tokens", type=positive_int, default=256, metavar="N",
                   help="token budget of one edit script (default: %(default)s)")
    p.add_argument("--max-tokens", type=positive_int, metavar="N",
                   help="example budget (default: the sequence length the checkpoint was trained with)")
    p.add_argument("--mode", choices=("generate", "rank", "both"),
                   help="free generation under the edit grammar, candidate ranking, or both (default: the "
                        "model's own, as suggest decodes)")
    p.add_argument("--beam", type=positive_int, default=1, metavar="N",
                   help="beam width of free generation (default: %(default)s, greedy)")
    p.add_argument("--false-alarms", action="store_true",
                   help="also decode every window as it is after its real change and report how often the "
                        "model would still change it")
    p.add_argument("--json", action="store_true", help="print the metrics as one JSON object on stdout")
    p.add_argument("--no-progress", action="store_true", help="do not show the progress bar")


def run(args: argparse.Namespace) -> int:
    from rich.table import Table

    from patchcoder.console import stderr
    from patchcoder.training.evaluate import METRICS, evaluate

    report = evaluate(args.checkpoint, args.data, limit=args.limit, batch_size=args.batch_size,
                      max_new_tokens=args.max_new_tokens, max_tokens=args.max_tokens, mode=args.mode,
                      beam=args.beam, false_alarms=args.false_alarms, show_progress=not args.no_progress)
    alarms = f", false alarms {report['false_alarm_rate']:.1%}" if "false_alarm_rate" in report else ""
    table = Table(title=f"patchcoder eval ({report['mode']}, beam {args.beam}): {report['examples']} examples, "
                        f"{report['seconds_per_example'] * 1000:,.0f} ms each{alarms}")
    table.add_column("slice")
    table.add_column("n", justify="right")
    for metric in METRICS:
        table.add_column(metric.replace("_", " "), justify="right")
    table.add_row("all", str(report["examples"]), *(f"{report[m]:.1%}" for m in METRICS))
    for language, r in report["by_language"].items():
        table.add_row(f"[dim]{language}", str(r["examples"]), *(f"{r[m]:.1%}" for m in METRICS))
    for sstub, rate in report["by_sstub"].items():
        table.add_row(f"[dim]sstub {sstub}", str(report["sstub_examples"][sstub]), f"{rate:.1%}", "", "", "")
    stderr().print(table)
    if args.json:
        json.dump(report, sys.stdout)
        sys.stdout.write("\n")
    return 0
