"""Does a rewritten text still parse? tree-sitter finds no ERROR or MISSING node and, for Python, the compiler
accepts it; `Checker` answers for many rewrites of one source cheaply."""

from __future__ import annotations

import bisect
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


class Checker:
    """`parses(rewrite.code)`, made cheap for many rewrites of one source. In Python a top-level statement starts
    at column 0 and parses alone, so a rewrite inside one is checked on that statement only: tree-sitter parses it
    and the compiler compiles it, which costs the statement's length rather than the file's (tree-sitter's
    incremental reparse does not help here: after an edit, the Python grammar's indentation scanner makes it
    reparse about the whole file). Other rewrites, and other languages, reparse incrementally from the original's
    tree and, for Python, compile the whole text. The same answers as `parses` on the whole rewritten text (tested
    rewrite by rewrite); benchmarks/synth.py measures the cost."""

    def __init__(self, source: bytes, tree, parser, language: str):
        self.source, self.tree, self.parser, self.language = source, tree, parser, language
        self.starts = line_starts(source)
        # each top-level statement with what follows it up to the next one (blank lines, comments, a `;`)
        starts = [c.start_byte for c in tree.root_node.children]
        self.top = list(zip(starts, [*starts[1:], len(source)][:len(starts)], strict=True))  # none in an empty file

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
        if not start <= rewrite.start or b"\n" not in self.source[rewrite.end:end]:
            return None
        if end < len(self.source) and self.source[end - 1:end] != b"\n":
            return None
        return start, end

    def parses(self, rewrite: Rewrite) -> bool:
        text = rewrite.text.encode()
        if self.language == "python" and (span := self._statement(rewrite)) is not None:
            start, end = span
            chunk = self.source[start:rewrite.start] + text + self.source[rewrite.end:end]
            return not self.parser.parse(chunk).root_node.has_error and compiles(chunk)
        new = self.source[:rewrite.start] + text + self.source[rewrite.end:]
        tree = self.tree.copy()
        new_end = rewrite.start + len(text)
        tree.edit(rewrite.start, rewrite.end, new_end, self._point(rewrite.start), self._point(rewrite.end),
                  self._point(new_end, text, rewrite.start))
        if self.parser.parse(new, tree).root_node.has_error:
            return False
        return self.language != "python" or compiles(new)
