"""The training mixture: deterministic, weighted, resumable, split across ranks; the learning-rate schedule."""

from __future__ import annotations

import collections

import numpy as np
import pytest
import torch

from patchcoder.ground.errors import PatchcoderError
from patchcoder.tokenizer.loader import TokenShards
from patchcoder.training.config import OptimConfig
from patchcoder.training.data import MixtureBatches
from patchcoder.training.loop import learning_rate


def _sources(tokens, weights=(1.0, 1.0)):
    return [(TokenShards(tokens["alpha"]), weights[0]), (TokenShards(tokens["beta"]), weights[1])]


def _rows(batch):
    ids, _ = batch
    return [tuple(row[row != 0].tolist()) for row in ids]


def test_same_seed_same_batches_and_resume_is_exact(tokens):
    a = MixtureBatches(_sources(tokens), 4, 128, seed=3)
    b = MixtureBatches(_sources(tokens), 4, 128, seed=3)
    first = [next(a) for _ in range(7)]
    for x, y in zip(first, (next(b) for _ in range(7)), strict=True):
        assert torch.equal(x[0], y[0]) and torch.equal(x[1], y[1])
    state = a.state_dict()
    expected = [next(a) for _ in range(25)]  # crosses epoch boundaries of both sources
    resumed = MixtureBatches(_sources(tokens), 4, 128, seed=3)
    resumed.load_state_dict(state)
    for x, y in zip(expected, (next(resumed) for _ in range(25)), strict=True):
        assert torch.equal(x[0], y[0]) and torch.equal(x[1], y[1])
    other = MixtureBatches(_sources(tokens), 4, 128, seed=4)
    assert any(not torch.equal(x[0], next(other)[0]) for x in first)


def test_weights_set_the_mixture(tokens):
    alpha = {tuple(ids[: len(ids)].tolist()) for ids, _ in TokenShards(tokens["alpha"])}
    batches = MixtureBatches(_sources(tokens, (3.0, 1.0)), 8, 128, seed=0)
    counts = collections.Counter()
    for _ in range(100):
        ids, weights = next(batches)
        for row, w in zip(ids, weights, strict=True):
            n = int((w != 0).nonzero().max()) + 1 if w.any() else 0
            counts["alpha" if tuple(row[:n].tolist()) in alpha else "beta"] += 1
    assert 0.70 < counts["alpha"] / 800 < 0.80


def test_weights_are_one_on_the_script_and_lm_weight_on_code(tokens):
    shards = TokenShards(tokens["alpha"])
    batch_ids, batch_weights = next(MixtureBatches([(shards, 1.0)], 2, 128, seed=0, lm_weight=0.25))
    assert set(np.unique(batch_weights.numpy())) <= {0.0, 0.25, 1.0}
    pad = shards.pad_id
    assert torch.all(batch_weights[batch_ids == pad] == 0)
    assert torch.all(batch_weights[batch_ids != pad] > 0)


def test_ranks_take_disjoint_slices_of_the_same_global_batch(tokens):
    whole = MixtureBatches(_sources(tokens), 8, 128, seed=1, world_size=2, rank=0)
    other = MixtureBatches(_sources(tokens), 8, 128, seed=1, world_size=2, rank=1)
    for _ in range(5):
        a, b = _rows(next(whole)), _rows(next(other))
        assert a != b and len(a) == len(b) == 8


def test_state_from_another_dataset_is_refused(tokens):
    a = MixtureBatches(_sources(tokens), 4, 128, seed=0)
    b = MixtureBatches([(TokenShards(tokens["alpha"]), 1.0)], 4, 128, seed=0)
    with pytest.raises(PatchcoderError, match="cannot resume the data order"):
        b.load_state_dict(a.state_dict())


def test_learning_rate_warms_up_then_decays_to_the_floor():
    optim = OptimConfig(lr=1.0, min_lr_ratio=0.1, warmup_steps=10, max_steps=110)
    lrs = [learning_rate(s, optim) for s in range(111)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert all(x >= y for x, y in zip(lrs[10:], lrs[11:], strict=False))
    assert lrs[110] == pytest.approx(0.1)
    assert lrs[60] == pytest.approx(0.55)
