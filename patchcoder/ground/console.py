"""Where output goes: people read stderr (rich), programs read stdout (raw or JSON)."""

from __future__ import annotations

import functools

from rich.console import Console


@functools.cache
def stderr() -> Console:
    """The console for progress bars, tables and messages meant for a person."""
    return Console(stderr=True)


def count_table(title: str):
    """The closing summary of a long command: a two-column (what, count) rich table."""
    from rich.table import Table

    table = Table(title=title, show_header=True, header_style="bold")
    table.add_column("what")
    table.add_column("count", justify="right")
    return table


def print_summary(title: str, rows, notes=()) -> None:
    """Print a count table of (what, count) `rows` (an int count gets thousands separators), then `notes`."""
    table = count_table(title)
    for what, count in rows:
        table.add_row(what, f"{count:,}" if isinstance(count, int) else count)
    stderr().print(table)
    from rich.markup import escape

    for note in notes:  # plain text (a path may hold brackets), never cut in two
        stderr().print(f"[yellow]note:[/yellow] {escape(note)}", soft_wrap=True)


class progress_bar:
    """`with progress_bar("label", total, enabled) as advance: advance(n)` — a rich bar on stderr."""

    def __init__(self, label: str, total: int, enabled: bool = True):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self._progress = Progress(TextColumn(f"[bold]{label}"), BarColumn(), MofNCompleteColumn(),
                                  TimeRemainingColumn(), console=stderr(), disable=not enabled)
        self._task = self._progress.add_task(label, total=total)

    def __enter__(self):
        self._progress.__enter__()
        return lambda n=1: self._progress.advance(self._task, n)

    def __exit__(self, *exc):
        return self._progress.__exit__(*exc)
