"""`python -m patchcoder` and the `patchcoder` command: the command line, in a process that imports no
code from the directory it runs in.

`python -m` puts the current directory first on sys.path: run inside a repository, its `json.py` or
`torch.py` would be imported in place of the library, and run in our process (the pre-commit hook runs
inside the repository it checks). `main` takes that entry out before anything else is imported, as
`python -P` would; this module imports only `os` and `sys`, loaded before Python looks at the current
directory. Python 3.10 imports `runpy` for `-m` before any code of ours runs (3.11 has it built in):
there, prefer the `patchcoder` command. The hook starts its processes with `python -c` (patchcoder.hook).
PYTHONPATH is honoured as given (an empty entry in it means the current directory, for every program).
"""

import os
import sys


def isolate_import_path() -> None:
    """Drop the entry `python -m` (the current directory) or `python -c` ("") put first on sys.path,
    unless Python was started with -P (or PYTHONSAFEPATH), which puts none."""
    if getattr(sys.flags, "safe_path", False) or not sys.path:  # safe_path: Python 3.11+
        return
    try:
        here = os.path.realpath(os.getcwd())
    except OSError:  # the current directory was deleted
        here = None
    if sys.path[0] == "" or os.path.realpath(sys.path[0]) == here:
        del sys.path[0]


def main() -> None:
    isolate_import_path()
    from patchcoder.cli import entry

    entry()


if __name__ == "__main__":
    main()
