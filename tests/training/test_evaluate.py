"""The evaluation harness and the constrained decoder it uses."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest
import torch

from patchcoder.decoding import constrained_greedy
from patchcoder.ground.errors import PatchcoderError
from patchcoder.ground.sstub import EDIT_KINDS
from patchcoder.model import PatchCoder, PatchCoderConfig
from patchcoder.tokenizer.edits import EditScript
from patchcoder.tokenizer.grammar import EditGrammar
from patchcoder.tokenizer.vocab import CodeTokenizer
from patchcoder.training.evaluate import build_cases, load_rows, score

TOKENIZER = CodeTokenizer.default()


def test_score_of_the_true_script_and_of_wrong_ones(mined):
    cases = build_cases(TOKENIZER, load_rows(mined["gamma"]), max_tokens=128, limit=10)
    assert len(cases) == 10
    for case in cases:
        assert score(case, case.expected, True, TOKENIZER) == dict(
            exact_match=1, applies=1, well_formed=1, localisation=1)
        assert score(case, case.expected[:-1], False, TOKENIZER)["well_formed"] == 0
        no_change = [TOKENIZER.eos_id]
        assert score(case, no_change, True, TOKENIZER) == dict(exact_match=0, applies=1, well_formed=1, localisation=0)
        expected = EditScript.from_tokens(case.expected, TOKENIZER, case.n_lines)
        first = expected.ops[0]
        if first.kind != "DELETE" and first.end < case.n_lines:
            # the same text, one line lower: applies, but neither exact nor localised
            moved = EditScript((type(first)("INSERT", first.end + 1 if first.kind == "INSERT" else first.end,
                                            first.end + 1 if first.kind == "INSERT" else first.end, "x = 1\n"),),
                               None)
            got = score(case, moved.to_tokens(TOKENIZER), True, TOKENIZER)
            assert got["applies"] == 1 and got["exact_match"] == 0 and got["localisation"] == 0


def test_cases_without_messages_frame_the_same_windows_without_the_message(mined):
    rows = load_rows(mined["gamma"])
    with_message = build_cases(TOKENIZER, rows, max_tokens=128, limit=6)
    without = build_cases(TOKENIZER, rows, max_tokens=128, limit=6, messages=False)
    msg, file = TOKENIZER.special["<|msg|>"], TOKENIZER.special["<|file|>"]
    assert any(c.prompt[1] != file for c in with_message)  # the mined rows have messages
    for a, b in zip(with_message, without, strict=True):
        assert b.prompt[:2] == [msg, file]  # no message tokens at all
        # the message's room goes to the window's lines (as at inference, the prompt budget is the same)
        assert b.n_lines >= a.n_lines and len(b.prompt) <= 0.75 * 128
        applied = EditScript.from_tokens(b.expected, TOKENIZER, b.n_lines).apply(b.window)
        assert applied != b.window  # the same change, in the larger window


def test_constrained_decoding_only_emits_what_the_grammar_allows(mined):
    torch.manual_seed(0)
    model = PatchCoder(PatchCoderConfig(vocab_size=TOKENIZER.vocab_size, d_model=32, n_layers=1, n_heads=2,
                                        n_kv_heads=1, loops=2, window=8))
    cases = build_cases(TOKENIZER, load_rows(mined["gamma"]), max_tokens=128, limit=6)
    decoded = constrained_greedy(model, TOKENIZER, [c.prompt for c in cases], [c.n_lines for c in cases], max_new_tokens=40)
    for case, out in zip(cases, decoded, strict=True):
        grammar = EditGrammar(TOKENIZER, case.n_lines)
        for token in out.ids:  # raises on any token the grammar forbids
            grammar.advance(token)
        assert grammar.done == out.finished
        if out.finished:
            EditScript.from_tokens(out.ids, TOKENIZER, case.n_lines).apply(case.window)
        assert out.score <= 0


def test_eval_command_reports_every_metric(tokens, mined, tmp_path):
    from patchcoder.training.config import DataConfig, DataSource, OptimConfig, RunConfig, TrainConfig
    from patchcoder.training.loop import train

    config = TrainConfig(model=dict(d_model=32, n_layers=1, n_heads=2, n_kv_heads=1, loops=2, window=8),
                         data=DataConfig(train=[DataSource(str(tokens["alpha"]))], seq_len=128),
                         optim=OptimConfig(batch_size=4, max_steps=2, warmup_steps=1), run=RunConfig())
    result = train(config, tmp_path / "run", show_progress=False)
    out = subprocess.run([sys.executable, "-m", "patchcoder", "eval", "--checkpoint", str(result.final_dir),
                          "--data", str(mined["gamma"]), "--limit", "5", "--max-new-tokens", "24", "--json"],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    report = json.loads(out.stdout)
    assert report["examples"] == 5 and report["max_tokens"] == 128
    for key in ("exact_match", "applies", "well_formed", "localisation", "seconds_per_example"):
        assert 0 <= report[key] and (key == "seconds_per_example" or report[key] <= 1)
    assert report["by_language"]["python"]["examples"] == 5 and report["by_sstub"]
    out = subprocess.run([sys.executable, "-m", "patchcoder", "eval", "--checkpoint", str(result.final_dir), "--data",
                          str(mined["gamma"]), "--data", str(mined["beta"]), "--limit", "100", "--max-new-tokens", "4",
                          "--json", "--no-progress"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    pooled = json.loads(out.stdout)  # repeated, the sets are one: their examples together
    alone = subprocess.run([sys.executable, "-m", "patchcoder", "eval", "--checkpoint", str(result.final_dir), "--data",
                            str(mined["gamma"]), "--limit", "100", "--max-new-tokens", "4", "--json", "--no-progress"],
                           capture_output=True, text=True)
    assert alone.returncode == 0, alone.stderr[-2000:]
    assert pooled["data"] == [str(mined["gamma"]), str(mined["beta"])]
    assert pooled["examples"] > json.loads(alone.stdout)["examples"]


def test_the_kind_of_a_decoded_edit_is_the_products():
    """eval's kind of each decoded script, on its window of the whole file: inserted and deleted lines apart."""
    from patchcoder.tokenizer.edits import EditOp
    from patchcoder.training.evaluate import edit_kind

    code = "import os\n\n\ndef f(a, b):\n    x = a + b\n    log(x)\n    return x\n"
    start, n = 3, 4  # the window: the function

    def kind(*ops):
        return edit_kind(code, start, n, EditScript(tuple(ops)).to_tokens(TOKENIZER) + [TOKENIZER.eos_id], TOKENIZER,
                         "python")

    assert kind(EditOp("DELETE", 2, 3, "")) == "delete_lines"
    assert kind(EditOp("INSERT", 3, 3, "    assert x\n")) == "insert_lines"
    assert kind(EditOp("REPLACE", 1, 2, "    x = a - b\n")) == "change_binary_operator"
    assert kind(EditOp("REPLACE", 1, 3, "    x = a\n")) == "other"
    assert kind() is None  # no change


def test_a_synthetic_bug_that_does_not_fit_one_window_is_left_out_not_counted_twice():
    # two argument lines swapped 30 lines apart: one bug, which no window of 64 tokens shows whole
    body = "".join(f"    v{i} = {i}\n" for i in range(30))
    new = f"def f(a, b):\n    g(\n        a,\n{body}        b,\n    )\n"
    old = new.replace("        a,\n", "        @,\n").replace("        b,\n", "        a,\n").replace("        @,\n", "        b,\n")
    row = dict(old=old, new=new, path="m.py", language="python", message="Fix swapped arguments",
               sstub="swap_arguments", repo="synth:valid/m")
    mined_row = dict(row, repo="alice/m")  # a commit: its two changes far apart are two cases, as in training
    assert len(build_cases(TOKENIZER, [mined_row], max_tokens=64, limit=None)) == 2
    assert build_cases(TOKENIZER, [row], max_tokens=64, limit=None) == []
    near = dict(row, old=new.replace("        a,\n        v0", "        v0").replace("v0 = 0\n", "v0 = 0\n        a,\n", 1))
    assert len(build_cases(TOKENIZER, [near], max_tokens=64, limit=None)) == 1  # a bug that fits is kept


def test_the_fixed_file_is_the_old_file_with_the_real_change_made(mined):
    from patchcoder.tokenizer.edits import split_lines
    from patchcoder.training.evaluate import fixed_file

    old = "".join(f"x{i} = {i}\n" for i in range(40))
    grown = old.replace("x5 = 5\n", "x5 = 5\nprint(x5)\n").replace("x30 = 30\n", "")  # two hunks
    rows = [dict(old=old, new=grown, path="m.py", language="python", message="log x5", sstub=None)]
    cases = [c for repo in ("alpha", "beta", "gamma")
             for c in build_cases(TOKENIZER, load_rows(mined[repo]), max_tokens=128, limit=None)]
    cases += build_cases(TOKENIZER, rows, max_tokens=64, limit=None)
    resized = 0
    for case in cases:
        code, start, n = fixed_file(case, TOKENIZER)
        old, new = split_lines(case.old), split_lines(code)
        expected = EditScript.from_tokens(case.expected, TOKENIZER, case.n_lines).apply(case.window)
        assert "".join(new[start:start + n]) == expected != case.window
        assert new[:start] == old[:case.window_start]
        assert new[start + n:] == old[case.window_start + case.n_lines:]
        resized += n != case.n_lines
    assert resized  # some changes add or remove lines


def test_eval_modes_and_false_alarms(tokens, mined, tmp_path):
    from patchcoder.training.config import DataConfig, DataSource, OptimConfig, RunConfig, TrainConfig
    from patchcoder.training.evaluate import evaluate
    from patchcoder.training.loop import train

    config = TrainConfig(model=dict(d_model=32, n_layers=1, n_heads=2, n_kv_heads=1, loops=2, window=8),
                         data=DataConfig(train=[DataSource(str(tokens["alpha"]))], seq_len=128),
                         optim=OptimConfig(batch_size=4, max_steps=2, warmup_steps=1), run=RunConfig())
    final = train(config, tmp_path / "run", show_progress=False).final_dir
    reports = {mode: evaluate(final, mined["gamma"], limit=4, max_new_tokens=16, mode=mode, false_alarms=True)
               for mode in ("generate", "rank", "both")}
    for mode, report in reports.items():
        assert report["mode"] == mode and report["examples"] == 4
        assert 0 <= report["false_alarm_rate"] <= 1
        fixed, buggy = report["scores"]["fixed"], report["scores"]["buggy"]
        assert len(fixed) == round(report["false_alarm_rate"] * report["false_alarm_windows"])
        assert all(score <= 0 for score in fixed) and len(buggy) <= report["examples"]
        assert sum(exact for _, exact in buggy) == round(report["exact_match"] * report["examples"])
        edits = report["scores"]["edits"]  # the kind of edit of each change, in step with the scores
        assert len(edits["buggy"]) == len(buggy) and len(edits["fixed"]) == len(fixed)
        files = report["scores"]["files"]  # and the file of each, and of each clean window
        assert len(files["buggy"]) == len(buggy) and len(files["fixed"]) == len(fixed)
        assert len(files["clean"]) == report["false_alarm_windows"]
        assert set(edits["buggy"] + edits["fixed"]) <= set(EDIT_KINDS)
    # ranking only ever answers with a complete script: "no change" or a whole rewrite
    assert reports["rank"]["well_formed"] == 1 and reports["rank"]["applies"] == 1
    assert reports["both"]["well_formed"] >= reports["generate"]["well_formed"]
    beam = evaluate(final, mined["gamma"], limit=4, max_new_tokens=16, beam=2)
    assert beam["beam"] == 2 and "false_alarm_rate" not in beam and beam["max_new_tokens"] == 16
    # without a budget, eval decodes with the product's (what `suggest` loads the checkpoint with)
    from patchcoder.repair import Repairer
    assert evaluate(final, mined["gamma"], limit=1)["max_new_tokens"] == Repairer.load(final).max_new_tokens
    # several sets are evaluated as one: every count and every recorded change is theirs together, in order
    options = dict(max_new_tokens=16, mode="rank", false_alarms=True, batch_size=1, precision="fp32")
    alone = [evaluate(final, mined[name], **options) for name in ("gamma", "beta")]
    pooled = evaluate(final, [mined["gamma"], mined["beta"]], **options)
    assert pooled["data"] == [str(mined["gamma"]), str(mined["beta"])]
    for key in ("examples", "false_alarm_windows"):
        assert pooled[key] == alone[0][key] + alone[1][key] and alone[1][key] > 0
    assert pooled["exact_match"] * pooled["examples"] == pytest.approx(
        sum(r["exact_match"] * r["examples"] for r in alone))
    assert pooled["scores"]["edits"] == {k: alone[0]["scores"]["edits"][k] + alone[1]["scores"]["edits"][k]
                                         for k in ("buggy", "fixed")}
    assert pooled["scores"]["files"]["clean"] == alone[0]["scores"]["files"]["clean"] + alone[1]["scores"]["files"]["clean"]
    assert [round(x, 4) for x in pooled["scores"]["fixed"]] == \
           [round(x, 4) for r in alone for x in r["scores"]["fixed"]]


def test_calibration_picks_the_lowest_threshold_that_keeps_false_alarms_under_the_rate():
    import pytest

    from patchcoder.ground.errors import PatchcoderError
    from patchcoder.training.evaluate import calibrate

    report = {"examples": 10, "false_alarm_windows": 10,
              "scores": {"fixed": [-0.5, -1.0, -2.0, -3.0], "buggy": [(-0.2, 1), (-0.8, 1), (-1.5, 0), (-4.0, 1)]}}
    c = calibrate(report, 0.2)  # two alarms may stay: -0.5 and -1.0; -2.0 must go
    assert c["min_score"] == (-2.0 + -1.5) / 2  # halfway to the next score above it
    assert c["false_alarm_rate"] == 0.2 and c["exact_match"] == 0.2 and c["exact_match_without"] == 0.3
    assert c["suggested"] == 0.3
    strict = calibrate(report, 0.0)
    assert strict["min_score"] == (-0.5 + -0.2) / 2 and strict["false_alarm_rate"] == 0 and strict["exact_match"] == 0.1
    assert calibrate(report, 0.5)["min_score"] is None  # four alarms of ten are within 50%
    report["scores"]["buggy"] = [(-0.9, 1)]
    assert calibrate(report, 0.0)["min_score"] == 0.5  # nothing scores above the top alarm
    with pytest.raises(PatchcoderError, match="false alarms"):
        calibrate({"examples": 1}, 0.1)


def test_thresholds_per_kind_of_edit_show_the_most_fixes_within_the_alarm_budget():
    """fit_by_edit against every combination of cut-offs, on random proposals: never over the budget, as many
    exact fixes as the best combination, the fewest alarms among the combinations that show as many, and then
    the most changes shown."""
    import itertools
    import random

    from patchcoder.training.evaluate import fit_by_edit

    rng = random.Random(0)
    for _ in range(60):
        proposals = [(rng.choice("abc"), round(rng.uniform(-2, 0), 1), int(alarm := rng.random() < 0.4),
                      int(not alarm and rng.random() < 0.6)) for _ in range(rng.randint(1, 14))]
        budget = rng.randint(0, 3)
        kinds = sorted({k for k, *_ in proposals})
        cuts = {k: [math.inf] + sorted({s for kk, s, *_ in proposals if kk == k}) for k in kinds}

        def shown(thresholds, proposals=proposals):
            kept = [(a, e) for k, s, a, e in proposals if s >= thresholds[k]]
            return sum(e for _, e in kept), sum(a for a, _ in kept), len(kept)

        feasible = [shown(dict(zip(kinds, combo, strict=True))) for combo in itertools.product(*(cuts[k] for k in kinds))]
        exact, alarms, changes = max((e, -a, n) for e, a, n in feasible if a <= budget)
        fitted = fit_by_edit(proposals, budget)
        assert set(fitted) == set(kinds)
        assert shown(fitted) == (exact, -alarms, changes), (proposals, budget, fitted)
        for kind, threshold in fitted.items():  # never on a measured score, except at the kind's lowest
            scores = sorted({s for k, s, *_ in proposals if k == kind})
            assert threshold not in scores[1:]


def test_calibration_per_kind_of_edit_hides_the_kind_that_costs_alarms():
    from patchcoder.training.evaluate import calibrate_by_edit

    # removing an argument: each exact fix costs an alarm, all scoring high; an operator: 3 fixes for 1 alarm
    report = {"examples": 10, "false_alarm_windows": 20, "scores": {
        "buggy": [(-0.1, 1), (-0.2, 1), (-0.5, 1), (-0.6, 1), (-0.7, 1), (-1.5, 0)],
        "fixed": [-0.05, -0.15, -0.55, -2.0],
        "edits": {"buggy": ["fewer_arguments"] * 2 + ["change_binary_operator"] * 3 + ["other"],
                  "fixed": ["fewer_arguments"] * 2 + ["change_binary_operator", "other"]}}}
    c = calibrate_by_edit(report, 0.05)  # one alarm of 20 allowed
    assert c["min_score_by_edit"]["fewer_arguments"] == -0.05 + 1.0  # none shown
    assert c["min_score_by_edit"]["change_binary_operator"] == -0.7  # all three fixes, one alarm
    assert c["exact_match"] == 0.3 and c["false_alarm_rate"] == 0.05 and c["suggested"] == 0.4
    assert c["min_score"] == (-0.15 + -0.1) / 2 and c["one_threshold"]["exact_match"] == 0.1  # one fix shown
    # its change costs no alarm: shown, down to the alarm below it (as `calibrate` goes as low as its budget lets it)
    assert c["min_score_by_edit"]["other"] == (-1.5 + -2.0) / 2
    del report["scores"]["edits"]
    with pytest.raises(PatchcoderError, match="kind of each change"):
        calibrate_by_edit(report, 0.05)


def test_calibration_per_kind_of_edit_held_out_by_file_keeps_the_rate_on_files_not_fitted_on():
    """With held_out, the fitting budget is the largest tenth of RATE whose thresholds, fitted on one half of the
    files and applied to the other, alarm at most RATE of the clean windows; the thresholds are those fitted on
    every window at that budget."""
    import random
    import zlib

    from patchcoder.training.evaluate import calibrate_by_edit

    def held_out(report, fit_rate):
        """(alarms, exact) of each half's thresholds (calibrate_by_edit on its own report) on the other half."""
        s, alarms, exact = report["scores"], 0, 0
        for k in (0, 1):
            def mine(path, k=k):
                return zlib.crc32(path.encode()) % 2 == k

            own = {"examples": 1, "false_alarm_windows": sum(map(mine, s["files"]["clean"])), "scores": {
                "buggy": [b for b, f in zip(s["buggy"], s["files"]["buggy"], strict=True) if mine(f)],
                "fixed": [x for x, f in zip(s["fixed"], s["files"]["fixed"], strict=True) if mine(f)],
                "edits": {side: [e for e, f in zip(s["edits"][side], s["files"][side], strict=True) if mine(f)]
                          for side in ("buggy", "fixed")}}}
            fitted = calibrate_by_edit(own, fit_rate)
            for side in ("buggy", "fixed"):
                for value, kind, f in zip(s[side], s["edits"][side], s["files"][side], strict=True):
                    score, hit = value if side == "buggy" else (value, 0)
                    threshold = fitted["min_score_by_edit"].get(kind, fitted["min_score"])
                    if not mine(f) and (threshold is None or score >= threshold):
                        alarms, exact = alarms + (side == "fixed"), exact + hit
        return alarms, exact

    rng = random.Random(1)
    rate, lowered = 0.15, 0
    for _ in range(40):
        files = [f"pkg/m{k}.py" for k in range(6)]
        buggy = [(round(rng.uniform(-2, 0), 2), int(rng.random() < 0.5)) for _ in range(rng.randint(3, 12))]
        fixed = [round(rng.uniform(-2, 0), 2) for _ in range(rng.randint(1, 14))]
        report = {"examples": 20, "false_alarm_windows": 20, "scores": {
            "buggy": buggy, "fixed": fixed,
            "edits": {"buggy": [rng.choice("ab") for _ in buggy], "fixed": [rng.choice("ab") for _ in fixed]},
            "files": {"buggy": [rng.choice(files) for _ in buggy], "fixed": [rng.choice(files) for _ in fixed],
                      "clean": [rng.choice(files) for _ in range(20)]}}}
        c = calibrate_by_edit(report, rate, held_out=True)
        allowed = math.floor(rate * 20 + 1e-9)
        assert c["held_out"]["false_alarms"] <= allowed or c["fit_rate"] == 0
        assert (c["held_out"]["false_alarms"], c["held_out"]["exact"]) == held_out(report, c["fit_rate"])
        if c["fit_rate"] < rate:  # the next tenth up alarms too often on the files it was not fitted on
            lowered += 1
            assert held_out(report, c["fit_rate"] + rate / 10)[0] > allowed
        at_that_rate = calibrate_by_edit(report, c["fit_rate"])
        assert c["min_score_by_edit"] == at_that_rate["min_score_by_edit"]
        assert c["min_score"] == at_that_rate["min_score"]
    assert lowered >= 5  # the budget was lowered in some of the cases
    del report["scores"]["files"]
    with pytest.raises(PatchcoderError, match="file of each change"):
        calibrate_by_edit(report, rate, held_out=True)


def test_eval_calibrates_and_saves_the_threshold(tokens, mined, tmp_path):
    from patchcoder.repair import Repairer
    from patchcoder.training.config import DataConfig, DataSource, OptimConfig, RunConfig, TrainConfig
    from patchcoder.training.loop import train

    config = TrainConfig(model=dict(d_model=32, n_layers=1, n_heads=2, n_kv_heads=1, loops=2, window=8),
                         data=DataConfig(train=[DataSource(str(tokens["alpha"]))], seq_len=128),
                         optim=OptimConfig(batch_size=4, max_steps=2, warmup_steps=1), run=RunConfig())
    final = train(config, tmp_path / "run", show_progress=False).final_dir
    cmd = [sys.executable, "-m", "patchcoder", "eval", "--checkpoint", str(final), "--data", str(mined["gamma"]),
           "--limit", "4", "--max-new-tokens", "16", "--mode", "rank", "--no-progress"]
    refused = subprocess.run(cmd + ["--save-min-score"], capture_output=True, text=True)
    assert refused.returncode == 2 and "--calibrate" in refused.stderr
    wrong_mode = subprocess.run(cmd + ["--calibrate", "0", "--save-min-score"], capture_output=True, text=True)
    assert wrong_mode.returncode == 2 and "generate mode" in wrong_mode.stderr  # the folder's own mode differs
    (final / "decoding.json").write_text('{"mode": "rank"}')
    out = subprocess.run(cmd + ["--calibrate", "0", "--save-min-score", "--json"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    calibration = json.loads(out.stdout)["calibration"]
    assert calibration["false_alarm_rate"] == 0 and "calibration:" in out.stderr
    saved = json.loads((final / "decoding.json").read_text())
    assert saved["min_score"] == calibration["min_score"] and saved["mode"] == "rank"
    assert Repairer.load(final).min_score == saved["min_score"]
    alone = subprocess.run(cmd + ["--by-edit"], capture_output=True, text=True)
    assert alone.returncode == 2 and "--by-edit needs --calibrate" in alone.stderr
    out = subprocess.run(cmd + ["--calibrate", "0", "--by-edit", "--save-min-score", "--json"], capture_output=True,
                         text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    report = json.loads(out.stdout)
    by_edit = report["calibration"]["min_score_by_edit"]
    edits = report["scores"]["edits"]
    assert by_edit and set(by_edit) == set(edits["buggy"] + edits["fixed"])
    assert report["calibration"]["fit_rate"] == 0 and "held_out" in report["calibration"]
    assert report["calibration"]["false_alarm_rate"] == 0
    saved = json.loads((final / "decoding.json").read_text())
    assert saved["min_score_by_edit"] == by_edit and "--by-edit" in saved["min_score_from"]
    assert Repairer.load(final).min_score_by_edit == by_edit
    # evaluated again, the report says what those thresholds show: fitted at 0% on these windows, no alarm, and
    # the exact fixes the calibration kept
    again = subprocess.run(cmd + ["--false-alarms", "--json"], capture_output=True, text=True)
    assert again.returncode == 0, again.stderr[-2000:]
    shown = json.loads(again.stdout)["at_thresholds"]
    assert shown["false_alarms"] == 0 and shown["min_score_by_edit"] == by_edit
    assert shown["exact_shown"] == round(report["calibration"]["exact_match"] * report["examples"])
    assert shown["shown"] == round(report["calibration"]["suggested"] * report["examples"])
    assert "at the model's thresholds" in again.stderr
    # thresholds are the folder's rank mode's: another mode's evaluation does not read them
    other = subprocess.run(cmd[:-3] + ["--mode", "generate", "--false-alarms", "--json", "--no-progress"],
                           capture_output=True, text=True)
    assert other.returncode == 0 and "at_thresholds" not in json.loads(other.stdout)


def test_at_thresholds_reads_them_as_the_product_does():
    from patchcoder.training.evaluate import at_thresholds

    scores = {"buggy": [(0.5, 1), (0.1, 1), (-0.2, 0), (0.3, 0)],
              "edits": {"buggy": ["change_identifier", "other", "other", "insert_lines"],
                        "fixed": ["change_identifier", "other", "insert_lines"]},
              "fixed": [0.6, -0.1, 0.2], "files": {"buggy": [], "fixed": ["a", "a", "b"], "clean": ["a", "b", "c", "d"]}}
    # the kind's own threshold where there is one (identifier 0.55, other -0.15), else min_score (0.25)
    t = at_thresholds(scores, 0.25, {"change_identifier": 0.55, "other": -0.15})
    assert (t["shown"], t["exact_shown"], t["false_alarms"]) == (2, 1, 2)  # 0.1 other, 0.3 insert; 0.6, -0.1 alarm
    assert t["false_alarm_rate"] == 0.5
    assert (t["shown"], t["exact_shown"], t["false_alarms"]) != tuple(
        at_thresholds(scores, 0.25, None)[k] for k in ("shown", "exact_shown", "false_alarms"))
    everything = at_thresholds(scores, None, None)  # no threshold: every change is shown
    assert (everything["shown"], everything["exact_shown"], everything["false_alarms"]) == (4, 2, 3)
    # the same verdicts as the product's (`Repairer.shows`), change by change
    from patchcoder.repair import Patch, Repairer
    from patchcoder.tokenizer.edits import EditScript

    thresholds = dict(min_score=0.25, min_score_by_edit={"change_identifier": 0.55, "other": -0.15})
    product = Repairer(None, None, **thresholds)
    changes = [(score, kind) for (score, _), kind in zip(scores["buggy"], scores["edits"]["buggy"], strict=True)]
    changes += list(zip(scores["fixed"], scores["edits"]["fixed"], strict=True))
    shown = [product.shows(Patch("m.py", "x = 1\n", EditScript(()), score, kind=kind)) for score, kind in changes]
    t = at_thresholds(scores, **thresholds)
    assert (t["shown"], t["false_alarms"]) == (sum(shown[:4]), sum(shown[4:]))
    assert t["files_alarmed"] == 1  # both alarms in file a: suggest would show one suggestion


def _clean_tree(root):
    """A folder of code taken as correct, with what `read_clean_code` must leave out beside it."""
    (root / "pkg" / "sub").mkdir(parents=True)
    (root / "pkg" / "geometry.py").write_text("def area(w, h):\n    return w * h\n")
    (root / "pkg" / "sub" / "long.py").write_text("".join(f"def f{i}(x):\n    return x + {i}\n" for i in range(120)))
    (root / "pkg" / "sub" / "tool.js").write_text("function add(a, b) {\n  return a + b;\n}\n")
    (root / "pkg" / "notes.txt").write_text("not code\n")
    (root / "pkg" / ".hidden").mkdir()
    (root / "pkg" / ".hidden" / "x.py").write_text("x = 1\n")
    (root / "pkg" / "latin1.py").write_bytes("s = 'caf\xe9'\n".encode("latin-1"))
    return root / "pkg"


def test_clean_code_is_every_window_of_every_file_and_joins_the_false_alarms(tokens, mined, tmp_path):
    from patchcoder.repair import Repairer
    from patchcoder.training.config import DataConfig, DataSource, OptimConfig, RunConfig, TrainConfig
    from patchcoder.training.evaluate import evaluate, read_clean_code
    from patchcoder.training.loop import train

    tree = _clean_tree(tmp_path)
    items, notes = read_clean_code([tree])
    assert [i["path"] for i in items] == ["pkg/geometry.py", "pkg/sub/long.py", "pkg/sub/tool.js"]
    assert notes == ["pkg/latin1.py: skipped, not UTF-8 text"]
    with pytest.raises(PatchcoderError, match="no such file or folder"):
        read_clean_code([tmp_path / "missing"])
    # a file is read once however often it is named; a symbolic link is not followed; another language refused
    (tree / "sub" / "link.py").symlink_to(tree / "geometry.py")
    assert read_clean_code([tree, tree / "geometry.py", tree / "sub"])[0] == items
    (tree / "main.go").write_text("package main\n")
    with pytest.raises(PatchcoderError, match="not in a language"):
        read_clean_code([tree / "main.go"])
    # inside a repository, a file is named as suggest names it: relative to the repository's root
    import pygit2

    pygit2.init_repository(str(tmp_path))
    assert [i["path"] for i in read_clean_code([tree / "sub"])[0]] == ["pkg/sub/long.py", "pkg/sub/tool.js"]
    (tmp_path / ".git").rename(tmp_path / "not-a-repo")
    config = TrainConfig(model=dict(d_model=32, n_layers=1, n_heads=2, n_kv_heads=1, loops=2, window=8),
                         data=DataConfig(train=[DataSource(str(tokens["alpha"]))], seq_len=128),
                         optim=OptimConfig(batch_size=4, max_steps=2, warmup_steps=1), run=RunConfig())
    final = train(config, tmp_path / "run", show_progress=False).final_dir
    options = dict(limit=4, max_new_tokens=16, mode="rank", precision="fp32")
    base = evaluate(final, mined["gamma"], false_alarms=True, **options)
    both = evaluate(final, mined["gamma"], clean_code=[tree], **options)  # clean code implies false alarms
    clean = both["clean_code"]
    by_window = Repairer.load(final, precision="fp32").window_patches(items, mode="rank")
    assert clean["files"] == 3 and clean["windows"] == sum(map(len, by_window)) > 3  # the long file: several
    patches = [(item["path"], p) for item, found in zip(items, by_window, strict=True) for p in found]
    assert clean["false_alarms"] == sum(p is not None for _, p in patches)
    assert clean["files_alarmed"] == len({path for path, p in patches if p is not None})
    code = clean["scores"]  # every alarm's score, kind and file; every window's file
    assert code["files"]["clean"] == [path for path, _ in patches]
    assert code["files"]["fixed"] == [path for path, p in patches if p is not None]
    assert [round(x, 4) for x in code["fixed"]] == [round(p.score, 4) for _, p in patches if p is not None]
    assert code["edits"]["fixed"] == [p.kind for _, p in patches if p is not None]
    # apart from the fixed windows' false alarms, which are those of the data alone
    assert both["false_alarm_windows"] == base["false_alarm_windows"]
    assert both["scores"]["edits"] == base["scores"]["edits"] and both["scores"]["files"] == base["scores"]["files"]


def test_eval_calibrates_with_clean_codes_files_kept_quiet(tokens, mined, tmp_path):
    from patchcoder.training.config import DataConfig, DataSource, OptimConfig, RunConfig, TrainConfig
    from patchcoder.training.loop import train

    tree = _clean_tree(tmp_path)
    config = TrainConfig(model=dict(d_model=32, n_layers=1, n_heads=2, n_kv_heads=1, loops=2, window=8),
                         data=DataConfig(train=[DataSource(str(tokens["alpha"]))], seq_len=128),
                         optim=OptimConfig(batch_size=4, max_steps=2, warmup_steps=1), run=RunConfig())
    final = train(config, tmp_path / "run", show_progress=False).final_dir
    (final / "decoding.json").write_text('{"mode": "rank"}')
    cmd = [sys.executable, "-m", "patchcoder", "eval", "--checkpoint", str(final), "--data", str(mined["gamma"]),
           "--limit", "4", "--max-new-tokens", "16", "--no-progress", "--clean-code", str(tree), "--json"]
    out = subprocess.run(cmd + ["--calibrate", "0", "--by-edit", "--save-min-score"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    report = json.loads(out.stdout)
    assert "clean code: 3 files" in out.stderr and "1 files skipped" in out.stderr
    assert report["clean_code"]["false_alarms"] > 0  # an untrained model proposes changes to correct code
    saved = json.loads((final / "decoding.json").read_text())
    assert "clean code" in saved["min_score_from"]
    quiet = report["calibration"]["clean_code"]
    assert quiet["files_alarmed"] == 0 == quiet["allowed"]  # RATE 0: no file of the clean code
    assert quiet["files"] == 3 and "held_out" in quiet and "clean code's files" in out.stderr
    # at the saved thresholds, the clean code gets no suggestion (keep_files_quiet's own test sees it raise them)
    again = subprocess.run(cmd, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr[-2000:]
    assert json.loads(again.stdout)["clean_code"]["at_thresholds"]["files_alarmed"] == 0
    missing = subprocess.run(cmd[:-3] + ["--clean-code", str(tmp_path / "missing")], capture_output=True, text=True)
    assert missing.returncode == 2 and "no such file or folder" in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1


def test_keep_files_quiet_raises_the_cheapest_kind_until_few_files_hold_an_alarm():
    from patchcoder.training.evaluate import keep_files_quiet

    # (kind, score, is an alarm, is exact): raising identifiers above their alarm hides the exact fix at 0.45;
    # raising "other" above its alarm hides no exact fix (the one at 0.6 stays above)
    proposals = [("change_identifier", 0.45, 0, 1), ("change_identifier", 0.9, 0, 1), ("other", 0.6, 0, 1)]
    alarms = [("change_identifier", 0.5, "a.py"), ("other", 0.4, "b.py")]
    start = {"change_identifier": 0.2, "other": 0.2}
    quiet = keep_files_quiet(start, None, proposals, alarms, allowed=1)
    assert quiet == {"change_identifier": 0.2, "other": 0.5}  # "other" raised, halfway to its next score
    assert keep_files_quiet(start, None, proposals, alarms, allowed=2) == start  # already within bounds
    # several alarms, one file each: raised until at most one file holds a shown alarm, never lowered
    alarms += [("other", 0.35, "c.py"), ("other", 0.3, "a.py")]
    quiet = keep_files_quiet(start, None, proposals, alarms, allowed=1)
    assert len({path for kind, score, path in alarms if score >= quiet[kind]}) <= 1
    assert all(quiet[k] >= start[k] for k in start)
    # a kind the thresholds lack is read at the one threshold, and raised as its own
    assert keep_files_quiet({}, 0.0, proposals, [("delete_lines", 0.5, "d.py")], allowed=0)["delete_lines"] > 0.5
    assert keep_files_quiet(start, None, proposals, alarms, allowed=0)["change_identifier"] > 0.5


def test_the_files_bound_is_fitted_at_the_largest_share_of_rate_that_holds_across_halves():
    """As the window budget: the quieting is fitted at the largest of RATE, 0.9 RATE, ..., 0 whose thresholds,
    fitted on each half of the clean code's files and applied to the other, leave at most RATE of them alarmed."""
    import random

    from patchcoder.training.evaluate import _quiet_across_halves, calibrate_by_edit

    rng = random.Random(7)
    kinds = ["other", "change_identifier", "change_binary_operator"]
    fitted_at = []
    for _ in range(6):
        files = [f"pkg/m{i}.py" for i in range(60)]
        alarms = [(rng.choice(kinds), rng.uniform(-1, 1), rng.choice(files)) for _ in range(rng.randint(20, 80))]
        buggy = [(rng.uniform(-1, 1), rng.randint(0, 1)) for _ in range(40)]
        report = {"examples": 40, "false_alarm_windows": 40, "scores": {
            "buggy": buggy, "fixed": [rng.uniform(-1, 1) for _ in range(8)],
            "edits": {"buggy": [rng.choice(kinds) for _ in buggy], "fixed": [rng.choice(kinds) for _ in range(8)]},
            "files": {"buggy": [f"s{i % 7}.py" for i in range(40)], "fixed": [f"s{i % 7}.py" for i in range(8)],
                      "clean": [f"s{i % 7}.py" for i in range(40)]}},
            "clean_code": {"files": len(files), "scores": {
                "fixed": [a[1] for a in alarms], "edits": {"fixed": [a[0] for a in alarms]},
                "files": {"fixed": [a[2] for a in alarms], "clean": files}}}}
        c = calibrate_by_edit(report, 0.1, held_out=True)
        quiet = c["clean_code"]
        fitted_at.append(quiet["fit_rate"])
        assert quiet["allowed"] == 6 and quiet["files_alarmed"] <= round(quiet["fit_rate"] * 60)
        assert quiet["held_out"]["files_alarmed"] <= 6 or quiet["fit_rate"] == 0
        if quiet["fit_rate"] < 0.1:  # the next share up does not hold across halves
            proposals = [(k, s, 0, e) for (s, e), k in zip(buggy, report["scores"]["edits"]["buggy"], strict=True)]
            proposals += [(k, s, 1, 0) for s, k in zip(report["scores"]["fixed"], report["scores"]["edits"]["fixed"],
                                                       strict=True)]
            synthetic = calibrate_by_edit({k: v for k, v in report.items() if k != "clean_code"}, 0.1, held_out=True)
            up = _quiet_across_halves(synthetic["min_score_by_edit"], synthetic["min_score"], proposals,
                                      alarms, files, round(quiet["fit_rate"] + 0.01, 4))
            assert up > 6
    assert 0.1 in fitted_at and min(fitted_at) < 0.1  # both: RATE holds, and a smaller share was needed
