"""Single-statement rewrites of source code: the bugs of the synthetic training data, and the candidate fixes
`suggest` can rank.

A `Rewrite` replaces one byte range of a text (an operator, a name, an argument list, a line...). Sites are
found on the tree-sitter tree; `enumerate_rewrites` lists every rewrite of every class, and `inject_bugs`
draws some at random — class first (weighted), then site, then replacement, so that rare classes are not drowned by
the many identifier sites — keeping only those whose result still parses (BugLab-style self-supervision).
The fix of an injected bug is the rewrite's inverse (buggy → original), which restores the text exactly.

Languages: Python, JavaScript and TypeScript (every class below); others raise `UnsupportedLanguage`.
"""

from __future__ import annotations

import bisect
import dataclasses
import functools
import random
import re
import warnings
from collections.abc import Callable, Iterable

from patchcoder.ground.errors import PatchcoderError

# Mutation classes (the bug a rewrite introduces). `sstub` on a Rewrite names the class of its *fix* in the
# tokenizer's taxonomy (patchcoder.ground.sstub) where one matches, otherwise a name of our own.
KINDS = (
    "wrong_binary_operator",      # a + b → a - b
    "wrong_comparison_operator",  # a < b → a <= b, x in y → x not in y
    "wrong_boolean_operator",     # a and b → a or b
    "wrong_assignment_operator",  # x += 1 → x -= 1
    "swapped_operands",           # a - b → b - a
    "variable_misuse",            # use of another variable bound earlier in the same function
    "wrong_number",               # off by one, sign, 0/1/-1
    "wrong_boolean",              # True → False
    "wrong_offset",               # x → x + 1, x - 1 → x
    "swapped_arguments",          # f(a, b) → f(b, a)
    "missing_argument",           # f(a, b) → f(a)
    "extra_argument",             # f(a) → f(a, b)
    "dropped_not",                # not x → x
    "added_not",                  # if x: → if not x:
    "wrong_function_name",        # any(...) → all(...)
    "wrong_attribute_name",       # xs.append(y) → xs.extend(y), self.left → self.right
    "wrong_literal_shape",        # [x] → x, (x,) → (x), [] → {}
    "deleted_statement",          # a line removed (its fix is an INSERT)
    "extra_statement",            # a line duplicated or copied (its fix is a DELETE)
)

MESSAGES = {kind: "Fix " + kind.replace("_", " ") for kind in KINDS}
MESSAGES.update({
    "swapped_operands": "Fix swapped operands",
    "swapped_arguments": "Fix swapped call arguments",
    "missing_argument": "Add missing call argument",
    "extra_argument": "Remove extra call argument",
    "dropped_not": "Fix missing negation",
    "added_not": "Remove wrong negation",
    "wrong_offset": "Fix off-by-one offset",
    "deleted_statement": "Add missing statement",
    "extra_statement": "Remove extra statement",
})

# sstub class of the fix, per kind (a few sites override it: a sign change is a unary-operator fix).
_SSTUB = {
    "wrong_binary_operator": "change_binary_operator",
    "wrong_comparison_operator": "change_binary_operator",
    "wrong_boolean_operator": "change_binary_operator",
    "wrong_assignment_operator": "change_binary_operator",
    "swapped_operands": "swap_operands",
    "variable_misuse": "change_identifier",
    "wrong_number": "change_numeric_literal",
    "wrong_boolean": "change_boolean_literal",
    "wrong_offset": "change_offset",
    "swapped_arguments": "swap_arguments",
    "missing_argument": "more_arguments",
    "extra_argument": "fewer_arguments",
    "dropped_not": "change_unary_operator",
    "added_not": "change_unary_operator",
    "wrong_function_name": "change_identifier",
    "wrong_attribute_name": "change_attribute",
    "wrong_literal_shape": "change_literal_shape",
    "deleted_statement": "insert_statement",
    "extra_statement": "delete_statement",
}

LANGUAGES = ("python", "javascript", "typescript", "tsx")

# How often `inject_bugs` draws a class, relative to the others, when a file offers it: 1 / the fraction of
# files offering the class (measured on 595 stdlib and site-packages modules: an augmented assignment is in
# 25% of files, a call with arguments in 86%), so that classes come out about equally often overall.
DRAW_WEIGHTS = {
    "wrong_binary_operator": 1.8, "wrong_comparison_operator": 1.5, "wrong_boolean_operator": 1.9,
    "wrong_assignment_operator": 4.0, "swapped_operands": 1.8, "variable_misuse": 1.3, "wrong_number": 1.6,
    "wrong_boolean": 1.8, "wrong_offset": 1.8, "swapped_arguments": 1.4, "missing_argument": 1.2,
    "extra_argument": 1.3, "dropped_not": 2.0, "added_not": 1.4, "wrong_function_name": 1.6,
    "wrong_attribute_name": 1.4, "wrong_literal_shape": 1.6, "deleted_statement": 1.3, "extra_statement": 1.4,
}


class UnsupportedLanguage(PatchcoderError):
    """No rewrite engine for this language."""


@dataclasses.dataclass(frozen=True)
class Rewrite:
    """`source[start:end]` (UTF-8 byte offsets) replaced by `text`; `code` is the rewritten source."""

    kind: str
    start: int
    end: int
    text: str
    sstub: str
    source: bytes = dataclasses.field(repr=False, compare=False)

    @functools.cached_property
    def code(self) -> str:
        return (self.source[:self.start] + self.text.encode() + self.source[self.end:]).decode()

    @property
    def message(self) -> str:
        return MESSAGES[self.kind]

    @functools.cached_property
    def lines(self) -> tuple[int, int]:
        """0-based [first, last) lines of the source that the rewrite replaces; (i, i) inserts before line i."""
        first = self.source.count(b"\n", 0, self.start)
        if self._inserts_lines:
            return first, first
        last = first + self.source.count(b"\n", self.start, self.end)
        return first, last if self._ends_a_line else last + 1

    @property
    def new_lines(self) -> str:
        """What lines [first, last) of the source (`lines`) become: the rewrite with the rest of the
        lines it touches, whole lines, without building the whole rewritten `code`."""
        if self._inserts_lines:
            return self.text
        begin = self.source.rfind(b"\n", 0, self.start) + 1
        stop = self.end if self._ends_a_line else self.source.find(b"\n", self.end) + 1 or len(self.source)
        return (self.source[begin:self.start] + self.text.encode() + self.source[self.end:stop]).decode()

    @property
    def _inserts_lines(self) -> bool:
        return self.start == self.end and (self.start == 0 or self.source[self.start - 1] == 10)

    @property
    def _ends_a_line(self) -> bool:
        return self.end > self.start and self.source[self.end - 1] == 10

    def inverse(self) -> Rewrite:
        """The rewrite of `code` that restores `source` exactly (the fix of an injected bug)."""
        new_end = self.start + len(self.text.encode())
        return Rewrite(self.kind, self.start, new_end, self.source[self.start:self.end].decode(), self.sstub,
                       self.code.encode())


@dataclasses.dataclass(frozen=True)
class _Site:
    """One span with one or more alternative replacements, all of one kind."""

    kind: str
    start: int
    end: int
    texts: tuple[str, ...]
    sstub: str | None = None


# ---------------------------------------------------------------------------------------------
# Public API


def enumerate_rewrites(code: str, language: str = "python", *, lines: tuple[int, int] | None = None,
                       kinds: Iterable[str] | None = None, check: bool = False) -> list[Rewrite]:
    """Every single-statement rewrite of `code`, in source order.

    `lines` keeps only rewrites touching the 0-based line range [first, last); `kinds` keeps only those
    classes; `check` keeps only rewrites whose result parses (one parse each, so it costs).
    """
    analysis = _analyse(code, language)
    if analysis is None:
        return []
    source, sites, checker = analysis
    sites = _dedup(sites)
    wanted = _kinds(kinds)
    span = None
    if lines is not None:
        starts = _line_starts(source)
        span = (starts[lines[0]] if lines[0] < len(starts) else len(source),
                starts[lines[1]] if lines[1] < len(starts) else len(source))
    out = []
    for site in sites:
        if site.kind not in wanted:
            continue
        if span is not None and not (site.start < span[1] and (site.end > span[0] or site.start >= span[0])):
            continue
        for text in site.texts:
            rewrite = _rewrite(site, text, source)
            if not check or checker.parses(rewrite):
                out.append(rewrite)
    return out


def rewrite_checker(code: str, language: str = "python") -> Callable[[Rewrite], bool] | None:
    """`parses(rewrite)` for rewrites of `code` (from `enumerate_rewrites(..., check=False)`), the check
    `check=True` makes, so that a caller can check only the few rewrites it keeps; None when `code`
    itself does not parse."""
    analysis = _analyse(code, language, sites=False)
    return None if analysis is None else analysis[2].parses


def inject_bugs(code: str, rng: random.Random, count: int = 1, language: str = "python", *,
                kinds: Iterable[str] | None = None, max_tries: int = 30) -> list[Rewrite]:
    """Up to `count` distinct rewrites of `code` whose result parses, drawn with `rng` (deterministic given
    its state): a class among those with a site (weighted by DRAW_WEIGHTS), then a site, then a replacement.

    Returns [] when `code` does not parse or offers no site. The original must parse cleanly, so that
    "still parses" is a meaningful check on the result.
    """
    analysis = _analyse(code, language)
    if analysis is None:
        return []
    source, sites, checker = analysis
    wanted = _kinds(kinds)
    by_kind: dict[str, list[_Site]] = {}
    for site in sites:
        if site.kind in wanted:
            by_kind.setdefault(site.kind, []).append(site)
    chosen: list[Rewrite] = []
    seen: set[str] = set()  # resulting texts: `f(a, a)` loses its first or its second `a` alike
    tries = 0
    while len(chosen) < count and by_kind and tries < max_tries + count:
        tries += 1
        present = sorted(by_kind)
        kind = rng.choices(present, weights=[DRAW_WEIGHTS[k] for k in present])[0]
        options = by_kind[kind]
        i = rng.randrange(len(options))
        site = options[i]
        text = rng.choice(site.texts)
        # a site is drawn once: a second draw would repeat the bug, or its sibling replacement
        options[i] = options[-1]
        options.pop()
        if not options:
            del by_kind[kind]
        rewrite = _rewrite(site, text, source)
        if rewrite.code in seen or not checker.parses(rewrite):
            continue
        seen.add(rewrite.code)
        chosen.append(rewrite)
    return chosen


def inject_bug(code: str, rng: random.Random, language: str = "python", *,
               kinds: Iterable[str] | None = None) -> Rewrite | None:
    """One random rewrite of `code` that still parses (see `inject_bugs`), or None."""
    found = inject_bugs(code, rng, 1, language, kinds=kinds)
    return found[0] if found else None


def parses(code: str, language: str = "python") -> bool:
    """True when tree-sitter finds no ERROR or MISSING node (and, for Python, the compiler accepts it)."""
    data = code.encode()
    if _parser(language).parse(data).root_node.has_error:
        return False
    return language != "python" or _compiles(data)


# ---------------------------------------------------------------------------------------------
# Plumbing


def _kinds(kinds: Iterable[str] | None) -> frozenset[str]:
    if kinds is None:
        return frozenset(KINDS)
    kinds = frozenset(kinds)
    unknown = kinds - set(KINDS)
    if unknown:
        raise PatchcoderError(f"unknown mutation class(es): {', '.join(sorted(unknown))}; "
                              f"known: {', '.join(KINDS)}")
    return kinds


def _parser(language: str):
    if language not in LANGUAGES:
        raise UnsupportedLanguage(f"no rewrite engine for {language!r} (supported: {', '.join(LANGUAGES)})")
    from patchcoder.tokenizer.lexer import tree_sitter_parser  # one parser per thread, shared with the lexer

    return tree_sitter_parser(language)


def _line_starts(source: bytes) -> list[int]:
    return [0] + [m.end() for m in re.finditer(rb"\n", source)]


def _rewrite(site: _Site, text: str, source: bytes) -> Rewrite:
    return Rewrite(site.kind, site.start, site.end, text, site.sstub or _SSTUB[site.kind], source)


def _analyse(code: str, language: str, sites: bool = True) -> tuple[bytes, list[_Site], _Checker] | None:
    """(source bytes, sites, checker) of a text that parses cleanly, else None; sites=False skips
    collecting the rewrite sites (the costly part) and gives an empty list."""
    source = code.encode()
    parser = _parser(language)
    tree = parser.parse(source)
    if tree.root_node.has_error:
        return None
    found = (_PythonSites if language == "python" else _JavaScriptSites)(source).collect(tree.root_node) if sites else []
    return source, found, _Checker(source, tree, parser, language)



class _Checker:
    """`parses(rewrite.code)`, made cheap for many rewrites of one source: tree-sitter reparses incrementally
    from the original's tree, and Python compiles only the top-level statement (it starts at column 0, so it
    compiles alone) that holds the change: 4× cheaper than both whole-file checks on a sample of stdlib modules,
    more on large files (benchmarks/synth.py)."""

    def __init__(self, source: bytes, tree, parser, language: str):
        self.source, self.tree, self.parser, self.language = source, tree, parser, language
        self.starts = _line_starts(source)
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
        return _compiles(chunk)


def _compiles(data: bytes) -> bool:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            compile(data, "<rewrite>", "exec", dont_inherit=True)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return False
    return True


# ---------------------------------------------------------------------------------------------
# Python

_BINARY_ALTERNATIVES = {
    "+": ("-",), "-": ("+",), "*": ("/", "+"), "/": ("//", "*"), "//": ("/", "%"), "%": ("//",),
    "**": ("*",), "<<": (">>",), ">>": ("<<",), "&": ("|", "^"), "|": ("&", "^"), "^": ("|", "&"), "@": ("*",),
}
_COMPARISON_ALTERNATIVES = {
    "<": ("<=", ">"), "<=": ("<", ">="), ">": (">=", "<"), ">=": (">", "<="), "==": ("!=",), "!=": ("==",),
    "is": ("is not",), "is not": ("is",), "in": ("not in",), "not in": ("in",), "<>": (),
}
_ASSIGNMENT_ALTERNATIVES = {
    "+=": ("-=", "="), "-=": ("+=", "="), "*=": ("/=", "+="), "/=": ("*=", "//="), "//=": ("/=",),
    "%=": ("//=",), "**=": ("*=",), "|=": ("&=", "="), "&=": ("|=",), "^=": ("|=",), "<<=": (">>=",),
    ">>=": ("<<=",), "@=": ("*=",),
}
_NONCOMMUTATIVE = frozenset({"-", "/", "//", "%", "**", "<<", ">>", "@", "<", "<=", ">", ">=", "in", "not in"})
_ORDERING = frozenset({"<", "<=", ">", ">="})
# Calls whose result is a count or an index, the operands of comparisons worth shifting by one.
_COUNTS = frozenset({"len", "int", "min", "max", "abs", "sum", "ord", "round", "count", "index", "find", "rfind",
                     "tell", "bit_length", "size", "length", "qsize"})
_PRIMARY = frozenset({"identifier", "attribute", "call", "subscript", "integer", "float", "string",
                      "concatenated_string", "true", "false", "none", "parenthesized_expression", "list",
                      "tuple", "dictionary", "set"})
_OFFSETTABLE = frozenset({"identifier", "attribute", "call", "subscript"})
_STRINGS = frozenset({"string", "concatenated_string"})
_NOT_NEGATABLE = frozenset({"not_operator", "named_expression", "lambda", "conditional_expression",
                            "boolean_operator", "list_splat", "parenthesized_list_splat", "yield", "expression_list"})
# Direct identifier children of these nodes are reads of a variable (fields excepted below).
_READ_PARENTS = frozenset({
    "binary_operator", "comparison_operator", "boolean_operator", "not_operator", "unary_operator",
    "argument_list", "subscript", "slice", "return_statement", "list", "tuple", "set", "pair",
    "conditional_expression", "if_statement", "elif_clause", "while_statement", "parenthesized_expression",
    "assert_statement", "await", "list_splat", "dictionary_splat", "expression_list", "augmented_assignment",
    "assignment", "for_statement", "keyword_argument", "attribute", "delete_statement", "raise_statement",
})
_READ_FIELD = {"assignment": "right", "for_statement": "right", "keyword_argument": "value", "attribute": "object",
               "subscript": None}
_SIMPLE_STATEMENTS = frozenset({"expression_statement", "return_statement", "raise_statement", "assert_statement",
                                "delete_statement", "break_statement", "continue_statement"})
_PATTERNS = frozenset({"pattern_list", "tuple_pattern", "list_pattern", "tuple", "list", "parenthesized_expression"})
_TRAILING = re.compile(rb"[ \t]*(?:#[^\n]*)?(?:\n|$)")

# Names programmers confuse (each is a group of mutual alternatives), besides similar names in the same file.
_CONFUSABLE_GROUPS = (
    ("any", "all"), ("min", "max"), ("append", "extend"), ("startswith", "endswith"), ("keys", "values", "items"),
    ("lower", "upper"), ("strip", "lstrip", "rstrip"), ("find", "rfind"), ("index", "rindex"), ("split", "rsplit"),
    ("remove", "discard"), ("get", "pop"), ("isinstance", "issubclass"), ("getattr", "hasattr"),
    ("sorted", "reversed"), ("floor", "ceil"), ("read", "readline", "readlines"), ("encode", "decode"),
    ("dumps", "loads"), ("dump", "load"), ("add", "update"), ("union", "intersection", "difference"),
    ("debug", "info", "warning", "error"), ("left", "right"), ("start", "end"), ("first", "last"),
    ("width", "height"), ("x", "y"), ("row", "col"), ("top", "bottom"), ("head", "tail"), ("stdout", "stderr"),
    ("src", "dst"), ("source", "target"), ("old", "new"), ("prev", "next"), ("major", "minor"),
    ("isdigit", "isalpha", "isalnum"), ("isfile", "isdir", "exists"), ("copy", "deepcopy"),
    ("match", "search", "fullmatch"), ("insert", "append"), ("setdefault", "get"), ("basename", "dirname"),
    ("list", "tuple", "set"), ("int", "float"), ("bytes", "str"), ("map", "filter"),
    ("setattr", "getattr"), ("lstrip", "rstrip"), ("ljust", "rjust"), ("readlines", "splitlines"),
)
_JS_CONFUSABLE_GROUPS = (
    ("some", "every"), ("push", "unshift"), ("pop", "shift"), ("slice", "splice"), ("min", "max"), ("floor", "ceil"),
    ("indexOf", "lastIndexOf"), ("startsWith", "endsWith"), ("keys", "values", "entries"), ("map", "forEach"),
    ("filter", "find"), ("find", "findIndex"), ("toLowerCase", "toUpperCase"), ("substring", "substr"),
    ("log", "error", "warn"), ("setTimeout", "setInterval"), ("resolve", "reject"), ("add", "delete"),
    ("parseInt", "parseFloat"), ("trimStart", "trimEnd"), ("then", "catch"), ("left", "right"), ("top", "bottom"),
    ("width", "height"), ("x", "y"), ("start", "end"), ("first", "last"), ("prev", "next"), ("min", "max"),
    ("addEventListener", "removeEventListener"), ("appendChild", "removeChild"), ("stringify", "parse"),
    ("querySelector", "querySelectorAll"), ("getItem", "setItem"), ("call", "apply"), ("assign", "freeze"),
)


def _confusable_table(groups) -> dict[str, tuple[str, ...]]:
    table: dict[str, tuple[str, ...]] = {}
    for group in groups:
        for name in group:
            table[name] = tuple(dict.fromkeys(table.get(name, ()) + tuple(n for n in group if n != name)))
    return table


_CONFUSABLE = _confusable_table(_CONFUSABLE_GROUPS)
_JS_CONFUSABLE = _confusable_table(_JS_CONFUSABLE_GROUPS)
_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")


@functools.lru_cache(maxsize=65536)
def _words(name: str) -> tuple[str, ...]:
    return tuple(w.lower() for w in _WORD.findall(name))


def similar_names(name: str, pool: Iterable[str], confusable: dict[str, tuple[str, ...]] | None = None) -> list[str]:
    """Names a programmer could write instead of `name`: its confusable alternatives (any/all, min/max, ...;
    Python's by default) and the names of `pool` that differ from it in exactly one word (read_header/read_body,
    getX/setX)."""
    out = list((_CONFUSABLE if confusable is None else confusable).get(name, ()))
    words = _words(name)
    if len(words) >= 2:
        for other in pool:
            if other != name and other not in out:
                theirs = _words(other)
                if len(theirs) == len(words) and sum(a != b for a, b in zip(words, theirs, strict=True)) == 1:
                    out.append(other)
    return out


class _Scope:
    """Variables bound so far in one function, in binding order (the walk is in source order)."""

    __slots__ = ("names",)

    def __init__(self) -> None:
        self.names: dict[str, None] = {}

    def bind(self, name: str) -> None:
        self.names.setdefault(name, None)


class _PythonSites:
    """One walk over a Python tree, collecting sites; name-pool classes are resolved after the walk."""

    PRIMARY = _PRIMARY
    OFFSETTABLE = _OFFSETTABLE
    BINARY = "binary_operator"
    CONFUSABLE: dict[str, tuple[str, ...]] = {}  # set below, after the groups

    def __init__(self, source: bytes):
        self.source = source
        self.sites: list[_Site] = []
        self.callees: dict[str, None] = {}       # names called as f(...), defined with def, or imported
        self.methods: dict[str, None] = {}       # names called as obj.f(...)
        self.attributes: dict[bytes, dict[str, None]] = {}  # object text -> attribute names read on it
        self.name_sites: list[tuple[str, object, bytes | None]] = []  # (kind, name node, object text)
        self.bindings: set[int] = set()          # start bytes of identifiers that bind a name

    def text(self, node) -> str:
        return self.source[node.start_byte:node.end_byte].decode()

    def add(self, kind: str, start: int, end: int, texts: Iterable[str], sstub: str | None = None) -> None:
        current = self.source[start:end].decode()
        texts = tuple(t for t in dict.fromkeys(texts) if t != current)
        if texts:
            self.sites.append(_Site(kind, start, end, texts, sstub))

    # -- the walk ------------------------------------------------------------------------------

    def collect(self, root) -> list[_Site]:
        stack = [(root, None)]
        handlers = self._handlers()
        while stack:
            node, scope = stack.pop()
            kind = node.type
            if kind in _STRINGS:
                continue
            if kind == "function_definition":
                name = node.child_by_field_name("name")
                if name is not None:
                    self.callees.setdefault(self.text(name), None)
                inner = _Scope()
                self._bind_parameters(node.child_by_field_name("parameters"), inner)
                children = [(c, inner if c.type == "block" else None) for c in node.named_children]
                stack.extend(reversed(children))
                continue
            if kind in ("class_definition", "lambda"):
                stack.extend((c, None) for c in reversed(node.named_children))
                continue
            handler = handlers.get(kind)
            if handler is not None:
                handler(node, scope)
            if kind in _READ_PARENTS and scope is not None:
                self._reads(node, scope)
            if kind == "block":
                self._statements(node, scope)
            stack.extend((c, scope) for c in reversed(node.named_children))
        self._resolve_names()
        return self.sites

    def _handlers(self):
        return {
            "binary_operator": self._binary,
            "comparison_operator": self._comparison,
            "boolean_operator": self._boolean,
            "augmented_assignment": self._augmented,
            "assignment": self._assignment,
            "for_statement": self._for,
            "as_pattern_target": self._as_target,
            "named_expression": self._named,
            "not_operator": self._not,
            "if_statement": self._condition,
            "elif_clause": self._condition,
            "while_statement": self._condition,
            "assert_statement": self._assert,
            "integer": self._integer,
            "unary_operator": self._unary,
            "true": self._boolean_literal,
            "false": self._boolean_literal,
            "subscript": self._subscript,
            "slice": self._slice,
            "call": self._call,
            "attribute": self._attribute,
            "list": self._list,
            "tuple": self._tuple,
            "dictionary": self._dictionary,
            "import_from_statement": self._import,
            "import_statement": self._import,
        }

    # -- bindings and variable misuse ----------------------------------------------------------

    def _bind_parameters(self, parameters, scope: _Scope) -> None:
        if parameters is None:
            return
        for param in parameters.named_children:
            target = param
            if param.type in ("default_parameter", "typed_default_parameter"):
                target = param.child_by_field_name("name")
            elif param.type in ("typed_parameter", "list_splat_pattern", "dictionary_splat_pattern"):
                target = next((c for c in param.named_children if c.type in
                               ("identifier", "list_splat_pattern", "dictionary_splat_pattern")), None)
                if target is not None and target.type != "identifier":
                    target = next((c for c in target.named_children if c.type == "identifier"), None)
            if target is not None and target.type == "identifier":
                scope.bind(self.text(target))

    def _bind_targets(self, node, scope: _Scope | None) -> None:
        if node is None:
            return
        if node.type == "identifier":
            self.bindings.add(node.start_byte)
            if scope is not None:
                scope.bind(self.text(node))
        elif node.type in _PATTERNS or node.type in ("list_splat_pattern", "as_pattern_target"):
            for child in node.named_children:
                self._bind_targets(child, scope)

    def _assignment(self, node, scope) -> None:
        self._bind_targets(node.child_by_field_name("left"), scope)

    def _for(self, node, scope) -> None:
        self._bind_targets(node.child_by_field_name("left"), scope)

    def _as_target(self, node, scope) -> None:
        self._bind_targets(node, scope)

    def _named(self, node, scope) -> None:
        self._bind_targets(node.child_by_field_name("name"), scope)

    def _reads(self, node, scope: _Scope) -> None:
        field = _READ_FIELD.get(node.type, "")
        candidates = node.named_children if not field else [node.child_by_field_name(field)]
        for child in candidates:
            if child is None or child.type != "identifier" or child.start_byte in self.bindings:
                continue
            name = self.text(child)
            if name not in scope.names:
                continue
            others = [other for other in scope.names if other != name]
            if others:
                self.add("variable_misuse", child.start_byte, child.end_byte, others)

    # -- operators -----------------------------------------------------------------------------

    def _binary(self, node, scope) -> None:
        left, op, right = (node.child_by_field_name(f) for f in ("left", "operator", "right"))
        if op is None or left is None or right is None:
            return
        symbol = op.type
        if not (symbol == "%" and left.type in _STRINGS):  # "..." % args formats; it is not arithmetic
            self.add("wrong_binary_operator", op.start_byte, op.end_byte, _BINARY_ALTERNATIVES.get(symbol, ()))
        if symbol in _NONCOMMUTATIVE and not (symbol == "%" and left.type in _STRINGS):
            self._swap(left, right)

    def _swap(self, left, right) -> None:
        if left.type not in self.PRIMARY or right.type not in self.PRIMARY:
            return  # swapping a non-primary operand would re-associate the expression
        a, b = self.text(left), self.text(right)
        if a == b or "\n" in a or "\n" in b or len(a) + len(b) > 120:
            return
        between = self.source[left.end_byte:right.start_byte].decode()
        self.add("swapped_operands", left.start_byte, right.end_byte, [b + between + a])

    def _comparison(self, node, scope) -> None:
        operators = []
        operands = []
        for i, child in enumerate(node.children):
            if node.field_name_for_child(i) == "operators":
                operators.append(child)
            else:
                operands.append(child)
        for op in operators:
            symbol = " ".join(self.text(op).split())
            # `is` ↔ `is not`, `in` ↔ `not in` add or drop a negation: a unary-operator fix in the taxonomy
            sstub = "change_unary_operator" if symbol in ("is", "is not", "in", "not in") else None
            self.add("wrong_comparison_operator", op.start_byte, op.end_byte, _COMPARISON_ALTERNATIVES.get(symbol, ()),
                     sstub)
        if len(operators) == 1 and len(operands) == 2:
            symbol = " ".join(self.text(operators[0]).split())
            if symbol in _NONCOMMUTATIVE:
                self._swap(*operands)
            if symbol in _ORDERING:  # bounds are compared with < and <=; == NAME + 1 is rarely a real slip
                for operand in operands:
                    if _countlike(operand, self):
                        self._offset(operand)

    def _boolean(self, node, scope) -> None:
        op = node.child_by_field_name("operator")
        if op is not None:
            self.add("wrong_boolean_operator", op.start_byte, op.end_byte, ["or" if op.type == "and" else "and"])
        for side in (node.child_by_field_name("left"), node.child_by_field_name("right")):
            self._negate(side)

    def _augmented(self, node, scope) -> None:
        op = node.child_by_field_name("operator")
        if op is not None:
            self.add("wrong_assignment_operator", op.start_byte, op.end_byte, _ASSIGNMENT_ALTERNATIVES.get(op.type, ()))

    def _not(self, node, scope) -> None:
        argument = node.child_by_field_name("argument")
        if argument is not None:
            self.add("dropped_not", node.start_byte, argument.start_byte, [""])

    def _negate(self, node) -> None:
        if node is not None and node.type not in _NOT_NEGATABLE and node.type not in ("comment",):
            self.add("added_not", node.start_byte, node.start_byte, ["not "])

    def _condition(self, node, scope) -> None:
        self._negate(node.child_by_field_name("condition"))

    def _assert(self, node, scope) -> None:
        named = node.named_children
        if named:
            self._negate(named[0])

    # -- literals ------------------------------------------------------------------------------

    def _integer(self, node, scope) -> None:
        text = self.text(node)
        if not text.isdigit() or len(text) > 4 or (len(text) > 1 and text[0] == "0"):
            return
        value = int(text)
        parent = node.parent
        negated = parent is not None and parent.type == "unary_operator"
        options = [str(value + 1)] + ([str(value - 1)] if value > 0 else [])
        if value == 0 and not negated and not _after_minus(parent, node):
            options.append("-1")
        self.add("wrong_number", node.start_byte, node.end_byte, options)
        if not negated and value > 0 and parent is not None and parent.type in ("subscript", "slice", "argument_list"):
            self.add("wrong_number", node.start_byte, node.start_byte, ["-"], "change_unary_operator")

    def _unary(self, node, scope) -> None:
        op = node.child_by_field_name("operator")
        argument = node.child_by_field_name("argument")
        if op is not None and op.type == "-" and argument is not None and argument.type in ("integer", "float"):
            self.add("wrong_number", node.start_byte, argument.start_byte, [""], "change_unary_operator")

    def _boolean_literal(self, node, scope) -> None:
        self.add("wrong_boolean", node.start_byte, node.end_byte, ["False" if node.type == "true" else "True"])

    # -- offsets: x → x ± 1 and back, where an index or a bound is computed -----------------------

    def _offset(self, node) -> None:
        if node is None:
            return
        if node.type in self.OFFSETTABLE and "\n" not in self.text(node):
            self.add("wrong_offset", node.end_byte, node.end_byte, [" + 1", " - 1"])
        elif node.type == self.BINARY:
            op, right = node.child_by_field_name("operator"), node.child_by_field_name("right")
            left = node.child_by_field_name("left")
            if op is not None and op.type in ("+", "-") and right is not None and self.text(right) == "1" and left:
                self.add("wrong_offset", left.end_byte, node.end_byte, [""])

    def _subscript(self, node, scope) -> None:
        for i, child in enumerate(node.children):
            if node.field_name_for_child(i) == "subscript" and child.type != "slice":
                self._offset(child)

    def _slice(self, node, scope) -> None:
        for child in node.named_children:
            self._offset(child)

    # -- calls and names -----------------------------------------------------------------------

    def _call(self, node, scope) -> None:
        function = node.child_by_field_name("function")
        arguments = node.child_by_field_name("arguments")
        if function is not None:
            if function.type == "identifier":
                self.callees.setdefault(self.text(function), None)
                self.name_sites.append(("wrong_function_name", function, None))
            elif function.type == "attribute":
                name = function.child_by_field_name("attribute")
                if name is not None:
                    self.methods.setdefault(self.text(name), None)
                    self.name_sites.append(("wrong_attribute_name", name, None))
        if arguments is None or arguments.type != "argument_list":
            return
        children = arguments.named_children
        if any(c.type == "comment" for c in children):
            return
        if function is not None and function.type == "identifier" and self.text(function) == "range":
            for child in children:
                if child.type not in ("keyword_argument", "list_splat", "dictionary_splat"):
                    self._offset(child)
        positional = [c for c in children if c.type not in ("keyword_argument", "list_splat", "dictionary_splat")]
        # positional arguments after a *splat or keyword would not be swappable in place
        if positional and positional == children[:len(positional)]:
            texts = [self.text(c) for c in positional]
            for i in range(len(positional)):
                for j in range(i + 1, len(positional)):
                    a, b = texts[i], texts[j]
                    if a != b and "\n" not in a and "\n" not in b and len(a) + len(b) <= 120:
                        middle = self.source[positional[i].end_byte:positional[j].start_byte].decode()
                        self.add("swapped_arguments", positional[i].start_byte, positional[j].end_byte,
                                 [b + middle + a])
        for i, child in enumerate(children):
            if "\n" in self.text(child):
                continue
            if i + 1 < len(children):
                start, end = child.start_byte, children[i + 1].start_byte
            elif i > 0:
                start, end = children[i - 1].end_byte, child.end_byte
            else:
                start, end = child.start_byte, arguments.end_byte - 1  # the only argument, with a trailing comma
            self.add("missing_argument", start, end, [""])
        if scope is not None and scope.names and not any(c.type in ("list_splat", "dictionary_splat") for c in children):
            present = {self.text(c) for c in children}
            extra = [name for name in scope.names if name not in present and name not in ("self", "cls")]
            if extra:
                if positional:
                    at = positional[-1].end_byte
                    self.add("extra_argument", at, at, [", " + name for name in extra])
                elif children:
                    at = children[0].start_byte
                    self.add("extra_argument", at, at, [name + ", " for name in extra])
                else:
                    at = arguments.start_byte + 1
                    self.add("extra_argument", at, at, extra)

    def _attribute(self, node, scope) -> None:
        parent = node.parent
        if parent is not None and parent.type == "call" and parent.child_by_field_name("function") == node:
            return  # a method call: handled with calls
        obj, name = node.child_by_field_name("object"), node.child_by_field_name("attribute")
        if obj is None or name is None:
            return
        key = self.source[obj.start_byte:obj.end_byte]
        self.attributes.setdefault(key, {}).setdefault(self.text(name), None)
        self.name_sites.append(("wrong_attribute_name", name, key))

    def _import(self, node, scope) -> None:
        for child in node.named_children:
            if child.type == "aliased_import":
                alias = child.child_by_field_name("alias")
                if alias is not None:
                    self.callees.setdefault(self.text(alias), None)
            elif child.type == "dotted_name" and node.type == "import_from_statement":
                if node.child_by_field_name("module_name") != child:
                    self.callees.setdefault(self.text(child).rsplit(".", 1)[-1], None)

    def _resolve_names(self) -> None:
        memo: dict[tuple[str, bytes | None, str], list[str]] = {}  # a name recurs: `self.x` a hundred times
        for kind, node, obj in self.name_sites:
            name = self.text(node)
            key = (kind, obj, name)
            alternatives = memo.get(key)
            if alternatives is None:
                if kind == "wrong_function_name":
                    pool = self.callees
                elif obj is None:
                    pool = self.methods
                else:
                    pool = self.attributes.get(obj, {})
                alternatives = similar_names(name, pool, self.CONFUSABLE)
                if obj is not None:  # an attribute read: other attributes read on the same object, same last word
                    last = _words(name)[-1:]
                    alternatives += [n for n in pool if n != name and n not in alternatives and _words(n)[-1:] == last]
                memo[key] = alternatives
            self.add(kind, node.start_byte, node.end_byte, alternatives)

    # -- literal shapes ------------------------------------------------------------------------

    def _list(self, node, scope) -> None:
        items = node.named_children
        if not items:
            self.add("wrong_literal_shape", node.start_byte, node.end_byte, ["{}"])
        elif len(items) == 1 and items[0].type not in ("list_splat", "comment", "parenthesized_list_splat"):
            if node.parent is not None and node.parent.type in ("argument_list", "return_statement", "assignment",
                                                                "pair", "keyword_argument", "for_statement"):
                self.add("wrong_literal_shape", node.start_byte, node.end_byte, [self.text(items[0])])

    def _tuple(self, node, scope) -> None:
        items = node.named_children
        if len(items) == 1 and items[0].type not in ("list_splat", "comment"):
            comma = next((c for c in node.children if c.type == ","), None)
            if comma is not None:
                self.add("wrong_literal_shape", comma.start_byte, comma.end_byte, [""])

    def _dictionary(self, node, scope) -> None:
        if not node.named_children:
            self.add("wrong_literal_shape", node.start_byte, node.end_byte, ["[]"])

    # -- statements ----------------------------------------------------------------------------

    def _line_of(self, node) -> tuple[int, int] | None:
        """[start, end) bytes of the whole lines `node` occupies, if nothing else is on them."""
        start = self.source.rfind(b"\n", 0, node.start_byte) + 1
        if self.source[start:node.start_byte].strip():
            return None
        trailing = _TRAILING.match(self.source, node.end_byte)
        if trailing is None:
            return None
        return start, trailing.end()

    def _statements(self, block, scope) -> None:
        if scope is None:
            return  # statements are deleted and copied inside functions only
        statements = [c for c in block.named_children if c.type != "comment"]
        if len(statements) < 2:
            return
        lines = [self._line_of(s) for s in statements]
        for i, (statement, span) in enumerate(zip(statements, lines, strict=True)):
            if span is None or statement.type not in _SIMPLE_STATEMENTS or _is_docstring(statement):
                continue
            text = self.source[span[0]:span[1]]
            if not text.endswith(b"\n"):
                continue
            if text.count(b"\n") <= 5:
                self.add("deleted_statement", span[0], span[1], [""])
            if text.count(b"\n") != 1 or statement.type != "expression_statement":
                continue
            inner = statement.named_children[0] if statement.named_children else None
            if inner is None or inner.type not in ("assignment", "augmented_assignment", "call"):
                continue
            line = text.decode()
            # a duplicate of a statement with an effect (a call, an update), or a copy moved up a line
            if inner.type != "assignment":
                self.add("extra_statement", span[1], span[1], [line])
            if i > 0 and lines[i - 1] is not None:
                self.add("extra_statement", lines[i - 1][0], lines[i - 1][0], [line])


# ---------------------------------------------------------------------------------------------
# JavaScript (and TypeScript, whose grammar extends it with types)

_JS_BINARY = {
    "+": ("-",), "-": ("+",), "*": ("/", "+"), "/": ("*",), "%": ("/",), "**": ("*",), "<<": (">>",),
    ">>": ("<<", ">>>"), ">>>": (">>",), "&": ("|", "^"), "|": ("&", "^"), "^": ("|", "&"),
}
_JS_COMPARISON = {
    "<": ("<=", ">"), "<=": ("<", ">="), ">": (">=", "<"), ">=": (">", "<="), "==": ("!=",), "!=": ("==",),
    "===": ("!==", "=="), "!==": ("===", "!="),
}
_JS_BOOLEAN = {"&&": ("||",), "||": ("&&", "??"), "??": ("||",)}
_JS_ASSIGNMENT = {
    "+=": ("-=", "="), "-=": ("+=", "="), "*=": ("/=", "+="), "/=": ("*=",), "%=": ("/=",), "**=": ("*=",),
    "|=": ("&=", "="), "&=": ("|=",), "^=": ("|=",), "<<=": (">>=",), ">>=": ("<<=",), "||=": ("&&=", "??="),
    "&&=": ("||=",), "??=": ("||=",),
}
_JS_NONCOMMUTATIVE = frozenset({"-", "/", "%", "**", "<<", ">>", ">>>", "<", "<=", ">", ">="})
_JS_ORDERING = frozenset({"<", "<=", ">", ">="})
_JS_PRIMARY = frozenset({"identifier", "member_expression", "call_expression", "subscript_expression", "number",
                         "string", "template_string", "true", "false", "null", "undefined", "this",
                         "parenthesized_expression", "array", "object"})
_JS_OFFSETTABLE = frozenset({"identifier", "member_expression", "call_expression", "subscript_expression"})
_JS_STRINGS = frozenset({"string", "template_string", "regex", "comment", "jsx_text"})
_JS_FUNCTIONS = frozenset({"function_declaration", "function_expression", "function", "arrow_function",
                           "method_definition", "generator_function_declaration", "generator_function"})
_JS_READ_PARENTS = frozenset({
    "binary_expression", "unary_expression", "arguments", "subscript_expression", "return_statement", "array",
    "pair", "ternary_expression", "parenthesized_expression", "member_expression", "assignment_expression",
    "augmented_assignment_expression", "variable_declarator", "spread_element", "await_expression",
    "throw_statement", "update_expression",
})
_JS_READ_FIELD = {"member_expression": "object", "assignment_expression": "right", "variable_declarator": "value",
                  "pair": "value"}
_JS_SIMPLE_STATEMENTS = frozenset({"expression_statement", "return_statement", "throw_statement",
                                   "break_statement", "continue_statement"})
_JS_NOT_NEGATABLE = frozenset({"unary_expression", "assignment_expression", "augmented_assignment_expression",
                               "arrow_function", "sequence_expression", "yield_expression", "spread_element"})


class _JavaScriptSites(_PythonSites):
    """The same classes on a JavaScript or TypeScript tree (node and operator names differ; the sites' logic,
    name pools and statement rules are shared with Python's)."""

    PRIMARY = _JS_PRIMARY
    OFFSETTABLE = _JS_OFFSETTABLE
    BINARY = "binary_expression"
    CONFUSABLE = _JS_CONFUSABLE

    def collect(self, root) -> list[_Site]:
        stack = [(root, None)]
        handlers = self._handlers()
        while stack:
            node, scope = stack.pop()
            kind = node.type
            if kind in _JS_STRINGS:
                continue
            if kind in _JS_FUNCTIONS:
                name = node.child_by_field_name("name")
                if name is not None:
                    self.callees.setdefault(self.text(name), None)
                inner = _Scope()
                parameters = node.child_by_field_name("parameters") or node.child_by_field_name("parameter")
                if parameters is not None:
                    self._bind_js_parameters(parameters, inner)
                stack.extend((c, inner if c.type != "formal_parameters" else None) for c in reversed(node.named_children))
                continue
            if kind in ("class_declaration", "class"):
                stack.extend((c, None) for c in reversed(node.named_children))
                continue
            handler = handlers.get(kind)
            if handler is not None:
                handler(node, scope)
            if kind in _JS_READ_PARENTS and scope is not None:
                self._js_reads(node, scope)
            if kind == "statement_block":
                self._js_statements(node, scope)
            stack.extend((c, scope) for c in reversed(node.named_children))
        self._resolve_names()
        return self.sites

    def _handlers(self):
        return {
            "binary_expression": self._js_binary,
            "augmented_assignment_expression": self._js_augmented,
            "assignment_expression": self._js_assignment,
            "variable_declarator": self._js_declarator,
            "for_in_statement": self._js_for_in,
            "catch_clause": self._js_catch,
            "unary_expression": self._js_unary,
            "if_statement": self._js_condition,
            "while_statement": self._js_condition,
            "do_statement": self._js_condition,
            "ternary_expression": self._js_condition,
            "number": self._js_number,
            "true": self._boolean_literal_js,
            "false": self._boolean_literal_js,
            "subscript_expression": self._js_subscript,
            "call_expression": self._js_call,
            "member_expression": self._js_member,
            "array": self._js_array,
            "object": self._js_object,
            "import_specifier": self._js_import,
        }

    # -- bindings and variable misuse ----------------------------------------------------------

    def _bind_js_parameters(self, parameters, scope: _Scope) -> None:
        if parameters.type == "identifier":  # x => ...
            scope.bind(self.text(parameters))
            return
        for param in parameters.named_children:
            target = param
            if param.type in ("assignment_pattern", "required_parameter", "optional_parameter"):
                target = param.child_by_field_name("left") or param.child_by_field_name("pattern")
            elif param.type == "rest_pattern":
                target = next((c for c in param.named_children if c.type == "identifier"), None)
            if target is not None and target.type == "identifier":
                scope.bind(self.text(target))

    def _js_bind(self, node, scope) -> None:
        if node is not None and node.type == "identifier":
            self.bindings.add(node.start_byte)
            if scope is not None:
                scope.bind(self.text(node))

    def _js_assignment(self, node, scope) -> None:
        self._js_bind(node.child_by_field_name("left"), scope)

    def _js_declarator(self, node, scope) -> None:
        self._js_bind(node.child_by_field_name("name"), scope)

    def _js_for_in(self, node, scope) -> None:
        self._js_bind(node.child_by_field_name("left"), scope)

    def _js_catch(self, node, scope) -> None:
        self._js_bind(node.child_by_field_name("parameter"), scope)

    def _js_reads(self, node, scope: _Scope) -> None:
        field = _JS_READ_FIELD.get(node.type)
        candidates = node.named_children if field is None else [node.child_by_field_name(field)]
        for child in candidates:
            if child is None or child.type != "identifier" or child.start_byte in self.bindings:
                continue
            name = self.text(child)
            if name in scope.names:
                others = [other for other in scope.names if other != name]
                if others:
                    self.add("variable_misuse", child.start_byte, child.end_byte, others)

    # -- operators -----------------------------------------------------------------------------

    def _js_binary(self, node, scope) -> None:
        left, op, right = (node.child_by_field_name(f) for f in ("left", "operator", "right"))
        if op is None or left is None or right is None:
            return
        symbol = op.type
        if symbol in _JS_BINARY:
            self.add("wrong_binary_operator", op.start_byte, op.end_byte, _JS_BINARY[symbol])
        elif symbol in _JS_COMPARISON:
            self.add("wrong_comparison_operator", op.start_byte, op.end_byte, _JS_COMPARISON[symbol])
        elif symbol in _JS_BOOLEAN:
            self.add("wrong_boolean_operator", op.start_byte, op.end_byte, _JS_BOOLEAN[symbol])
            if symbol != "??":
                self._js_negate(left)
                self._js_negate(right)
        if symbol in _JS_NONCOMMUTATIVE:
            self._swap(left, right)
        if symbol in _JS_ORDERING:
            for operand in (left, right):
                if operand.type in _JS_OFFSETTABLE or operand.type == "binary_expression":
                    self._offset(operand)

    def _js_augmented(self, node, scope) -> None:
        op = node.child_by_field_name("operator")
        if op is not None:
            self.add("wrong_assignment_operator", op.start_byte, op.end_byte, _JS_ASSIGNMENT.get(op.type, ()))

    def _js_unary(self, node, scope) -> None:
        op, argument = node.child_by_field_name("operator"), node.child_by_field_name("argument")
        if op is None or argument is None:
            return
        if op.type == "!":
            self.add("dropped_not", node.start_byte, argument.start_byte, [""])
        elif op.type == "-" and argument.type == "number":
            self.add("wrong_number", node.start_byte, argument.start_byte, [""], "change_unary_operator")

    def _js_negate(self, node) -> None:
        if node is None or node.type in _JS_NOT_NEGATABLE or node.type in _JS_STRINGS:
            return
        if node.type in _JS_PRIMARY:
            self.add("added_not", node.start_byte, node.start_byte, ["!"])
        elif "\n" not in self.text(node):  # `!a < b` would negate a alone: wrap the whole condition
            self.add("added_not", node.start_byte, node.end_byte, ["!(" + self.text(node) + ")"])

    def _js_condition(self, node, scope) -> None:
        condition = node.child_by_field_name("condition")
        if condition is not None and condition.type == "parenthesized_expression" and condition.named_children:
            condition = condition.named_children[0]
        self._js_negate(condition)

    # -- literals ------------------------------------------------------------------------------

    def _js_number(self, node, scope) -> None:
        text = self.text(node)
        if not text.isdigit() or len(text) > 4 or (len(text) > 1 and text[0] == "0"):
            return
        value = int(text)
        parent = node.parent
        negated = parent is not None and parent.type == "unary_expression"
        options = [str(value + 1)] + ([str(value - 1)] if value > 0 else [])
        if value == 0 and not negated and not (parent is not None and parent.type == "binary_expression"
                                               and parent.child_by_field_name("right") == node):
            options.append("-1")
        self.add("wrong_number", node.start_byte, node.end_byte, options)

    def _boolean_literal_js(self, node, scope) -> None:
        self.add("wrong_boolean", node.start_byte, node.end_byte, ["false" if node.type == "true" else "true"])

    def _js_subscript(self, node, scope) -> None:
        index = node.child_by_field_name("index")
        if index is not None:
            self._offset(index)

    # -- calls and names -----------------------------------------------------------------------

    def _js_call(self, node, scope) -> None:
        function = node.child_by_field_name("function")
        arguments = node.child_by_field_name("arguments")
        if function is not None:
            if function.type == "identifier":
                self.callees.setdefault(self.text(function), None)
                self.name_sites.append(("wrong_function_name", function, None))
            elif function.type == "member_expression":
                name = function.child_by_field_name("property")
                if name is not None and name.type == "property_identifier":
                    self.methods.setdefault(self.text(name), None)
                    self.name_sites.append(("wrong_attribute_name", name, None))
        if arguments is None or arguments.type != "arguments":
            return
        children = arguments.named_children
        if any(c.type == "comment" for c in children):
            return
        positional = [c for c in children if c.type != "spread_element"]
        if positional == children:
            texts = [self.text(c) for c in positional]
            for i in range(len(positional)):
                for j in range(i + 1, len(positional)):
                    a, b = texts[i], texts[j]
                    if a != b and "\n" not in a and "\n" not in b and len(a) + len(b) <= 120:
                        middle = self.source[positional[i].end_byte:positional[j].start_byte].decode()
                        self.add("swapped_arguments", positional[i].start_byte, positional[j].end_byte,
                                 [b + middle + a])
        for i, child in enumerate(children):
            if "\n" in self.text(child):
                continue
            if i + 1 < len(children):
                start, end = child.start_byte, children[i + 1].start_byte
            elif i > 0:
                start, end = children[i - 1].end_byte, child.end_byte
            else:
                start, end = child.start_byte, arguments.end_byte - 1
            self.add("missing_argument", start, end, [""])
        if scope is not None and scope.names and positional == children:
            present = {self.text(c) for c in children}
            extra = [name for name in scope.names if name not in present]
            if extra:
                if children:
                    at = children[-1].end_byte
                    self.add("extra_argument", at, at, [", " + name for name in extra])
                else:
                    at = arguments.start_byte + 1
                    self.add("extra_argument", at, at, extra)

    def _js_member(self, node, scope) -> None:
        parent = node.parent
        if parent is not None and parent.type == "call_expression" and parent.child_by_field_name("function") == node:
            return
        obj, name = node.child_by_field_name("object"), node.child_by_field_name("property")
        if obj is None or name is None or name.type != "property_identifier":
            return
        key = self.source[obj.start_byte:obj.end_byte]
        self.attributes.setdefault(key, {}).setdefault(self.text(name), None)
        self.name_sites.append(("wrong_attribute_name", name, key))

    def _js_import(self, node, scope) -> None:
        alias = node.child_by_field_name("alias") or node.child_by_field_name("name")
        if alias is not None:
            self.callees.setdefault(self.text(alias), None)

    # -- literal shapes ------------------------------------------------------------------------

    _VALUE_PARENTS = frozenset({"arguments", "return_statement", "variable_declarator", "assignment_expression",
                                "pair"})

    def _js_array(self, node, scope) -> None:
        items = [c for c in node.named_children if c.type != "comment"]
        if node.parent is None or node.parent.type not in self._VALUE_PARENTS:
            return
        if not items:
            self.add("wrong_literal_shape", node.start_byte, node.end_byte, ["{}"])
        elif len(items) == 1 and items[0].type != "spread_element":
            self.add("wrong_literal_shape", node.start_byte, node.end_byte, [self.text(items[0])])

    def _js_object(self, node, scope) -> None:
        if not node.named_children and node.parent is not None and node.parent.type in self._VALUE_PARENTS:
            self.add("wrong_literal_shape", node.start_byte, node.end_byte, ["[]"])

    # -- statements ----------------------------------------------------------------------------

    def _js_statements(self, block, scope) -> None:
        if scope is None:
            return
        statements = [c for c in block.named_children if c.type != "comment"]
        if len(statements) < 2:
            return
        lines = [self._line_of(s) for s in statements]
        for i, (statement, span) in enumerate(zip(statements, lines, strict=True)):
            if span is None or statement.type not in _JS_SIMPLE_STATEMENTS:
                continue
            text = self.source[span[0]:span[1]]
            if not text.endswith(b"\n"):
                continue
            if text.count(b"\n") <= 5:
                self.add("deleted_statement", span[0], span[1], [""])
            if text.count(b"\n") != 1 or statement.type != "expression_statement":
                continue
            inner = statement.named_children[0] if statement.named_children else None
            if inner is None or inner.type not in ("assignment_expression", "augmented_assignment_expression",
                                                   "call_expression", "update_expression"):
                continue
            line = text.decode()
            if inner.type != "assignment_expression":
                self.add("extra_statement", span[1], span[1], [line])
            if i > 0 and lines[i - 1] is not None:
                self.add("extra_statement", lines[i - 1][0], lines[i - 1][0], [line])


def _countlike(node, sites: _PythonSites) -> bool:
    """Could `node` be a count or an index (a name, an attribute, an item, or len(...)-like call)?"""
    if node.type in ("identifier", "attribute", "subscript"):
        return True
    if node.type == "call":
        function = node.child_by_field_name("function")
        if function is not None and function.type == "attribute":
            function = function.child_by_field_name("attribute")
        return function is not None and sites.text(function) in _COUNTS
    return node.type == "binary_operator"  # `i + 1 < n` → `i < n` (the removal direction)


def _is_docstring(statement) -> bool:
    named = statement.named_children
    return statement.type == "expression_statement" and len(named) == 1 and named[0].type in _STRINGS


def _after_minus(parent, node) -> bool:
    """True when `node` is the right operand of a binary minus (`x - 0` → `x - -1` would be odd)."""
    return parent is not None and parent.type == "binary_operator" and parent.child_by_field_name("right") == node


def _dedup(sites: list[_Site]) -> list[_Site]:
    """Sites in source order, each (span, replacement) once (e.g. a `not` added to an if condition that is
    also a boolean operand)."""
    seen: set[tuple[int, int, str]] = set()
    out = []
    for site in sorted(sites, key=lambda s: (s.start, s.end, KINDS.index(s.kind))):
        texts = tuple(t for t in site.texts if (site.start, site.end, t) not in seen)
        seen.update((site.start, site.end, t) for t in texts)
        if texts:
            out.append(dataclasses.replace(site, texts=texts) if texts != site.texts else site)
    return out


_PythonSites.CONFUSABLE = _CONFUSABLE

__all__ = ["DRAW_WEIGHTS", "KINDS", "LANGUAGES", "MESSAGES", "Rewrite", "UnsupportedLanguage", "enumerate_rewrites",
           "inject_bug", "inject_bugs", "parses", "similar_names"]
