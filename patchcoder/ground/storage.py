"""Where a sharded output lives (mine, synth, tokenize): a folder path, or an fsspec URL (s3://, gs://, file://, …).

A path is written as it always was: each file whole, by temp file + rename (atomic.py); fsspec is not imported.
A URL goes through fsspec (`fsspec.core.url_to_fs`), whose packages (s3fs, gcsfs, adlfs, …) are the storage
clients. A file for a URL is built in memory and then stored whole:
- on an object store, in one PUT to its final key, which is atomic: a reader sees the old object or the whole new
  one, never a part;
- on fsspec's local file system (file://), where a write in place could be cut short, by a temp file beside it
  and a rename, as for a path.
Either way the manifest (manifest.py) lists a unit only once its files are stored, so a crash loses at most the
units that were not finished, and `--resume` redoes exactly those (writing their files again over any left).

A Location pickles as its text: each worker (a local process, a Ray task) opens the store itself.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from patchcoder.ground.atomic import TEMP_SUFFIX, atomic_write, remove_temp_files, temp_name
from patchcoder.ground.errors import UsageError

_URL = re.compile(r"([A-Za-z][A-Za-z0-9+.-]+)://")
# The extras that install a scheme's package (pyproject.toml); other schemes name the package itself.
_EXTRAS = {"s3": "patchcoder[s3]", "s3a": "patchcoder[s3]", "gs": "patchcoder[gcs]", "gcs": "patchcoder[gcs]"}


def url_scheme(text: str) -> str | None:
    """The scheme of a URL such as s3://bucket/prefix ("s3"), or None for a path (C:/data and a/b://c too)."""
    match = _URL.match(text)
    return match.group(1).lower() if match else None


def check_url(url: str) -> None:
    """Raise a one-line UsageError unless fsspec can open `url`'s scheme here (known, and its package installed)."""
    from fsspec.registry import get_filesystem_class, known_implementations

    scheme = url_scheme(url)
    try:
        get_filesystem_class(scheme)
    except ValueError:
        raise UsageError(f"{url}: no fsspec file system is known for {scheme}:// "
                         "(give a folder path, or a URL such as s3://BUCKET/PREFIX)") from None
    except ImportError:
        package = known_implementations[scheme]["class"].split(".")[0]
        install = f"'{_EXTRAS[scheme]}'" if scheme in _EXTRAS else package
        raise UsageError(f"{url}: {scheme}:// needs the package {package}, which is not installed: "
                         f"pip install {install}") from None


class Location:
    """A folder or file of a sharded output (or of its input): a local path, or an fsspec URL.

    `location / "shards/a.parquet"` is the location below it; `write`, `read_bytes`, `exists`, `files`, …
    work alike on both, and `for_arrow()` gives pyarrow's readers what they take.
    """

    def __init__(self, where: str | os.PathLike | Location):
        if isinstance(where, Location):
            self.url, self.path, self._fs = where.url, where.path, where._fs
            return
        text = os.fspath(where)
        self._fs = None  # (fsspec file system, its path), opened when first used
        if url_scheme(text) is None:
            self.url, self.path = None, Path(text)
        else:
            scheme, rest = text.split("://", 1)
            self.url, self.path = f"{scheme}://{rest.rstrip('/') or rest}", None

    def __str__(self) -> str:
        return self.url if self.path is None else str(self.path)

    def __repr__(self) -> str:
        return f"Location({str(self)!r})"

    def __eq__(self, other) -> bool:
        return isinstance(other, Location) and str(self) == str(other)

    def __hash__(self) -> int:
        return hash(str(self))

    def __reduce__(self):
        return Location, (str(self),)  # the text travels, not an open file system

    def __truediv__(self, relative: str) -> Location:
        if self.path is not None:
            return Location(self.path / relative)
        child = Location(f"{self.url}/{relative}")
        if self._fs is not None:
            child._fs = (self._fs[0], f"{self._fs[1].rstrip('/')}/{relative}")
        return child

    @property
    def is_url(self) -> bool:
        return self.path is None

    @property
    def name(self) -> str:
        return self.path.name if self.path is not None else self.url.rsplit("/", 1)[-1]

    def _open(self):
        """(fsspec file system, path in it) of a URL; a scheme that cannot be opened here is one line."""
        if self._fs is None:
            import fsspec.core

            check_url(self.url)
            self._fs = fsspec.core.url_to_fs(self.url)
        return self._fs

    def _renames(self) -> bool:
        """Is the URL's store a file system reached by path (file://), where rename is atomic and a write in place is not?"""
        from fsspec.implementations.local import LocalFileSystem

        return isinstance(self._open()[0], LocalFileSystem)

    # ---- reading

    def exists(self) -> bool:
        if self.path is not None:
            return self.path.exists()
        fs, path = self._open()
        return fs.exists(path)

    def is_dir(self) -> bool:
        if self.path is not None:
            return self.path.is_dir()
        fs, path = self._open()
        return fs.isdir(path)

    def has_files(self) -> bool:
        """Does the folder hold anything?"""
        if self.path is not None:
            return self.path.is_dir() and any(self.path.iterdir())
        fs, path = self._open()
        try:
            return bool(fs.ls(path, detail=False))
        except FileNotFoundError:
            return False

    def read_bytes(self) -> bytes:
        if self.path is not None:
            return self.path.read_bytes()
        fs, path = self._open()
        return fs.cat_file(path)

    def files(self, suffix: str) -> list[Location]:
        """Every file under this folder whose name ends with `suffix`, at any depth, ordered by their text."""
        if self.path is not None:
            return sorted((Location(p) for p in self.path.rglob(f"*{suffix}") if p.is_file()), key=str)
        fs, root = self._open()
        root = root.rstrip("/")
        found = [p for p in fs.find(root) if p.endswith(suffix) and p.startswith(root + "/")]
        return sorted((self / p[len(root) + 1:] for p in found), key=str)

    def relative_to(self, folder: Location) -> str:
        """This location's path below `folder`, with / between its parts."""
        if self.path is not None:
            return self.path.relative_to(folder.path).as_posix()
        prefix = folder.url + "/"
        if not self.url.startswith(prefix):
            raise ValueError(f"{self} is not under {folder}")
        return self.url[len(prefix):]

    def for_arrow(self) -> tuple[str, object | None]:
        """(source, filesystem) as pyarrow's readers take them: `pq.read_table(source, filesystem=filesystem)`."""
        if self.path is not None:
            return str(self.path), None
        fs, path = self._open()
        return path, fs

    def resolve(self) -> Location:
        """The absolute form of a path (a URL is absolute already)."""
        return Location(self.path.resolve()) if self.path is not None else self

    # ---- writing

    def make_folder(self) -> None:
        """Make the folder (and its parents); an object store has no folders, only keys."""
        if self.path is not None:
            self.path.mkdir(parents=True, exist_ok=True)
        elif self._renames():
            fs, path = self._open()
            fs.makedirs(path, exist_ok=True)

    def write(self, data: bytes | str | Callable[[BinaryIO], object]) -> None:
        """Store the whole file: bytes, a str (UTF-8), or a writer `data(f)` that writes it to the binary file `f`
        (e.g. `pq.write_table(table, f)`). Atomic as the module docstring says."""
        if self.path is not None:
            atomic_write(self.path, _through_file(data) if callable(data) else data)
            return
        if callable(data):
            import io

            buffer = io.BytesIO()
            data(buffer)
            data = buffer.getvalue()
        elif isinstance(data, str):
            data = data.encode("utf-8")
        fs, path = self._open()
        if not self._renames():
            fs.pipe_file(path, data)  # one PUT
            return
        folder, name = path.rstrip("/").rsplit("/", 1)
        fs.makedirs(folder, exist_ok=True)
        tmp = f"{folder}/{temp_name(name)}"
        try:
            fs.pipe_file(tmp, data)
            fs.mv(tmp, path)
        except BaseException:
            if fs.exists(tmp):
                fs.rm_file(tmp)
            raise

    def remove_temp_files(self) -> int:
        """Delete the temp files that killed writers left under this folder; returns how many (an object store
        has none: its writes leave nothing behind)."""
        if self.path is not None:
            return remove_temp_files(self.path)
        if not self._renames():
            return 0
        fs, root = self._open()
        temps = [p for p in fs.find(root) if p.rsplit("/", 1)[-1].startswith(".") and p.endswith(TEMP_SUFFIX)]
        for tmp in temps:
            fs.rm_file(tmp)
        return len(temps)


def _through_file(writer: Callable[[BinaryIO], object]) -> Callable[[str], None]:
    """`writer(f)` as atomic_write's writer of the temp path."""

    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:
            writer(f)

    return write
