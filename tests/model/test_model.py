"""The training forward against the equations of DESIGN.md §4, written out independently here."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from patchcoder.kernels.attention import pick_backend
from patchcoder.model import PatchCoder, PatchCoderConfig


def rope_tables(cfg, T):
    D = cfg.head_dim
    inv = 1.0 / cfg.rope_base ** (torch.arange(0, D, 2, dtype=torch.float32) / D)
    angles = torch.arange(T, dtype=torch.float32)[:, None] * inv  # (T, D/2)
    return angles.cos(), angles.sin()


def rotate(x, cos, sin):
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)


def layer(m, blk, x, cos, sin, attend):
    """One pre-norm block; attend(q, k, v, h) -> o with q (B,H,T,D), k and v expanded to H heads."""
    cfg = m.config
    B, T, C = x.shape
    H, Hkv, D = cfg.n_heads, cfg.n_kv_heads, cfg.head_dim
    h = F.rms_norm(x, (C,), blk.attn_norm.weight, cfg.norm_eps)
    q, k, v = F.linear(h, blk.attn.qkv.weight).split([H * D, Hkv * D, Hkv * D], dim=-1)
    q = rotate(q.view(B, T, H, D).transpose(1, 2), cos, sin)
    k = rotate(k.view(B, T, Hkv, D).transpose(1, 2), cos, sin).repeat_interleave(H // Hkv, dim=1)
    v = v.view(B, T, Hkv, D).transpose(1, 2).repeat_interleave(H // Hkv, dim=1)
    o, kv = attend(q, k, v, h)
    x = x + F.linear(o.transpose(1, 2).reshape(B, T, H * D), blk.attn.proj.weight)
    gate, value = F.linear(F.rms_norm(x, (C,), blk.mlp_norm.weight, cfg.norm_eps), blk.mlp.up.weight).chunk(2, -1)
    return x + F.linear(F.silu(gate) * value, blk.mlp.down.weight), kv


def masked_softmax_attention(q, k, v, allowed):
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    return scores.masked_fill(~allowed, float("-inf")).softmax(-1) @ v


def reference_logits(m, idx):
    """DESIGN.md §4 literally: loop 0 global, loops r >= 1 from a·E[t] + b·H_{r-1}[t-1] with G-SWA."""
    cfg = m.config
    B, T = idx.shape
    cos, sin = rope_tables(cfg, T)
    t = torch.arange(T)
    causal = t[None, :] <= t[:, None]  # [query, key]
    window = causal & (t[None, :] >= t[:, None] - cfg.window)
    E = m.embed.weight[idx]
    kv0 = {}

    x = E
    for i, blk in enumerate(m.blocks):
        x, kv0[i] = layer(m, blk, x, cos, sin, lambda q, k, v, h: (masked_softmax_attention(q, k, v, causal), (k, v)))
    H = F.rms_norm(x, (cfg.d_model,), m.norm.weight, cfg.norm_eps)
    a, b = float(m.loop_scales[0]), float(m.loop_scales[1])
    for _ in range(1, cfg.loops):
        shifted = torch.cat([torch.zeros_like(H[:, :1]), H[:, :-1]], dim=1) if cfg.clp_shift else H
        x = a * E + b * shifted
        for i, blk in enumerate(m.blocks):
            def attend(q, k, v, h, i=i, blk=blk):
                o_global = masked_softmax_attention(q, *kv0[i], causal)
                o_local = masked_softmax_attention(q, k, v, window)
                g = torch.sigmoid(h @ blk.attn.gate.weight.T + blk.attn.gate.bias).transpose(1, 2)[..., None]
                return g * o_global + (1 - g) * o_local, None

            x, _ = layer(m, blk, x, cos, sin, attend)
        H = F.rms_norm(x, (cfg.d_model,), m.norm.weight, cfg.norm_eps)
    return F.linear(H, m.head.weight)


def test_defaults_give_the_default_training_model():
    cfg = PatchCoderConfig()
    assert (cfg.vocab_size, cfg.d_model, cfg.loops, cfg.clp_shift) == (8192, 256, 2, True)
    assert 5e6 <= PatchCoder(cfg).num_parameters() <= 10e6


@pytest.mark.parametrize(
    "bad, message",
    [
        (dict(d_model=30, n_heads=4), "multiple of n_heads"),
        (dict(n_heads=4, n_kv_heads=3), "n_kv_heads"),
        (dict(loops=0), "loops"),
        (dict(window=-1), "window"),
        (dict(gate_mode="both"), "gate_mode"),
    ],
)
def test_bad_config_is_refused(bad, message):
    with pytest.raises(ValueError, match=message):
        PatchCoderConfig(**bad)


def test_config_round_trips_through_a_dict():
    cfg = PatchCoderConfig(d_model=64, loops=3, window=7, clp_shift=False)
    assert PatchCoderConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="unknown config fields"):
        PatchCoderConfig.from_dict({**cfg.to_dict(), "n_expert": 4})


def test_one_loop_is_exactly_a_plain_transformer(tiny_model):
    m = tiny_model(loops=1, n_layers=3)
    assert not any("gate" in name for name, _ in m.named_parameters())
    idx = torch.randint(0, 61, (3, 23))
    with torch.no_grad():
        torch.testing.assert_close(m(idx), reference_logits(m, idx), atol=1e-6, rtol=0)


@pytest.mark.parametrize("loops", [2, 3])
@pytest.mark.parametrize("window", [0, 3, 40])
@pytest.mark.parametrize("clp_shift", [True, False])
def test_looped_forward_follows_the_equations(loops, window, clp_shift, tiny_model):
    m = tiny_model(loops=loops, window=window, clp_shift=clp_shift, learn_scales=True, n_kv_heads=1)
    with torch.no_grad():
        m.loop_scales.copy_(torch.tensor([0.7, 1.3]))
    idx = torch.randint(0, 61, (2, 19))
    with torch.no_grad():
        torch.testing.assert_close(m(idx), reference_logits(m, idx), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("loops", [1, 2, 3])
def test_logits_are_causal(loops, tiny_model):
    m = tiny_model(loops=loops)
    idx = torch.randint(0, 61, (1, 16))
    changed = idx.clone()
    changed[0, 9:] = (changed[0, 9:] + 1) % 61
    with torch.no_grad():
        torch.testing.assert_close(m(idx)[:, :9], m(changed)[:, :9])
        assert not torch.allclose(m(idx)[:, 9:], m(changed)[:, 9:])


def test_gates_start_at_one_half_and_query_mode_works(tiny_model):
    m = tiny_model(randomize_gates=False, gate_mode="query", loops=3)
    trace = m.run_loops(torch.randint(0, 61, (2, 9)), capture=True)
    assert all(torch.all(g == 0.5) for per_loop in trace.gates for g in per_loop)
    assert len(trace.gates) == 2 and len(trace.gates[0]) == 2
    # one gate module per physical layer, shared by the loops
    assert sum("gate" in n for n, _ in m.named_parameters()) == 2 * m.config.n_layers


def test_backends_agree_inside_the_model_and_gradients_flow(tiny_model):
    # T > 4·max(W, 16) makes "auto" take the blocked local path on CPU in fp32
    m = tiny_model(loops=2, window=3).train()
    idx = torch.randint(0, 61, (2, 70))
    assert pick_backend(torch.zeros(1, 1, 70, 8), 3, None) == "local"
    logits = m(idx)
    m.attn_backend = "naive"
    torch.testing.assert_close(logits, m(idx), atol=1e-5, rtol=1e-5)
    F.cross_entropy(logits.flatten(0, 1), idx.flatten()).backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in m.parameters() if p.requires_grad)
    assert any(float(b.attn.gate.weight.grad.abs().sum()) > 0 for b in m.blocks)


def test_bf16_autocast_forward_is_close_to_fp32(tiny_model):
    m = tiny_model(loops=2, window=5)
    idx = torch.randint(0, 61, (2, 30))
    with torch.no_grad():
        want = m(idx)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            got = m(idx)
    assert got.dtype == torch.bfloat16
    torch.testing.assert_close(got.float(), want, atol=0.05, rtol=0.05)
