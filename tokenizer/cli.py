"""Turn mined commit pairs into token shards for training, or train the vocabulary.

  patchcoder tokenize --data MINED_DIR --out DIR [--vocab FILE] [--max-tokens N] [--drop-message F]
      builds examples `<|msg|> … <|file|> … <|code|> marked old window <|edit|> script <|eos|>` from
      every parquet shard under MINED_DIR (made by `patchcoder mine`) and writes memory-mappable token
      arrays, a loss mask and example offsets under DIR/shards, with DIR/manifest.json (resumable).
  patchcoder tokenize train-vocab (--files DIR... | --data MINED_DIR) --out FILE [--vocab-size N]
      trains the byte-level BPE on tree-sitter pre-tokens and writes one JSON vocabulary file.
  patchcoder tokenize encode FILE [--vocab FILE]
      shows how a file is tokenized (tokens separated by '|'), and its bytes per token.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from patchcoder.ground.argtypes import fraction, integer, location, positive_int
from patchcoder.ground.errors import UsageError
from patchcoder.ground.storage import Location


def _megabytes(text: str) -> int:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a size in MB, got {text!r}") from None
    if not (value < 1e12 and value * 1_000_000 >= 1):  # at least a byte; also refuses nan and inf
        raise argparse.ArgumentTypeError(f"expected a positive size in MB, got {text!r}")
    return int(value * 1_000_000)


def add_example_arguments(p: argparse.ArgumentParser) -> None:
    """The options of how mined rows become examples (ExampleConfig; `example_config` reads them), and
    of the sharded run: --vocab, --jobs, --ray, --resume, --json, --no-progress."""
    from patchcoder.mining.pool import add_ray_option
    from patchcoder.tokenizer.examples import ExampleConfig

    d = ExampleConfig()
    p.add_argument("--vocab", metavar="FILE", help="vocabulary JSON (default: the one shipped with patchcoder)")
    p.add_argument("--max-tokens", type=positive_int, default=d.max_tokens, metavar="N",
                   help="token budget of one example; the window grows around the change up to it (default: %(default)s)")
    p.add_argument("--drop-message", type=fraction, default=d.drop_message, metavar="F",
                   help="fraction of examples without their commit message (default: %(default)s)")
    p.add_argument("--max-message-tokens", type=positive_int, default=d.max_message_tokens, metavar="N",
                   help="cut messages to N tokens (default: %(default)s)")
    p.add_argument("--no-change", type=fraction, default=d.no_change, metavar="F",
                   help="fraction of changed rows that also give a 'no change' example: a window of the new text, "
                        "no message, the empty script as the answer (default: %(default)s)")
    p.add_argument("--no-change-at-change", type=fraction, default=d.no_change_at_change, metavar="F",
                   help="of the 'no change' windows, the fraction placed where the change was; the rest anywhere "
                        "in the new text (default: %(default)s)")
    p.add_argument("--seed", type=integer, default=d.seed,
                   help="seed of the message-dropping and no-change choices (default: %(default)s)")
    p.add_argument("--jobs", type=positive_int, default=os.cpu_count() or 1, metavar="N",
                   help="worker processes, one mined shard at a time each (default: %(default)s = cores)")
    add_ray_option(p)
    p.add_argument("--resume", action="store_true", help="continue an interrupted run in --out")
    p.add_argument("--json", action="store_true", help="print the summary as JSON on stdout")
    p.add_argument("--no-progress", action="store_true", help="do not show the progress bar")


def example_config(args: argparse.Namespace):
    """The ExampleConfig of the options `add_example_arguments` added."""
    from patchcoder.tokenizer.examples import ExampleConfig

    return ExampleConfig(max_tokens=args.max_tokens, drop_message=args.drop_message,
                         max_message_tokens=args.max_message_tokens, seed=args.seed,
                         no_change=args.no_change, no_change_at_change=args.no_change_at_change)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", type=location, metavar="MINED_DIR", help="output folder (or URL) of `patchcoder mine`: its shards/ are read")
    p.add_argument("--out", type=location, metavar="DIR", help="output folder for shards/ and manifest.json, or an fsspec URL such as s3://BUCKET/PREFIX "
                        "(docs/cluster.md)")
    add_example_arguments(p)

    sub = p.add_subparsers(dest="action", metavar="ACTION", parser_class=type(p))
    t = sub.add_parser("train-vocab", help="train the BPE vocabulary on source folders or mined shards",
                       description="Train the byte-level BPE on tree-sitter pre-tokens; writes one JSON file.")
    t.add_argument("--files", nargs="+", metavar="DIR", default=[],
                   help="folders (or files) of source code; files are recognised by extension")
    t.add_argument("--data", dest="train_data", metavar="MINED_DIR", help="mined shards: their distinct new file texts")
    t.add_argument("--out", dest="vocab_out", required=True, metavar="FILE", help="where to write the vocabulary JSON")
    t.add_argument("--vocab-size", type=positive_int, default=8192, metavar="N",
                   help="ids in all, special tokens included (default: %(default)s; see docs/benchmarks.md)")
    t.add_argument("--max-mb", type=_megabytes, metavar="MB", help="read at most this much from each source")
    t.add_argument("--exclude", action="append", default=[], metavar="NAME",
                   help="skip paths with a folder of this name below a --files folder (repeatable), e.g. site-packages")
    t.add_argument("--name", default=None, help="name recorded in the file (default: the file's stem)")
    t.add_argument("--no-progress", action="store_true", help="do not show the progress bar")
    t.add_argument("--jobs", dest="train_jobs", type=positive_int, default=os.cpu_count() or 1, metavar="N",
                   help="lexing processes (default: %(default)s)")
    e = sub.add_parser("encode", help="show the tokens of a file", description="Show how a file is tokenized.")
    e.add_argument("file", metavar="FILE")
    e.add_argument("--vocab", dest="encode_vocab", metavar="FILE", help="vocabulary JSON (default: shipped)")


def run(args: argparse.Namespace) -> int:
    if args.action == "train-vocab":
        return _train_vocab(args)
    if args.action == "encode":
        return _encode(args)
    if not args.data or not args.out:
        raise UsageError("pass --data MINED_DIR and --out DIR (or an ACTION: train-vocab, encode)")
    from patchcoder.ground.console import print_summary
    from patchcoder.tokenizer.shards import tokenize_dataset

    summary = tokenize_dataset(args.data, args.out, vocab=args.vocab, config=example_config(args), jobs=args.jobs,
                               resume=args.resume, show_progress=not args.no_progress, ray=args.ray)
    print_summary(f"patchcoder tokenize → {Location(args.out)}", summary.table_rows())
    if args.json:
        json.dump(summary.as_dict(), sys.stdout, indent=1)
        sys.stdout.write("\n")
    return 0


def _train_vocab(args: argparse.Namespace) -> int:
    import itertools
    import time

    from patchcoder.ground.console import stderr
    from patchcoder.tokenizer.corpus import bpe_inputs, mined_texts, source_files
    from patchcoder.tokenizer.vocab import train

    if not args.files and not args.train_data:
        raise UsageError("pass --files DIR... and/or --data MINED_DIR")
    for folder in args.files:
        if not Path(folder).exists():
            raise UsageError(f"{folder} does not exist")
    if args.train_data and not Path(args.train_data).is_dir():
        raise UsageError(f"mined data folder {args.train_data} does not exist")
    out = Path(args.vocab_out)
    if out.exists():
        raise UsageError(f"{out} already exists; a vocabulary is never overwritten: remove it or choose another --out")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot write {out}: {exc.strerror or exc}") from None
    sources = [source_files(folder, args.max_mb, args.exclude) for folder in args.files]
    if args.train_data:
        sources.append(mined_texts(args.train_data, args.max_mb))
    stats = {"files": 0, "bytes": 0}

    def counted(items):
        for item in items:
            stats["files"] += 1
            yield item

    started = time.perf_counter()
    inputs = bpe_inputs(counted(itertools.chain.from_iterable(sources)), jobs=args.train_jobs)

    def measured(strings):
        for s in strings:
            stats["bytes"] += len(s) - s.count("\ue000")
            yield s

    command = " ".join([
        "patchcoder tokenize train-vocab", *(["--files", *args.files] if args.files else []),
        *(["--data", args.train_data] if args.train_data else []),
        *(f"--exclude {x}" for x in args.exclude), *([f"--max-mb {args.max_mb / 1e6:g}"] if args.max_mb else []),
        f"--vocab-size {args.vocab_size}", f"--out {args.vocab_out}",
    ])
    name = args.name or out.stem
    tok = train(measured(inputs), args.vocab_size, show_progress=not args.no_progress,
                meta={"name": name, "trained_by": command})
    named = [*args.files, *([args.train_data] if args.train_data else [])]
    if not stats["files"]:
        raise UsageError(f"no code files under {', '.join(named)}; nothing written")
    tok.meta["trained_on"] = {"files": stats["files"], "bytes": stats["bytes"], "sources": named}
    tok.save(out)
    stderr().print(f"vocabulary {name}: {tok.vocab_size} ids ({tok.bpe_size} BPE + "
                   f"{tok.vocab_size - tok.bpe_size} special) from {stats['files']} files, "
                   f"{stats['bytes'] / 1e6:.1f} MB, in {time.perf_counter() - started:.0f} s → {out}")
    return 0


def _encode(args: argparse.Namespace) -> int:
    from patchcoder.ground.languages import language_of
    from patchcoder.tokenizer.vocab import CodeTokenizer

    path = Path(args.file)
    try:
        text = path.read_bytes().decode("utf-8", "surrogateescape")
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None
    tok = CodeTokenizer.load(args.encode_vocab) if args.encode_vocab else CodeTokenizer.default()
    ids = tok.encode(text, language_of(path.as_posix()))
    sys.stdout.write("|".join(tok.decode([i], errors="replace") for i in ids))
    sys.stdout.write("\n")
    n_bytes = len(text.encode("utf-8", "surrogateescape"))
    print(f"{len(ids)} tokens, {n_bytes} bytes, {n_bytes / max(1, len(ids)):.2f} bytes/token", file=sys.stderr)
    return 0
