"""JavaScript's rewrite sites (TypeScript and TSX too: their grammars extend it with types): node names,
operator tables and the handlers whose rules are JavaScript's own (one binary-expression node for every
operator, `!`, `??`, parenthesised conditions, arrays and objects)."""

from __future__ import annotations

import dataclasses

from patchcoder.tokenizer.rewrites.names import JAVASCRIPT_CONFUSABLE
from patchcoder.tokenizer.rewrites.walker import Language, Scope, Walker, every_other, widened

BINARY = {
    "+": ("-",), "-": ("+",), "*": ("/", "+"), "/": ("*",), "%": ("/",), "**": ("*",), "<<": (">>",),
    ">>": ("<<", ">>>"), ">>>": (">>",), "&": ("|", "^"), "|": ("&", "^"), "^": ("|", "&"),
}
COMPARISON = {
    "<": ("<=", ">"), "<=": ("<", ">="), ">": (">=", "<"), ">=": (">", "<="), "==": ("!=",), "!=": ("==",),
    "===": ("!==", "=="), "!==": ("===", "!="),
}
BOOLEAN = {"&&": ("||",), "||": ("&&", "??"), "??": ("||",)}
ASSIGNMENT = {
    "+=": ("-=", "="), "-=": ("+=", "="), "*=": ("/=", "+="), "/=": ("*=",), "%=": ("/=",), "**=": ("*=",),
    "|=": ("&=", "="), "&=": ("|=",), "^=": ("|=",), "<<=": (">>=",), ">>=": ("<<=",), "||=": ("&&=", "??="),
    "&&=": ("||=",), "??=": ("||=",),
}
# binary_expression holds every operator: its class is the first table that has it
OPERATOR_CLASSES = (("wrong_binary_operator", BINARY), ("wrong_comparison_operator", COMPARISON),
                    ("wrong_boolean_operator", BOOLEAN))
NONCOMMUTATIVE = frozenset({"-", "/", "%", "**", "<<", ">>", ">>>", "<", "<=", ">", ">="})
ORDERING = frozenset({"<", "<=", ">", ">="})
PRIMARY = frozenset({"identifier", "member_expression", "call_expression", "subscript_expression", "number",
                     "string", "template_string", "true", "false", "null", "undefined", "this",
                     "parenthesized_expression", "array", "object"})
OFFSETTABLE = frozenset({"identifier", "member_expression", "call_expression", "subscript_expression"})
STRINGS = frozenset({"string", "template_string", "regex", "comment", "jsx_text"})
NOT_NEGATABLE = frozenset({"unary_expression", "assignment_expression", "augmented_assignment_expression",
                           "arrow_function", "sequence_expression", "yield_expression", "spread_element"})
# where an array or object literal is a value whose shape ([x] / x, {} / []) can be wrong
VALUE_PARENTS = frozenset({"arguments", "return_statement", "variable_declarator", "assignment_expression", "pair"})


# -- bindings ----------------------------------------------------------------------------------


def _bind_parameters(w: Walker, function, scope: Scope) -> None:
    parameters = function.child_by_field_name("parameters") or function.child_by_field_name("parameter")
    if parameters is None:
        return
    if parameters.type == "identifier":  # x => ...
        scope.bind(w.text(parameters))
        return
    for param in parameters.named_children:
        target = param
        if param.type in ("assignment_pattern", "required_parameter", "optional_parameter"):
            target = param.child_by_field_name("left") or param.child_by_field_name("pattern")
        elif param.type == "rest_pattern":
            target = next((c for c in param.named_children if c.type == "identifier"), None)
        if target is not None and target.type == "identifier":
            scope.bind(w.text(target))


def _binds(field: str):
    """The handler of a node whose `field` child, when a name, is bound."""
    def handler(w: Walker, node, scope) -> None:
        w.bind(node.child_by_field_name(field), scope)
    return handler


# -- operators ---------------------------------------------------------------------------------


def _binary(w: Walker, node, scope) -> None:
    left, op, right = (node.child_by_field_name(f) for f in ("left", "operator", "right"))
    if op is None or left is None or right is None:
        return
    symbol = op.type
    kind = next((kind for kind, table in OPERATOR_CLASSES if symbol in table), None)
    if kind is not None:
        w.operator(kind, op)
    if kind == "wrong_boolean_operator" and symbol != "??":
        _negate(w, left)
        _negate(w, right)
    if symbol in NONCOMMUTATIVE:
        w.swap(left, right)
    if symbol in ORDERING:
        for operand in (left, right):
            if operand.type in OFFSETTABLE or operand.type == "binary_expression":
                w.offset(operand)


def _unary(w: Walker, node, scope) -> None:
    op, argument = node.child_by_field_name("operator"), node.child_by_field_name("argument")
    if op is None or argument is None:
        return
    if op.type == "!":
        w.add("dropped_not", node.start_byte, argument.start_byte, [""])
    elif op.type == "-" and argument.type == "number":
        w.add("wrong_number", node.start_byte, argument.start_byte, [""], "change_unary_operator")


def _negate(w: Walker, node) -> None:
    if node is None or node.type in NOT_NEGATABLE or node.type in STRINGS:
        return
    if node.type in PRIMARY:
        w.add("added_not", node.start_byte, node.start_byte, ["!"])
    elif "\n" not in w.text(node):  # `!a < b` would negate a alone: wrap the whole condition
        w.add("added_not", node.start_byte, node.end_byte, ["!(" + w.text(node) + ")"])


def _condition(w: Walker, node, scope) -> None:
    condition = node.child_by_field_name("condition")
    if condition is not None and condition.type == "parenthesized_expression" and condition.named_children:
        condition = condition.named_children[0]
    _negate(w, condition)


# -- literals and offsets ----------------------------------------------------------------------


def _number(w: Walker, node, scope) -> None:
    w.number(node)


def _subscript(w: Walker, node, scope) -> None:
    w.offset(node.child_by_field_name("index"))


# -- calls and imports -------------------------------------------------------------------------


def _call(w: Walker, node, scope) -> None:
    arguments = w.call(node)
    if arguments is None:
        return
    children = arguments.named_children
    positional = [c for c in children if c.type != "spread_element"]
    spreadless = positional == children  # with a ...spread among them, none is swapped and none added
    w.arguments(arguments, positional, swappable=spreadless, extra=scope if spreadless else None)


def _import(w: Walker, node, scope) -> None:
    alias = node.child_by_field_name("alias") or node.child_by_field_name("name")
    if alias is not None:
        w.callees.setdefault(w.text(alias), None)


# -- literal shapes ----------------------------------------------------------------------------


def _array(w: Walker, node, scope) -> None:
    items = [c for c in node.named_children if c.type != "comment"]
    if node.parent is None or node.parent.type not in VALUE_PARENTS:
        return
    if not items:
        w.add("wrong_literal_shape", node.start_byte, node.end_byte, ["{}"])
    elif len(items) == 1 and items[0].type != "spread_element":
        w.add("wrong_literal_shape", node.start_byte, node.end_byte, [w.text(items[0])])


def _object(w: Walker, node, scope) -> None:
    if not node.named_children and node.parent is not None and node.parent.type in VALUE_PARENTS:
        w.add("wrong_literal_shape", node.start_byte, node.end_byte, ["[]"])


JAVASCRIPT = Language(
    handlers={
        "binary_expression": _binary,
        "augmented_assignment_expression": Walker.augmented,
        "assignment_expression": _binds("left"),
        "variable_declarator": _binds("name"),
        "for_in_statement": _binds("left"),
        "catch_clause": _binds("parameter"),
        "unary_expression": _unary,
        "if_statement": _condition,
        "while_statement": _condition,
        "do_statement": _condition,
        "ternary_expression": _condition,
        "number": _number,
        "true": Walker.boolean,
        "false": Walker.boolean,
        "subscript_expression": _subscript,
        "call_expression": _call,
        "member_expression": Walker.member,
        "array": _array,
        "object": _object,
        "import_specifier": _import,
    },
    skip=STRINGS,
    functions=frozenset({"function_declaration", "function_expression", "function", "arrow_function",
                         "method_definition", "generator_function_declaration", "generator_function"}),
    in_body=lambda child: child != "formal_parameters",
    bind_parameters=_bind_parameters,
    no_scope=frozenset({"class_declaration", "class"}),
    read_parents=frozenset({
        "binary_expression", "unary_expression", "arguments", "subscript_expression", "return_statement", "array",
        "pair", "ternary_expression", "parenthesized_expression", "member_expression", "assignment_expression",
        "augmented_assignment_expression", "variable_declarator", "spread_element", "await_expression",
        "throw_statement", "update_expression",
    }),
    read_field={"member_expression": "object", "assignment_expression": "right", "variable_declarator": "value",
                "pair": "value"},
    block="statement_block",
    simple_statements=frozenset({"expression_statement", "return_statement", "throw_statement",
                                 "break_statement", "continue_statement"}),
    docstrings=frozenset(),
    effects=frozenset({"assignment_expression", "augmented_assignment_expression", "call_expression",
                       "update_expression"}),
    assignment="assignment_expression",
    primary=PRIMARY,
    offsettable=OFFSETTABLE,
    binary="binary_expression",
    unary="unary_expression",
    call="call_expression",
    arguments="arguments",
    member="member_expression",
    member_name="property",
    member_name_type="property_identifier",
    operators={"wrong_binary_operator": BINARY, "wrong_comparison_operator": COMPARISON,
               "wrong_boolean_operator": BOOLEAN, "wrong_assignment_operator": ASSIGNMENT},
    booleans={"true": "false", "false": "true"},
    confusable=JAVASCRIPT_CONFUSABLE,
)


# -- the wider candidate set (repair guided by tests) ------------------------------------------

WIDE_OPERATORS = {
    "wrong_binary_operator": every_other(("+", "-", "*", "/", "%", "**"), ("&", "|", "^", "<<", ">>", ">>>")),
    "wrong_comparison_operator": every_other(("<", "<=", ">", ">=", "==", "!=", "===", "!==")),
    "wrong_boolean_operator": every_other(("&&", "||", "??")),
    "wrong_assignment_operator": every_other(("=", "+=", "-=", "*=", "/=", "%=", "**="),
                                             ("=", "&=", "|=", "^=", "<<=", ">>=", ">>>="), ("=", "||=", "&&=", "??=")),
}

JAVASCRIPT_WIDE = widened(
    dataclasses.replace(JAVASCRIPT, negation="!", statement_end=";",
                        identifiers=frozenset({"identifier", "property_identifier"}), loops=frozenset({
        "for_statement", "for_in_statement", "while_statement", "do_statement"})),
    WIDE_OPERATORS, {"return_statement": Walker.returned})
