"""Checkpoints are safetensors + config.json; loading never unpickles and fails in one clear line."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from patchcoder.ground.errors import PatchcoderError
from patchcoder.model import CheckpointError, PatchCoder


@pytest.mark.parametrize("overrides", [{}, dict(tie_embeddings=False, loops=3), dict(learn_scales=True, loops=1)])
def test_round_trip_gives_identical_logits(tmp_path, tiny_model, overrides):
    m = tiny_model(**overrides)
    m.save_pretrained(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "model.safetensors"]
    loaded = PatchCoder.from_pretrained(tmp_path).eval()
    assert loaded.config == m.config
    idx = torch.randint(0, 61, (2, 11))
    with torch.no_grad():
        assert torch.equal(loaded(idx), m(idx))
    if m.config.tie_embeddings:
        assert loaded.head.weight is loaded.embed.weight
    # built on the meta device and given the file's tensors: nothing is left on meta, and it trains
    assert all(t.device.type == "cpu" for t in [*loaded.parameters(), *loaded.buffers()])
    assert all(p.requires_grad for p in loaded.parameters())
    assert torch.equal(loaded.rope.inv_freq, m.rope.inv_freq) and torch.equal(loaded.loop_scales, m.loop_scales)


def test_loading_never_unpickles(tmp_path, tiny_model, monkeypatch):
    tiny_model().save_pretrained(tmp_path)

    def refuse(*args, **kwargs):
        raise AssertionError("pickle used")

    monkeypatch.setattr(torch, "load", refuse)
    monkeypatch.setattr("pickle.load", refuse)
    monkeypatch.setattr("pickle.loads", refuse)
    PatchCoder.from_pretrained(tmp_path)


def one_line_error(path, match):
    with pytest.raises(CheckpointError, match=match) as info:
        PatchCoder.from_pretrained(path)
    assert isinstance(info.value, PatchcoderError)
    assert "\n" not in str(info.value)
    return str(info.value)


def test_missing_directory_or_file(tmp_path, tiny_model):
    one_line_error(tmp_path / "nowhere", "missing")
    tiny_model().save_pretrained(tmp_path)
    (tmp_path / "model.safetensors").unlink()
    assert "model.safetensors" in one_line_error(tmp_path, "missing")


def test_truncated_weights(tmp_path, tiny_model):
    tiny_model().save_pretrained(tmp_path)
    weights = tmp_path / "model.safetensors"
    data = weights.read_bytes()
    for cut in (len(data) // 2, 20, 3):
        weights.write_bytes(data[:cut])
        one_line_error(tmp_path, "truncated")


def test_missing_tensor_and_shape_mismatch(tmp_path, tiny_model):
    tiny_model().save_pretrained(tmp_path)
    weights = tmp_path / "model.safetensors"
    state = load_file(str(weights))
    save_file({k: v for k, v in state.items() if k != "blocks.1.mlp.up.weight"}, str(weights))
    assert "blocks.1.mlp.up.weight" in one_line_error(tmp_path, "do not match")
    state["blocks.0.attn.qkv.weight"] = torch.zeros(3, 3)
    save_file(state, str(weights))
    assert "blocks.0.attn.qkv.weight" in one_line_error(tmp_path, "shape")


def test_config_that_does_not_fit_the_weights_or_is_broken(tmp_path, tiny_model):
    tiny_model().save_pretrained(tmp_path)
    config = tmp_path / "config.json"
    data = json.loads(config.read_text())
    config.write_text(json.dumps({**data, "d_model": 64}))
    one_line_error(tmp_path, "shape")
    config.write_text(json.dumps({**data, "n_layers": 3}))
    one_line_error(tmp_path, "do not match")
    config.write_text("{not json")
    one_line_error(tmp_path, "not a valid model config")
    config.write_text(json.dumps({**data, "unknown": 1}))
    one_line_error(tmp_path, "unknown config fields")
