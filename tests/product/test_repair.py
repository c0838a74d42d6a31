"""The batch-repair API on a real trained model."""

from __future__ import annotations

import subprocess

import pytest

from patchcoder import Patch, Repairer
from patchcoder.ground.errors import PatchcoderError

BUGGY = "def area(width, height):\n    return width + height\n"
FIXED = "def area(width, height):\n    return width * height\n"


def test_repair_proposes_the_learned_fix(fixer, tmp_path):
    repairer = Repairer.load(fixer)
    patches = repairer.repair([{"code": BUGGY, "path": "geometry.py"}, {"code": BUGGY, "path": "geometry.py"}])
    assert all(isinstance(p, Patch) for p in patches)
    patch = patches[0]
    assert patch.apply(BUGGY) == FIXED
    assert patch.sstub == "change_binary_operator"
    assert -5 < patch.score <= 0
    assert patch.diff.startswith("--- a/geometry.py\n+++ b/geometry.py\n")
    # the diff is what `git apply` takes
    (tmp_path / "geometry.py").write_text(BUGGY)
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    subprocess.run(["git", "apply", "-"], input=patch.diff, text=True, cwd=tmp_path, check=True)
    assert (tmp_path / "geometry.py").read_text() == FIXED


def test_a_patchs_kind_of_edit_is_that_of_the_change_it_makes(fixer):
    """Every candidate's `kind` (which chooses its threshold) is `edit_kind` of the text before and after it, in
    the text's own layout; the wide rewrites put back missing statements and drop some, so inserted and deleted
    lines are among them."""
    from patchcoder.ground.sstub import edit_kind

    code = "def area(width, height):\r\n\tscale = 2\r\n\treturn width + height\r\n"
    (found,) = Repairer.load(fixer).candidates([{"code": code, "path": "geometry.py"}])
    kinds = {p.kind for p in found}
    assert all(p.kind == edit_kind(code, p.apply(code), "python") for p in found)
    assert all(p.kind == p.sstub for p in found if p.sstub)
    assert {"change_binary_operator", "insert_lines", "delete_lines", "other"} <= kinds, kinds


def test_a_patch_refuses_a_changed_text(fixer):
    (patch,) = Repairer.load(fixer).repair([{"code": BUGGY, "path": "geometry.py"}])
    with pytest.raises(PatchcoderError, match="changed since the suggestion"):
        patch.apply(BUGGY + "\n")


def test_batches_give_the_same_patches_as_one_by_one(fixer):
    repairer = Repairer.load(fixer)
    items = [{"code": BUGGY, "path": "geometry.py"}, "x = 1\n", {"code": "", "path": "empty.py"}] * 3
    together = repairer.repair(items, batch_size=16)
    alone = [repairer.repair([item], batch_size=1)[0] for item in items]
    assert [(p.diff, round(p.score, 4)) if p else None for p in together] == \
           [(p.diff, round(p.score, 4)) if p else None for p in alone]


def test_load_errors_are_one_line(tmp_path):
    with pytest.raises(PatchcoderError, match="missing"):
        Repairer.load(tmp_path)
    with pytest.raises(PatchcoderError, match="beam"):
        Repairer(None, None).repair(["x"], beam=0)
    with pytest.raises(PatchcoderError, match="'code'"):
        Repairer(None, None).repair([{"path": "a.py"}])


def test_both_modes_together_keep_the_learned_fix(fixer):
    (patch,) = Repairer.load(fixer).repair([{"code": BUGGY, "path": "geometry.py"}], mode="both")
    assert patch is not None and patch.apply(BUGGY) == FIXED


def test_a_patch_that_adds_syntax_errors_is_never_suggested(fixer):
    """Whatever the decoder proposes, repair() drops a result that parses worse than the input."""
    from patchcoder.decoding import Decoded
    from patchcoder.tokenizer.edits import EditOp, EditScript

    base = Repairer.load(fixer)
    tok = base.tokenizer

    class Proposes(Repairer):
        def __init__(self, new_line):
            super().__init__(base.model, tok)
            self.new_line = new_line

        def decode_windows(self, items, windows, mode="generate", beam=1):
            script = EditScript((EditOp("REPLACE", 1, 2, self.new_line),), None)
            return [Decoded(script.to_tokens(tok) + [tok.eos_id], True, -0.5) for _ in windows]

    broken = "    return width * (height\n"
    assert Proposes(broken).repair([{"code": BUGGY, "path": "geometry.py"}]) == [None]
    (fine,) = Proposes("    return width * height\n").repair([{"code": BUGGY, "path": "geometry.py"}])
    assert fine.apply(BUGGY) == FIXED
    # without a grammar (plain text) nothing is parsed, so nothing is dropped
    (text,) = Proposes(broken).repair([{"code": BUGGY, "path": "notes.txt"}])
    assert text is not None
    # input that is already broken may stay as broken, not get worse
    already = "def area(width, height:\n    return width + height\n"
    assert Proposes("    return width * height\n").repair([{"code": already, "path": "g.py"}])[0] is not None


def test_a_tiled_text_gets_the_patch_of_its_best_window(fixer):
    """Every window of a long text is decoded; the item's patch is its best-scoring window's, placed at
    that window's lines."""
    from patchcoder.decoding import Decoded
    from patchcoder.tokenizer.edits import EditOp, EditScript
    from patchcoder.windows import windows_for

    base = Repairer.load(fixer)
    tok = base.tokenizer
    code = "".join(f"value_{i} = {i}\n" for i in range(400))

    class PrefersLine(Repairer):
        """Proposes, in every window, to rewrite the window's first line; scores windows by how near
        they start to line 150."""
        def decode_windows(self, items, windows, mode="generate", beam=1):
            script = EditScript((EditOp("REPLACE", 0, 1, "changed = True\n"),), None)
            return [Decoded(script.to_tokens(tok) + [tok.eos_id], True, -abs(w.start - 150) / 1000)
                    for w in windows]

    repairer = PrefersLine(base.model, tok)
    windows = windows_for(tok, code, max_tokens=repairer.max_tokens, language="python", path="v.py")
    assert len(windows) > 3
    best = min(windows, key=lambda w: abs(w.start - 150))
    for batch_size in (1, 4):
        (patch,) = repairer.repair([{"code": code, "path": "v.py"}], batch_size=batch_size)
        lines = patch.apply(code).splitlines()
        assert lines[best.start] == "changed = True" and lines.count("changed = True") == 1


def test_window_patches_gives_every_windows_change_and_repair_takes_the_best(fixer):
    """`window_patches`: one entry per window of each item, in window order, each that window's change (at the
    window's own lines) or None; `repair`'s patch is the best of them; an item with `check` is refused."""
    from patchcoder.decoding import Decoded
    from patchcoder.tokenizer.edits import EditOp, EditScript
    from patchcoder.windows import windows_for

    base = Repairer.load(fixer)
    tok = base.tokenizer
    code = "".join(f"value_{i} = {i}\n" for i in range(300))

    class EveryOther(Repairer):
        """Proposes to rewrite the first line of every other window (by start line), scored by how near it starts
        to line 150 (the best window is neither the first nor the last)."""
        def decode_windows(self, items, windows, mode="generate", beam=1):
            script = EditScript((EditOp("REPLACE", 0, 1, "changed = True\n"),), None)
            return [Decoded(script.to_tokens(tok) + [tok.eos_id] if w.start % 2 == 0 else [tok.eos_id], True,
                            -abs(w.start - 150) / 1000) for w in windows]

    repairer = EveryOther(base.model, tok)
    windows = windows_for(tok, code, max_tokens=repairer.max_tokens, language="python", path="v.py")
    items = [{"code": code, "path": "v.py"}, {"code": BUGGY, "path": "g.py"}]
    found = repairer.window_patches(items, batch_size=3)
    assert len(found[0]) == len(windows) > 3 and len(found[1]) == 1
    assert None in found[0] and any(found[0])  # windows with a change and windows without
    for window, patch in zip(windows, found[0], strict=True):
        if window.start % 2:
            assert patch is None
        else:
            assert patch.apply(code).splitlines()[window.start] == "changed = True"
            assert patch.score == -abs(window.start - 150) / 1000 and patch.kind == "other"
    (best,) = repairer.repair(items[:1])
    changed = [p for p in found[0] if p]
    top = max(changed, key=lambda p: p.score)
    assert best.diff == top.diff and top is not changed[0] and top is not changed[-1]
    with pytest.raises(PatchcoderError, match="without `check`"):
        repairer.window_patches([{"code": BUGGY, "check": lambda text: True}])


def test_a_model_folder_names_its_decoding_mode(fixer, tmp_path):
    import json
    import shutil

    folder = tmp_path / "model"
    shutil.copytree(fixer, folder)
    # the export names the prompt budget (the fixer's seq_len) and no mode
    assert json.loads((folder / "decoding.json").read_text()) == {"max_tokens": 128}
    assert Repairer.load(folder).mode == "generate" and Repairer.load(folder).max_tokens == 128
    (folder / "decoding.json").write_text('{"mode": "rank"}')
    repairer = Repairer.load(folder)
    assert repairer.mode == "rank"
    assert repairer.max_tokens == 128  # a folder whose decoding.json has no budget: training.json's seq_len
    assert Repairer.load(folder, mode="both").mode == "both"  # an explicit choice wins
    (ranked,) = repairer.repair([{"code": BUGGY, "path": "geometry.py"}])
    (explicit,) = repairer.repair([{"code": BUGGY, "path": "geometry.py"}], mode="rank")
    assert (ranked and ranked.diff) == (explicit and explicit.diff)
    for bad in ('{"mode": "guess"}', "[1]", "{"):
        (folder / "decoding.json").write_text(bad)
        with pytest.raises(PatchcoderError, match="mode|decoding.json"):
            Repairer.load(folder)


def test_a_calibrated_min_score_in_decoding_json_hides_weaker_suggestions(fixer, tmp_path):
    import json
    import math
    import shutil

    from patchcoder.checkpoint import save_min_score
    from patchcoder.suggest import Target, suggest

    folder = tmp_path / "model"
    shutil.copytree(fixer, folder)
    target = Target("geometry.py", tmp_path / "geometry.py", BUGGY, None)
    repairer = Repairer.load(folder)
    assert repairer.min_score is None
    ((_, patch),) = suggest(repairer, [target])  # without a threshold the fix is shown
    save_min_score(folder, patch.score + 0.01, "a test", mode="generate")
    with pytest.raises(PatchcoderError, match="rank mode"):
        save_min_score(folder, 0.0, "a test", mode="rank")
    (folder / "decoding.json").write_text(json.dumps(json.loads((folder / "decoding.json").read_text()) | {"mode": "generate"}))
    repairer = Repairer.load(folder)
    assert repairer.min_score == patch.score + 0.01 and repairer.mode == "generate"
    assert suggest(repairer, [target]) == []  # the model's own threshold applies by default
    assert len(suggest(repairer, [target], min_score=-math.inf)) == 1  # an explicit one wins
    assert Repairer.load(folder, min_score=None).min_score is None
    save_min_score(folder, patch.score - 0.01, "a test")
    assert json.loads((folder / "decoding.json").read_text())["mode"] == "generate"  # other keys kept
    assert len(suggest(Repairer.load(folder), [target])) == 1
    for bad in ('{"min_score": "high"}', '{"min_score": true}', '{"min_score": 1e999}', '{"keep_heads": 0}',
                '{"keep_heads": 2.5}', '{"min_score": ' + "9" * 400 + '}'):
        (folder / "decoding.json").write_text(bad)
        with pytest.raises(PatchcoderError, match="min_score|keep_heads"):
            Repairer.load(folder)
    (folder / "decoding.json").write_text('{"keep_heads": 3}')
    assert Repairer.load(folder).keep_heads == 3
    # a threshold measured ranking with other heads than the folder's is refused (in rank mode)
    (folder / "decoding.json").write_text('{"mode": "rank", "keep_heads": 3}')
    with pytest.raises(PatchcoderError, match="keep_heads 3"):
        save_min_score(folder, -1.0, "a test", mode="rank", keep_heads=1)
    save_min_score(folder, -1.0, "a test", mode="rank", keep_heads=3)
    assert Repairer.load(folder).min_score == -1.0
    (folder / "decoding.json").write_text('{"keep_heads": 3}')
    with pytest.raises(PatchcoderError, match="keep_heads"):
        Repairer.load(folder, keep_heads=0)
    (folder / "decoding.json").write_text("{")
    with pytest.raises(PatchcoderError, match="decoding.json"):
        save_min_score(folder, -1.0, "a test")


def test_a_threshold_per_kind_of_edit_replaces_min_score_for_its_kind(fixer, tmp_path):
    """decoding.json's min_score_by_edit: a patch of a kind it names must reach that kind's threshold, any other
    the folder's min_score; an explicit min_score replaces both; calibrating one threshold again drops the table."""
    import json
    import math
    import shutil

    from patchcoder.checkpoint import save_min_score
    from patchcoder.suggest import Target, suggest

    folder = tmp_path / "model"
    shutil.copytree(fixer, folder)
    target = Target("geometry.py", tmp_path / "geometry.py", BUGGY, None)
    ((_, patch),) = suggest(Repairer.load(folder), [target])
    assert patch.sstub == "change_binary_operator"
    below, above = patch.score - 0.01, patch.score + 0.01
    save_min_score(folder, below, "a test", by_edit={"change_binary_operator": above, "other": below})
    repairer = Repairer.load(folder)
    assert repairer.min_score_for(patch) == above and repairer.min_score == below
    assert suggest(repairer, [target]) == []  # its kind's threshold hides it, though min_score would show it
    assert len(suggest(repairer, [target], min_score=below)) == 1  # an explicit threshold replaces every one
    assert Repairer.load(folder, min_score=None).min_score_for(patch) is None  # also when loading
    save_min_score(folder, above, "a test", by_edit={"change_binary_operator": below, "fewer_arguments": above})
    assert len(suggest(Repairer.load(folder), [target])) == 1  # its kind's threshold shows it above min_score
    save_min_score(folder, above, "a test", by_edit={"fewer_arguments": below})  # other kinds keep min_score
    assert suggest(Repairer.load(folder), [target]) == []
    save_min_score(folder, below, "a test")  # one threshold calibrated again: the old table goes
    assert "min_score_by_edit" not in json.loads((folder / "decoding.json").read_text())
    assert len(suggest(Repairer.load(folder), [target])) == 1
    with pytest.raises(PatchcoderError, match=r"min_score_by_edit\['other'\] must be a finite number"):
        save_min_score(folder, below, "a test", by_edit={"other": math.inf})
    for bad, message in (({"change_operator": -1.0}, "unknown key 'change_operator'"),
                         ({}, "min_score_by_edit must be a non-empty object"), ({"other": "high"}, "\\['other'\\]")):
        (folder / "decoding.json").write_text(json.dumps({"min_score_by_edit": bad}))
        with pytest.raises(PatchcoderError, match=message):
            Repairer.load(folder)


def test_an_items_patch_is_the_best_its_threshold_shows():
    """Of an item's windows' patches, one that reaches its kind of edit's threshold is chosen before a
    higher-scoring one its own threshold hides; with one threshold for all (or none), the highest score wins."""
    from patchcoder.tokenizer.edits import EditScript

    def patch(sstub, score):
        return Patch("m.py", "x = 1\n", EditScript(()), score, sstub)

    removal, operator = patch("fewer_arguments", 0.5), patch("change_binary_operator", -0.2)
    by_edit = Repairer(None, None, min_score=-0.5, min_score_by_edit={"fewer_arguments": 1.0})
    assert by_edit._rank_key(operator) > by_edit._rank_key(removal)  # the removal is hidden, the operator not
    both_hidden = Repairer(None, None, min_score=-0.5,
                           min_score_by_edit={"fewer_arguments": 1.0, "change_binary_operator": 0.0})
    assert both_hidden._rank_key(removal) > both_hidden._rank_key(operator)
    for one in (Repairer(None, None, min_score=0.0), Repairer(None, None)):
        assert one._rank_key(removal) > one._rank_key(operator)


def test_a_patchs_kind_not_its_class_chooses_its_threshold():
    """A deletion (no single-statement class) is judged by deleted lines' threshold, not "other"'s; a patch made
    without a kind by its class, else by "other"'s."""
    from patchcoder.tokenizer.edits import EditScript

    repairer = Repairer(None, None, min_score=0.0, min_score_by_edit={"delete_lines": 1.0, "other": -1.0})
    deletion = Patch("m.py", "x = 1\n", EditScript(()), 0.0, None, kind="delete_lines")
    assert repairer.min_score_for(deletion) == 1.0 and not repairer.shows(deletion)
    unknown = Patch("m.py", "x = 1\n", EditScript(()), 0.0, None)
    assert repairer.min_score_for(unknown) == -1.0 and repairer.shows(unknown)


def test_repair_takes_the_window_whose_patch_its_threshold_shows(fixer, monkeypatch):
    """A file of many windows, each decoded to a chosen script (the model's scores replaced, the rest of `repair`
    real): the higher-scoring removal of an argument, hidden by its kind's threshold, loses to the operator fix
    of another window; without thresholds per kind the higher score wins."""
    from patchcoder.decoding import Decoded
    from patchcoder.tokenizer.edits import edit_script, split_lines

    repairer = Repairer.load(fixer)
    tok = repairer.tokenizer
    code = ("def area(width, height):\n    return max(width, height)\n" + "".join(f"x{i} = {i}\n" for i in range(200))
            + "def perimeter(width, height):\n    return width - height\n")
    changes = {"max(width, height)": ("max(width)", -0.1), "width - height": ("width + height", -0.5)}

    def decode(items, windows, mode=None, beam=1):
        found = []
        for w in windows:
            old = "".join(split_lines(code)[w.start:w.start + w.n_lines])
            hit = next((k for k in changes if k in old), None)
            if hit is None:
                found.append(None)
                continue
            new = old.replace(hit, changes[hit][0])
            ids = edit_script(old, new, "python", lexer=tok.lexer).to_tokens(
                tok, new_line_ids=tok.encode_lines(new, "python")) + [tok.eos_id]
            found.append(Decoded(ids, True, changes[hit][1]))
        return found

    monkeypatch.setattr(repairer, "decode_windows", decode)
    repairer.min_score, repairer.min_score_by_edit = -1.0, {"fewer_arguments": 0.0}
    (patch,) = repairer.repair([{"code": code, "path": "shapes.py"}])
    assert (patch.sstub, patch.score) == ("change_binary_operator", -0.5)
    repairer.min_score_by_edit = None
    (patch,) = repairer.repair([{"code": code, "path": "shapes.py"}])
    assert (patch.sstub, patch.score) == ("fewer_arguments", -0.1)


def test_bf16_and_fp32_decoding_propose_the_same_fix(fixer):
    """precision: bf16 autocast (the default where the CPU runs bf16 natively) or fp32; scores are taken
    in fp32 either way and agree closely."""
    import json
    import shutil

    patches = {}
    for precision in ("fp32", "bf16"):
        for mode in ("generate", "rank"):
            (patch,) = Repairer.load(fixer, precision=precision, mode=mode).repair([{"code": BUGGY, "path": "geometry.py"}])
            patches[precision, mode] = patch
    for mode in ("generate", "rank"):
        fp32, bf16 = patches["fp32", mode], patches["bf16", mode]
        assert fp32 is not None and bf16 is not None and fp32.apply(BUGGY) == bf16.apply(BUGGY)
        assert abs(fp32.score - bf16.score) < 0.05
    assert patches["bf16", "generate"].apply(BUGGY) == FIXED
    with pytest.raises(PatchcoderError, match="precision"):
        Repairer.load(fixer, precision="fp8")
    folder = fixer.parent / "precision-model"
    shutil.copytree(fixer, folder, dirs_exist_ok=True)
    (folder / "decoding.json").write_text(json.dumps({"precision": "fp32"}))
    assert Repairer.load(folder).precision == "fp32" and Repairer.load(fixer).precision == "auto"
    (folder / "decoding.json").write_text(json.dumps({"precision": "half"}))
    with pytest.raises(PatchcoderError, match="precision"):
        Repairer.load(folder)
