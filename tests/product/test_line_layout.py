"""The model reads code with "\\n" endings and space indentation; patches keep the file's own layout."""

from __future__ import annotations

import pytest

from patchcoder.layout import normalise
from patchcoder.tokenizer.edits import EditOp, EditScript, split_lines

LF = "def f(x):\n    if x:\n        return 1\n    return 2\n"


@pytest.mark.parametrize("original", [
    LF.replace("\n", "\r\n"),                                   # CRLF
    LF.replace("    ", "\t"),                                   # tabs
    LF.replace("    ", "\t").replace("\n", "\r\n"),             # both
    "def f(x):\r\n\tif x:\n\t\treturn 1\r\n    return 2",        # mixed endings and indents, no final newline
])
def test_the_model_reads_the_normal_form_and_the_patch_keeps_the_files_layout(original):
    normal, layout = normalise(original)
    assert "\r" not in normal and "\t" not in normal
    assert [len(n) - len(n.lstrip()) > 0 for n in normal.splitlines()] == \
           [len(o) - len(o.lstrip()) > 0 for o in original.splitlines()]  # every line stays where it was
    # the model rewrites line 2 and inserts a line after it, in its own (normal) layout
    script = EditScript((EditOp("REPLACE", 2, 3, "        return 3\n        pass\n"),))
    restored = layout.restore(script)
    patched = restored.apply(original)
    lines, old = patched.splitlines(keepends=True), original.splitlines(keepends=True)
    assert lines[:2] == old[:2] and lines[4:] == old[3:]  # the rest untouched, byte for byte
    for new in lines[2:4]:  # the new lines end and indent like the line they replace
        assert new.endswith("\r\n") == old[2].endswith("\r\n")
        assert new[:len(new) - len(new.lstrip())] == old[2][:len(old[2]) - len(old[2].lstrip())]
    assert normalise(patched)[0] == script.apply(normal)


def test_a_normal_text_is_read_as_it_is():
    assert normalise(LF) == (LF, None)
    assert normalise("x = '\t'\n") == ("x = '\t'\n", None)  # a tab inside a line is not indentation


def _compiles(code: str) -> bool:
    try:
        compile(code, "<test>", "exec")
    except SyntaxError:
        return False
    return True


# two functions indented with tabs, a third with spaces: Python accepts it, block by block
MIXED = "def a():\n\treturn 1\n\n\ndef b():\n\treturn 2\n\n\ndef is_empty(x):\n        if x:\n        " \
        "    return True\n        return False\n"


@pytest.mark.parametrize("op", [
    EditOp("REPLACE", 11, 12, "        return True\n"),                        # a line of the spaces block
    EditOp("INSERT", 11, 11, "        x = 0\n"),                              # a new line in it
    EditOp("REPLACE", 10, 11, "            if x > 1:\n                return True\n"),  # wider than any line
    EditOp("INSERT", 2, 2, "    x = 0\n"),                                    # the end of a tabs block
    EditOp("REPLACE", 1, 2, "    return 3\n"),                                # a line of a tabs block
])
def test_a_new_line_is_indented_as_the_lines_of_its_block_when_a_file_mixes_tabs_and_spaces(op):
    assert _compiles(MIXED)
    normal, layout = normalise(MIXED)
    restored = layout.restore(EditScript((op,)))
    patched = restored.apply(MIXED)
    assert _compiles(patched), patched  # no TabError
    assert normalise(patched)[0] == EditScript((op,)).apply(normal)  # the same change, read normalised
    block_uses_tabs = op.start < 8
    for line in split_lines(restored.ops[0].text):
        indent = line[:len(line) - len(line.lstrip(" \t"))]
        assert ("\t" in indent) == block_uses_tabs, repr(line)


def test_a_patch_that_would_not_compile_in_the_files_own_layout_is_not_suggested():
    from patchcoder.ranking import Source
    from patchcoder.repair import Patch, _in_own_layout

    # two blocks of one function, indented as Python allows: "\t\t" in one, "\t    " in the other
    code = "def f():\n\tif a:\n\t\tx()\n\n\tif b:\n\t    y()\n"
    normal, layout = normalise(code)
    source = Source(normal, "python", layout)
    assert _compiles(code) and source.breaks_syntax(normal) is False
    good = Patch("f.py", normal, EditScript((EditOp("REPLACE", 2, 3, "        x(1)\n"),)), -0.1)
    assert _in_own_layout(good, source).apply(code) == code.replace("x()", "x(1)")
    # deleting `if b:` joins y() to the first block: fine read normalised (every indent spaces), but in the
    # file's own layout x() and y() are indented differently within one block, whatever the new line is
    joined = EditScript((EditOp("REPLACE", 4, 5, "        z()\n"),))
    assert _compiles(joined.apply(normal)) and not source.breaks_syntax(joined.apply(normal))
    assert _in_own_layout(Patch("f.py", normal, joined, -0.1), source) is None


@pytest.mark.parametrize("code, op", [
    # lines beyond those replaced, or inserted, belong to the block they join, not to the next function's
    ("def f(x):\n\treturn x\ndef g(y):\n    y += 1\n    return y\n",
     EditOp("REPLACE", 1, 2, "    x += 1\n    x *= 2\n    return x\n")),
    ("def f(x):\n\treturn x\ndef g(y):\n    y += 1\n    return y\n", EditOp("INSERT", 1, 1, "    a = 1\n    b = 2\n    c = 3\n")),
    ("class C:\n\tdef f(self):\n\t    u = 1\n\t    return u\n\tdef h(self):\n\t\tw = 2\n\t\treturn w\n",
     EditOp("REPLACE", 2, 3, "        u = 1\n        v = 2\n        w = 3\n")),
    # a new block deeper than every line: built on its opener above, not on a narrower line below
    ("def f():\n\tif a:\n\t    if b:\n\t        if c:\n\t            pass\n\treturn 0\n",
     EditOp("REPLACE", 4, 5, "                if d:\n                    pass\n")),
])
def test_every_new_line_of_a_longer_change_is_indented_as_its_own_block(code, op):
    assert _compiles(code)
    normal, layout = normalise(code)
    patched = layout.restore(EditScript((op,))).apply(code)
    assert _compiles(patched), patched
    assert normalise(patched)[0] == EditScript((op,)).apply(normal)


def test_an_indented_new_first_line_before_an_unindented_first_line_reads_no_other_line():
    code = "x = 1\n\tif y:  # (never valid Python: only the lookup is checked)\n"
    _, layout = normalise("def f():\n\treturn 1\n")
    assert layout._statement_around(0) == []
    assert normalise(code)[1]._statement_around(0) == []


BOMMED = "\ufeffimport os\nx = 1\ny = 2\n"


@pytest.mark.parametrize(("op", "expected"), [
    (EditOp("REPLACE", 0, 1, "import sys\n"), "\ufeffimport sys\nx = 1\ny = 2\n"),
    (EditOp("INSERT", 0, 0, "# header\n"), "\ufeff# header\nimport os\nx = 1\ny = 2\n"),
    (EditOp("DELETE", 0, 1), "\ufeffx = 1\ny = 2\n"),
    (EditOp("DELETE", 0, 2), "\ufeffy = 2\n"),
    (EditOp("REPLACE", 1, 2, "x = 3\n"), "\ufeffimport os\nx = 3\ny = 2\n"),
])
def test_a_byte_order_mark_is_not_read_and_stays_first(op, expected):
    normal, layout = normalise(BOMMED)
    assert normal == BOMMED[1:]
    script = EditScript((op,))
    restored = layout.restore(script)
    assert restored.apply(BOMMED) == expected
    assert normalise(expected)[0] == script.apply(normal)
    if op.start > 0:
        assert restored.ops == script.ops  # a change below the first line is left as it was made


def test_a_byte_order_mark_with_crlf_and_tabs():
    original = "\ufeff\tx = 1\r\ny = 2\r\n"  # a mark before an indentation tab (not valid Python: only the layout)
    normal, layout = normalise(original)
    assert normal == "    x = 1\ny = 2\n"
    patched = layout.restore(EditScript((EditOp("REPLACE", 0, 1, "    x = 3\n"),))).apply(original)
    assert patched == "\ufeff\tx = 3\r\ny = 2\r\n"


@pytest.mark.parametrize(("original", "op"), [("\ufeffx = 1", EditOp("REPLACE", 0, 1, "x = 2\ny = 3\n")),
                                             ("\ufeff", EditOp("INSERT", 0, 0, "x = 2\ny = 3\n"))])
def test_a_byte_order_marked_text_without_line_endings_gets_new_lines_in_lf(original, op):
    normal, layout = normalise(original)
    restored = layout.restore(EditScript((op,)))
    assert restored.apply(original) == "\ufeffx = 2\ny = 3\n"
