"""Training throughput of a preset through the real data path, and whether the loader is ever the bottleneck.

    python benchmarks/training.py --data TOKENS [--data TOKENS2] [--preset default] [--steps 12] [--compile]

Interleaved, in one process: optimizer steps on one fixed in-memory batch (no loader at all) and on
batches from `MixtureBatches` over memory-mapped token shards (the trainer's loader), plus the time
of the loader alone. Reports the median step time of each, tokens/s, and achieved FLOP/s as a fraction
of a bf16 matrix-multiply peak measured in the same run (before and after the steps).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from model import matmul_peak, model_flops_per_token  # noqa: E402  (benchmarks/model.py)

from patchcoder.model import PatchCoder, PatchCoderConfig  # noqa: E402
from patchcoder.tokenizer.loader import TokenShards  # noqa: E402
from patchcoder.training.config import load_preset  # noqa: E402
from patchcoder.training.data import MixtureBatches  # noqa: E402
from patchcoder.training.loop import edit_loss  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", action="append", required=True)
    parser.add_argument("--preset", default="default")
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--compile", action="store_true")
    args = parser.parse_args()

    config = load_preset(args.preset)
    sources = [(TokenShards(d), 1.0) for d in args.data]
    cfg = PatchCoderConfig.from_dict({**config.model, "vocab_size": sources[0][0].vocab_size})
    B, T = config.optim.batch_size, config.data.seq_len
    pad_to = T if args.compile else 64
    batches = MixtureBatches(sources, B, T, seed=0, pad_to=pad_to)
    torch.manual_seed(0)
    model = PatchCoder(cfg)
    forward = torch.compile(model) if args.compile else model
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)
    fixed = next(batches)

    def step(ids, weights) -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = edit_loss(forward(ids), ids, weights)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    print(f"preset {args.preset}: {sum(p.numel() for p in model.parameters()) / 1e6:.2f}M parameters, batch {B}, "
          f"seq_len {T} (padded to multiples of {pad_to}), {torch.get_num_threads()} threads, "
          f"{'torch.compile' if args.compile else 'eager'}")
    peak_before = matmul_peak()
    started = time.perf_counter()
    step(*fixed)  # warm-up (compilation)
    print(f"warm-up step: {time.perf_counter() - started:.1f} s")
    fixed_times, real_times, loader_times, real_tokens, real_positions = [], [], [], [], []
    for _ in range(args.steps):
        t0 = time.perf_counter()
        step(*fixed)
        fixed_times.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        ids, weights = next(batches)
        loader_times.append(time.perf_counter() - t0)
        step(ids, weights)
        real_times.append(time.perf_counter() - t0)
        real_tokens.append(int((ids != batches.pad_id).sum()))
        real_positions.append(ids.numel())
    peak = max(peak_before, matmul_peak())

    fixed_step, real_step, loader = (statistics.median(x) for x in (fixed_times, real_times, loader_times))
    tokens, positions = statistics.median(real_tokens), statistics.median(real_positions)
    flops_fixed = 3 * model_flops_per_token(cfg, fixed[0].shape[1]) * fixed[0].numel()
    print(f"bf16 matmul peak (best, before and after): {peak / 1e9:.0f} GFLOP/s")
    print("| batch source | step ms (median) | loader ms | tokens/s (real tokens) | positions/s | achieved GFLOP/s | of peak |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    print(f"| fixed in-memory batch ({fixed[0].shape[1]} positions) | {fixed_step * 1e3:.0f} | 0 | "
          f"{int((fixed[0] != batches.pad_id).sum()) / fixed_step:,.0f} | {fixed[0].numel() / fixed_step:,.0f} | "
          f"{flops_fixed / fixed_step / 1e9:.0f} | {flops_fixed / fixed_step / peak:.1%} |")
    flops_real = 3 * model_flops_per_token(cfg, int(positions // B)) * positions
    print(f"| MixtureBatches over token shards | {real_step * 1e3:.0f} | {loader * 1e3:.1f} | {tokens / real_step:,.0f} | "
          f"{positions / real_step:,.0f} | {flops_real / real_step / 1e9:.0f} | {flops_real / real_step / peak:.1%} |")
    print(f"\nloader share of a real step: {loader / real_step:.1%}")


if __name__ == "__main__":
    main()
