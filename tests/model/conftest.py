"""Tiny configurations for the model's tests: a few thousand parameters, milliseconds per forward."""

from __future__ import annotations

import pytest
import torch

from patchcoder.model import PatchCoder, PatchCoderConfig


def build_tiny_model(seed: int = 0, randomize_gates: bool = True, **overrides) -> PatchCoder:
    """A small model in eval mode; gate weights are made non-zero so G-SWA mixing is exercised."""
    kwargs = dict(vocab_size=61, d_model=32, n_layers=2, n_heads=4, n_kv_heads=2, loops=2, window=4)
    kwargs.update(overrides)
    torch.manual_seed(seed)
    model = PatchCoder(PatchCoderConfig(**kwargs)).eval()
    if randomize_gates:
        with torch.no_grad():
            for block in model.blocks:
                if block.attn.gate is not None:
                    block.attn.gate.weight.normal_(std=0.5)
                    block.attn.gate.bias.normal_(std=0.5)
    return model


def tree_path(tokens, parents, node: int) -> list[int]:
    """The tokens from a tree's root down to `node` (`parents[k]` is k's parent, -1 at a root): the
    sequence whose last logits the tree forward must give at that node."""
    path = []
    while node >= 0:
        path.insert(0, int(tokens[node]))
        node = int(parents[node])
    return path


@pytest.fixture(scope="session")
def tiny_model():
    """A factory: tiny_model(loops=3, window=2, ...) -> PatchCoder."""
    return build_tiny_model


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny tensors: one intra-op thread is faster, and far faster when the 2 cores are shared."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
