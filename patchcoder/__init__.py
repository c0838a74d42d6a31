"""patchcoder: learns how code changes from git history and proposes patches."""

__version__ = "0.1.0"


def __getattr__(name: str):
    # The API lives in patchcoder.repair; loaded on first use so `import patchcoder` stays light.
    if name in ("Repairer", "Patch"):
        from patchcoder import repair

        return getattr(repair, name)
    raise AttributeError(f"module 'patchcoder' has no attribute {name!r}")


__all__ = ["Patch", "Repairer", "__version__"]
