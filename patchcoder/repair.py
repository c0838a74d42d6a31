"""The batch-repair API: load a checkpoint once, propose patches for many pieces of code.

    from patchcoder import Repairer
    repairer = Repairer.load("runs/default/final")        # None: the model shipped with patchcoder
    patches = repairer.repair(["def f(x):\\n    return x - 1\\n", {"code": src, "path": "m.py"}])
    for patch in patches:                                  # None where the model proposes no change
        if patch:
            print(patch.diff, patch.score)

Each item is windowed around its focus lines, or (without a focus) cut into windows that tile the whole
text, within the model's token budget, framed exactly as in training, and decoded under the edit
grammar, so every patch parses and applies to the text it was computed from.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from patchcoder.ground.errors import PatchcoderError

SHIPPED_MODEL = Path(__file__).parent / "assets" / "model"
MODES = ("generate", "rank", "both")
PRECISIONS = ("auto", "bf16", "fp32")
# A model folder may name the decoding mode that measured best for it, how many edit heads ranking
# reads in full, and a calibrated threshold below which suggest and the hook stay quiet:
# decoding.json {"mode": "rank", "keep_heads": 4, "min_score": -1.2}.
DECODING_FILE = "decoding.json"


@dataclasses.dataclass
class Patch:
    """A proposed change to one text: the edit script in the text's own line numbers, and its diff."""

    path: str | None
    original: str  # the exact text the patch was computed from
    script: object  # patchcoder.tokenizer.EditScript
    score: float  # mean log-probability per token of the script (higher is more confident)
    sstub: str | None = None

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


@dataclasses.dataclass
class Window:
    """Lines [start, start + n_lines) of item `index`, framed as the prompt the model decodes from."""

    index: int
    prompt: list[int]
    start: int
    n_lines: int
    focus: tuple[int, int] | None = None  # first and last line (file coordinates) that candidates may rewrite


class Repairer:
    def __init__(self, model, tokenizer, *, max_tokens: int = 512, max_new_tokens: int = 192,
                 mode: str = "generate", min_score: float | None = None, keep_heads: int | None = None,
                 precision: str = "auto"):
        for key, value in (("mode", mode), ("min_score", min_score), ("keep_heads", keep_heads),
                           ("precision", precision)):
            _check_option(key, value)
        self.precision = precision  # auto: bf16 autocast where the hardware runs it natively
        self.model, self.tokenizer = model, tokenizer
        self.max_tokens, self.max_new_tokens, self.mode = max_tokens, max_new_tokens, mode
        # `repair` returns every patch with its score; suggest and the hook hide those below min_score
        self.min_score = min_score
        # ranking reads in full only the candidates whose edit (operation, first line) is among the
        # window's keep_heads most probable; None reads all
        self.keep_heads = keep_heads

    @classmethod
    def load(cls, path: str | os.PathLike | None = None, **options) -> Repairer:
        """A checkpoint folder (model.safetensors, config.json, tokenizer.json); None = the shipped model."""
        import json

        from patchcoder.model import PatchCoder
        from patchcoder.tokenizer.vocab import CodeTokenizer

        directory = Path(path) if path is not None else SHIPPED_MODEL
        if path is None and not (directory / "model.safetensors").exists():
            raise PatchcoderError(f"the model shipped with patchcoder is missing from {directory} (an incomplete "
                                  "install?); reinstall patchcoder or pass a checkpoint folder made by `patchcoder train`")
        model = PatchCoder.from_pretrained(directory)
        tokenizer_file = directory / "tokenizer.json"
        tokenizer = CodeTokenizer.load(tokenizer_file) if tokenizer_file.exists() else CodeTokenizer.default()
        if tokenizer.vocab_size != model.config.vocab_size:
            raise PatchcoderError(f"{directory}: the model's vocabulary ({model.config.vocab_size}) is not the "
                                  f"tokenizer's ({tokenizer.vocab_size})")
        training = directory / "training.json"
        if training.exists() and "max_tokens" not in options:
            try:
                options["max_tokens"] = int(json.loads(training.read_text())["config"]["data"]["seq_len"])
            except (KeyError, ValueError, TypeError):
                pass
        decoding = directory / DECODING_FILE
        if decoding.exists():
            for key, value in _read_decoding(decoding).items():
                options.setdefault(key, value)
        return cls(model, tokenizer, **options)

    def repair(self, items, batch_size: int = 16, beam: int = 1, show_progress: bool | None = None,
               mode: str | None = None) -> list[Patch | None]:
        """One Patch (or None: no change proposed) per item. An item is a str of code or a dict with
        `code` and optional `path`, `language`, `intent` (a commit-message-like hint) and `focus`
        (first, last) lines, 0-based and inclusive, to centre the window on (candidate ranking then
        rewrites only those lines).

        mode: "generate" (decode under the edit grammar, greedy or beam), "rank" (score every
        single-statement rewrite of the window, and "no change", by teacher forcing; the best wins) or
        "both" (the generated script joins the ranked candidates); None: the model's own mode
        (its folder's decoding.json, else "generate")."""
        from patchcoder.ground.console import progress_bar
        from patchcoder.ground.languages import language_of
        from patchcoder.tokenizer.edits import EditScript

        if beam < 1:
            raise PatchcoderError(f"beam must be at least 1, got {beam}")
        mode = mode or self.mode
        if mode not in MODES:
            raise PatchcoderError(f"mode must be 'generate', 'rank' or 'both', got {mode!r}")
        items = [{"code": item} if isinstance(item, str) else dict(item) for item in items]
        windows: list[Window] = []
        for index, item in enumerate(items):
            if not isinstance(item.get("code"), str):
                raise PatchcoderError(f"item {index} has no 'code' string")
            language = item.get("language") or (language_of(item["path"]) if item.get("path") else None)
            item["language"] = language
            windows.extend(self._windows(index, item))
        results: list[Patch | None] = [None] * len(items)
        show = len(items) >= 64 if show_progress is None else show_progress
        # Similar lengths share a batch: prompts are left-padded to the longest, and attention pays for padding.
        by_length = sorted(windows, key=lambda w: len(w.prompt))
        with progress_bar("repairing", len(windows), show) as advance:
            for first in range(0, len(by_length), batch_size):
                batch = by_length[first:first + batch_size]
                decoded = self.decode_windows([items[w.index] for w in batch], batch, mode, beam)
                for window, out in zip(batch, decoded, strict=True):
                    if out is None or not out.finished:
                        continue
                    script = EditScript.from_tokens(out.ids, self.tokenizer, window.n_lines)
                    if not script.ops:
                        continue
                    item = items[window.index]
                    shifted = script.shifted(window.start)
                    patched = shifted.apply(item["code"])
                    if patched == item["code"]:
                        continue  # rewrites lines into themselves: not a change
                    if self._breaks_syntax(item, patched):
                        continue  # never suggest a change that adds syntax errors
                    best = results[window.index]
                    if best is None or out.score > best.score:  # one patch per item: its best window's
                        results[window.index] = Patch(item.get("path"), item["code"], shifted, out.score,
                                                      _sstub(item["code"], shifted, item["language"]))
                advance(len(batch))
        return results

    def decode_windows(self, items: list[dict], windows: list[Window], mode: str | None = None,
                       beam: int = 1) -> list:
        """One `Decoded` script (tokens in window coordinates) or None per window, decoded together;
        items[k] (with `code` and `language`) is the text windows[k] was cut from. Modes as in `repair`."""
        if not windows:
            return []
        with self._autocast():
            return self._decode_windows(items, windows, mode, beam)

    def _autocast(self):
        """bf16 autocast where matrix units make it pay (CUDA, or a CPU whose oneDNN runs bf16 natively),
        per `precision`; log-probabilities are always taken in fp32."""
        import contextlib

        import torch

        device = self.model.embed.weight.device
        use = self.precision == "bf16" or (self.precision == "auto" and (
            device.type == "cuda" or (device.type == "cpu" and _cpu_runs_bf16())))
        return torch.autocast(device.type, dtype=torch.bfloat16) if use else contextlib.nullcontext()

    def _decode_windows(self, items: list[dict], windows: list[Window], mode: str | None, beam: int) -> list:
        from patchcoder.decoding import constrained_beam, constrained_greedy

        mode = mode or self.mode
        prompts, lines = [w.prompt for w in windows], [w.n_lines for w in windows]
        decoded: list = [None] * len(windows)
        if mode != "rank":
            if beam == 1:
                decoded = constrained_greedy(self.model, self.tokenizer, prompts, lines, self.max_new_tokens)
            else:  # the best hypothesis that does not break the parse; "no change" may be it
                beams = constrained_beam(self.model, self.tokenizer, prompts, lines, beam, self.max_new_tokens)
                decoded = [self._first_that_parses(item, w, hyps)
                           for item, w, hyps in zip(items, windows, beams, strict=True)]
        if mode != "generate":
            # The generated script joins the candidates, so all are scored alike (without grammar masks).
            extra = [[d.ids] if d is not None and d.finished else [] for d in decoded]
            decoded = self._rank(items, windows, extra)
        return decoded

    @staticmethod
    def _errors_before(item: dict) -> int | None:
        """syntax_errors of the item's code, parsed once and kept on the item."""
        if "_syntax_errors" not in item:
            item["_syntax_errors"] = syntax_errors(item["code"], item["language"])
        return item["_syntax_errors"]

    def _breaks_syntax(self, item: dict, patched: str) -> bool:
        """Whether `patched` has more tree-sitter ERROR/MISSING nodes than the item's code (False
        without a grammar)."""
        before = self._errors_before(item)
        if before is None:
            return False
        after = syntax_errors(patched, item["language"])
        return after is not None and after > before

    def _first_that_parses(self, item: dict, window: Window, hypotheses: list):
        """The best-scoring hypothesis whose result has no more tree-sitter ERROR nodes than the input
        (re-ranking by syntax); the best one when none qualifies or the language has no grammar."""
        from patchcoder.tokenizer.edits import EditScript, EditScriptError

        if not hypotheses:
            return None
        before = self._errors_before(item)
        if before is None:
            return hypotheses[0]
        for hyp in hypotheses:
            if not hyp.finished:
                continue
            try:
                script = EditScript.from_tokens(hyp.ids, self.tokenizer, window.n_lines).shifted(window.start)
                after = syntax_errors(script.apply(item["code"]), item["language"])
            except EditScriptError:
                continue
            if after is not None and after <= before:
                return hyp
        return hypotheses[0]

    def _rank(self, items: list[dict], windows: list[Window], extra: list[list[list[int]]] | None = None) -> list:
        """For each window, the best-scoring candidate script: "no change", one single-statement
        rewrite of the window's (focus) lines (the rewrite classes of the synthetic-data generator),
        or one of `extra[k]` (e.g. the generated script), all scored by teacher forcing. With
        `keep_heads`, only the rewrites whose edit (operation, first line) is among the window's
        `keep_heads` most probable are scripted and read in full."""
        from patchcoder.decoding import CandidateScorer, Decoded, best_heads

        if not windows:
            return []
        rewrites: dict[int, list | None] = {}  # per item (by identity): its windows share one enumeration
        for item in items:
            if id(item) not in rewrites:
                rewrites[id(item)] = self._rewrites(item, [w for i, w in zip(items, windows, strict=True) if i is item])
        # room for the longest candidate: a window's rewrite, or a generated script
        scorer = CandidateScorer(self.model, [w.prompt for w in windows], max(self.max_tokens, self.max_new_tokens + 1))
        options = [self._options(item, window, rewrites[id(item)]) for item, window in zip(items, windows, strict=True)]
        if self.keep_heads is not None:
            heads = [sorted({head for _, _, head in mine}) for mine in options]
            for k, (hs, values) in enumerate(zip(heads, scorer.head_scores(heads), strict=True)):
                kept: list = []  # the best heads that have a rewrite that parses, best first
                for j in best_heads(values, len(hs)):
                    kept.extend(self._parsing(items[k], [o for o in options[k] if o[2] == hs[j]]))
                    if len({o[2] for o in kept}) == self.keep_heads:
                        break
                where = {id(o): n for n, o in enumerate(options[k])}
                options[k] = sorted(kept, key=lambda o: where[id(o)])  # the unpruned order: ties break alike
        else:
            options = [self._parsing(item, mine) for item, mine in zip(items, options, strict=True)]
        candidates = [self._scripts(item, window, mine) for item, window, mine in zip(items, windows, options, strict=True)]
        for mine, more in zip(candidates, extra or [[] for _ in windows], strict=True):
            mine.extend(ids for ids in more if ids not in mine)
        scores = scorer.scores(candidates)
        best: list = []
        for mine, theirs in zip(candidates, scores, strict=True):
            k = max(range(len(mine)), key=theirs.__getitem__)
            best.append(Decoded(mine[k], True, theirs[k]))
        return best

    @staticmethod
    def _rewritable(window: Window) -> tuple[int, int]:
        """[lo, hi): the lines candidates may rewrite: the window's, or its focus lines when it has one."""
        lo, hi = window.start, window.start + window.n_lines
        if window.focus is not None:  # e.g. the lines a developer changed: rewrite only those
            lo, hi = max(lo, window.focus[0]), max(lo, min(hi, window.focus[1] + 1))
        return lo, hi

    def _rewrites(self, item: dict, windows: list[Window]) -> list | None:
        """Every single-statement rewrite of the item's lines that `windows` may rewrite (None: the
        language has no rewrites)."""
        from patchcoder.tokenizer.rewrites import UnsupportedLanguage, enumerate_rewrites

        spans = [self._rewritable(w) for w in windows]
        lines = (min(lo for lo, _ in spans), max(hi for _, hi in spans))
        try:
            # unchecked: _scripts checks that a rewrite parses only for the candidates it keeps
            return enumerate_rewrites(item["code"], item["language"] or "python", lines=lines, check=False)
        except UnsupportedLanguage:
            return None

    def _candidates(self, item: dict, window: Window, rewrites: list | None = None) -> list[list[int]]:
        """Scripts (window coordinates, ending in `<|eos|>`) for "no change" and every rewrite among
        `rewrites` (default: the item's, enumerated here) inside the window, or inside its focus lines."""
        if rewrites is None:
            rewrites = self._rewrites(item, [window])
        return self._scripts(item, window, self._parsing(item, self._options(item, window, rewrites)))

    def _options(self, item: dict, window: Window, rewrites: list | None) -> list[tuple[object, str, tuple[int, int]]]:
        """(rewrite, new window text, head) for each rewrite that changes only lines the window may
        rewrite; head = the ids of its edit script's first operation and first line, found from the
        lines the rewrite leaves alone at either end (cheap: no lexing)."""
        from patchcoder.ground.sstub import common_affixes
        from patchcoder.tokenizer.edits import edit_script, split_lines

        if not rewrites:
            return []
        lo, hi = self._rewritable(window)
        old_window = split_lines(item["code"])[window.start:window.start + window.n_lines]
        special, out = self.tokenizer.special, []
        for rewrite in rewrites:
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
                ops = edit_script("".join(old_window), "".join(new_window), item["language"], lexer=self.tokenizer.lexer).ops
                if ops:
                    kind, start = ops[0].kind, ops[0].start
            out.append((rewrite, "".join(new_window), (special[f"<{kind}>"], self.tokenizer.line_marker(start))))
        return out

    @staticmethod
    def _parsing(item: dict, options: list) -> list:
        """The options whose rewrite parses (one incremental parse each; the item's checker is kept)."""
        from patchcoder.tokenizer.rewrites import rewrite_checker

        if not options:
            return []
        if "_rewrite_checker" not in item:
            item["_rewrite_checker"] = rewrite_checker(item["code"], item["language"] or "python")
        parses = item["_rewrite_checker"]
        return [option for option in options if parses is not None and parses(option[0])]

    def _scripts(self, item: dict, window: Window, options: list) -> list[list[int]]:
        """[<|eos|>] (no change), then the script of each option (from `_options`, checked by
        `_parsing`) whose edits stay inside the lines the window may rewrite."""
        from patchcoder.tokenizer.edits import edit_script, split_lines

        eos, language = self.tokenizer.eos_id, item["language"]
        out = [[eos]]
        lo, hi = self._rewritable(window)
        # Scripts are computed on the window's text alone: a rewrite changes nothing outside it, and
        # lexing the window instead of the whole file for every candidate keeps ranking linear.
        old_window = "".join(split_lines(item["code"])[window.start:window.start + window.n_lines])
        for _, new_window, _ in options:
            script = edit_script(old_window, new_window, language, lexer=self.tokenizer.lexer)  # one parse: encode_lines reuses it
            if not script.ops or script.ops[0].start + window.start < lo or script.ops[-1].end + window.start > hi:
                continue
            ids = self.tokenizer.encode_lines(new_window, language)
            out.append(script.to_tokens(self.tokenizer, new_line_ids=ids) + [eos])
        return out

    def _windows(self, index: int, item: dict) -> list[Window]:
        """With a focus that fits one window, the window around it; otherwise windows that tile the
        text (or the focus lines), each as many whole lines as the prompt budget takes, each keeping
        its part of the focus. A single line too long for any prompt gives no window."""
        from patchcoder.tokenizer.edits import split_lines
        from patchcoder.tokenizer.examples import encode_prompt

        code, tok = item["code"], self.tokenizer
        n = len(split_lines(code))
        lines = tok.encode_lines(code, item["language"])
        if n == 0:
            return [self._window(index, item, lines)]
        focus = item.get("focus")
        budget = self._budget(item)
        if focus is not None:
            first, last = max(0, min(focus[0], n - 1)), max(0, min(focus[1], n - 1))
            first, last = min(first, last), max(first, last)
            if last - first < tok.max_lines and sum(len(lines[k]) + 1 for k in range(first, last + 1)) <= budget:
                return [self._window(index, item | {"focus": (first, last)}, lines)]
            lo, hi = first, last + 1
        else:
            lo, hi = 0, n
        windows, start = [], lo
        while start < hi:
            end, cost = start + 1, len(lines[start]) + 1  # a window holds at least one line
            while end < hi and end - start < tok.max_lines and cost + len(lines[end]) + 1 <= budget:
                cost += len(lines[end]) + 1
                end += 1
            if cost <= budget:
                prompt = encode_prompt(tok, code, item.get("path") or "", item.get("intent"), item["language"],
                                       start, end, line_ids=lines)
                windows.append(Window(index, prompt, start, end - start, (start, end - 1) if focus else None))
            start = end
        return windows

    def _budget(self, item: dict) -> int:
        """Tokens a window's lines may take: training windows fill max_tokens with the prompt and the
        script; a quarter is left for the script."""
        from patchcoder.tokenizer.examples import encode_prompt

        framing = encode_prompt(self.tokenizer, "", item.get("path") or "", item.get("intent"), item["language"])
        return int(0.75 * self.max_tokens) - len(framing)

    def _window(self, index: int, item: dict, lines: list[list[int]]) -> Window:
        """The longest run of lines around the focus whose prompt leaves room for the script; `lines`
        are the item's encoded lines (`encode_lines`)."""
        from patchcoder.tokenizer.edits import split_lines
        from patchcoder.tokenizer.examples import encode_prompt

        code, tok = item["code"], self.tokenizer
        n = len(split_lines(code))
        first, last = item.get("focus") or (n // 2, n // 2)
        first, last = max(0, min(first, n)), max(0, min(last, n))
        budget = self._budget(item)
        start, end = first, min(n, max(last, first) + 1) if n else 0
        cost = sum(len(lines[k]) + 1 for k in range(start, end))
        grew = True
        while grew and end - start < tok.max_lines:
            grew = False
            for k in ((start - 1,) if start > 0 else ()) + ((end,) if end < n else ()):
                if cost + len(lines[k]) + 1 > budget or end - start >= tok.max_lines:
                    continue
                cost += len(lines[k]) + 1
                start, end = (k, end) if k < start else (start, k + 1)
                grew = True
        prompt = encode_prompt(tok, code, item.get("path") or "", item.get("intent"), item["language"], start, end,
                               line_ids=lines)
        return Window(index, prompt, start, end - start, (first, last) if item.get("focus") else None)


def _read_decoding(path: Path) -> dict:
    """The `mode`, `min_score`, `keep_heads` and `precision` a model folder's decoding.json sets (each may be absent)."""
    import json

    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise PatchcoderError(f"{path}: not readable JSON ({exc})") from None
    if not isinstance(data, dict):
        raise PatchcoderError(f"{path}: not a JSON object")
    out = {}
    for key in ("mode", "min_score", "keep_heads", "precision"):
        if data.get(key) is not None:
            try:
                out[key] = _check_option(key, data[key])
            except PatchcoderError as exc:
                raise PatchcoderError(f"{path}: {exc}") from None
    return out


def _check_option(key: str, value):
    """`value` if it is a valid decoding option `key` (None: unset, except for mode and precision),
    else a PatchcoderError naming the option."""
    import math

    if key == "mode" and value not in MODES:
        raise PatchcoderError(f"mode must be 'generate', 'rank' or 'both', got {value!r}")
    if key == "precision" and value not in PRECISIONS:
        raise PatchcoderError(f"precision must be one of {', '.join(PRECISIONS)}, got {value!r}")
    if key == "keep_heads" and value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise PatchcoderError(f"keep_heads must be a positive integer, got {value!r}")
    if key == "min_score" and value is not None:
        try:
            finite = not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(float(value))
        except OverflowError:
            finite = False
        if not finite:
            raise PatchcoderError(f"min_score must be a finite number, got {value!r}")
        return float(value)
    return value


_NOT_GIVEN = object()


def save_min_score(directory: str | os.PathLike, min_score: float | None, why: str, mode: str | None = None,
                   keep_heads: int | None | object = _NOT_GIVEN) -> Path:
    """Record a calibrated `min_score` (None: no threshold) in a model folder's decoding.json, keeping
    its other keys; written atomically. `mode` and `keep_heads`, when given: the decoding mode and head
    pruning it was measured with, which must be the folder's own (ranking fewer or more candidates
    changes which one wins and its score, and the scores of different modes are not on one scale)."""
    import json

    path = Path(directory) / DECODING_FILE
    data = {}
    if path.exists():
        _read_decoding(path)  # a clear error for a file that is not a decoding.json
        data = json.loads(path.read_text())
    own = data.get("mode", "generate")
    if mode is not None and mode != own:
        raise PatchcoderError(f"the threshold was measured in {mode} mode but {directory} decodes in {own} mode; "
                              f"calibrate with --mode {own}")
    own_heads = data.get("keep_heads")
    if keep_heads is not _NOT_GIVEN and own == "rank" and keep_heads != own_heads:
        raise PatchcoderError(f"the threshold was measured with keep_heads {keep_heads} but {directory} ranks with "
                              f"keep_heads {own_heads}; calibrate " +
                              (f"with --keep-heads {own_heads}" if own_heads else "without --keep-heads"))
    data["min_score"] = min_score  # unrounded: it lies between two measured scores
    data["min_score_from"] = why
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1) + "\n")
    os.replace(tmp, path)
    return path


def _cpu_runs_bf16() -> bool:
    """Whether this CPU's oneDNN runs bf16 natively (AVX512-BF16 / AMX); elsewhere bf16 is emulated
    and slower than fp32."""
    import torch

    try:
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


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


def _sstub(code: str, script, language: str | None) -> str | None:
    from patchcoder.ground.sstub import classify_sstub

    try:
        return classify_sstub(code, script.apply(code), language)
    except PatchcoderError:
        return None
