"""The model reads code with "\\n" endings and space indentation; patches keep the file's own layout."""

from __future__ import annotations

import pytest

from patchcoder.layout import normalise
from patchcoder.tokenizer.edits import EditOp, EditScript

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
