"""Argument types shared by the subcommands: a bad value is a one-line usage error (exit 2)."""

from __future__ import annotations

import argparse
import math
import re


def integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None


def positive_int(text: str) -> int:
    value = integer(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number ≥ 1, got {value}")
    return value


def bounded_int(lo: int, hi: int):
    """The argument type of a whole number from `lo` to `hi`."""

    def parse(text: str) -> int:
        value = integer(text)
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"expected a whole number from {lo:,} to {hi:,}, got {value}")
        return value

    parse.__name__ = f"whole number from {lo} to {hi}"  # how argparse names the type in its messages
    return parse


def fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number between 0 and 1, got {text!r}") from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {value}")
    return value


def iso_date(text: str) -> str:
    from datetime import datetime

    try:
        datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an ISO date such as 2024-01-31, got {text!r}") from None
    return text


def positive_seconds(text: str) -> float:
    """A finite number of seconds > 0 (rejects nan and inf)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"expected a finite number of seconds > 0, got {text!r}")
    return value


def score(text: str) -> float:
    """A score threshold (a mean log-probability per token): a finite number, or -inf for no threshold;
    nan, which no score reaches, and +inf are refused."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number (a score such as -1.5, or -inf), got {text!r}") from None
    if math.isnan(value) or value == math.inf:
        raise argparse.ArgumentTypeError(f"expected a finite score or -inf, got {text!r}")
    return value


def language_list(text: str) -> tuple[str, ...]:
    """Comma-separated language names (patchcoder.ground.languages.LANGUAGES), or 'any'; at least one."""
    from patchcoder.ground.languages import LANGUAGES

    names = tuple(dict.fromkeys(x.strip().lower() for x in text.split(",") if x.strip()))
    if not names:
        raise argparse.ArgumentTypeError("expected at least one language, e.g. python,go")
    unknown = [name for name in names if name not in LANGUAGES and name != "any"]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown language{'s' if len(unknown) > 1 else ''} "
                                         f"{', '.join(map(repr, unknown))}; known: {', '.join(LANGUAGES)} (or 'any')")
    return names


def folder_path(text: str) -> str:
    """An output (or input) folder of a sharded run (mine, synth, tokenize): a file-system path. A URL
    (s3://, gs://, file://, ...) is refused rather than taken as a local folder named `s3:`; the shards and the
    manifest are replaced by atomic renames, which object stores do not offer (docs/cluster.md)."""
    url = re.match(r"([A-Za-z][A-Za-z0-9+.-]+)://", text)
    if url:
        raise argparse.ArgumentTypeError(
            f"expected a folder path, got the URL {text!r}: outputs are written to a file system, not to "
            f"{url.group(1)}:// (mount the bucket, e.g. with gcsfuse or mountpoint-s3, and pass the mount path)")
    return text
