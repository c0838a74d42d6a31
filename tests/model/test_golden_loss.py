"""Golden losses: a fixed tiny run whose losses are stored, so a silent change to the math shows up.

Regenerate (only when a change to the model is intended) with:
    PATCHCODER_UPDATE_GOLDEN=1 pytest tests/model/test_golden_loss.py
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from patchcoder.model import PatchCoder, PatchCoderConfig

GOLDEN = Path(__file__).parent / "golden" / "tiny_losses.json"


def tiny_run(loops: int) -> list[float]:
    torch.manual_seed(1234)
    cfg = PatchCoderConfig(vocab_size=48, d_model=32, n_layers=2, n_heads=4, n_kv_heads=2, loops=loops, window=3)
    model = PatchCoder(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(0)
    losses = []
    for _ in range(12):
        x = torch.randint(0, 48, (4, 5), generator=g).repeat(1, 5)  # a repeated random pattern
        loss = F.cross_entropy(model(x[:, :-1]).flatten(0, 1), x[:, 1:].flatten())
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(round(loss.item(), 6))
    return losses


@pytest.mark.parametrize("loops", [1, 2, 3])
def test_losses_match_the_golden_file(loops):
    got = tiny_run(loops)
    golden = json.loads(GOLDEN.read_text()) if GOLDEN.exists() else {}
    if os.environ.get("PATCHCODER_UPDATE_GOLDEN"):
        golden[str(loops)] = got
        GOLDEN.write_text(json.dumps(golden, indent=1) + "\n")
    assert got == pytest.approx(golden[str(loops)], rel=1e-4, abs=1e-5)
