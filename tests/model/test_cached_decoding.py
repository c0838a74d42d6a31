"""Cached decoding reproduces the full forward (DESIGN.md §4): CLP rows, sequential loops, left padding.

`prefill` + `step` (and `tree_hidden` / `block_logits`) against `forward`; generation through the three
decoders (patchcoder.decoding.generate) gives the same greedy tokens."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from patchcoder.decoding import generate
from patchcoder.model import PatchCoder, PatchCoderConfig
from tests.model.conftest import tree_path

MODES = ("clp", "sequential", "uncached")


def decode_logits(model, idx, prompt_len, mode, key_start=None):
    """Logits at every index >= prompt_len - 1 from prefill + one cached step per token."""
    B, T = idx.shape
    mask = None if key_start is None else (torch.arange(prompt_len)[None] >= key_start[:, None]).long()
    state, logits = model.prefill(idx[:, :prompt_len], T - prompt_len, mode=mode, attention_mask=mask)
    assert state.mode == mode
    out = [logits]
    for t in range(prompt_len, T):
        out.append(model.step(state, idx[:, t]))
    return torch.stack(out, dim=1), state  # (B, T - prompt_len + 1, V)


@settings(max_examples=20, deadline=None)
@given(
    loops=st.sampled_from([1, 2, 3]),
    window=st.integers(0, 24),
    n_kv_heads=st.sampled_from([1, 2, 4]),
    gate_mode=st.sampled_from(["hidden", "query"]),
    T=st.integers(2, 20),
    data=st.data(),
)
def test_cached_decoding_reproduces_the_full_forward(loops, window, n_kv_heads, gate_mode, T, data, tiny_model):
    m = tiny_model(loops=loops, window=window, n_kv_heads=n_kv_heads, gate_mode=gate_mode, learn_scales=True)
    with torch.no_grad():
        m.loop_scales.copy_(torch.tensor([0.8, 1.2]))
    prompt_len = data.draw(st.integers(1, T))
    idx = torch.randint(0, 61, (2, T), generator=torch.Generator().manual_seed(T))
    with torch.no_grad():
        want = m(idx)[:, prompt_len - 1 :]
        for mode in ("clp", "sequential"):
            got, _ = decode_logits(m, idx, prompt_len, mode)
            assert (got - want).abs().max() < 1e-4, mode


@pytest.mark.parametrize("loops", [1, 2, 3])
@pytest.mark.parametrize("window", [2, 50])  # smaller and larger than the sequence
def test_cached_decoding_matches_for_each_loop_count(loops, window, tiny_model):
    m = tiny_model(loops=loops, window=window, n_kv_heads=1)
    idx = torch.randint(0, 61, (3, 30))
    with torch.no_grad():
        want = m(idx)[:, 3:]
        for mode in ("clp", "sequential"):
            got, state = decode_logits(m, idx, 4, mode)
            assert (got - want).abs().max() < 1e-4
            assert state.nbytes() == m.cache_bytes(30, batch=3, mode=mode)


@pytest.mark.parametrize("loops", [1, 2, 3])
def test_three_generate_modes_give_the_same_greedy_tokens(loops, tiny_model):
    m = tiny_model(loops=loops, window=3)
    prompt = torch.randint(0, 61, (2, 7))
    outs = [generate(m, prompt, 12, mode=mode) for mode in MODES]
    assert outs[0].shape == (2, 19) and torch.equal(outs[0][:, :7], prompt)
    assert torch.equal(outs[0], outs[1]) and torch.equal(outs[0], outs[2])


@pytest.mark.parametrize("mode", MODES)
def test_a_batch_of_different_lengths_decodes_like_each_sequence_alone(mode, tiny_model):
    m = tiny_model(loops=3, window=3)
    g = torch.Generator().manual_seed(1)
    prompts = [torch.randint(0, 61, (n,), generator=g) for n in (1, 6, 11)]
    batch = generate(m, prompts, 9, mode=mode)
    for prompt, got in zip(prompts, batch, strict=True):
        alone = generate(m, prompt[None], 9, mode=mode)[0]
        assert torch.equal(got, alone)
        assert torch.equal(got[: len(prompt)], prompt)


def test_left_padded_logits_equal_unpadded_logits(tiny_model):
    m = tiny_model(loops=2, window=4)
    seq = torch.randint(0, 61, (1, 12))
    padded = torch.cat([torch.zeros(1, 5, dtype=torch.long), seq], dim=1)
    key_start = torch.tensor([5])
    with torch.no_grad():
        want = m(seq)[:, 2:]
        for mode in ("clp", "sequential"):
            got, _ = decode_logits(m, padded, 8, mode, key_start)
            assert (got - want).abs().max() < 1e-4
        full = m.head(m.run_loops(padded, key_start).hidden[-1])[:, 5:]
        torch.testing.assert_close(full, m(seq), atol=1e-5, rtol=1e-5)


def test_attention_mask_input_matches_list_input(tiny_model):
    m = tiny_model(loops=2)
    a, b = [3, 4, 5], [7, 8, 9, 10, 11]
    ids = torch.tensor([[0, 0, *a], b])
    mask = torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]])
    out = generate(m, ids, 4, attention_mask=mask)
    as_list = generate(m, [a, b], 4)
    assert torch.equal(out[0, 2:], as_list[0]) and torch.equal(out[1], as_list[1])
    with pytest.raises(ValueError, match="left padding"):
        generate(m, ids, 2, attention_mask=torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]]))


def test_without_the_shift_sequential_matches_uncached_and_clp_is_refused(tiny_model):
    m = tiny_model(loops=2, clp_shift=False)
    prompt = torch.randint(0, 61, (2, 5))
    assert torch.equal(generate(m, prompt, 8, mode="sequential"), generate(m, prompt, 8, mode="uncached"))
    with torch.no_grad():
        got, _ = decode_logits(m, torch.randint(0, 61, (2, 12)), 3, "sequential")
    with pytest.raises(ValueError, match="clp_shift"):
        generate(m, prompt, 2, mode="clp")


def test_cache_bytes_follows_the_formula():
    cfg = PatchCoderConfig()
    m = PatchCoder(cfg)
    L, kv, hd, W = cfg.n_layers, cfg.n_kv_heads, cfg.head_dim, cfg.window
    for R in (1, 2, 3):
        m.config.loops = R
        for T, B in ((4096, 1), (100, 8)):
            assert m.cache_bytes(T, batch=B) == L * 2 * kv * hd * (T + (R - 1) * (W + 1)) * 4 * B
            assert m.cache_bytes(T, batch=B, dtype=torch.bfloat16) == m.cache_bytes(T, batch=B) // 2
            assert m.cache_bytes(T, batch=B, mode="sequential") == L * 2 * kv * hd * R * T * 4 * B
    m.config.loops = 2
    plt_r2 = m.cache_bytes(4096)
    m.config.loops = 1
    assert plt_r2 <= 1.05 * m.cache_bytes(4096)


def test_bf16_autocast_decoding_runs_and_agrees_mostly(tiny_model):
    m = tiny_model(loops=2, window=3)
    prompt = torch.randint(0, 61, (2, 6))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        clp = generate(m, prompt, 8, mode="clp")
        unc = generate(m, prompt, 8, mode="uncached")
    assert clp.shape == unc.shape == (2, 14)
    assert (clp == unc).float().mean() > 0.7  # bf16 rounding may flip a near-tie, not the whole output


@pytest.mark.parametrize("mode", ["clp", "sequential"])
def test_step_by_step_api_matches_generate(mode, tiny_model):
    m = tiny_model(loops=2, window=3)
    prompts = [[5, 6, 7], [1, 2, 3, 4, 5, 6]]
    state, logits = m.prefill(prompts, 6, mode=mode)
    tokens = []
    for i in range(6):
        token = logits.argmax(-1)
        tokens.append(token)
        if i < 5:
            logits = m.step(state, token)
    want = generate(m, prompts, 6, mode=mode)
    for b, prompt in enumerate(prompts):
        assert torch.equal(torch.stack(tokens, 1)[b], want[b][len(prompt) :])
    m.step(state, token)  # the state holds prompt + 6 positions; the 7th does not fit
    with pytest.raises(ValueError, match="full"):
        m.step(state, token)
    with pytest.raises(ValueError, match="mode"):
        m.prefill(prompts, 2, mode="uncached")


@settings(max_examples=25, deadline=None)
@given(
    loops=st.sampled_from([1, 2, 3]),
    window=st.integers(0, 12),
    n_kv_heads=st.sampled_from([1, 2, 4]),
    gate_mode=st.sampled_from(["hidden", "query"]),
    prompt_len=st.integers(1, 14),
    block=st.integers(1, 9),
    pad=st.integers(0, 4),
)
def test_a_block_of_known_tokens_gets_the_full_forwards_logits(loops, window, n_kv_heads, gate_mode, prompt_len,
                                                              block, pad, tiny_model):
    """block_logits after a prefill (left-padded rows too, rows fanned out from one prefill) equals the
    full forward at the block's positions, and leaves the decoding state as it was."""
    m = tiny_model(loops=loops, window=window, n_kv_heads=n_kv_heads, gate_mode=gate_mode, learn_scales=True)
    with torch.no_grad():
        m.loop_scales.copy_(torch.tensor([0.8, 1.2]))
    g = torch.Generator().manual_seed(prompt_len * 31 + block)
    seqs = [torch.randint(0, 61, (prompt_len + block,), generator=g),
            torch.randint(0, 61, (prompt_len + pad + block,), generator=g)]
    prompts = [s[: len(s) - block] for s in seqs]  # the second is longer: the first is left-padded
    with torch.no_grad():
        state, _ = m.prefill(prompts, block + 1)
        before = [x.clone() for x in state.k0 + state.ring_k] + [state.prev_h.clone()]
        blocks = torch.stack([s[-block:] for s in seqs])
        got = m.block_logits(state, blocks)
        for row, s in enumerate(seqs):
            want = m(s[None])[0, -block:]
            assert (got[row] - want).abs().max() < 1e-4
        after = [x for x in state.k0 + state.ring_k] + [state.prev_h]
        assert all(torch.equal(x, y) for x, y in zip(before, after, strict=True)) and state.t == max(map(len, prompts))
        # rows: three continuations of the second prompt, scored against its cache without copying it
        rows = torch.tensor([1, 1, 1])
        other = torch.randint(0, 61, (3, block), generator=g)
        fanned = m.block_logits(state, torch.cat([blocks[1:], other[1:]]), rows)
        assert (fanned[0] - got[1]).abs().max() < 1e-5
        for k in (1, 2):
            want = m(torch.cat([prompts[1], other[k]])[None])[0, -block:]
            assert (fanned[k] - want).abs().max() < 1e-4


@settings(max_examples=25, deadline=None)
@given(
    loops=st.sampled_from([1, 2, 3]),
    window=st.integers(0, 6),
    gate_mode=st.sampled_from(["hidden", "query"]),
    prompt_len=st.integers(1, 10),
    nodes=st.integers(1, 12),
    pad=st.integers(0, 3),
    seed=st.integers(0, 10_000),
)
def test_every_node_of_a_tree_gets_the_full_forwards_logits_of_its_path(loops, window, gate_mode, prompt_len,
                                                                         nodes, pad, seed, tiny_model):
    """tree_hidden: node j of a row, after the prefix of prompt rows[n], gets the full forward's logits of
    prompt + the tokens on its path from the root (branches, padded rows and fan-out included)."""
    m = tiny_model(loops=loops, window=window, n_kv_heads=2, gate_mode=gate_mode, learn_scales=True)
    with torch.no_grad():
        m.loop_scales.copy_(torch.tensor([0.8, 1.2]))
    g = torch.Generator().manual_seed(seed)
    prompts = [torch.randint(0, 61, (prompt_len,), generator=g), torch.randint(0, 61, (prompt_len + pad,), generator=g)]
    rows = torch.tensor([1, 0, 1])  # the first prompt is left-padded when pad > 0
    tokens = torch.randint(0, 61, (3, nodes), generator=g)
    parents = torch.stack([torch.tensor([int(torch.randint(-1, j, (), generator=g)) for j in range(nodes)])
                           for _ in range(3)])
    with torch.no_grad():
        state, _ = m.prefill(prompts, 13)
        got = m.head(m.tree_hidden(state, tokens, parents, rows))
        for n in range(3):
            for j in range(nodes):
                want = m(torch.cat([prompts[int(rows[n])], torch.tensor(tree_path(tokens[n], parents[n], j))])[None])[0, -1]
                assert (got[n, j] - want).abs().max() < 1e-4
        # the padded prompt's row alone: its padding, common to all rows of the call, is skipped
        alone = m.head(m.tree_hidden(state, tokens[1:2], parents[1:2], rows[1:2]))
        assert (alone[0] - got[1]).abs().max() < 1e-5
    with pytest.raises(ValueError, match="earlier node"):
        m.tree_hidden(state, tokens, torch.zeros_like(tokens), rows)  # node 0 cannot follow itself


@pytest.mark.parametrize("loops", [1, 2, 3])
@pytest.mark.parametrize("pad", [0, 3])
def test_cached_decoding_with_and_without_padding(loops, pad, tiny_model):
    """Unpadded states attend without masks (R = 1) and padded ones with them: both equal the full forward."""
    m = tiny_model(loops=loops, window=3)
    seq = torch.randint(0, 61, (2, 14), generator=torch.Generator().manual_seed(pad))
    idx = torch.cat([torch.zeros(2, pad, dtype=torch.long), seq], dim=1)
    key_start = torch.tensor([pad, 0])  # row 1 keeps its first `pad` tokens as real ones
    idx[1, :pad] = torch.randint(0, 61, (pad,))
    with torch.no_grad():
        got, state = decode_logits(m, idx, pad + 2, "clp", key_start)
        assert state.padded == bool(pad)
        want0 = m(seq[:1])[:, 1:]
        want1 = m(idx[1:])[:, pad + 1 :]
        assert (got[0] - want0[0]).abs().max() < 1e-4
        assert (got[1] - want1[0]).abs().max() < 1e-4


@pytest.mark.parametrize("loops", [1, 2, 3])
def test_a_selected_state_keeps_decoding_like_the_rows_alone(loops, tiny_model):
    """select/reorder rebuild the cache views (loop 0's keys and the rings share one tensor per layer)."""
    m = tiny_model(loops=loops, window=2)
    idx = torch.randint(0, 61, (3, 12), generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        want = m(idx)
        state, _ = m.prefill(idx[:, :5], 7, mode="clp")
        fan = state.select(torch.tensor([2, 0, 2]))
        state.reorder(torch.tensor([1, 1]))
        assert fan.nbytes() == m.cache_bytes(12, batch=3) and state.nbytes() == m.cache_bytes(12, batch=2)
        for t in range(5, 12):
            got_fan = m.step(fan, idx[[2, 0, 2], t])
            got = m.step(state, idx[[1, 1], t])
            assert (got_fan - want[[2, 0, 2], t]).abs().max() < 1e-4
            assert (got - want[[1, 1], t]).abs().max() < 1e-4


@pytest.mark.parametrize("loops", [1, 2, 3])
@pytest.mark.parametrize("window", [3, 40])
def test_prompts_of_very_different_lengths_are_prefilled_in_groups_and_decode_alike(loops, window, tiny_model):
    """Prompts of 2, 9 and 20 tokens are prefilled in three groups, each without its shared padding;
    every row then decodes exactly as that prompt alone (both cached modes)."""
    from patchcoder.model import PatchCoder

    m = tiny_model(loops=loops, window=window, n_kv_heads=2)
    g = torch.Generator().manual_seed(loops * 100 + window)
    seqs = [torch.randint(0, 61, (n + 4,), generator=g) for n in (2, 9, 20)]
    prompts = [s[:-4] for s in seqs]
    assert len(PatchCoder._length_groups(torch.tensor([18, 11, 0]), 20)) == 3
    modes = ("clp", "sequential") if loops == 1 or m.config.clp_shift else ("sequential",)
    with torch.no_grad():
        for mode in modes:
            state, logits = m.prefill(prompts, 5, mode=mode)
            steps = [logits]
            for k in range(4):
                steps.append(m.step(state, torch.stack([s[len(p) + k] for s, p in zip(seqs, prompts, strict=True)])))
            for row, (s, p) in enumerate(zip(seqs, prompts, strict=True)):
                want = m(s[None])[0, len(p) - 1:]
                got = torch.stack([step[row] for step in steps])
                assert (got - want).abs().max() < 1e-4, (mode, row)
