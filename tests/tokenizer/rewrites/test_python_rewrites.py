"""The rewrite engine on Python: every class on hand-written snippets (the rewrite happens, parses, and its
inverse restores the original exactly), its fix's sstub class, and real standard-library files."""

from __future__ import annotations

import sysconfig
from pathlib import Path

import pytest

from patchcoder.ground.sstub import classify_sstub
from patchcoder.tokenizer.rewrites import DRAW_WEIGHTS, KINDS, MESSAGES, enumerate_rewrites, parses

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


def test_strings_and_comments_are_left_alone():
    code = 'def f(a, b):\n    s = "a + b < 1"  # a and b\n    return s\n'
    for rewrite in enumerate_rewrites(code):
        changed = code.encode()[rewrite.start:rewrite.end].decode()
        assert '"' not in changed or rewrite.kind in ("deleted_statement", "extra_statement")


def test_stdlib_round_trips():
    """Every rewrite of a few real files is undone exactly by its inverse."""
    for name in ("bisect.py", "heapq.py", "colorsys.py"):
        code = (STDLIB / name).read_text()
        rewrites = enumerate_rewrites(code)
        assert len({r.kind for r in rewrites}) >= 12, name
        for rewrite in rewrites:
            assert rewrite.inverse().code == code
