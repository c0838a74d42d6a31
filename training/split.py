"""Train / valid / test splits of mined (or synthetic) pairs, by repository.

A repository lives in exactly one split, so the model is measured on code it never saw; and an
identical change (the same old_blob → new_blob, e.g. a cherry-pick into a fork) is kept only in the
most held-out split it occurs in (test before valid before train).

Repositories are taken in an order fixed by (seed, name) and poured into test, then valid, until each
holds its fraction of the rows; the rest is train. Named repositories can be pinned to a split.
"""

from __future__ import annotations

import collections
import hashlib
import json
import os
import shutil
from pathlib import Path

from patchcoder.ground.errors import PatchcoderError
from patchcoder.mining.pool import progress_bar
from patchcoder.mining.shards import read_shard, shard_files, write_shard

SPLITS = ("train", "valid", "test")
WORK = ".split.tmp"  # the working folder inside --out while the shards are written
_PRIORITY = {"test": 0, "valid": 1, "train": 2}


def assign_repositories(rows_per_repo: dict[str, int], valid: float, test: float, seed: int = 0,
                        pinned: dict[str, str] | None = None) -> dict[str, str]:
    """repo -> split, with test and valid filled to their fraction of the rows (at least one repo each
    when there are three or more repositories), the rest train."""
    pinned = dict(pinned or {})
    unknown = sorted(set(pinned) - set(rows_per_repo))
    if unknown:
        raise PatchcoderError(f"pinned repositories not found in the data: {', '.join(unknown)}")
    total = sum(rows_per_repo.values())
    free = sorted((r for r in rows_per_repo if r not in pinned),
                  key=lambda r: hashlib.blake2b(f"{seed}\0{r}".encode(), digest_size=8).digest())
    assignment = dict(pinned)
    filled = collections.Counter()
    for repo, split in pinned.items():
        filled[split] += rows_per_repo[repo]
    for split, fraction in (("test", test), ("valid", valid)):
        target = fraction * total
        while free and fraction > 0 and len(free) > 1 and (filled[split] < target or not filled[split]):
            repo = free.pop(0)
            assignment[repo] = split
            filled[split] += rows_per_repo[repo]
    for repo in free:
        assignment[repo] = "train"
    return assignment


def split_by_repository(data: list[str | os.PathLike], out: str | os.PathLike, *, valid: float = 0.05,
                        test: float = 0.05, seed: int = 0, pinned: dict[str, str] | None = None,
                        show_progress: bool = False) -> dict:
    """Write out/{train,valid,test}/shards/**.parquet and out/split.json; returns the summary."""
    files = [f for d in data for f in shard_files(d)]
    if not files:
        raise PatchcoderError(f"no parquet shards under {', '.join(map(str, data))}")
    out = Path(out)
    if (out / "split.json").exists():
        raise PatchcoderError(f"{out} already holds a split; choose another --out")
    if out.exists() and (not out.is_dir() or any(p.name != WORK for p in out.iterdir())):
        raise PatchcoderError(f"{out} is not an empty folder; remove it or choose another --out")

    # Pass 1: only the small columns, to assign repositories and find changes repeated across splits.
    rows_per_repo: collections.Counter = collections.Counter()
    keys_by_repo: dict[str, set] = collections.defaultdict(set)
    with progress_bar("shards", transient=True, enabled=show_progress) as progress:
        task = progress.add_task("split: reading", total=len(files))
        for f in files:
            table = read_shard(f, ["repo", "old_blob", "new_blob"])
            if table.column("repo").null_count:
                raise PatchcoderError(f"{f}: rows without a repository; every row needs one to be split by repository")
            for repo, old_blob, new_blob in zip(*(table.column(c).to_pylist() for c in table.column_names), strict=True):
                rows_per_repo[repo] += 1
                keys_by_repo[repo].add((old_blob, new_blob))
            progress.advance(task)
    assignment = assign_repositories(dict(rows_per_repo), valid, test, seed, pinned)
    home: dict[tuple[str, str], str] = {}  # each change's most held-out split
    for repo, keys in keys_by_repo.items():
        split = assignment[repo]
        for key in keys:
            if key not in home or _PRIORITY[split] < _PRIORITY[home[key]]:
                home[key] = split

    # Pass 2: copy rows to their split, one output shard per input shard and split, into a working folder inside
    # `out` (the same file system, whatever `out` is: a mount, a link, "."); the splits move up only once all is
    # written, so an interrupted split leaves no shards a later command would read as a split.
    counts = {s: collections.Counter() for s in SPLITS}
    taken: set[tuple[str, str]] = set()
    work = out / WORK
    shutil.rmtree(work, ignore_errors=True)  # what an interrupted split left
    work.mkdir(parents=True)
    with progress_bar("shards", transient=True, enabled=show_progress) as progress:
        task = progress.add_task("split: writing", total=len(files))
        for index, f in enumerate(files):
            _copy_rows(index, read_shard(f).to_pylist(), assignment, home, taken, counts, work)
            progress.advance(task)
    summary = _summary(seed, valid, test, assignment, counts)
    for split in SPLITS:
        if (work / split).exists():
            os.replace(work / split, out / split)
    (work / "split.json").write_text(json.dumps(summary, indent=1))
    os.replace(work / "split.json", out / "split.json")  # last: it says the split is whole
    work.rmdir()
    return summary


def _summary(seed: int, valid: float, test: float, assignment: dict[str, str], counts: dict) -> dict:
    return {
        "seed": seed, "valid": valid, "test": test,
        "repositories": {s: sorted(r for r, a in assignment.items() if a == s) for s in SPLITS},
        "rows": {s: counts[s]["rows"] for s in SPLITS},
        "dropped_as_repeated_elsewhere": {s: {k[len("dropped_in_"):]: v for k, v in counts[s].items()
                                              if k.startswith("dropped_in_")} for s in SPLITS},
        "dropped_as_repeated_within": {s: counts[s]["repeated"] for s in SPLITS},
    }


def _copy_rows(index: int, rows: list[dict], assignment: dict[str, str], home: dict, taken: set, counts: dict,
               out: Path) -> None:
    """One input shard's rows into their splits' shards `index`, each change once, in its most held-out split."""
    by_split = collections.defaultdict(list)
    for row in rows:
        split = assignment[row["repo"]]
        key = (row["old_blob"], row["new_blob"])
        if home[key] != split:
            counts[split]["dropped_in_" + home[key]] += 1
            continue
        if key in taken:  # the same change twice in one split (e.g. two mining runs)
            counts[split]["repeated"] += 1
            continue
        taken.add(key)
        by_split[split].append(row)
        counts[split]["rows"] += 1
    for split, kept in by_split.items():
        write_shard(out / split / "shards" / f"{index:05d}.parquet", kept)
