"""Suggestions for a working tree: which files and lines to look at, and applying a patch safely.

`targets(...)` finds what to repair — the files changed against HEAD (or REV), or the staged ones, each
focused on its changed lines; or explicit paths, whole. `suggest(...)` runs a Repairer on them.
`apply_patches(...)` writes patches only after checking that every file still holds exactly the text
the suggestion was computed from, each file atomically; on any refusal nothing is written.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pygit2

from patchcoder.ground.atomic import atomic_write
from patchcoder.ground.errors import PatchcoderError, UsageError
from patchcoder.ground.languages import language_of

MAX_FILE_BYTES = 1_000_000


@dataclasses.dataclass
class Target:
    path: str  # as shown in diffs: relative to the repository root (or as given outside one)
    file: Path  # where it is on disk
    text: str
    focus: tuple[int, int] | None  # first and last changed line (0-based), None for a whole file


def find_repository(start: str | os.PathLike = ".") -> pygit2.Repository | None:
    found = pygit2.discover_repository(str(start))
    if found is None:
        return None
    repo = pygit2.Repository(found)
    return None if repo.is_bare else repo


def targets(paths: list[str], *, staged: bool = False, rev: str | None = None, cwd: str | os.PathLike = ".",
            notes: list[str] | None = None) -> tuple[list[Target], pygit2.Repository | None]:
    """What to repair, and the repository it is in (None outside one). Skipped files go to `notes`."""
    notes = notes if notes is not None else []
    repo = find_repository(cwd)
    if paths:
        return [t for p in paths if (t := _whole_file(p, repo, notes))], repo
    if repo is None:
        raise UsageError("not inside a git repository: name the files to look at")
    return _changed(repo, staged, rev, notes), repo


def _whole_file(path: str, repo, notes) -> Target | None:
    file = Path(path).resolve()
    if not file.is_file():
        raise UsageError(f"{path}: no such file")
    text = _read_text(file.read_bytes(), path, notes)
    if text is None:
        return None
    return Target(_shown(file, repo), file, text, None)


def _shown(file: Path, repo) -> str:
    """The path a diff names: relative to the repository, else to the current directory, else the
    absolute path without its leading "/" (as `git diff --no-index` names it), never "a//tmp/…"."""
    for base in ([Path(repo.workdir)] if repo is not None else []) + [Path.cwd()]:
        try:
            return file.relative_to(base.resolve()).as_posix()
        except ValueError:
            pass
    return file.as_posix().lstrip("/")


def _read_text(data: bytes, path: str, notes: list[str]) -> str | None:
    if len(data) > MAX_FILE_BYTES:
        notes.append(f"{path}: skipped, larger than {MAX_FILE_BYTES:,} bytes")
        return None
    if b"\0" in data[:8000]:
        notes.append(f"{path}: skipped, binary")
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        notes.append(f"{path}: skipped, not UTF-8 text")
        return None


def _changed(repo: pygit2.Repository, staged: bool, rev: str | None, notes: list[str]) -> list[Target]:
    try:
        base = repo.revparse_single(rev or "HEAD").peel(pygit2.Tree)
    except (KeyError, ValueError, pygit2.GitError):
        if rev:
            raise UsageError(f"{rev!r} names no commit in {repo.workdir}") from None
        base = None  # no commit yet: everything is new
    tree = base if base is not None else repo[repo.TreeBuilder().write()]
    if staged:
        diff = tree.diff_to_index(staged_index(repo), context_lines=0)
    else:
        diff = tree.diff_to_workdir(context_lines=0, flags=pygit2.enums.DiffOption.INCLUDE_UNTRACKED
                                    | pygit2.enums.DiffOption.RECURSE_UNTRACKED_DIRS)
    found = []
    for patch in diff:
        delta = patch.delta
        side = delta.new_file  # both diffs run from the base tree (old) to the index or work tree (new)
        path = side.path
        if delta.status_char() == "D":
            continue  # deleted: nothing left to repair
        if language_of(path) is None:
            notes.append(f"{path}: skipped, not a recognised programming language")
            continue
        if staged:
            data = repo[side.id].data
        else:
            try:
                data = (Path(repo.workdir) / path).read_bytes()
            except OSError:
                continue
        text = _read_text(data, path, notes)
        if text is None:
            continue
        lines = [(h.new_start, h.new_lines) for h in patch.hunks]
        touched = [(start - 1, start - 1 + max(count, 1) - 1) for start, count in lines]
        focus = (max(0, min(a for a, _ in touched)), max(0, max(b for _, b in touched))) if touched else None
        found.append(Target(path, Path(repo.workdir) / path, text, focus))
    return found


def staged_index(repo: pygit2.Repository) -> pygit2.Index:
    """The index being committed. While git runs a hook it is named by $GIT_INDEX_FILE: `git commit -a`
    and `git commit FILE` stage into a temporary index, and .git/index is not what gets committed."""
    path = os.environ.get("GIT_INDEX_FILE")
    if not path:
        return repo.index
    if not os.path.isfile(path):  # pygit2 would read an empty index: every file deleted, none checked
        raise PatchcoderError(f"GIT_INDEX_FILE names {path}, which is not a file")
    return pygit2.Index(path)


def suggest(repairer, found: list[Target], intent: str | None = None, min_score: float | None = None,
            batch_size: int = 16, beam: int = 1, mode: str | None = None):
    """(target, patch) for every target that gets a patch scoring at least `min_score` (None: the
    model's calibrated threshold, `repairer.min_score`; -inf shows every patch)."""
    if min_score is None:
        min_score = repairer.min_score
    items = [{"code": t.text, "path": t.path, "intent": intent, "focus": t.focus} for t in found]
    patches = repairer.repair(items, batch_size=batch_size, beam=beam, **({"mode": mode} if mode else {}))
    return [(t, p) for t, p in zip(found, patches, strict=True)
            if p is not None and (min_score is None or p.score >= min_score)]


def dirty_files(repo: pygit2.Repository | None, found: list[Target]) -> list[str]:
    """Targets whose working-tree file differs from the index (unstaged changes)."""
    if repo is None:
        return []
    flags = pygit2.enums.FileStatus
    unstaged = flags.WT_MODIFIED | flags.WT_NEW | flags.WT_TYPECHANGE | flags.WT_RENAMED
    out = []
    for t in found:
        try:
            status = repo.status_file(t.path)
        except (KeyError, pygit2.GitError):
            continue
        if status & unstaged:
            out.append(t.path)
    return out


def apply_patches(suggestions) -> list[str]:
    """Write every patch, or none: first check that each file still holds the suggestion's text."""
    for target, patch in suggestions:
        current = target.file.read_bytes().decode("utf-8", "surrogateescape")
        if current != patch.original:
            raise PatchcoderError(f"{target.path} changed since the suggestion was made; nothing was written")
    written = []
    for target, patch in suggestions:
        new = patch.apply(patch.original)
        atomic_write(target.file, new, mode=target.file.stat().st_mode & 0o7777)
        written.append(target.path)
    return written
