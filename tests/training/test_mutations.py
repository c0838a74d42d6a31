"""The rewrite engine: every class on hand-written snippets (the rewrite happens, parses, and its inverse restores
the original exactly), determinism given a seed, line ranges, and real standard-library files."""

from __future__ import annotations

import random
import sysconfig
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from patchcoder.ground.sstub import classify_sstub
from patchcoder.training.mutations import (
    DRAW_WEIGHTS,
    KINDS,
    MESSAGES,
    UnsupportedLanguage,
    enumerate_rewrites,
    inject_bug,
    inject_bugs,
    parses,
    similar_names,
)

STDLIB = Path(sysconfig.get_paths()["stdlib"])

# (class, original, one expected buggy version)
CASES = [
    ("wrong_binary_operator", "def f(a, b):\n    return a + b\n", "def f(a, b):\n    return a - b\n"),
    ("wrong_binary_operator", "mask = bits & 0xff\n", "mask = bits | 0xff\n"),
    ("wrong_comparison_operator", "ok = a < b\n", "ok = a <= b\n"),
    ("wrong_comparison_operator", "ok = a is not None\n", "ok = a is None\n"),
    ("wrong_comparison_operator", "ok = key in table\n", "ok = key not in table\n"),
    ("wrong_boolean_operator", "ok = a and b\n", "ok = a or b\n"),
    ("wrong_assignment_operator", "total += step\n", "total -= step\n"),
    ("wrong_assignment_operator", "total += step\n", "total = step\n"),
    ("swapped_operands", "d = end - start\n", "d = start - end\n"),
    ("swapped_operands", "found = needle in haystack\n", "found = haystack in needle\n"),
    ("variable_misuse", "def f(a, b):\n    c = a * 2\n    return c + b\n", "def f(a, b):\n    c = b * 2\n    return c + b\n"),
    ("variable_misuse", "def f(a, b):\n    c = a * 2\n    return c + b\n", "def f(a, b):\n    c = a * 2\n    return a + b\n"),
    ("wrong_number", "last = items[1]\n", "last = items[2]\n"),
    ("wrong_number", "first = items[0]\n", "first = items[-1]\n"),
    ("wrong_number", "last = items[-1]\n", "last = items[1]\n"),
    ("wrong_number", "n = 1\n", "n = 0\n"),
    ("wrong_boolean", "flag = True\n", "flag = False\n"),
    ("wrong_offset", "for i in range(n):\n    pass\n", "for i in range(n + 1):\n    pass\n"),
    ("wrong_offset", "x = a[i - 1]\n", "x = a[i]\n"),
    ("wrong_offset", "head = a[:len(a)]\n", "head = a[:len(a) - 1]\n"),
    ("wrong_offset", "if i < n:\n    pass\n", "if i < n - 1:\n    pass\n"),
    ("swapped_arguments", "copy(src, dst)\n", "copy(dst, src)\n"),
    ("missing_argument", "copy(src, dst)\n", "copy(src)\n"),
    ("missing_argument", "copy(src, dst)\n", "copy(dst)\n"),
    ("missing_argument", "open(path, mode='rb')\n", "open(path)\n"),
    ("extra_argument", "def g(a, b):\n    return f(a)\n", "def g(a, b):\n    return f(a, b)\n"),
    ("dropped_not", "if not ok:\n    pass\n", "if ok:\n    pass\n"),
    ("added_not", "if ok:\n    pass\n", "if not ok:\n    pass\n"),
    ("added_not", "while a and b:\n    pass\n", "while a and not b:\n    pass\n"),
    ("wrong_function_name", "x = any(ys)\n", "x = all(ys)\n"),
    ("wrong_function_name", "x = min(a, b)\n", "x = max(a, b)\n"),
    ("wrong_function_name", "def read_header(f): pass\ndef read_body(f): pass\nh = read_header(f)\n",
     "def read_header(f): pass\ndef read_body(f): pass\nh = read_body(f)\n"),
    ("wrong_attribute_name", "xs.append(y)\n", "xs.extend(y)\n"),
    ("wrong_attribute_name", "w = box.left\n", "w = box.right\n"),
    ("wrong_attribute_name", "a = cfg.max_size\nb = cfg.min_size\n", "a = cfg.min_size\nb = cfg.min_size\n"),
    ("wrong_literal_shape", "f([x])\n", "f(x)\n"),
    ("wrong_literal_shape", "t = (x,)\n", "t = (x)\n"),
    ("wrong_literal_shape", "seen = {}\n", "seen = []\n"),
    ("deleted_statement", "def f(xs):\n    xs.sort()\n    return xs\n", "def f(xs):\n    return xs\n"),
    ("extra_statement", "def f(xs):\n    xs.pop()\n    return xs\n", "def f(xs):\n    xs.pop()\n    xs.pop()\n    return xs\n"),
    ("extra_statement", "def f(a):\n    b = 1\n    a = a + 1\n", "def f(a):\n    a = a + 1\n    b = 1\n    a = a + 1\n"),
]


def test_every_class_has_a_case():
    assert {kind for kind, _, _ in CASES} == set(KINDS)
    assert set(MESSAGES) == set(KINDS) == set(DRAW_WEIGHTS)


@pytest.mark.parametrize(("kind", "original", "expected"), CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_class_on_snippet(kind, original, expected):
    assert parses(original)
    rewrites = enumerate_rewrites(original, kinds=[kind])
    by_code = {r.code: r for r in rewrites}
    assert expected in by_code, sorted(by_code)
    for rewrite in rewrites:
        assert rewrite.kind == kind
        assert rewrite.code != original
        fix = rewrite.inverse()
        assert fix.source.decode() == rewrite.code
        assert fix.code == original  # the fix restores the original exactly
    assert parses(by_code[expected].code)


def test_sstub_agrees_with_the_tokenizer_on_one_line_fixes():
    """The sstub column names the fix's class as the tokenizer's classifier computes it, where it has one."""
    checked = 0
    for kind, original, expected in CASES:
        rewrite = next(r for r in enumerate_rewrites(original, kinds=[kind]) if r.code == expected)
        computed = classify_sstub(rewrite.code, original, "python")
        if computed not in (None, "other"):
            assert computed == rewrite.sstub, (kind, original, expected)
            checked += 1
    assert checked >= 25


def test_buggy_results_never_break_parsing():
    code = (STDLIB / "bisect.py").read_text()
    rewrites = enumerate_rewrites(code, check=True)
    everything = enumerate_rewrites(code)
    assert 0 < len(rewrites) <= len(everything)
    assert all(parses(r.code) for r in rewrites[::7])
    # a rewrite that would not compile is filtered: `f(*a, b)` cannot lose its comma into `f(*a b)`
    assert not parses("f(a b)\n") and not parses("def f(:\n")


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


def test_strings_and_comments_are_left_alone():
    code = 'def f(a, b):\n    s = "a + b < 1"  # a and b\n    return s\n'
    for rewrite in enumerate_rewrites(code):
        changed = code.encode()[rewrite.start:rewrite.end].decode()
        assert '"' not in changed or rewrite.kind in ("deleted_statement", "extra_statement")


def test_similar_names():
    assert similar_names("any", []) == ["all"]
    assert "set_value" in similar_names("get_value", ["set_value", "get_values2", "value"])
    assert similar_names("getValue", ["setValue"]) == ["setValue"]
    assert similar_names("frobnicate", ["other"]) == []


def test_stdlib_round_trips():
    """Every rewrite of a few real files is undone exactly by its inverse."""
    for name in ("bisect.py", "heapq.py", "colorsys.py"):
        code = (STDLIB / name).read_text()
        rewrites = enumerate_rewrites(code)
        assert len({r.kind for r in rewrites}) >= 12, name
        for rewrite in rewrites:
            assert rewrite.inverse().code == code


# JavaScript (TypeScript shares the engine): (class, original, one expected buggy version)
JS_CASES = [
    ("wrong_binary_operator", "const s = a + b;\n", "const s = a - b;\n"),
    ("wrong_comparison_operator", "const ok = a === b;\n", "const ok = a !== b;\n"),
    ("wrong_comparison_operator", "const ok = i < n;\n", "const ok = i <= n;\n"),
    ("wrong_boolean_operator", "const ok = a && b;\n", "const ok = a || b;\n"),
    ("wrong_assignment_operator", "total += step;\n", "total -= step;\n"),
    ("swapped_operands", "const d = end - start;\n", "const d = start - end;\n"),
    ("variable_misuse", "function f(a, b) {\n  return a * 2;\n}\n", "function f(a, b) {\n  return b * 2;\n}\n"),
    ("wrong_number", "const last = items[1];\n", "const last = items[2];\n"),
    ("wrong_number", "const last = items[-1];\n", "const last = items[1];\n"),
    ("wrong_boolean", "let flag = true;\n", "let flag = false;\n"),
    ("wrong_offset", "for (let i = 0; i < xs.length; i++) {}\n", "for (let i = 0; i < xs.length - 1; i++) {}\n"),
    ("wrong_offset", "const x = a[i - 1];\n", "const x = a[i];\n"),
    ("swapped_arguments", "copy(src, dst);\n", "copy(dst, src);\n"),
    ("missing_argument", "copy(src, dst);\n", "copy(src);\n"),
    ("extra_argument", "function g(a, b) {\n  return f(a);\n}\n", "function g(a, b) {\n  return f(a, b);\n}\n"),
    ("dropped_not", "if (!ok) {\n}\n", "if (ok) {\n}\n"),
    ("added_not", "if (ok) {\n}\n", "if (!ok) {\n}\n"),
    ("added_not", "while (i < n) {\n}\n", "while (!(i < n)) {\n}\n"),
    ("wrong_function_name", "const v = parseInt(s);\n", "const v = parseFloat(s);\n"),
    ("wrong_attribute_name", "xs.push(y);\n", "xs.unshift(y);\n"),
    ("wrong_attribute_name", "const w = box.width;\n", "const w = box.height;\n"),
    ("wrong_literal_shape", "f([x]);\n", "f(x);\n"),
    ("wrong_literal_shape", "const seen = {};\n", "const seen = [];\n"),
    ("deleted_statement", "function f(xs) {\n  xs.sort();\n  return xs;\n}\n", "function f(xs) {\n  return xs;\n}\n"),
    ("extra_statement", "function f(xs) {\n  xs.pop();\n  return xs;\n}\n",
     "function f(xs) {\n  xs.pop();\n  xs.pop();\n  return xs;\n}\n"),
]


def test_every_class_has_a_javascript_case():
    assert {kind for kind, _, _ in JS_CASES} == set(KINDS)


@pytest.mark.parametrize(("kind", "original", "expected"), JS_CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(JS_CASES)])
def test_javascript_class_on_snippet(kind, original, expected):
    assert parses(original, "javascript")
    rewrites = enumerate_rewrites(original, "javascript", kinds=[kind])
    by_code = {r.code: r for r in rewrites}
    assert expected in by_code, sorted(by_code)
    assert parses(expected, "javascript")
    for rewrite in rewrites:
        assert rewrite.kind == kind and rewrite.inverse().code == original


def test_typescript_uses_the_javascript_engine():
    code = "function g(x: number, y: number): number {\n  const z: number = x + 1;\n  return z < y ? z : y;\n}\n"
    rewrites = enumerate_rewrites(code, "typescript", check=True)
    kinds = {r.kind for r in rewrites}
    assert {"wrong_binary_operator", "wrong_comparison_operator", "variable_misuse", "wrong_number"} <= kinds
    assert all(parses(r.code, "typescript") and r.inverse().code == code for r in rewrites)
    bug = inject_bug(code, random.Random(1), "typescript")
    assert bug is not None and parses(bug.code, "typescript")


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


def test_the_rewrite_checker_keeps_exactly_what_check_true_keeps():
    import dataclasses
    import inspect
    import textwrap

    from patchcoder.training.mutations import enumerate_rewrites, rewrite_checker

    code = inspect.getsource(textwrap.TextWrapper)  # real code
    every = enumerate_rewrites(code, "python", check=False)
    parses = rewrite_checker(code, "python")
    broken = [dataclasses.replace(r, text=r.text + "(") for r in every[:20]]
    kept = [r for r in every + broken if parses(r)]
    assert len(kept) == len(every) > 100  # every broken one is caught
    assert [(r.start, r.end, r.text) for r in kept] == \
        [(r.start, r.end, r.text) for r in enumerate_rewrites(code, "python", check=True)]
    assert rewrite_checker("def f(:\n", "python") is None
