"""Atomic writes: a file (or a folder) is replaced whole or not at all, even when the process is killed.

A file's new content goes to a temp file beside it (same folder, so the rename stays on one file
system), is flushed to disk (fsync), then renamed over it. Temp files are named `.NAME.XXXXXXXX.tmp`,
so `remove_temp_files` finds what a killed writer left behind. A folder is built as `NAME.tmp` and
swapped in whole. A user's file rewritten with `keep_file` stays the same file (mode, owner, hard links),
written in place when a rename cannot keep it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

TEMP_SUFFIX = ".tmp"


def atomic_write(path: str | os.PathLike, data: bytes | str | Callable[[str], object], *,
                 mode: int | None = None, keep_file: bool = False) -> str | None:
    """Replace `path` with `data`: bytes, a str (written as UTF-8, line endings as given), or a writer
    `data(tmp)` that writes the new file at the temp path `tmp` (e.g. `pq.write_table(table, tmp)`).

    The new file has `mode` when given, else the mode of any newly created file (0o666 less the umask).

    keep_file: `path` is an existing regular file (a user's file) that must stay the same file: the new one
    gets its mode, owner and group. When a rename cannot keep it — `path` has other hard links, or its owner
    or group cannot be given to a new file (only root may give a file away) — the new content is written
    into the file itself, which keeps its inode, owner and links but is not atomic; the returned note says
    so (else None).
    """
    path = Path(path)
    keep = os.stat(path) if keep_file else None
    if keep is not None:
        if callable(data):
            raise TypeError("keep_file takes bytes or str data")
        mode = stat.S_IMODE(keep.st_mode)
        if keep.st_nlink > 1:
            return _write_in_place(path, data, f"its {keep.st_nlink} hard links")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd, tmp = _create_temp(path)
    except PermissionError:
        if keep is None:
            raise
        return _write_in_place(path, data, "it where its folder takes no new file")
    try:
        if callable(data):
            os.close(fd)
            data(tmp)
        else:
            with os.fdopen(fd, "wb") as f:
                f.write(data.encode("utf-8") if isinstance(data, str) else data)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        if keep is not None and not _same_owner(tmp, keep):
            os.unlink(tmp)
            return _write_in_place(path, data, f"its owner (uid {keep.st_uid}, gid {keep.st_gid})")
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return None


def _same_owner(tmp: str, keep: os.stat_result) -> bool:
    """Give `tmp` the owner and group of `keep` (the file it replaces); False when that is not allowed."""
    now = os.stat(tmp)
    if (now.st_uid, now.st_gid) == (keep.st_uid, keep.st_gid):
        return True
    try:
        os.chown(tmp, keep.st_uid, keep.st_gid)
    except PermissionError:
        return False
    return True


def _write_in_place(path: Path, data: bytes | str, kept: str) -> str:
    """Overwrite the file `path` itself (same inode) with `data`; the note says what this kept."""
    with open(path, "r+b") as f:
        f.write(data.encode("utf-8") if isinstance(data, str) else data)
        f.truncate()
        f.flush()
        os.fsync(f.fileno())
    return f"written in place to keep {kept}, not atomically"


def temp_name(name: str) -> str:
    """The name of a temp file for the file `name`, beside it: `.NAME.XXXXXXXX.tmp` (remove_temp_files finds it)."""
    return f".{name}.{os.urandom(4).hex()}{TEMP_SUFFIX}"


def _create_temp(path: Path) -> tuple[int, str]:
    """A new empty file `.NAME.XXXXXXXX.tmp` beside `path`, created as any new file is (the umask applies)."""
    while True:
        tmp = str(path.with_name(temp_name(path.name)))
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
