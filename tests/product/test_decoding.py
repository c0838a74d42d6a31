"""Decoding (patchcoder.decoding): plain generation and sampling; constrained greedy and beam search
(every hypothesis is well-formed, beam 1 is greedy, the learned fix wins); candidate scoring (cached
scores equal teacher forcing)."""

from __future__ import annotations

import pytest
import torch

from patchcoder.decoding import constrained_beam, constrained_greedy, generate
from patchcoder.model import PatchCoder, PatchCoderConfig
from patchcoder.repair import Repairer
from patchcoder.tokenizer.edits import EditScript
from patchcoder.tokenizer.examples import encode_prompt
from patchcoder.tokenizer.vocab import CodeTokenizer

BUGGY = "def area(width, height):\n    return width + height\n"
FIXED = "def area(width, height):\n    return width * height\n"
TOK = CodeTokenizer.default()


def _tiny(loops: int = 2) -> PatchCoder:
    torch.manual_seed(0)
    return PatchCoder(PatchCoderConfig(vocab_size=61, d_model=32, n_layers=2, n_heads=4, n_kv_heads=2, loops=loops,
                                       window=4)).eval()


def test_sampling_is_seeded_and_top_k_one_is_greedy():
    m = _tiny()
    prompt = torch.randint(0, 61, (2, 4))
    one = generate(m, prompt, 10, temperature=1.0, top_p=0.9, generator=torch.Generator().manual_seed(3))
    two = generate(m, prompt, 10, temperature=1.0, top_p=0.9, generator=torch.Generator().manual_seed(3))
    assert torch.equal(one, two)
    assert torch.equal(generate(m, prompt, 10, temperature=0.7, top_k=1), generate(m, prompt, 10))


def test_eos_stops_each_sequence():
    m = _tiny()
    prompt = torch.randint(0, 61, (1, 4))
    greedy = generate(m, prompt, 10)
    eos = int(greedy[0, 6])  # the third generated token
    out = generate(m, prompt, 10, eos_token_id=eos)
    first = (out[0, 4:] == eos).nonzero()[0, 0]
    assert int(out[0, 4 + first]) == eos and out.shape[1] == 4 + first + 1


def _prompts():
    texts = [BUGGY, "x = 1\ny = x + 2\n", "def f(a):\n    if a < 0:\n        return -a\n    return a\n"]
    return [encode_prompt(TOK, t, "geometry.py", None, "python") for t in texts], [t.count("\n") for t in texts]


def test_beam_one_is_greedy_and_every_hypothesis_parses():
    torch.manual_seed(0)
    model = PatchCoder(PatchCoderConfig(vocab_size=TOK.vocab_size, d_model=32, n_layers=1, n_heads=2, n_kv_heads=1,
                                        loops=2, window=8))
    prompts, lines = _prompts()
    greedy = constrained_greedy(model, TOK, prompts, lines, max_new_tokens=24)
    beam1 = constrained_beam(model, TOK, prompts, lines, beam=1, max_new_tokens=24)
    for g, (b,) in zip(greedy, beam1, strict=True):
        if g.finished:
            assert b.ids == g.ids and abs(b.score - g.score) < 1e-4
    for hyps, n in zip(constrained_beam(model, TOK, prompts, lines, beam=4, max_new_tokens=24), lines, strict=True):
        assert 1 <= len(hyps) <= 4
        assert [h.score for h in hyps] == sorted((h.score for h in hyps), reverse=True)
        for h in hyps:
            if h.finished:
                EditScript.from_tokens(h.ids, TOK, n)  # parses, hence applies


def test_beam_search_finds_the_learned_fix(fixer):
    repairer = Repairer.load(fixer)
    prompt = encode_prompt(repairer.tokenizer, BUGGY, "geometry.py", None, "python")
    (hyps,) = constrained_beam(repairer.model, repairer.tokenizer, [prompt], [2], beam=3, max_new_tokens=32)
    best = EditScript.from_tokens(hyps[0].ids, repairer.tokenizer, 2)
    assert best.apply(BUGGY) == FIXED
    (patch,) = repairer.repair([{"code": BUGGY, "path": "geometry.py"}], beam=3)
    assert patch.apply(BUGGY) == FIXED


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
