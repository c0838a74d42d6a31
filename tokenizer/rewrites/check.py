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
    """`parses(rewrite.code)`, made cheap for many rewrites of one source: tree-sitter reparses incrementally
    from the original's tree, and Python compiles only the top-level statement (it starts at column 0, so it
    compiles alone) that holds the change: 4× cheaper than both whole-file checks on a sample of stdlib modules,
    more on large files (benchmarks/synth.py)."""

    def __init__(self, source: bytes, tree, parser, language: str):
        self.source, self.tree, self.parser, self.language = source, tree, parser, language
        self.starts = line_starts(source)
        self.top = [(c.start_byte, c.end_byte) for c in tree.root_node.children]

    def _point(self, offset: int, text: bytes = b"", base: int = 0) -> tuple[int, int]:
        if not text:
            row = bisect.bisect_right(self.starts, offset) - 1
            return row, offset - self.starts[row]
        row, column = self._point(base)
        newlines = text.count(b"\n")
        if newlines:
            return row + newlines, len(text) - text.rfind(b"\n") - 1
        return row, column + len(text)

    def parses(self, rewrite: Rewrite) -> bool:
        text = rewrite.text.encode()
        new = self.source[:rewrite.start] + text + self.source[rewrite.end:]
        tree = self.tree.copy()
        new_end = rewrite.start + len(text)
        tree.edit(rewrite.start, rewrite.end, new_end, self._point(rewrite.start), self._point(rewrite.end),
                  self._point(new_end, text, rewrite.start))
        if self.parser.parse(new, tree).root_node.has_error:
            return False
        if self.language != "python":
            return True
        chunk = new
        i = bisect.bisect_right(self.top, (rewrite.start, float("inf"))) - 1
        if i >= 0 and self.top[i][0] <= rewrite.start and rewrite.end <= self.top[i][1]:
            start, end = self.top[i]
            chunk = new[start:end + len(text) - (rewrite.end - rewrite.start)]
        return compiles(chunk)
