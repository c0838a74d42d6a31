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


def test_candidate_ranking_picks_the_best_scoring_rewrite(fixer):
    from patchcoder.decoding import score_scripts
    from patchcoder.tokenizer.edits import edit_script
    from patchcoder.tokenizer.examples import encode_prompt
    from patchcoder.tokenizer.rewrites import enumerate_rewrites

    repairer = Repairer.load(fixer, precision="fp32")  # compared with fp32 teacher forcing
    tok = repairer.tokenizer
    (ranked,) = repairer.repair([{"code": BUGGY, "path": "geometry.py"}], mode="rank")
    # by hand: every rewrite the generator knows for these lines, and "no change"
    rewrites = enumerate_rewrites(BUGGY, "python", lines=(0, 2), check=True)
    assert {r.code for r in rewrites} >= {BUGGY.replace("+", "-")}  # `*` is not a rewrite it knows for `+`
    prompt = encode_prompt(tok, BUGGY, "geometry.py", None, "python")
    scripts = [[tok.eos_id]] + [edit_script(BUGGY, r.code, "python").to_tokens(tok, "python") + [tok.eos_id]
                                for r in rewrites]
    scores = score_scripts(repairer.model, [prompt] * len(scripts), scripts)
    best = max(range(len(scripts)), key=scores.__getitem__)
    if best == 0:
        assert ranked is None
    else:
        assert ranked.apply(BUGGY) == rewrites[best - 1].code
        assert abs(ranked.score - scores[best]) < 1e-4


def test_both_modes_together_keep_the_learned_fix(fixer):
    (patch,) = Repairer.load(fixer).repair([{"code": BUGGY, "path": "geometry.py"}], mode="both")
    assert patch is not None and patch.apply(BUGGY) == FIXED


def test_ranking_scores_no_change_too(fixer):
    from patchcoder.decoding import score_scripts
    from patchcoder.tokenizer.examples import encode_prompt

    repairer = Repairer.load(fixer)
    tok = repairer.tokenizer
    prompt = encode_prompt(tok, BUGGY, "geometry.py", None, "python")
    (hyp,) = repairer.repair([{"code": BUGGY, "path": "geometry.py"}])
    fix_tokens = hyp.script.to_tokens(tok, "python") + [tok.eos_id]
    fix, nothing = score_scripts(repairer.model, [prompt, prompt], [fix_tokens, [tok.eos_id]])
    assert fix > nothing
    with pytest.raises(PatchcoderError, match="mode"):
        repairer.repair([BUGGY], mode="guess")


def test_syntax_errors_counts_tree_sitter_errors():
    from patchcoder.repair import syntax_errors

    assert syntax_errors("def f(x):\n    return x\n", "python") == 0
    assert syntax_errors("def f(x:\n    return x\n", "python") >= 1
    assert syntax_errors("anything", "cobol") is None


def test_beam_reranking_prefers_a_result_that_parses(fixer):
    from patchcoder.decoding import Decoded
    from patchcoder.repair import Window
    from patchcoder.tokenizer.edits import EditOp, EditScript

    repairer = Repairer.load(fixer)
    tok = repairer.tokenizer
    broken = EditScript((EditOp("REPLACE", 1, 2, "    return width * (height\n"),), None)
    fixed = EditScript((EditOp("REPLACE", 1, 2, "    return width * height\n"),), None)
    hyps = [Decoded(broken.to_tokens(tok, "python") + [tok.eos_id], True, -0.1),
            Decoded(fixed.to_tokens(tok, "python") + [tok.eos_id], True, -0.2)]
    item = {"code": BUGGY, "language": "python"}
    chosen = repairer._first_that_parses(item, Window(0, [], 0, 2), hyps)
    assert chosen is hyps[1]
    assert repairer._first_that_parses(item, Window(0, [], 0, 2), hyps[:1]) is hyps[0]  # nothing better


def test_cached_candidate_scores_equal_teacher_forcing(fixer):
    """score_candidates (one prefill per prompt, candidates fed through the KV cache, rows leaving as
    they finish) gives the full forward's scores, for several prompts of different lengths at once."""
    from patchcoder.decoding import score_candidates, score_scripts
    from patchcoder.tokenizer.edits import edit_script
    from patchcoder.tokenizer.examples import encode_prompt
    from patchcoder.tokenizer.rewrites import enumerate_rewrites

    repairer = Repairer.load(fixer)
    tok = repairer.tokenizer
    texts = [BUGGY, "def f(a, b):\n    if a < b:\n        return max(a, b) + 1\n    return a\n"]
    prompts, candidates = [], []
    for text in texts:
        prompts.append(encode_prompt(tok, text, "geometry.py", None, "python"))
        rewrites = enumerate_rewrites(text, "python", check=True)[:9]
        candidates.append([[tok.eos_id]] + [edit_script(text, r.code, "python").to_tokens(tok, "python")
                                             + [tok.eos_id] for r in rewrites])
    assert len({len(c) for cands in candidates for c in cands}) > 2  # candidates of several lengths
    import dataclasses

    from patchcoder.model import PatchCoder

    assert repairer.model.config.loops > 1 and repairer.model.config.clp_shift  # candidates read in blocks
    unshifted = PatchCoder(dataclasses.replace(repairer.model.config, clp_shift=False)).eval()
    unshifted.load_state_dict(repairer.model.state_dict())  # candidates fed token by token (sequential)
    # tries (one per prompt, or split at 12 nodes), one row per candidate, and token by token
    for model, options in ((repairer.model, {}), (repairer.model, {"nodes_per_row": 12}),
                           (repairer.model, {"share_prefixes": False}), (unshifted, {})):
        cached = score_candidates(model, prompts, candidates, rows_per_pass=4, **options)
        for prompt, cands, got in zip(prompts, candidates, cached, strict=True):
            want = score_scripts(model, [prompt] * len(cands), cands)
            assert got == pytest.approx(want, abs=1e-4)
    with pytest.raises(ValueError, match="one list"):
        score_candidates(repairer.model, prompts, candidates[:1])
    # keep_heads: only candidates whose first two tokens (operation, first line) are among the prompt's
    # k most probable heads are read, with the same scores; the others score None
    full = score_candidates(repairer.model, prompts, candidates)
    for k in (1, 2):
        pruned = score_candidates(repairer.model, prompts, candidates, keep_heads=k)
        for prompt, cands, got, want in zip(prompts, candidates, pruned, full, strict=True):
            heads = {}
            for cand in cands[1:]:
                head = tuple(cand[:2])
                if head not in heads:
                    heads[head] = score_scripts(repairer.model, [prompt], [list(head)])[0] * 2
            top = sorted(heads, key=heads.get, reverse=True)[:k]
            assert got[0] == pytest.approx(want[0])  # "no change" is always read
            for cand, g, w in zip(cands[1:], got[1:], want[1:], strict=True):
                assert (g is not None) == (tuple(cand[:2]) in top)
                assert g is None or g == pytest.approx(w, abs=1e-5)
            assert len(heads) <= k or None in got


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


def test_ranking_rewrites_only_the_focus_lines(fixer):
    from patchcoder.tokenizer.edits import EditScript
    from patchcoder.tokenizer.rewrites import enumerate_rewrites

    repairer = Repairer.load(fixer)
    tok = repairer.tokenizer
    # a call over lines 1-3: rewrites of its arguments touch the focus line 2 but can land on 1 or 3
    code = "def area(width, height):\n    x = max(width,\n            height - 1,\n            0)\n    return x\n"
    assert {r.lines[0] for r in enumerate_rewrites(code, "python", check=True)} >= {1, 2, 4}
    item = {"code": code, "path": "geometry.py", "language": "python"}
    seen = set()
    for line in (1, 2, 4):
        (window,) = repairer._windows(0, item | {"focus": (line, line)})
        assert window.focus == (line, line)
        candidates = repairer._candidates(item, window)
        assert candidates[0] == [tok.eos_id] and len(candidates) > 1
        for ids in candidates[1:]:
            ops = EditScript.from_tokens(ids, tok, window.n_lines).shifted(window.start).ops
            assert all(line <= op.start <= op.end <= line + 1 for op in ops)
            seen.add(line)
    assert seen == {1, 2, 4}


def test_a_focus_too_long_for_one_window_is_tiled(fixer):
    repairer = Repairer.load(fixer)
    code = "".join(f"value_{i} = compute({i}, {i + 1})\n" for i in range(600))
    item = {"code": code, "path": "v.py", "language": "python", "focus": (10, 580)}
    windows = repairer._windows(0, item)
    assert len(windows) > 1 and windows[0].start == 10 and windows[-1].start + windows[-1].n_lines == 581
    assert all(w.focus == (w.start, w.start + w.n_lines - 1) for w in windows)
    assert all(w.n_lines <= repairer.tokenizer.max_lines for w in windows)
    repairer.repair([{"code": code, "path": "v.py", "focus": (10, 580)}], mode="rank")  # no error


def test_a_line_too_long_for_any_window_is_skipped(fixer):
    repairer = Repairer.load(fixer)
    huge = "blob = '" + "ab" * 4000 + "'\n"
    code = BUGGY + huge + BUGGY.replace("area", "volume")
    windows = repairer._windows(0, {"code": code, "path": "g.py", "language": "python"})
    assert [(w.start, w.n_lines) for w in windows] == [(0, 2), (3, 2)]  # line 2 has no window
    assert all(len(w.prompt) <= repairer.max_tokens for w in windows)
    (patch,) = repairer.repair([{"code": code, "path": "g.py"}])
    assert patch is None or all(op.start != 2 for op in patch.script.ops)


def test_a_long_text_is_tiled_by_windows(fixer):
    from patchcoder.tokenizer.edits import split_lines

    repairer = Repairer.load(fixer)
    filler = "".join(f"def helper_{i}(value):\n    return value * {i}\n\n\n" for i in range(60))
    code = filler + BUGGY
    item = {"code": code, "path": "geometry.py", "language": "python"}
    windows = repairer._windows(0, item)
    n = len(split_lines(code))
    assert len(windows) > 1 and windows[0].start == 0
    assert all(a.start + a.n_lines == b.start for a, b in zip(windows, windows[1:], strict=False))  # contiguous
    assert windows[-1].start + windows[-1].n_lines == n  # to the last line
    assert all(len(w.prompt) <= repairer.max_tokens * 3 // 4 for w in windows)
    assert all(w.n_lines <= repairer.tokenizer.max_lines for w in windows)
    # with a focus, one window around it
    (focused,) = repairer._windows(0, item | {"focus": (n - 1, n - 1)})
    assert focused.start <= n - 1 < focused.start + focused.n_lines


def test_a_tiled_text_gets_the_patch_of_its_best_window(fixer):
    """Every window of a long text is decoded; the item's patch is its best-scoring window's, placed at
    that window's lines."""
    from patchcoder.decoding import Decoded
    from patchcoder.tokenizer.edits import EditOp, EditScript

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
    windows = repairer._windows(0, {"code": code, "path": "v.py", "language": "python"})
    assert len(windows) > 3
    best = min(windows, key=lambda w: abs(w.start - 150))
    for batch_size in (1, 4):
        (patch,) = repairer.repair([{"code": code, "path": "v.py"}], batch_size=batch_size)
        lines = patch.apply(code).splitlines()
        assert lines[best.start] == "changed = True" and lines.count("changed = True") == 1


def test_a_model_folder_names_its_decoding_mode(fixer, tmp_path):
    import shutil

    folder = tmp_path / "model"
    shutil.copytree(fixer, folder)
    assert Repairer.load(folder).mode == "generate"  # without decoding.json
    (folder / "decoding.json").write_text('{"mode": "rank"}')
    repairer = Repairer.load(folder)
    assert repairer.mode == "rank"
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

    from patchcoder.repair import save_min_score
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


def test_ranking_heads_are_the_scripts_first_tokens_and_pruning_reads_fewer_candidates(fixer):
    """The head ranking prunes by (operation, first line) is computed without lexing; it must be the
    first two tokens of the script that is then read. Keeping every head changes nothing."""
    import inspect
    import textwrap

    from patchcoder.decoding import CandidateScorer

    # real code, about 50 lines, and a call with one argument per line (swapping them aligns as an
    # INSERT and a DELETE, not a REPLACE)
    code = inspect.getsource(textwrap.dedent) + "\n\ndef call(a, b):\n    return divmod(\n        a,\n        b,\n    )\n"
    repairer = Repairer.load(fixer, mode="rank")
    item = {"code": code, "path": "textwrap.py", "language": "python"}
    windows = repairer._windows(0, item)
    rewrites = repairer._rewrites(item, windows)
    options = [o for w in windows for o in repairer._options(item, w, rewrites)]
    assert len(options) > 50 and len({head for _, _, head in options}) > 10
    for window in windows:
        for option in repairer._options(item, window, rewrites):
            (_, script) = repairer._scripts(item, window, [option])
            assert tuple(script[:2]) == option[2]
    as_item = {"code": code, "path": "textwrap.py"}  # the path is in the prompt: the same windows as above
    everything = repairer.repair([as_item])[0]
    assert Repairer.load(fixer, mode="rank", keep_heads=10_000).repair([as_item])[0] == everything
    # with one head per window, only that head's candidates are read: the answer is among them
    pruned = Repairer.load(fixer, mode="rank", keep_heads=1)
    scorer = CandidateScorer(pruned.model, [w.prompt for w in windows], 512)
    heads = [sorted({h for _, _, h in pruned._parsing(item, pruned._options(item, w, rewrites))}) for w in windows]
    top = {hs[max(range(len(hs)), key=values.__getitem__)]
           for hs, values in zip(heads, scorer.head_scores(heads), strict=True) if hs}
    (patch,) = pruned.repair([as_item])
    if patch is not None:
        first = patch.script.ops[0]
        marker = pruned.tokenizer.line_marker(first.start - max(w.start for w in windows if w.start <= first.start))
        assert (pruned.tokenizer.special[f"<{first.kind}>"], marker) in top


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
