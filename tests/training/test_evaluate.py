"""The evaluation harness and the constrained decoder it uses."""

from __future__ import annotations

import json
import subprocess
import sys

import torch

from patchcoder.decoding import constrained_greedy
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


def test_constrained_decoding_only_emits_what_the_grammar_allows(mined):
    torch.manual_seed(0)
    model = PatchCoder(PatchCoderConfig(vocab_size=TOKENIZER.vocab_size, d_model=32, n_layers=1, n_heads=2,
                                        n_kv_heads=1, loops=2, window=8))
    cases = build_cases(TOKENIZER, load_rows(mined["gamma"]), max_tokens=128, limit=6)
    decoded = constrained_greedy(model, TOKENIZER, [c.prompt for c in cases], [c.n_lines for c in cases], 40)
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
