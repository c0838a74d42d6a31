"""Batch repair with the Python API: load a checkpoint once, propose patches for many files.

    python examples/batch_repair.py --checkpoint runs/default/final src/*.py
"""

import argparse
from pathlib import Path

from patchcoder import Repairer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", nargs="+")
    parser.add_argument("--checkpoint", help="a model folder (default: the model shipped with patchcoder)")
    parser.add_argument("--intent", help="what the code is meant to do")
    args = parser.parse_args()

    repairer = Repairer.load(args.checkpoint)
    items = [{"code": Path(f).read_text(), "path": f, "intent": args.intent} for f in args.files]
    for item, patch in zip(items, repairer.repair(items, batch_size=16), strict=True):
        if patch is None:
            print(f"# {item['path']}: no change proposed")
        else:
            print(f"# {item['path']}: score {patch.score:.3f}, {patch.sstub or 'change'}")
            print(patch.diff)


if __name__ == "__main__":
    main()
