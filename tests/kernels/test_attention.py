"""Every attention backend against the naive reference, forward and backward (DESIGN.md §5)."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from patchcoder.kernels import attention, band_mask, cached_attention
from patchcoder.kernels.attention import flash_attn_func, local_attention

TOL = {torch.float32: 2e-5, torch.bfloat16: 3e-2}


def make_qkv(B, H, Hkv, T, D, dtype, seed=0):
    g = torch.Generator().manual_seed(seed)
    q, k, v = (torch.randn(B, h, T, D, generator=g).to(dtype) for h in (H, Hkv, Hkv))
    return [x.requires_grad_() for x in (q, k, v)]


def run(backend, q, k, v, window, key_start=None, seed=1):
    """Output and input gradients for a fixed random upstream gradient."""
    q, k, v = (x.detach().clone().requires_grad_() for x in (q, k, v))
    out = attention(q, k, v, window, key_start, backend)
    dout = torch.randn(out.shape, generator=torch.Generator().manual_seed(seed)).to(out.dtype)
    out.backward(dout)
    return out, q.grad, k.grad, v.grad


def assert_close(got, want, dtype):
    tol = TOL[dtype]
    for a, b in zip(got, want, strict=True):
        assert a.dtype == b.dtype
        assert torch.isfinite(a).all()
        torch.testing.assert_close(a.float(), b.float(), atol=tol, rtol=tol)


def test_window_means_w_plus_one_keys_ending_at_the_query():
    # written out by hand: query t sees exactly keys t-W … t
    T, D, W = 9, 4, 3
    q, k, v = (x.detach() for x in make_qkv(1, 1, 1, T, D, torch.float32))
    out = attention(q, k, v, window=W, backend="naive")
    for t in range(T):
        keys = range(max(0, t - W), t + 1)
        scores = torch.stack([q[0, 0, t] @ k[0, 0, j] for j in keys]) / math.sqrt(D)
        want = scores.softmax(0) @ v[0, 0, list(keys)]
        torch.testing.assert_close(out[0, 0, t], want)
    mask = band_mask(T, T, W)
    assert mask.sum(1).tolist() == [min(t, W) + 1 for t in range(T)]


def test_window_zero_is_the_query_alone_and_large_window_is_causal():
    q, k, v = (x.detach() for x in make_qkv(2, 4, 2, 13, 8, torch.float32))
    out = attention(q, k, v, window=0, backend="naive")
    torch.testing.assert_close(out, v.repeat_interleave(2, dim=1))
    causal = attention(q, k, v, backend="naive")
    for backend in ("naive", "sdpa", "local"):
        torch.testing.assert_close(attention(q, k, v, window=12, backend=backend), causal)
        torch.testing.assert_close(attention(q, k, v, window=1000, backend=backend), causal)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
@pytest.mark.parametrize("backend", ["sdpa", "local"])
@pytest.mark.parametrize("T", [1, 7, 33, 97])
@pytest.mark.parametrize("window", [None, 0, 1, 5, 16, 100])
def test_backend_matches_reference_forward_and_backward(backend, dtype, T, window):
    q, k, v = make_qkv(2, 4, 2, T, 16, dtype)
    assert_close(run(backend, q, k, v, window), run("naive", q, k, v, window), dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
@pytest.mark.parametrize("backend", ["sdpa", "local"])
@pytest.mark.parametrize("window", [None, 3, 40])
def test_left_padding_hides_padded_keys(backend, dtype, window):
    T = 29
    q, k, v = make_qkv(3, 4, 1, T, 8, dtype)
    key_start = torch.tensor([0, 5, 28])
    got = run(backend, q, k, v, window, key_start)
    assert_close(got, run("naive", q, k, v, window, key_start), dtype)
    # a padded sequence's real rows equal the same sequence run alone, unpadded
    alone = attention(*(x[1:2, :, 5:].detach() for x in (q, k, v)), window, None, "naive")
    torch.testing.assert_close(got[0][1:2, :, 5:].float(), alone.float(), atol=TOL[dtype], rtol=TOL[dtype])


@settings(max_examples=40, deadline=None)
@given(
    T=st.integers(1, 80),
    window=st.one_of(st.none(), st.integers(0, 90)),
    kv=st.sampled_from([1, 2, 4]),
    block=st.integers(0, 24),
)
def test_local_blocks_of_any_size_match_reference(T, window, kv, block):
    q, k, v = (x.detach() for x in make_qkv(1, 4, kv, T, 8, torch.float32, seed=T))
    want = attention(q, k, v, window, None, "naive")
    if window is None:
        got = attention(q, k, v, None, None, "local")
    else:
        got = local_attention(q, k, v, window, block=max(window, block, 1))
    torch.testing.assert_close(got, want, atol=2e-5, rtol=2e-5)


def test_local_path_never_builds_the_t_by_t_matrix():
    # T = 32768: a dense fp32 score matrix would need 4 GiB; the blocked path needs O(T·W)
    T, W = 32768, 8
    q, k, v = (x.detach() for x in make_qkv(1, 1, 1, T, 8, torch.float32))
    out = attention(q, k, v, window=W, backend="local")
    t = T - 1
    scores = (q[0, 0, t] @ k[0, 0, t - W : t + 1].T) / math.sqrt(8)
    torch.testing.assert_close(out[0, 0, t], scores.softmax(0) @ v[0, 0, t - W : t + 1])


def test_auto_picks_local_for_long_windowed_cpu_input():
    from patchcoder.kernels.attention import pick_backend

    q = torch.zeros(1, 1, 1024, 8)
    assert pick_backend(q, 64, None) == "local"
    assert pick_backend(q, None, None) == "sdpa"
    assert pick_backend(q.bfloat16(), 64, None) == "sdpa"  # bf16: the dense mask is as fast up to 16W
    assert pick_backend(torch.zeros(1, 1, 1025, 8, dtype=torch.bfloat16), 64, None) == "local"


def test_cached_attention_folds_groups_without_copying_the_cache():
    B, H, Hkv, N, D = 2, 6, 2, 11, 8
    q, k, v = (x.detach() for x in make_qkv(B, H, Hkv, N, D, torch.float32))
    q_last = q[:, :, -2:]  # two query rows at the last index, both see every valid key
    mask = torch.ones(B, 1, 1, N, dtype=torch.bool)
    mask[1, ..., :4] = False
    got = cached_attention(q_last, k, v, mask)
    scores = q_last @ k.repeat_interleave(3, 1).transpose(-2, -1) / math.sqrt(D)
    want = scores.masked_fill(~mask, float("-inf")).softmax(-1) @ v.repeat_interleave(3, 1)
    torch.testing.assert_close(got, want)


def test_unknown_backend_is_refused():
    q, k, v = (x.detach() for x in make_qkv(1, 1, 1, 4, 8, torch.float32))
    with pytest.raises(ValueError, match="unknown attention backend"):
        attention(q, k, v, backend="triton")


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available() or flash_attn_func is None, reason="needs CUDA and flash-attn")
@pytest.mark.parametrize("window", [None, 0, 5, 64])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_flash_matches_reference_on_cuda(window, dtype):
    q, k, v = (x.detach().cuda() for x in make_qkv(2, 8, 2, 131, 64, dtype))
    got = run("flash", q, k, v, window)
    want = run("naive", q, k, v, window)
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a.float(), b.float(), atol=3e-2, rtol=3e-2)
