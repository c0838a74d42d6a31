"""The miner's output on disk: zstd parquet shards written atomically, and a manifest that says what is done.

Layout of an output folder:
    manifest.json                       what was asked, which work units are finished, their counts
    shards/<repo>/<unit>.parquet        rows of one work unit (a range of one repository's commits)
A shard exists only once it is complete (temp file + rename), and the manifest is rewritten the same
way after each shard, so a killed run leaves nothing half-written that a later `--resume` would trust.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

MANIFEST = "manifest.json"
FORMAT = "patchcoder-mined/1"

SCHEMA = pa.schema([
    ("repo", pa.string()),
    ("commit", pa.string()),
    ("parent", pa.string()),
    ("author_time", pa.int64()),
    ("message", pa.string()),
    ("path", pa.string()),
    ("old_path", pa.string()),
    ("change", pa.string()),
    ("language", pa.string()),
    ("old", pa.large_string()),
    ("new", pa.large_string()),
    ("old_blob", pa.string()),
    ("new_blob", pa.string()),
    ("diff", pa.large_string()),
    ("added", pa.int32()),
    ("deleted", pa.int32()),
    ("hunks", pa.int32()),
    ("sstub", pa.string()),
])


# zstd level 3 is about half the size of level 1 on mined code at the same write speed (measured).
_PARQUET = dict(compression="zstd", compression_level=3, row_group_size=1024)


def _atomic_write(path: Path, write) -> None:
    """Write through `write(tmp_path)` to a temp file beside `path`, fsync, then rename over it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_shard(path: Path, rows: list[dict]) -> None:
    """Write `rows` (dicts with the SCHEMA's columns) as one zstd parquet file, atomically."""
    table = pa.Table.from_pylist(rows, schema=SCHEMA)
    _atomic_write(path, lambda tmp: pq.write_table(table, tmp, **_PARQUET))


def atomic_write_text(path: Path, text: str) -> None:
    _atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def read_dedup_keys(path: Path) -> list[tuple[str, str]]:
    """The (old_blob, new_blob) pairs of a finished shard, to rebuild the duplicate filter on resume."""
    table = pq.read_table(path, columns=["old_blob", "new_blob"])
    return list(zip(table.column("old_blob").to_pylist(), table.column("new_blob").to_pylist(), strict=True))


def read_manifest(out: Path) -> dict | None:
    path = out / MANIFEST
    if not path.exists():
        return None
    with open(path) as f:
        manifest = json.load(f)
    if manifest.get("format") != FORMAT:
        raise ValueError(f"{path} is not a patchcoder mining manifest")
    return manifest


def write_manifest(out: Path, manifest: dict) -> None:
    text = json.dumps(manifest, indent=1, sort_keys=True)
    _atomic_write(out / MANIFEST, lambda tmp: Path(tmp).write_text(text))


def remove_stale_temp_files(out: Path) -> int:
    """Delete what a killed run left unfinished (temp files, unanswered dedup verdicts); returns how many."""
    removed = 0
    for tmp in [*out.rglob(".*.tmp"), *out.glob(".verdicts/*.json")]:
        tmp.unlink()
        removed += 1
    return removed


def shard_files(out: str | os.PathLike) -> list[str]:
    """Every finished shard under `out`, in a stable order (for `datasets.load_dataset`)."""
    return sorted(str(p) for p in Path(out).rglob("*.parquet"))
