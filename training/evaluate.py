"""The evaluation harness: decode every held-out change with the constrained decoder and score it.

For each example (a mined or synthetic row, windowed exactly as in training):
- well_formed: the decoder reached `<|eos|>` within the token budget (the grammar makes it parse);
- applies: the predicted script applies to the old window;
- exact_match: the window it produces equals the one the real change produces;
- localisation: the first edited line is the real change's first edited line.
Reported overall, per language and per single-statement bug class, with seconds per example.

Decoding is the product's (`Repairer.decode_windows`): free generation (greedy or beam), candidate
ranking, or both. With `false_alarms=True` every window is also shown after its real change, with no
message, and `false_alarm_rate` is the fraction of those already-fixed windows the model would change;
the report then also holds the score and the kind of edit (`patchcoder.ground.sstub`) of every change the
model proposed, on the buggy and on the fixed windows; `calibrate` turns them into the lowest `min_score`
that keeps false alarms under a rate, and `calibrate_by_edit` into a threshold per kind of edit that shows
the most exact fixes within the same budget of false alarms; and, when the checkpoint has thresholds
(decoding.json) and is evaluated in its own mode, `at_thresholds` what they would show: alarms on clean windows
and exact fixes shown, as suggest and the hook would (e.g. on a user's own real fixes, before trusting a model).
"""

from __future__ import annotations

import collections
import dataclasses
import math
import os
import time
from pathlib import Path

from patchcoder.ground.errors import PatchcoderError

METRICS = ("exact_match", "applies", "well_formed", "localisation")


@dataclasses.dataclass
class _Case:
    prompt: list[int]
    expected: list[int]
    window: str
    n_lines: int
    language: str
    sstub: str
    old: str  # the whole old file, which the window is cut from (candidate ranking parses it)
    path: str
    window_start: int


def load_rows(data: str | os.PathLike | list, limit: int | None = None) -> list[dict]:
    """Rows of a mined/synthetic folder (its parquet shards) or of one parquet file; of a list of them, one after
    the other (with `limit`, the first ones' rows first: a later set may not be read at all)."""
    import pyarrow.parquet as pq

    from patchcoder.mining.shards import shard_files

    rows: list[dict] = []
    for one in _sets(data):
        path = Path(one)
        files = [str(path)] if path.is_file() else shard_files(path)
        if not files:
            raise PatchcoderError(f"no parquet shards under {one}")
        for f in files:
            if limit is not None and len(rows) >= limit * 2:  # rows can give several examples or none
                return rows
            rows.extend(pq.read_table(f).to_pylist())
    return rows


def build_cases(tokenizer, rows: list[dict], max_tokens: int, limit: int | None,
                messages: bool = True) -> list[_Case]:
    """The evaluation windows of `rows`, framed as training frames them; with `messages` False, every prompt
    without its commit message (as `suggest` and the hook decode when no intent is given).

    A synthetic row is one bug: if it does not fit one window (two swapped lines far apart, say), it is left out
    rather than counted as two bugs, each with a "fixed" twin that is only half fixed. A mined row's changes far
    apart are separate cases, as training makes them."""
    from patchcoder.tokenizer.edits import split_lines
    from patchcoder.tokenizer.examples import Dropped, ExampleConfig, build_examples
    from patchcoder.training.synth import is_synthetic

    config = ExampleConfig(max_tokens=max_tokens, drop_message=0.0 if messages else 1.0)
    cases = []
    for row in rows:
        try:
            examples, _ = build_examples(tokenizer, row, config)
        except Dropped:
            continue
        if len(examples) > 1 and is_synthetic(row):
            continue
        lines = split_lines(row["old"])
        for ex in examples:
            window = "".join(lines[ex.window_start:ex.window_start + ex.window_lines])
            cases.append(_Case(ex.ids[:ex.answer_start], ex.ids[ex.answer_start:], window, ex.window_lines,
                               row.get("language") or "unknown", row.get("sstub") or ex.sstub or "none",
                               row["old"], row.get("path") or "", ex.window_start))
            if limit is not None and len(cases) >= limit:
                return cases
    return cases


def score(case: _Case, ids: list[int], finished: bool, tokenizer) -> dict[str, int]:
    """0/1 per metric for one decoded script (see the module docstring)."""
    from patchcoder.tokenizer.edits import EditScript, EditScriptError

    scores = {m: 0 for m in METRICS}
    if not finished:
        return scores
    scores["well_formed"] = 1
    expected = EditScript.from_tokens(case.expected, tokenizer, case.n_lines)
    try:
        predicted = EditScript.from_tokens(ids, tokenizer, case.n_lines)
        result = predicted.apply(case.window)
    except EditScriptError:
        return scores
    scores["applies"] = 1
    scores["exact_match"] = int(result == expected.apply(case.window))
    scores["localisation"] = int(bool(predicted.ops) and predicted.ops[0].start == expected.ops[0].start)
    return scores


def evaluate(checkpoint: str | os.PathLike, data: str | os.PathLike | list, *, limit: int | None = None,
             batch_size: int = 16, max_new_tokens: int | None = None, max_tokens: int | None = None,
             mode: str | None = None, beam: int = 1, false_alarms: bool = False,
             show_progress: bool = False, keep_heads: int | None = None, precision: str | None = None,
             examples: list | None = None, messages: bool = True, undo_weight: float | None = None,
             clean_code: list | None = None) -> dict:
    """Metrics of `checkpoint` on `data` (a folder or file of rows, or a list of them evaluated as one set: with
    false alarms, their clean windows are counted together); see the module docstring. With `messages` False the
    buggy windows are shown without their commit message, as the fixed ones always are: a synthetic bug's templated
    message names its class ("Fix wrong comparison operator"), a hint a user of `suggest` without
    `--intent` does not give. `examples`, when given a list, receives
    one dict per example: where it is, what the model decoded (tokens, finished, score) and its metrics
    (and, with false alarms, what it decoded for the fixed window), to compare two runs example by example.

    `clean_code`: files and folders of code taken as correct (a repository's own sources at a release, say):
    every window of every file (`read_clean_code`) is decoded as `suggest` reads the file
    (`Repairer.window_patches`), and a change proposed there is a false alarm; reported under "clean_code" (with
    the scores, kinds and files of its alarms, which `calibrate_by_edit` reads to keep suggestions off all but a
    share of these files), apart from the fixed windows' false alarms; implies false alarms."""
    import torch

    from patchcoder.ground.console import progress_bar
    from patchcoder.repair import Repairer
    from patchcoder.windows import Window

    options = {k: v for k, v in (("keep_heads", keep_heads), ("precision", precision), ("undo_weight", undo_weight))
               if v is not None}
    # max_new_tokens None: the product's budget (Repairer's default), so that eval decodes as suggest does
    budget = {} if max_new_tokens is None else {"max_new_tokens": max_new_tokens}
    repairer = Repairer.load(checkpoint, **budget, **options)  # and the trained sequence length
    tokenizer = repairer.tokenizer
    default_tokens = repairer.max_tokens
    max_tokens = max_tokens or repairer.max_tokens
    mode = mode or repairer.mode
    if mode not in ("generate", "rank", "both"):
        raise PatchcoderError(f"mode must be 'generate', 'rank' or 'both', got {mode!r}")
    if beam < 1:
        raise PatchcoderError(f"beam must be at least 1, got {beam}")
    false_alarms = false_alarms or bool(clean_code)
    clean = read_clean_code(clean_code) if clean_code else None  # a bad path fails before any work
    if clean is not None and not clean[0]:
        raise PatchcoderError(f"{', '.join(map(str, clean_code))}: no file to read as clean code"
                              + (f" ({len(clean[1])} skipped)" if clean[1] else ""))
    cases = build_cases(tokenizer, load_rows(data, limit), max_tokens, limit, messages)
    if not cases:
        raise PatchcoderError(f"{' + '.join(_sets(data))} gives no evaluation example (no modified files that fit a "
                              "window)")

    totals = collections.Counter()
    by_language: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    by_sstub: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    alarm_scores: list[float] = []  # scores of the changes proposed for already-fixed windows
    bug_scores: list[tuple[float, int]] = []  # (score, exact) of the changes proposed for buggy windows
    edits: dict[str, list[str]] = {"buggy": [], "fixed": []}  # the kind of edit of each, in the same order
    files: dict[str, list[str]] = {"buggy": [], "fixed": [], "clean": []}  # the file of each, and of each clean window
    started = time.perf_counter()
    with torch.no_grad(), progress_bar("evaluating", len(cases), show_progress) as advance:
        for first in range(0, len(cases), batch_size):
            batch = cases[first:first + batch_size]
            items = [{"code": c.old, "language": c.language} for c in batch]
            windows = [Window(k, c.prompt, c.window_start, c.n_lines) for k, c in enumerate(batch)]
            decoded = repairer.decode_windows(items, windows, mode, beam)
            for case, out in zip(batch, decoded, strict=True):
                scores = score(case, out.ids, out.finished, tokenizer) if out is not None else \
                    dict.fromkeys(METRICS, 0)
                for counter in (totals, by_language[case.language], by_sstub[case.sstub]):
                    counter["examples"] += 1
                    counter.update(scores)
                if out is not None and out.finished and (kind := edit_kind(case.old, case.window_start, case.n_lines,
                                                                     out.ids, tokenizer, case.language)):
                    bug_scores.append((out.score, scores["exact_match"]))
                    edits["buggy"].append(kind)
                    files["buggy"].append(case.path)
                if examples is not None:
                    examples.append({"path": case.path, "window_start": case.window_start, "n_lines": case.n_lines,
                                     "language": case.language, "sstub": case.sstub, **_decoded(out), **scores})
            if false_alarms:
                fixed = examples[len(examples) - len(batch):] if examples is not None else None
                changed, shown = _false_alarms(repairer, batch, mode, beam, fixed)
                alarm_scores.extend(score for score, _, _ in changed)
                edits["fixed"].extend(kind for _, kind, _ in changed)
                files["fixed"].extend(path for _, _, path in changed)
                files["clean"].extend(shown)
            advance(len(batch))
    seconds = time.perf_counter() - started  # per example: the clean code is timed apart
    extra = None
    if clean is not None:
        repairer.max_tokens = max_tokens  # its windows as the examples' (the trained length unless told)
        extra = _clean_code_alarms(repairer, clean_code, *clean, mode, beam, batch_size, show_progress)

    def rates(counter: collections.Counter) -> dict:
        n = counter["examples"]
        return {"examples": n, **{m: counter[m] / n for m in METRICS}}

    scores = {"buggy": bug_scores, "fixed": alarm_scores, "edits": edits, "files": files}
    # the folder's thresholds hold for its own decoding: its mode, heads, undo weight and window length, greedy
    thresholds = (false_alarms and mode == repairer.mode and beam == 1 and "keep_heads" not in options
                  and "undo_weight" not in options and max_tokens == default_tokens
                  and (repairer.min_score is not None or repairer.min_score_by_edit))
    if extra is not None:
        extra["false_alarm_rate"] = extra["false_alarms"] / max(1, extra["windows"])
        if thresholds:
            extra["at_thresholds"] = at_thresholds(extra["scores"], repairer.min_score, repairer.min_score_by_edit)
    return {
        **rates(totals),
        "by_sstub": {k: rates(v)["exact_match"] for k, v in sorted(by_sstub.items())},
        "by_language": {k: rates(v) for k, v in sorted(by_language.items())},
        "sstub_examples": {k: v["examples"] for k, v in sorted(by_sstub.items())},
        "seconds_per_example": seconds / len(cases),
        **({"false_alarm_rate": len(alarm_scores) / max(1, len(files["clean"])),
            "false_alarm_windows": len(files["clean"]),
            "scores": scores} if false_alarms else {}),
        **({"at_thresholds": at_thresholds(scores, repairer.min_score, repairer.min_score_by_edit)}
           if thresholds else {}),
        **({"clean_code": extra} if extra is not None else {}),
        "mode": mode,
        "beam": beam,
        "keep_heads": repairer.keep_heads,
        "undo_weight": repairer.undo_weight,
        "precision": repairer.precision,
        "checkpoint": str(checkpoint),
        "data": str(data) if isinstance(data, (str, os.PathLike)) else _sets(data),
        "max_tokens": max_tokens,
        "max_new_tokens": repairer.max_new_tokens,
        "messages": messages,
    }


def read_clean_code(paths) -> tuple[list[dict], list[str]]:
    """(items, notes) for `evaluate(clean_code=paths)`: each path a file or a folder (its files, recursively and
    in name order, hidden folders, `node_modules` and symbolic links left out), each file in a language the rewrite
    engine covers (rank mode has nothing to change in another: its windows could never alarm) and read once
    however often it is named. An item is {"code", "path"}, its path as `suggest` names the file: relative to its
    repository, else to the folder given (under the folder's name). A file that is not UTF-8 text, is binary, or
    is larger or longer than `suggest` reads is skipped with a note, as `suggest` skips it; a path that does not
    exist, or a file named in another language, is a PatchcoderError."""
    from patchcoder.ground.languages import language_of
    from patchcoder.suggest import MAX_LINES, find_repository, read_text
    from patchcoder.tokenizer.edits import split_lines
    from patchcoder.tokenizer.rewrites.check import LANGUAGES

    items: list[dict] = []
    notes: list[str] = []
    seen: set[Path] = set()

    def named(file: Path, fallback: str) -> str:
        repo = find_repository(file.parent)
        if repo is not None:
            try:
                return file.resolve().relative_to(Path(repo.workdir).resolve()).as_posix()
            except ValueError:
                pass
        return fallback

    def read(file: Path, fallback: str) -> None:
        if file.resolve() in seen:
            return
        seen.add(file.resolve())
        shown = named(file, fallback)
        text = read_text(file.read_bytes(), shown, notes)  # binary, too large, not UTF-8: skipped as suggest skips
        if text is None:
            return
        if len(split_lines(text)) > MAX_LINES:
            notes.append(f"{shown}: skipped, more than {MAX_LINES:,} lines")
            return
        items.append({"code": text, "path": shown})

    for path in map(Path, paths):
        if path.is_dir():
            for root, folders, files in os.walk(path):  # pruned as it goes: never into .git or node_modules
                folders[:] = sorted(f for f in folders if not f.startswith(".") and f != "node_modules")
                for name in sorted(files):
                    file = Path(root, name)
                    relative = file.relative_to(path).as_posix()
                    if not file.is_symlink() and language_of(relative) in LANGUAGES:
                        read(file, f"{path.resolve().name}/{relative}")
        elif path.is_file():
            if language_of(path.name) not in LANGUAGES:
                raise PatchcoderError(f"{path}: not in a language whose code rank mode reads "
                                      f"({', '.join(LANGUAGES)})")
            read(path, path.name)
        else:
            raise PatchcoderError(f"{path}: no such file or folder (--clean-code)")
    return items, notes


def _clean_code_alarms(repairer, paths, items: list[dict], notes: list[str], mode: str, beam: int, batch_size: int,
                       show_progress: bool) -> dict:
    """What `evaluate` reports of `clean_code` (see there; `read_clean_code` gave its items and notes): counts,
    notes, and the alarms' scores in its layout."""
    started = time.perf_counter()
    by_window = repairer.window_patches(items, batch_size=batch_size, beam=beam, mode=mode,
                                        show_progress=show_progress)
    scores = {"buggy": [], "fixed": [], "edits": {"buggy": [], "fixed": []}, "files": {"buggy": [], "fixed": [], "clean": []}}
    for item, patches in zip(items, by_window, strict=True):
        for patch in patches:
            scores["files"]["clean"].append(item["path"])
            if patch is not None:
                scores["fixed"].append(patch.score)
                scores["edits"]["fixed"].append(patch.kind or patch.sstub or "other")
                scores["files"]["fixed"].append(item["path"])
    return {"paths": [str(p) for p in paths], "files": len(items), "windows": len(scores["files"]["clean"]),
            "false_alarms": len(scores["fixed"]), "files_alarmed": len(set(scores["files"]["fixed"])),
            "skipped": notes, "seconds": time.perf_counter() - started, "scores": scores}


def _sets(data) -> list[str]:
    """The paths of `data`: one set (a path) or several (a sequence of paths)."""
    return [str(data)] if isinstance(data, (str, os.PathLike)) else [str(d) for d in data]


def fixed_file(case: _Case, tokenizer) -> tuple[str, int, int]:
    """(code, start, n_lines): the old file with this case's real change made, and where its window
    now lies (other changes of the same commit, outside the window, are left out)."""
    from patchcoder.tokenizer.edits import EditScript, split_lines

    expected = EditScript.from_tokens(case.expected, tokenizer, case.n_lines).apply(case.window)
    lines = split_lines(case.old)
    code = "".join(lines[:case.window_start]) + expected + "".join(lines[case.window_start + case.n_lines:])
    return code, case.window_start, len(split_lines(expected))


def at_thresholds(scores: dict, min_score: float | None, min_score_by_edit: dict[str, float] | None) -> dict:
    """What suggest and the hook would show of an evaluation's changes (`scores`, as `evaluate` records them with
    false alarms) at these thresholds, read as `Repairer.min_score_for` reads them (the kind of edit's threshold,
    else `min_score`; None shows every change): the clean windows alarmed, the changes shown for buggy windows and
    how many of those are the exact fix, with the thresholds themselves; and the files with a window alarmed (what
    suggest shows of a file is one patch: its best window's, a shown one before a hidden one)."""
    by_edit = min_score_by_edit or {}

    def shown(score: float, kind: str) -> bool:
        return score >= _threshold(by_edit, min_score, kind)

    buggy = [exact for (score, exact), kind in zip(scores["buggy"], scores["edits"]["buggy"], strict=True)
             if shown(score, kind)]
    alarmed = [path for score, kind, path in zip(scores["fixed"], scores["edits"]["fixed"], scores["files"]["fixed"],
                                                  strict=True) if shown(score, kind)]
    clean = len(scores["files"]["clean"])
    return {"min_score": min_score, "min_score_by_edit": dict(by_edit), "false_alarms": len(alarmed),
            "false_alarm_rate": len(alarmed) / max(1, clean), "files_alarmed": len(set(alarmed)),
            "shown": len(buggy), "exact_shown": sum(buggy)}


def calibrate(report: dict, max_false_alarm_rate: float) -> dict:
    """The lowest score threshold under which at most `max_false_alarm_rate` of the already-fixed
    windows would get a suggestion, from a report made with `false_alarms=True`; and what it keeps:
    the false-alarm rate and the exact-fix rate of suggestions scoring at least that much.

    The threshold lies halfway between the highest false alarm it must hide and the next score
    (of either kind) above it, so that it does not sit on a measured score."""
    if "scores" not in report:
        raise PatchcoderError("calibration needs an evaluation with false alarms (--false-alarms)")
    if not 0 <= max_false_alarm_rate < 1:
        raise PatchcoderError(f"the false-alarm rate must be in [0, 1), got {max_false_alarm_rate}")
    alarms = sorted(report["scores"]["fixed"], reverse=True)
    buggy = report["scores"]["buggy"]
    windows = max(1, report["false_alarm_windows"])
    allowed = math.floor(max_false_alarm_rate * windows + 1e-9)  # alarms that may stay (0.29 × 100 is 29)
    if allowed >= len(alarms):
        threshold = None  # no threshold needed
    else:
        hide = alarms[allowed]  # the highest alarm that must go
        above = [x for x in alarms + [s for s, _ in buggy] if x > hide]
        threshold = (hide + min(above)) / 2 if above else hide + 1.0
    kept = [(s, exact) for s, exact in buggy if threshold is None or s >= threshold]
    return {
        "min_score": threshold,
        "max_false_alarm_rate": max_false_alarm_rate,
        "false_alarm_rate": sum(threshold is None or s >= threshold for s in alarms) / windows,
        "exact_match": sum(exact for _, exact in kept) / max(1, report["examples"]),
        "exact_match_without": sum(exact for _, exact in buggy) / max(1, report["examples"]),
        "suggested": len(kept) / max(1, report["examples"]),
    }


def calibrate_by_edit(report: dict, max_false_alarm_rate: float, *, held_out: bool = False) -> dict:
    """A threshold per kind of edit, from a report made with `false_alarms=True`: together they show the most
    exact fixes with at most `max_false_alarm_rate` of the already-fixed windows alarmed (`fit_by_edit`); and
    what they keep, as `calibrate` reports it, beside `calibrate`'s one threshold ("min_score"), which stays
    the threshold of the kinds of edit the report has no change of.

    Fitted per kind the thresholds overfit: on windows they were not fitted on they alarm more often. With
    `held_out`, the rate is one on files not fitted on: the report's files are split in two (by a hash of the
    path), and the fitting budget is the largest of RATE, 0.9 RATE, ..., 0.1 RATE whose thresholds, fitted on
    each half and applied to the other, alarm at most RATE of the clean windows together, or 0 when none does
    ("fit_rate", and "held_out": those alarms, exact fixes and the alarms RATE allows; with every file in one
    half, the other half fits nothing and the estimate is no estimate); the thresholds and `min_score` are then
    fitted on every window at that budget."""
    scores = report["scores"]
    if "edits" not in scores:
        raise PatchcoderError("calibration per kind of edit needs an evaluation that records the kind of each change")
    if held_out and "files" not in scores:
        raise PatchcoderError("calibration held out by file needs an evaluation that records the file of each change")
    proposals = [(kind, score, 0, exact) for (score, exact), kind in zip(scores["buggy"], scores["edits"]["buggy"],
                                                                         strict=True)]
    proposals += [(kind, score, 1, 0) for score, kind in zip(scores["fixed"], scores["edits"]["fixed"], strict=True)]
    windows = max(1, report["false_alarm_windows"])
    fit_rate, estimate = max_false_alarm_rate, None
    if held_out:
        paths = scores["files"]["buggy"] + scores["files"]["fixed"]
        fit_rate, estimate = _held_out_budget(list(zip(proposals, paths, strict=True)), scores["files"]["clean"],
                                              max_false_alarm_rate)
    one = calibrate(report, fit_rate)
    by_edit = fit_by_edit(proposals, math.floor(fit_rate * windows + 1e-9))
    clean_code = None
    if "clean_code" in report:  # then as few of the clean code's files get a suggestion as RATE allows
        code = report["clean_code"]
        alarms = list(zip(code["scores"]["edits"]["fixed"], code["scores"]["fixed"], code["scores"]["files"]["fixed"],
                          strict=True))
        allowed = math.floor(max_false_alarm_rate * code["files"] + 1e-9)
        fitted = by_edit  # the held-out estimate quiets each half from here, not from what all files made
        files_rate, files_estimate = max_false_alarm_rate, None
        if held_out:  # as the window budget: the largest of RATE, 0.9 RATE, ..., 0 that holds across halves
            for tenths in range(10, -1, -1):
                files_rate = max_false_alarm_rate * tenths / 10
                files_estimate = _quiet_across_halves(fitted, one["min_score"], proposals, alarms,
                                                      code["scores"]["files"]["clean"], files_rate)
                if files_estimate <= allowed:
                    break
        by_edit = keep_files_quiet(fitted, one["min_score"], proposals, alarms,
                                   math.floor(files_rate * code["files"] + 1e-9))
        clean_code = {"files": code["files"], "allowed": allowed, "fit_rate": files_rate,
                      "files_alarmed_before": _files_alarmed(alarms, fitted, one["min_score"]),
                      "files_alarmed": _files_alarmed(alarms, by_edit, one["min_score"]),
                      **({"held_out": {"files_alarmed": files_estimate, "files": code["files"], "allowed": allowed}}
                         if held_out else {})}
    kept = [(alarm, exact) for kind, score, alarm, exact in proposals
            if score >= _threshold(by_edit, one["min_score"], kind)]
    examples = max(1, report["examples"])
    return {
        "min_score_by_edit": by_edit,
        "min_score": one["min_score"],
        "max_false_alarm_rate": max_false_alarm_rate,
        "fit_rate": fit_rate,
        **({"held_out": estimate} if estimate is not None else {}),
        "false_alarm_rate": sum(alarm for alarm, _ in kept) / windows,
        "exact_match": sum(exact for _, exact in kept) / examples,
        "exact_match_without": one["exact_match_without"],
        "suggested": sum(1 - alarm for alarm, _ in kept) / examples,
        "one_threshold": {k: one[k] for k in ("false_alarm_rate", "exact_match", "suggested")},
        **({"clean_code": clean_code} if clean_code is not None else {}),
    }


def _threshold(by_edit: dict[str, float], one: float | None, kind: str) -> float:
    """The threshold of `kind`, as the product reads it (`Repairer.min_score_for`); -inf for none."""
    threshold = by_edit.get(kind, one)
    return -math.inf if threshold is None else threshold


def _files_alarmed(alarms: list[tuple[str, float, str]], by_edit: dict[str, float], one: float | None) -> int:
    """How many files of the clean code's `alarms` (kind, score, file) hold one the thresholds show."""
    return len({path for kind, score, path in alarms if score >= _threshold(by_edit, one, kind)})


def keep_files_quiet(by_edit: dict[str, float], one: float | None, proposals: list[tuple[str, float, int, int]],
                     alarms: list[tuple[str, float, str]], allowed: int) -> dict[str, float]:
    """Thresholds per kind of edit (`by_edit`, `one` for the kinds it lacks) raised until at most `allowed` files of
    the clean code hold an alarm they show (`alarms`: kind, score, file): one kind at a time, to just above its
    lowest shown alarm, choosing each time the raise that loses the fewest exact fixes of `proposals` (kind, score,
    is an alarm, is exact) per file it quiets (raising only hides: the other false alarms do not grow). A
    greedy search, not an optimum: files count once however many kinds alarm in them."""
    thresholds = dict(by_edit)

    def exact() -> int:
        return sum(hit for kind, score, alarm, hit in proposals if not alarm
                   and score >= _threshold(thresholds, one, kind))

    while (quiet := _files_alarmed(alarms, thresholds, one)) > allowed:
        fixes, best = exact(), None
        for kind in sorted({kind for kind, _, _ in alarms}):
            shown = [score for k, score, _ in alarms if k == kind and score >= _threshold(thresholds, one, kind)]
            if not shown:
                continue
            before = thresholds.get(kind)
            raised = min(shown)
            higher = [score for k, score, alarm, _ in proposals if k == kind and score > raised]
            higher += [score for k, score, _ in alarms if k == kind and score > raised]
            thresholds[kind] = (raised + min(higher)) / 2 if higher else raised + 1.0  # between two scores
            quieted, lost = quiet - _files_alarmed(alarms, thresholds, one), fixes - exact()
            cost = (lost / quieted) if quieted else math.inf
            if best is None or (cost, lost) < best[0]:
                best = ((cost, lost), kind, thresholds[kind])
            if before is None:
                del thresholds[kind]
            else:
                thresholds[kind] = before
        thresholds[best[1]] = best[2]
    return thresholds


def _quiet_across_halves(by_edit: dict[str, float], one: float | None, proposals: list[tuple[str, float, int, int]],
                         alarms: list[tuple[str, float, str]], windows: list[str], rate: float) -> int:
    """The clean code's files alarmed on files the quieting was not fitted on: `keep_files_quiet` fitted at `rate` on
    each half of its files (by a hash of the path) and applied to the other, summed."""
    files = sorted(set(windows))
    alarmed = 0
    for k in (0, 1):
        mine = [a for a in alarms if _half(a[2]) == k]
        fitted = keep_files_quiet(by_edit, one, proposals, mine,
                                  math.floor(rate * sum(_half(f) == k for f in files) + 1e-9))
        alarmed += _files_alarmed([a for a in alarms if _half(a[2]) != k], fitted, one)
    return alarmed


def _held_out_budget(proposals: list[tuple[tuple[str, float, int, int], str]], clean: list[str],
                     rate: float) -> tuple[float, dict]:
    """(the fitting rate, {"false_alarms", "exact", "clean"} held out) for `calibrate_by_edit(held_out=True)`:
    `proposals` are ((kind, score, is an alarm, is exact), file), `clean` the file of every clean window."""
    allowed = math.floor(rate * len(clean) + 1e-9)
    for tenths in range(10, 0, -1) if rate > 0 else ():
        alarms, exact = across_halves(proposals, clean, rate * tenths / 10)
        if alarms <= allowed:
            return rate * tenths / 10, {"false_alarms": alarms, "exact": exact, "clean": len(clean), "allowed": allowed}
    alarms, exact = across_halves(proposals, clean, 0.0)
    return 0.0, {"false_alarms": alarms, "exact": exact, "clean": len(clean), "allowed": allowed}


def across_halves(proposals: list[tuple[tuple[str, float, int, int], str]], clean: list[str],
                  fit_rate: float, *, by_kind: bool = True) -> tuple[int, int]:
    """(alarms, exact fixes) of thresholds fitted at `fit_rate` on each half of the files (split by a hash of the
    path) and applied to the other half, summed: one per kind of edit (`fit_by_edit`) and `calibrate`'s for the
    kinds a half has no change of, as the product reads them; without `by_kind`, `calibrate`'s alone.
    `proposals` are ((kind, score, is an alarm, is exact), file), `clean` the file of every clean window."""
    alarms = exact = 0
    for k in (0, 1):
        mine = [p for p, path in proposals if _half(path) == k]
        windows = sum(_half(path) == k for path in clean)
        one = calibrate({"examples": 1, "false_alarm_windows": windows, "scores": {
            "buggy": [(score, hit) for _, score, alarm, hit in mine if not alarm],
            "fixed": [score for _, score, alarm, _ in mine if alarm]}}, fit_rate)["min_score"]
        by_edit = fit_by_edit(mine, math.floor(fit_rate * windows + 1e-9)) if by_kind else {}
        for (kind, score, alarm, hit), path in proposals:
            if _half(path) != k and score >= _threshold(by_edit, one, kind):
                alarms, exact = alarms + alarm, exact + hit
    return alarms, exact


def _half(path: str) -> int:
    """Which half of the files `path` is in (0 or 1, by a hash of the path), for the estimates held out by file."""
    import zlib

    return zlib.crc32(path.encode()) % 2


def fit_by_edit(proposals: list[tuple[str, float, int, int]], budget: int) -> dict[str, float]:
    """A threshold for each kind of edit among `proposals`, each (kind, score, is a false alarm, is an exact
    fix): the cut-offs that together show the most exact fixes with at most `budget` false alarms; among equals
    the fewest alarms, then the most changes shown (as `calibrate` goes as low as its budget lets it). A
    multiple-choice knapsack over each kind's cut-offs: below each distinct score of the kind, or none shown. A
    threshold lies halfway between the lowest score it shows and the next score of its kind below (at the lowest
    score when there is none); one that shows none lies 1 above the kind's best score, as `calibrate`'s does
    above every score."""
    kinds: dict[str, list[tuple[float, int, int]]] = {}
    for kind, score, alarm, exact in proposals:
        kinds.setdefault(kind, []).append((score, alarm, exact))
    # alarms used -> ((exact fixes shown, changes shown), thresholds)
    best: dict[int, tuple[tuple[int, int], dict[str, float]]] = {0: ((0, 0), {})}
    for kind, items in sorted(kinds.items()):
        items.sort(reverse=True)
        options = [(items[0][0] + 1.0, 0, 0, 0)]  # (threshold, alarms, exact, shown): none of this kind shown
        alarms = exact = 0
        for i, (score, alarm, hit) in enumerate(items):
            alarms, exact = alarms + alarm, exact + hit
            if i + 1 == len(items):
                options.append((score, alarms, exact, i + 1))
            elif items[i + 1][0] < score:  # a cut-off between two distinct scores
                options.append(((score + items[i + 1][0]) / 2, alarms, exact, i + 1))
        grown: dict[int, tuple[tuple[int, int], dict[str, float]]] = {}
        for used, ((fixes, changes), chosen) in best.items():
            for threshold, alarms, exact, shown in options:
                total, value = used + alarms, (fixes + exact, changes + shown)
                if total <= budget and (total not in grown or grown[total][0] < value):
                    grown[total] = (value, {**chosen, kind: threshold})
        best = grown
    return max(best.items(), key=lambda kv: (kv[1][0][0], -kv[0], kv[1][0][1]))[1][1]


def edit_kind(code: str, start: int, n_lines: int, ids: list[int], tokenizer, language: str) -> str | None:
    """The kind of edit (`patchcoder.ground.sstub.edit_kind`) the script `ids` makes on the window of `code` at
    lines [start, start + n_lines), classified on the whole file as the product classifies a patch (`Patch.kind`);
    None when it does not parse, apply or change it."""
    from patchcoder.ground.languages import LANGUAGES
    from patchcoder.ground.sstub import edit_kind as kind_of
    from patchcoder.tokenizer.edits import EditScript, EditScriptError, split_lines

    lines = split_lines(code)
    window = "".join(lines[start:start + n_lines])
    try:
        new = EditScript.from_tokens(ids, tokenizer, n_lines).apply(window)
    except EditScriptError:
        return None
    if new == window:
        return None
    patched = "".join(lines[:start]) + new + "".join(lines[start + n_lines:])
    return kind_of(code, patched, language if language in LANGUAGES else None)


def _decoded(out) -> dict:
    """What the model decoded for one window, as a JSON-ready dict (None: no window)."""
    if out is None:
        return {"ids": None, "finished": False, "score": None}
    return {"ids": list(out.ids), "finished": out.finished, "score": out.score}


def _false_alarms(repairer, batch: list[_Case], mode: str, beam: int,
                  records: list[dict] | None = None) -> tuple[list[tuple[float, str, str]], list[str]]:
    """(changes, shown): of the batch's windows shown as they are after the real change (those that
    still fit a window), the (score, kind of edit, file) of the changes the model would make, and the
    file of each window shown.
    records[k], when given, gets what was decoded for case k's fixed window under "fixed"."""
    from patchcoder.tokenizer.examples import encode_prompt
    from patchcoder.windows import Window

    tok = repairer.tokenizer
    items, windows = [], []
    for k, case in enumerate(batch):
        code, start, n = fixed_file(case, tok)
        if not 0 < n <= tok.max_lines:
            continue  # the change grew the window past what a window shows, or removed all of it
        items.append({"code": code, "language": case.language})
        windows.append(Window(k, encode_prompt(tok, code, case.path, None, case.language, start, start + n),
                              start, n))
    changed: list[tuple[float, str, str]] = []
    if not windows:
        return changed, []
    for item, window, out in zip(items, windows, repairer.decode_windows(items, windows, mode, beam), strict=True):
        if records is not None:
            records[window.index]["fixed"] = _decoded(out)
        if out is None or not out.finished:
            continue
        if kind := edit_kind(item["code"], window.start, window.n_lines, out.ids, tok, item["language"]):
            changed.append((out.score, kind, batch[window.index].path))
    return changed, [batch[w.index].path for w in windows]
