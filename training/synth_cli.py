"""Make synthetic bug-fix pairs: inject one single-statement bug per example into clean source files.

Reads Python files (JavaScript/TypeScript with --languages) from each SOURCE, a directory or a file
(default: the installed standard library and site-packages), or the latest `new` text of each file of
mined parquet shards (a `patchcoder mine` or `patchcoder split` folder; those rows keep the mined
repository's name, so its synthetic bugs land in the same split as its real commits). Skips what must not feed training
(the repositories held out for evaluation: flask, requests, jinja, rich, tornado, scrapy, networkx, httpie,
starlette, aiohttp; benchmark collections, test suites, vendored copies, patchcoder itself, duplicates) and what cannot be used (too large, undecodable, unparsable). Writes (buggy → original) pairs in
the miner's schema to zstd parquet shards under --out, with manifest.json recording what is done. Rows name
their repository synth:stdlib/<package>, synth:site-packages/<package> or synth:<directory name>
(synth:<directory name>/<package> with --per-package), so a split
by repository keeps them apart. The classes are patchcoder.tokenizer.rewrites.KINDS; every buggy file still
parses (tree-sitter, and Python's compiler). Deterministic given --seed, for any --jobs.

Load the result with:  datasets.load_dataset("parquet", data_files="OUT/shards/*.parquet")
"""

from __future__ import annotations

import argparse
import os

from patchcoder.ground.argtypes import integer, location, positive_int
from patchcoder.ground.storage import Location


def add_arguments(p: argparse.ArgumentParser) -> None:
    from patchcoder.mining.pool import add_ray_option
    from patchcoder.training.synth import SynthConfig

    d = SynthConfig()
    p.add_argument("sources", nargs="*", metavar="SOURCE_DIR",
                   help="directories or files of source code, or folders of mined shards; 'stdlib' and "
                        "'site-packages' name the installed ones (default: both)")
    p.add_argument("--out", required=True, type=location, metavar="DIR", help="output folder for shards/ and manifest.json, or an fsspec URL such as s3://BUCKET/PREFIX "
                        "(docs/cluster.md)")
    p.add_argument("--seed", type=integer, default=d.seed, metavar="N",
                   help="seed of the bug generator (default: %(default)s)")
    p.add_argument("--per-file", type=positive_int, default=d.per_file, metavar="N",
                   help="examples (one bug each) per file (default: %(default)s)")
    p.add_argument("--max-files", type=positive_int, metavar="N",
                   help="use at most N files, sampled with the seed (default: all)")
    p.add_argument("--max-bytes", type=positive_int, default=d.max_bytes, metavar="N",
                   help="skip files larger than N bytes (default: %(default)s)")
    p.add_argument("--kinds", metavar="LIST",
                   help="comma-separated mutation classes to use (default: all; see tokenizer/rewrites/kinds.py)")
    p.add_argument("--mix", metavar="CLASS=FACTOR,...",
                   help="the class mix: factors on the draw weights of these mutation classes (e.g. "
                        "swapped_arguments=2,deleted_statement=0.5; 0 never draws a class; default: all 1)")
    p.add_argument("--messages", choices=("templated", "empty"), default=d.messages,
                   help="commit message of each pair (default: %(default)s, e.g. 'Fix wrong comparison operator')")
    p.add_argument("--languages", metavar="LIST", default=",".join(d.languages),
                   help="comma-separated languages of the files to use: python, javascript, typescript, tsx "
                        "(default: %(default)s)")
    p.add_argument("--include-tests", action="store_true", help="also use test suites (test/, tests/, test_*.py)")
    p.add_argument("--evaluation-set", action="store_true",
                   help="make held-out evaluation data: allow the projects held out for evaluation (flask, "
                        "requests, jinja, rich, tornado, scrapy, networkx, httpie, starlette, aiohttp), which are "
                        "refused otherwise; never train on the result")
    p.add_argument("--per-package", action="store_true",
                   help="name a repository per top-level package or module of each directory SOURCE "
                        "(synth:<directory name>/<package>, as for site-packages), e.g. for a folder filled by "
                        "`pip install --target`; default: one repository per directory")
    p.add_argument("--files-per-shard", type=positive_int, default=d.files_per_shard, metavar="N",
                   help="files per work unit and shard (default: %(default)s)")
    p.add_argument("--jobs", type=positive_int, default=os.cpu_count() or 1, metavar="N",
                   help="worker processes (default: %(default)s = cores)")
    add_ray_option(p)
    p.add_argument("--resume", action="store_true",
                   help="continue a killed or interrupted run in --out; the result equals an uninterrupted run")
    p.add_argument("--json", action="store_true", help="print the summary as JSON on stdout")
    p.add_argument("--no-progress", action="store_true", help="do not show the progress bar")


def parse_mix(text: str) -> tuple[tuple[str, float], ...]:
    """`--mix`'s "class=factor,..." as (class, factor) pairs in the order given; a malformed item, an unknown
    class or a factor below 0 is a UsageError (one line)."""
    from patchcoder.ground.errors import PatchcoderError, UsageError
    from patchcoder.tokenizer.rewrites import draw_weights

    pairs = []
    for item in (x.strip() for x in text.split(",")):
        if not item:
            continue
        kind, _, factor = item.partition("=")
        try:
            pairs.append((kind.strip(), float(factor)))
        except ValueError:  # no "=", no factor, or one that is not a number ("a=1=2" too)
            raise UsageError(f"--mix wants CLASS=FACTOR items, got {item!r}") from None
    if not pairs:
        raise UsageError("--mix needs at least one CLASS=FACTOR item")
    try:
        draw_weights(pairs)
    except PatchcoderError as error:
        raise UsageError(f"--mix: {error}") from None
    return tuple(pairs)


def run(args: argparse.Namespace) -> int:
    from patchcoder.ground.console import print_summary
    from patchcoder.ground.errors import UsageError
    from patchcoder.training.synth import SynthConfig, main_json, synthesize, user_sources

    kinds = None
    if args.kinds:
        kinds = tuple(k.strip() for k in args.kinds.split(",") if k.strip())
        if not kinds:
            raise UsageError("--kinds needs at least one mutation class")
    config = SynthConfig(seed=args.seed, per_file=args.per_file, max_files=args.max_files, max_bytes=args.max_bytes,
                         kinds=kinds, mix=None if args.mix is None else parse_mix(args.mix),
                         messages=args.messages, include_tests=args.include_tests,
                         evaluation_set=args.evaluation_set,
                         files_per_shard=args.files_per_shard,
                         languages=tuple(x.strip().lower() for x in args.languages.split(",") if x.strip()))
    sources = user_sources(args.sources, per_package=args.per_package) if args.sources else None
    summary = synthesize(sources, args.out, config, jobs=args.jobs, resume=args.resume,
                         show_progress=not args.no_progress, ray=args.ray)
    print_summary(f"patchcoder synth → {Location(args.out)}", summary.table_rows())
    if args.json:
        main_json(summary)
    return 0
