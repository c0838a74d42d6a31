"""A text's layout — its line endings, its indentation and a byte order mark — kept out of what the model reads.

The model was trained on code with "\\n" line endings and indentation in spaces, and the tokenizer
merges indentation with the token after it: a file with "\\r\\n" endings or tab indentation would reach
the model as other tokens (and a longer prompt) than the same code written the usual way. So the model
reads the text normalised (`normalise`: "\\r\\n" -> "\\n", leading tabs expanded to TAB_WIDTH columns),
which keeps every line where it was, and a script computed on it is put back into the text's own
layout (`Layout.restore`): its new lines get the line endings and indentation characters of the lines
around them, so the diff and the written file keep "\\r\\n" and tabs. A UTF-8 byte order mark (U+FEFF first,
as editors on Windows write) is not read either, and stays the text's first character whatever the script
does to its first lines.
"""

from __future__ import annotations

import collections
import dataclasses
import functools

TAB_WIDTH = 4  # columns a leading tab stands for: one indentation level of the code the model learned from
BOM = "\ufeff"  # a byte order mark, decoded


@dataclasses.dataclass(frozen=True)
class Layout:
    """How a text (`original`) differs from the normalised text the model reads."""

    original: str
    lines: tuple[str, ...]  # the original's lines (tokenizer.edits.split_lines), without a byte order mark

    def restore(self, script):
        """`script` (an EditScript on the normalised text) on the original text: the same operations,
        their new lines in the original's line endings and indentation."""
        from patchcoder.tokenizer.edits import EditOp, EditScript, split_lines

        ops = []
        for op in script.ops:
            new = split_lines(op.text)
            text = "".join(self._line(line, op, k) for k, line in enumerate(new))
            ops.append(EditOp(op.kind, op.start, op.end, text))
        restored = EditScript(tuple(ops), script.sstub)
        if self.original.startswith(BOM) and ops and ops[0].start == 0:  # the script writes the first line
            return self._keeping_bom(restored)
        return restored

    def _keeping_bom(self, script):
        """`script`, which changes the first lines, as the script that makes its text with the byte order mark
        first: the mark is not on a line of its own, so an insertion before the first line, or its deletion,
        would move or drop it."""
        from patchcoder.tokenizer.edits import EditScript, edit_script

        unmarked = self.original[len(BOM):]
        new = script.apply(unmarked)
        new = new if new.startswith(BOM) or not new else BOM + new
        return EditScript(edit_script(self.original, new).ops, script.sstub)

    def _line(self, line: str, op, k: int) -> str:
        """New line `k` of `op`, written as the original writes the line it replaces (or the text's habit)."""
        body = line.lstrip(" \t")
        indent = line[:len(line) - len(body)]
        if self.has_tabs and indent:
            indent = self._indent_near(indent, op, k)
        if body.endswith("\n"):
            body = body[:-2 if body.endswith("\r\n") else -1] + self._ending(op, k)
        return indent + body

    def _ending(self, op, k: int) -> str:
        """The line ending for new line `k` of `op`: that of the old line it replaces, else the text's most usual."""
        if op.kind == "REPLACE":
            old = self.lines[min(op.start + k, op.end - 1)]
            if old.endswith("\n"):
                return "\r\n" if old.endswith("\r\n") else "\n"
        return self._usual_ending

    def _indent_near(self, normal: str, op, k: int) -> str:
        """The original indentation for the normalised `normal` at new line `k` of `op`, taken from the lines of
        the same top-level statement (a block mixing tabs and spaces must stay consistent, as Python requires:
        a TabError otherwise), nearest first from the line it replaces (a line beyond those replaced: from the
        last one replaced; an inserted line: from the line it goes before): that of a line indented as wide;
        wider than every line there, a narrower line's (one above first: the block's opener is above) and the
        rest in its characters; else the text's habit."""
        width, n = len(_normal_indent(normal)), len(self.lines)
        replaced = op.end - op.start if op.kind == "REPLACE" else 0
        anchor = min(op.start + k if k < replaced else op.end - 1 if replaced else op.start, n - 1)
        around = self._statement_around(anchor)
        widths = {i: len(_normal_indent(_indent(self.lines[i]))) for i in around}
        same = next((i for i in around if widths[i] == width), None)
        if same is not None:
            return _indent(self.lines[same])
        narrower = [i for i in around if 0 < widths[i] < width]
        if narrower:
            base = _indent(self.lines[next((i for i in narrower if i <= anchor), narrower[0])])
            rest = " " * (width - len(_normal_indent(base)))
            return base + (_tabbed(rest) if base.endswith("\t") else rest)
        return self._indents.get(_normal_indent(normal)) or _tabbed(normal)

    def _statement_around(self, anchor: int) -> list[int]:
        """Indices of the non-blank lines of the top-level statement at line `anchor`, nearest first (the earlier
        of two as near). An indented new line in place of (or before) an unindented line continues the statement
        before it."""
        if 0 <= anchor < len(self.lines) and _top_level(self.lines[anchor]):
            anchor -= 1
        if not 0 <= anchor < len(self.lines):
            return []
        lo, hi = statement_span(self.lines, anchor, anchor)
        return sorted((i for i in range(lo, hi) if self.lines[i].strip()), key=lambda i: (abs(i - anchor), i))

    @functools.cached_property
    def _usual_ending(self) -> str:
        crlf = sum(line.endswith("\r\n") for line in self.lines)
        return "\r\n" if crlf and 2 * crlf >= sum(line.endswith("\n") for line in self.lines) else "\n"

    @functools.cached_property
    def has_tabs(self) -> bool:
        """Whether some line is indented with a tab (else only line endings differ from the normal form)."""
        return any("\t" in _indent(line) for line in self.lines)

    @functools.cached_property
    def _indents(self) -> dict[str, str]:
        """Each normalised indentation -> the original indentation the text most often writes for it."""
        seen = collections.Counter((_normal_indent(_indent(line)), _indent(line)) for line in self.lines)
        out: dict[str, str] = {}
        for (normal, original), _ in seen.most_common():
            out.setdefault(normal, original)
        return out


def normalise(code: str) -> tuple[str, Layout | None]:
    """The text the model reads (line endings "\\n", indentation in spaces) and the layout to restore
    (None when the text is already normal). Line numbers do not change."""
    from patchcoder.tokenizer.edits import split_lines

    if "\r\n" not in code and "\t" not in code and not code.startswith(BOM):
        return code, None
    lines = split_lines(code.removeprefix(BOM))
    normal = "".join(_normal_line(line) for line in lines)
    return (code, None) if normal == code else (normal, Layout(code, tuple(lines)))


def statement_span(lines, first: int, last: int) -> tuple[int, int]:
    """[lo, hi) of the top-level statements holding lines `first` to `last` of `lines`: from the last unindented
    line at or above `first` to the next unindented line below `last` (Python checks indentation within them)."""
    lo = min(first, len(lines) - 1)
    while lo > 0 and not _top_level(lines[lo]):
        lo -= 1
    hi = last + 1
    while hi < len(lines) and not _top_level(lines[hi]):
        hi += 1
    return max(lo, 0), hi


def _top_level(line: str) -> bool:
    """A non-blank line that starts unindented: a top-level statement's first line."""
    return bool(line.strip()) and line[0] not in " \t"


def _indent(line: str) -> str:
    return line[:len(line) - len(line.lstrip(" \t"))]


def _normal_indent(indent: str) -> str:
    return indent.expandtabs(TAB_WIDTH)


def _normal_line(line: str) -> str:
    indent = _indent(line)
    if line.endswith("\r\n"):
        line = line[:-2] + "\n"
    return _normal_indent(indent) + line[len(indent):]


def _tabbed(indent: str) -> str:
    """Spaces as tabs (a remainder narrower than a tab stays spaces)."""
    width = len(indent.expandtabs(TAB_WIDTH))
    return "\t" * (width // TAB_WIDTH) + " " * (width % TAB_WIDTH)
