"""The model folder (patchcoder.checkpoint): safetensors + config.json, loading never unpickles and fails
in one clear line; a whole folder (tokenizer, training.json, decoding.json with the prompt budget) is
written at once and read back, older folders' budget coming from training.json."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from patchcoder.checkpoint import (
    CheckpointError,
    load_checkpoint,
    load_model,
    read_decoding,
    save_checkpoint,
    save_model,
)
from patchcoder.ground.errors import PatchcoderError
from patchcoder.model import PatchCoder


@pytest.mark.parametrize("overrides", [{}, dict(tie_embeddings=False, loops=3), dict(learn_scales=True, loops=1)])
def test_round_trip_gives_identical_logits(tmp_path, tiny_model, overrides):
    m = tiny_model(**overrides)
    save_model(m, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "model.safetensors"]
    loaded = load_model(tmp_path).eval()
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
    save_model(tiny_model(), tmp_path)

    def refuse(*args, **kwargs):
        raise AssertionError("pickle used")

    monkeypatch.setattr(torch, "load", refuse)
    monkeypatch.setattr("pickle.load", refuse)
    monkeypatch.setattr("pickle.loads", refuse)
    load_model(tmp_path)


def one_line_error(path, match):
    with pytest.raises(CheckpointError, match=match) as info:
        load_model(path)
    assert isinstance(info.value, PatchcoderError)
    assert "\n" not in str(info.value)
    return str(info.value)


def test_missing_directory_or_file(tmp_path, tiny_model):
    one_line_error(tmp_path / "nowhere", "missing")
    save_model(tiny_model(), tmp_path)
    (tmp_path / "model.safetensors").unlink()
    assert "model.safetensors" in one_line_error(tmp_path, "missing")


def test_truncated_weights(tmp_path, tiny_model):
    save_model(tiny_model(), tmp_path)
    weights = tmp_path / "model.safetensors"
    data = weights.read_bytes()
    for cut in (len(data) // 2, 20, 3):
        weights.write_bytes(data[:cut])
        one_line_error(tmp_path, "truncated")


def test_missing_tensor_and_shape_mismatch(tmp_path, tiny_model):
    save_model(tiny_model(), tmp_path)
    weights = tmp_path / "model.safetensors"
    state = load_file(str(weights))
    save_file({k: v for k, v in state.items() if k != "blocks.1.mlp.up.weight"}, str(weights))
    assert "blocks.1.mlp.up.weight" in one_line_error(tmp_path, "do not match")
    state["blocks.0.attn.qkv.weight"] = torch.zeros(3, 3)
    save_file(state, str(weights))
    assert "blocks.0.attn.qkv.weight" in one_line_error(tmp_path, "shape")


def test_config_that_does_not_fit_the_weights_or_is_broken(tmp_path, tiny_model):
    save_model(tiny_model(), tmp_path)
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


def test_the_model_keeps_thin_delegations(tmp_path, tiny_model):
    m = tiny_model()
    m.save_pretrained(tmp_path)
    idx = torch.randint(0, 61, (1, 5))
    with torch.no_grad():
        assert torch.equal(PatchCoder.from_pretrained(tmp_path).eval()(idx), m(idx))


def test_a_whole_folder_is_written_at_once_and_read_back(tmp_path, tiny_model):
    from patchcoder.tokenizer.vocab import CodeTokenizer

    tok = CodeTokenizer.default()
    m = tiny_model(vocab_size=tok.vocab_size)
    folder = tmp_path / "final"
    folder.mkdir()
    (folder / "stale.txt").write_text("from an earlier export")
    training = {"steps": 3, "tokens": 99, "config": {"data": {"seq_len": 256}}}
    save_checkpoint(folder, m, tok, training=training, max_tokens=256)
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "decoding.json", "model.safetensors",
                                                        "tokenizer.json", "training.json"]
    assert not (tmp_path / "final.tmp").exists()
    assert json.loads((folder / "training.json").read_text()) == training
    loaded = load_checkpoint(folder)
    assert loaded.decoding == {"max_tokens": 256} and loaded.tokenizer.fingerprint == tok.fingerprint
    assert loaded.model.config == m.config and loaded.directory == folder
    # the budget is the folder's own: decoding.json first, else training.json (older folders), else unset
    (folder / "decoding.json").write_text(json.dumps({"max_tokens": 300, "mode": "rank"}))
    assert read_decoding(folder) == {"max_tokens": 300, "mode": "rank"}
    (folder / "decoding.json").unlink()
    assert read_decoding(folder) == {"max_tokens": 256}
    (folder / "training.json").write_text(json.dumps({"config": {"data": {}}}))
    assert read_decoding(folder) == {}
    for bad in (0, -3, 2.5, True, "512"):
        (folder / "decoding.json").write_text(json.dumps({"max_tokens": bad}))
        with pytest.raises(PatchcoderError, match="decoding.json: max_tokens must be a whole number from 1 to 65,536"):
            read_decoding(folder)
    with pytest.raises(PatchcoderError, match="max_tokens"):
        save_checkpoint(tmp_path / "other", m, tok, training=training, max_tokens=0)


def test_a_tokenizer_that_does_not_fit_the_model_is_refused(tmp_path, tiny_model):
    save_model(tiny_model(), tmp_path)  # 61 ids; no tokenizer.json: the default 8,192-id vocabulary
    with pytest.raises(PatchcoderError, match="vocabulary"):
        load_checkpoint(tmp_path)
