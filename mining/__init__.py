"""patchcoder.mining — (old file, new file, message) pairs from git history (DESIGN.md §2).

Installed only under the name `patchcoder.mining`.
"""

if __name__ != "patchcoder.mining":
    raise ImportError(f"this folder is installed as 'patchcoder.mining'; import it as that, not as {__name__!r}")

from patchcoder.mining.filters import DropCounter, FilterConfig  # noqa: E402
from patchcoder.mining.run import MineSummary, mine  # noqa: E402
from patchcoder.mining.walk import CommitPair, walk  # noqa: E402

__all__ = ["CommitPair", "DropCounter", "FilterConfig", "MineSummary", "mine", "walk"]
