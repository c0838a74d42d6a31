"""Single-statement bug-fix classes: one hand-written pair (or more) per class, in several languages."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from patchcoder.ground.sstub import CLASSES, EDIT_KINDS, edit_kind
from patchcoder.tokenizer import classify_sstub, edit_script

PY = """import os


def area(width, height, scale=1):
    total = width * height
    if total < 0 and scale > 1:
        return None
    result = compute(width, height)
    return self.cache.value + total
"""

JAVA = """public class Box {
    private static int count = 0;
    public int size(int a, int b) {
        boolean ok = true;
        return Math.max(a, b) - count;
    }
}
"""

JS = """function f(items) {
  const n = items.length;
  if (!done) { log("start"); }
  return n > 0 ? items[0] : null;
}
"""

PY2 = """class Box:
    def describe(self):
        total = (self.width
                 - self.height)
        return self.width * 2, str(total)
"""

JAVA2 = """class Box {
    int size = 0;
    int grow() { return this.size + 1; }
}
"""

PY3 = """def fetch(url, retries):
    response = session.request(
        "GET", url, timeout=retries
    )
    values = [
        response, url
    ]
    check(response,
          retries)
    return wrap(
        response, values
    )


def build(
    url, retries
):
    return fetch(url, retries)
"""

CASES = [
    # (class, language, old text, old fragment, new fragment)
    ("change_binary_operator", "python", PY, "total < 0", "total <= 0"),
    ("change_binary_operator", "python", PY, "and scale", "or scale"),
    ("change_binary_operator", "java", JAVA, ") - count", ") + count"),
    ("change_unary_operator", "python", PY, "if total < 0", "if not total < 0"),
    ("change_unary_operator", "javascript", JS, "if (!done)", "if (done)"),
    ("change_unary_operator", "java", JAVA, "ok = true", "ok = !true"),
    ("change_unary_operator", "python", PY, "scale > 1", "scale > -1"),
    ("change_identifier", "python", PY, "total = width * height", "total = width * scale"),
    ("change_identifier", "python", PY, "result = compute(", "result = measure("),
    ("change_identifier", "java", JAVA, "Math.max(a, b) - count", "Math.max(a, b) - size"),
    ("change_numeric_literal", "python", PY, "scale > 1", "scale > 2"),
    ("change_numeric_literal", "javascript", JS, "items[0]", "items[1]"),
    ("change_boolean_literal", "java", JAVA, "ok = true", "ok = false"),
    ("change_string_literal", "javascript", JS, 'log("start")', 'log("begin")'),
    ("change_attribute", "python", PY, "self.cache.value", "self.cache.size"),
    ("change_attribute", "javascript", JS, "items.length", "items.size"),
    ("change_attribute", "java", JAVA, "Math.max(", "Math.min("),
    ("swap_arguments", "python", PY, "compute(width, height)", "compute(height, width)"),
    ("swap_arguments", "java", JAVA, "Math.max(a, b)", "Math.max(b, a)"),
    ("more_arguments", "python", PY, "compute(width, height)", "compute(width, height, scale)"),
    ("fewer_arguments", "python", PY, "compute(width, height)", "compute(width)"),
    ("fewer_arguments", "javascript", JS, 'log("start")', "log()"),
    ("change_keyword", "java", JAVA, "private static int", "public static int"),
    ("change_keyword", "java", JAVA, "private static int", "private int"),
    ("change_keyword", "python", PY, "\ndef area", "\nasync def area"),
    ("other", "python", PY, "return None", "raise ValueError(total)"),
    ("other", "python", PY, "def area(width, height, scale=1)", "def area(height, width, scale=1)"),
    ("other", "python", PY, "def area(width, height, scale=1)", "def area(width, height)"),
    ("other", "python", PY, "    result = compute", "    return compute"),
    ("change_identifier", "python", PY, "import os", "import sys"),
    ("change_attribute", "python", PY2, "self.width * 2", "self.depth * 2"),
    ("change_attribute", "java", JAVA2, "this.size", "this.count"),
    ("change_identifier", "python", PY2, "str(total)", "int(total)"),
    ("change_keyword", "java", JAVA2, "int size", "long size"),
    ("change_binary_operator", "python", PY2, "- self.height", "+ self.height"),
    # a line of a call spread over several lines: its arguments (the call opens on a line above)
    ("fewer_arguments", "python", PY3, '"GET", url, timeout=retries', '"GET", url'),
    ("more_arguments", "python", PY3, "response, values\n", "response, values, url\n"),
    ("swap_arguments", "python", PY3, "response, values\n", "values, response\n"),
    ("fewer_arguments", "python", PY3, "          retries)", "          )"),
    ("other", "python", PY3, "response, url\n", "response\n"),  # a list's items, not a call's arguments
    ("other", "python", PY3, "    url, retries\n", "    url\n"),  # a definition's parameters
]


@pytest.mark.parametrize(("expected", "language", "text", "old", "new"), CASES)
def test_class(expected, language, text, old, new):
    assert text.count(old) == 1
    assert classify_sstub(text, text.replace(old, new), language) == expected


def test_every_class_is_covered():
    assert {case[0] for case in CASES} == set(CLASSES)


@pytest.mark.parametrize(("old", "new"), [
    (PY, PY),  # no change
    (PY, PY.replace("total = width", "total  =  width")),  # whitespace only
    (PY, PY.replace("return None", "return None  # nothing")),  # a comment only
    (PY, PY.replace("import os\n", "import os\nimport sys\n")),  # an added line
    (PY, PY.replace("total < 0", "total <= 0").replace("scale > 1", "scale > 2")[:-1] + "\n\n"),
    (PY, PY.replace("    result = compute(width, height)\n", "")),  # a deleted line
])
def test_not_a_single_statement_change(old, new):
    assert classify_sstub(old, new, "python") is None


@pytest.mark.parametrize(("expected", "old", "new"), [
    ("change_binary_operator", PY, PY.replace("total < 0", "total <= 0")),  # a class is its own kind
    ("insert_lines", PY, PY.replace("import os\n", "import os\nimport sys\n")),
    ("insert_lines", PY, PY.replace("        return None\n", "        log(total)\n        return None\n")),
    ("delete_lines", PY, PY.replace("    result = compute(width, height)\n", "")),
    ("delete_lines", "a\nb\na\nb\n", "a\nb\n"),  # the repeated lines: one pair removed, wherever
    ("other", PY, PY.replace("import os\n", "import sys\nimport re\n")),  # a line replaced by two
    ("other", PY, PY.replace("width * height", "width + height").replace("compute(width", "compute(w")),  # 2 lines
    ("other", PY, PY.replace("return None", "return None  # nothing")),  # a comment only: lines differ
    ("delete_lines", "a\nb", "a\n"),  # the last line, without its newline
    ("insert_lines", "a\n", "a\nb"),
    ("other", "a\nb\n", "a\nb"),  # only the last newline
    ("other", "a\nb", "a\nc\nd"),  # the last line replaced by two
    (None, PY, PY),
])
def test_kind_of_edit(expected, old, new):
    assert old != new or expected is None
    assert edit_kind(old, new, "python") == expected
    assert expected is None or expected in EDIT_KINDS


def test_edit_script_carries_the_class():
    assert edit_script(PY, PY.replace("scale > 1", "scale > 3"), "python").sstub == "change_numeric_literal"


def test_fast_on_large_files():
    big = PY * 2000  # ~440 KB
    changed = big[:-30] + big[-30:].replace("total", "totals")
    started = time.perf_counter()
    for _ in range(20):
        classify_sstub(big, changed, "python")
    assert (time.perf_counter() - started) / 20 < 0.05


@pytest.mark.parametrize(("text", "old", "new"), [
    # a "(" inside a docstring above is not a call; nor inside a string over several lines
    ("def f():\n    \"\"\"Parses options (the users' choice) that aren't defaults.\"\"\"\n    from x import a, b\n",
     "import a, b", "import a"),
    ('    """Usage: run(\n    """\n    return x, y\n', "return x, y", "return x"),
    ('query = """\nSELECT count(\n    a, b\n"""\n', "    a, b", "    b, a"),
    # the line begins or ends inside an argument: `foo(a + b, c)` -> `foo(a + c, b)` swaps no arguments
    ("foo(\n    a +\n    b, c\n)\n", "b, c", "c, b"),
    ("foo(\n    a, b\n    + c\n)\n", "a, b", "b, a"),
])
def test_a_line_is_classed_by_arguments_only_inside_a_call_and_at_their_boundaries(text, old, new):
    assert text.count(old) == 1
    assert classify_sstub(text, text.replace(old, new), "python") == "other"


def test_relative_import_is_an_identifier_not_an_attribute():
    old = "from .utils import echo\nx = 1\n"
    assert classify_sstub(old, old.replace(".utils", ".helpers"), "python") == "change_identifier"


@settings(max_examples=300, deadline=None)
@given(st.text(st.sampled_from(list("ab(),.=<>!-+ 01\"'\n\t#/*")), max_size=60),
       st.text(st.sampled_from(list("ab(),.=<>!-+ 01\"'\n\t#/*")), max_size=60),
       st.sampled_from([None, "python", "java", "javascript", "c"]))
def test_any_pair_gets_a_known_class_or_none(old, new, language):
    result = classify_sstub(old, new, language)
    assert result is None or result in CLASSES
    if old == new:
        assert result is None
