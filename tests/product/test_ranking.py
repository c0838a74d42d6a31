"""Candidate ranking (patchcoder.ranking): every rewrite of the window's (focus) lines and "no change",
scored by teacher forcing; syntax re-ranking; head pruning."""

from __future__ import annotations

import pytest

from patchcoder import Repairer
from patchcoder.ground.errors import PatchcoderError
from patchcoder.ranking import Source
from patchcoder.windows import windows_for

BUGGY = "def area(width, height):\n    return width + height\n"


def cut(repairer: Repairer, item: dict):
    return windows_for(repairer.tokenizer, item["code"], max_tokens=repairer.max_tokens, language=item["language"],
                       path=item.get("path"), focus=item.get("focus"))


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
    from patchcoder.ranking import syntax_errors

    assert syntax_errors("def f(x):\n    return x\n", "python") == 0
    assert syntax_errors("def f(x:\n    return x\n", "python") >= 1
    assert syntax_errors("anything", "cobol") is None


def test_beam_reranking_prefers_a_result_that_parses(fixer):
    from patchcoder.decoding import Decoded
    from patchcoder.ranking import first_that_parses
    from patchcoder.tokenizer.edits import EditOp, EditScript
    from patchcoder.windows import Window

    repairer = Repairer.load(fixer)
    tok = repairer.tokenizer
    broken = EditScript((EditOp("REPLACE", 1, 2, "    return width * (height\n"),), None)
    fixed = EditScript((EditOp("REPLACE", 1, 2, "    return width * height\n"),), None)
    hyps = [Decoded(broken.to_tokens(tok, "python") + [tok.eos_id], True, -0.1),
            Decoded(fixed.to_tokens(tok, "python") + [tok.eos_id], True, -0.2)]
    source = Source(BUGGY, "python")
    chosen = first_that_parses(tok, source, Window(0, [], 0, 2), hyps)
    assert chosen is hyps[1]
    assert first_that_parses(tok, source, Window(0, [], 0, 2), hyps[:1]) is hyps[0]  # nothing better
    assert first_that_parses(tok, Source(BUGGY, None), Window(0, [], 0, 2), hyps) is hyps[0]  # no grammar


def test_ranking_rewrites_only_the_focus_lines(fixer):
    from patchcoder.ranking import candidates
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
        (window,) = cut(repairer, item | {"focus": (line, line)})
        assert window.focus == (line, line)
        scripts = candidates(tok, Source(code, "python"), window)
        assert scripts[0] == [tok.eos_id] and len(scripts) > 1
        for ids in scripts[1:]:
            ops = EditScript.from_tokens(ids, tok, window.n_lines).shifted(window.start).ops
            assert all(line <= op.start <= op.end <= line + 1 for op in ops)
            seen.add(line)
    assert seen == {1, 2, 4}


def test_ranking_heads_are_the_scripts_first_tokens_and_pruning_reads_fewer_candidates(fixer):
    """The head ranking prunes by (operation, first line) is computed without lexing; it must be the
    first two tokens of the script that is then read. Keeping every head changes nothing."""
    import inspect
    import textwrap

    from patchcoder.decoding import CandidateScorer
    from patchcoder.ranking import options, parsing, rewrites, scripts

    # real code, about 50 lines, and a call with one argument per line (swapping them aligns as an
    # INSERT and a DELETE, not a REPLACE)
    code = inspect.getsource(textwrap.dedent) + "\n\ndef call(a, b):\n    return divmod(\n        a,\n        b,\n    )\n"
    repairer = Repairer.load(fixer, mode="rank")
    item = {"code": code, "path": "textwrap.py", "language": "python"}
    tok, source = repairer.tokenizer, Source(code, "python")
    windows = cut(repairer, item)
    found = rewrites(source, windows)
    every = [o for w in windows for o in options(tok, source, w, found)]
    assert len(every) > 50 and len({o.head for o in every}) > 10
    for window in windows:
        for option in options(tok, source, window, found):
            (_, script) = scripts(tok, source, window, [option])
            assert tuple(script[:2]) == option.head
    as_item = {"code": code, "path": "textwrap.py"}  # the path is in the prompt: the same windows as above
    everything = repairer.repair([as_item])[0]
    assert Repairer.load(fixer, mode="rank", keep_heads=10_000).repair([as_item])[0] == everything
    # with one head per window, only that head's candidates are read: the answer is among them
    pruned = Repairer.load(fixer, mode="rank", keep_heads=1)
    scorer = CandidateScorer(pruned.model, [w.prompt for w in windows], 512)
    heads = [sorted({o.head for o in parsing(source, options(tok, source, w, found))}) for w in windows]
    top = {hs[max(range(len(hs)), key=values.__getitem__)]
           for hs, values in zip(heads, scorer.head_scores(heads), strict=True) if hs}
    (patch,) = pruned.repair([as_item])
    if patch is not None:
        first = patch.script.ops[0]
        marker = pruned.tokenizer.line_marker(first.start - max(w.start for w in windows if w.start <= first.start))
        assert (pruned.tokenizer.special[f"<{first.kind}>"], marker) in top


def test_a_source_is_parsed_once_and_its_state_is_its_own(monkeypatch):
    """What ranking computes about a text (its error count, its rewrite checker) is computed once, on
    first use, and kept on its Source: not on the caller's item."""
    import patchcoder.ranking as ranking
    import patchcoder.tokenizer.rewrites as mutations

    calls = {"errors": 0, "checker": 0}
    real_errors, real_checker = ranking.syntax_errors, mutations.rewrite_checker

    def errors(code, language):
        calls["errors"] += 1
        return real_errors(code, language)

    def checker(code, language):
        calls["checker"] += 1
        return real_checker(code, language)

    monkeypatch.setattr(ranking, "syntax_errors", errors)
    monkeypatch.setattr(mutations, "rewrite_checker", checker)
    item = {"code": BUGGY, "language": "python"}
    source = Source.of(item)
    assert Source.of(source) is source and item == {"code": BUGGY, "language": "python"}
    assert source.syntax_errors() == 0 and source.syntax_errors() == 0 and calls["errors"] == 1
    assert source.breaks_syntax(BUGGY.replace("(width", "((width"))
    assert not source.breaks_syntax(BUGGY.replace("+", "*"))
    found = mutations.enumerate_rewrites(BUGGY, "python", check=False)
    assert all(source.parses(r) for r in found[:3]) and calls["checker"] == 1
    assert not Source("anything", "cobol").breaks_syntax("more of anything")  # no grammar: never worse


def test_undo_scores_read_the_undoing_in_the_window_the_rewrite_makes(fixer, tmp_path):
    from patchcoder.checkpoint import save_min_score
    from patchcoder.decoding import score_scripts
    from patchcoder.ranking import undo_scores
    from patchcoder.tokenizer.edits import edit_script
    from patchcoder.tokenizer.examples import encode_prompt

    repairer = Repairer.load(fixer, precision="fp32", mode="rank")
    tok, model = repairer.tokenizer, repairer.model
    item = {"code": BUGGY, "path": "geometry.py", "language": "python"}
    (window,) = cut(repairer, item)
    minus = BUGGY.replace("+", "-")
    script = edit_script(BUGGY, minus, "python").to_tokens(tok, "python") + [tok.eos_id]
    broken = [tok.special["<REPLACE>"], tok.line_marker(40), tok.eos_id]  # a line the window does not have
    undo = undo_scores(model, tok, [Source(BUGGY, "python")] * 3, [window] * 3, [script, [tok.eos_id], broken])
    # by hand: the rewritten code's window as the prompt, the script back to BUGGY as the answer
    prompt = encode_prompt(tok, minus, "geometry.py", None, "python", 0, window.n_lines)
    back = edit_script(minus, BUGGY, "python").to_tokens(tok, "python") + [tok.eos_id]
    (expected,) = score_scripts(model, [prompt], [back])
    assert undo[0] == pytest.approx(expected, abs=1e-4)
    assert undo[1] is None and undo[2] is None  # no change; a script that does not apply
    # the weight moves the best candidate's score, not which candidate is best
    (plain,) = repairer.repair([item])
    weighted_repairer = Repairer.load(fixer, precision="fp32", mode="rank", undo_weight=0.5)
    (weighted,) = weighted_repairer.repair([item])
    assert plain is not None and weighted.script == plain.script
    fix = plain.script.to_tokens(tok, "python") + [tok.eos_id]
    (fix_undo,) = undo_scores(model, tok, [Source(BUGGY, "python")], [window], [fix])
    assert weighted.score == pytest.approx(plain.score - 0.5 * fix_undo, abs=1e-4)
    # a window that starts further down, with an intent: the prompt is cut from the rewritten file
    code = "".join(f"value_{i} = {i}\n" for i in range(40)) + BUGGY
    focus = (40, 41)
    (deep,) = windows_for(tok, code, max_tokens=repairer.max_tokens, language="python", path="geometry.py",
                          intent="Fix the area", focus=focus)
    assert deep.start > 0
    local = "".join(code.splitlines(keepends=True)[deep.start:deep.start + deep.n_lines])
    moved = edit_script(local, local.replace("+", "-"), "python").to_tokens(tok, "python") + [tok.eos_id]
    (deep_undo,) = undo_scores(model, tok, [Source(code, "python")], [deep], [moved])
    rewritten = code.replace("width + height", "width - height")
    prompt = encode_prompt(tok, rewritten, "geometry.py", "Fix the area", "python", deep.start, deep.start + deep.n_lines)
    local_after = local.replace("+", "-")
    back = edit_script(local_after, local, "python").to_tokens(tok, "python") + [tok.eos_id]
    (expected,) = score_scripts(model, [prompt], [back])
    assert deep_undo == pytest.approx(expected, abs=1e-4)
    with pytest.raises(PatchcoderError, match="undo_weight"):
        Repairer(model, tok, mode="rank", undo_weight=-1.0)
    # a threshold measured with one undo weight is not saved into a folder that ranks with another
    (tmp_path / "decoding.json").write_text('{"mode": "rank", "undo_weight": 0.5}')
    with pytest.raises(PatchcoderError, match="undo_weight 0.5; calibrate with --undo-weight 0.5"):
        save_min_score(tmp_path, -1.0, "test", mode="rank", undo_weight=None)
    assert save_min_score(tmp_path, -1.0, "test", mode="rank", undo_weight=0.5).exists()
