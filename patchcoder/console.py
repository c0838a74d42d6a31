"""Where output goes: people read stderr (rich), programs read stdout (raw or JSON)."""

from __future__ import annotations

import functools

from rich.console import Console


@functools.cache
def stderr() -> Console:
    """The console for progress bars, tables and messages meant for a person."""
    return Console(stderr=True)
