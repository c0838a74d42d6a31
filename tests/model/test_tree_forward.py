"""`PatchCoder.tree_forward`: the training pass over rows that are trees of tokens (a prompt, then its
candidate scripts as a trie) gives every token the full forward's logits of its root-to-token path."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.model.conftest import tree_path


@pytest.mark.parametrize("loops", [1, 2, 3])
@pytest.mark.parametrize("clp_shift", [True, False])
def test_a_chain_is_the_ordinary_forward(loops, clp_shift, tiny_model):
    m = tiny_model(loops=loops, window=3, n_kv_heads=2, clp_shift=clp_shift)
    idx = torch.randint(0, 61, (2, 17), generator=torch.Generator().manual_seed(loops))
    chain = torch.arange(-1, 16).expand(2, 17)
    with torch.no_grad():
        assert (m.tree_forward(idx, chain) - m(idx)).abs().max() < 1e-4


@settings(max_examples=15, deadline=None)
@given(loops=st.sampled_from([1, 2, 3]), window=st.integers(0, 12), gate_mode=st.sampled_from(["hidden", "query"]),
       prompt_len=st.integers(1, 8), nodes=st.integers(1, 9), seed=st.integers(0, 10_000))
def test_every_token_of_a_tree_gets_the_full_forwards_logits_of_its_path(loops, window, gate_mode, prompt_len,
                                                                          nodes, seed, tiny_model):
    """A prompt (a chain) followed by trie nodes whose parents are earlier nodes or the prompt's last
    token, plus a padding root in the middle of row 1 that nothing descends from."""
    m = tiny_model(loops=loops, window=window, n_kv_heads=2, gate_mode=gate_mode, learn_scales=True)
    with torch.no_grad():
        m.loop_scales.copy_(torch.tensor([0.8, 1.2]))
    g = torch.Generator().manual_seed(seed)
    T = prompt_len + nodes
    idx = torch.randint(0, 61, (2, T), generator=g)
    parents = torch.full((2, T), -1)
    for b in range(2):
        parents[b, 1:prompt_len] = torch.arange(prompt_len - 1)
        for j in range(prompt_len, T):
            parents[b, j] = int(torch.randint(prompt_len - 1, j, (), generator=g))
    if nodes > 1:
        parents[1, T - 1] = -1  # a padding root: changes only itself
        parents[1, parents[1] == T - 1] = prompt_len - 1
    with torch.no_grad():
        got = m.tree_forward(idx, parents)
        for b in range(2):
            for j in range(T):
                want = m(torch.tensor(tree_path(idx[b], parents[b], j))[None])[0, -1]
                assert (got[b, j] - want).abs().max() < 1e-4, (b, j)


def test_gradients_reach_every_parameter_through_the_tree(tiny_model):
    m = tiny_model(loops=2, window=2, n_kv_heads=2)
    idx = torch.randint(0, 61, (1, 6))
    parents = torch.tensor([[-1, 0, 1, 2, 2, 3]])  # two branches after the prompt's last token
    m.tree_forward(idx, parents).logsumexp(-1).sum().backward()
    missing = [n for n, p in m.named_parameters() if p.requires_grad and (p.grad is None or not p.grad.any())]
    assert not missing


def test_a_parent_must_come_first(tiny_model):
    m = tiny_model(loops=2, window=2)
    with pytest.raises(ValueError, match="earlier node"):
        m.tree_forward(torch.zeros(1, 3, dtype=torch.long), torch.tensor([[-1, 2, 1]]))
