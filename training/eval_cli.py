"""Evaluate a checkpoint on held-out changes with the constrained decoder.

Reads a folder of parquet shards in the miner's schema (`patchcoder mine`, `patchcoder synth`, or a
split made by `patchcoder split`; several, with --data repeated, as one set), windows each change
exactly as training does, decodes an edit script greedily under the edit grammar, and reports
exact-match patch rate, patch-applies rate, well-formed rate, localisation accuracy (first edited line
correct) and seconds per example — overall, per language and per single-statement bug class.
"""

from __future__ import annotations

import argparse
import json
import sys

from patchcoder.checkpoint import MAX_TOKENS
from patchcoder.ground.argtypes import bounded_int, positive_int, weight


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", required=True, metavar="DIR",
                   help="an exported model folder (model.safetensors, config.json, tokenizer.json)")
    p.add_argument("--data", required=True, action="append", metavar="DIR_OR_SHARDS",
                   help="mined or synthetic parquet shards; repeated, the sets are evaluated as one, and calibrated "
                        "together: e.g. synthetic bugs beside real fixes, whose already-fixed windows are real code "
                        "of the kind suggest reads")
    p.add_argument("--clean-code", action="append", metavar="PATH",
                   help="files or folders of code taken as correct (e.g. a repository's sources at a release); "
                        "repeated, all of them: every window of every file is read as suggest reads the file, a "
                        "change proposed there is a false alarm, reported apart; with --calibrate RATE --by-edit "
                        "the thresholds are then raised until at most RATE of these files get a suggestion; "
                        "implies --false-alarms")
    p.add_argument("--limit", type=positive_int, metavar="N",
                   help="evaluate at most N examples (in all: with --data repeated, the sets are read in order)")
    p.add_argument("--batch-size", type=positive_int, default=16, metavar="N", help="examples decoded together (default: %(default)s)")
    p.add_argument("--max-new-tokens", type=bounded_int(1, MAX_TOKENS), metavar="N",
                   help="token budget of one edit script (default: the product's, as suggest decodes)")
    p.add_argument("--max-tokens", type=bounded_int(1, MAX_TOKENS), metavar="N",
                   help="example budget (default: the sequence length the checkpoint was trained with)")
    p.add_argument("--mode", choices=("generate", "rank", "both"),
                   help="free generation under the edit grammar, candidate ranking, or both (default: the "
                        "model's own, as suggest decodes)")
    p.add_argument("--beam", type=positive_int, default=1, metavar="N",
                   help="beam width of free generation (default: %(default)s, greedy)")
    p.add_argument("--keep-heads", type=positive_int, metavar="K",
                   help="ranking reads in full only the candidates whose edit (operation, first line) is among "
                        "the window's K most probable (default: the model's decoding.json, else all)")
    p.add_argument("--precision", choices=("auto", "bf16", "fp32"),
                   help="decode in bf16 autocast or fp32 (default: the model's decoding.json, else auto: bf16 where "
                        "the hardware runs it natively)")
    p.add_argument("--false-alarms", action="store_true",
                   help="also decode every window as it is after its real change and report how often the "
                        "model would still change it")
    p.add_argument("--calibrate", type=_rate, metavar="RATE",
                   help="(with false alarms) find the lowest score threshold that keeps the false-alarm rate at "
                        "most RATE, e.g. 0.1, and report what it keeps")
    p.add_argument("--by-edit", action="store_true",
                   help="with --calibrate, also find a threshold per kind of edit (the single-statement classes, "
                        "inserted lines, deleted lines, other) "
                        "that together show the most exact fixes with at most RATE false alarms on files they were "
                        "not fitted on (the fitting budget chosen by fitting on half of the files, measuring on the other)")
    p.add_argument("--save-min-score", action="store_true",
                   help="with --calibrate, write that threshold (and with --by-edit those per kind of edit) into the "
                        "checkpoint's decoding.json, where suggest and the hook take their default --min-score from")
    p.add_argument("--undo-weight", type=weight, metavar="W",
                   help="rank mode: score the best candidate less W times the mean log p of undoing it, read in "
                        "the window it makes (default: the model's decoding.json, else 0)")
    p.add_argument("--no-message", action="store_true",
                   help="show the buggy windows without their commit message, as suggest and the hook decode "
                        "without --intent (a synthetic bug's templated message names its class)")
    p.add_argument("--json", action="store_true", help="print the metrics as one JSON object on stdout")
    p.add_argument("--examples", metavar="FILE",
                   help="also write one JSON line per example to FILE: what the model decoded (tokens, score) "
                        "and its metrics, to compare two runs example by example")
    p.add_argument("--no-progress", action="store_true", help="do not show the progress bar")


def _rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"a rate in [0, 1) is needed, got {text!r}")
    return value


def run(args: argparse.Namespace) -> int:
    from rich.table import Table

    from patchcoder.ground.console import stderr
    from patchcoder.ground.errors import PatchcoderError
    from patchcoder.training.evaluate import METRICS, calibrate, calibrate_by_edit, evaluate

    for flag, given in (("--save-min-score", args.save_min_score), ("--by-edit", args.by_edit)):
        if given and args.calibrate is None:
            raise PatchcoderError(f"{flag} needs --calibrate RATE")
    examples: list | None = [] if args.examples else None
    data = args.data if len(args.data) > 1 else args.data[0]
    report = evaluate(args.checkpoint, data, limit=args.limit, batch_size=args.batch_size,
                      max_new_tokens=args.max_new_tokens, max_tokens=args.max_tokens, mode=args.mode,
                      beam=args.beam, false_alarms=args.false_alarms or args.calibrate is not None,
                      show_progress=not args.no_progress, keep_heads=args.keep_heads, precision=args.precision,
                      examples=examples, messages=not args.no_message, undo_weight=args.undo_weight,
                      clean_code=args.clean_code)
    if examples is not None:
        with open(args.examples, "w") as f:
            f.writelines(json.dumps(e) + "\n" for e in examples)
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
    if "clean_code" in report:
        c = report["clean_code"]
        line = (f"clean code: {c['files']} files, {c['windows']} windows, {c['false_alarms']} with a change "
                f"proposed without a threshold ({c['false_alarm_rate']:.1%}, in {c['files_alarmed']} files)")
        if "at_thresholds" in c:
            t = c["at_thresholds"]
            line += (f", {t['false_alarms']} at the model's thresholds (suggest would show {t['files_alarmed']} "
                     f"suggestions: one per file)")
        stderr().print(line + (f"; {len(c['skipped'])} files skipped, e.g. {c['skipped'][0]}" if c["skipped"] else ""))
    if "at_thresholds" in report:
        t = report["at_thresholds"]
        before = " before this calibration" if args.calibrate is not None else ""
        stderr().print(f"at the model's thresholds (decoding.json{before}), as suggest shows: {t['false_alarms']} of "
                       f"{report['false_alarm_windows']} clean windows alarmed ({t['false_alarm_rate']:.1%}); "
                       f"{t['shown']} changes shown for the {report['examples']} buggy windows, {t['exact_shown']} "
                       f"of them the exact fix")
    if args.calibrate is not None:
        report["calibration"] = c = calibrate(report, args.calibrate)
        shown = "no threshold is needed" if c["min_score"] is None else f"min score {c['min_score']:.4f}"
        stderr().print(f"calibration: {shown}: false alarms {c['false_alarm_rate']:.1%} (at most "
                       f"{args.calibrate:.1%}), exact fixes {c['exact_match']:.1%} of {report['examples']} "
                       f"(without a threshold {c['exact_match_without']:.1%}), suggestions on "
                       f"{c['suggested']:.1%} of the buggy windows")
        if args.by_edit:
            report["calibration"] = c = calibrate_by_edit(report, args.calibrate, held_out=True)
            if c["min_score_by_edit"]:
                stderr().print(_by_edit_table(c))
            h = c["held_out"]
            stderr().print(f"calibration per kind of edit, fitted at {c['fit_rate']:.1%} (fitted on one half of the "
                           f"files and applied to the other: {h['false_alarms']} of {h['clean']} clean windows "
                           f"alarmed, {h['exact']} exact fixes shown): false alarms {c['false_alarm_rate']:.1%}, "
                           f"exact fixes {c['exact_match']:.1%}, suggestions on {c['suggested']:.1%} of the buggy "
                           f"windows; other kinds keep the one threshold, fitted at {c['fit_rate']:.1%} too")
            if "clean_code" in c:
                q = c["clean_code"]
                held = (f" (fitted on one half of its files and applied to the other: {q['held_out']['files_alarmed']})"
                        if "held_out" in q else "")
                stderr().print(f"the clean code's files with a suggestion: {q['files_alarmed_before']} → "
                               f"{q['files_alarmed']} of {q['files']}, fitted at {q['fit_rate']:.1%}{held} (at most "
                               f"{q['allowed']} allowed): thresholds raised where that costs the fewest exact fixes")
            if h["false_alarms"] > h["allowed"]:
                stderr().print(f"warning: even fitted at 0%, the thresholds alarm {h['false_alarms']} clean windows "
                               f"of files they were not fitted on, more than {args.calibrate:.1%} allows "
                               f"({h['allowed']}); the evaluation set may be too small to calibrate per kind of edit")
        if args.save_min_score:
            from patchcoder.checkpoint import save_min_score

            clean = f" + clean code {' + '.join(args.clean_code)}" if args.clean_code else ""
            why = (f"patchcoder eval --calibrate {args.calibrate}{' --by-edit' if args.by_edit else ''} on "
                   f"{' + '.join(args.data)}{clean} "
                   f"({report['examples']} examples, mode {report['mode']}, keep_heads {report['keep_heads']}, precision "
                   f"{report['precision']}, undo_weight {report['undo_weight']}"
                   f"{', no message' if not report['messages'] else ''})")
            written = save_min_score(args.checkpoint, c["min_score"], why, mode=report["mode"],
                                     keep_heads=report["keep_heads"], undo_weight=report["undo_weight"],
                                     by_edit=c.get("min_score_by_edit"))
            tables = " and min_score_by_edit" if c.get("min_score_by_edit") else ""
            stderr().print(f"wrote min_score{tables} into {written}")
    if args.json:
        json.dump(report, sys.stdout)
        sys.stdout.write("\n")
    return 0


def _by_edit_table(calibration: dict):
    """The thresholds per kind of edit, highest first."""
    from rich.table import Table

    table = Table(title="threshold per kind of edit")
    table.add_column("kind of edit")
    table.add_column("min score", justify="right")
    for kind, threshold in sorted(calibration["min_score_by_edit"].items(), key=lambda kv: -kv[1]):
        table.add_row(kind.replace("_", " "), f"{threshold:.4f}")
    return table
