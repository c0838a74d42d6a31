"""Python's rewrite sites: node names, operator tables and the handlers whose rules are Python's own
(comparison chains, `not`, `range()`, slices, tuples, docstrings, patterns that bind names)."""

from __future__ import annotations

import dataclasses

from patchcoder.tokenizer.rewrites.names import PYTHON_CONFUSABLE
from patchcoder.tokenizer.rewrites.walker import Language, Scope, Walker, every_other, widened

BINARY = {
    "+": ("-",), "-": ("+",), "*": ("/", "+"), "/": ("//", "*"), "//": ("/", "%"), "%": ("//",),
    "**": ("*",), "<<": (">>",), ">>": ("<<",), "&": ("|", "^"), "|": ("&", "^"), "^": ("|", "&"), "@": ("*",),
}
COMPARISON = {
    "<": ("<=", ">"), "<=": ("<", ">="), ">": (">=", "<"), ">=": (">", "<="), "==": ("!=",), "!=": ("==",),
    "is": ("is not",), "is not": ("is",), "in": ("not in",), "not in": ("in",), "<>": (),
}
BOOLEAN = {"and": ("or",), "or": ("and",)}
ASSIGNMENT = {
    "+=": ("-=", "="), "-=": ("+=", "="), "*=": ("/=", "+="), "/=": ("*=", "//="), "//=": ("/=",),
    "%=": ("//=",), "**=": ("*=",), "|=": ("&=", "="), "&=": ("|=",), "^=": ("|=",), "<<=": (">>=",),
    ">>=": ("<<=",), "@=": ("*=",),
}
NONCOMMUTATIVE = frozenset({"-", "/", "//", "%", "**", "<<", ">>", "@", "<", "<=", ">", ">=", "in", "not in"})
ORDERING = frozenset({"<", "<=", ">", ">="})
# Calls whose result is a count or an index, the operands of comparisons worth shifting by one.
COUNTS = frozenset({"len", "int", "min", "max", "abs", "sum", "ord", "round", "count", "index", "find", "rfind",
                    "tell", "bit_length", "size", "length", "qsize"})
STRINGS = frozenset({"string", "concatenated_string"})
NOT_NEGATABLE = frozenset({"not_operator", "named_expression", "lambda", "conditional_expression",
                           "boolean_operator", "list_splat", "parenthesized_list_splat", "yield", "expression_list",
                           "comment"})
PATTERNS = frozenset({"pattern_list", "tuple_pattern", "list_pattern", "tuple", "list", "parenthesized_expression",
                      "list_splat_pattern", "as_pattern_target"})
SPLATS = frozenset({"list_splat", "dictionary_splat"})


# -- bindings ----------------------------------------------------------------------------------


def _bind_parameters(w: Walker, function, scope: Scope) -> None:
    parameters = function.child_by_field_name("parameters")
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
            scope.bind(w.text(target))


def _bind_targets(w: Walker, node, scope: Scope | None) -> None:
    """Every name that `node` (an assignment's left side: a name, or a pattern of names) binds."""
    if node is None:
        return
    if node.type in PATTERNS:
        for child in node.named_children:
            _bind_targets(w, child, scope)
    else:
        w.bind(node, scope)


def _binds(field: str | None):
    """The handler of a node whose `field` child (None: the node itself) binds names."""
    def handler(w: Walker, node, scope) -> None:
        _bind_targets(w, node if field is None else node.child_by_field_name(field), scope)
    return handler


# -- operators ---------------------------------------------------------------------------------


def _binary(w: Walker, node, scope) -> None:
    left, op, right = (node.child_by_field_name(f) for f in ("left", "operator", "right"))
    if op is None or left is None or right is None:
        return
    if op.type == "%" and left.type in STRINGS:
        return  # "..." % args formats; it is not arithmetic
    w.operator("wrong_binary_operator", op)
    if op.type in NONCOMMUTATIVE:
        w.swap(left, right)


def _comparison(w: Walker, node, scope) -> None:
    operators = []
    operands = []
    for i, child in enumerate(node.children):
        if node.field_name_for_child(i) == "operators":
            operators.append(child)
        else:
            operands.append(child)
    for op in operators:
        symbol = " ".join(w.text(op).split())
        # `is` ↔ `is not`, `in` ↔ `not in` add or drop a negation: a unary-operator fix in the taxonomy
        sstub = "change_unary_operator" if symbol in ("is", "is not", "in", "not in") else None
        w.add("wrong_comparison_operator", op.start_byte, op.end_byte,
              w.language.operators["wrong_comparison_operator"].get(symbol, ()), sstub)
    if len(operators) == 1 and len(operands) == 2:
        symbol = " ".join(w.text(operators[0]).split())
        if symbol in NONCOMMUTATIVE:
            w.swap(*operands)
        if symbol in ORDERING:  # bounds are compared with < and <=; == NAME + 1 is rarely a real slip
            for operand in operands:
                if _countlike(w, operand):
                    w.offset(operand)


def _countlike(w: Walker, node) -> bool:
    """Could `node` be a count or an index (a name, an attribute, an item, or len(...)-like call)?"""
    if node.type in ("identifier", "attribute", "subscript"):
        return True
    if node.type == "call":
        function = node.child_by_field_name("function")
        if function is not None and function.type == "attribute":
            function = function.child_by_field_name("attribute")
        return function is not None and w.text(function) in COUNTS
    return node.type == "binary_operator"  # `i + 1 < n` → `i < n` (the removal direction)


def _boolean(w: Walker, node, scope) -> None:
    op = node.child_by_field_name("operator")
    if op is not None:
        w.operator("wrong_boolean_operator", op)
    for side in (node.child_by_field_name("left"), node.child_by_field_name("right")):
        _negate(w, side)


def _not(w: Walker, node, scope) -> None:
    argument = node.child_by_field_name("argument")
    if argument is not None:
        w.add("dropped_not", node.start_byte, argument.start_byte, [""])


def _negate(w: Walker, node) -> None:
    if node is not None and node.type not in NOT_NEGATABLE:
        w.add("added_not", node.start_byte, node.start_byte, ["not "])


def _condition(w: Walker, node, scope) -> None:
    _negate(w, node.child_by_field_name("condition"))


def _assert(w: Walker, node, scope) -> None:
    named = node.named_children
    if named:
        _negate(w, named[0])


# -- literals and offsets ----------------------------------------------------------------------


def _integer(w: Walker, node, scope) -> None:
    value = w.number(node)
    parent = node.parent
    if value and parent is not None and parent.type in ("subscript", "slice", "argument_list"):
        w.add("wrong_number", node.start_byte, node.start_byte, ["-"], "change_unary_operator")


def _unary(w: Walker, node, scope) -> None:
    op = node.child_by_field_name("operator")
    argument = node.child_by_field_name("argument")
    if op is not None and op.type == "-" and argument is not None and argument.type in ("integer", "float"):
        w.add("wrong_number", node.start_byte, argument.start_byte, [""], "change_unary_operator")


def _subscript(w: Walker, node, scope) -> None:
    for i, child in enumerate(node.children):
        if node.field_name_for_child(i) == "subscript" and child.type != "slice":
            w.offset(child)


def _slice(w: Walker, node, scope) -> None:
    for child in node.named_children:
        w.offset(child)


# -- calls and imports -------------------------------------------------------------------------


def _call(w: Walker, node, scope) -> None:
    arguments = w.call(node)
    if arguments is None:
        return
    children = arguments.named_children
    function = node.child_by_field_name("function")
    if function is not None and function.type == "identifier" and w.text(function) == "range":
        for child in children:
            if child.type not in ("keyword_argument", "list_splat", "dictionary_splat"):
                w.offset(child)
    positional = [c for c in children if c.type not in ("keyword_argument", *SPLATS)]
    # positional arguments after a *splat or keyword would not be swappable in place
    w.arguments(arguments, positional, swappable=bool(positional) and positional == children[:len(positional)],
                extra=None if any(c.type in SPLATS for c in children) else scope, not_extra=("self", "cls"))


def _import(w: Walker, node, scope) -> None:
    for child in node.named_children:
        if child.type == "aliased_import":
            alias = child.child_by_field_name("alias")
            if alias is not None:
                w.callees.setdefault(w.text(alias), None)
        elif child.type == "dotted_name" and node.type == "import_from_statement":
            if node.child_by_field_name("module_name") != child:
                w.callees.setdefault(w.text(child).rsplit(".", 1)[-1], None)


# -- literal shapes ----------------------------------------------------------------------------


def _list(w: Walker, node, scope) -> None:
    items = node.named_children
    if not items:
        w.add("wrong_literal_shape", node.start_byte, node.end_byte, ["{}"])
    elif len(items) == 1 and items[0].type not in ("list_splat", "comment", "parenthesized_list_splat"):
        if node.parent is not None and node.parent.type in ("argument_list", "return_statement", "assignment",
                                                            "pair", "keyword_argument", "for_statement"):
            w.add("wrong_literal_shape", node.start_byte, node.end_byte, [w.text(items[0])])


def _tuple(w: Walker, node, scope) -> None:
    items = node.named_children
    if len(items) == 1 and items[0].type not in ("list_splat", "comment"):
        comma = next((c for c in node.children if c.type == ","), None)
        if comma is not None:
            w.add("wrong_literal_shape", comma.start_byte, comma.end_byte, [""])


def _dictionary(w: Walker, node, scope) -> None:
    if not node.named_children:
        w.add("wrong_literal_shape", node.start_byte, node.end_byte, ["[]"])


PYTHON = Language(
    handlers={
        "binary_operator": _binary,
        "comparison_operator": _comparison,
        "boolean_operator": _boolean,
        "augmented_assignment": Walker.augmented,
        "assignment": _binds("left"),
        "for_statement": _binds("left"),
        "as_pattern_target": _binds(None),
        "named_expression": _binds("name"),
        "not_operator": _not,
        "if_statement": _condition,
        "elif_clause": _condition,
        "while_statement": _condition,
        "assert_statement": _assert,
        "integer": _integer,
        "unary_operator": _unary,
        "true": Walker.boolean,
        "false": Walker.boolean,
        "subscript": _subscript,
        "slice": _slice,
        "call": _call,
        "attribute": Walker.member,
        "list": _list,
        "tuple": _tuple,
        "dictionary": _dictionary,
        "import_from_statement": _import,
        "import_statement": _import,
    },
    skip=STRINGS,
    functions=frozenset({"function_definition"}),
    in_body=lambda child: child == "block",
    bind_parameters=_bind_parameters,
    no_scope=frozenset({"class_definition", "lambda"}),
    # Direct identifier children of these nodes are reads of a variable (fields excepted below).
    read_parents=frozenset({
        "binary_operator", "comparison_operator", "boolean_operator", "not_operator", "unary_operator",
        "argument_list", "subscript", "slice", "return_statement", "list", "tuple", "set", "pair",
        "conditional_expression", "if_statement", "elif_clause", "while_statement", "parenthesized_expression",
        "assert_statement", "await", "list_splat", "dictionary_splat", "expression_list", "augmented_assignment",
        "assignment", "for_statement", "keyword_argument", "attribute", "delete_statement", "raise_statement",
    }),
    read_field={"assignment": "right", "for_statement": "right", "keyword_argument": "value", "attribute": "object"},
    block="block",
    simple_statements=frozenset({"expression_statement", "return_statement", "raise_statement", "assert_statement",
                                 "delete_statement", "break_statement", "continue_statement"}),
    docstrings=STRINGS,
    effects=frozenset({"assignment", "augmented_assignment", "call"}),
    assignment="assignment",
    primary=frozenset({"identifier", "attribute", "call", "subscript", "integer", "float", "string",
                       "concatenated_string", "true", "false", "none", "parenthesized_expression", "list",
                       "tuple", "dictionary", "set"}),
    offsettable=frozenset({"identifier", "attribute", "call", "subscript"}),
    binary="binary_operator",
    unary="unary_operator",
    call="call",
    arguments="argument_list",
    member="attribute",
    member_name="attribute",
    member_name_type=None,
    operators={"wrong_binary_operator": BINARY, "wrong_comparison_operator": COMPARISON,
               "wrong_boolean_operator": BOOLEAN, "wrong_assignment_operator": ASSIGNMENT},
    booleans={"true": "False", "false": "True"},
    confusable=PYTHON_CONFUSABLE,
)


# -- the wider candidate set (repair guided by tests) ------------------------------------------

# Python 3.11's builtin names (frozen here: `dir(builtins)` differs between versions and startup modes), the names
# the wide set may correct a misspelling into without the file spelling them
BUILTINS = (
    "ArithmeticError", "AssertionError", "AttributeError", "BaseException", "BaseExceptionGroup",
    "BlockingIOError", "BrokenPipeError", "BufferError", "BytesWarning", "ChildProcessError",
    "ConnectionAbortedError", "ConnectionError", "ConnectionRefusedError", "ConnectionResetError",
    "DeprecationWarning", "EOFError", "Ellipsis", "EncodingWarning", "EnvironmentError", "Exception",
    "ExceptionGroup", "False", "FileExistsError", "FileNotFoundError", "FloatingPointError", "FutureWarning",
    "GeneratorExit", "IOError", "ImportError", "ImportWarning", "IndentationError", "IndexError",
    "InterruptedError", "IsADirectoryError", "KeyError", "KeyboardInterrupt", "LookupError", "MemoryError",
    "ModuleNotFoundError", "NameError", "None", "NotADirectoryError", "NotImplemented", "NotImplementedError",
    "OSError", "OverflowError", "PendingDeprecationWarning", "PermissionError", "ProcessLookupError",
    "RecursionError", "ReferenceError", "ResourceWarning", "RuntimeError", "RuntimeWarning",
    "StopAsyncIteration", "StopIteration", "SyntaxError", "SyntaxWarning", "SystemError", "SystemExit",
    "TabError", "TimeoutError", "True", "TypeError", "UnboundLocalError", "UnicodeDecodeError",
    "UnicodeEncodeError", "UnicodeError", "UnicodeTranslateError", "UnicodeWarning", "UserWarning",
    "ValueError", "Warning", "ZeroDivisionError", "abs", "aiter", "all", "anext", "any", "ascii", "bin", "bool",
    "breakpoint", "bytearray", "bytes", "callable", "chr", "classmethod", "compile", "complex", "delattr",
    "dict", "dir", "divmod", "enumerate", "eval", "exec", "filter", "float", "format", "frozenset", "getattr",
    "globals", "hasattr", "hash", "hex", "id", "input", "int", "isinstance", "issubclass", "iter", "len",
    "list", "locals", "map", "max", "memoryview", "min", "next", "object", "oct", "open", "ord", "pow", "print",
    "property", "range", "repr", "reversed", "round", "set", "setattr", "slice", "sorted", "staticmethod",
    "str", "sum", "super", "tuple", "type", "vars", "zip",
)

WIDE_OPERATORS = {
    "wrong_binary_operator": every_other(("+", "-", "*", "/", "//", "%", "**", "@"), ("&", "|", "^", "<<", ">>")),
    "wrong_comparison_operator": every_other(("<", "<=", ">", ">=", "==", "!=", "is", "is not", "in", "not in")),
    "wrong_assignment_operator": every_other(("=", "+=", "-=", "*=", "/=", "//=", "%=", "**=", "@="),
                                             ("=", "&=", "|=", "^=", "<<=", ">>=")),
}


def _call_wide(w: Walker, node, scope) -> None:
    _call(w, node, scope)
    function = node.child_by_field_name("function")
    if function is not None and function.type == "identifier" and w.text(function) == "len":
        w.offset(node)  # len(x) → len(x) ± 1 wherever it is


PYTHON_WIDE = widened(dataclasses.replace(PYTHON, loops=frozenset({"for_statement", "while_statement"}),
                                          known_names=BUILTINS),
                      WIDE_OPERATORS, {"return_statement": Walker.returned, "call": _call_wide})
