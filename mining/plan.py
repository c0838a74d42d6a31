"""The plan of a sharded run: its units of work, in plan order; here also the repositories a mine run walks.

A unit is what one worker does at a time and what one shard holds: a range of one repository's commits
(mine), a batch of source files (synth), one mined shard (tokenize). Plan order decides everything that
must not depend on the number of workers: which duplicate is kept, and the shards' names.
"""

from __future__ import annotations

import collections
import dataclasses
import os
import re
from collections.abc import Sequence

from patchcoder.ground.errors import PatchcoderError, UsageError
from patchcoder.mining.filters import DropCounter
from patchcoder.mining.walk import (
    BadHead,
    NotARepository,
    list_commits,
    open_repository,
    repository_name,
    resolve_head,
)


@dataclasses.dataclass(frozen=True)
class Unit:
    """One unit of work: its `items` make one shard."""

    key: str  # its entry in the manifest, and its shard's name under shards/
    items: tuple  # what to do: commit shas (mine), source files (synth), a mined shard's path (tokenize)
    source: object = None  # where the items come from (mine: the Repository)

    @property
    def shard(self) -> str:
        return f"shards/{self.key}.parquet"


def cut(items: Sequence, size: int, *, folder: str | None = None, source: object = None) -> list[Unit]:
    """`items` in consecutive units of at most `size`, keyed `[folder/]00000`, `00001`, … in plan order."""
    prefix = f"{folder}/" if folder is not None else ""
    return [Unit(f"{prefix}{i // size:05d}", tuple(items[i:i + size]), source) for i in range(0, len(items), size)]


# ---------------------------------------------------------------------------------------------
# A mine run's plan: repositories, their heads, their commits cut into units


@dataclasses.dataclass(frozen=True)
class Repository:
    name: str  # the `repo` column
    folder: str  # the repository's shard folder: its name made safe for a file system, and unique
    path: str


def discover_repositories(paths: list[str]) -> tuple[list[Repository], DropCounter]:
    """Every repository named, or found one level inside a named directory, in the order given.

    An argument `NAME=PATH` names the repository (e.g. `pallets/click=/mirrors/click.git`); otherwise
    the name is the folder's. A named path that is neither a repository nor a directory holding one
    raises `UsageError` before any work starts; a non-repository inside a scanned directory is
    counted and skipped.
    """
    found: list[tuple[str, str]] = []
    drops = DropCounter()
    for raw in paths:
        given_name = None
        if "=" in raw and not os.path.exists(raw):
            given_name, _, raw = raw.partition("=")
            if not given_name.strip():
                raise UsageError(f"{given_name}={raw}: the name before '=' is empty")
        path = os.path.abspath(raw)
        try:
            open_repository(path)
            found.append((given_name or repository_name(path), path))
            continue
        except NotARepository:
            pass
        children = []
        if os.path.isdir(path):
            skipped = 0
            for entry in sorted(os.scandir(path), key=lambda e: e.name):
                if not entry.is_dir() or entry.name.startswith("."):
                    continue
                try:
                    open_repository(entry.path)
                    children.append((repository_name(entry.path), entry.path))
                except NotARepository:
                    skipped += 1
            if children:
                drops["not_a_repository"] += skipped
        if not children:
            raise UsageError(f"{raw} is not a git repository (nor a directory of repositories)")
        if given_name:
            raise UsageError(f"{given_name}={raw}: a name can only be given to a repository, not a directory")
        found.extend(children)
    return _unique_folders(found), drops


def _unique_folders(found: list[tuple[str, str]]) -> list[Repository]:
    """Names become shard folder names too: each made safe for a file system, visible to `datasets` (which skips
    folders starting with `.` or `__`), and unique, ignoring case; a repeated name gets the first free `-N`."""
    safe_names = [re.sub(r"[^A-Za-z0-9._+-]", "_", name).lstrip("._") or "repo" for name, _ in found]
    reserved = collections.Counter(safe.lower() for safe in safe_names)
    taken: set[str] = set()
    names: set[str] = set()
    named = []
    for (name, path), safe in zip(found, safe_names, strict=True):
        folder, suffix, n = safe, "", 1
        while folder.lower() in taken or (suffix and folder.lower() in reserved):
            n += 1
            suffix = f"-{n}"
            folder = safe + suffix
        taken.add(folder.lower())
        unique = name if name not in names else name + suffix  # the `repo` column: only an equal name is renamed
        names.add(unique)
        named.append(Repository(unique, folder, path))
    return named


def resolve_heads(repos: list[Repository], branch: str | None, drops: DropCounter,
                  notes: list[str] | None = None) -> dict[str, str | None]:
    """The commit each repository is walked from (None: nothing to walk, counted in `drops`), by folder.

    A repository whose HEAD cannot be read is skipped, counted as `bad_head` and named in `notes`."""
    heads = {}
    for repo in repos:
        try:
            heads[repo.folder] = resolve_head(open_repository(repo.path), branch)
        except BadHead as exc:
            drops["bad_head"] += 1
            heads[repo.folder] = None
            if notes is not None:
                notes.append(f"skipped: {exc}")
            continue
        except PatchcoderError:
            drops["bad_branch"] += 1
            heads[repo.folder] = None
        if heads[repo.folder] is None and branch is None:
            drops["empty_repository"] += 1
    if branch is not None and repos and drops["bad_branch"] == len(repos):
        raise UsageError(f"{branch!r} names no commit in any of the repositories")
    return heads


def plan_units(repos: list[Repository], heads: dict[str, str | None], first_parent: bool, since, until,
               commits_per_shard: int, drops: DropCounter) -> list[Unit]:
    """Each repository's commits from its head, oldest first, in units of `commits_per_shard`."""
    units = []
    for repo in repos:
        head = heads[repo.folder]
        if head is None:
            continue
        shas = list_commits(open_repository(repo.path), head, first_parent, since, until, drops)
        units.extend(cut(shas, commits_per_shard, folder=repo.folder, source=repo))
    return units
