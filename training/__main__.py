"""`accelerate launch -m patchcoder.training ...` (or `torchrun -m`): the same as `patchcoder train ...`."""

import sys

from patchcoder.cli import main

sys.exit(main(["train", *sys.argv[1:]]))
