"""Model benchmarks (issue 4): ratios measured side by side in one run, medians of repeats.

    python benchmarks/model.py                 # everything, ~10 minutes on 2 shared cores
    python benchmarks/model.py decode cache    # some sections only
    python benchmarks/model.py --threads 2

Sections:
  decode    per-token latency at context 512/2048, batch 1/8: R=2 CLP vs R=2 sequential vs R=1, same weights
  decode-profile  the same step under torch.profiler: operator time vs wall time (Python dispatch)
  cache     KV-cache bytes at T=4096: R=2 PLT vs R=1 (formula and the allocated decoding state)
  train     tokens/s (forward+backward+AdamW, bf16 autocast) for R=1, R=2 and a plain 2L model, with
            achieved FLOP/s as a fraction of a bf16 matmul peak measured in the same run
  train-profile  one R=2 training step under torch.profiler: the operators that take the time
  train-ceiling  the fraction of the bf16 peak a training step could reach here: the model's dense matmuls
            alone (forward + backward at its shapes) and its attention calls alone (CPU SDPA vs an explicit
            bf16 matmul-softmax-matmul path vs fp32 SDPA), timed separately
  local     local-window attention (blocked, T·W) vs SDPA with a dense band mask, T=1024…8192:
            forward+backward time and peak memory (each case in a fresh process, peak RSS growth)
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import statistics
import subprocess
import sys
import time

import torch
import torch.nn.functional as F

from patchcoder.model import PatchCoder, PatchCoderConfig


def median_ms(samples):
    return 1e3 * statistics.median(samples)


def same_weights(config: PatchCoderConfig, loops: int, source: PatchCoder) -> PatchCoder:
    """A model with `loops` loops carrying `source`'s weights (R=1 simply has no gates)."""
    model = PatchCoder(PatchCoderConfig(**{**config.to_dict(), "loops": loops})).eval()
    state = {k: v for k, v in source.state_dict().items() if loops > 1 or ".gate." not in k}
    model.load_state_dict(state)
    return model


# ------------------------------------------------------------------------------------------------


def interleaved_decode(models: dict, modes: dict, prompt: torch.Tensor, steps: int, repeats: int) -> dict:
    """Seconds per generated token, one per round, of each model decoding greedily after `prompt` in its
    cached mode (modes[name]: "clp" or "sequential"; prefill excluded). The models take turns, `steps`
    tokens each per round, so a change of load hits them all alike; a first round warms up."""
    new_tokens = steps * (repeats + 1) + 1
    runs = {}
    with torch.no_grad():
        for name, m in models.items():
            state, logits = m.prefill(prompt, new_tokens, mode=modes[name])
            runs[name] = [state, logits.argmax(-1), m.step, []]
        for rep in range(repeats + 1):
            for run in runs.values():
                state, token, step, times = run
                t0 = time.perf_counter()
                for _ in range(steps):
                    token = step(state, token).argmax(-1)
                if rep:
                    times.append((time.perf_counter() - t0) / steps)
                run[1] = token
    return {name: run[3] for name, run in runs.items()}


def bench_decode(args):
    print("\n## decode latency per token (prefill excluded), default config, greedy")
    cfg = PatchCoderConfig()
    torch.manual_seed(0)
    r2 = PatchCoder(cfg).eval()
    r1 = same_weights(cfg, 1, r2)
    print(f"config: {json.dumps(cfg.to_dict())}")
    print("| dtype | context | batch | R=1 ms | R=2 CLP ms | R=2 sequential ms | CLP / R=1 | sequential / R=1 |")
    print("|---|---|---|---|---|---|---|---|")
    for dtype in args.decode_dtypes:
        models = {name: m.to(getattr(torch, dtype)) for name, m in (("r1", r1), ("clp", r2), ("seq", r2))}
        for ctx in (512, 2048):
            for batch in (1, 8):
                g = torch.Generator().manual_seed(ctx + batch)
                prompt = torch.randint(0, cfg.vocab_size, (batch, ctx), generator=g)
                modes = {name: "sequential" if name == "seq" else "clp" for name in models}
                times = interleaved_decode(models, modes, prompt, args.decode_steps, args.repeats)
                ms = {name: median_ms(t) for name, t in times.items()}
                print(
                    f"| {dtype} | {ctx} | {batch} | {ms['r1']:.2f} | {ms['clp']:.2f} | {ms['seq']:.2f} "
                    f"| {ms['clp'] / ms['r1']:.2f} | {ms['seq'] / ms['r1']:.2f} |",
                    flush=True,
                )


def bench_decode_profile(args):
    print("\n## decode: operator time vs wall time (torch.profiler self CPU), context 512, batch 1, fp32")
    from torch.profiler import profile

    cfg = PatchCoderConfig()
    torch.manual_seed(0)
    r2 = PatchCoder(cfg).eval()
    models = {"R=1": same_weights(cfg, 1, r2), "R=2 CLP": r2}
    prompt = torch.randint(0, cfg.vocab_size, (1, 512))
    steps = 20
    print("| model | operator µs/token (profiled) | wall µs/token (not profiled) | aten calls/token |")
    print("|---|---|---|---|")
    for name, m in models.items():
        with torch.no_grad():
            state, logits = m.prefill(prompt, 5 * steps + 8, mode="clp")
            token = logits.argmax(-1)
            for _ in range(5):
                token = m.step(state, token).argmax(-1)
            walls = []
            for _ in range(3):
                t0 = time.perf_counter()
                for _ in range(steps):
                    token = m.step(state, token).argmax(-1)
                walls.append((time.perf_counter() - t0) / steps)
            wall = statistics.median(walls)
            with profile():  # the profiler's own start-up
                m.step(state, token)
            with profile() as prof:
                for _ in range(steps):
                    token = m.step(state, token).argmax(-1)
        events = prof.key_averages()
        op_us = sum(e.self_cpu_time_total for e in events) / steps
        n_ops = sum(e.count for e in events) / steps
        print(f"| {name} | {op_us:.0f} | {1e6 * wall:.0f} | {n_ops:.0f} |")


def bench_cache(args):
    print("\n## KV-cache bytes at T = 4096 (batch 1, fp32; bf16 halves every figure)")
    cfg = PatchCoderConfig()
    torch.manual_seed(0)
    r2 = PatchCoder(cfg).eval()
    r1 = same_weights(cfg, 1, r2)
    T = 4096
    prompt = torch.randint(0, cfg.vocab_size, (1, T))
    rows = []
    with torch.no_grad():
        for name, m, mode in (("R=1", r1, "clp"), ("R=2 PLT (CLP)", r2, "clp"), ("R=2 sequential", r2, "sequential")):
            state, _ = m.prefill(prompt, 0, mode=mode)
            rows.append((name, m.cache_bytes(T, mode=mode), state.nbytes()))
    base = rows[0][1]
    print("| model | cache_bytes(4096) | allocated by decoding | / R=1 |")
    print("|---|---|---|---|")
    for name, formula, allocated in rows:
        print(f"| {name} | {formula:,} | {allocated:,} | {formula / base:.4f} |")


def model_flops_per_token(cfg: PatchCoderConfig, T: int) -> float:
    """Forward FLOPs per token: 2·(matmul weights)·R + head, plus attention scores and values."""
    d, hd = cfg.d_model, cfg.head_dim
    per_layer = d * (cfg.n_heads + 2 * cfg.n_kv_heads) * hd + cfg.n_heads * hd * d + 3 * d * cfg.ffn_hidden
    dense = 2 * per_layer * cfg.n_layers * cfg.loops + 2 * d * cfg.vocab_size
    causal_keys = (T + 1) / 2  # mean keys per query, causal
    local_keys = min(cfg.window + 1, causal_keys)
    attn = 4 * cfg.n_heads * hd * cfg.n_layers * (causal_keys * cfg.loops + local_keys * (cfg.loops - 1))
    return dense + attn


def matmul_peak(dtype=torch.bfloat16, repeats=10) -> float:
    """Best bf16 matmul FLOP/s over a square 2048³ and the model's own MLP shape (4096×256 @ 256×1408)."""
    best = 0.0
    for m, k, n in ((2048, 2048, 2048), (4096, 256, 1408)):
        a, b = torch.randn(m, k, dtype=dtype), torch.randn(k, n, dtype=dtype)
        for _ in range(3):
            a @ b
        for _ in range(repeats):
            t0 = time.perf_counter()
            a @ b
            best = max(best, 2 * m * k * n / (time.perf_counter() - t0))  # a peak: best, not median
    return best


def bench_train(args):
    B, T = args.train_batch, args.train_len
    mode = "torch.compile (default mode)" if args.compile else "eager"
    print(f"\n## training throughput, batch {B} × {T} tokens, bf16 autocast, AdamW (fused), {mode}, "
          f"median of {args.repeats}")
    base = PatchCoderConfig()
    variants = [
        ("R=1, L=6", PatchCoderConfig(**{**base.to_dict(), "loops": 1})),
        ("R=2, L=6 (PLT)", base),
        ("R=1, L=12 (plain 2L)", PatchCoderConfig(**{**base.to_dict(), "loops": 1, "n_layers": 12})),
    ]
    peak_before = matmul_peak()
    results = []
    g = torch.Generator().manual_seed(0)
    data = torch.randint(0, base.vocab_size, (B, T + 1), generator=g)
    models = []
    for name, cfg in variants:
        torch.manual_seed(0)
        model = PatchCoder(cfg)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3, fused=True)
        models.append((name, cfg, torch.compile(model) if args.compile else model, opt, []))
    t_first = time.perf_counter()
    for rep in range(args.repeats + 1):  # interleaved; the first round is warm-up
        for _name, _cfg, model, opt, times in models:
            t0 = time.perf_counter()
            with torch.autocast("cpu", dtype=torch.bfloat16):
                logits = model(data[:, :-1])
            loss = F.cross_entropy(logits.flatten(0, 1).float(), data[:, 1:].flatten())
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            if rep:
                times.append(time.perf_counter() - t0)
        if rep == 0:
            print(f"warm-up round (includes compilation when --compile): {time.perf_counter() - t_first:.0f} s")
    peak = max(peak_before, matmul_peak())
    print(f"bf16 matmul peak (best of 2048³ and 4096×256×1408, before and after, {torch.get_num_threads()} threads): "
          f"{peak / 1e9:.0f} GFLOP/s")
    print("| model | params | step ms | tokens/s | model TFLOP/step | achieved GFLOP/s | fraction of bf16 peak |")
    print("|---|---|---|---|---|---|---|")
    for name, cfg, model, _opt, times in models:
        step = statistics.median(times)
        flops = 3 * model_flops_per_token(cfg, T) * B * T  # forward + backward ≈ 3 forwards
        results.append((name, step))
        n_params = sum(p.numel() for p in model.parameters())
        print(
            f"| {name} | {n_params / 1e6:.2f}M | {1e3 * step:.0f} | {B * T / step:,.0f} "
            f"| {flops / 1e12:.3f} | {flops / step / 1e9:.0f} | {flops / step / peak:.1%} |"
        )


def bench_train_profile(args):
    B, T = args.train_batch, args.train_len
    print(f"\n## where a training step goes: R=2 default config, batch {B} × {T}, bf16 autocast, torch.profiler")
    from torch.profiler import profile

    torch.manual_seed(0)
    model = PatchCoder(PatchCoderConfig())
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, fused=True)
    data = torch.randint(0, model.config.vocab_size, (B, T + 1))

    def step():
        with torch.autocast("cpu", dtype=torch.bfloat16):
            logits = model(data[:, :-1])
        F.cross_entropy(logits.flatten(0, 1).float(), data[:, 1:].flatten()).backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    step()
    with profile() as prof:
        step()
    events = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)
    total = sum(e.self_cpu_time_total for e in events)
    print("| operator | self CPU ms | share |")
    print("|---|---|---|")
    for e in events[:8]:
        print(f"| {e.key[:60]} | {e.self_cpu_time_total / 1e3:.0f} | {e.self_cpu_time_total / total:.1%} |")
    print(f"| total | {total / 1e3:.0f} | |")


def bench_train_ceiling(args):
    B, T = args.train_batch, args.train_len
    print(f"\n## training ceiling: R=2 default config, batch {B} × {T}, bf16, forward + backward, median of {args.repeats}")
    cfg = PatchCoderConfig()
    M, dt, d, hd = B * T, torch.bfloat16, cfg.d_model, cfg.head_dim
    H, Hkv, R, L = cfg.n_heads, cfg.n_kv_heads, cfg.loops, cfg.n_layers

    def median_s(fn):
        fn()
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return statistics.median(times)

    peak = matmul_peak()
    print(f"bf16 matmul peak (as in `train`): {peak / 1e9:.0f} GFLOP/s")
    print("| matmul (K → N, M = B·T) | calls/step | GFLOP/s (x·Wᵀ, dY·W, dYᵀ·x) | ms/step |")
    print("|---|---|---|---|")
    dense_s = dense_f = 0.0
    for name, k, n, calls in (("qkv", d, (H + 2 * Hkv) * hd, L * R), ("proj", H * hd, d, L * R),
                              ("SwiGLU up", d, 2 * cfg.ffn_hidden, L * R), ("SwiGLU down", cfg.ffn_hidden, d, L * R),
                              ("head", d, cfg.vocab_size, 1)):
        x, w, dy = torch.randn(M, k, dtype=dt), torch.randn(n, k, dtype=dt), torch.randn(M, n, dtype=dt)
        sec = median_s(lambda x=x, w=w, dy=dy: (x @ w.t(), dy @ w, dy.t() @ x))
        flops = 3 * 2 * M * k * n
        dense_s, dense_f = dense_s + sec * calls, dense_f + flops * calls
        print(f"| {name} {k} → {n} | {calls} | {flops / sec / 1e9:.0f} | {1e3 * sec * calls:.0f} |")
    print(f"| all dense matmuls | | {dense_f / dense_s / 1e9:.0f} ({dense_f / dense_s / peak:.0%} of peak) "
          f"| {1e3 * dense_s:.0f} |")

    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(B, h, T, hd, generator=g).to(dt).requires_grad_() for h in (H, Hkv, Hkv))
    dout = torch.randn(B, H, T, hd, generator=g).to(dt)
    causal = torch.ones(T, T, dtype=torch.bool).tril()
    band = causal & ~torch.ones(T, T, dtype=torch.bool).tril(-cfg.window - 1)

    def explicit(q, k, v, allowed):  # bf16 matmuls (AMX), softmax, grouped heads folded into rows
        s = (q.reshape(B, Hkv, -1, hd) @ k.transpose(-1, -2)).view(B, Hkv, H // Hkv, T, T) / math.sqrt(hd)
        p = s.masked_fill(~allowed, float("-inf")).softmax(dim=-1).view(B, Hkv, -1, T)
        return (p @ v).view(B, H, T, hd)

    variants = {
        "SDPA bf16 (model's path)": (
            lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True),
            lambda: F.scaled_dot_product_attention(q, k, v, attn_mask=band.expand(B, H, T, T), enable_gqa=True)),
        "explicit bf16 matmul + softmax": (lambda: explicit(q, k, v, causal), lambda: explicit(q, k, v, band)),
        "SDPA fp32 (inputs cast)": (
            lambda: F.scaled_dot_product_attention(q.float(), k.float(), v.float(), is_causal=True,
                                                   enable_gqa=True).to(dt),
            lambda: F.scaled_dot_product_attention(q.float(), k.float(), v.float(), enable_gqa=True,
                                                   attn_mask=band.expand(B, H, T, T)).to(dt)),
    }
    attn_f = 3 * model_flops_per_token(cfg, T) * M - dense_f  # the model's attention FLOPs (causal half counted)
    total_f = dense_f + attn_f
    print("| attention (fwd + bwd) | causal ms | window ms | ms/step (2L causal + L window) | attention GFLOP/s "
          "| step fraction of peak if only matmuls + attention ran |")
    print("|---|---|---|---|---|---|")
    for name, (glob, loc) in variants.items():
        tg, tl = (median_s(lambda f=f: f().backward(dout)) for f in (glob, loc))
        attn_s = tg * L * R + tl * L * (R - 1)
        print(f"| {name} | {1e3 * tg:.0f} | {1e3 * tl:.0f} | {1e3 * attn_s:.0f} | {attn_f / attn_s / 1e9:.0f} "
              f"| {total_f / (dense_s + attn_s) / peak:.1%} |", flush=True)
    print(f"model FLOP/step {total_f / 1e12:.3f} T (dense matmuls {dense_f / 1e12:.3f} T, attention "
          f"{attn_f / 1e12:.3f} T); with attention as fast as the dense matmuls and nothing else costing time: "
          f"{dense_f / dense_s / peak:.0%} of peak")


def attn_case(backend: str, T: int, dtype: str, threads: int) -> dict:
    """One local-attention case in this (fresh) process: time and peak RSS growth."""
    from patchcoder.kernels import attention

    torch.set_num_threads(threads)
    B, H, D, W = 2, 6, 64, 64
    dt = getattr(torch, dtype)
    q, k, v = (torch.randn(B, H, T, D, dtype=dt, requires_grad=True) for _ in range(3))
    attention(q, k, v, window=W, backend=backend).sum().backward()  # warm-up; allocates the gradients
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset the peak RSS (VmHWM) to the current RSS: importing torch peaks higher
    base = proc_status_kib("VmRSS")
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        attention(q, k, v, window=W, backend=backend).sum().backward()
        times.append(time.perf_counter() - t0)
    return {"ms": median_ms(times), "peak_mib": (proc_status_kib("VmHWM") - base) / 1024}


def proc_status_kib(field: str) -> int:
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def bench_local(args):
    print("\n## local attention (W=64, B=2, 6 heads × 64, forward+backward), blocked T·W path vs dense band mask")
    print("| dtype | T | local ms | dense-mask SDPA ms | speed-up | local peak MiB | dense peak MiB |")
    print("|---|---|---|---|---|---|---|")
    for dtype in ("float32", "bfloat16"):
        for T in (1024, 2048, 4096, 8192):
            res = {}
            for backend in ("local", "sdpa"):
                cmd = [sys.executable, __file__, "--_attn-case", backend, str(T), dtype, str(args.threads)]
                out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
                res[backend] = json.loads(out.strip().splitlines()[-1])
            lo, de = res["local"], res["sdpa"]
            print(
                f"| {dtype} | {T} | {lo['ms']:.0f} | {de['ms']:.0f} | {de['ms'] / lo['ms']:.1f}× "
                f"| {lo['peak_mib']:.0f} | {de['peak_mib']:.0f} |",
                flush=True,
            )


SECTIONS = {"decode": bench_decode, "decode-profile": bench_decode_profile, "cache": bench_cache, "train": bench_train, "train-profile": bench_train_profile, "train-ceiling": bench_train_ceiling, "local": bench_local}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sections", nargs="*", help=f"any of {list(SECTIONS)} (default: all)")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (the machine is shared)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--decode-steps", type=int, default=16)
    parser.add_argument("--decode-dtypes", nargs="+", default=["float32", "bfloat16"])
    parser.add_argument("--train-batch", type=int, default=8)
    parser.add_argument("--train-len", type=int, default=512)
    parser.add_argument("--compile", action="store_true", help="train section: torch.compile the models")
    parser.add_argument("--_attn-case", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._attn_case:
        backend, T, dtype, threads = args._attn_case
        print(json.dumps(attn_case(backend, int(T), dtype, int(threads))))
        return
    args.sections = args.sections or list(SECTIONS)
    unknown = sorted(set(args.sections) - set(SECTIONS))
    if unknown:
        parser.error(f"unknown sections {unknown}; choose from {list(SECTIONS)}")
    torch.set_num_threads(args.threads)
    print(f"# patchcoder model benchmarks: torch {torch.__version__}, {platform.processor() or platform.machine()}, "
          f"{torch.get_num_threads()} threads, sections {args.sections}")
    for name in args.sections:
        SECTIONS[name](args)


if __name__ == "__main__":
    main()
