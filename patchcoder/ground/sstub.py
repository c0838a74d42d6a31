"""Single-statement bug-fix classes (the ManySStuBs4J / TSSB-3M taxonomy), from the lexeme diff of a change.

A change is a candidate only when exactly one line differs on each side (after dropping the lines the
two texts share at the start and the end) and its code lexemes differ (not only whitespace or comments).
The class then comes from the lexemes that differ, e.g. `<` → `<=` is change_binary_operator and
`f(a, b)` → `f(b, a)` is swap_arguments; a one-line change that fits no class is "other".
Only the two changed lines are lexed (regex lexer, below), and, for a line of a call spread over several lines,
at most CONTEXT_LINES lines around it, so this is cheap on whole files; the miner calls it for small single-hunk
changes.
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Sequence

CHANGE_BINARY_OPERATOR = "change_binary_operator"
CHANGE_UNARY_OPERATOR = "change_unary_operator"
CHANGE_IDENTIFIER = "change_identifier"
CHANGE_NUMERIC_LITERAL = "change_numeric_literal"
CHANGE_BOOLEAN_LITERAL = "change_boolean_literal"
CHANGE_STRING_LITERAL = "change_string_literal"
CHANGE_ATTRIBUTE = "change_attribute"
SWAP_ARGUMENTS = "swap_arguments"
MORE_ARGUMENTS = "more_arguments"
FEWER_ARGUMENTS = "fewer_arguments"
CHANGE_KEYWORD = "change_keyword"
OTHER = "other"
CLASSES = (
    CHANGE_BINARY_OPERATOR, CHANGE_UNARY_OPERATOR, CHANGE_IDENTIFIER, CHANGE_NUMERIC_LITERAL,
    CHANGE_BOOLEAN_LITERAL, CHANGE_STRING_LITERAL, CHANGE_ATTRIBUTE, SWAP_ARGUMENTS, MORE_ARGUMENTS,
    FEWER_ARGUMENTS, CHANGE_KEYWORD, OTHER,
)
# the kinds of edit a threshold is chosen by (decoding.json's min_score_by_edit): the classes, and beside "other"
# the changes that only add or only remove whole lines (a missing statement put back, a statement deleted)
INSERT_LINES = "insert_lines"
DELETE_LINES = "delete_lines"
EDIT_KINDS = CLASSES + (INSERT_LINES, DELETE_LINES)

# keywords that are whole expressions: `this.size`, `self.x`, `None + 1` read as operands
EXPRESSION_WORDS = frozenset({"self", "this", "cls", "super", "None", "null", "nil", "undefined"})
# Python's own reserved words: `int`, `str`, `self` are plain names there (builtins), not keywords
PYTHON_KEYWORDS = frozenset(keyword.kwlist) - {"True", "False"}
BOOLEANS = frozenset({"true", "false", "True", "False", "TRUE", "FALSE"})
BINARY_OPERATORS = frozenset({
    "+", "-", "*", "/", "%", "**", "//", "@", "==", "!=", "<", ">", "<=", ">=", "===", "!==", "<>", "<=>",
    "&&", "||", "&", "|", "^", "<<", ">>", ">>>", "and", "or", "is", "in", "??", "instanceof",
    "+=", "-=", "*=", "/=", "%=", "&=", "|=", "^=", "<<=", ">>=", ">>>=", "**=", "//=", "=", ":=",
})
UNARY_OPERATORS = frozenset({"!", "not", "-", "+", "~", "++", "--", "*", "&"})
KEYWORDS = frozenset({
    # modifiers and declaration keywords (ManySStuBs4J "change modifier"), and other reserved words
    "public", "private", "protected", "static", "final", "abstract", "const", "let", "var", "async", "await",
    "synchronized", "volatile", "transient", "native", "strictfp", "mut", "pub", "unsafe", "extern", "inline",
    "virtual", "override", "unsigned", "signed", "readonly", "export", "default", "sealed", "open", "internal",
    "def", "class", "struct", "enum", "interface", "fn", "func", "function", "return", "yield", "break",
    "continue", "global", "nonlocal", "del", "pass", "raise", "throw", "throws", "try", "except", "catch",
    "finally", "if", "elif", "else", "while", "for", "do", "switch", "case", "lambda", "with", "as", "import",
    "from", "new", "delete", "typeof", "void", "goto", "assert", "super", "this", "self", "None", "null",
    "nil", "undefined", "int", "long", "short", "float", "double", "char", "bool", "boolean", "byte", "str",
})

MODIFIERS = frozenset({
    "public", "private", "protected", "static", "final", "abstract", "const", "let", "var", "async", "await",
    "synchronized", "volatile", "transient", "native", "strictfp", "mut", "pub", "unsafe", "extern", "inline",
    "virtual", "override", "unsigned", "signed", "readonly", "export", "default", "sealed", "open", "internal",
})
DEFINITIONS = frozenset({"def", "function", "fn", "func"})

_STRING = r"""[rRbBuUfF]{0,2}(?:\"\"\"(?:\\.|[^\\])*?\"\"\"|'''(?:\\.|[^\\])*?'''|"(?:\\.|[^"\\\n])*"|'(?:\\.|[^'\\\n])*'|`(?:\\.|[^`\\])*`)"""
_NUMBER = r"0[xXoObB][0-9a-fA-F_]+[a-zA-Z]*|(?:\d[\d_]*(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?[a-zA-Z]*"
_OPERATORS = sorted(BINARY_OPERATORS | UNARY_OPERATORS | {"->", "=>", "::", "...", "?.", "."}, key=len, reverse=True)
_OPERATOR = "|".join(re.escape(op) for op in _OPERATORS if not op.isalpha())
_HASH_COMMENT_LANGUAGES = frozenset({"python", "ruby", "bash", "perl", "r", "julia", "elixir", "cython", "cmake", "make"})


def _lexer(comment: str) -> re.Pattern[str]:
    return re.compile(
        rf"(?P<comment>{comment})|(?P<string>{_STRING})|(?P<number>{_NUMBER})|(?P<word>[^\W\d]\w*)"
        rf"|(?P<op>{_OPERATOR})|(?P<ws>\s+)|(?P<other>.)",
        re.DOTALL,
    )


_HASH_LEXER = _lexer(r"\#[^\n]*")
_C_LEXER = _lexer(r"//[^\n]*|/\*.*?\*/")
_ANY_LEXER = _lexer(r"\#[^\n]*|//[^\n]*|/\*.*?\*/")


def lexemes(line: str, language: str | None = None) -> list[tuple[str, str]]:
    """(kind, text) of the code lexemes of `line`: whitespace and comments dropped; kinds are
    string, number, word, keyword, boolean, op, other."""
    lexer = _HASH_LEXER if language in _HASH_COMMENT_LANGUAGES else _ANY_LEXER if language is None else _C_LEXER
    out = []
    for match in lexer.finditer(line):
        kind = match.lastgroup
        if kind in ("ws", "comment"):
            continue
        text = match.group()
        if kind == "word":
            if text in BOOLEANS:
                kind = "boolean"
            elif text in BINARY_OPERATORS or text in UNARY_OPERATORS:
                kind = "op"
            elif text in (PYTHON_KEYWORDS if language in ("python", "cython") else KEYWORDS):
                kind = "keyword"
        out.append((kind, text))
    return out


def _changed_lines(old: str, new: str) -> tuple[str, str, list[str], list[str]] | None:
    """The one differing line of each side, the lines before it and the lines after it (of `old`), or None
    when the texts differ in more (or fewer) lines."""
    a, b = old.split("\n"), new.split("\n")
    if abs(len(a) - len(b)) > 0:
        return None
    start = 0
    while start < len(a) and a[start] == b[start]:
        start += 1
    if start == len(a):
        return None
    end_a, end_b = len(a) - 1, len(b) - 1
    while end_a > start and a[end_a] == b[end_b]:
        end_a -= 1
        end_b -= 1
    if end_a != start or end_b != start:
        return None
    return a[start], b[start], a[:start], a[start + 1:]


def _is_operand_end(lexeme: tuple[str, str] | None) -> bool:
    if lexeme is None:
        return False
    kind, text = lexeme
    return kind in ("word", "number", "string", "boolean") or text in (")", "]", "}") or text in EXPRESSION_WORDS


def _continues(lexeme: tuple[str, str]) -> bool:
    """Whether a line ending in `lexeme` leaves an expression open for the next line to continue."""
    return _is_operand_end(lexeme) and lexeme[0] != "keyword" or lexeme[1] in ("(", "[", ",")


def _is_operand_start(lexeme: tuple[str, str] | None) -> bool:
    if lexeme is None:
        return False
    kind, text = lexeme
    return kind in ("word", "number", "string", "boolean", "keyword") or text in ("(", "[", "{") or text in UNARY_OPERATORS


def _enclosing_call(prefix: list[tuple[str, str]]) -> int | None:
    """Index in `prefix` of the unclosed "(" that opens a call's argument list, if any."""
    depth = 0
    for k in range(len(prefix) - 1, -1, -1):
        text = prefix[k][1]
        if text in (")", "]", "}"):
            depth += 1
        elif text in ("(", "[", "{"):
            if depth == 0:
                if text == "(" and k > 0 and (prefix[k - 1][0] == "word" or prefix[k - 1][1] in (")", "]", ">")):
                    return k
                return None
            depth -= 1
    return None


def _arguments(tokens: list[tuple[str, str]]) -> list[tuple[tuple[str, str], ...]]:
    """Split an argument list's lexemes at top-level commas."""
    if not tokens:
        return []
    args: list[list[tuple[str, str]]] = [[]]
    depth = 0
    for token in tokens:
        text = token[1]
        if text in ("(", "[", "{"):
            depth += 1
        elif text in (")", "]", "}"):
            depth -= 1
        if text == "," and depth == 0:
            args.append([])
        else:
            args[-1].append(token)
    if not args[-1]:  # a trailing comma
        args.pop()
    return [tuple(arg) for arg in args]


def _is_subsequence(short: list, long: list) -> bool:
    it = iter(long)
    return all(any(x == y for y in it) for x in short)


def _close_index(tokens: list[tuple[str, str]], start: int) -> int | None:
    """Index of the ")" closing the argument list whose contents begin at `start`."""
    depth = 0
    for k in range(start, len(tokens)):
        text = tokens[k][1]
        if text in ("(", "[", "{"):
            depth += 1
        elif text in (")", "]", "}"):
            if depth == 0:
                return k if text == ")" else None
            depth -= 1
    return None


def classify_sstub(old: str, new: str, language: str | None = None) -> str | None:
    """The single-statement bug-fix class of old → new (one of CLASSES), or None when the change is not
    a single-statement change (several lines, only whitespace/comments, pure insertion or deletion)."""
    lines = _changed_lines(old, new)
    if lines is None:
        return None
    a_all, b_all = lexemes(lines[0], language), lexemes(lines[1], language)
    previous = lexemes(lines[2][-1], language) if lines[2] else []
    if a_all == b_all or not a_all or not b_all:
        return None
    p, s = common_affixes(a_all, b_all)
    a, b = a_all[p:len(a_all) - s], b_all[p:len(b_all) - s]
    before = a_all[p - 1] if p > 0 else None
    if before is None and previous and _continues(previous[-1]):
        before = previous[-1]  # `total = (width` / `- height)`: a binary operator opening a continuation line

    if len(a) == 1 and len(b) == 1:
        (ka, x), (kb, y) = a[0], b[0]
        if ka == kb == "number":
            return CHANGE_NUMERIC_LITERAL
        if ka == kb == "boolean":
            return CHANGE_BOOLEAN_LITERAL
        if ka == kb == "string":
            return CHANGE_STRING_LITERAL
        if x in BINARY_OPERATORS and y in BINARY_OPERATORS and _is_operand_end(before):
            return CHANGE_BINARY_OPERATOR
        if x in UNARY_OPERATORS and y in UNARY_OPERATORS:
            return CHANGE_UNARY_OPERATOR
        if ka == kb == "word":
            # `obj.name` is an attribute; `from .name import` (a relative import) is not
            object_end = a_all[p - 2] if p >= 2 else None
            is_attribute = before is not None and before[1] in (".", "->", "?.", "::") and _is_operand_end(object_end)
            return CHANGE_ATTRIBUTE if is_attribute else CHANGE_IDENTIFIER
        if ka == kb == "keyword":
            return CHANGE_KEYWORD
    # a unary operator added or removed in front of an operand: `if x` → `if not x`, `-1` → `1`
    for added, removed, side in ((b, a, b_all), (a, b, a_all)):
        if not removed and len(added) == 1 and added[0][1] in UNARY_OPERATORS and not _is_operand_end(before):
            if _is_operand_start(side[p + 1] if p + 1 < len(side) else None):
                return CHANGE_UNARY_OPERATOR
    # a modifier added or removed: `def` → `async def`, `int x` → `final int x`
    if (not a and len(b) == 1 and b[0][1] in MODIFIERS) or (not b and len(a) == 1 and a[0][1] in MODIFIERS):
        return CHANGE_KEYWORD
    # the change lies inside one call's argument list
    open_at = _enclosing_call(a_all[:p])
    if open_at is not None and open_at >= 2 and a_all[open_at - 2][1] in DEFINITIONS:
        open_at = None  # `def f(a, b)`: a changed signature, not a call with other arguments
    if open_at is not None:
        found = _argument_change(a_all, b_all, open_at + 1)
    elif _whole_arguments(lines[2], a_all, lines[3], language):  # a line of a call over several: `f(\n a, b=c\n)`
        found = _argument_change(a_all, b_all, 0)
    else:
        found = None
    return found or OTHER


def edit_kind(old: str, new: str, language: str | None = None) -> str | None:
    """The kind of edit old → new (one of EDIT_KINDS), or None when the texts are equal: its single-statement
    class, else `lines_kind`'s."""
    return classify(old, new, language)[1]


def classify(old: str, new: str, language: str | None = None) -> tuple[str | None, str | None]:
    """(`classify_sstub`, `edit_kind`) of old → new, the changed lines lexed once."""
    sstub = classify_sstub(old, new, language)
    return sstub, sstub or lines_kind(old, new)


def lines_kind(old: str, new: str) -> str | None:
    """INSERT_LINES when new only adds whole lines to old, DELETE_LINES when it only removes some, None when the
    texts are equal, else OTHER (the kind of edit of a change that is not a single-statement one). A last line
    without its newline is read as the same line with one (deleting the last line of `a\nb` leaves `a\n`), and
    a change of nothing but that newline is OTHER."""
    if old == new:
        return None
    a, b = (text if text.endswith("\n") or not text else text + "\n" for text in (old, new))
    a_lines, b_lines = a.split("\n"), b.split("\n")
    prefix, suffix = common_affixes(a_lines, b_lines)
    removed, added = len(a_lines) - prefix - suffix, len(b_lines) - prefix - suffix
    return INSERT_LINES if added and not removed else DELETE_LINES if removed and not added else OTHER


CONTEXT_LINES = 20  # lines read above a changed line to find the call it lies in
CONTEXT_CHARS = 4_000  # longer context lines (minified code) are not read: the line is not classed by arguments


def _whole_arguments(before: list[str], line: list[tuple[str, str]], after: list[str], language: str | None) -> bool:
    """Whether a line (its lexemes `line`) lies in a call's argument list opened in the lines `before` it (the
    nearest CONTEXT_LINES, read as one text, so that strings and comments spanning lines are not read as code;
    not a definition's parameters) and starts and ends at an argument's boundary: after the "(" or a ",", and
    where the list closes on the line, or before a "," or ")" (its own last, or the next line's first)."""
    context = before[-CONTEXT_LINES:]
    text = "\n".join(context)
    if any(len(line) > CONTEXT_CHARS for line in context) or any(text.count(q) % 2 for q in ('"""', "'''")):
        return False  # too long to read, or the nearest lines begin inside a string
    prefix = lexemes(text, language)
    open_at = _enclosing_call(prefix)
    if open_at is None or (open_at >= 2 and prefix[open_at - 2][1] in DEFINITIONS) or prefix[-1][1] not in ("(", ","):
        return False
    if _close_index(line, 0) is not None or line[-1][1] == ",":
        return True
    following = next((found for text in after[:CONTEXT_LINES] if len(text) <= CONTEXT_CHARS
                      and (found := lexemes(text, language))), [])
    return not following or following[0][1] in (")", ",")


def _argument_change(a: list[tuple[str, str]], b: list[tuple[str, str]], start: int) -> str | None:
    """Swapped, more or fewer arguments, when the arguments of a call that begin at lexeme `start` of both
    sides differ only so; the list ends at its closing ")" on the line, or (closed on a later line) with the
    line, whose brackets must then balance."""
    close_a, close_b = _close_index(a, start), _close_index(b, start)
    if close_a is None and close_b is None and _balanced(a[start:]) and _balanced(b[start:]):
        close_a, close_b = len(a), len(b)
    if close_a is None or close_b is None or a[close_a:] != b[close_b:]:
        return None
    args_a, args_b = _arguments(a[start:close_a]), _arguments(b[start:close_b])
    if len(args_a) == len(args_b) and args_a != args_b and sorted(args_a) == sorted(args_b):
        return SWAP_ARGUMENTS
    if len(args_b) > len(args_a) and _is_subsequence(args_a, args_b):
        return MORE_ARGUMENTS
    if len(args_b) < len(args_a) and _is_subsequence(args_b, args_a):
        return FEWER_ARGUMENTS
    return None


def _balanced(tokens: list[tuple[str, str]]) -> bool:
    """Whether every bracket the lexemes open they also close, and none they close was opened before them."""
    depth = 0
    for _, text in tokens:
        depth += (text in ("(", "[", "{")) - (text in (")", "]", "}"))
        if depth < 0:
            return False
    return depth == 0


def common_affixes(a: Sequence, b: Sequence) -> tuple[int, int]:
    """Lengths of the longest common prefix of a and b, and of their longest common suffix after it."""
    prefix = 0
    while prefix < len(a) and prefix < len(b) and a[prefix] == b[prefix]:
        prefix += 1
    suffix = 0
    while suffix < len(a) - prefix and suffix < len(b) - prefix and a[-1 - suffix] == b[-1 - suffix]:
        suffix += 1
    return prefix, suffix
