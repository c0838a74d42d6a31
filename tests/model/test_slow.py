"""Slow checks (pytest -m slow): the default configuration and torch.compile."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from patchcoder.decoding import generate
from patchcoder.model import PatchCoder, PatchCoderConfig


@pytest.mark.slow
def test_default_config_trains_in_bf16_and_decodes_consistently():
    torch.manual_seed(0)
    model = PatchCoder(PatchCoderConfig())
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    x = torch.randint(0, 64, (4, 1)).repeat(1, 129)  # a constant sequence: trivially learnable
    losses = []
    for _ in range(20):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = F.cross_entropy(model(x[:, :-1]).flatten(0, 1).float(), x[:, 1:].flatten())
        loss.backward()
        opt.step()
        opt.zero_grad()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
    model.eval()
    prompt = torch.randint(0, 8192, (2, 200))
    outs = [generate(model, prompt, 8, mode=mode) for mode in ("clp", "sequential", "uncached")]
    assert torch.equal(outs[0], outs[1]) and torch.equal(outs[0], outs[2])


@pytest.mark.slow
def test_compiled_model_matches_eager(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path))
    torch.manual_seed(0)
    model = PatchCoder(PatchCoderConfig(vocab_size=64, d_model=32, n_layers=1, n_heads=2, n_kv_heads=1, window=4))
    x = torch.randint(0, 64, (2, 40))
    compiled = torch.compile(model)
    torch.testing.assert_close(compiled(x), model(x), atol=1e-4, rtol=1e-4)
    compiled(x).sum().backward()
    assert all(p.grad is not None for p in model.parameters())
