"""The engine's entry points: analyse a text (parse, walk, checker), list every rewrite of it, or draw a few
at random as synthetic bugs."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable, Iterable, Mapping
from typing import NamedTuple

from patchcoder.tokenizer.rewrites.check import Checker, parser_for
from patchcoder.tokenizer.rewrites.javascript import JAVASCRIPT, JAVASCRIPT_WIDE
from patchcoder.tokenizer.rewrites.kinds import DRAW_WEIGHTS, KINDS, select_kinds
from patchcoder.tokenizer.rewrites.python import PYTHON, PYTHON_WIDE
from patchcoder.tokenizer.rewrites.rewrite import Rewrite, Site, line_starts
from patchcoder.tokenizer.rewrites.walker import Walker

# check.LANGUAGES -> the walker's tables (TypeScript and TSX extend JavaScript's grammar)
TABLES = {"python": PYTHON, "javascript": JAVASCRIPT, "typescript": JAVASCRIPT, "tsx": JAVASCRIPT}
# the wider candidate set (`wide=True`): what a test decides among; the synthetic bugs keep TABLES
WIDE_TABLES = {"python": PYTHON_WIDE, "javascript": JAVASCRIPT_WIDE, "typescript": JAVASCRIPT_WIDE,
               "tsx": JAVASCRIPT_WIDE}


class Analysis(NamedTuple):
    """A source that parses cleanly: its bytes, its rewrite sites (in walk order) and its parse checker."""

    source: bytes
    sites: list[Site]
    checker: Checker


def analyse(code: str, language: str = "python", *, sites: bool = True, wide: bool = False) -> Analysis | None:
    """The analysis of `code`, or None when it does not parse cleanly; sites=False skips collecting the
    rewrite sites (the costly part) and gives an empty list; wide=True collects the wider candidate set
    (WIDE_TABLES). UnsupportedLanguage for a language without rules."""
    source = code.encode()
    parser = parser_for(language)
    tree = parser.parse(source)
    if tree.root_node.has_error:
        return None
    found = Walker(source, (WIDE_TABLES if wide else TABLES)[language]).collect(tree.root_node) if sites else []
    return Analysis(source, found, Checker(source, tree, parser, language))


def enumerate_rewrites(code: str, language: str = "python", *, lines: tuple[int, int] | None = None,
                       kinds: Iterable[str] | None = None, check: bool = False, wide: bool = False,
                       analysis: Analysis | None | bool = False) -> list[Rewrite]:
    """Every single-statement rewrite of `code`, in source order.

    `lines` keeps only rewrites touching the 0-based line range [first, last); `kinds` keeps only those
    classes; `check` keeps only rewrites whose result parses (one parse each, so it costs); `wide` gives
    the wider candidate set (every operator of a group into every other, names called with the same
    arity or read on the same object, returned values replaced or negated, missing statements) instead
    of the rewrites the synthetic bugs are drawn from. `analysis`: `analyse(code, language, wide=wide)`
    made earlier, when several calls look at one text (the costly part).
    """
    if analysis is False:
        analysis = analyse(code, language, wide=wide)
    if analysis is None:
        return []
    source, sites, checker = analysis
    sites = _dedup(sites)
    wanted = select_kinds(kinds)
    span = None
    if lines is not None:
        starts = line_starts(source)
        span = (starts[lines[0]] if lines[0] < len(starts) else len(source),
                starts[lines[1]] if lines[1] < len(starts) else len(source))
    out = []
    for site in sites:
        if site.kind not in wanted:
            continue
        if span is not None and not (site.start < span[1] and (site.end > span[0] or site.start >= span[0])):
            continue
        for text in site.texts:
            rewrite = site.rewrite(text, source)
            if not check or checker.parses(rewrite):
                out.append(rewrite)
    return out


def rewrite_checker(code: str, language: str = "python") -> Callable[[Rewrite], bool] | None:
    """`parses(rewrite)` for rewrites of `code` (from `enumerate_rewrites(..., check=False)`), the check
    `check=True` makes, so that a caller can check only the few rewrites it keeps; None when `code`
    itself does not parse."""
    analysis = analyse(code, language, sites=False)
    return None if analysis is None else analysis.checker.parses


def inject_bugs(code: str, rng: random.Random, count: int = 1, language: str = "python", *,
                kinds: Iterable[str] | None = None, max_tries: int = 30,
                weights: Mapping[str, float] | None = None) -> list[Rewrite]:
    """Up to `count` distinct rewrites of `code` whose result parses, drawn with `rng` (deterministic given
    its state): a class among those with a site (weighted by `weights`, a weight for every class as
    `draw_weights` gives; default DRAW_WEIGHTS; a class of weight 0 is never drawn), then a site, then a
    replacement.

    Returns [] when `code` does not parse or offers no site. The original must parse cleanly, so that
    "still parses" is a meaningful check on the result.
    """
    analysis = analyse(code, language)
    if analysis is None:
        return []
    source, sites, checker = analysis
    weights = DRAW_WEIGHTS if weights is None else weights
    wanted = {kind for kind in select_kinds(kinds) if weights[kind] > 0}
    by_kind: dict[str, list[Site]] = {}
    for site in sites:
        if site.kind in wanted:
            by_kind.setdefault(site.kind, []).append(site)
    chosen: list[Rewrite] = []
    seen: set[str] = set()  # resulting texts: `f(a, a)` loses its first or its second `a` alike
    tries = 0
    while len(chosen) < count and by_kind and tries < max_tries + count:
        tries += 1
        present = sorted(by_kind)
        kind = rng.choices(present, weights=[weights[k] for k in present])[0]
        options = by_kind[kind]
        i = rng.randrange(len(options))
        site = options[i]
        text = rng.choice(site.texts)
        # a site is drawn once: a second draw would repeat the bug, or its sibling replacement
        options[i] = options[-1]
        options.pop()
        if not options:
            del by_kind[kind]
        rewrite = site.rewrite(text, source)
        if rewrite.code in seen or not checker.parses(rewrite):
            continue
        seen.add(rewrite.code)
        chosen.append(rewrite)
    return chosen


def inject_bug(code: str, rng: random.Random, language: str = "python", *,
               kinds: Iterable[str] | None = None, weights: Mapping[str, float] | None = None) -> Rewrite | None:
    """One random rewrite of `code` that still parses (see `inject_bugs`), or None."""
    found = inject_bugs(code, rng, 1, language, kinds=kinds, weights=weights)
    return found[0] if found else None


def _dedup(sites: list[Site]) -> list[Site]:
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
