"""The mean of several exported models' weights (a "model soup"): same architecture, same start.

    python training/recipe/average.py runs/stageJ1/final runs/stageJ1w/final --out runs/stageJ1m/final

Copies the first folder's config, vocabulary and training.json (with the averaged folders recorded in
`averaged_from`) and writes the element-wise mean of every floating-point tensor in fp32 (integer tensors must
agree and are kept). Refuses folders whose configs or tensor names and shapes differ. Reads and writes
safetensors and JSON only.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path


def average(folders: list[Path], out: Path) -> None:
    from safetensors.torch import load_file, save_file

    configs = [json.loads((f / "config.json").read_text()) for f in folders]
    if any(c != configs[0] for c in configs[1:]):
        raise SystemExit("error: the folders' config.json differ; only models of one architecture can be averaged")
    states = [load_file(str(f / "model.safetensors")) for f in folders]
    names = {k: v.shape for k, v in states[0].items()}
    for f, s in zip(folders[1:], states[1:], strict=True):
        if {k: v.shape for k, v in s.items()} != names:
            raise SystemExit(f"error: {f} holds other tensors than {folders[0]}")
    mean = {}
    for k in names:
        if not states[0][k].is_floating_point():  # an integer buffer is not averaged: it must agree
            if any(not s[k].equal(states[0][k]) for s in states[1:]):
                raise SystemExit(f"error: the integer tensor {k} differs between the folders")
            mean[k] = states[0][k]
        else:
            mean[k] = sum(s[k].float() for s in states) / len(states)
    out.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in mean.items()}, str(out / "model.safetensors"))
    for name in ("config.json", "tokenizer.json", "decoding.json"):
        if (folders[0] / name).exists():
            shutil.copyfile(folders[0] / name, out / name)
    training = json.loads((folders[0] / "training.json").read_text())
    training["averaged_from"] = [str(f) for f in folders]
    (out / "training.json").write_text(json.dumps(training, indent=1) + "\n")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+", type=Path)
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args(argv)
    if len(args.folders) < 2:
        parser.error("name at least two exported model folders")
    average(args.folders, args.out)
    print(f"{args.out}: the mean of {len(args.folders)} models", file=sys.stderr)


if __name__ == "__main__":
    main()
