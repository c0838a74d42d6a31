"""The command-line argument types (patchcoder.ground.argtypes, and the commands' own): for any text,
either a value inside the type's range or argparse.ArgumentTypeError (a one-line usage error, exit 2),
never another exception (an OverflowError would be an internal error)."""

from __future__ import annotations

import argparse
import math
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from patchcoder.ground import argtypes
from patchcoder.ground.languages import LANGUAGES
from patchcoder.tokenizer.cli import _megabytes
from patchcoder.training.eval_cli import _rate

# Texts a person might type: numbers of every shape (nan, inf, 1e999, -0, huge integers), words, empty.
NUMBERS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(min_value=-10**30, max_value=10**30).map(str),
    st.sampled_from(["nan", "-nan", "inf", "+inf", "-inf", "Infinity", "1e999", "-1e999", "1_000", " 7 ", "0x10",
                     "", "abc", "1.5", "-0", "1e-7", "2024-01-31", "python,go", ",", "any"]),
    st.text(max_size=12),
)


def law(name):
    """The range each type promises for what it returns."""
    return {
        "integer": lambda v: isinstance(v, int),
        "positive_int": lambda v: isinstance(v, int) and v >= 1,
        "fraction": lambda v: 0 <= v <= 1,
        "positive_seconds": lambda v: math.isfinite(v) and v > 0,
        "score": lambda v: not math.isnan(v) and v < math.inf,
        "iso_date": lambda v: isinstance(v, str),
        "language_list": lambda v: len(v) > 0 and all(x in LANGUAGES or x == "any" for x in v),
        "bounded_int": lambda v: 1 <= v <= 100,
        "_megabytes": lambda v: isinstance(v, int) and v >= 1,
        "_rate": lambda v: 0 <= v < 1,
        "folder_path": lambda v: isinstance(v, str) and not re.match(r"[A-Za-z][A-Za-z0-9+.-]+://", v),
        "location": lambda v: isinstance(v, str),
    }[name]


TYPES = [argtypes.integer, argtypes.positive_int, argtypes.fraction, argtypes.positive_seconds, argtypes.score,
         argtypes.iso_date, argtypes.language_list, argtypes.bounded_int(1, 100), _megabytes, _rate,
         argtypes.folder_path, argtypes.location]


@pytest.mark.parametrize("kind", TYPES, ids=lambda t: t.__name__)
@settings(max_examples=150, deadline=None)
@given(text=NUMBERS)
def test_a_value_in_range_or_a_usage_error(kind, text):
    name = "bounded_int" if kind.__name__.startswith("whole number") else kind.__name__
    try:
        value = kind(text)
    except argparse.ArgumentTypeError as exc:
        assert "\n" not in str(exc)
        return
    assert law(name)(value), (text, value)


@pytest.mark.parametrize("kind, text", [
    (argtypes.score, "nan"), (argtypes.score, "inf"), (argtypes.positive_seconds, "-5"),
    (argtypes.positive_seconds, "nan"), (argtypes.positive_seconds, "inf"), (argtypes.language_list, "klingon"),
    (_megabytes, "inf"), (_megabytes, "nan"), (argtypes.bounded_int(1, 100), "101"),
    (argtypes.folder_path, "s3://bucket/mined"), (argtypes.folder_path, "file:///data"),
    (argtypes.folder_path, "gcs://b"), (argtypes.folder_path, "memory://x"), (argtypes.location, "nosuch://x"),
])
def test_the_reported_values_are_refused(kind, text):
    with pytest.raises(argparse.ArgumentTypeError):
        kind(text)


def test_good_values():
    assert argtypes.score("-inf") == -math.inf and argtypes.score("-1.25") == -1.25
    assert argtypes.language_list("Python, GO,python") == ("python", "go")
    assert argtypes.bounded_int(1, 100)("100") == 100
    assert [argtypes.folder_path(p) for p in ("out", "/shared/mined", "C:/data", "a/b://c")] == [
        "out", "/shared/mined", "C:/data", "a/b://c"]
