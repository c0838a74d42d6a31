"""The rewrite engine's entry points: line ranges and `new_lines`, determinism of injection given a seed, the
class filter and errors, the rewrite checker, and a property test on real standard-library files."""

from __future__ import annotations

import dataclasses
import inspect
import random
import sysconfig
import textwrap
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from patchcoder.ground.errors import PatchcoderError
from patchcoder.tokenizer.rewrites import (
    DRAW_WEIGHTS,
    LANGUAGES,
    UnsupportedLanguage,
    draw_weights,
    enumerate_rewrites,
    inject_bug,
    inject_bugs,
    parses,
    rewrite_checker,
)

STDLIB = Path(sysconfig.get_paths()["stdlib"])


def test_every_language_has_a_table():
    from patchcoder.tokenizer.rewrites.engine import TABLES

    assert set(TABLES) == set(LANGUAGES)


def test_lines_and_line_filter():
    code = "def f(a, b):\n    x = a + b\n    y = a - b\n    return x * y\n"
    rewrite = next(r for r in enumerate_rewrites(code, kinds=["wrong_binary_operator"]) if r.text == "-")
    assert rewrite.lines == (1, 2)
    in_range = enumerate_rewrites(code, lines=(2, 3))
    assert in_range and all(r.lines[0] <= 2 < max(r.lines[1], r.lines[0] + 1) for r in in_range)
    deleted = next(r for r in enumerate_rewrites(code, kinds=["deleted_statement"]) if "y = a - b" in
                   r.source[r.start:r.end].decode())
    assert deleted.lines == (2, 3)
    inserted = next(r for r in enumerate_rewrites(code, kinds=["extra_statement"]))
    assert inserted.lines[0] == inserted.lines[1]  # an insertion before a line
    assert inserted.inverse().lines[1] == inserted.inverse().lines[0] + 1  # its fix deletes one line



@pytest.mark.parametrize("trailing_newline", [True, False])
def test_new_lines_are_the_rewritten_codes_lines(trailing_newline):
    """Every rewrite of a real module: its lines [first, last) of the source, replaced by `new_lines`,
    give exactly the lines of the rewritten `code` (insertions, deletions, the last line without "\\n")."""
    from patchcoder.tokenizer.edits import split_lines

    code = (STDLIB / "textwrap.py").read_text()
    code = code if trailing_newline else code.rstrip("\n")
    rewrites = enumerate_rewrites(code)
    assert {r.kind for r in rewrites} >= {"deleted_statement", "extra_statement", "wrong_binary_operator"}
    old = split_lines(code)
    for rewrite in rewrites:
        first, last = rewrite.lines
        assert old[:first] + split_lines(rewrite.new_lines) + old[last:] == split_lines(rewrite.code), rewrite

def test_injection_is_deterministic_and_parses():
    code = (STDLIB / "textwrap.py").read_text()
    first = inject_bugs(code, random.Random(7), 8)
    again = inject_bugs(code, random.Random(7), 8)
    other = inject_bugs(code, random.Random(8), 8)
    assert [(r.kind, r.start, r.end, r.text) for r in first] == [(r.kind, r.start, r.end, r.text) for r in again]
    assert [(r.start, r.text) for r in first] != [(r.start, r.text) for r in other]
    assert len({(r.start, r.end, r.text) for r in first}) == 8
    for rewrite in first:
        assert parses(rewrite.code)
        assert rewrite.inverse().code == code


def test_injection_draws_classes_evenly():
    code = (STDLIB / "argparse.py").read_text()
    rng = random.Random(0)
    counts = Counter(r.kind for r in inject_bugs(code, rng, 60))
    assert len(counts) >= 15  # a class first, then a site: variable misuse (most sites) does not dominate
    assert max(counts.values()) <= 10


def test_kinds_filter_and_errors():
    code = "def f(a, b):\n    return a + b\n"
    assert inject_bug(code, random.Random(0), kinds=["wrong_binary_operator"]).text == "-"
    assert inject_bug(code, random.Random(0), kinds=["wrong_boolean"]) is None
    assert inject_bugs("def f(:\n", random.Random(0), 3) == []  # the original must parse
    assert enumerate_rewrites("def f(:\n") == []
    with pytest.raises(UnsupportedLanguage):
        enumerate_rewrites("x = 1;", language="cobol")
    with pytest.raises(Exception, match="unknown mutation class"):
        enumerate_rewrites(code, kinds=["no_such_class"])


def test_injected_bugs_of_one_file_are_distinct_texts():
    # dropping the first or the second `a` gives the same buggy file: one example, not two
    bugs = inject_bugs("f(a, a)\n", random.Random(0), 5, kinds=["missing_argument"])
    assert [b.code for b in bugs] == ["f(a)\n"]


_FILES = sorted(p for p in STDLIB.glob("*.py") if p.stat().st_size < 40_000)


@settings(max_examples=25, deadline=None, derandomize=True)
@given(st.sampled_from(_FILES), st.integers(0, 2**32 - 1))
def test_property_injected_bugs_parse_and_invert(path, seed):
    """For any real file and seed: every injected bug parses, differs, and its inverse restores the file."""
    code = path.read_text(encoding="utf-8", errors="replace")
    for bug in inject_bugs(code, random.Random(seed), 3):
        assert bug.code != code and parses(bug.code)
        assert bug.inverse().code == code
        first, last = bug.lines
        old_lines, new_lines = code.splitlines(keepends=True), bug.code.splitlines(keepends=True)
        # outside the reported line range the two texts are identical
        assert old_lines[:first] == new_lines[:first]
        tail = len(old_lines) - last
        assert tail <= 0 or old_lines[-tail:] == new_lines[-tail:]


@pytest.mark.parametrize("module", ["textwrap.py", "bisect.py", "colorsys.py", "shlex.py"])
def test_the_rewrite_checker_answers_as_parsing_the_whole_rewritten_file(module):
    """The checker reads only the top-level statement a Python rewrite is in: its answer is the whole file's,
    for rewrites that parse and for ones broken in ways that reach past the statement (an open bracket or
    string, a block opened, a dedent, a line continued)."""
    code = (STDLIB / module).read_text(encoding="utf-8") + "x = 1; y = [x,\n  2]\n@dec\ndef g(): return y\n"
    every = enumerate_rewrites(code, "python", check=False)
    every = every[::max(1, len(every) // 150)]
    tails = ("(", '"""', ":\n", "\n  z = 1\n", "\\\n")
    broken = [dataclasses.replace(r, text=r.text + tail) for r in every[:40] for tail in tails]
    checker = rewrite_checker(code, "python")
    verdicts = [(checker(r), parses(r.code)) for r in every + broken]
    assert [r for r, (mine, whole) in zip(every + broken, verdicts, strict=True) if mine != whole] == []
    assert {mine for mine, _ in verdicts} == {True, False}


def test_the_rewrite_checker_of_an_empty_file():
    assert rewrite_checker("", "python") is not None and enumerate_rewrites("", "python", check=True) == []


def test_the_rewrite_checker_keeps_exactly_what_check_true_keeps():
    code = inspect.getsource(textwrap.TextWrapper)  # real code
    every = enumerate_rewrites(code, "python", check=False)
    still_parses = rewrite_checker(code, "python")
    broken = [dataclasses.replace(r, text=r.text + "(") for r in every[:20]]
    kept = [r for r in every + broken if still_parses(r)]
    assert len(kept) == len(every) > 100  # every broken one is caught
    assert [(r.start, r.end, r.text) for r in kept] == \
        [(r.start, r.end, r.text) for r in enumerate_rewrites(code, "python", check=True)]
    assert rewrite_checker("def f(:\n", "python") is None


_PINNED = """def total(items, limit, scale=2):
    count = 0
    seen = []
    for i, item in enumerate(items):
        if item > limit and not item.skip:
            count += item.value * scale
            seen.append(item)
        elif i % 2 == 0 or item is None:
            continue
    print(count, len(seen))
    return max(count - 1, limit) if seen else [count]
"""


def test_the_draw_without_a_mix_is_the_one_every_earlier_stage_made():
    # drawn by the engine before the class mix existed (d1ba632): the same seed must keep giving the same bugs,
    # or a stage's data could not be made again
    drawn = [(r.kind, r.start, r.text) for r in inject_bugs(_PINNED, random.Random(3), 12)]
    assert drawn == [
        ("extra_statement", 212, "            seen.append(item)\n"), ("swapped_operands", 317, "1 - count"),
        ("wrong_binary_operator", 174, "/"), ("wrong_number", 234, "-1"), ("wrong_assignment_operator", 160, "="),
        ("wrong_attribute_name", 199, "insert"), ("wrong_boolean_operator", 123, "or"),
        ("wrong_boolean_operator", 236, "and"), ("wrong_comparison_operator", 115, ">="),
        ("wrong_function_name", 313, "min"), ("wrong_literal_shape", 59, "{}"), ("swapped_operands", 225, "2 % i")]
    assert drawn == [(r.kind, r.start, r.text)
                     for r in inject_bugs(_PINNED, random.Random(3), 12, weights=draw_weights(None))]


def test_the_mix_shifts_the_draw_and_zero_never_draws():
    code = (STDLIB / "argparse.py").read_text()
    plain = inject_bugs(code, random.Random(3), 40)
    same = inject_bugs(code, random.Random(3), 40, weights=draw_weights(None))
    assert [(r.kind, r.start, r.text) for r in plain] == [(r.kind, r.start, r.text) for r in same]
    counts = Counter(r.kind for r in plain)
    heavy = Counter(r.kind for r in inject_bugs(code, random.Random(3), 40,
                                                weights=draw_weights({"swapped_arguments": 20})))
    assert heavy["swapped_arguments"] > 2 * max(1, counts["swapped_arguments"])
    none = inject_bugs(code, random.Random(3), 40, weights=draw_weights({"variable_misuse": 0, "wrong_number": 0}))
    assert none and not {"variable_misuse", "wrong_number"} & {r.kind for r in none}
    only_zero = draw_weights({k: 0 for k in DRAW_WEIGHTS})
    assert inject_bugs(code, random.Random(3), 5, weights=only_zero) == []


def test_draw_weights_refuses_unknown_classes_and_bad_factors():
    assert draw_weights([("wrong_boolean", 2)])["wrong_boolean"] == 2 * DRAW_WEIGHTS["wrong_boolean"]
    assert draw_weights({"wrong_boolean": 2})["wrong_number"] == DRAW_WEIGHTS["wrong_number"]
    for bad in ({"no_such_class": 1}, {"wrong_boolean": -1}, {"wrong_boolean": float("nan")},
                {"wrong_boolean": float("inf")}, {"wrong_boolean": "2"}, {"wrong_boolean": True},
                [("wrong_boolean", 2), ("wrong_boolean", 3)], {"wrong_number": 1e308, "wrong_boolean": 1e308}):
        with pytest.raises(PatchcoderError):
            draw_weights(bad)
