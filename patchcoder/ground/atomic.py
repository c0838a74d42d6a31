"""Atomic writes: a file (or a folder) is replaced whole or not at all, even when the process is killed.

A file's new content goes to a temp file beside it (same folder, so the rename stays on one file
system), is flushed to disk (fsync), then renamed over it. Temp files are named `.NAME.XXXXXXXX.tmp`,
so `remove_temp_files` finds what a killed writer left behind. A folder is built as `NAME.tmp` and
swapped in whole.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

TEMP_SUFFIX = ".tmp"


def atomic_write(path: str | os.PathLike, data: bytes | str | Callable[[str], object], *,
                 mode: int | None = None) -> None:
    """Replace `path` with `data`: bytes, a str (written as UTF-8, line endings as given), or a writer
    `data(tmp)` that writes the new file at the temp path `tmp` (e.g. `pq.write_table(table, tmp)`).

    The new file has `mode` when given, else the mode of any newly created file (0o666 less the umask).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _create_temp(path)
    try:
        if callable(data):
            os.close(fd)
            data(tmp)
        else:
            with os.fdopen(fd, "wb") as f:
                f.write(data.encode("utf-8") if isinstance(data, str) else data)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _create_temp(path: Path) -> tuple[int, str]:
    """A new empty file `.NAME.XXXXXXXX.tmp` beside `path`, created as any new file is (the umask applies)."""
    while True:
        tmp = str(path.with_name(f".{path.name}.{os.urandom(4).hex()}{TEMP_SUFFIX}"))
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), tmp
        except FileExistsError:
            continue


def remove_temp_files(folder: str | os.PathLike) -> int:
    """Delete the temp files that killed writers left anywhere under `folder`; returns how many."""
    removed = 0
    for tmp in Path(folder).rglob(f".*{TEMP_SUFFIX}"):
        if tmp.is_file():
            tmp.unlink()
            removed += 1
    return removed


def temp_directory(path: str | os.PathLike) -> Path:
    """Where the next version of the folder `path` is built: `NAME.tmp` beside it."""
    path = Path(path)
    return path.with_name(path.name + TEMP_SUFFIX)


def replace_directory(tmp: str | os.PathLike, path: str | os.PathLike) -> None:
    """Put the finished folder `tmp` in the place of `path`, removing an older `path` first."""
    shutil.rmtree(path, ignore_errors=True)
    os.replace(tmp, path)


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike) -> Iterator[Path]:
    """`with atomic_directory(path) as tmp:` fill the fresh folder `tmp`; on success it replaces `path`.

    On an error `tmp` is left as it is and the old `path` stays; the next attempt starts `tmp` afresh.
    """
    tmp = temp_directory(path)
    shutil.rmtree(tmp, ignore_errors=True)
    yield tmp
    replace_directory(tmp, path)
