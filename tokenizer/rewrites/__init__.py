"""The rewrite engine: single-statement rewrites of source code, both the bugs of the synthetic training data
and the candidate fixes that ranking scores.

A `Rewrite` replaces one byte range of a text (an operator, a name, an argument list, a line...). Sites are
found on the tree-sitter tree by one walker driven by per-language tables; `enumerate_rewrites` lists every
rewrite of every class, and `inject_bugs` draws some at random — class first (weighted), then site, then
replacement, so that rare classes are not drowned by the many identifier sites — keeping only those whose
result still parses (BugLab-style self-supervision). The fix of an injected bug is the rewrite's inverse
(buggy → original), which restores the text exactly.

Languages: Python, JavaScript and TypeScript (every class); others raise `UnsupportedLanguage`.

    kinds.py       the classes: KINDS, draw weights (and a mix of them), messages, the sstub of each fix
    rewrite.py     Rewrite (a replaced byte range) and Site (a span with its replacements)
    engine.py      analyse, enumerate_rewrites, rewrite_checker, inject_bugs
    walker.py      the one walk over the tree, and what is alike across languages
    python.py      Python's tables and handlers
    javascript.py  JavaScript's (TypeScript's, TSX's)
    names.py       names programmers confuse
    check.py       does a rewritten text still parse
"""

from patchcoder.tokenizer.rewrites.check import LANGUAGES, UnsupportedLanguage, parses
from patchcoder.tokenizer.rewrites.engine import (
    Analysis,
    analyse,
    enumerate_rewrites,
    inject_bug,
    inject_bugs,
    rewrite_checker,
)
from patchcoder.tokenizer.rewrites.kinds import DRAW_WEIGHTS, KINDS, MESSAGES, draw_weights, select_kinds
from patchcoder.tokenizer.rewrites.names import similar_names
from patchcoder.tokenizer.rewrites.rewrite import Rewrite, Site

__all__ = ["DRAW_WEIGHTS", "KINDS", "LANGUAGES", "MESSAGES", "Analysis", "Rewrite", "Site", "UnsupportedLanguage",
           "analyse", "draw_weights", "enumerate_rewrites", "inject_bug", "inject_bugs", "parses", "rewrite_checker",
           "select_kinds", "similar_names"]
