"""One causal attention function with swappable backends (DESIGN.md §5).

The window is defined once, here: with ``window=W`` the query at index ``t`` sees the keys
``t-W <= j <= t`` — ``W+1`` keys, the same as flash-attn's ``window_size=(W, 0)``. ``window=None``
is ordinary causal attention (``j <= t``). Every backend is tested against ``naive``.

Shapes: ``q`` is (B, H, T, D); ``k`` and ``v`` are (B, Hkv, T, D) with ``H % Hkv == 0`` (grouped
queries). ``key_start`` (B,) marks left padding: keys before ``key_start[b]`` are never seen by
real queries (a padded query sees only itself, so no row of the softmax is empty).

Backends:
- ``naive``: scores materialised in fp32, the reference.
- ``sdpa``: PyTorch scaled_dot_product_attention (a dense band mask when windowed: T² cost).
- ``local``: queries in blocks of ``C >= W``; each block attends to its own and the previous block,
  so time and memory grow with T·W, not T². CPU training path for the local branch.
- ``flash``: flash-attn on CUDA (fp16/bf16, no padding), ``window_size=(W, 0)``.
- ``auto``: flash on CUDA when importable, ``local`` for long windowed CPU inputs (T > 4W in fp32,
  T > 16W in bf16), else ``sdpa``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

try:  # optional CUDA extra
    from flash_attn import flash_attn_func
except Exception:  # ImportError, or a broken CUDA build
    flash_attn_func = None

BACKENDS = ("auto", "naive", "sdpa", "local", "flash")


def band_mask(
    t_q: int, t_k: int, window: int | None, device=None, key_start: torch.Tensor | None = None
) -> torch.Tensor:
    """Boolean mask (True = attend) for queries at indices ``t_k - t_q … t_k - 1`` over keys ``0 … t_k-1``.

    Returns (t_q, t_k), or (B, 1, t_q, t_k) when ``key_start`` is given.
    """
    qi = torch.arange(t_k - t_q, t_k, device=device)[:, None]
    kj = torch.arange(t_k, device=device)[None, :]
    mask = kj <= qi
    if window is not None:
        mask = mask & (kj >= qi - window)
    if key_start is not None:
        start = key_start.to(device).view(-1, 1, 1, 1)
        mask = (mask & (kj >= start)) | (kj == qi)  # a padded query sees itself only
    return mask


def _expand_kv(k: torch.Tensor, n_heads: int) -> torch.Tensor:
    # (B, Hkv, T, D) -> (B, H, T, D): each key/value head serves H/Hkv query heads
    groups = n_heads // k.shape[1]
    return k if groups == 1 else k.repeat_interleave(groups, dim=1)


def naive_attention(q, k, v, window=None, key_start=None):
    """The reference: explicit fp32 scores, mask, softmax."""
    T, D = q.shape[-2], q.shape[-1]
    k, v = _expand_kv(k, q.shape[1]), _expand_kv(v, q.shape[1])
    scores = (q.float() @ k.float().transpose(-2, -1)) / math.sqrt(D)  # (B, H, T, T)
    mask = band_mask(T, k.shape[-2], window, q.device, key_start)
    scores = scores.masked_fill(~mask, float("-inf"))
    return (scores.softmax(dim=-1) @ v.float()).to(q.dtype)


def sdpa_attention(q, k, v, window=None, key_start=None, masks: dict | None = None):
    """PyTorch SDPA; is_causal when it can, else a dense additive mask (0 / -inf). `masks`, a dict the
    caller keeps for one forward, holds each mask once built, so that every layer and loop reuses it."""
    gqa = k.shape[1] != q.shape[1]
    if window is None and key_start is None:
        return F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=gqa)
    B, H, T, _ = q.shape
    key = (window, T, k.shape[-2], q.dtype, B, H)
    mask = None if masks is None else masks.get(key)
    if mask is None:
        # 4-D, and additive in q's dtype: CPU SDPA is several times slower when it has to broadcast a
        # 2-D mask, and converts a boolean one to this on every call
        allowed = band_mask(T, k.shape[-2], window, q.device, key_start).expand(B, H, T, k.shape[-2])
        mask = torch.zeros(allowed.shape, dtype=q.dtype, device=q.device).masked_fill_(~allowed, float("-inf"))
        if masks is not None:
            masks[key] = mask
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, enable_gqa=gqa)


def local_attention(q, k, v, window: int, key_start=None, block: int | None = None):
    """Sliding-window attention in blocks: cost O(T·W) instead of O(T²).

    Queries are cut into blocks of C >= W positions; block i sees keys of blocks i-1 and i, which
    covers ``t-W … t`` for every query in it. One (C, 2C) mask serves all blocks except the first.
    """
    B, H, T, D = q.shape
    C = max(window, 16) if block is None else block
    if C < window:
        raise ValueError(f"block {C} must be >= window {window}")
    k, v = _expand_kv(k, H), _expand_kv(v, H)
    n = -(-T // C)
    pad = n * C - T
    if pad:  # padded queries are dropped; padded keys lie after every real query (causal)
        q, k, v = (F.pad(x, (0, 0, 0, pad)) for x in (q, k, v))
    qb = q.view(B, H, n, C, D)
    kb, vb = k.view(B, H, n, C, D), v.view(B, H, n, C, D)
    # keys of block i: [block i-1, block i] -> (B, H, n, 2C, D); block -1 is zeros, masked below
    kk = torch.cat([F.pad(kb, (0, 0, 0, 0, 1, 0))[:, :, :-1], kb], dim=3)
    vv = torch.cat([F.pad(vb, (0, 0, 0, 0, 1, 0))[:, :, :-1], vb], dim=3)
    qi = torch.arange(n * C, device=q.device).view(n, C, 1)  # absolute query index
    kj = (torch.arange(n, device=q.device).view(n, 1, 1) - 1) * C + torch.arange(2 * C, device=q.device)
    mask = (kj <= qi) & (kj >= qi - window) & (kj >= 0)  # (n, C, 2C)
    if key_start is not None:
        start = key_start.to(q.device).view(B, 1, 1, 1, 1)
        mask = (mask & (kj >= start)) | (kj == qi)  # (B, 1, n, C, 2C)
    # blocks become the head axis of a 4-D call, with a mask expanded (not broadcast) to full rank:
    # CPU SDPA is ~4x slower when it broadcasts a lower-rank mask itself
    mask = mask.expand(B, H, n, C, 2 * C).reshape(B * H, n, C, 2 * C)
    out = F.scaled_dot_product_attention(
        qb.reshape(B * H, n, C, D), kk.reshape(B * H, n, 2 * C, D), vv.reshape(B * H, n, 2 * C, D), attn_mask=mask
    )
    return out.reshape(B, H, n * C, D)[:, :, :T]


def flash_attention(q, k, v, window=None):
    """flash-attn on CUDA; it takes (B, T, H, D) and handles grouped heads itself."""
    if flash_attn_func is None:
        raise RuntimeError("flash-attn is not installed (pip install 'patchcoder[cuda]')")
    w = (-1, -1) if window is None else (window, 0)
    out = flash_attn_func(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), causal=True, window_size=w)
    return out.transpose(1, 2)


def pick_backend(q: torch.Tensor, window: int | None, key_start) -> str:
    if q.is_cuda and flash_attn_func is not None and q.dtype in (torch.float16, torch.bfloat16) and key_start is None:
        return "flash"
    # Crossover measured on CPU (benchmarks/model.py local, W=64): the blocked path wins from T ≈ 4W in
    # fp32 (3.6x at T=16W), but in bf16 the dense mask is as fast up to T = 16W.
    factor = 4 if q.dtype == torch.float32 else 16
    if window is not None and not q.is_cuda and q.shape[-2] > factor * max(window, 16):
        return "local"
    return "sdpa"


def attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    window: int | None = None,
    key_start: torch.Tensor | None = None,
    backend: str = "auto",
    masks: dict | None = None,
) -> torch.Tensor:
    """Causal (optionally sliding-window) attention; see the module docstring for the meaning of W.
    `masks`: a dict kept by the caller for one forward, in which the sdpa path keeps the masks it builds."""
    if backend == "auto":
        backend = pick_backend(q, window, key_start)
    if backend == "naive":
        return naive_attention(q, k, v, window, key_start)
    if backend == "sdpa":
        return sdpa_attention(q, k, v, window, key_start, masks)
    if backend == "local":
        if window is None:
            return sdpa_attention(q, k, v, None, key_start)
        return local_attention(q, k, v, window, key_start)
    if backend == "flash":
        if key_start is not None:
            raise ValueError("the flash backend takes no padding; use sdpa for left-padded batches")
        return flash_attention(q, k, v, window)
    raise ValueError(f"unknown attention backend {backend!r}; choose one of {BACKENDS}")


def cached_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None
) -> torch.Tensor:
    """Decoding attention: a few queries against a cache, with an explicit additive key mask.

    q (B, H, S, D); k, v (B, Hkv, N, D); mask (B, 1, 1, N), the same for every query row, or
    (B, 1, S, N), one row per query position (a block of known tokens), or None when every query sees
    every key. Either way it is the same for every head, so the g = H/Hkv query heads of a group are
    folded into the query axis and the cache is never copied. A mask already repeated for the folded
    rows, (B, 1, g·S, N) with row = head-in-group · S + position, is used as it is (built once by a caller
    that reuses it for every layer).
    """
    B, H, S, D = q.shape
    Hkv = k.shape[1]
    g = H // Hkv
    qg = q.reshape(B, Hkv, g * S, D)  # (B, Hkv, g·S, D): row = head-in-group · S + position
    if mask is not None and mask.shape[2] not in (1, g * S):
        mask = mask.repeat(1, 1, g, 1)  # the positions' rows again for every head of a group
    out = F.scaled_dot_product_attention(qg, k, v, attn_mask=mask)
    return out.reshape(B, H, S, D)
