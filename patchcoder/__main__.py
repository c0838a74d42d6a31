"""`python -m patchcoder` runs the command line."""

import sys

from patchcoder.cli import main

sys.exit(main())
