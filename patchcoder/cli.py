"""The `patchcoder` command: one parser, one subcommand per part.

Each subcommand lives with its part in a module exposing `add_arguments(parser)` and
`run(args) -> int`; this file only wires them together and turns errors into exit codes.
Exit codes: 0 success (or nothing to report), 1 findings (e.g. suggestions shown), 2 usage or internal error,
130 interrupted (Ctrl-C), 143 terminated (SIGTERM).
"""

from __future__ import annotations

import argparse
import errno
import importlib
import os
import sys

from patchcoder import __version__
from patchcoder.ground.errors import PatchcoderError, Terminated

# (name, module, one-line help). Modules are imported only when their subcommand is built,
# and must not import heavy libraries (torch, datasets) at module level.
SUBCOMMANDS: list[tuple[str, str, str]] = [
    ("mine", "patchcoder.mining.cli", "extract (old file, new file, message) pairs from git history into parquet shards"),
    ("tokenize", "patchcoder.tokenizer.cli", "turn mined pairs into token shards (or train the vocabulary)"),
    ("synth", "patchcoder.training.synth_cli", "make synthetic bug-fix pairs by injecting bugs into clean source files"),
    ("candidates", "patchcoder.training.candidates_cli", "make candidate shards: windows with the rival scripts ranking weighs (for --rank training)"),
    ("split", "patchcoder.training.split_cli", "split mined pairs into train/valid/test by repository"),
    ("train", "patchcoder.training.cli", "train a looped patch model with Accelerate (presets tiny/default, resumable)"),
    ("suggest", "patchcoder.suggest_cli", "propose patches for your changes (or files) as diffs; --apply writes them"),
    ("fix", "patchcoder.fix_cli", "find a fix that makes your failing tests pass (model-ordered, checked in scratch copies)"),
    ("hook", "patchcoder.hook", "install, remove or run the git pre-commit hook (warn or strict)"),
    ("eval", "patchcoder.training.eval_cli", "measure a checkpoint on held-out changes (exact match, applies, localisation)"),
]


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error (the usage block is one `--help` away)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The full parser; with `only`, that subcommand's module alone is imported and built (the others
    are listed by name and help): a `suggest` run does not pay for importing the miner's modules."""
    parser = _Parser(
        prog="patchcoder",
        description="patchcoder learns how code changes from git history and proposes patches.",
        epilog="Exit codes: 0 success, 1 findings (e.g. suggestions shown), 2 usage or internal error, "
               "130 interrupted (Ctrl-C), 143 terminated (SIGTERM).",
    )
    parser.add_argument("--version", action="version", version=f"patchcoder {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, module_name, help_text in SUBCOMMANDS:
        if only is not None and name != only:
            sub.add_parser(name, help=help_text)
            continue
        module = importlib.import_module(module_name)
        p = sub.add_parser(
            name,
            help=help_text,
            description=(module.__doc__ or help_text).strip(),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def _command(argv: list[str]) -> str | None:
    """The subcommand named in `argv`: its first word that is not an option (no global option takes a value)."""
    return next((a for a in argv if not a.startswith("-")), None)


# OSErrors that say the machine cannot do what was asked (no space, a read-only file system, no permission, a
# quota): one line naming the file, not an internal error.
MACHINE_LIMITS = {errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EPERM, errno.EDQUOT}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    command = _command(argv)
    parser = build_parser(command if command in {name for name, _, _ in SUBCOMMANDS} else None)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args._run(args) or 0)
    except PatchcoderError as exc:
        print(f"patchcoder {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, Terminated) as exc:  # Ctrl-C or SIGTERM: 128 + the signal's number, as a shell says
        sigint = isinstance(exc, KeyboardInterrupt)
        resume = "; what is finished is kept: rerun with --resume to continue" if hasattr(args, "resume") else ""
        print(f"patchcoder {args.command}: {'interrupted' if sigint else 'terminated'}{resume}", file=sys.stderr)
        return 130 if sigint else 143
    except BrokenPipeError:  # the reader went away (`... | head`): stop quietly, as a shell tool does
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so the interpreter's last flush of stdout does not fail again
        return 141  # 128 + SIGPIPE
    except OSError as exc:  # the machine's limits (a full disk, a read-only folder) are not bugs of ours
        if exc.errno not in MACHINE_LIMITS or os.environ.get("PATCHCODER_DEBUG"):
            return _internal(args.command, exc)
        where = f": {exc.filename}" if exc.filename else ""
        resume = "; what is finished is kept: rerun with --resume to continue" if hasattr(args, "resume") else ""
        print(f"patchcoder {args.command}: error: {exc.strerror}{where}{resume}", file=sys.stderr)
        return 2
    except Exception as exc:  # an internal error still gets one line; the trace is opt-in
        return _internal(args.command, exc)


def _internal(command: str, exc: Exception) -> int:
    if os.environ.get("PATCHCODER_DEBUG"):
        raise exc
    print(f"patchcoder {command}: internal error: {type(exc).__name__}: {exc} (set PATCHCODER_DEBUG=1 for the "
          "traceback)", file=sys.stderr)
    return 2


# Commands a developer waits on: they leave without the interpreter's shutdown, which with torch
# loaded takes about 0.3 s (`python -c "import torch"`: 1.29 s; with os._exit: 0.95 s, measured).
QUICK_EXIT = {"suggest", "hook"}


def entry() -> None:
    """The console script and `python -m patchcoder` (through `patchcoder.__main__.main`, which first takes
    the current directory out of sys.path): `main`, then, for the commands in QUICK_EXIT, an
    immediate exit once the output is flushed (they write files atomically and hold nothing else open).
    Long jobs (mine, train, …) exit normally, so their libraries' exit handlers run.

    The QUICK_EXIT commands also let idle OpenMP threads spin only briefly before they sleep (unless
    the user set OMP_WAIT_POLICY or GOMP_SPINCOUNT; GNU OpenMP, which torch uses on Linux). Measured
    on `suggest` of a 300-line file on 2 cores (docs/benchmarks.md): idle, 1.81 s against 1.80 s for
    threads that spin without end and 1.93 s for threads that never spin; with both cores kept busy by
    other programs, 3.3-3.7 s against 3.6-14.6 s with the default spin count and 2.9-3.4 s never
    spinning. It must be set before torch is imported, which happens only inside `main`."""
    argv = sys.argv[1:]
    quick = _command(argv) in QUICK_EXIT
    if quick and "OMP_WAIT_POLICY" not in os.environ:
        os.environ.setdefault("GOMP_SPINCOUNT", "10000")
    code = main(argv)
    if not quick:
        sys.exit(code)
    import logging

    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: nothing more can be written anyway
            pass
    os._exit(code)

