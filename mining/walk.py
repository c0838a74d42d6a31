"""Walking a repository's history with pygit2: commits in, one `CommitPair` per changed file out.

`walk(repo_path)` is the PyDriller-like generator API; `mine_commits` is the same work on a range of
commits, used by the parallel runner (`patchcoder.mining.run`). No `git` subprocess is started.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import os
from collections.abc import Iterator
from datetime import date, datetime, timezone

import pygit2
from pygit2.enums import DiffFind, FileMode, RepositoryOpenFlag

from patchcoder.ground.errors import PatchcoderError
from patchcoder.ground.languages import language_of
from patchcoder.ground.sstub import classify_sstub
from patchcoder.mining.filters import (
    Deduplicator,
    DropCounter,
    FilterConfig,
    content_reason,
    is_bot,
    message_reason,
    path_reason,
)

ZERO_SHA = "0" * 40
_CHANGE = {"A": "A", "M": "M", "D": "D", "R": "R", "C": "A"}


class NotARepository(PatchcoderError):
    """The path is not a git repository (work tree or bare)."""


class BadHead(PatchcoderError):
    """The repository's HEAD, or the branch it names, is damaged (a truncated reference file, say)."""


@dataclasses.dataclass
class CommitPair:
    """One changed file in one commit: the file before and after, with the commit's metadata.

    `diff` (the file's unified diff, as `git diff` prints it) is formatted on first access.
    """

    repo: str
    commit: str
    parent: str
    author_time: int
    message: str
    path: str
    old_path: str | None
    change: str  # A, M, D or R
    language: str | None
    old: str | None
    new: str | None
    old_blob: str
    new_blob: str
    added: int
    deleted: int
    hunks: int
    sstub: str | None = None
    _patch: _FileDiff | None = dataclasses.field(default=None, repr=False, compare=False)

    @functools.cached_property
    def diff(self) -> str:
        return self._patch.text if self._patch is not None else ""

    def to_row(self) -> dict:
        """The row written to parquet (DESIGN.md §2)."""
        row = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if not f.name.startswith("_")}
        row["diff"] = self.diff
        return row


def open_repository(path: str | os.PathLike) -> pygit2.Repository:
    """Open a work tree or bare repository at exactly `path` (no search upwards)."""
    try:
        return pygit2.Repository(os.fspath(path), RepositoryOpenFlag.NO_SEARCH)
    except (pygit2.GitError, KeyError, ValueError) as exc:
        raise NotARepository(f"{os.fspath(path)} is not a git repository") from exc


def repository_name(path: str | os.PathLike) -> str:
    """A short name for the `repo` column: the folder name without `.git`."""
    path = os.path.abspath(os.fspath(path)).rstrip("/")
    name = os.path.basename(path)
    if name == ".git":
        name = os.path.basename(os.path.dirname(path))
    return name[:-4] if name.endswith(".git") and len(name) > 4 else name


def resolve_head(repo: pygit2.Repository, branch: str | None = None) -> str | None:
    """The commit sha that `branch` (default HEAD) points at; None for an empty repository."""
    if branch is None:
        try:
            if repo.head_is_unborn or repo.is_empty:
                return None
            return str(repo.head.target)
        except (KeyError, ValueError, pygit2.GitError, pygit2.InvalidSpecError) as exc:
            raise BadHead(f"{repo.path}: its HEAD cannot be read ({exc})") from exc
    try:
        obj = repo.revparse_single(branch)
        return str(obj.peel(pygit2.Commit).id)
    except (KeyError, ValueError, pygit2.GitError, pygit2.InvalidSpecError) as exc:
        raise PatchcoderError(f"{branch!r} names no commit in {repo.path}") from exc


def is_bare_date(text: str) -> bool:
    """An ISO date without a time (`2024-01-31`)."""
    try:
        date.fromisoformat(text)
        return True
    except ValueError:
        return False


def _timestamp(value: str | datetime | int | None, *, end_of_day: bool = False) -> int | None:
    """Seconds since the epoch (UTC when no zone is given). A bare date (`2024-01-31`) is the first second of
    that day, or with `end_of_day` its last, so that `--until` a date keeps the commits made on it."""
    if value is None or isinstance(value, int):
        return value
    if isinstance(value, str):
        bare_date = is_bare_date(value)
        value = datetime.fromisoformat(value)
        if bare_date and end_of_day:
            value = value.replace(hour=23, minute=59, second=59)
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return int(value.timestamp())


def list_commits(
    repo: pygit2.Repository,
    head: str,
    first_parent: bool = True,
    since: str | datetime | int | None = None,
    until: str | datetime | int | None = None,
    drops: DropCounter | None = None,
) -> list[str]:
    """Commit shas reachable from `head`, oldest first, filtered by committer time.

    The first-parent walk follows `parent_ids[0]` by hand, so a shallow boundary or a corrupt
    commit ends the walk there (counted) instead of failing it.
    """
    drops = drops if drops is not None else DropCounter()
    since_ts, until_ts = _timestamp(since), _timestamp(until, end_of_day=True)
    shas: list[str] = []
    if first_parent:
        oid = pygit2.Oid(hex=head)
        while True:
            try:
                commit = repo[oid]
            except (KeyError, ValueError, pygit2.GitError):
                # An unreadable head leaves nothing of the repository to mine; a missing parent is reported
                # for its child by `pairs_of_commit` (missing_parent), so the walk simply ends there.
                if not shas:
                    drops["unreadable_repository"] += 1
                break
            shas.append(str(commit.id))
            parents = commit.parent_ids
            if not parents:
                break
            oid = parents[0]
        shas.reverse()
    else:
        try:
            walker = repo.walk(pygit2.Oid(hex=head), pygit2.enums.SortMode.TOPOLOGICAL | pygit2.enums.SortMode.REVERSE)
            shas = [str(c.id) for c in walker]
        except (KeyError, ValueError, pygit2.GitError):
            drops["corrupt_commit"] += 1
            return list_commits(repo, head, True, since, until, drops)
    if since_ts is not None or until_ts is not None:
        kept = []
        for sha in shas:
            t = repo[sha].commit_time
            if (since_ts is not None and t < since_ts) or (until_ts is not None and t > until_ts):
                drops["outside_dates"] += 1
            else:
                kept.append(sha)
        shas = kept
    return shas


def shallow_boundary(repo: pygit2.Repository) -> frozenset[str]:
    """Commits whose parents a shallow clone does not have (libgit2 shows them as root commits)."""
    try:
        with open(os.path.join(repo.path, "shallow")) as f:
            return frozenset(line.strip() for line in f if line.strip())
    except OSError:
        return frozenset()


def _decode_path(file: pygit2.DiffFile) -> str | None:
    try:
        return file.raw_path.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _message(commit: pygit2.Commit) -> str:
    try:
        return commit.message
    except (UnicodeDecodeError, LookupError):  # bytes not in the header's encoding, or an encoding Python lacks
        return commit.raw_message.decode("utf-8", "replace")


def _author(commit: pygit2.Commit) -> tuple[str, str]:
    """The author's name and e-mail, decoded as `_message` decodes the message."""
    author = commit.author
    try:
        return author.name or "", author.email or ""
    except (UnicodeDecodeError, LookupError):
        return author.raw_name.decode("utf-8", "replace"), author.raw_email.decode("utf-8", "replace")


@dataclasses.dataclass(slots=True)
class _Blob:
    """One side of a file change, read and checked once."""

    blob: pygit2.Blob | None  # None for the missing side of an addition or deletion
    text: str | None
    head: bytes
    reason: str | None  # why the file cannot be kept, if it cannot


_EMPTY = _Blob(None, None, b"", None)


class BlobReader:
    """Reads each blob of a walk once: size from the object header (a huge blob is never inflated),
    then content filters and UTF-8 decoding, all cached by blob id.

    Consecutive commits share blobs (a change's new side is the next change's old side), so the
    cache halves the reads; it holds at most `budget` bytes of blob data.
    """

    def __init__(self, repo: pygit2.Repository, config: FilterConfig, budget: int = 64 << 20):
        self.repo, self.config, self.budget = repo, config, budget
        self._cache: collections.OrderedDict[bytes, tuple[_Blob, int]] = collections.OrderedDict()
        self._bytes = 0

    def get(self, oid: pygit2.Oid) -> _Blob:
        if oid.raw == _ZERO_RAW:
            return _EMPTY
        hit = self._cache.get(oid.raw)
        if hit is not None:
            self._cache.move_to_end(oid.raw)
            return hit[0]
        entry, size = self._read(oid)
        self._cache[oid.raw] = (entry, size)
        self._bytes += size
        while self._bytes > self.budget and len(self._cache) > 1:
            _, (_, evicted) = self._cache.popitem(last=False)
            self._bytes -= evicted
        return entry

    def _read(self, oid: pygit2.Oid) -> tuple[_Blob, int]:
        try:
            _, size = self.repo.odb.read_header(oid)
            if size > self.config.max_file_bytes:
                return _Blob(None, None, b"", "oversized_file"), 0
            blob = self.repo[oid]
            data = blob.data
        except (KeyError, ValueError, pygit2.GitError):
            return _Blob(None, None, b"", "missing_object"), 0
        if reason := content_reason(data, self.config):
            return _Blob(None, None, b"", reason), 0
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            return _Blob(None, None, b"", "undecodable"), 0
        return _Blob(blob, text, data[:200], None), size + len(text)


_ZERO_RAW = b"\0" * 20


def pairs_of_commit(
    repo: pygit2.Repository, commit: pygit2.Commit, repo_name: str, config: FilterConfig, drops: DropCounter,
    boundary: frozenset[str] = frozenset(),
    blobs: BlobReader | None = None,
) -> Iterator[CommitPair]:
    """The kept file changes of one commit against its first parent (duplicates not yet removed).

    Commit-level drops are counted once per commit; a commit that passes them counts as `commits_passed`.
    """
    parents = commit.parent_ids
    if str(commit.id) in boundary:
        drops["missing_parent"] += 1
        return
    if len(parents) > 1 and config.skip_merges:
        drops["merge"] += 1
        return
    if config.skip_bots and is_bot(*_author(commit)):
        drops["bot_author"] += 1
        return
    message = _message(commit)
    if config.skip_auto_messages and (reason := message_reason(message)):
        drops[reason] += 1
        return
    try:
        parent_tree = repo[parents[0]].tree if parents else None
    except (KeyError, ValueError, pygit2.GitError):
        drops["missing_parent"] += 1
        return
    try:
        if parent_tree is None:
            diff = commit.tree.diff_to_tree(swap=True, context_lines=3)
        else:
            diff = repo.diff(parent_tree, commit.tree, context_lines=3)
        # A renamed file is two deltas until find_similar pairs them; it costs, so only near the limit.
        if len(diff) > 2 * config.max_files:
            drops["too_many_files"] += 1
            return
        diff.find_similar(flags=DiffFind.FIND_RENAMES)
        if len(diff) > config.max_files:
            drops["too_many_files"] += 1
            return
        deltas = list(diff.deltas)
    except (KeyError, ValueError, pygit2.GitError):
        drops["corrupt_commit"] += 1
        return
    drops["commits_passed"] += 1
    blobs = blobs if blobs is not None else BlobReader(repo, config)
    sha = str(commit.id)
    parent = str(parents[0]) if parents else ZERO_SHA
    for delta in deltas:
        try:
            pair = _pair_of_delta(blobs, delta, config, drops)
        except Exception:  # a damaged object must never end the run: count it and go on
            drops["file_error"] += 1
            continue
        if pair is None:
            continue
        path, old_path, change, language, old, new, patch, added, deleted, hunks, sstub = pair
        yield CommitPair(
            repo=repo_name, commit=sha, parent=parent, author_time=int(commit.author.time), message=message,
            path=path, old_path=old_path, change=change, language=language, old=old, new=new,
            old_blob=str(delta.old_file.id), new_blob=str(delta.new_file.id),
            added=added, deleted=deleted, hunks=hunks, sstub=sstub, _patch=patch,
        )


def _pair_of_delta(blobs: BlobReader, delta, config: FilterConfig, drops: DropCounter):
    status = delta.status_char()
    if status == "T":
        drops["typechange"] += 1
        return None
    change = _CHANGE.get(status)
    if change is None:
        drops["file_error"] += 1
        return None
    old_file, new_file = delta.old_file, delta.new_file
    modes = (old_file.mode, new_file.mode)
    if FileMode.COMMIT in modes:
        drops["submodule"] += 1
        return None
    if FileMode.LINK in modes:
        drops["symlink"] += 1
        return None
    new_path, old_path = _decode_path(new_file), _decode_path(old_file)
    if new_path is None or old_path is None:
        drops["non_utf8_path"] += 1
        return None
    path = new_path
    if reason := path_reason(path, config):
        drops[reason] += 1
        return None
    language = language_of(path)
    needs_shebang = language is None and "." not in os.path.basename(path)
    if not needs_shebang and not _language_kept(language, config):
        drops["language"] += 1
        return None
    if old_file.id == new_file.id:
        drops["unchanged_text"] += 1
        return None
    old = blobs.get(old_file.id) if change != "A" else _EMPTY
    new = blobs.get(new_file.id) if change != "D" else _EMPTY
    if reason := old.reason or new.reason:
        drops[reason] += 1
        return None
    if needs_shebang:
        language = language_of(path, new.head or old.head)
        if not _language_kept(language, config):
            drops["language"] += 1
            return None
    # From the blobs already in memory: libgit2 would otherwise read both again for the patch.
    patch = pygit2.Patch.create_from(old.blob, new.blob, old_as_path=old_path, new_as_path=new_path,
                                     context_lines=3)
    _, added, deleted = patch.line_stats
    if added + deleted > config.max_diff_lines:
        drops["oversized_diff"] += 1
        return None
    # A single-statement bug fix changes exactly one line; only those are worth classifying.
    sstub = classify_sstub(old.text, new.text, language) if added == deleted == 1 and change in "MR" else None
    return (path, old_path if change != "A" else None, change, language, old.text, new.text,
            _FileDiff(patch, delta), added, deleted, len(patch.hunks), sstub)


class _FileDiff:
    """A patch computed from in-memory blobs, formatted on demand with the header `git diff` prints
    for the delta (modes, rename, new/deleted file), which a blob-to-blob patch does not know."""

    __slots__ = ("patch", "delta")

    def __init__(self, patch: pygit2.Patch, delta: pygit2.DiffDelta):
        self.patch, self.delta = patch, delta

    @property
    def text(self) -> str:
        body = self.patch.text
        at = body.find("\n@@ ")
        body = body[at + 1:] if at >= 0 else ""
        return _git_header(self.delta) + body


def _git_header(delta: pygit2.DiffDelta) -> str:
    old, new = delta.old_file, delta.new_file
    old_path = old.raw_path.decode("utf-8", "surrogateescape")
    new_path = new.raw_path.decode("utf-8", "surrogateescape")
    status = delta.status_char()
    lines = [f"diff --git a/{old_path} b/{new_path}"]
    old_id, new_id = str(old.id)[:7], str(new.id)[:7]
    if status == "A":
        lines += [f"new file mode {new.mode:o}", f"index {old_id}..{new_id}"]
    elif status == "D":
        lines += [f"deleted file mode {old.mode:o}", f"index {old_id}..{new_id}"]
    else:
        if status == "R":
            lines += [f"similarity index {delta.similarity}%", f"rename from {old_path}", f"rename to {new_path}"]
        if old.mode != new.mode:
            lines += [f"old mode {old.mode:o}", f"new mode {new.mode:o}", f"index {old_id}..{new_id}"]
        else:
            lines.append(f"index {old_id}..{new_id} {new.mode:o}")
    lines.append(f"--- a/{old_path}" if status != "A" else "--- /dev/null")
    lines.append(f"+++ b/{new_path}" if status != "D" else "+++ /dev/null")
    return "\n".join(lines) + "\n"


def _language_kept(language: str | None, config: FilterConfig) -> bool:
    if language is None:
        return config.keep_unknown_language
    return config.languages is None or language in config.languages


def mine_commits(
    repo: pygit2.Repository, shas: list[str], repo_name: str, config: FilterConfig, drops: DropCounter,
    progress=None,
) -> Iterator[CommitPair]:
    """`pairs_of_commit` over a list of commits; a commit that cannot be read is counted and skipped."""
    boundary = shallow_boundary(repo)
    blobs = BlobReader(repo, config)
    for sha in shas:
        drops["commits_seen"] += 1
        try:
            commit = repo[sha]
            yield from pairs_of_commit(repo, commit, repo_name, config, drops, boundary, blobs)
        except (LookupError, ValueError, pygit2.GitError):  # KeyError, UnicodeError and codec lookups included
            drops["corrupt_commit"] += 1
        if progress is not None:
            progress(1)


def walk(
    repo_path: str | os.PathLike,
    *,
    branch: str | None = None,
    first_parent: bool = True,
    since: str | datetime | int | None = None,
    until: str | datetime | int | None = None,
    config: FilterConfig | None = None,
    drops: DropCounter | None = None,
    **filters,
) -> Iterator[CommitPair]:
    """Yield the kept `CommitPair`s of a repository, oldest commit first, duplicates removed.

    Keyword arguments not listed are `FilterConfig` fields (e.g. `languages=("python",)`,
    `max_files=20`). Pass a `DropCounter` as `drops` to read what was filtered and why.
    """
    config = dataclasses.replace(config or FilterConfig(), **filters)
    if config.languages is not None:
        config = dataclasses.replace(config, languages=tuple(config.languages))
    drops = drops if drops is not None else DropCounter()
    repo = open_repository(repo_path)
    head = resolve_head(repo, branch)
    if head is None:
        drops["empty_repository"] += 1
        return
    shas = list_commits(repo, head, first_parent, since, until, drops)
    dedup = Deduplicator(config.near_duplicates)
    for pair in mine_commits(repo, shas, repository_name(repo_path), config, drops):
        reason = dedup.check(pair.old_blob, pair.new_blob, pair.diff if config.near_duplicates else "")
        if reason:
            drops[reason] += 1
            continue
        yield pair
