"""Decode latency of this checkout's model against the model of another commit, side by side.

    python benchmarks/decode_ab.py 0462a35                      # bf16, context 512/2048 × batch 1/8
    python benchmarks/decode_ab.py 0462a35 --dtype float32 --cases 512x1

Both versions of `patchcoder/model.py` (and `kernels/attention.py`) get the same weights; R=1 and R=2
CLP steps of both run interleaved in one process (16 tokens per round, a warm-up round, then
`--repeats` rounds). CLP / R=1 is the median over rounds of the ratio within a round (paired), which
is steadier than a ratio of medians on a shared machine.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
from model import interleaved_decode  # benchmarks/model.py, beside this script

from patchcoder.model import PatchCoder, PatchCoderConfig

ROOT = Path(__file__).resolve().parent.parent


def load_model_module(rev: str):
    """patchcoder/model.py as of `rev`, importing that revision's attention kernels."""
    tmp = Path(tempfile.mkdtemp(prefix="decode_ab_"))

    def show(path):
        return subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:{path}"], capture_output=True, text=True,
                              check=True).stdout

    (tmp / "ab_attention.py").write_text(show("kernels/attention.py"))
    source = show("patchcoder/model.py").replace("from patchcoder.kernels import", "from ab_attention import")
    (tmp / "ab_model.py").write_text(source)
    sys.path.insert(0, str(tmp))
    spec = importlib.util.spec_from_file_location("ab_model", tmp / "ab_model.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["ab_model"] = module
    spec.loader.exec_module(module)
    if not hasattr(module.PatchCoder, "prefill"):  # before the public prefill/step: the same calls, older names
        def prefill(self, input_ids, max_new_tokens, *, mode="clp"):
            return self.start_decoding(input_ids, max_new_tokens, mode)

        module.PatchCoder.prefill, module.PatchCoder.step = prefill, module.PatchCoder.decode_step
    return module


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("rev", help="the commit to compare against, e.g. 0462a35")
    parser.add_argument("--dtype", default="bfloat16")
    parser.add_argument("--cases", nargs="+", default=["512x1", "512x8", "2048x1", "2048x8"], help="CONTEXTxBATCH")
    parser.add_argument("--repeats", type=int, default=11)
    parser.add_argument("--steps", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    old = load_model_module(args.rev)
    dt = getattr(torch, args.dtype)
    cfg = PatchCoderConfig()
    torch.manual_seed(0)
    new_r2 = PatchCoder(cfg).eval()
    weights = new_r2.state_dict()
    r1_weights = {k: v for k, v in weights.items() if ".gate." not in k}
    cfg1 = PatchCoderConfig(**{**cfg.to_dict(), "loops": 1})
    models = {"old R=1": old.PatchCoder(cfg1), "old CLP": old.PatchCoder(cfg), "new R=1": PatchCoder(cfg1),
              "new CLP": new_r2}
    for name, m in models.items():
        m.load_state_dict(r1_weights if "R=1" in name else weights)
        m.eval().to(dt)
    print(f"# {args.dtype}, {torch.get_num_threads()} thread(s), old = {args.rev}, new = this checkout; ms per token")
    print("| context × batch | old R=1 | old CLP | new R=1 | new CLP | old CLP / R=1 | new CLP / R=1 | new CLP / old CLP |")
    print("|---|---|---|---|---|---|---|---|")
    for case in args.cases:
        ctx, batch = map(int, case.split("x"))
        prompt = torch.randint(0, cfg.vocab_size, (batch, ctx), generator=torch.Generator().manual_seed(ctx + batch))
        times = interleaved_decode(models, dict.fromkeys(models, "clp"), prompt, args.steps, args.repeats)
        ms = {name: 1e3 * statistics.median(t) for name, t in times.items()}

        def paired(a, b, times=times):
            return statistics.median(x / y for x, y in zip(times[a], times[b], strict=True))

        print(f"| {ctx} × {batch} | {ms['old R=1']:.2f} | {ms['old CLP']:.2f} | {ms['new R=1']:.2f} | {ms['new CLP']:.2f} "
              f"| {paired('old CLP', 'old R=1'):.3f} | {paired('new CLP', 'new R=1'):.3f} "
              f"| {paired('new CLP', 'old CLP'):.3f} |", flush=True)


if __name__ == "__main__":
    main()
