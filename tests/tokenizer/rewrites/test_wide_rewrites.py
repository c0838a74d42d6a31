"""The wider candidate set (`enumerate_rewrites(..., wide=True)`): every fix below is out of the narrow set
(the classes of the synthetic bugs) and within the wide one; the wide set holds every narrow rewrite; and
the synthetic bugs do not change."""

from __future__ import annotations

import random
import sysconfig
from pathlib import Path

import pytest

from patchcoder.tokenizer.rewrites import enumerate_rewrites, inject_bugs

STDLIB = Path(sysconfig.get_paths()["stdlib"])

# (what the wide set adds, language, buggy code, its fix)
FIXES = [
    ("comparison into any other", "python", "ok = a < b\n", "ok = a == b\n"),
    ("comparison into any other", "python", "ok = x == None\n", "ok = x is None\n"),
    ("comparison into any other", "python", "ok = key != table\n", "ok = key not in table\n"),
    ("a negative literal ± 1", "python", "total = -1\n", "total = 0\n"),
    ("a negative literal ± 1", "javascript", "let total = -1;\n", "let total = 0;\n"),
    ("arithmetic into any other", "python", "y = a + b\n", "y = a * b\n"),
    ("arithmetic into any other", "python", "y = a // b\n", "y = a ** b\n"),
    ("bitwise into any other", "python", "y = a << b\n", "y = a | b\n"),
    ("augmented assignment into any other", "python", "total *= x\n", "total -= x\n"),
    ("a returned value replaced by a local", "python",
     "def f(a, b):\n    c = a * b\n    return a + b\n", "def f(a, b):\n    c = a * b\n    return c\n"),
    ("a returned value negated", "python", "def f(a):\n    return a.done()\n", "def f(a):\n    return not a.done()\n"),
    ("a returned value negated", "python", "def f(a, b):\n    return a < b\n", "def f(a, b):\n    return not (a < b)\n"),
    ("len() off by one anywhere", "python", "def f(xs):\n    n = len(xs)\n    return n\n",
     "def f(xs):\n    n = len(xs) - 1\n    return n\n"),
    ("a method of the same arity called on the same object", "python",
     "def f(store, k):\n    store.fetch(k)\n    return store.lookup(k)\n",
     "def f(store, k):\n    store.lookup(k)\n    return store.lookup(k)\n"),
    ("a function of the same arity called in the file", "python",
     "def f(x):\n    a = encode(x)\n    b = compress(a)\n    return b\n",
     "def f(x):\n    a = compress(x)\n    b = compress(a)\n    return b\n"),
    ("another attribute read on the same object", "python",
     "def f(p):\n    w = p.width\n    return w * p.scale\n", "def f(p):\n    w = p.scale\n    return w * p.scale\n"),
    ("a missing return", "python",
     "def f(xs):\n    for x in xs:\n        if x:\n            x.close()\n    return None\n",
     "def f(xs):\n    for x in xs:\n        if x:\n            x.close()\n            return\n    return None\n"),
    ("a missing break", "python",
     "def f(xs):\n    for x in xs:\n        if x > 3:\n            found = x\n    return found\n",
     "def f(xs):\n    for x in xs:\n        if x > 3:\n            found = x\n            break\n    return found\n"),
    ("a missing statement copied from the block", "python",
     "def f(a, b):\n    a.flush()\n    a.write(b)\n    return a\n",
     "def f(a, b):\n    a.flush()\n    a.write(b)\n    a.flush()\n    return a\n"),
    ("a missing statement copied from elsewhere in the function", "python",
     "def f(a, xs):\n    a.reset()\n    for x in xs:\n        a.add(x)\n    return a\n",
     "def f(a, xs):\n    a.reset()\n    for x in xs:\n        a.reset()\n        a.add(x)\n    return a\n"),
    ("a misspelt callee: a builtin", "python", "def f(d):\n    return hasttr(d, 'x')\n",
     "def f(d):\n    return hasattr(d, 'x')\n"),
    ("a misspelt variable the file spells elsewhere", "python",
     "def f(attr):\n    return attri\n", "def f(attr):\n    return attr\n"),
    ("a misspelt name read at module level", "python",
     "class TemplateError(Exception):\n    pass\nE = TEmplateError\n",
     "class TemplateError(Exception):\n    pass\nE = TemplateError\n"),
    ("a misspelt attribute (two letters swapped)", "python",
     "def f(p):\n    p.items()\n    return p.itmes\n", "def f(p):\n    p.items()\n    return p.items\n"),
    ("a misspelt property", "javascript", "function f(p) {\n  p.length = 1;\n  return p.lenght;\n}\n",
     "function f(p) {\n  p.length = 1;\n  return p.length;\n}\n"),
    ("comparison into any other", "javascript", "const ok = a === b;\n", "const ok = a <= b;\n"),
    ("boolean into any other", "javascript", "const v = a && b;\n", "const v = a ?? b;\n"),
    ("a returned value negated", "javascript", "function f(a) {\n  return a.done();\n}\n",
     "function f(a) {\n  return !a.done();\n}\n"),
    ("a missing break", "javascript",
     "function f(xs) {\n  let found = null;\n  for (const x of xs) {\n    if (x > 3) {\n      found = x;\n    }\n  }\n  return found;\n}\n",
     "function f(xs) {\n  let found = null;\n  for (const x of xs) {\n    if (x > 3) {\n      found = x;\n      break;\n    }\n  }\n  return found;\n}\n"),
]


@pytest.mark.parametrize(("what", "language", "buggy", "fixed"), FIXES, ids=[f"{f[1]}: {f[0]}" for f in FIXES])
def test_the_wide_set_reaches_fixes_that_the_narrow_set_does_not(what, language, buggy, fixed):
    narrow = {r.code for r in enumerate_rewrites(buggy, language, check=True)}
    wide = {r.code for r in enumerate_rewrites(buggy, language, check=True, wide=True)}
    assert fixed not in narrow
    assert fixed in wide


def _files(limit: int) -> list[str]:
    names = ["argparse.py", "textwrap.py", "heapq.py", "bisect.py", "shlex.py", "fractions.py", "difflib.py"]
    return [(STDLIB / n).read_text(encoding="utf-8") for n in names[:limit]]


def test_the_wide_set_holds_every_narrow_rewrite_and_a_bounded_number_more():
    narrow_total = wide_total = 0
    for code in _files(4):
        narrow = {(r.start, r.end, r.text) for r in enumerate_rewrites(code)}
        wide = {(r.start, r.end, r.text) for r in enumerate_rewrites(code, wide=True)}
        assert narrow <= wide
        narrow_total, wide_total = narrow_total + len(narrow), wide_total + len(wide)
    # the cost of searching: more candidates, but within a small factor (benchmarks/ceiling.py measures it)
    assert narrow_total < wide_total < 6 * narrow_total


def test_inserted_statements_take_the_indentation_of_their_place_and_jumps_stay_in_loops():
    code = "def f(xs):\n    total = 0\n    for x in xs:\n        total += x\n    return total\n"
    inserted = [r for r in enumerate_rewrites(code, wide=True) if r.kind == "extra_statement" and r.start == r.end]
    assert inserted
    lines = code.splitlines()
    for r in inserted:
        line = r.text
        at = code.encode()[:r.start].decode().count("\n")
        indent = len(line) - len(line.lstrip())
        # before the statement at its place, or after the last statement of the block that ends there
        neighbours = {len(n) - len(n.lstrip()) for n in lines[max(0, at - 1):at + 1]}
        assert line.endswith("\n") and line.count("\n") == 1
        assert indent in neighbours
        if line.strip() in ("break", "continue"):
            assert indent == 8  # only inside the loop's block


def test_synthetic_bugs_are_drawn_from_the_narrow_set_as_before():
    code = _files(1)[0]
    narrow = {(r.start, r.end, r.text) for r in enumerate_rewrites(code)}
    bugs = inject_bugs(code, random.Random(3), 40)
    assert len(bugs) == 40
    assert all((b.start, b.end, b.text) in narrow for b in bugs)


def test_a_name_spelled_twice_or_a_builtin_is_not_taken_for_a_misspelling():
    """A misspelling is rarely repeated: a name the file spells twice is someone's choice, and a builtin
    spelled right is not misspelt; only a name spelled once is rewritten into one a slip away."""
    cls = "class TemplateError(Exception):\n    pass\n"
    once = cls + "E = TEmplateError\n"
    twice = cls + "E = TEmplateError\nF = TEmplateError\n"
    fixed_once = cls + "E = TemplateError\n"
    assert fixed_once in {r.code for r in enumerate_rewrites(once, check=True, wide=True)}
    assert not any("TemplateError\nF = TEmplateError" in r.code or r.code.endswith("F = TemplateError\n")
                   for r in enumerate_rewrites(twice, check=True, wide=True))
    # `len`, spelled once, is a builtin: never rewritten into `lens`, one slip away and spelled in the file
    code = "def f(lens):\n    return len(lens)\n"
    assert "def f(lens):\n    return lens(lens)\n" not in {r.code for r in enumerate_rewrites(code, wide=True)}
