"""The batch-repair API: load a checkpoint once, propose patches for many pieces of code.

    from patchcoder import Repairer
    repairer = Repairer.load("runs/default/final")        # None: the model shipped with patchcoder
    patches = repairer.repair(["def f(x):\\n    return x - 1\\n", {"code": src, "path": "m.py"}])
    for patch in patches:                                  # None where the model proposes no change
        if patch:
            print(patch.diff, patch.score)

Each item is windowed around its focus lines, or (without a focus) cut into windows that tile the whole
text, within the model's token budget, framed exactly as in training (patchcoder.windows), and decoded
under the edit grammar (patchcoder.decoding) or by ranking candidate rewrites (patchcoder.ranking), so
every patch parses and applies to the text it was computed from.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Mapping
from numbers import Integral

from patchcoder.checkpoint import MAX_TOKENS, MODES, check_option
from patchcoder.ground.errors import PatchcoderError
from patchcoder.ground.languages import LANGUAGES, language_of
from patchcoder.ground.schema import Whole, problem, shown
from patchcoder.ranking import Source
from patchcoder.windows import Window


@dataclasses.dataclass
class Patch:
    """A proposed change to one text: the edit script in the text's own line numbers, and its diff."""

    path: str | None
    original: str  # the exact text the patch was computed from
    script: object  # patchcoder.tokenizer.EditScript
    score: float  # mean log-probability per token of the script (higher is more confident)
    sstub: str | None = None  # its single-statement class (patchcoder.ground.sstub), None for another shape
    logp: float | None = None  # log-probability of the whole script (`candidates`: the search order)
    rank: int = 0  # `candidates`: its position in the enumeration of the item's candidates
    checked: bool = False  # `repair` with a `check`: the check returned True for this patch
    checks: int = 0  # how many times the item's check was called
    kind: str | None = None  # its kind of edit (patchcoder.ground.sstub.edit_kind), which chooses its threshold

    @property
    def diff(self) -> str:
        """A unified diff that `git apply` accepts (paths a/PATH, b/PATH)."""
        return self.script.to_unified_diff(self.original, self.path or "code")

    def apply(self, text: str) -> str:
        """The patched text; refuses a text other than the one the patch was computed from."""
        if text != self.original:
            raise PatchcoderError(f"{self.path or 'the text'} changed since the suggestion was made; "
                                  "nothing was applied")
        return self.script.apply(text)


class Repairer:
    def __init__(self, model, tokenizer, *, max_tokens: int = 512, max_new_tokens: int = 192,
                 mode: str = "generate", min_score: float | None = None, keep_heads: int | None = None,
                 precision: str = "auto", undo_weight: float | None = None,
                 min_score_by_edit: dict[str, float] | None = None):
        for key, value in (("max_tokens", max_tokens), ("mode", mode), ("min_score", min_score),
                           ("keep_heads", keep_heads), ("precision", precision), ("undo_weight", undo_weight),
                           ("min_score_by_edit", min_score_by_edit)):
            check_option(key, value)
        _check_arguments(max_new_tokens=(max_new_tokens, Whole(1, MAX_TOKENS)))
        self.precision = precision  # auto: bf16 autocast where the hardware runs it natively
        self.model, self.tokenizer = model, tokenizer
        # max_tokens: the prompt budget (the example length the model was trained with)
        self.max_tokens, self.max_new_tokens, self.mode = max_tokens, max_new_tokens, mode
        # `repair` returns every patch with its score; suggest and the hook hide those below min_score,
        # or below their kind of edit's threshold where min_score_by_edit gives one (`min_score_for`)
        self.min_score = min_score
        self.min_score_by_edit = dict(min_score_by_edit) if min_score_by_edit else None
        # ranking reads in full only the candidates whose edit (operation, first line) is among the
        # window's keep_heads most probable; None reads all
        self.keep_heads = keep_heads
        # rank mode: the best candidate's score less undo_weight × how much the model wants it undone
        # when shown the code it makes (ranking.undo_scores); None or 0: the score alone
        self.undo_weight = undo_weight or None

    @classmethod
    def load(cls, path: str | os.PathLike | None = None, **options) -> Repairer:
        """A checkpoint folder (model.safetensors, config.json, tokenizer.json); None = the shipped model.
        The folder's decoding.json (patchcoder.checkpoint) gives the options not passed here (a `min_score`
        passed here replaces its thresholds per kind of edit as well)."""
        from patchcoder.checkpoint import load_checkpoint

        checkpoint = load_checkpoint(path)
        if "min_score" in options:  # a threshold given here replaces the folder's, those per kind of edit too
            options.setdefault("min_score_by_edit", None)
        for key, value in checkpoint.decoding.items():
            options.setdefault(key, value)
        return cls(checkpoint.model, checkpoint.tokenizer, **options)

    def min_score_for(self, patch: Patch) -> float | None:
        """The calibrated threshold `patch` must reach to be shown (None: every patch is): its kind of edit's
        (`Patch.kind`; for a patch made without one, its class or "other") where min_score_by_edit gives one, else
        min_score."""
        from patchcoder.ground.sstub import OTHER

        by_edit = self.min_score_by_edit or {}
        return by_edit.get(patch.kind or patch.sstub or OTHER, self.min_score)

    def shows(self, patch: Patch) -> bool:
        """Whether `patch` reaches its calibrated threshold (`min_score_for`): what suggest and the hook show."""
        threshold = self.min_score_for(patch)
        return threshold is None or patch.score >= threshold

    def _rank_key(self, patch: Patch) -> tuple[bool, float]:
        """Which of two patches of an item is shown: one its threshold shows before one it hides (with a
        threshold per kind of edit, a lower score can be shown where a higher one is not), then the score."""
        return self.shows(patch), patch.score

    def repair(self, items, batch_size: int = 16, beam: int = 1, show_progress: bool | None = None,
               mode: str | None = None, max_checks: int = 50) -> list[Patch | None]:
        """One Patch (or None: no change proposed) per item: its best window's, the highest-scoring among
        those that reach their calibrated threshold (`shows`), else the highest-scoring. An item is a
        str of code or a dict with
        `code` and optional `path`, `language`, `intent` (a commit-message-like hint) and `focus`
        (first, last) lines, 0-based and inclusive, to centre the window on (candidate ranking then
        rewrites only those lines), and `check`. A bad item or argument is one PatchcoderError naming
        the item's index, before any work.

        mode: "generate" (decode under the edit grammar, greedy or beam), "rank" (score every
        single-statement rewrite of the window, and "no change", by teacher forcing; the best wins) or
        "both" (the generated script joins the ranked candidates); None: the model's own mode
        (its folder's decoding.json, else "generate").

        An item with `check`, a callable `check(patched_code) -> bool`, gets instead the first of its
        `candidates` (in the model's order) for which the check returns True (`Patch.checked`,
        `Patch.checks`: the calls it took), or None when none does within `max_checks` calls. The check
        is never called on a candidate that does not parse, nor more than `max_checks` times per item;
        an exception it raises counts as False."""
        _check_arguments(max_checks=(max_checks, Whole(1)))
        items, mode = self._decoding_call(items, batch_size, beam, show_progress, mode)
        checked = {index for index, item in enumerate(items) if item.get("check") is not None}
        unchecked = [index for index in range(len(items)) if index not in checked]
        results: list[Patch | None] = [None] * len(items)
        by_window = self._window_patches([items[index] for index in unchecked], batch_size, beam, show_progress,
                                         mode, len(items)) if unchecked else []
        for index, patches in zip(unchecked, by_window, strict=True):
            for patch in patches:  # one patch per item: its best window's
                if patch is not None and (results[index] is None or self._rank_key(patch) > self._rank_key(
                        results[index])):
                    results[index] = patch
        if checked:
            found = self.candidates([items[index] for index in sorted(checked)], beam=beam)
            for index, mine in zip(sorted(checked), found, strict=True):
                results[index] = _first_that_passes(mine, items[index]["check"], max_checks)
        return results

    def window_patches(self, items, batch_size: int = 16, beam: int = 1, show_progress: bool | None = None,
                       mode: str | None = None) -> list[list[Patch | None]]:
        """Per item (items as in `repair`, without `check`), per window in order, the change `repair` would
        make there (None: none): every window's verdict rather than the item's best — what `patchcoder eval
        --clean-code` counts as false alarms on code taken as correct."""
        items, mode = self._decoding_call(items, batch_size, beam, show_progress, mode)
        if any(item.get("check") is not None for item in items):
            raise PatchcoderError("window_patches takes items without `check` (repair runs the checks)")
        return self._window_patches(items, batch_size, beam, show_progress, mode, len(items))

    def _decoding_call(self, items, batch_size, beam, show_progress, mode) -> tuple[list[dict], str]:
        """(the items, the mode) of a `repair` or `window_patches` call, its arguments checked: one PatchcoderError
        for a bad one, before any work."""
        _check_arguments(batch_size=(batch_size, Whole(1)), beam=(beam, Whole(1)))
        if show_progress is not None and not isinstance(show_progress, bool):
            raise PatchcoderError(f"show_progress must be True, False or None, got {shown(show_progress)}")
        mode = mode or self.mode
        if mode not in MODES:
            raise PatchcoderError(f"mode must be 'generate', 'rank' or 'both', got {mode!r}")
        return _checked_items(items), mode

    def _window_patches(self, items: list[dict], batch_size: int, beam: int, show_progress: bool | None,
                        mode: str, count: int) -> list[list[Patch | None]]:
        """`window_patches` on items already validated; `count`, the items of the whole call, decides the progress
        bar. Of two windows' patches with the same `_rank_key`, `repair` keeps the first in the text."""
        from patchcoder.ground.console import progress_bar
        from patchcoder.tokenizer.edits import EditScript

        sources: list[Source] = []
        windows: list[Window] = []
        results: list[list[Patch | None]] = []
        place: dict[int, int] = {}  # id(window) -> its place among its item's windows
        for index, item in enumerate(items):
            source, mine = self._windowed(index, item)
            sources.append(source)
            windows.extend(mine)
            results.append([None] * len(mine))
            place.update((id(w), k) for k, w in enumerate(mine))
        # a progress bar on stderr for long work (many items, or a long text's many windows), unless told
        show = (count >= 64 or len(windows) >= 64) if show_progress is None else show_progress
        # Similar lengths share a batch: prompts are left-padded to the longest, and attention pays for padding.
        by_length = sorted(windows, key=lambda w: len(w.prompt))
        with progress_bar("repairing", len(windows), show) as advance:
            for first in range(0, len(by_length), batch_size):
                batch = by_length[first:first + batch_size]
                decoded = self.decode_windows([sources[w.index] for w in batch], batch, mode, beam)
                for window, out in zip(batch, decoded, strict=True):
                    if out is None or not out.finished:
                        continue
                    script = EditScript.from_tokens(out.ids, self.tokenizer, window.n_lines)
                    if not script.ops:
                        continue
                    source = sources[window.index]
                    shifted = script.shifted(window.start)
                    patched = shifted.apply(source.code)
                    if patched == source.code:
                        continue  # rewrites lines into themselves: not a change
                    if source.breaks_syntax(patched):
                        continue  # never suggest a change that adds syntax errors
                    patch = Patch(items[window.index].get("path"), source.code, shifted, out.score,
                                  **_kinds(source.code, patched, source.language))
                    results[window.index][place[id(window)]] = _in_own_layout(patch, source)
                advance(len(batch))
        return results

    def candidates(self, items, *, beam: int = 1, wide: bool = True) -> list[list[Patch]]:
        """Every candidate change of each item (items as in `repair`), in the model's order: the
        single-statement rewrites of its windows' rewritable (focus) lines that parse (with `wide`, the
        rewrite engine's wider set: every operator of a group into every other, other names of the same
        arity, returned values, missing statements; else the classes of the synthetic bugs), and with beam > 1
        the scripts of beam search that add no syntax error, each once (the best-scoring window's),
        best first by `Patch.logp`, the log-probability of the whole script; `Patch.rank` is a
        candidate's place in the enumeration (windows in order, rewrites as enumerated)."""
        from patchcoder.decoding import autocast, constrained_beam
        from patchcoder.ranking import rank
        from patchcoder.tokenizer.edits import EditScript

        _check_arguments(beam=(beam, Whole(1)))
        items = _checked_items(items)
        sources: list[Source] = []
        windows: list[Window] = []
        for index, item in enumerate(items):
            source, found = self._windowed(index, item, wide=wide)
            sources.append(source)
            windows.extend(found)
        mine = [sources[w.index] for w in windows]
        with autocast(self.model, self.precision):
            extra = None
            if beam > 1:
                beams = constrained_beam(self.model, self.tokenizer, [w.prompt for w in windows],
                                         [w.n_lines for w in windows], beam=beam, max_new_tokens=self.max_new_tokens)
                extra = [[h.ids for h in hyps if h.finished] for hyps in beams]
            rankings = rank(self.model, self.tokenizer, mine, windows, keep_heads=None, extra=extra,
                            max_new_tokens=max(self.max_tokens, self.max_new_tokens + 1))
        best: list[dict[str, Patch]] = [{} for _ in items]  # per item: patched text -> its best patch
        order = [0] * len(items)
        for window, ranking in zip(windows, rankings, strict=True):
            source = sources[window.index]
            for ids, score in zip(ranking.candidates, ranking.scores, strict=True):
                script = EditScript.from_tokens(ids, self.tokenizer, window.n_lines)
                if not script.ops:
                    continue  # "no change"
                shifted = script.shifted(window.start)
                patched = shifted.apply(source.code)
                if patched == source.code or source.breaks_syntax(patched):
                    continue
                logp = score * len(ids)
                known = best[window.index].get(patched)
                if known is None:
                    best[window.index][patched] = Patch(items[window.index].get("path"), source.code, shifted, score,
                                                        logp=logp, rank=order[window.index],
                                                        **_kinds(source.code, patched, source.language))
                    order[window.index] += 1
                elif logp > known.logp:
                    known.script, known.score, known.logp = shifted, score, logp
        return [[own for p in sorted(found.values(), key=lambda p: (-p.logp, p.rank))
                 if (own := _in_own_layout(p, source)) is not None]
                for found, source in zip(best, sources, strict=True)]

    def _windowed(self, index: int, item: dict, *, wide: bool = False) -> tuple[Source, list[Window]]:
        """Item `index` as a Source (its language from `language`, else its path; `wide` as in
        `candidates`) and its windows: the model reads the code with "\\n" line endings and space
        indentation (patchcoder.layout)."""
        from patchcoder.layout import normalise
        from patchcoder.windows import windows_for

        language = item.get("language") or (language_of(item["path"]) if item.get("path") else None)
        code, layout = normalise(item["code"])
        windows = windows_for(self.tokenizer, code, max_tokens=self.max_tokens, language=language,
                              path=item.get("path"), intent=item.get("intent"), focus=item.get("focus"), index=index)
        return Source(code, language, layout, wide=wide), windows

    def fix(self, directory: str | os.PathLike, *, test: str, **options):
        """`patchcoder fix` from Python: find a patch that makes the shell command `test` pass in the
        tree at `directory` (options: the fields of `patchcoder.fix.FixConfig`); returns a `FixResult`.
        The tree is never written (apply a fix with `patchcoder.fix.apply_fix`)."""
        from patchcoder.fix import FixConfig, fix

        return fix(self, FixConfig(test=test, directory=str(directory), **options))

    def decode_windows(self, items: list, windows: list[Window], mode: str | None = None, beam: int = 1) -> list:
        """One `decoding.Decoded` script (tokens in window coordinates) or None per window, decoded
        together; items[k] is the text windows[k] was cut from: a dict with `code` and `language`, or a
        `ranking.Source`. Modes as in `repair`."""
        from patchcoder.decoding import autocast, constrained_beam, constrained_greedy
        from patchcoder.ranking import first_that_parses, rank, undo_scores

        if not windows:
            return []
        known: dict[int, Source] = {}  # one Source per item (by identity): its windows share its parse
        sources = [known.setdefault(id(item), Source.of(item)) for item in items]
        mode = mode or self.mode
        prompts, lines = [w.prompt for w in windows], [w.n_lines for w in windows]
        decoded: list = [None] * len(windows)
        with autocast(self.model, self.precision):
            if mode != "rank":
                if beam == 1:
                    decoded = constrained_greedy(self.model, self.tokenizer, prompts, lines,
                                                 max_new_tokens=self.max_new_tokens)
                else:  # the best hypothesis that does not break the parse; "no change" may be it
                    beams = constrained_beam(self.model, self.tokenizer, prompts, lines, beam=beam,
                                             max_new_tokens=self.max_new_tokens)
                    decoded = [first_that_parses(self.tokenizer, source, w, hyps)
                               for source, w, hyps in zip(sources, windows, beams, strict=True)]
            if mode != "generate":
                # The generated script joins the candidates, so all are scored alike (without grammar masks).
                extra = [[d.ids] if d is not None and d.finished else [] for d in decoded]
                # room for the longest candidate: a window's rewrite, or a generated script
                room = max(self.max_tokens, self.max_new_tokens + 1)
                rankings = rank(self.model, self.tokenizer, sources, windows, max_new_tokens=room,
                                keep_heads=self.keep_heads, extra=extra)
                decoded = [ranking.best() for ranking in rankings]
                if self.undo_weight:
                    undo = undo_scores(self.model, self.tokenizer, sources, windows, [d.ids for d in decoded])
                    decoded = [d if u is None else dataclasses.replace(d, score=d.score - self.undo_weight * u)
                               for d, u in zip(decoded, undo, strict=True)]
        return decoded


ITEM_KEYS = ("code", "path", "language", "intent", "focus", "check")


def _check_arguments(**given) -> None:
    """Each keyword's (value, rule): a PatchcoderError naming the first argument its rule refuses."""
    for name, (value, rule) in given.items():
        if (line := problem(name, value, rule)) is not None:
            raise PatchcoderError(line)


def _checked_items(items) -> list[dict]:
    """The items of `repair` and `candidates` as dicts, each checked: a PatchcoderError naming the
    first bad item by its index."""
    if isinstance(items, (str, bytes, Mapping)) or not isinstance(items, Iterable):
        hint = "; to repair one text, pass [text]" if isinstance(items, (str, Mapping)) else ""
        raise PatchcoderError(f"items must be a list of items (a str of code or a dict with 'code'), "
                              f"got {shown(items, 40)}{hint}")
    out = []
    for index, item in enumerate(items):
        if isinstance(item, str):
            item = {"code": item}
        elif isinstance(item, Mapping):
            item = dict(item)
        else:
            raise PatchcoderError(f"item {index}: expected a str of code or a dict with 'code', got {shown(item)}")
        _check_item(index, item)
        out.append(item)
    return out


def _check_item(index: int, item: dict) -> None:
    unknown = [key for key in item if key not in ITEM_KEYS]
    if unknown:
        raise PatchcoderError(f"item {index}: unknown key {unknown[0]!r}; an item has {', '.join(ITEM_KEYS)}")
    if not isinstance(item.get("code"), str):
        raise PatchcoderError(f"item {index}: no 'code' string (the text to repair)")
    for key in ("code", "path", "intent", "language"):
        value = item.get(key)
        if value is not None and not isinstance(value, str):
            raise PatchcoderError(f"item {index}: {key!r} must be a str, got {shown(value)}")
        try:
            (value or "").encode("utf-8")
        except UnicodeEncodeError as exc:  # a lone surrogate, e.g. from bytes decoded with surrogateescape
            raise PatchcoderError(f"item {index}: {key!r} holds a lone surrogate {value[exc.start]!r} at character "
                                  f"{exc.start}, which is not text; decode the bytes as UTF-8 first") from None
    if item.get("language") is not None and item["language"] not in LANGUAGES:
        raise PatchcoderError(f"item {index}: unknown language {item['language']!r}; known: {', '.join(LANGUAGES)}")
    focus = item.get("focus")
    if focus is not None and not (
            isinstance(focus, (tuple, list)) and len(focus) == 2
            and all(isinstance(line, Integral) and not isinstance(line, bool) for line in focus)
            and 0 <= focus[0] <= focus[1]):
        raise PatchcoderError(f"item {index}: 'focus' must be (first, last) line numbers, 0-based, with "
                              f"first <= last, got {shown(focus)}")
    if item.get("check") is not None and not callable(item["check"]):
        raise PatchcoderError(f"item {index}: 'check' must be a callable taking the patched code")


def _first_that_passes(patches: list[Patch], check, max_checks: int) -> Patch | None:
    """The first patch whose patched code `check` accepts, within `max_checks` calls."""
    for calls, patch in enumerate(patches[:max_checks], start=1):
        try:
            passed = bool(check(patch.apply(patch.original)))
        except Exception:  # a check that raises is a failed check
            passed = False
        if passed:
            return dataclasses.replace(patch, checked=True, checks=calls)
    return None


def _in_own_layout(patch: Patch | None, source: Source | None) -> Patch | None:
    """`patch` (made on the text the model read) on the item's own text, in its line endings and indentation;
    None when, written so, Python code with tab indentation no longer parses where it does read normalised (tabs
    and spaces mixed inconsistently, a TabError: the syntax check read the normalised text, all spaces)."""
    if patch is None or source is None or source.layout is None:
        return patch
    own = dataclasses.replace(patch, original=source.layout.original, script=source.layout.restore(patch.script))
    if source.language == "python" and source.layout.has_tabs:
        normal = _statements_changed(patch.apply(patch.original), patch.script)
        written = _statements_changed(own.apply(own.original), own.script)
        if _parses(normal) and not _parses(written):
            return None
    return own


def _statements_changed(patched: str, script) -> str:
    """The top-level statements of `patched` that `script` (of the text it was made from) changed
    (`layout.statement_span`: what Python's indentation rules are checked within; parsing them alone keeps this
    cheap)."""
    from patchcoder.layout import statement_span
    from patchcoder.tokenizer.edits import split_lines

    lines, offset, first, last = split_lines(patched), 0, None, None
    for op in sorted(script.ops, key=lambda o: o.start):
        new = len(split_lines(op.text))
        start = op.start + offset
        first = start if first is None else min(first, start)
        last = max(last if last is not None else start, start + max(new, 1) - 1)
        offset += new - (op.end - op.start)
    if first is None:
        return patched
    lo, hi = statement_span(lines, first, last)
    return "".join(lines[lo:hi])


def _parses(code: str) -> bool:
    """Whether Python's own parser accepts `code` (it also checks what tree-sitter does not: TabError)."""
    import ast
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. an invalid escape sequence: the code's own, not ours to say
            ast.parse(code)
    except (SyntaxError, ValueError):  # TabError and IndentationError are SyntaxErrors; ValueError: a NUL byte
        return False
    return True


def _kinds(code: str, patched: str, language: str | None) -> dict[str, str | None]:
    """A patch's `sstub` and `kind` (`patchcoder.ground.sstub.classify`)."""
    from patchcoder.ground.sstub import classify

    sstub, kind = classify(code, patched, language)
    return {"sstub": sstub, "kind": kind}
