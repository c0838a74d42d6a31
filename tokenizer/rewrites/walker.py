"""One walk over a tree-sitter tree that collects every rewrite site, driven by a language's tables
(`Language`: python.py, javascript.py).

The walk is in source order, with the local variables bound so far in the enclosing function (`Scope`): a
node's handler adds its sites, then its direct identifier children that read a local become variable-misuse
sites, then a block's statements become deleted/extra-statement sites. Name classes (wrong function or
attribute name) need the file's pools of names, so they are resolved after the walk.

Most of what is alike across languages lives here as helpers the handlers call (operators, swapped operands,
offsets, numbers, call arguments, members, statements); a language module holds its node names, its operator
tables and the handlers whose rules differ. A wider set of candidates for ranking is another `Language` (other
operator tables, more handlers) given to the same walker, which leaves the synthetic bugs, drawn with these
tables, as they are: `widened` makes that Language (every operator of a group into every other, names
of the same arity or read on the same object, misspelt names, returned values, missing statements), used for the
candidates that a test decides among (patchcoder fix, `Repairer.candidates`).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable, Mapping

from patchcoder.tokenizer.rewrites.names import Spellings, similar_names, words
from patchcoder.tokenizer.rewrites.rewrite import Site

# handler(walker, node, scope): adds the sites of one node (scope: the enclosing function's, or None)
Handler = Callable[["Walker", object, "Scope | None"], None]

_TRAILING = re.compile(rb"[ \t]*(?:#[^\n]*)?(?:\n|$)")


@dataclasses.dataclass(frozen=True)
class Language:
    """What the walker knows of one tree-sitter grammar (node type names throughout)."""

    handlers: Mapping[str, Handler]          # node type -> its handler
    skip: frozenset[str]                     # never entered (strings, comments): nothing in them is rewritten
    functions: frozenset[str]                # open a scope of local variables
    in_body: Callable[[str], bool]           # which children of a function (by type) see its scope
    bind_parameters: Callable[[Walker, object, Scope], None]  # (walker, function node, its new scope)
    no_scope: frozenset[str]                 # their children see no function scope (classes; Python's lambda)
    read_parents: frozenset[str]             # their direct identifier children read a variable,
    read_field: Mapping[str, str | None]     # or only the child in this field
    block: str                               # a list of statements
    simple_statements: frozenset[str]        # statements that may be deleted
    docstrings: frozenset[str]               # an expression statement of one of these is a docstring: kept
    effects: frozenset[str]                  # expressions whose statement may be duplicated or moved up a line
    assignment: str                          # ... moved up, but not duplicated
    primary: frozenset[str]                  # operands that swap without re-associating the expression
    offsettable: frozenset[str]              # where `x` → `x ± 1` is worth trying
    binary: str                              # binary operator node
    unary: str                               # unary operator node
    call: str                                # f(...), whose field `function` is f
    arguments: str                           # and whose field `arguments` is of this type
    member: str                              # obj.name
    member_name: str                         # its field holding `name`
    member_name_type: str | None             # the type `name` must have (None: any)
    operators: Mapping[str, Mapping[str, tuple[str, ...]]]  # class -> operator -> its replacements
    booleans: Mapping[str, str]              # boolean literal node type -> the other literal's text
    confusable: Mapping[str, tuple[str, ...]]  # names.py: name -> names confused with it
    # The wider candidate set (`widened`): False for the synthetic bugs and for `suggest`'s ranking.
    wide: bool = False
    negation: str = "not "                   # prefix that negates a (primary) expression
    loops: frozenset[str] = frozenset()      # loop statements: `break` and `continue` may go in their blocks
    statement_end: str = ""                  # after an inserted jump statement (JavaScript: ";")
    identifiers: frozenset[str] = frozenset({"identifier"})  # wide: names that may be misspelt
    known_names: tuple[str, ...] = ()        # wide: names spelled right without the file spelling them (builtins)


def every_other(*groups: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    """operator -> every other operator of its group (the wider tables: any slip within a group)."""
    table: dict[str, tuple[str, ...]] = {}
    for group in groups:
        for op in group:
            table[op] = tuple(dict.fromkeys(table.get(op, ()) + tuple(o for o in group if o != op)))
    return table


def widened(language: Language, operators: Mapping[str, Mapping[str, tuple[str, ...]]],
            handlers: Mapping[str, Handler]) -> Language:
    """`language` with the wider candidate set: each operator's alternatives in `operators` after its own
    (the narrow ones come first, so the enumeration order starts as before), more handlers, `wide` set."""
    tables = {}
    for kind, narrow in language.operators.items():
        wide = operators.get(kind, {})
        tables[kind] = {op: tuple(dict.fromkeys(narrow.get(op, ()) + wide.get(op, ())))
                        for op in {**narrow, **wide}}
    return dataclasses.replace(language, operators=tables, handlers={**language.handlers, **handlers}, wide=True)


class Scope:
    """Variables bound so far in one function, in binding order (the walk is in source order)."""

    __slots__ = ("names",)

    def __init__(self) -> None:
        self.names: dict[str, None] = {}

    def bind(self, name: str) -> None:
        self.names.setdefault(name, None)


class Walker:
    """One walk over one source's tree, collecting sites (`collect`)."""

    def __init__(self, source: bytes, language: Language):
        self.source = source
        self.language = language
        self.sites: list[Site] = []
        self.callees: dict[str, None] = {}       # names called as f(...), defined as functions, or imported
        self.methods: dict[str, None] = {}       # names called as obj.f(...)
        self.attributes: dict[bytes, dict[str, None]] = {}  # object text -> attribute names read on it
        # (kind, name node, object text of an attribute read, (object text, arity) of a call)
        self.name_sites: list[tuple[str, object, bytes | None, tuple | None]] = []
        self.called: dict[tuple[bytes | None, int], dict[str, None]] = {}  # (object text, arity) -> names called
        self.bindings: set[int] = set()          # start bytes of identifiers that bind a name
        self._function_copies: dict[int, list[str]] = {}  # wide: a function's start byte -> its one-line statements
        self.spelled: list = []                  # wide: every identifier node, in walk order

    def text(self, node) -> str:
        return self.source[node.start_byte:node.end_byte].decode()

    def add(self, kind: str, start: int, end: int, texts: Iterable[str], sstub: str | None = None) -> None:
        """A site replacing [start, end) by each of `texts` (each once; the current text is not a rewrite)."""
        current = self.source[start:end].decode()
        texts = tuple(t for t in dict.fromkeys(texts) if t != current)
        if texts:
            self.sites.append(Site(kind, start, end, texts, sstub))

    # -- the walk ------------------------------------------------------------------------------

    def collect(self, root) -> list[Site]:
        lang = self.language
        stack = [(root, None)]
        while stack:
            node, scope = stack.pop()
            kind = node.type
            if kind in lang.skip:
                continue
            if lang.wide and kind in lang.identifiers:
                self.spelled.append(node)
            if kind in lang.functions:
                name = node.child_by_field_name("name")
                if name is not None:
                    self.callees.setdefault(self.text(name), None)
                inner = Scope()
                lang.bind_parameters(self, node, inner)
                stack.extend((c, inner if lang.in_body(c.type) else None) for c in reversed(node.named_children))
                continue
            if kind in lang.no_scope:
                stack.extend((c, None) for c in reversed(node.named_children))
                continue
            handler = lang.handlers.get(kind)
            if handler is not None:
                handler(self, node, scope)
            if kind in lang.read_parents and scope is not None:
                self._reads(node, scope)
            if kind == lang.block:
                self._statements(node, scope)
            stack.extend((c, scope) for c in reversed(node.named_children))
        self._resolve_names()
        if lang.wide:
            self._misspelt()
        return self.sites

    # -- bindings and variable misuse ----------------------------------------------------------

    def bind(self, node, scope: Scope | None) -> None:
        """`node`, when an identifier, binds its name (in `scope`, when inside a function)."""
        if node is not None and node.type == "identifier":
            self.bindings.add(node.start_byte)
            if scope is not None:
                scope.bind(self.text(node))

    def _reads(self, node, scope: Scope) -> None:
        field = self.language.read_field.get(node.type)
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

    # -- operators and operands ----------------------------------------------------------------

    def operator(self, kind: str, op, symbol: str | None = None) -> None:
        """`op` (whose operator is `symbol`, by default its node type) replaced by the alternatives of the
        language's table for `kind`."""
        alternatives = self.language.operators[kind].get(op.type if symbol is None else symbol, ())
        self.add(kind, op.start_byte, op.end_byte, alternatives)

    def augmented(self, node, scope) -> None:
        """Handler of `x += y`: another assignment operator."""
        op = node.child_by_field_name("operator")
        if op is not None:
            self.operator("wrong_assignment_operator", op)

    def swap(self, left, right) -> None:
        """`a - b` → `b - a` (short, one-line, primary operands only)."""
        primary = self.language.primary
        if left.type not in primary or right.type not in primary:
            return  # swapping a non-primary operand would re-associate the expression
        a, b = self.text(left), self.text(right)
        if a == b or "\n" in a or "\n" in b or len(a) + len(b) > 120:
            return
        between = self.source[left.end_byte:right.start_byte].decode()
        self.add("swapped_operands", left.start_byte, right.end_byte, [b + between + a])

    def offset(self, node) -> None:
        """An index or a bound off by one: `x` → `x ± 1`, `x ± 1` → `x`."""
        if node is None:
            return
        if node.type in self.language.offsettable and "\n" not in self.text(node):
            self.add("wrong_offset", node.end_byte, node.end_byte, [" + 1", " - 1"])
        elif node.type == self.language.binary:
            op, right = node.child_by_field_name("operator"), node.child_by_field_name("right")
            left = node.child_by_field_name("left")
            if op is not None and op.type in ("+", "-") and right is not None and self.text(right) == "1" and left:
                self.add("wrong_offset", left.end_byte, node.end_byte, [""])

    # -- literals ------------------------------------------------------------------------------

    def number(self, node) -> int | None:
        """A small decimal integer off by one, or 0 → -1 (not after a unary or a binary operator); its value,
        or None when it is not one."""
        text = self.text(node)
        if not text.isdigit() or len(text) > 4 or (len(text) > 1 and text[0] == "0"):
            return None
        value = int(text)
        parent = node.parent
        negated = parent is not None and parent.type == self.language.unary
        options = [str(value + 1)] + ([str(value - 1)] if value > 0 else [])
        right_operand = (parent is not None and parent.type == self.language.binary
                         and parent.child_by_field_name("right") == node)  # `x - 0` → `x - -1` would be odd
        if value == 0 and not negated and not right_operand:
            options.append("-1")
        self.add("wrong_number", node.start_byte, node.end_byte, options)
        if negated and self.language.wide:  # -1 → 0, -2 → -1 and -3: the whole signed literal ± 1
            self.add("wrong_number", parent.start_byte, parent.end_byte, [str(1 - value), str(-1 - value)])
        return value

    def boolean(self, node, scope) -> None:
        """Handler of a boolean literal: the other one."""
        self.add("wrong_boolean", node.start_byte, node.end_byte, [self.language.booleans[node.type]])

    # -- calls and names -----------------------------------------------------------------------

    def _member_name(self, node):
        """The name node of `obj.name`, or None when it has none of the language's name type."""
        name = node.child_by_field_name(self.language.member_name)
        wanted = self.language.member_name_type
        return name if name is not None and (wanted is None or name.type == wanted) else None

    def call(self, node):
        """The callee of call `node` into the pools of names, and a name site; the call's argument list, or
        None when it has none to rewrite (none of the language's type, or a comment among the arguments)."""
        arguments = node.child_by_field_name("arguments")
        arity = len([c for c in arguments.named_children if c.type != "comment"]) if arguments is not None else 0
        self._callee(node.child_by_field_name("function"), arity)
        if arguments is None or arguments.type != self.language.arguments:
            return None
        if any(c.type == "comment" for c in arguments.named_children):
            return None
        return arguments

    def _callee(self, function, arity: int) -> None:
        if function is None:
            return
        if function.type == "identifier":
            name, obj = function, None
            self.callees.setdefault(self.text(function), None)
            kind = "wrong_function_name"
        elif function.type == self.language.member:
            name, target = self._member_name(function), function.child_by_field_name("object")
            if name is None:
                return
            obj = None if target is None else self.source[target.start_byte:target.end_byte]
            self.methods.setdefault(self.text(name), None)
            kind = "wrong_attribute_name"
        else:
            return
        if self.language.wide:  # only the wide set looks for other names called alike
            self.called.setdefault((obj, arity), {}).setdefault(self.text(name), None)
        self.name_sites.append((kind, name, None, (obj, arity)))

    def arguments(self, arguments, positional: list, *, swappable: bool, extra: Scope | None,
                  not_extra: Iterable[str] = ()) -> None:
        """The sites of one argument list: `positional` (its leading positional arguments) swapped pairwise
        when `swappable`, each argument dropped, and a local variable of `extra` (when given) added, except
        the names in `not_extra`."""
        children = arguments.named_children
        if swappable:
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
        if extra is None or not extra.names:
            return
        present = {self.text(c) for c in children}
        names = [name for name in extra.names if name not in present and name not in not_extra]
        if not names:
            return
        if positional:
            at = positional[-1].end_byte
            self.add("extra_argument", at, at, [", " + name for name in names])
        elif children:
            at = children[0].start_byte
            self.add("extra_argument", at, at, [name + ", " for name in names])
        else:
            at = arguments.start_byte + 1
            self.add("extra_argument", at, at, names)

    def member(self, node, scope) -> None:
        """Handler of `obj.name` read (not called): into the pool of `obj`'s attributes, and a name site."""
        parent = node.parent
        if parent is not None and parent.type == self.language.call and parent.child_by_field_name("function") == node:
            return  # a method call: handled with calls
        obj, name = node.child_by_field_name("object"), self._member_name(node)
        if obj is None or name is None:
            return
        key = self.source[obj.start_byte:obj.end_byte]
        self.attributes.setdefault(key, {}).setdefault(self.text(name), None)
        self.name_sites.append(("wrong_attribute_name", name, key, None))

    def _resolve_names(self) -> None:
        memo: dict[tuple, list[str]] = {}  # a name recurs: `self.x` a hundred times
        wide = self.language.wide
        for kind, node, obj, call in self.name_sites:
            name = self.text(node)
            key = (kind, obj, name, call if wide else None)
            alternatives = memo.get(key)
            if alternatives is None:
                if kind == "wrong_function_name":
                    pool = self.callees
                elif obj is None:
                    pool = self.methods
                else:
                    pool = self.attributes.get(obj, {})
                alternatives = similar_names(name, pool, self.language.confusable)
                if obj is not None:  # an attribute read: other attributes read on the same object, same last word
                    last = words(name)[-1:]
                    alternatives += [n for n in pool if n != name and n not in alternatives
                                     and (wide or words(n)[-1:] == last)]
                if wide and call is not None:  # a call: the other names called on the same object, same arity
                    alternatives += [n for n in self.called.get(call, ()) if n != name and n not in alternatives]
                memo[key] = alternatives
            self.add(kind, node.start_byte, node.end_byte, alternatives)

    def _misspelt(self) -> None:
        """Wide: an identifier the file spells only once (a misspelling is rarely repeated; a name used
        twice is someone's choice), and not a builtin, into the names one slip of the keyboard from it
        (`names.Spellings`) that the file spells somewhere or the language knows: `hasttr(x, k)` →
        `hasattr(x, k)`. Its class is its place's: an attribute's name, a callee's, else a variable's."""
        lang = self.language
        texts = [self.text(n) for n in self.spelled]
        counts: dict[str, int] = {}
        for text in texts:
            counts[text] = counts.get(text, 0) + 1
        known = set(lang.known_names)
        spellings = Spellings(dict.fromkeys(texts + list(lang.known_names)))
        for node, text in zip(self.spelled, texts, strict=True):
            if counts[text] > 1 or text in known or len(text) > 64:  # (a generated name: not a slip of the hand)
                continue
            alternatives = spellings.near(text)
            if not alternatives:
                continue
            parent = node.parent
            if parent is not None and parent.type == lang.member and parent.child_by_field_name(lang.member_name) == node:
                kind = "wrong_attribute_name"
            elif parent is not None and parent.type == lang.call and parent.child_by_field_name("function") == node:
                kind = "wrong_function_name"
            else:
                kind = "variable_misuse"
            self.add(kind, node.start_byte, node.end_byte, alternatives)

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

    def _is_docstring(self, statement) -> bool:
        named = statement.named_children
        return (statement.type == "expression_statement" and len(named) == 1
                and named[0].type in self.language.docstrings)

    def _statements(self, block, scope) -> None:
        if scope is None:
            return  # statements are deleted and copied inside functions only
        lang = self.language
        statements = [c for c in block.named_children if c.type != "comment"]
        lines = [self._line_of(s) for s in statements]
        if lang.wide and statements:
            self._missing(block, statements, lines)
        if len(statements) < 2:
            return
        for i, (statement, span) in enumerate(zip(statements, lines, strict=True)):
            if span is None or statement.type not in lang.simple_statements or self._is_docstring(statement):
                continue
            text = self.source[span[0]:span[1]]
            if not text.endswith(b"\n"):
                continue
            if text.count(b"\n") <= 5:
                self.add("deleted_statement", span[0], span[1], [""])
            if text.count(b"\n") != 1 or statement.type != "expression_statement":
                continue
            inner = statement.named_children[0] if statement.named_children else None
            if inner is None or inner.type not in lang.effects:
                continue
            line = text.decode()
            # a duplicate of a statement with an effect (a call, an update), or a copy moved up a line
            if inner.type != lang.assignment:
                self.add("extra_statement", span[1], span[1], [line])
            if i > 0 and lines[i - 1] is not None:
                self.add("extra_statement", lines[i - 1][0], lines[i - 1][0], [line])

    def _missing(self, block, statements: list, lines: list) -> None:
        """Wide: a statement missing from `block`, inserted before each of its statements and after the last:
        a copy of one of the enclosing function's one-line simple statements, `return`, and in a loop
        `break`/`continue`."""
        lang = self.language
        jumps = ["return"]
        function = block.parent
        while function is not None and function.type not in lang.functions:
            if function.type in lang.loops and len(jumps) == 1:
                jumps += ["break", "continue"]
            function = function.parent
        copies = self._copies(function) if function is not None else []
        inserted = copies + [jump + lang.statement_end for jump in jumps]
        for i, span in enumerate(lines):
            if span is None:
                continue
            line = self.source[span[0]:span[1]].decode()
            indent = line[:len(line) - len(line.lstrip(" \t"))]
            self.add("extra_statement", span[0], span[0], [indent + text + "\n" for text in inserted])
            if i == len(lines) - 1 and line.endswith("\n"):
                self.add("extra_statement", span[1], span[1], [indent + text + "\n" for text in inserted])

    def _copies(self, function) -> list[str]:
        """The one-line simple statements of `function` (not of functions inside it), stripped, each once."""
        key = function.start_byte
        if key not in self._function_copies:
            lang, found, stack = self.language, {}, list(reversed(function.named_children))
            while stack:
                node = stack.pop()
                if node.type in lang.functions or node.type in lang.no_scope or node.type in lang.skip:
                    continue
                if node.type in lang.simple_statements and not self._is_docstring(node):
                    span = self._line_of(node)
                    if span is not None:
                        text = self.source[span[0]:span[1]]
                        if text.count(b"\n") == 1 and text.endswith(b"\n"):
                            found.setdefault(text.decode().strip(), None)
                    continue
                stack.extend(reversed(node.named_children))
            self._function_copies[key] = list(found)
        return self._function_copies[key]

    def returned(self, node, scope) -> None:
        """Handler (wide) of a return statement: the value replaced by another local variable, or negated."""
        value = next((c for c in node.named_children if c.type != "comment"), None)
        if value is None or "\n" in self.text(value):
            return
        text = self.text(value)
        names = [name for name in scope.names if name != text] if scope is not None else []
        self.add("variable_misuse", value.start_byte, value.end_byte, names)
        negated = text if value.type in self.language.primary else "(" + text + ")"
        self.add("added_not", value.start_byte, value.end_byte, [self.language.negation + negated])
