# Put first on PYTHONPATH by `patchcoder fix` for the processes of the user's test command: starts
# coverage.py in each of them (COVERAGE_PROCESS_START names the configuration), then runs the
# sitecustomize that this one shadows, if there is one. Does nothing where coverage is not installed.
import os
import sys

if os.environ.get("COVERAGE_PROCESS_START"):
    try:
        import coverage
    except ImportError:
        pass
    else:
        coverage.process_startup()


def _chain() -> None:
    import importlib.machinery
    import importlib.util

    here = os.path.dirname(os.path.abspath(__file__))
    rest = [p for p in sys.path if os.path.abspath(p or ".") != here]
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", rest)
    if spec is not None and spec.loader is not None:
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)


_chain()
del _chain
