"""The patchcoder model: a looped decoder (LoopCoder) made cheap to decode by the Parallel Loop
Transformer (PLT). Reads top to bottom like DESIGN.md §4; attention itself lives in patchcoder.kernels.

    E = embed(x)
    loop 0:   H0 = norm(layers(E))                    global causal attention, keeps K0[l], V0[l]
    loop r:   U  = a·E[t] + b·H_{r-1}[t-1]            the CLP shift (U[0] = a·E[0])
              Hr = norm(layers(U))                    G-SWA: g·attn(q, K0, V0) + (1-g)·attn_window(q, K, V)
    logits = head(H_{R-1})

The model computes: the training forward (`forward`, `run_loops`) and cached decoding (`prefill`, then
`step` once per token; `tree_hidden` / `block_logits` read known continuations in one pass per loop).
Generation and scoring live in patchcoder.decoding, the model folder in patchcoder.checkpoint.

Shape legend (comments and names):
    B  batch rows              T  sequence length (positions)     S  query rows of one call
    C  d_model                 V  vocabulary size                 D  head dimension
    H  query heads             Hkv  key/value heads               g  H / Hkv, query heads per K/V head
    L  physical layers         R  loops                           W  local window (keys t-W … t)
    N  rows of a tree/block    M  nodes (tokens) per tree row     P  keys of a cache (rings + positions)
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, fields

import torch
import torch.nn as nn
import torch.nn.functional as F

from patchcoder.ground import schema
from patchcoder.ground.schema import Flag, Number, OneOf, Rule, Whole
from patchcoder.kernels import attention, cached_attention

CACHED_MODES = ("clp", "sequential")  # decoding with caches: all loops of a token at once, or one after another


# ----------------------------------------------------------------------------------------------
# Configuration


@dataclass
class PatchCoderConfig:
    vocab_size: int = 8192
    d_model: int = 256
    n_layers: int = 6  # L physical layers
    n_heads: int = 4
    n_kv_heads: int = 2  # grouped-query attention: n_heads / n_kv_heads query heads share a K/V head
    loops: int = 2  # R: the L layers are applied R times with shared weights
    window: int = 64  # W: the local branch of loops r >= 1 sees keys t-W … t (W+1 keys)
    clp_shift: bool = True  # loop r reads H_{r-1}[t-1] (PLT); False: H_{r-1}[t] (LoopCoder-v1)
    gate_mode: str = "hidden"  # G-SWA gate from the normed residual ("hidden") or the head's query ("query")
    embed_scale: float = 1.0  # a in U_r = a·E + b·H_{r-1}
    hidden_scale: float = 1.0  # b
    learn_scales: bool = False  # make a and b trainable scalars
    ffn_hidden: int = 0  # SwiGLU width; 0 means 8/3·d_model rounded up to a multiple of 64
    rope_base: float = 10000.0
    norm_eps: float = 1e-5
    dropout: float = 0.0
    tie_embeddings: bool = True

    def __post_init__(self):
        problems = config_problems(self.to_dict())
        if problems:
            raise ValueError("; ".join(problems))
        if not self.ffn_hidden:
            self.ffn_hidden = 64 * math.ceil(8 * self.d_model / 3 / 64)

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict, *, complete: bool = False) -> PatchCoderConfig:
        """The config `data` describes; `complete`: every field must be given (a model folder's
        config.json, where a default would silently describe another model). ValueError otherwise."""
        if not isinstance(data, dict):
            raise ValueError(f"expected a JSON object of config fields, got {type(data).__name__}")
        known = [f.name for f in fields(cls)]
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise ValueError(f"unknown config fields {unknown}")
        missing = [name for name in known if name not in data] if complete else []
        if missing:
            raise ValueError(f"missing config fields {missing}")
        return cls(**data)


# What each field may be (patchcoder.ground.schema). The bounds keep a crafted config.json from asking for
# absurd compute or memory: every loop runs all layers again, and the caches grow with the window.
CONFIG_RULES: dict[str, Rule] = {
    "vocab_size": Whole(1, 1 << 20),
    "d_model": Whole(2, 16_384),
    "n_layers": Whole(1, 256),
    "n_heads": Whole(1, 256),
    "n_kv_heads": Whole(1, 256),
    "loops": Whole(1, 64),
    "window": Whole(0, 65_536),  # as long as the longest prompt a model folder may ask for (checkpoint.MAX_TOKENS)
    "clp_shift": Flag(),
    "gate_mode": OneOf("hidden", "query"),
    "embed_scale": Number(),
    "hidden_scale": Number(),
    "learn_scales": Flag(),
    "ffn_hidden": Whole(0, 131_072),
    "rope_base": Number(0, above=True),
    "norm_eps": Number(0, 1, above=True),
    "dropout": Number(0, 1, below=True),
    "tie_embeddings": Flag(),
}


def config_problems(values: dict, prefix: str = "") -> list[str]:
    """What is wrong with `values` as PatchCoderConfig fields (those given), one line each naming the
    field (shown as prefix + name): a type or range, then sizes that do not divide."""
    problems = schema.problems(values, CONFIG_RULES, prefix)
    if problems:
        return problems
    d_model, n_heads, n_kv_heads = (values.get(k, CONFIG_DEFAULTS[k]) for k in ("d_model", "n_heads", "n_kv_heads"))
    if d_model % n_heads:
        problems.append(f"{prefix}d_model {d_model} is not a multiple of {prefix}n_heads {n_heads}")
    elif (d_model // n_heads) % 2:
        problems.append(f"the head size {prefix}d_model / {prefix}n_heads must be even (RoPE rotates pairs), "
                        f"got {d_model} / {n_heads}")
    if n_heads % n_kv_heads:
        problems.append(f"{prefix}n_heads {n_heads} is not a multiple of {prefix}n_kv_heads {n_kv_heads}")
    return problems


CONFIG_DEFAULTS = {f.name: f.default for f in fields(PatchCoderConfig)}


# ----------------------------------------------------------------------------------------------
# Building blocks


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return F.rms_norm(x, (x.shape[-1],), self.weight, self.eps)


class Rotary(nn.Module):
    """RoPE tables for arbitrary (per-sequence) positions."""

    def __init__(self, head_dim: int, base: float):
        super().__init__()
        self.register_buffer("inv_freq", self.frequencies(head_dim, base), persistent=False)

    @staticmethod
    def frequencies(head_dim: int, base: float) -> torch.Tensor:
        # on the CPU even inside a meta-device context (there, the power would import torch's reference ops)
        return 1.0 / base ** (torch.arange(0, head_dim, 2, dtype=torch.float32, device="cpu") / head_dim)

    def forward(self, positions: torch.Tensor):
        # positions (B or 1, T) -> cos, sin (B or 1, 1, T, D), broadcast over heads; sin carries the
        # rotation's sign, so that apply_rope is two multiplies and an add
        freqs = positions[..., None].float() * self.inv_freq  # (B or 1, T, D/2)
        cos, sin = freqs.cos(), freqs.sin()
        return torch.cat([cos, cos], dim=-1)[:, None], torch.cat([-sin, sin], dim=-1)[:, None]


def apply_rope(x: torch.Tensor, rope) -> torch.Tensor:
    """Rotate pairs (x1[i], x2[i]) of the two halves: (x1·cos − x2·sin, x2·cos + x1·sin)."""
    cos, sin = (t.to(x.dtype) for t in rope)
    x1, x2 = x.chunk(2, dim=-1)  # (B, H, T, D/2) each
    return x * cos + torch.cat([x2, x1], dim=-1) * sin


class SwiGLU(nn.Module):
    def __init__(self, cfg: PatchCoderConfig):
        super().__init__()
        self.up = nn.Linear(cfg.d_model, 2 * cfg.ffn_hidden, bias=False)  # gate and value, fused
        self.down = nn.Linear(cfg.ffn_hidden, cfg.d_model, bias=False)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x):
        gate, value = self.up(x).chunk(2, dim=-1)
        return self.drop(self.down(F.silu(gate) * value))


class Gate(nn.Module):
    """G-SWA's per-head gate g = sigmoid(W_g·z + b_g); zero-initialised, so g = 0.5 at the start.

    One per physical layer, shared by all loops r >= 1. z is the normed residual ("hidden") or,
    per head, that head's query before RoPE ("query").
    """

    def __init__(self, cfg: PatchCoderConfig):
        super().__init__()
        self.mode = cfg.gate_mode
        d_in = cfg.d_model if self.mode == "hidden" else cfg.head_dim
        self.weight = nn.Parameter(torch.zeros(cfg.n_heads, d_in))
        self.bias = nn.Parameter(torch.zeros(cfg.n_heads))

    def forward(self, h: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        # h (B, S, C), q (B, H, S, D) -> g (B, H, S, 1)
        if self.mode == "hidden":
            logit = F.linear(h, self.weight, self.bias).transpose(1, 2)  # (B, H, S)
        else:
            logit = torch.einsum("bhsd,hd->bhs", q, self.weight.to(q.dtype)) + self.bias[:, None]
        return torch.sigmoid(logit.float())[..., None]


class Attention(nn.Module):
    """Grouped-query attention. Which keys a query sees is decided by the caller's `attend`."""

    def __init__(self, cfg: PatchCoderConfig):
        super().__init__()
        self.n_heads, self.n_kv_heads, self.head_dim = cfg.n_heads, cfg.n_kv_heads, cfg.head_dim
        self.qkv = nn.Linear(cfg.d_model, (cfg.n_heads + 2 * cfg.n_kv_heads) * cfg.head_dim, bias=False)
        self.proj = nn.Linear(cfg.n_heads * cfg.head_dim, cfg.d_model, bias=False)
        self.gate = Gate(cfg) if cfg.loops > 1 else None
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, h, rope, attend, qkv_gate=None):
        """qkv_gate: optionally `qkv_gate_projection()`, made once by a decoder: the hidden-state gate's
        logits then come out of the q/k/v matmul instead of costing a matmul and a dozen small ops."""
        B, S, _ = h.shape
        H, Hkv, D = self.n_heads, self.n_kv_heads, self.head_dim
        if qkv_gate is None:
            qkv, logit = self.qkv(h), None
        else:
            qkv, logit = F.linear(h, *qkv_gate).split([(H + 2 * Hkv) * D, H], dim=-1)  # logit (B, S, H)
        qkv = qkv.view(B, S, H + 2 * Hkv, D).transpose(1, 2)  # (B, H + 2·Hkv, S, D)
        q, k = apply_rope(qkv[:, : H + Hkv], rope).split([H, Hkv], dim=1)  # one rotation for q and k
        v = qkv[:, H + Hkv :]  # (B, Hkv, S, D)

        def gate():  # (B, H, S, 1); the query gate reads q before RoPE
            if logit is None:
                return self.gate(h, qkv[:, :H])
            return torch.sigmoid(logit).transpose(1, 2)[..., None]

        o = attend(q, k, v, gate)  # (B, H, S, D)
        return self.drop(self.proj(o.transpose(1, 2).reshape(B, S, H * D)))

    def qkv_gate_projection(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(weight, bias) of the q/k/v projection with the hidden-state gate's rows appended."""
        w, g = self.qkv.weight.detach(), self.gate.weight.detach()
        bias = torch.cat([torch.zeros(w.shape[0], dtype=w.dtype, device=w.device), self.gate.bias.detach()])
        return torch.cat([w, g]), bias


class Block(nn.Module):
    def __init__(self, cfg: PatchCoderConfig, index: int):
        super().__init__()
        self.index = index
        self.attn_norm = RMSNorm(cfg.d_model, cfg.norm_eps)
        self.attn = Attention(cfg)
        self.mlp_norm = RMSNorm(cfg.d_model, cfg.norm_eps)
        self.mlp = SwiGLU(cfg)

    def forward(self, x, rope, attend, qkv_gate=None):
        # attend(layer, q, k, v, gate) -> o: the loop (or the decoder) decides what the queries see
        x = x + self.attn(self.attn_norm(x), rope, lambda q, k, v, g: attend(self.index, q, k, v, g), qkv_gate)
        return x + self.mlp(self.mlp_norm(x))


def mix(g: torch.Tensor, o_global: torch.Tensor, o_local: torch.Tensor) -> torch.Tensor:
    """G-SWA output: g·O_global + (1-g)·O_local, one g per head and position (one fused lerp)."""
    return torch.lerp(o_local, o_global.to(o_local.dtype), g.to(o_local.dtype))


# ----------------------------------------------------------------------------------------------
# The model


@dataclass
class LoopTrace:
    """What one full forward saw: per-loop outputs, and (when asked) caches and gates."""

    embeddings: torch.Tensor  # E (B, T, C)
    hidden: list  # H_r (B, T, C) for r = 0 … R-1, each after the shared final norm
    kv_global: list | None = None  # per layer (K0, V0), each (B, Hkv, T, D)
    kv_local: list | None = None  # per loop r >= 1, per layer (K_r, V_r)
    gates: list | None = None  # per loop r >= 1, per layer g (B, H, T, 1)


class PatchCoder(nn.Module):
    def __init__(self, config: PatchCoderConfig):
        super().__init__()
        self.config = cfg = config
        self.attn_backend = "auto"  # a run-time choice, not part of the checkpoint
        # On the meta device (loading a checkpoint) Embedding is given its empty weight: its own N(0, 1)
        # draw would import torch's reference ops there, a second of loading.
        meta = torch.get_default_device().type == "meta"
        self.embed = nn.Embedding(cfg.vocab_size, cfg.d_model,
                                  _weight=torch.empty(cfg.vocab_size, cfg.d_model) if meta else None)
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(Block(cfg, i) for i in range(cfg.n_layers))
        self.norm = RMSNorm(cfg.d_model, cfg.norm_eps)
        self.head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        if cfg.tie_embeddings:
            self.head.weight = self.embed.weight
        self.rope = Rotary(cfg.head_dim, cfg.rope_base)
        scales = torch.tensor([cfg.embed_scale, cfg.hidden_scale])
        if cfg.learn_scales:
            self.loop_scales = nn.Parameter(scales)  # (a, b)
        else:
            self.register_buffer("loop_scales", scales, persistent=False)
        if not meta:  # on the meta device nothing is drawn: a checkpoint's weights replace these
            self.apply(self._init_weights)
            depth = 2 * cfg.n_layers * cfg.loops  # residual writes per token, as in GPT-2's scaled init
            for block in self.blocks:
                nn.init.normal_(block.attn.proj.weight, std=0.02 / math.sqrt(depth))
                nn.init.normal_(block.mlp.down.weight, std=0.02 / math.sqrt(depth))

    def reset_buffers(self) -> None:
        """Compute the tensors that are not saved (RoPE frequencies; the loop scales when not learnt)
        from the config, e.g. after building the model on the meta device to load a checkpoint."""
        cfg = self.config
        device = self.embed.weight.device
        self.rope.inv_freq = self.rope.frequencies(cfg.head_dim, cfg.rope_base).to(device)
        if not cfg.learn_scales:
            self.loop_scales = torch.tensor([cfg.embed_scale, cfg.hidden_scale], device=device)

    @staticmethod
    def _init_weights(module):
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, std=0.02)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    # -- training forward ----------------------------------------------------------------------

    def forward(self, input_ids: torch.Tensor, parents: torch.Tensor | None = None, *,
                hidden: bool = False) -> torch.Tensor:
        """input_ids (B, T) -> logits (B, T, V) from the last loop; with `parents`, rows that are trees
        (`tree_forward`); with `hidden`, the last loop's normed states (B, T, C) instead of logits."""
        if parents is not None:
            return self.tree_forward(input_ids, parents, hidden=hidden)
        h = self.run_loops(input_ids).hidden[-1]
        return h if hidden else self.head(h)

    def run_loops(self, idx: torch.Tensor, key_start: torch.Tensor | None = None, *, capture: bool = False):
        """All R loops over a whole sequence. key_start (B,) marks left padding (first real index)."""
        cfg, backend = self.config, self.attn_backend
        B, T = idx.shape
        positions = torch.arange(T, device=idx.device)[None]  # (1, T)
        if key_start is not None:
            positions = (positions - key_start[:, None]).clamp(min=0)  # (B, T): real tokens from 0
        rope = self.rope(positions)
        E = self.embed(idx)  # (B, T, C)
        trace = LoopTrace(E, [], [None] * cfg.n_layers if capture else None, [] if capture else None,
                          [] if capture else None)
        kv0 = [None] * cfg.n_layers
        masks: dict = {}  # attention masks, built once for every layer and loop

        def attend_global(i, q, k, v, gate):
            kv0[i] = (k, v)
            return attention(q, k, v, window=None, key_start=key_start, backend=backend, masks=masks)

        x = self.drop(E)
        for block in self.blocks:
            x = block(x, rope, attend_global)
        trace.hidden.append(self.norm(x))
        if capture:
            trace.kv_global = list(kv0)

        a, b = self.loop_scales[0], self.loop_scales[1]
        for _ in range(1, cfg.loops):
            prev = trace.hidden[-1]
            if cfg.clp_shift:
                prev = self._shift_right(prev, key_start)  # H_{r-1}[t-1], zero at each first token
            kv_r, gates_r = [None] * cfg.n_layers, [None] * cfg.n_layers

            def attend_gswa(i, q, k, v, gate, kv_r=kv_r, gates_r=gates_r):
                k0, v0 = kv0[i]  # loop 0's K/V, causal
                o_global = attention(q, k0, v0, window=None, key_start=key_start, backend=backend, masks=masks)
                o_local = attention(q, k, v, window=cfg.window, key_start=key_start, backend=backend,
                                    masks=masks)  # own K/V, t-W … t
                g = gate()
                if capture:
                    kv_r[i], gates_r[i] = (k, v), g
                return mix(g, o_global, o_local)

            x = self.drop(a * E + b * prev)
            for block in self.blocks:
                x = block(x, rope, attend_gswa)
            trace.hidden.append(self.norm(x))
            if capture:
                trace.kv_local.append(kv_r)
                trace.gates.append(gates_r)
        return trace

    def tree_forward(self, idx: torch.Tensor, parents: torch.Tensor, *, hidden: bool = False) -> torch.Tensor:
        """Logits (B, T, V) of rows that are trees of tokens, not sequences: to train the ranking of
        candidates, a prompt followed by its candidate scripts read as one trie, all in one pass.

        Token j of row b follows token parents[b, j] (an earlier index of the row, or -1: a root). It
        sits at position depth(j) (RoPE), attends to its ancestors and itself (loop 0, and the global
        branch of the loops r >= 1 against loop 0's keys), the local branch to those of them at most W
        positions above it, and loop r >= 1 starts from a·E[j] + b·H_{r-1}[parent] (CLP; zero for a
        root). So each token gets exactly what `forward` gives the sequence root … parent, j, and a row
        whose parents are j - 1 is `forward` itself. Padding: roots no other token descends from.
        `hidden`: the last loop's normed states (B, T, C) instead of logits."""
        cfg = self.config
        ancestors, depth = tree_structure(parents)  # (B, T, T) bool, (B, T)
        rope = self.rope(depth)
        group = cfg.n_heads // cfg.n_kv_heads
        E = self.embed(idx)
        # boolean masks (True: attend), whatever dtype autocast gives q; folded as cached_attention does
        global_mask = ancestors[:, None].repeat(1, 1, group, 1)
        kv0: list = [None] * cfg.n_layers

        def attend_global(i, q, k, v, gate):
            kv0[i] = (k, v)
            return cached_attention(q, k, v, global_mask)

        x = self.drop(E)
        for block in self.blocks:
            x = block(x, rope, attend_global)
        h = self.norm(x)
        if cfg.loops > 1:
            near = ancestors & (depth[:, None, :] >= depth[:, :, None] - cfg.window)
            local_mask = near[:, None].repeat(1, 1, group, 1)
            from_parent = (parents + 1)[..., None].expand(*parents.shape, cfg.d_model)  # into [zeros, h]
        a, b = self.loop_scales[0], self.loop_scales[1]
        for _ in range(1, cfg.loops):
            if cfg.clp_shift:
                prev = torch.cat([torch.zeros_like(h[:, :1]), h], dim=1).gather(1, from_parent)
            else:
                prev = h

            def attend_gswa(i, q, k, v, gate):
                o_global = cached_attention(q, *kv0[i], global_mask)
                o_local = cached_attention(q, k, v, local_mask)
                return mix(gate(), o_global, o_local)

            x = self.drop(a * E + b * prev)
            for block in self.blocks:
                x = block(x, rope, attend_gswa)
            h = self.norm(x)
        return h if hidden else self.head(h)

    @staticmethod
    def _shift_right(h: torch.Tensor, key_start: torch.Tensor | None) -> torch.Tensor:
        shifted = F.pad(h[:, :-1], (0, 0, 1, 0))  # (B, T, C): row t holds h[t-1], row 0 zeros
        if key_start is not None:  # left padding: the first real token has no predecessor
            t = torch.arange(h.shape[1], device=h.device)
            shifted = shifted * (t[None, :] > key_start[:, None])[..., None].to(h.dtype)
        return shifted

    # -- cached decoding ---------------------------------------------------------------------

    def cache_bytes(self, seq_len: int, *, batch: int = 1, dtype: torch.dtype | None = None,
                    mode: str = "clp") -> int:
        """KV-cache size for `batch` sequences of `seq_len` positions.

        CLP: L·2·kv_heads·head_dim·(T + (R-1)(W+1))·dtype_size; sequential loops keep R·T positions.
        """
        cfg = self.config
        dtype = dtype or next(self.parameters()).dtype
        positions = seq_len + (cfg.loops - 1) * (cfg.window + 1) if mode == "clp" else cfg.loops * seq_len
        size = torch.empty((), dtype=dtype).element_size()
        return cfg.n_layers * 2 * cfg.n_kv_heads * cfg.head_dim * positions * size * batch

    @torch.no_grad()
    def prefill(self, input_ids, max_new_tokens: int, *, mode: str = "clp",
                attention_mask: torch.Tensor | None = None) -> tuple[DecodeState, torch.Tensor]:
        """Prefill for token-by-token decoding: (state, logits (B, V) for the first new token); then call
        `step(state, tokens)` once per chosen token, at most `max_new_tokens - 1` times.

        input_ids: a (B, T) tensor (left-padded when `attention_mask` is given, 1 = real token), or a
        list of 1-D sequences of different lengths, which are left-padded here; each sequence keeps its
        own positions. mode: "clp" (all loops of a token in one batched pass) or "sequential" (R passes
        per token, each loop with a full cache; for comparison).
        """
        self.check_mode(mode)
        idx, key_start = left_pad(input_ids, attention_mask, self.embed.weight.device)
        return self._prefill_padded(idx, key_start, idx.shape[1] + max_new_tokens, mode)

    def check_mode(self, mode: str) -> None:
        """Raise ValueError unless this model can decode in cached mode `mode`."""
        if mode not in CACHED_MODES:
            raise ValueError(f"mode must be one of {CACHED_MODES}, got {mode!r}")
        if mode == "clp" and self.config.loops > 1 and not self.config.clp_shift:
            raise ValueError("mode='clp' needs clp_shift=True (without the shift, loops cannot run in parallel)")

    @torch.no_grad()
    def step(self, state: DecodeState, tokens: torch.Tensor) -> torch.Tensor:
        """Feed one token per sequence (B,) and get the next logits (B, V)."""
        if state.t >= state.key_valid.shape[1]:
            raise ValueError(f"the decoding state holds {state.key_valid.shape[1]} positions and is full; "
                             "prefill with a larger max_new_tokens")
        step = self._clp_step if state.mode == "clp" else self._sequential_step
        return step(state, tokens)

    def _prefill_padded(self, idx: torch.Tensor, key_start: torch.Tensor, max_len: int, mode: str):
        """Run the loops one after another over the prompt and keep what decoding needs. Prompts of
        very different lengths are run in groups of similar length (`_length_groups`), each without
        the left padding all its rows share, and their results placed back in the padded layout."""
        cfg = self.config
        B, T = idx.shape
        R, W, L = cfg.loops, cfg.window, cfg.n_layers
        groups = [(rows, cut, self.run_loops(idx.index_select(0, rows)[:, cut:],
                                             _padding_or_none(key_start.index_select(0, rows) - cut), capture=True))
                  for rows, cut in self._length_groups(key_start, T)]
        k_any = groups[0][2].kv_global[0][0]
        Hkv, D, dt, dev = k_any.shape[1], k_any.shape[3], k_any.dtype, k_any.device
        state = DecodeState(mode=mode, t=T, key_start=key_start)
        state.key_valid = torch.arange(max_len, device=dev)[None] >= key_start[:, None]  # (B, max_len)
        state.key_bias = _additive(state.key_valid, dt)  # built once, not per layer
        state.padded = bool(key_start.any())
        if mode == "clp" and R > 1:
            state.n_rings, state.ring_len = R - 1, W + 1
        off = state.n_rings * state.ring_len  # CLP: the rings of loops 1 … R-1 come first in each cache
        caches = [tuple(torch.zeros(B, Hkv, off + max_len, D, dtype=dt, device=dev) for _ in range(2))
                  for _ in range(L)]
        for rows, cut, trace in groups:
            for (kc, vc), (k0, v0) in zip(caches, trace.kv_global, strict=True):
                kc[rows, :, off + cut : off + T], vc[rows, :, off + cut : off + T] = k0, v0
        state.set_caches([kc for kc, _ in caches], [vc for _, vc in caches])
        if off:
            # ring buffer of W+1 slots per loop r >= 1: position p lives in slot p mod (W+1)
            keep = torch.arange(max(0, T - W - 1), T, device=dev)
            state.ring_pos = torch.full((W + 1,), -1, dtype=torch.long, device=dev)
            state.ring_pos[keep % (W + 1)] = keep
            for rows, cut, trace in groups:
                mine = keep[keep >= cut]  # positions before `cut` are padding for every row of the group
                for i in range(L):
                    for r in range(R - 1):
                        k, v = trace.kv_local[r][i]
                        ring_k, ring_v = state.ring_k[i], state.ring_v[i]  # views of the cache
                        ring_k[rows[:, None], r, :, mine % (W + 1)] = k[:, :, mine - cut].permute(0, 2, 1, 3)
                        ring_v[rows[:, None], r, :, mine % (W + 1)] = v[:, :, mine - cut].permute(0, 2, 1, 3)
            self._build_step_bias(state, dt)
            if cfg.gate_mode == "hidden":
                state.qkv_gate = [block.attn.qkv_gate_projection() for block in self.blocks]
        elif mode == "sequential" and R > 1:
            for r in range(R - 1):
                per_layer = []
                for i in range(L):
                    kc, vc = (torch.zeros(B, Hkv, max_len, D, dtype=dt, device=dev) for _ in range(2))
                    for rows, cut, trace in groups:
                        k, v = trace.kv_local[r][i]
                        kc[rows, :, cut:T], vc[rows, :, cut:T] = k, v
                    per_layer.append((kc, vc))
                state.kv_loops.append(per_layer)
        # H_r[T-1] for every loop: the CLP rows of the next token read r = 0 … R-2
        last = torch.zeros(B, R, cfg.d_model, dtype=groups[0][2].hidden[0].dtype, device=dev)
        for rows, _, trace in groups:
            last[rows] = torch.stack([h[:, -1] for h in trace.hidden], dim=1)  # (rows, R, C)
        state.prev_h = last
        return state, self.head(last[:, R - 1])

    @staticmethod
    def _length_groups(key_start: torch.Tensor, T: int, fill: float = 0.6) -> list[tuple[torch.Tensor, int]]:
        """Rows (index tensor) and the padding they all share (`cut`) for each group of prompts of
        similar length: longest first, a group stops at a prompt shorter than `fill` times its first,
        so that padding is at most 1 - fill of any row's prefill (one group when lengths are alike)."""
        lengths = (T - key_start).tolist()
        groups: list[list[int]] = []
        for b in sorted(range(len(lengths)), key=lambda b: -lengths[b]):
            if groups and lengths[b] >= fill * lengths[groups[-1][0]]:
                groups[-1].append(b)
            else:
                groups.append([b])
        out = []
        for rows in groups:
            index = torch.tensor(sorted(rows), device=key_start.device)
            out.append((index, T - max(lengths[b] for b in rows)))
        return out

    def _build_step_bias(self, state: DecodeState, dtype: torch.dtype) -> None:
        """The additive mask of the CLP step's one attention call per layer (R > 1).

        Its 2R-1 query rows are loops 0 … R-1 against loop 0's keys (global), then loops 1 … R-1
        against their own ring (local); its keys are a layer's whole cache: the R-1 rings, then loop
        0's positions. Folded like cached_attention's queries: row = head-in-group · (2R-1) + row."""
        cfg = self.config
        R, W, groups = cfg.loops, cfg.window, cfg.n_heads // cfg.n_kv_heads
        B, max_len = state.key_valid.shape
        off, S, dev = (R - 1) * (W + 1), 2 * R - 1, state.key_valid.device
        allowed = torch.zeros(B, S, off + max_len, dtype=torch.bool, device=dev)
        allowed[:, :R, off:] = state.key_valid[:, None]  # global rows: every real position (causality: the slice)
        ring_ok = state.ring_pos[None] >= state.key_start[:, None]  # (B, W+1): filled, not padding
        fresh = torch.zeros(B, S, R - 1, dtype=torch.bool, device=dev)
        for r in range(1, R):
            allowed[:, R - 1 + r, (r - 1) * (W + 1) : r * (W + 1)] = ring_ok
            fresh[:, R - 1 + r, r - 1] = True
        state.step_bias = _additive(allowed, dtype)[:, None].repeat(1, 1, groups, 1)  # (B, 1, g·S, P)
        # the column of a slot just written in ring r: visible to loop r's local rows only
        state.fresh_column = _additive(fresh, dtype)[:, None].repeat(1, 1, groups, 1)  # (B, 1, g·S, R-1)
        # the step's query rows (loops 0 … R-1, then 1 … R-1), and the rows each loop's local output
        # is read from (loop 0: its global row, so the mix leaves it global-only)
        state.step_rows = (torch.tensor([*range(R), *range(1, R)], device=dev),
                           torch.tensor([0, *range(R, 2 * R - 1)], device=dev))

    def _clp_step(self, state: DecodeState, token: torch.Tensor) -> torch.Tensor:
        """One token, all R loops at once: row r computes H_r[t] from H_{r-1}[t-1]. Returns logits (B, V).

        At this model's width a token costs mostly per-operator dispatch, so what is constant for the
        token is built once (RoPE in the cache's dtype, cache indices, the mask), and each layer writes
        its R new keys with one call and runs global and local attention of all rows as one call."""
        cfg = self.config
        R, W = cfg.loops, cfg.window
        t = state.t
        dt, dev = state.key_bias.dtype, token.device
        rope = tuple(x.to(dt) for x in self.rope((t - state.key_start).clamp(min=0)[:, None]))  # (B, 1, 1, D)
        e = self.embed(token)[:, None]  # (B, 1, C)
        a, b = self.loop_scales[0], self.loop_scales[1]
        x = torch.cat([e, a * e + b * state.prev_h[:, : R - 1]], dim=1) if R > 1 else e  # (B, R, C)
        # where row r's new key goes in a layer's cache: loop 0 at t (after the rings), loop r in its ring
        off, slot = (R - 1) * (W + 1), t % (W + 1)
        where = torch.tensor([off + t, *(r * (W + 1) + slot for r in range(R - 1))], device=dev)
        n_keys = off + t + 1
        if R > 1:
            state.ring_pos[slot] = t
            state.step_bias.index_copy_(3, where[1:], state.fresh_column)
            bias = state.step_bias[..., :n_keys]  # (B, 1, g·(2R-1), n_keys)
            rows, local_rows = state.step_rows
        else:  # without padding every cached key is visible: SDPA without a mask is faster
            bias = state.key_bias[:, None, None, :n_keys] if state.padded else None

        def attend(i, q, k, v, gate):
            # q (B, H, R, D); k, v (B, Hkv, R, D): row 0 is loop 0, rows 1 … R-1 the later loops
            kc, vc = state.k_cache[i], state.v_cache[i]  # (B, Hkv, off + max_len, D)
            kc.index_copy_(2, where, k)
            vc.index_copy_(2, where, v)
            if R == 1:
                return cached_attention(q, kc[:, :, :n_keys], vc[:, :, :n_keys], bias)
            o = cached_attention(q.index_select(2, rows), kc[:, :, :n_keys], vc[:, :, :n_keys], bias)
            # o (B, H, 2R-1, D): global rows 0 … R-1, local rows R … 2R-2. Loop 0 is global-only: its
            # "local" row is its global one again, and lerp between two equal values returns that value.
            return mix(gate(), o[:, :, :R], o.index_select(2, local_rows))

        qkv_gate = state.qkv_gate or [None] * cfg.n_layers
        for block, projection in zip(self.blocks, qkv_gate, strict=True):
            x = block(x, rope, attend, projection)
        h = self.norm(x)  # (B, R, C): H_0[t] … H_{R-1}[t]
        state.prev_h = h
        state.t += 1
        return self.head(h[:, R - 1])

    def _sequential_step(self, state: DecodeState, token: torch.Tensor) -> torch.Tensor:
        """One token, R passes one after another, each loop with a full K/V cache (for comparison)."""
        cfg = self.config
        t = state.t
        rope = self.rope((t - state.key_start).clamp(min=0)[:, None])
        e = self.embed(token)[:, None]  # (B, 1, C)
        a, b = self.loop_scales[0], self.loop_scales[1]
        valid = state.key_valid[:, None, None, : t + 1]
        global_mask = state.key_bias[:, None, None, : t + 1]
        local_mask = valid & (torch.arange(t + 1, device=e.device) >= t - cfg.window)
        local_mask = _additive(local_mask, state.key_bias.dtype)
        hs = []
        for r in range(cfg.loops):
            if r == 0:
                x = e
            else:
                prev = state.prev_h[:, r - 1 : r] if cfg.clp_shift else hs[-1]
                x = a * e + b * prev

            def attend(i, q, k, v, gate, r=r):
                if r == 0:  # only loop 0 writes the global cache
                    state.k0[i][:, :, t : t + 1], state.v0[i][:, :, t : t + 1] = k, v
                o_global = cached_attention(q, state.k0[i][:, :, : t + 1], state.v0[i][:, :, : t + 1],
                                            global_mask)
                if r == 0:
                    return o_global
                kc, vc = state.kv_loops[r - 1][i]
                kc[:, :, t : t + 1], vc[:, :, t : t + 1] = k, v
                o_local = cached_attention(q, kc[:, :, : t + 1], vc[:, :, : t + 1], local_mask)
                return mix(gate(), o_global, o_local)

            for block in self.blocks:
                x = block(x, rope, attend)
            hs.append(self.norm(x))  # (B, 1, C)
        state.prev_h = torch.cat(hs, dim=1)
        state.t += 1
        return self.head(hs[-1][:, 0])

    @torch.no_grad()
    def block_logits(self, state: DecodeState, tokens: torch.Tensor, rows: torch.Tensor | None = None) -> torch.Tensor:
        """Logits (N, K, V) after each of `tokens` (N, K), fed after the prefix of a CLP decoding state
        in one pass per loop (teacher forcing), for scoring known continuations; the state is left as
        it was. Row n continues the state's row rows[n] (default: row n), so one prefilled prompt can
        score many continuations without copying its whole cache. Equal to the full forward's logits
        at those positions: a block is a tree that does not branch (`tree_hidden`)."""
        N, K = tokens.shape
        chain = torch.arange(-1, K - 1, device=tokens.device).expand(N, K)  # each token's parent: the one before
        return self.head(self.tree_hidden(state, tokens, chain, rows))

    @torch.no_grad()
    def tree_hidden(self, state: DecodeState, tokens: torch.Tensor, parents: torch.Tensor,
                    rows: torch.Tensor | None = None) -> torch.Tensor:
        """Last-loop hidden states (N, M, C), after the shared norm (`head` turns them into logits), of
        trees of known tokens fed after the prefix of a CLP decoding state in one pass per loop; the
        state is left as it was. Node j of row n holds tokens[n, j] and follows node parents[n, j] of
        the same row (an earlier node: parents[n, j] < j), or the prefix itself when -1. Row n
        continues the state's row rows[n] (default: row n).

        Every node gets exactly the full forward's result for the sequence prefix + the path from its
        root to it: it sits at position T + depth, loop 0 attends to the cached prefix and to the
        node's ancestors, and loop r >= 1 reads H_{r-1} of its parent (the state's last H_{r-1} for a
        root) and attends globally to loop 0's keys and locally to its ring of the prefix's last W+1
        positions and to its ancestors inside the window. So many candidate continuations that share
        their first tokens are read once per shared token (a trie), not once per candidate. Padding:
        a node no other descends from (e.g. token 0, parent -1) changes nothing but its own row."""
        if state.mode != "clp":
            raise ValueError("tree_hidden and block_logits need a 'clp' decoding state")
        cfg = self.config
        R, W = cfg.loops, cfg.window
        N, M = tokens.shape
        T, dev = state.t, tokens.device
        if parents.shape != tokens.shape:
            raise ValueError(f"parents {tuple(parents.shape)} must have the shape of tokens {tuple(tokens.shape)}")
        if rows is None:
            rows = torch.arange(N, device=dev)
        key_start = state.key_start.index_select(0, rows)
        ancestors, depth = tree_structure(parents)  # depth 0: a node right after the prefix
        pos = T + depth  # absolute index of each node
        rope = self.rope((pos - key_start[:, None]).clamp(min=0))  # (N, 1, M, D)
        dt = state.key_bias.dtype
        # the prefix from the first position any of these rows uses: left padding common to all is skipped
        lo = int(key_start.min()) if N else 0
        prefix_ok = state.key_valid.index_select(0, rows)[:, None, lo:T].expand(N, M, T - lo)
        group = cfg.n_heads // cfg.n_kv_heads  # masks repeated for a group's heads once, not in every layer
        global_mask = _additive(torch.cat([prefix_ok, ancestors], dim=2), dt)[:, None].repeat(1, 1, group, 1)
        if R > 1:
            ring = state.ring_pos  # (W+1,): the prefix position each slot holds (-1: none)
            ring_ok = (ring[None, None] >= pos[..., None] - W) & (ring[None, None] >= key_start[:, None, None])
            near = ancestors & (depth[:, None, :] >= depth[:, :, None] - W)
            local_mask = _additive(torch.cat([ring_ok, near], dim=2), dt)[:, None].repeat(1, 1, group, 1)
            from_parent = (parents + 1)[..., None].expand(N, M, cfg.d_model)  # index into [last, h]

        def prefix(cache: torch.Tensor) -> torch.Tensor:
            return cache[:, :, lo:T].index_select(0, rows)

        E = self.embed(tokens)  # (N, M, C)
        kv0: list = [None] * cfg.n_layers

        def attend_global(i, q, k, v, gate):
            kv0[i] = (torch.cat([prefix(state.k0[i]), k], dim=2), torch.cat([prefix(state.v0[i]), v], dim=2))
            return cached_attention(q, *kv0[i], global_mask)

        x = E
        for block in self.blocks:
            x = block(x, rope, attend_global)
        h = self.norm(x)
        a, b = self.loop_scales[0], self.loop_scales[1]
        for r in range(1, R):
            last = state.prev_h.index_select(0, rows)[:, r - 1 : r]  # H_{r-1} at the prefix's last index
            x = a * E + b * torch.cat([last, h], dim=1).gather(1, from_parent)

            def attend_gswa(i, q, k, v, gate, r=r):
                o_global = cached_attention(q, *kv0[i], global_mask)
                ring_k = state.ring_k[i][:, r - 1].index_select(0, rows)  # (N, Hkv, W+1, D)
                ring_v = state.ring_v[i][:, r - 1].index_select(0, rows)
                o_local = cached_attention(q, torch.cat([ring_k, k], dim=2), torch.cat([ring_v, v], dim=2), local_mask)
                return mix(gate(), o_global, o_local)

            for block in self.blocks:
                x = block(x, rope, attend_gswa)
            h = self.norm(x)
        return h

    # -- the model folder: patchcoder.checkpoint --------------------------------------------------

    def save_pretrained(self, directory: str | os.PathLike) -> None:
        """Write config.json and model.safetensors (`checkpoint.save_model`)."""
        from patchcoder.checkpoint import save_model

        save_model(self, directory)

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike, device: str | torch.device = "cpu") -> PatchCoder:
        """Load a folder written by save_pretrained (`checkpoint.load_model`; problems are CheckpointError)."""
        from patchcoder.checkpoint import load_model

        return load_model(directory, device)


@dataclass
class DecodeState:
    """Per-batch decoding state. Global K/V of loop 0 (full length); for CLP one ring of W+1 positions
    per later loop; for sequential decoding a full K/V per later loop; and the last H_r of every loop."""

    mode: str
    t: int  # index of the next token (the same for all sequences: prompts are left-padded)
    key_start: torch.Tensor  # (B,) first real index of each sequence
    key_valid: torch.Tensor | None = None  # (B, max_len)
    key_bias: torch.Tensor | None = None  # (B, max_len): 0 where valid, -inf where padding
    padded: bool = True  # some row has left padding, so attention needs masks (False: it needs none)
    n_rings: int = 0  # CLP with R > 1: R-1 rings (loops 1 … R-1) of ring_len = W+1 slots
    ring_len: int = 0
    k_cache: list = None  # per layer (B, Hkv, n_rings·ring_len + max_len, D): the rings, then loop 0
    v_cache: list = None
    k0: list = None  # views of k_cache: per layer (B, Hkv, max_len, D), loop 0's keys
    v0: list = None
    ring_k: list = None  # views of k_cache: per layer (B, R-1, Hkv, W+1, D)
    ring_v: list = None
    ring_pos: torch.Tensor | None = None  # (W+1,) position held by each ring slot, -1 if empty
    step_bias: torch.Tensor | None = None  # CLP, R > 1: the step's attention mask (see _build_step_bias)
    fresh_column: torch.Tensor | None = None
    step_rows: tuple | None = None
    qkv_gate: list | None = None  # CLP, R > 1, hidden-state gate: per layer Attention.qkv_gate_projection()
    kv_loops: list = None  # sequential: per loop r >= 1, per layer (K, V) of full length
    prev_h: torch.Tensor | None = None  # (B, R, C): H_r at the last decoded index

    def __post_init__(self):
        self.k_cache, self.v_cache, self.kv_loops = [], [], []
        self.k0, self.v0, self.ring_k, self.ring_v = [], [], [], []

    def set_caches(self, k_cache: list, v_cache: list) -> None:
        """Hold these per-layer caches, and their parts as views: k0/v0 and (CLP) ring_k/ring_v."""
        off = self.n_rings * self.ring_len
        self.k_cache, self.v_cache = k_cache, v_cache
        self.k0, self.v0 = [c[:, :, off:] for c in k_cache], [c[:, :, off:] for c in v_cache]
        if off:
            def rings(c):  # (B, Hkv, off, D) -> (B, R-1, Hkv, W+1, D)
                return c[:, :, :off].unflatten(2, (self.n_rings, self.ring_len)).transpose(1, 2)

            self.ring_k, self.ring_v = [rings(c) for c in k_cache], [rings(c) for c in v_cache]

    def nbytes(self) -> int:
        tensors = self.k_cache + self.v_cache + [x for kv in self.kv_loops for p in kv for x in p]
        return sum(x.numel() * x.element_size() for x in tensors)

    def reorder(self, index: torch.Tensor) -> None:
        """Keep rows `index` of the batch (with repeats), e.g. the surviving hypotheses of a beam search."""
        self._take(self, index)

    def select(self, index: torch.Tensor) -> DecodeState:
        """A new state holding rows `index` (with repeats) of this one, which is left as it was: e.g. one
        prefilled prompt fanned out to many candidate continuations."""
        out = DecodeState(mode=self.mode, t=self.t, key_start=self.key_start, padded=self.padded,
                          n_rings=self.n_rings, ring_len=self.ring_len, qkv_gate=self.qkv_gate,
                          step_rows=self.step_rows)
        out.ring_pos = None if self.ring_pos is None else self.ring_pos.clone()
        return self._take(out, index)

    def _take(self, out: DecodeState, index: torch.Tensor) -> DecodeState:
        def pick(x):
            return x.index_select(0, index)

        out.key_start, out.key_valid, out.key_bias = pick(self.key_start), pick(self.key_valid), pick(self.key_bias)
        out.set_caches([pick(x) for x in self.k_cache], [pick(x) for x in self.v_cache])
        if self.step_bias is not None:
            out.step_bias, out.fresh_column = pick(self.step_bias), pick(self.fresh_column)
        out.kv_loops = [[(pick(k), pick(v)) for k, v in per_layer] for per_layer in self.kv_loops]
        out.prev_h = pick(self.prev_h)  # ring_pos is per position, the same for every row
        return out


def tree_structure(parents: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(ancestors, depth) of rows of trees given by parent indices (B, T): parents[b, j] is an earlier
    index of row b, or -1 for a root. ancestors[b, j, i] (B, T, T, bool): token i is token j or one of
    its ancestors, found by walking up one level per pass; depth[b, j] (B, T): 0 for a root."""
    B, T = parents.shape
    node = torch.arange(T, device=parents.device)
    if bool((parents >= node).any()) or bool((parents < -1).any()):
        raise ValueError("a token's parent must be an earlier node of its row, or -1 (a root)")
    ancestors = (node[:, None] == node[None, :]).expand(B, T, T).clone()
    up = parents
    while bool((up >= 0).any()):
        where = (up >= 0).nonzero(as_tuple=True)
        ancestors[where[0], where[1], up[where]] = True
        up = torch.where(up >= 0, parents.gather(1, up.clamp(min=0)), up)
    return ancestors, ancestors.sum(dim=2) - 1


def _additive(allowed: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Boolean mask -> additive attention bias (0 or -inf), so SDPA does not convert it per call."""
    return torch.zeros(allowed.shape, dtype=dtype, device=allowed.device).masked_fill(~allowed, float("-inf"))


def _padding_or_none(key_start: torch.Tensor) -> torch.Tensor | None:
    """None when no sequence is padded, so full forwards take the unmasked (faster) attention paths."""
    return key_start if bool(key_start.any()) else None


def left_pad(input_ids, attention_mask: torch.Tensor | None, device) -> tuple[torch.Tensor, torch.Tensor]:
    """-> idx (B, T) left-padded with 0, key_start (B,) index of each sequence's first real token."""
    if torch.is_tensor(input_ids):
        idx = input_ids.to(device)
        if idx.dim() != 2 or idx.shape[1] == 0:
            raise ValueError(f"input_ids must be (batch, time) with time >= 1, got {tuple(idx.shape)}")
        if attention_mask is None:
            return idx, torch.zeros(idx.shape[0], dtype=torch.long, device=device)
        mask = attention_mask.to(device).bool()
        lengths = mask.sum(dim=1)
        key_start = idx.shape[1] - lengths
        expected = torch.arange(idx.shape[1], device=device)[None] >= key_start[:, None]
        if not torch.equal(mask, expected) or bool((lengths == 0).any()):
            raise ValueError("attention_mask must be left padding (0 … 0 1 … 1) with at least one token per row")
        return idx, key_start
    seqs = [torch.as_tensor(s, dtype=torch.long).flatten() for s in input_ids]
    if not seqs or min(len(s) for s in seqs) == 0:
        raise ValueError("every prompt needs at least one token")
    T = max(len(s) for s in seqs)
    idx = torch.zeros(len(seqs), T, dtype=torch.long)
    for i, s in enumerate(seqs):
        idx[i, T - len(s) :] = s
    key_start = torch.tensor([T - len(s) for s in seqs])
    return idx.to(device), key_start.to(device)
