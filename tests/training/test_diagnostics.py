"""Per-loop diagnostics on a small model trained inside the test, so the values mean something."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from patchcoder.model import PatchCoder, PatchCoderConfig
from patchcoder.training.diagnostics import LoopDiagnostics, effective_rank, loop_diagnostics


def copy_task(batch, generator, period=6, length=36, vocab=32):
    """A random pattern of `period` tokens repeated: the second half is predictable from the first."""
    pattern = torch.randint(1, vocab, (batch, period), generator=generator)
    return pattern.repeat(1, length // period)


@pytest.fixture(scope="module")
def trained():
    torch.manual_seed(0)
    cfg = PatchCoderConfig(vocab_size=32, d_model=48, n_layers=2, n_heads=4, n_kv_heads=2, loops=3, window=4)
    model = PatchCoder(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(0)
    losses = []
    for _ in range(150):
        x = copy_task(16, g)
        loss = F.cross_entropy(model(x[:, :-1]).flatten(0, 1), x[:, 1:].flatten())
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    held_out = copy_task(16, torch.Generator().manual_seed(99))
    return model, losses, held_out


def test_training_learned_the_task(trained):
    _, losses, _ = trained
    assert sum(losses[-20:]) / 20 < 0.6 * sum(losses[:20]) / 20


def test_diagnostics_are_finite_and_non_trivial(trained, tmp_path):
    model, _, held_out = trained
    d = loop_diagnostics(model, held_out)
    assert isinstance(d, LoopDiagnostics)
    assert d.loops == [0, 1, 2]
    rows = d.rows()
    assert len(rows) == 3 and set(rows[0]) == {"loop", *d.metrics}
    # loop 0 has no predecessor and no gate; alignment needs two updates
    for m in ("step_size", "logit_shift_kl", "mean_gate", "offset_cost", "update_alignment"):
        assert math.isnan(rows[0][m])
    assert math.isnan(rows[1]["update_alignment"]) and -1 <= rows[2]["update_alignment"] <= 1
    for row in rows[1:]:
        assert row["step_size"] > 1e-3
        assert row["logit_shift_kl"] > 1e-4
        assert row["offset_cost"] > 1e-3
        assert 0 < row["mean_gate"] < 1 and abs(row["mean_gate"] - 0.5) > 1e-3  # training moved the gate
    for row in rows:
        assert 1 < row["effective_rank"] <= 48
    assert "effective_rank" in d.table() and len(d.table().splitlines()) == 4
    png = d.plot(tmp_path / "loops.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000


def test_effective_rank_of_known_matrices():
    assert effective_rank(torch.ones(10, 8)) == pytest.approx(1.0, abs=1e-4)
    assert effective_rank(torch.eye(8)) == pytest.approx(8.0, rel=1e-4)
