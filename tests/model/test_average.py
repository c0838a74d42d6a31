"""training/recipe/average.py: the mean of exported models' weights loads as a model whose every tensor is
the mean, keeps the first folder's files and records its sources; folders of other architectures are refused."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch

from patchcoder.checkpoint import load_checkpoint, save_checkpoint

RECIPE = Path(__file__).resolve().parents[2] / "training" / "recipe" / "average.py"


@pytest.fixture(scope="module")
def average():
    spec = importlib.util.spec_from_file_location("recipe_average", RECIPE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.average


def export(path, model):
    from patchcoder.tokenizer.vocab import CodeTokenizer

    save_checkpoint(path, model, CodeTokenizer.default(),
                    training={"steps": 1, "tokens": 2, "config": {"data": {"seq_len": 256}}}, max_tokens=256)
    return path


def test_the_mean_of_two_models_loads_and_is_the_mean(tmp_path, tiny_model, average):
    from patchcoder.tokenizer.vocab import CodeTokenizer

    vocab = CodeTokenizer.default().vocab_size
    a = export(tmp_path / "a", tiny_model(seed=1, vocab_size=vocab))
    b = export(tmp_path / "b", tiny_model(seed=2, vocab_size=vocab))
    average([a, b], tmp_path / "mean")
    loaded = load_checkpoint(tmp_path / "mean").model.state_dict()
    first, second = load_checkpoint(a).model.state_dict(), load_checkpoint(b).model.state_dict()
    assert loaded.keys() == first.keys()
    differ = 0
    for name, value in loaded.items():
        torch.testing.assert_close(value, (first[name] + second[name]) / 2)
        differ += not torch.equal(first[name], second[name])
    assert differ > 0  # the two models were different, so the mean is neither
    training = json.loads((tmp_path / "mean" / "training.json").read_text())
    assert training["averaged_from"] == [str(a), str(b)] and training["steps"] == 1
    assert (tmp_path / "mean" / "config.json").read_text() == (a / "config.json").read_text()


def test_models_of_other_architectures_are_refused(tmp_path, tiny_model, average):
    from patchcoder.tokenizer.vocab import CodeTokenizer

    vocab = CodeTokenizer.default().vocab_size
    a = export(tmp_path / "a", tiny_model(vocab_size=vocab))
    b = export(tmp_path / "b", tiny_model(vocab_size=vocab, loops=3))
    with pytest.raises(SystemExit, match="config.json differ"):
        average([a, b], tmp_path / "mean")
    assert not (tmp_path / "mean").exists()
