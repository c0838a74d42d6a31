"""Candidate ranking: every single-statement rewrite of a window, and "no change", scored by the model.

    rewrites(source, windows)         the rewrite engine's rewrites of the lines the windows may change
    options(...) → parsing(...)       those that change only rewritable lines, with their edit heads;
                                      those that still parse
    scripts(...)                      their edit scripts in window coordinates, after [<|eos|>] (no change)
    rank(...)                         all of them read as one trie per window (decoding.CandidateScorer):
                                      the best-scoring script per window

With `keep_heads`, only the rewrites whose edit head (operation, first line) is among the window's
`keep_heads` most probable are scripted and read in full. Syntax re-ranking lives here too: a change
that adds tree-sitter errors is never proposed (`Source.breaks_syntax`), and of a beam's hypotheses the
best that parses no worse than the input wins (`first_that_parses`).
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

from patchcoder.windows import Window

_UNSET = object()


@dataclasses.dataclass(eq=False)
class Source:
    """One text whose windows are ranked, and what is computed about it once, when first needed: its
    tree-sitter error count and the checker that tells whether a rewrite of it parses. `wide`: its
    candidates are the rewrite engine's wider set (for a search that a test decides), not the rewrite
    classes of the synthetic bugs that suggest's threshold is calibrated on."""

    code: str
    language: str | None
    layout: object = None  # patchcoder.layout.Layout: how the item's own text differs from `code` (None: it does not)
    wide: bool = False
    _errors: object = dataclasses.field(default=_UNSET, repr=False)
    _checker: object = dataclasses.field(default=_UNSET, repr=False)
    _analysis: object = dataclasses.field(default=_UNSET, repr=False)

    @classmethod
    def of(cls, item) -> Source:
        """`item` itself if it is a Source, else one made from a dict with `code` and `language`."""
        return item if isinstance(item, Source) else cls(item["code"], item.get("language"))

    def syntax_errors(self) -> int | None:
        """syntax_errors of the code, parsed once."""
        if self._errors is _UNSET:
            self._errors = syntax_errors(self.code, self.language)
        return self._errors

    def breaks_syntax(self, patched: str) -> bool:
        """Whether `patched` has more tree-sitter ERROR/MISSING nodes than the code (False without a grammar)."""
        before = self.syntax_errors()
        if before is None:
            return False
        after = syntax_errors(patched, self.language)
        return after is not None and after > before

    def parses(self, rewrite) -> bool:
        """Whether the code with `rewrite` made still parses (one incremental parse; the checker is kept)."""
        from patchcoder.tokenizer.rewrites import rewrite_checker

        if self._checker is _UNSET:
            self._checker = rewrite_checker(self.code, self.language or "python")
        return self._checker is not None and self._checker(rewrite)


class Option(NamedTuple):
    """A rewrite that changes only lines its window may rewrite."""

    rewrite: object  # a rewrite of the rewrite engine (patchcoder.tokenizer.rewrites.Rewrite)
    new_window: str  # the window's text with the rewrite made
    head: tuple[int, int]  # ids of its edit script's first operation and first line


@dataclasses.dataclass
class Ranking:
    """A window's candidate scripts (window coordinates, ending in `<|eos|>`; [<|eos|>] is "no change")
    and the model's score of each (mean log-probability per token)."""

    candidates: list[list[int]]
    scores: list[float]

    def best(self):
        """The best-scoring candidate as a `decoding.Decoded` (the first of equals)."""
        from patchcoder.decoding import Decoded

        k = max(range(len(self.candidates)), key=self.scores.__getitem__)
        return Decoded(self.candidates[k], True, self.scores[k])


def rank(model, tokenizer, sources: list[Source], windows: list[Window], *, max_new_tokens: int,
         keep_heads: int | None = None, extra: list[list[list[int]]] | None = None) -> list[Ranking]:
    """For each window, its candidates scored by teacher forcing: "no change", one single-statement
    rewrite of the window's (focus) lines (the rewrite classes of the synthetic-data generator), and
    `extra[k]` (e.g. the generated script). sources[k] is the text windows[k] was cut from; windows
    of one Source share one enumeration of rewrites. `max_new_tokens`: room for the longest candidate."""
    from patchcoder.decoding import CandidateScorer, best_heads

    if not windows:
        return []
    found: dict[int, list | None] = {}  # per source (by identity): its windows share one enumeration
    for source in sources:
        if id(source) not in found:
            found[id(source)] = rewrites(source, [w for s, w in zip(sources, windows, strict=True) if s is source])
    scorer = CandidateScorer(model, [w.prompt for w in windows], max_new_tokens)
    kept = [options(tokenizer, source, window, found[id(source)])
            for source, window in zip(sources, windows, strict=True)]
    if keep_heads is not None:
        heads = [sorted({o.head for o in mine}) for mine in kept]
        for k, (hs, values) in enumerate(zip(heads, scorer.head_scores(heads), strict=True)):
            best: list = []  # the best heads that have a rewrite that parses, best first
            for j in best_heads(values, len(hs)):
                best.extend(parsing(sources[k], [o for o in kept[k] if o.head == hs[j]]))
                if len({o.head for o in best}) == keep_heads:
                    break
            where = {id(o): n for n, o in enumerate(kept[k])}
            kept[k] = sorted(best, key=lambda o: where[id(o)])  # the unpruned order: ties break alike
    else:
        kept = [parsing(source, mine) for source, mine in zip(sources, kept, strict=True)]
    candidates = [scripts(tokenizer, source, window, mine)
                  for source, window, mine in zip(sources, windows, kept, strict=True)]
    for mine, more in zip(candidates, extra or [[] for _ in windows], strict=True):
        mine.extend(ids for ids in more if ids not in mine)
    return [Ranking(mine, theirs) for mine, theirs in zip(candidates, scorer.scores(candidates), strict=True)]


def undo_scores(model, tokenizer, sources: list[Source], windows: list[Window],
                scripts: list[list[int]]) -> list[float | None]:
    """For each window, the mean log-probability per token of undoing `scripts[k]` (a script in window
    coordinates): the rewritten code's window (the same place, path and intent) as the prompt, followed by
    the script that turns it back into the window's text. A rewrite the model would undo when shown its
    result is one it is unsure of: on correct code the best rewrite makes a bug, which the model wants to
    revert. None where the script changes nothing, does not apply or makes a window too long to show."""
    from patchcoder.decoding import score_scripts
    from patchcoder.tokenizer import special as sp
    from patchcoder.tokenizer.edits import EditScript, EditScriptError, edit_script, split_lines
    from patchcoder.tokenizer.examples import prompt_ids

    tok, eos = tokenizer, tokenizer.eos_id
    prompts, backs, where = [], [], []
    for k, (source, window, ids) in enumerate(zip(sources, windows, scripts, strict=True)):
        lines = split_lines(source.code)
        old = "".join(lines[window.start:window.start + window.n_lines])
        try:
            new = EditScript.from_tokens(ids, tok, window.n_lines).apply(old)
        except EditScriptError:
            continue
        n = len(split_lines(new))
        if new == old or not 0 < n <= tok.max_lines:
            continue
        back = edit_script(new, old, source.language, lexer=tok.lexer)
        if not back.ops:
            continue
        code = "".join(lines[:window.start]) + new + "".join(lines[window.start + window.n_lines:])
        line_ids = tok.encode_lines(code, source.language, window.start, window.start + n)
        file_at, code_at = window.prompt.index(tok.special[sp.FILE]), window.prompt.index(tok.special[sp.CODE])
        prompts.append(prompt_ids(tok, window.prompt[1:file_at], window.prompt[file_at + 1:code_at],
                                  line_ids[window.start:window.start + n]))
        backs.append(back.to_tokens(tok, new_line_ids=tok.encode_lines(old, source.language)) + [eos])
        where.append(k)
    out: list[float | None] = [None] * len(windows)
    for k, score in zip(where, score_scripts(model, prompts, backs, batch_size=16) if prompts else [], strict=True):
        out[k] = score
    return out


def rewrites(source: Source, windows: list[Window]) -> list | None:
    """Every single-statement rewrite of the source's lines that `windows` may rewrite (None: the
    language has no rewrites)."""
    from patchcoder.tokenizer.rewrites import UnsupportedLanguage, analyse, enumerate_rewrites

    spans = [w.rewritable for w in windows]
    lines = (min(lo for lo, _ in spans), max(hi for _, hi in spans))
    language = source.language or "python"
    try:
        if source._analysis is _UNSET:  # parsed and walked once, however many batches its windows fall in
            source._analysis = analyse(source.code, language, wide=source.wide)
        # unchecked: `parsing` checks that a rewrite parses only for the candidates it keeps
        return enumerate_rewrites(source.code, language, lines=lines, check=False, wide=source.wide,
                                  analysis=source._analysis)
    except UnsupportedLanguage:
        return None


def candidates(tokenizer, source: Source, window: Window, found: list | None = _UNSET) -> list[list[int]]:
    """Scripts (window coordinates, ending in `<|eos|>`) for "no change" and every rewrite among
    `found` (default: the source's, enumerated here) inside the window, or inside its focus lines."""
    if found is _UNSET:
        found = rewrites(source, [window])
    return scripts(tokenizer, source, window, parsing(source, options(tokenizer, source, window, found)))


def options(tokenizer, source: Source, window: Window, found: list | None) -> list[Option]:
    """An Option for each rewrite among `found` that changes only lines the window may rewrite; its
    head is found from the lines the rewrite leaves alone at either end (cheap: no lexing)."""
    from patchcoder.ground.sstub import common_affixes
    from patchcoder.tokenizer.edits import edit_script, split_lines

    if not found:
        return []
    lo, hi = window.rewritable
    old_window = split_lines(source.code)[window.start:window.start + window.n_lines]
    special, out = tokenizer.special, []
    for rewrite in found:
        first, last = rewrite.lines
        if first < lo or last > hi:
            continue  # a rewrite that reaches outside the lines it may change
        first, last = first - window.start, last - window.start
        new_window = old_window[:first] + split_lines(rewrite.new_lines) + old_window[last:]
        prefix, suffix = common_affixes(old_window, new_window)
        if prefix + suffix == len(old_window) == len(new_window):
            continue  # changes nothing inside the window
        kind = "INSERT" if prefix + suffix == len(old_window) else \
            "DELETE" if prefix + suffix == len(new_window) else "REPLACE"
        start = prefix
        if set(old_window[prefix:len(old_window) - suffix]) & set(new_window[prefix:len(new_window) - suffix]):
            # the changed lines share a line (e.g. two arguments swapped across lines): the script's
            # alignment may open with an INSERT or DELETE, so ask it
            ops = edit_script("".join(old_window), "".join(new_window), source.language, lexer=tokenizer.lexer).ops
            if ops:
                kind, start = ops[0].kind, ops[0].start
        out.append(Option(rewrite, "".join(new_window), (special[f"<{kind}>"], tokenizer.line_marker(start))))
    return out


def parsing(source: Source, found: list[Option]) -> list[Option]:
    """The options whose rewrite parses."""
    if not found:
        return []
    return [option for option in found if source.parses(option.rewrite)]


def scripts(tokenizer, source: Source, window: Window, found: list[Option]) -> list[list[int]]:
    """[<|eos|>] (no change), then the script of each option (from `options`, checked by `parsing`)
    whose edits stay inside the lines the window may rewrite."""
    from patchcoder.tokenizer.edits import edit_script, split_lines

    eos, language = tokenizer.eos_id, source.language
    out = [[eos]]
    lo, hi = window.rewritable
    # Scripts are computed on the window's text alone: a rewrite changes nothing outside it, and
    # lexing the window instead of the whole file for every candidate keeps ranking linear.
    old_window = "".join(split_lines(source.code)[window.start:window.start + window.n_lines])
    for option in found:
        script = edit_script(old_window, option.new_window, language, lexer=tokenizer.lexer)  # one parse: encode_lines reuses it
        if not script.ops or script.ops[0].start + window.start < lo or script.ops[-1].end + window.start > hi:
            continue
        ids = tokenizer.encode_lines(option.new_window, language)
        out.append(script.to_tokens(tokenizer, new_line_ids=ids) + [eos])
    return out


def first_that_parses(tokenizer, source: Source, window: Window, hypotheses: list):
    """The best-scoring hypothesis (a `decoding.Decoded`) whose result has no more tree-sitter ERROR
    nodes than the input (re-ranking by syntax); the best one when none qualifies or the language has
    no grammar."""
    from patchcoder.tokenizer.edits import EditScript, EditScriptError

    if not hypotheses:
        return None
    before = source.syntax_errors()
    if before is None:
        return hypotheses[0]
    for hyp in hypotheses:
        if not hyp.finished:
            continue
        try:
            script = EditScript.from_tokens(hyp.ids, tokenizer, window.n_lines).shifted(window.start)
            after = syntax_errors(script.apply(source.code), source.language)
        except EditScriptError:
            continue
        if after is not None and after <= before:
            return hyp
    return hypotheses[0]


def syntax_errors(code: str, language: str | None) -> int | None:
    """How many ERROR or MISSING nodes tree-sitter finds in `code`; None without a grammar."""
    from patchcoder.tokenizer.lexer import GRAMMARS, tree_sitter_parser

    if language not in GRAMMARS:
        return None
    tree = tree_sitter_parser(language).parse(code.encode("utf-8", "surrogatepass"))
    if not tree.root_node.has_error:
        return 0
    count, stack = 0, [tree.root_node]
    while stack:
        node = stack.pop()
        if node.is_error or node.is_missing:
            count += 1
        if node.has_error:
            stack.extend(node.children)
    return count
