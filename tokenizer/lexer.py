"""Syntax-aware pre-tokens: tree-sitter leaves, whitespace runs, and words inside comments and strings.

Everything here works on UTF-8 bytes (tree-sitter's offsets are byte offsets, and the BPE is byte-level),
so a piece boundary never needs a byte→character map. A text is cut into *pieces* whose concatenation is
the text; BPE merges never cross a piece boundary. Every piece containing a newline ends with it, so the
pieces of a text group exactly into its lines (what line markers and edit scripts need).

Languages with a grammar wheel (GRAMMARS) are parsed with tree-sitter; text that no leaf covers (gaps,
and ERROR leaves of code that does not parse), files whose whole tree is an ERROR, and languages without
a grammar go through the regex lexer PIECE_RE. Parses are cached by content hash, because parsing is the expensive step.
"""

from __future__ import annotations

import hashlib
import importlib
import re
import threading
from collections import OrderedDict

# language name (patchcoder.ground.languages) -> (module, function returning the grammar pointer)
GRAMMARS: dict[str, tuple[str, str]] = {
    "python": ("tree_sitter_python", "language"),
    "javascript": ("tree_sitter_javascript", "language"),
    "typescript": ("tree_sitter_typescript", "language_typescript"),
    "tsx": ("tree_sitter_typescript", "language_tsx"),
    "java": ("tree_sitter_java", "language"),
    "go": ("tree_sitter_go", "language"),
    "rust": ("tree_sitter_rust", "language"),
    "c": ("tree_sitter_c", "language"),
    "cpp": ("tree_sitter_cpp", "language"),
}

# Multi-byte operators the regex lexer keeps whole (longest first); any other punctuation byte is its own piece.
_OPERATORS = [
    b">>>=", b"<<=", b">>=", b"**=", b"//=", b"...", b"===", b"!==", b"<=>", b"->*", b"::",
    b"->", b"=>", b"==", b"!=", b"<=", b">=", b"&&", b"||", b"<<", b">>", b"**", b"//", b"++", b"--",
    b"+=", b"-=", b"*=", b"/=", b"%=", b"&=", b"|=", b"^=", b":=", b"?.", b"??", b"@=",
]
# Whitespace: a run ending at (and including) one newline, or a run with no newline. Words: ASCII word
# bytes and every byte >= 0x80 (so a multi-byte UTF-8 character is never cut). Numbers keep their dot/exponent.
PIECE_RE = re.compile(
    rb"[^\S\n]*\n|[^\S\n]+"
    rb"|\d[\d_]*(?:\.\d[\d_]*)?(?:[eE][+-]?\d+)?[A-Za-z]*"
    rb"|[A-Za-z0-9_\x80-\xff]+"
    rb"|" + b"|".join(re.escape(op) for op in _OPERATORS) + rb"|[\x00-\xff]",
)

# Leaf types whose text is prose or data rather than code: split into words with PIECE_RE.
_WHITESPACE = re.compile(rb"\s")
_HAS_WORD = re.compile(rb"[A-Za-z0-9_\x80-\xff]")
_TEXTUAL = ("comment", "string", "char", "text", "heredoc", "regex", "template", "ERROR", "doc")


def regex_pieces(data: bytes) -> list[bytes]:
    """Cut `data` with the regex lexer; the pieces concatenate back to `data`."""
    return PIECE_RE.findall(data)


class _Grammars:
    """Lazily built tree-sitter parsers, one per (thread, language): a Parser is not thread-safe."""

    def __init__(self) -> None:
        self._languages: dict[str, object] = {}
        self._local = threading.local()
        self._textual: dict[str, frozenset[int]] = {}

    def parser(self, language: str):
        parsers = self._local.__dict__.setdefault("parsers", {})
        if language not in parsers:
            import tree_sitter

            if language not in self._languages:
                module_name, function = GRAMMARS[language]
                module = importlib.import_module(module_name)
                self._languages[language] = tree_sitter.Language(getattr(module, function)())
            parsers[language] = tree_sitter.Parser(self._languages[language])
        return parsers[language]

    def textual_kinds(self, language: str) -> frozenset[int]:
        """Node kind ids of comments, strings and other prose-like leaves, split into words."""
        if language not in self._textual:
            grammar = self._languages[language]
            self._textual[language] = frozenset(
                kind for kind in range(grammar.node_kind_count)
                if any(word in (grammar.node_kind_for_id(kind) or "") for word in _TEXTUAL)
            )
        return self._textual[language]


_GRAMMARS = _Grammars()


def tree_sitter_parser(language: str):
    """This thread's tree-sitter Parser for `language` (a key of GRAMMARS), shared with the lexer."""
    if language not in GRAMMARS:
        raise KeyError(f"no tree-sitter grammar for {language!r} (have: {', '.join(sorted(GRAMMARS))})")
    return _GRAMMARS.parser(language)


def tree_sitter_pieces(data: bytes, language: str) -> list[bytes]:
    """Cut `data` at tree-sitter leaf boundaries (see the module docstring)."""
    tree = _GRAMMARS.parser(language).parse(data)
    if tree.root_node.is_error:  # nothing parsed (e.g. not this language at all): leaves would mislead
        return regex_pieces(data)
    textual = _GRAMMARS.textual_kinds(language)
    pieces: list[bytes] = []
    extend = pieces.extend
    append = pieces.append
    findall = PIECE_RE.findall
    has_space = _WHITESPACE.search
    pos = 0
    cursor = tree.walk()
    first_child, next_sibling, parent = cursor.goto_first_child, cursor.goto_next_sibling, cursor.goto_parent
    while True:
        if first_child():
            continue
        node = cursor.node
        start, end = node.start_byte, node.end_byte
        if end > start and start >= pos:
            if start > pos:
                if start - pos == 1 and data[pos] == 32:  # the usual single space
                    append(b" ")
                else:
                    extend(findall(data, pos, start))
            leaf = data[start:end]
            if end - start > 1 and (has_space(leaf) or (node.kind_id in textual and _HAS_WORD.search(leaf))):
                extend(findall(leaf))
            else:
                append(leaf)
            pos = end
        while not next_sibling():
            if not parent():
                if pos < len(data):
                    extend(findall(data, pos))
                return pieces


class Lexer:
    """Pre-tokens of source texts, with an LRU cache keyed by (language, content hash).

    `pieces(data, language)` returns the cut of `data` (bytes); languages without a grammar, and
    `language=None`, use the regex lexer. The cache holds at most `cache_size` texts and `cache_bytes`
    bytes of source (the pieces take about ten times that in memory).
    """

    def __init__(self, cache_size: int = 512, cache_bytes: int = 16_000_000) -> None:
        self.cache_size = cache_size
        self.cache_bytes = cache_bytes
        self._cache: OrderedDict[tuple[str | None, bytes], tuple[list[bytes], int]] = OrderedDict()
        self._cached_bytes = 0
        self._lock = threading.Lock()
        self.parsed = 0  # how many texts tree-sitter actually parsed (cache misses), for tests and stats

    def pieces(self, data: bytes, language: str | None = None) -> list[bytes]:
        if language not in GRAMMARS or not data:
            return regex_pieces(data)
        key = (language, hashlib.blake2b(data, digest_size=16).digest())
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                return hit[0]
        result = tree_sitter_pieces(data, language)
        with self._lock:
            self.parsed += 1
            if key not in self._cache:
                self._cache[key] = (result, len(data))
                self._cached_bytes += len(data)
            while self._cache and (len(self._cache) > self.cache_size or self._cached_bytes > self.cache_bytes):
                _, (_, size) = self._cache.popitem(last=False)
                self._cached_bytes -= size
        return result


_SHARED: Lexer | None = None


def shared_lexer() -> Lexer:
    """A process-wide Lexer, for callers that do not hold a CodeTokenizer (whose `lexer` they would share)."""
    global _SHARED
    if _SHARED is None:
        _SHARED = Lexer()
    return _SHARED


def group_lines(pieces: list[bytes]) -> list[list[bytes]]:
    """Group pieces into lines: a line ends after a piece ending with a newline (the last may not)."""
    lines: list[list[bytes]] = []
    current: list[bytes] = []
    for piece in pieces:
        current.append(piece)
        if piece.endswith(b"\n"):
            lines.append(current)
            current = []
    if current:
        lines.append(current)
    return lines

