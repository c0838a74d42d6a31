"""The rewrite classes: what bug each one introduces, how often `inject_bugs` draws it, the commit message of
its fix and the fix's class in the sstub taxonomy."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

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
FIX_SSTUB = {
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


def select_kinds(kinds: Iterable[str] | None) -> frozenset[str]:
    """The classes `kinds` names (None: all of KINDS); an unknown name is a PatchcoderError naming the known ones."""
    if kinds is None:
        return frozenset(KINDS)
    kinds = frozenset(kinds)
    unknown = kinds - set(KINDS)
    if unknown:
        raise PatchcoderError(f"unknown mutation class(es): {', '.join(sorted(unknown))}; "
                              f"known: {', '.join(KINDS)}")
    return kinds


def draw_weights(mix: Mapping[str, float] | Iterable[tuple[str, float]] | None) -> dict[str, float]:
    """DRAW_WEIGHTS with each class's weight multiplied by its factor in `mix` (classes it does not name keep
    theirs; a factor of 0 never draws the class): the full mapping `inject_bugs(weights=...)` takes. None:
    DRAW_WEIGHTS. An unknown or repeated class, a factor that is negative or not finite, or weights whose sum
    is not finite, is a PatchcoderError."""
    weights = dict(DRAW_WEIGHTS)
    if mix is None:
        return weights
    seen: set[str] = set()
    for kind, factor in (mix.items() if isinstance(mix, Mapping) else mix):
        if kind not in weights:
            raise PatchcoderError(f"unknown mutation class in the mix: {kind}; known: {', '.join(KINDS)}")
        if kind in seen:
            raise PatchcoderError(f"the mix names {kind} twice")
        seen.add(kind)
        if isinstance(factor, bool) or not (isinstance(factor, (int, float)) and math.isfinite(factor) and factor >= 0):
            raise PatchcoderError(f"the mix's factor for {kind} must be a number >= 0, got {factor!r}")
        weights[kind] *= factor
    if not math.isfinite(sum(weights.values())):
        raise PatchcoderError("the mix's factors are too large: the draw weights no longer sum to a finite number")
    return weights
