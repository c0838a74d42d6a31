"""Constrained beam search: every hypothesis is well-formed, beam 1 is greedy, the learned fix wins."""

from __future__ import annotations

import torch

from patchcoder.decoding import constrained_beam, constrained_greedy
from patchcoder.model import PatchCoder, PatchCoderConfig
from patchcoder.repair import Repairer
from patchcoder.tokenizer.edits import EditScript
from patchcoder.tokenizer.examples import encode_prompt
from patchcoder.tokenizer.vocab import CodeTokenizer

BUGGY = "def area(width, height):\n    return width + height\n"
FIXED = "def area(width, height):\n    return width * height\n"
TOK = CodeTokenizer.default()


def _prompts():
    texts = [BUGGY, "x = 1\ny = x + 2\n", "def f(a):\n    if a < 0:\n        return -a\n    return a\n"]
    return [encode_prompt(TOK, t, "geometry.py", None, "python") for t in texts], [t.count("\n") for t in texts]


def test_beam_one_is_greedy_and_every_hypothesis_parses():
    torch.manual_seed(0)
    model = PatchCoder(PatchCoderConfig(vocab_size=TOK.vocab_size, d_model=32, n_layers=1, n_heads=2, n_kv_heads=1,
                                        loops=2, window=8))
    prompts, lines = _prompts()
    greedy = constrained_greedy(model, TOK, prompts, lines, 24)
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
