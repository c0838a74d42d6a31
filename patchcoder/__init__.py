"""patchcoder: learns how code changes from git history and proposes patches."""

__version__ = "0.1.0"
