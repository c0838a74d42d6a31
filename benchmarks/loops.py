"""The loop-count study (LoopCoder-v2's central table, at our scale): R = 1, 2, 3 … with the same
physical layers, data, token budget and seed.

    python benchmarks/loops.py --data TOKENS_TRAIN --valid TOKENS_VALID --eval-data MINED_TEST \\
        --preset default --loops 1,2,3 --max-steps 3000 --out runs/loops [--limit 300] [--docs docs]
        [--set optim.warmup_steps=80] [--eval LABEL=MODE:DATA[:LIMIT] ...]

Each R trains with `patchcoder train --set model.loops=R` in its own process (a killed study
resumes: finished runs are kept, unfinished ones continue from their checkpoint), then is scored:
final validation loss, `patchcoder eval` exact match and localisation on held-out changes, training
tokens/s (median over the run's log), and the per-loop diagnostics on a held-out batch. Writes
OUT/results.json, prints a markdown table, and with --docs writes DOCS/loops.png (loss curves and
the per-loop diagnostics of every R).
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import subprocess
import sys
from pathlib import Path


def train(args, loops: int, out: Path) -> None:
    if (out / "final" / "model.safetensors").exists():
        return
    cmd = [sys.executable, "-m", "patchcoder", "train", "--preset", args.preset, "--out", str(out),
           "--max-steps", str(args.max_steps), "--set", f"model.loops={loops}", "--set", f"run.seed={args.seed}",
           "--no-progress"]
    for d in args.data:
        cmd += ["--data", d]
    if args.valid:
        cmd += ["--valid", args.valid]
    for setting in args.set:
        cmd += ["--set", setting]
    if (out / "checkpoints").exists():
        cmd += ["--resume", str(out)]
    subprocess.run(cmd, check=True)


def metrics(out: Path) -> dict:
    with open(out / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    train_rows = [r for r in rows if r["split"] == "train"]
    valid_rows = [r for r in rows if r["split"] == "valid"]
    return {
        "steps": int(train_rows[-1]["step"]),
        "tokens": int(train_rows[-1]["tokens"]),
        "train_loss": float(train_rows[-1]["loss"]),
        "valid_loss": float(valid_rows[-1]["loss"]) if valid_rows else None,
        "tokens_per_s": statistics.median(float(r["tokens_per_s"]) for r in train_rows[1:] or train_rows),
        "curve": [(int(r["step"]), float(r["loss"]), r["split"]) for r in rows],
    }


def diagnostics(out: Path, valid: str | None, seq_len: int) -> dict | None:
    if not valid:
        return None
    import torch

    from patchcoder.checkpoint import load_model
    from patchcoder.tokenizer.loader import TokenShards
    from patchcoder.training.data import validation_batches
    from patchcoder.training.diagnostics import loop_diagnostics

    model = load_model(out / "final")
    ids, _ = validation_batches(TokenShards(valid), 8, seq_len, 1)[0]
    with torch.no_grad():
        return {"rows": loop_diagnostics(model, ids).rows()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", action="append", required=True, metavar="DIR[:WEIGHT]")
    parser.add_argument("--valid")
    parser.add_argument("--eval-data", help="mined/synthetic parquet for `patchcoder eval`")
    parser.add_argument("--eval", action="append", default=[], metavar="LABEL=MODE:DATA[:LIMIT]",
                        help="a further evaluation, e.g. synth-rank=rank:/data/synth-heldout:60")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="passed to every `patchcoder train` (the same for every R)")
    parser.add_argument("--preset", default="default")
    parser.add_argument("--loops", default="1,2,3")
    parser.add_argument("--max-steps", type=int, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=int, default=300, help="evaluation examples per R")
    parser.add_argument("--out", required=True)
    parser.add_argument("--docs", help="write loops.png here")
    args = parser.parse_args()

    from patchcoder.training.config import load_preset
    from patchcoder.training.evaluate import evaluate

    seq_len = load_preset(args.preset).data.seq_len
    evals = [parse_eval(spec) for spec in args.eval]
    if args.eval_data:
        evals.insert(0, ("eval", None, args.eval_data, args.limit))
    out = Path(args.out)
    results = {}
    for loops in (int(x) for x in args.loops.split(",")):
        run = out / f"R{loops}"
        train(args, loops, run)
        result = metrics(run)
        previous = json.loads((out / "results.json").read_text()).get(str(loops), {}) \
            if (out / "results.json").exists() else {}
        result["evals"] = previous.get("evals", {})
        for label, mode, data, limit in evals:
            if label not in result["evals"]:  # a resumed study keeps the evaluations it already has
                # the budget the study's earlier evaluations were made with (eval's default until session 16)
                report = evaluate(run / "final", data, limit=limit, mode=mode, max_new_tokens=256)
                result["evals"][label] = {k: report[k] for k in EVAL_KEYS} | {"mode": mode or "model's default"}
        result["diagnostics"] = diagnostics(run, args.valid, seq_len)
        results[loops] = result
        (out / "results.json").write_text(json.dumps(results, indent=1))
    print(table(results))
    if args.docs:
        plot(results, Path(args.docs) / "loops.png")


EVAL_KEYS = ("examples", "exact_match", "localisation", "well_formed", "seconds_per_example")


def parse_eval(spec: str) -> tuple[str, str | None, str, int | None]:
    """`LABEL=MODE:DATA[:LIMIT]` → (label, mode, data, limit)."""
    label, sep, rest = spec.partition("=")
    mode, sep2, data = rest.partition(":")
    if not (sep and sep2 and label and data) or mode not in ("generate", "rank", "both"):
        raise SystemExit(f"--eval wants LABEL=MODE:DATA[:LIMIT] with MODE generate|rank|both, got {spec!r}")
    head, _, tail = data.rpartition(":")
    if head and tail.isdigit():
        return label, mode, head, int(tail)
    return label, mode, data, None


def table(results: dict) -> str:
    labels = list(dict.fromkeys(label for r in results.values() for label in r.get("evals", {})))
    head = "| R | steps | tokens | tokens/s | train loss | valid loss |"
    rule = "|---|---:|---:|---:|---:|---:|"
    for label in labels:
        head += f" {label} exact | {label} localisation |"
        rule += "---:|---:|"
    lines = [head, rule]
    for loops, r in results.items():
        valid = f"{r['valid_loss']:.4f}" if r["valid_loss"] is not None else "–"
        line = f"| {loops} | {r['steps']} | {r['tokens']:,} | {r['tokens_per_s']:,.0f} | {r['train_loss']:.4f} | {valid} |"
        for label in labels:
            e = r.get("evals", {}).get(label)
            line += f" {e['exact_match']:.1%} | {e['localisation']:.1%} |" if e else " – | – |"
        lines.append(line)
    return "\n".join(lines)

def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = ["step_size", "update_alignment", "effective_rank", "logit_shift_kl", "mean_gate", "offset_cost"]
    fig, axes = plt.subplots(1, 1 + len(keys), figsize=(4 * (1 + len(keys)), 3.5))
    for loops, r in results.items():
        points = [(s, loss) for s, loss, split in r["curve"] if split == "valid"]
        if points:
            axes[0].plot(*zip(*points, strict=True), marker="o", label=f"R={loops}")
        else:  # a run without validation yet: its training loss, marked as such
            points = [(s, loss) for s, loss, split in r["curve"] if split == "train"]
            axes[0].plot(*zip(*points, strict=True), linestyle="--", label=f"R={loops} (training loss)")
        if r["diagnostics"]:
            rows = r["diagnostics"]["rows"]
            for ax, key in zip(axes[1:], keys, strict=True):
                ax.plot([row["loop"] for row in rows], [row[key] for row in rows], marker="o", label=f"R={loops}")
                ax.set_title(key.replace("_", " "))
                ax.set_xlabel("loop")
    axes[0].set_title("validation loss")
    axes[0].set_xlabel("step")
    axes[0].legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)


if __name__ == "__main__":
    main()
