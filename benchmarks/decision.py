"""How rank mode decides whether to change a window, compared offline: every candidate's score, per window.

Rank mode scores "no change" (`<|eos|>` alone) and each rewrite of a window by their mean log-probability per
token; the best wins and is shown if it scores at least `min_score`. This records, for each window of an
evaluation set (the buggy windows and, as `patchcoder eval --false-alarms` shows them, the same windows after
the fix), every candidate's [mean log p per token, tokens, changes the window, is the right answer], with the
shipped decoding (keep_heads, precision of the model's decoding.json). `report` then compares decision rules
on those records — the candidate score `sum log p / tokens^a` (a = 1: today's mean; a = 0: the whole log p),
and the model's own probability of a change, 1 − p(`<|eos|>`), as the threshold's score — each with its
exact rate and false alarms without a threshold, and the exact fixes shown at the threshold calibrated for at
most 5% false alarms (as `training.evaluate.calibrate`), and how often the best rewrite is the exact fix
when the window is made to change (the order of the rewrites alone; a rule for later stages reads it).
With `--centre`, each best rewrite is also read a second time, in the window `windows_for` centres on the lines
it changes (its score and "no change"'s there), and `report` adds the rule "centre a": the undo score plus a ×
(the rewrite's score − "no change"'s) in that second window — a second opinion with the context on both sides.

    python benchmarks/decision.py dump --checkpoint DIR --data synth-valid-wide --out records.jsonl [--no-message]
        [--keep-heads N|all]   (default: the checkpoint's decoding.json, else the shipped model's: 1)
        [--centre]             (also the second reading, in a window centred on the change)
    python benchmarks/decision.py report records.jsonl
    python benchmarks/decision.py compare before.jsonl after.jsonl   (the same set: who shows which fixes, sign test)

The rule `a = 1` reproduces `patchcoder eval --mode rank --calibrate 0.05` on the same set (checked on
synth-valid: 45.5% exact, 17 of 88 shown at −0.736, the shipped model's model card figures).
"""

from __future__ import annotations

import argparse
import json
import math
import sys


def dump(checkpoint: str | None, data: str, out: str, *, messages: bool, limit: int | None, keep_heads: str | None,
         centre: bool = False, batch: int = 16) -> None:
    import torch

    from patchcoder.checkpoint import SHIPPED_MODEL, read_decoding
    from patchcoder.decoding import autocast, score_scripts
    from patchcoder.ranking import rank, undo_scores
    from patchcoder.repair import Repairer, Source
    from patchcoder.tokenizer.edits import EditScript, EditScriptError, split_lines
    from patchcoder.tokenizer.examples import encode_prompt
    from patchcoder.training.evaluate import build_cases, edit_kind, fixed_file, load_rows
    from patchcoder.windows import Window

    repairer = Repairer.load(checkpoint)
    # as the product decodes: the checkpoint's own keep_heads, else the shipped model's (a training run's
    # export sets none, and reading every head is another decoding); --keep-heads says otherwise
    if keep_heads is not None:
        repairer.keep_heads = None if keep_heads == "all" else int(keep_heads)
    elif "keep_heads" not in read_decoding(checkpoint or SHIPPED_MODEL):
        repairer.keep_heads = read_decoding(SHIPPED_MODEL).get("keep_heads")
    print(f"keep_heads {repairer.keep_heads or 'all'}", file=sys.stderr, flush=True)
    tok = repairer.tokenizer
    cases = build_cases(tok, load_rows(data, limit), repairer.max_tokens, limit, messages)
    room = max(repairer.max_tokens, repairer.max_new_tokens + 1)

    def applied(ids: list[int], text: str, n: int) -> str | None:
        try:
            return EditScript.from_tokens(ids, tok, n).apply(text)
        except EditScriptError:
            return None

    with open(out, "w", encoding="utf-8") as f, torch.no_grad():
        for first in range(0, len(cases), batch):
            jobs = []  # (kind, case, item, window, its text, the right answer's text)
            for k, case in enumerate(cases[first:first + batch]):
                jobs.append(("buggy", case, {"code": case.old, "language": case.language},
                             Window(k, case.prompt, case.window_start, case.n_lines), case.window,
                             applied(case.expected, case.window, case.n_lines)))
                code, start, n = fixed_file(case, tok)
                if 0 < n <= tok.max_lines:  # as eval's false alarms: the window after the fix, no message
                    text = "".join(split_lines(code)[start:start + n])
                    prompt = encode_prompt(tok, code, case.path, None, case.language, start, start + n)
                    jobs.append(("fixed", case, {"code": code, "language": case.language},
                                 Window(k, prompt, start, n), text, text))
            sources = [Source.of(j[2]) for j in jobs]  # one parse per text, for ranking and the undoing
            with autocast(repairer.model, repairer.precision):
                rankings = rank(repairer.model, tok, sources, [j[3] for j in jobs],
                                max_new_tokens=room, keep_heads=repairer.keep_heads)
            # the way back (ranking.undo_scores, as the product reads it): the best rewrite's undoing, read in
            # the window it makes — does the model, shown the rewritten code, want to undo the rewrite?
            bests = [max(range(1, len(r.candidates)), key=r.scores.__getitem__, default=None) for r in rankings]
            chosen = [[tok.eos_id] if k is None else r.candidates[k] for k, r in zip(bests, rankings, strict=True)]
            with autocast(repairer.model, repairer.precision):
                undo = undo_scores(repairer.model, tok, sources, [j[3] for j in jobs], chosen)
            second: dict[int, list[float]] = {}  # job → [the best rewrite's score, "no change"'s] in the centred window
            if centre:
                reads = {}
                for j, (_, case, item, window, text, _) in enumerate(jobs):
                    new = None if bests[j] is None else applied(chosen[j], text, window.n_lines)
                    if new is not None and new != text:
                        read = centred(repairer, item["code"], case.language, case.path, window, new)
                        if read is not None:
                            reads[j] = read
                prompts = [p for p, _ in reads.values() for _ in (0, 1)]
                read_scripts = [ids for _, s in reads.values() for ids in ([tok.eos_id], s)]  # "no change", the rewrite
                with autocast(repairer.model, repairer.precision):
                    scores = score_scripts(repairer.model, prompts, read_scripts, batch_size=16) if prompts else []
                second = {j: [round(scores[2 * i + 1], 5), round(scores[2 * i], 5)] for i, j in enumerate(reads)}
            for j, ((kind, case, item, window, text, right), ranking) in enumerate(zip(jobs, rankings, strict=True)):
                candidates = []
                for ids, score in zip(ranking.candidates, ranking.scores, strict=True):
                    result = applied(ids, text, window.n_lines)
                    candidates.append([round(score, 5), len(ids), int(result is not None and result != text),
                                       int(result == right)])
                reverse = None if undo[j] is None else [bests[j], round(undo[j], 5)]
                # the kind of edit the best rewrite makes (ground.sstub.edit_kind), for thresholds
                # per kind of edit: classified on the whole file, as the product does
                edit = None if bests[j] is None else edit_kind(item["code"], window.start, window.n_lines, chosen[j],
                                                                tok, case.language)
                record = {"kind": kind, "sstub": case.sstub, "path": case.path, "edit": edit or "other",
                          "candidates": candidates, "reverse": reverse}
                if centre:
                    record["centre"] = second.get(j)
                f.write(json.dumps(record) + "\n")
            print(f"{min(first + batch, len(cases))} / {len(cases)}", file=sys.stderr, flush=True)


def centred(repairer, code: str, language: str, path: str, window, new: str) -> tuple[list[int], list[int]] | None:
    """(prompt, script) of the window's rewrite into `new` read again in the window `windows_for` centres on the
    lines it changes (no message, as the product); None when that window does not hold the whole change."""
    from patchcoder.ground.sstub import common_affixes
    from patchcoder.tokenizer.edits import edit_script, split_lines
    from patchcoder.windows import windows_for

    tok, lines, new_lines = repairer.tokenizer, split_lines(code), split_lines(new)
    old = lines[window.start:window.start + window.n_lines]
    prefix, suffix = common_affixes(old, new_lines)
    first = window.start + prefix
    last = max(first, window.start + len(old) - suffix - 1)
    found = windows_for(tok, code, max_tokens=repairer.max_tokens, language=language, path=path, focus=(first, last))
    if len(found) != 1:
        return None
    w = found[0]
    patched = lines[:window.start] + new_lines + lines[window.start + window.n_lines:]
    old2 = "".join(lines[w.start:w.start + w.n_lines])
    new2 = "".join(patched[w.start:w.start + w.n_lines + len(new_lines) - len(old)])
    script = None if old2 == new2 else edit_script(old2, new2, language, lexer=tok.lexer)
    if script is None or not script.ops:
        return None
    return w.prompt, script.to_tokens(tok, new_line_ids=tok.encode_lines(new2, language)) + [tok.eos_id]


def choose(candidates: list[list], rule: tuple[str, float], reverse: list | None = None,
           centre: list | None = None) -> tuple[list, float]:
    """(the chosen candidate, the score the threshold reads) under a rule; candidates[0] is "no change";
    `reverse`: [the best rewrite's index, the mean log p of its undoing in the window it makes]; `centre`:
    [the best rewrite's score, "no change"'s] read again in the window centred on the change."""
    kind, a = rule
    if kind == "centre":  # undo 0.5, plus a × the second reading's margin for the rewrite
        best, score = choose(candidates, ("undo", 0.5), reverse)
        if best[2] and centre is not None:
            score += a * (centre[0] - centre[1])
        return best, score
    if kind == "length":  # sum log p / tokens^a
        def key(c):
            return c[0] * c[1] ** (1 - a)

        best = max(candidates, key=key)
        return best, key(best)
    if kind == "undo":  # the best rewrite, scored by how much more the model wants it than its undoing
        best = max(range(len(candidates)), key=lambda k: candidates[k][0])
        if reverse is None or best == 0:  # as the product: no undoing to read, the score alone
            return candidates[best], candidates[best][0]
        k, back = reverse
        return candidates[k], candidates[k][0] - a * back
    # "change": the best rewrite by mean log p, shown when log(1 − p(eos)) + a · its mean log p clears the
    # threshold; without a threshold, when p(eos) < 1/2
    eos, rest = candidates[0], candidates[1:]
    if not rest:
        return eos, -math.inf
    best = max(rest, key=lambda c: c[0])
    change = max(1e-12, 1 - math.exp(eos[0]))
    return (best if change > 0.5 else eos), math.log(change) + a * best[0]


def measure(records: list[dict], rule, rate: float = 0.05) -> dict:
    buggy = [choose(r["candidates"], rule, r.get("reverse"), r.get("centre")) for r in records if r["kind"] == "buggy"]
    fixed = [choose(r["candidates"], rule, r.get("reverse"), r.get("centre")) for r in records if r["kind"] == "fixed"]
    proposed = [(s, c[3]) for c, s in buggy if c[2]]  # (score, exact) of the changes proposed for bugs
    alarms = sorted((s for c, s in fixed if c[2]), reverse=True)
    allowed = math.floor(rate * len(fixed) + 1e-9)
    if allowed >= len(alarms):
        threshold = -math.inf
    else:  # halfway between the highest alarm that must go and the next score above it
        hide = alarms[allowed]
        above = [x for x in alarms + [s for s, _ in proposed] if x > hide]
        threshold = (hide + min(above)) / 2 if above else hide + 1
    # without a threshold, "change" rules propose only when p(eos) < 1/2: count what argmax proposes
    return {"bugs": len(buggy), "clean": len(fixed),
            "exact": sum(e for _, e in proposed) / max(1, len(buggy)),
            "false_alarms": len(alarms) / max(1, len(fixed)), "threshold": threshold,
            "shown": sum(e for s, e in proposed if s >= threshold)}


def made_to_change(records: list[dict]) -> float:
    """How often the best-scoring rewrite (never "no change") of a buggy window is the exact fix: the order of
    the rewrites alone, whatever the model thinks of leaving the window as it is (the same under every rule)."""
    buggy = [r for r in records if r["kind"] == "buggy"]
    return sum(max(r["candidates"][1:], key=lambda c: c[0])[3] for r in buggy if len(r["candidates"]) > 1) \
        / max(1, len(buggy))


CENTRE_RULES = [("centre", 0.25), ("centre", 0.5), ("centre", 1.0)]
RULES = [("length", 1.0), ("length", 0.75), ("length", 0.5), ("length", 0.0),
         ("change", 0.0), ("change", 0.5), ("change", 1.0), ("change", 2.0), ("undo", 0.5), ("undo", 1.0)]


def by_edit(records: list[dict], rate: float = 0.05) -> dict:
    """Thresholds per kind of edit (the best rewrite's `ground.sstub.edit_kind`), cross-validated as `patchcoder eval
    --calibrate --by-edit` does (`training.evaluate.across_halves`): fitted at `rate` on one half of the files and
    applied to the other, summed; beside them the one threshold `calibrate` fits, the same way. Rule `undo 0.5`."""
    from patchcoder.training.evaluate import across_halves

    proposals = [((r["edit"], score, int(r["kind"] == "fixed"), int(r["kind"] == "buggy" and best[3])), r["path"])
                 for r in records for best, score in [choose(r["candidates"], ("undo", 0.5), r.get("reverse"))]
                 if best[2]]
    clean = [r["path"] for r in records if r["kind"] == "fixed"]
    alarms_one, shown_one = across_halves(proposals, clean, rate, by_kind=False)
    alarms_by_edit, shown_by_edit = across_halves(proposals, clean, rate)
    return {"shown_one": shown_one, "alarms_one": alarms_one, "shown_by_edit": shown_by_edit,
            "alarms_by_edit": alarms_by_edit, "clean": len(clean)}


def load_records(path: str) -> list[dict]:
    """A `dump`'s records, one per line."""
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def report(paths: list[str]) -> None:
    for path in paths:
        records = load_records(path)
        print(path)
        print(f"made to change (the best rewrite, never \"no change\"): {made_to_change(records):.1%} exact")
        print(f"{'rule':<16} {'exact':>7} {'false alarms':>12} {'threshold (5%)':>14} {'exact shown':>16}")
        for rule in RULES + (CENTRE_RULES if any("centre" in r for r in records) else []):
            m = measure(records, rule)
            name = f"{rule[0]} {rule[1]:g}"
            print(f"{name:<16} {m['exact']:>7.1%} {m['false_alarms']:>12.1%} {m['threshold']:>14.3f} "
                  f"{m['shown']:>6} / {m['bugs']} ({m['shown'] / max(1, m['bugs']):.1%})")
        if all("edit" in r and "path" in r for r in records):
            m = by_edit(records)
            print(f"undo 0.5, thresholds fitted on one half of the files and applied to the other (summed): one "
                  f"threshold {m['shown_one']} shown, {m['alarms_one']} of {m['clean']} clean alarmed; one per kind "
                  f"of edit {m['shown_by_edit']} shown, {m['alarms_by_edit']} alarmed")


def shown_exact(records: list[dict], rule=("undo", 0.5), rate: float = 0.05) -> list[bool]:
    """Per buggy window, in order: whether its exact fix is shown at the records' own threshold (`measure`'s,
    calibrated for at most `rate` false alarms), the count criterion 1 of the shipping rule sums."""
    threshold = measure(records, rule, rate)["threshold"]
    return [bool(best[2] and best[3] and score >= threshold) for r in records if r["kind"] == "buggy"
            for best, score in [choose(r["candidates"], rule, r.get("reverse"), r.get("centre"))]]


def sign_test(wins: int, losses: int) -> float:
    """Two-sided exact sign test (McNemar's, exact): how likely a split at least this uneven is when each bug
    shown by one set of weights only is as likely to be either's."""
    n, k = wins + losses, min(wins, losses)
    if n == 0:
        return 1.0
    return min(1.0, 2 * sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n)


def compare(before_path: str, after_path: str) -> dict:
    """The bugs whose exact fix two dumps of the same set show at their own thresholds: both, only the first,
    only the second, and the sign test of that split (each dump is one model's reading of the same windows)."""
    runs = []
    for path in (before_path, after_path):
        records = load_records(path)
        runs.append(([(r["kind"], r.get("sstub"), r.get("path")) for r in records], shown_exact(records)))
    (keys_a, a), (keys_b, b) = runs
    if keys_a != keys_b:
        raise SystemExit(f"error: {before_path} and {after_path} are not records of the same windows in the same "
                         "order (dump both from the same --data)")
    only_a = sum(x and not y for x, y in zip(a, b, strict=True))
    only_b = sum(y and not x for x, y in zip(a, b, strict=True))
    return {"bugs": len(a), "shown_a": sum(a), "shown_b": sum(b), "both": sum(x and y for x, y in zip(a, b, strict=True)),
            "only_a": only_a, "only_b": only_b, "p": sign_test(only_b, only_a)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    d = sub.add_parser("dump")
    d.add_argument("--checkpoint", help="model folder (default: the shipped model)")
    d.add_argument("--data", required=True)
    d.add_argument("--out", required=True)
    d.add_argument("--limit", type=int)
    d.add_argument("--no-message", action="store_true", help="buggy windows without their commit message")
    d.add_argument("--keep-heads", help="N, or 'all' (default: the checkpoint's decoding.json, else the shipped model's)")
    d.add_argument("--centre", action="store_true", help="also read each best rewrite in a window centred on it")
    r = sub.add_parser("report")
    r.add_argument("records", nargs="+")
    c = sub.add_parser("compare", help="two dumps of the same set: the bugs each shows exactly, and a sign test")
    c.add_argument("before")
    c.add_argument("after")
    args = parser.parse_args()
    if args.command == "dump":
        dump(args.checkpoint, args.data, args.out, messages=not args.no_message, limit=args.limit,
             keep_heads=args.keep_heads, centre=args.centre)
    elif args.command == "compare":
        m = compare(args.before, args.after)
        print(f"{m['bugs']} bugs: exact fix shown at each one's own 5% threshold by {args.before}: {m['shown_a']}, by "
              f"{args.after}: {m['shown_b']}; by both {m['both']}, only the first {m['only_a']}, only the second "
              f"{m['only_b']}; sign test p = {m['p']:.3f} (two-sided)")
    else:
        report(args.records)


if __name__ == "__main__":
    main()
