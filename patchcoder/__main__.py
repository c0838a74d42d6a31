"""`python -m patchcoder` runs the command line."""

from patchcoder.cli import entry

entry()
