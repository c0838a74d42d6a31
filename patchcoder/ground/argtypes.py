"""Argument types shared by the subcommands: a bad value is a one-line usage error (exit 2)."""

from __future__ import annotations

import argparse
import math


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


def weight(text: str) -> float:
    """A finite number ≥ 0 (a weight; rejects nan and inf)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number ≥ 0, got {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"expected a finite number ≥ 0, got {text!r}")
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
    """A folder on this machine (e.g. a model folder): a file-system path. A URL (s3://, file://, ...) is refused
    rather than taken as a local folder named `s3:`."""
    from patchcoder.ground.storage import url_scheme

    scheme = url_scheme(text)
    if scheme is not None:
        raise argparse.ArgumentTypeError(f"expected a folder path, got the URL {text!r}: this folder is read on this "
                                         f"machine, not from {scheme}:// (copy it here and pass its path)")
    return text


def location(text: str) -> str:
    """The output (or input) folder of a sharded run (mine, synth, tokenize, candidates): a file-system path, or an
    fsspec URL (s3://BUCKET/PREFIX, gs://, file://, ...) whose scheme's package is installed (ground/storage.py)."""
    from patchcoder.ground.errors import UsageError
    from patchcoder.ground.storage import check_url, url_scheme

    if url_scheme(text) is not None:
        try:
            check_url(text)
        except UsageError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    return text
