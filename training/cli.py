"""Train a looped patch model with Hugging Face Accelerate.

Runs the same code on one CPU process, on several processes (gloo) or on GPUs (NCCL/DDP):
    patchcoder train --preset tiny --data TOKENS --out runs/tiny
    accelerate launch --multi_gpu --num_processes 2 -m patchcoder.training --preset tiny --data TOKENS --out runs/x
Checkpoints are written every [run] checkpoint_every steps, at the end, and on SIGTERM/SIGINT;
`--resume RUN_DIR` continues with the same data order and the same losses; it refuses other settings than the
checkpoint's, except `optim.max_steps` and what is logged, evaluated and checkpointed. The final export
(RUN_DIR/final: model.safetensors, config.json, tokenizer.json) is what `patchcoder suggest` loads.
"""

from __future__ import annotations

import argparse
import json
import sys

from patchcoder.ground.argtypes import integer, positive_int
from patchcoder.ground.errors import UsageError


def add_arguments(p: argparse.ArgumentParser) -> None:
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--export", metavar="CHECKPOINT",
                        help="instead of training: export a checkpoint (a run folder's newest, or checkpoints/step-N) "
                             "to --out as model.safetensors, config.json and tokenizer.json")
    source.add_argument("--preset", choices=["tiny", "default"],
                        help="a shipped configuration: 'tiny' trains in minutes (tests, quick start), "
                             "'default' is the shipped model's")
    source.add_argument("--config", metavar="FILE", help="a TOML configuration (see training/presets/*.toml)")
    p.add_argument("--out", required=True, metavar="DIR", help="run folder: checkpoints, metrics, final export")
    p.add_argument("--data", action="append", metavar="DIR[:WEIGHT]",
                   help="token shards to train on (repeatable, with a mixture weight); replaces the config's")
    p.add_argument("--valid", metavar="DIR", help="token shards for periodic validation; replaces the config's")
    p.add_argument("--rank", action="append", metavar="DIR[:WEIGHT]",
                   help="candidate shards (`patchcoder candidates`) for the ranking loss (repeatable, with a mixture "
                        "weight); replaces the config's; set its weight with --set optim.rank_weight=W")
    p.add_argument("--rank-valid", metavar="DIR", help="candidate shards for validating the ranking; replaces the config's")
    p.add_argument("--tokenizer", metavar="FILE", help="the vocabulary the shards were made with (default: shipped)")
    p.add_argument("--max-steps", type=positive_int, metavar="N", help="optimizer steps in total (overrides the config)")
    p.add_argument("--resume", metavar="DIR", help="continue the run in DIR from its newest checkpoint, with the same settings (only --max-steps and "
                   "what is logged, evaluated and checkpointed may change)")
    p.add_argument("--init-from", metavar="DIR",
                   help="start a new stage from an exported model's weights (fresh optimizer and schedule)")
    p.add_argument("--seed", type=integer, metavar="N", help="overrides [run] seed")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override one setting, VALUE in TOML syntax (repeatable), e.g. --set model.loops=3 "
                        "--set optim.lr=1e-3")
    p.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    p.add_argument("--no-progress", action="store_true", help="do not show the progress bar")


def apply_override(config, item: str) -> None:
    """`SECTION.KEY=VALUE` (VALUE in TOML syntax) onto a TrainConfig."""
    import dataclasses

    from patchcoder.training.config import tomllib

    target, sep, raw = item.partition("=")
    section, dot, key = target.strip().partition(".")
    if not sep or not dot or section not in ("model", "data", "optim", "run"):
        raise UsageError(f"--set {item!r}: expected SECTION.KEY=VALUE with SECTION model, data, optim or run")
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()  # a bare word is a string
    if section == "model":
        config.model[key] = value
        return
    part = getattr(config, section)
    if key not in {f.name for f in dataclasses.fields(part)} or key in ("train", "rank"):
        raise UsageError(f"--set {item!r}: [{section}] has no setting {key!r}")
    setattr(part, key, value)


def build_config(args: argparse.Namespace):
    from patchcoder.training.config import DataSource, load_config, load_preset

    config = load_preset(args.preset) if args.preset else load_config(args.config)
    for option, key in (("data", "train"), ("rank", "rank")):
        if getattr(args, option):
            sources = []
            for item in getattr(args, option):
                path, _, weight = item.rpartition(":") if ":" in item else (item, "", "1")
                try:
                    sources.append(DataSource(path or item, float(weight)))
                except ValueError:
                    raise UsageError(f"--{option} {item!r}: the weight after ':' must be a number") from None
            setattr(config.data, key, sources)
    if args.valid:
        config.data.valid = args.valid
    if args.rank_valid:
        config.data.rank_valid = args.rank_valid
    if args.tokenizer:
        config.run.tokenizer = args.tokenizer
    if args.seed is not None:
        config.run.seed = args.seed
    if args.init_from:
        config.run.init_from = args.init_from
    for item in args.set:
        apply_override(config, item)
    return config


def run(args: argparse.Namespace) -> int:
    from patchcoder.ground.console import stderr
    from patchcoder.training.loop import export_checkpoint, train

    if args.export:
        stderr().print(f"exported {export_checkpoint(args.export, args.out)}")
        return 0

    config = build_config(args)
    result = train(config, args.out, resume=args.resume, max_steps=args.max_steps, show_progress=not args.no_progress)
    summary = {"steps": result.steps, "tokens": result.tokens, "train_loss": result.train_loss,
               "valid_loss": result.valid_loss, "seconds": round(result.seconds, 1),
               "final": str(result.final_dir) if result.final_dir else None, "interrupted": result.interrupted,
               "rank": result.rank, "weights_digest": result.weights_digest, "data_digest": result.data_digest,
               "rank_tokens": result.rank_tokens}
    if result.rank == 0:  # people read rank 0; every rank prints its JSON line (the digests prove DDP)
        if result.interrupted:
            stderr().print(f"stopped at step {result.steps}; checkpoint saved; continue with --resume {args.out}")
        else:
            stderr().print(f"trained {result.steps} steps, {result.tokens:,} tokens in {result.seconds:,.0f} s; "
                           f"model in {result.final_dir}")
    if args.json:
        json.dump(summary, sys.stdout)
        sys.stdout.write("\n")
    return 2 if result.interrupted else 0
