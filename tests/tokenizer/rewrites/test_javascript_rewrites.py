"""The rewrite engine on JavaScript and TypeScript: every class on hand-written snippets."""

from __future__ import annotations

import random

import pytest

from patchcoder.tokenizer.rewrites import KINDS, enumerate_rewrites, inject_bug, parses

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
