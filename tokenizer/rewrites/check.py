"""Does a rewritten text still parse? tree-sitter finds no ERROR or MISSING node and, for Python, the compiler
accepts it; `Checker` answers for many rewrites of one source cheaply."""

from __future__ import annotations

import bisect
import itertools
import warnings

from patchcoder.ground.errors import PatchcoderError
from patchcoder.tokenizer.rewrites.rewrite import Rewrite, line_starts

LANGUAGES = ("python", "javascript", "typescript", "tsx")


class UnsupportedLanguage(PatchcoderError):
    """No rewrite engine for this language."""


def parser_for(language: str):
    """This thread's tree-sitter parser for `language`, shared with the lexer; UnsupportedLanguage when the
    engine has no rules for it."""
    if language not in LANGUAGES:
        raise UnsupportedLanguage(f"no rewrite engine for {language!r} (supported: {', '.join(LANGUAGES)})")
    from patchcoder.tokenizer.lexer import tree_sitter_parser  # one parser per thread, shared with the lexer

    return tree_sitter_parser(language)


def parses(code: str, language: str = "python") -> bool:
    """True when tree-sitter finds no ERROR or MISSING node (and, for Python, the compiler accepts it)."""
    data = code.encode()
    if parser_for(language).parse(data).root_node.has_error:
        return False
    return language != "python" or compiles(data)


def compiles(data: bytes) -> bool:
    """Python's compiler accepts `data` (warnings silenced)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            compile(data, "<rewrite>", "exec", dont_inherit=True)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return False
    return True


SHARE = 8
"""a Python rewrite is checked on its top-level statement alone when that is at most 1/SHARE of the file"""


class Checker:
    """`parses(rewrite.code)`, made cheap for many rewrites of one source. tree-sitter reparses the rewritten file
    incrementally from the original's tree, which still costs about the file's length per rewrite (1.3 ms at
    1,200 lines: ranking every line of a long file grows as its square). In Python a top-level statement parses
    alone, so a rewrite inside one that is small beside the file (at most 1/SHARE of it) is checked on that statement
    alone, parsed and compiled; in a larger one (a class that is most of the file), the file is reparsed and the
    statement compiled. Other languages: the incremental reparse. The same answers as `parses` on the whole
    rewritten text (tested rewrite by rewrite); benchmarks/synth.py measures the cost."""

    def __init__(self, source: bytes, tree, parser, language: str):
        self.source, self.tree, self.parser, self.language = source, tree, parser, language
        self.starts = line_starts(source)
        # each top-level statement with what follows it up to the next one (blank lines, comments, a `;`)
        self.top = list(itertools.pairwise([*(c.start_byte for c in tree.root_node.children), len(source)]))

    def _point(self, offset: int, text: bytes = b"", base: int = 0) -> tuple[int, int]:
        if not text:
            row = bisect.bisect_right(self.starts, offset) - 1
            return row, offset - self.starts[row]
        row, column = self._point(base)
        newlines = text.count(b"\n")
        if newlines:
            return row + newlines, len(text) - text.rfind(b"\n") - 1
        return row, column + len(text)

    def _statement(self, rewrite: Rewrite) -> tuple[int, int] | None:
        """The bytes of the top-level statement that holds all of `rewrite`, with what follows it up to the next
        statement, if the line the rewrite ends on ends before that next statement, which begins a line of its own
        (else the rewritten text could run into it: the whole file is checked)."""
        i = bisect.bisect_right(self.top, (rewrite.start, float("inf"))) - 1
        if i < 0:
            return None
        start, end = self.top[i]
        if b"\n" not in self.source[rewrite.end:end]:  # (start <= rewrite.start: bisect found it so)
            return None
        if end < len(self.source) and self.source[end - 1:end] != b"\n":
            return None
        return start, end

    def parses(self, rewrite: Rewrite) -> bool:
        text = rewrite.text.encode()
        span = self._statement(rewrite) if self.language == "python" else None
        if span is not None and (span[1] - span[0]) * SHARE <= len(self.source):  # a small statement: alone
            chunk = self.source[span[0]:rewrite.start] + text + self.source[rewrite.end:span[1]]
            return not self.parser.parse(chunk).root_node.has_error and compiles(chunk)
        new = self.source[:rewrite.start] + text + self.source[rewrite.end:]
        tree = self.tree.copy()
        new_end = rewrite.start + len(text)
        tree.edit(rewrite.start, rewrite.end, new_end, self._point(rewrite.start), self._point(rewrite.end),
                  self._point(new_end, text, rewrite.start))
        if self.parser.parse(new, tree).root_node.has_error:
            return False
        if self.language != "python":
            return True
        if span is None:
            return compiles(new)
        return compiles(new[span[0]:span[1] + len(text) - (rewrite.end - rewrite.start)])
