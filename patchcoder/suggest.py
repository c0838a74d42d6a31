"""Suggestions for a working tree: which files and lines to look at, and applying a patch safely.

`targets(...)` finds what to repair — the files changed against HEAD (or REV), or the staged ones, each
focused on its changed lines; or explicit paths, whole, each in the repository it is in (found from the
file, so a submodule's file is its submodule's). `suggest(...)` runs a Repairer on them.
`apply_patches(...)` writes patches only after checking that every file still holds exactly the text
the suggestion was computed from (a staged suggestion: that the index still does, and that the lines it
changes are the same in the work tree) and is not read-only, each file atomically; on any refusal nothing is
written.
Writes stay inside the work tree the file was named in and go to the file itself: a symbolic link is
written through to its target only when that target is inside the same work tree (else refused), and
is never replaced; the file keeps its mode, owner and hard links (`atomic_write(keep_file=True)`).
Symbolic links and submodules among the changes are skipped with a note (their change is a link or a
commit, not code), and so is an untracked folder that is a virtual environment or holds more than
MAX_UNTRACKED files of code (left out of .gitignore, it is not yours to repair).
"""

from __future__ import annotations

import dataclasses
import os
import re
import stat
from collections.abc import Callable
from pathlib import Path

import pygit2

from patchcoder.ground.atomic import atomic_write
from patchcoder.ground.errors import PatchcoderError, UsageError
from patchcoder.ground.languages import language_of

MAX_FILE_BYTES = 1_000_000
MAX_LINES = 5_000  # lines read by the model per file (a whole file, or the span of its changes): ~1 minute here
MAX_UNTRACKED = 100  # files of code in one untracked folder beyond which it is not read (a build folder, node_modules)


@dataclasses.dataclass
class Target:
    path: str  # as shown in diffs: relative to the root of the file's repository (or as given outside one)
    file: Path  # where it is on disk (for a named file: symbolic links resolved)
    text: str
    focus: tuple[int, int] | None  # first and last changed line (0-based), None for a whole file
    repo: pygit2.Repository | None = None  # the repository the file is in, found from the file; None outside one
    root: Path | None = None  # the work tree the file was named in: writes never leave it (None: no repository)
    staged: bool = False  # `text` is the index's content of the file, not the work tree's


def find_repository(start: str | os.PathLike = ".") -> pygit2.Repository | None:
    found = pygit2.discover_repository(str(start))
    if found is None:
        return None
    repo = pygit2.Repository(found)
    return None if repo.is_bare else repo


def targets(paths: list[str], *, staged: bool = False, rev: str | None = None, cwd: str | os.PathLike = ".",
            notes: list[str] | None = None, max_lines: int | None = MAX_LINES) -> tuple[list[Target], pygit2.Repository | None]:
    """What to repair, and the repository of `cwd` (None outside one); each target knows its own. Skipped
    files go to `notes`: among them those with more than `max_lines` lines to read (None: no limit)."""
    notes = notes if notes is not None else []
    if paths:
        found: dict[Path, Target] = {}
        for p in paths:  # a file named twice (or also through a symbolic link) is looked at, and patched, once
            if (t := _whole_file(p, cwd, notes)) is not None:
                found.setdefault(t.file, t)
        return _not_too_long(list(found.values()), max_lines, notes), find_repository(cwd)
    repo = _work_tree(cwd)
    return _not_too_long(_changed(repo, staged, rev, notes), max_lines, notes), repo


def _work_tree(cwd) -> pygit2.Repository:
    """The repository whose work tree holds `cwd`; a one-line error outside one, or in a bare one."""
    found = pygit2.discover_repository(str(cwd))
    if found is None:
        raise UsageError("not inside a git repository: name the files to look at")
    repo = pygit2.Repository(found)
    if repo.is_bare:
        raise UsageError(f"{repo.path.rstrip('/')} is a bare repository: it has no work tree, so no changes to "
                         "look at; run this in a clone or worktree of it, or name the files to look at")
    return repo


def _whole_file(path: str, cwd, notes) -> Target | None:
    given = Path(os.path.abspath(os.path.join(cwd, path)))  # symbolic links not resolved yet
    if given.is_dir():
        raise UsageError(f"{path} is a directory: name the files in it to look at (or, inside a repository, "
                         "name none to look at your changes)")
    if not given.exists():
        raise UsageError(f"{path}: no such file" + (" (a broken symbolic link)" if given.is_symlink() else ""))
    file = given.resolve()
    if not file.is_file():
        raise UsageError(f"{path} is not a regular file")
    named_in = find_repository(given.parent)
    text = read_text(file.read_bytes(), path, notes)
    if text is None:
        return None
    if language_of(path, _head(text)) is None:
        notes.append(f"{path}: skipped, not a recognised programming language")
        return None
    repo = find_repository(file.parent)  # the file's own repository: a submodule's for a file in it
    shown = _shown(file, repo)
    if not _utf8_name(shown, notes):
        return None
    return Target(shown, file, text, None, repo, Path(named_in.workdir).resolve() if named_in is not None else None)


def _utf8_name(path: str, notes: list[str]) -> bool:
    """Whether `path` is text (a name of other bytes arrives with surrogate escapes, which the model cannot
    read); if not, a note says it is skipped."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        notes.append(f"{path}: skipped, its name is not UTF-8 (rename the file to look at it)")
        return False
    return True


def _head(text: str) -> bytes:
    """A text's first bytes, for `language_of` to read a shebang in."""
    return text[:256].encode("utf-8", "surrogateescape")


def _not_too_long(found: list[Target], max_lines: int | None, notes: list[str]) -> list[Target]:
    """The targets whose model reads at most `max_lines` lines (the whole file, or its changed lines)."""
    from patchcoder.tokenizer.edits import split_lines

    kept = []
    for t in found:
        first, last = t.focus if t.focus is not None else (0, len(split_lines(t.text)) - 1)
        if max_lines is not None and last - first + 1 > max_lines:
            what = "changed lines" if t.focus is not None else "lines"
            notes.append(f"{t.path}: skipped, {last - first + 1:,} {what} to read, more than --max-lines {max_lines:,}")
            continue
        kept.append(t)
    return kept


def _shown(file: Path, repo) -> str:
    """The path a diff names: relative to the repository, else to the current directory, else the
    absolute path without its leading "/" (as `git diff --no-index` names it), never "a//tmp/…"."""
    for base in ([Path(repo.workdir)] if repo is not None else []) + [Path.cwd()]:
        try:
            return file.relative_to(base.resolve()).as_posix()
        except ValueError:
            pass
    return file.as_posix().lstrip("/")


def read_text(data: bytes, path: str, notes: list[str]) -> str | None:
    """`data` as text, or None with a note in `notes` when it is too large, binary or not UTF-8 (as suggest skips it)."""
    if len(data) > MAX_FILE_BYTES:
        notes.append(f"{path}: skipped, larger than {MAX_FILE_BYTES:,} bytes")
        return None
    if b"\0" in data[:8000]:
        notes.append(f"{path}: skipped, binary")
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        notes.append(f"{path}: skipped, not UTF-8 text")
        return None
    if re.search(r"\r(?!\n|$)", text):  # git, too, sees one line where Python sees two: a patch would misplace lines
        notes.append(f"{path}: skipped, lines ending in \\r alone (classic Mac OS), which git reads as one; convert "
                     "them to \\n to look at it")
        return None
    return text


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
    modes = pygit2.enums.FileMode
    root = Path(repo.workdir).resolve()
    bulky = (lambda path: False) if staged else _bulky_untracked(repo, tree, diff, root, notes)
    for i, delta in enumerate(diff.deltas):
        if bulky(delta.new_file.path):
            continue  # not even its patch is made: that reads the file
        patch = diff[i]
        side = delta.new_file  # both diffs run from the base tree (old) to the index or work tree (new)
        path = side.path
        if delta.status_char() == "D":
            continue  # deleted: nothing left to repair
        if delta.status_char() == "M" and delta.old_file.id == delta.new_file.id:
            continue  # the same content, only its mode changed (chmod +x): no line of yours to look at
        if delta.status == pygit2.enums.DeltaStatus.CONFLICTED:  # the index holds its merge's sides, no content
            notes.append(f"{path}: skipped, unmerged (a merge conflict): resolve it and stage the result first")
            continue
        if side.mode == modes.COMMIT:
            notes.append(f"{path}: skipped, a submodule: run patchcoder suggest inside it to look at its changes")
            continue
        if side.mode == modes.TREE:  # an untracked folder git does not enter: another repository
            notes.append(f"{path}: skipped, a repository of its own: run patchcoder suggest inside it")
            continue
        if side.mode == modes.LINK or (not staged and (root / path).is_symlink()):
            notes.append(f"{path}: skipped, a symbolic link (its change is where it points, not code)")
            continue
        if language_of(path) is None:
            notes.append(f"{path}: skipped, not a recognised programming language")
            continue
        if not _utf8_name(path, notes):
            continue
        if staged:
            data = repo[side.id].data
        else:
            try:
                data = (root / path).read_bytes()
            except OSError:
                continue
        text = read_text(data, path, notes)
        if text is None:
            continue
        lines = [(h.new_start, h.new_lines) for h in patch.hunks]
        touched = [(start - 1, start - 1 + max(count, 1) - 1) for start, count in lines]
        focus = (max(0, min(a for a, _ in touched)), max(0, max(b for _, b in touched))) if touched else None
        found.append(Target(path, root / path, text, focus, repo, root, staged))
    return found


def _bulky_untracked(repo: pygit2.Repository, tree: pygit2.Tree, diff: pygit2.Diff, root: Path,
                     notes: list[str]) -> Callable[[str], bool]:
    """Which untracked files not to read: those of an untracked virtual environment (a folder holding a
    pyvenv.cfg, at any depth), and those of an untracked folder holding more than MAX_UNTRACKED untracked files
    of code besides (a build folder, node_modules); a note for each such folder with files of code in it. A
    file in the index is never one of them (`git add -N` marks a file without staging its content). A diff
    from a tree ignores the index: new files it calls untracked may be staged."""
    indexed = {entry.path for entry in repo.index}
    untracked = [d.new_file.path for d in diff.deltas
                 if d.status == pygit2.enums.DeltaStatus.UNTRACKED and d.new_file.path not in indexed]
    venvs = tuple(sorted({p.removesuffix("pyvenv.cfg") for p in untracked if p.endswith("/pyvenv.cfg")}))
    code = [p for p in untracked if language_of(p) is not None]
    folders = [p.delta.new_file.path for p in tree.diff_to_workdir(flags=pygit2.enums.DiffOption.INCLUDE_UNTRACKED)
               if p.delta.status == pygit2.enums.DeltaStatus.UNTRACKED and p.delta.new_file.path.endswith("/")]
    bulky = []
    for folder in venvs:
        if count := sum(path.startswith(folder) for path in code):
            notes.append(f"{folder}: skipped, an untracked virtual environment with {count:,} file"
                         f"{'s' if count != 1 else ''} of code: add it to .gitignore, or `git add -N` the files in "
                         "it to look at")
    for folder in folders:
        count = sum(path.startswith(folder) and not path.startswith(venvs) for path in code)
        if count > MAX_UNTRACKED:
            bulky.append(folder)
            notes.append(f"{folder}: skipped, an untracked folder with {count:,} files of code (more than "
                         f"{MAX_UNTRACKED} to read): add it to .gitignore, or `git add -N` the files in it to look at")
    prefixes = venvs + tuple(bulky)
    return lambda path: path.startswith(prefixes) and path not in indexed


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
            batch_size: int = 16, beam: int = 1, mode: str | None = None, notes: list[str] | None = None,
            show_progress: bool | None = None):
    """(target, patch) for every target that gets a patch scoring at least `min_score` (None: the
    model's calibrated threshold for the patch's kind of edit, `repairer.shows`; -inf shows every
    patch). A target that gets none because ranking has no rewrites for its language gets a note in `notes`."""
    import copy

    from patchcoder.tokenizer.rewrites import LANGUAGES

    if min_score is not None:  # one threshold for every kind of edit, in place of the model's: it also picks
        repairer = copy.copy(repairer)  # each file's patch (Repairer.repair)
        repairer.min_score, repairer.min_score_by_edit = min_score, None
    items = [{"code": t.text, "path": t.path, "intent": intent, "focus": t.focus,
              "language": language_of(t.path, _head(t.text))} for t in found]
    patches = repairer.repair(items, batch_size=batch_size, beam=beam, show_progress=show_progress,
                              **({"mode": mode} if mode else {}))
    if (mode or repairer.mode) == "rank" and notes is not None:
        for t, p, item in zip(found, patches, items, strict=True):
            language = item["language"]
            if p is None and language is not None and language not in LANGUAGES:
                notes.append(f"{t.path}: rank mode has no candidate rewrites for {language} (only for "
                             f"{', '.join(LANGUAGES)}); --mode generate lets the model write a fix")
    return [(t, p) for t, p in zip(found, patches, strict=True)
            if p is not None and repairer.shows(p)]


def dirty_files(found: list[Target]) -> list[str]:
    """Targets whose working-tree file differs from the index (unstaged changes), each in its own repository."""
    flags = pygit2.enums.FileStatus
    unstaged = flags.WT_MODIFIED | flags.WT_NEW | flags.WT_TYPECHANGE | flags.WT_RENAMED
    out = []
    for t in found:
        if t.repo is None:
            continue
        try:
            status = t.repo.status_file(t.file.resolve().relative_to(Path(t.repo.workdir).resolve()).as_posix())
        except (KeyError, ValueError, pygit2.GitError):
            continue
        if status & unstaged:
            out.append(t.path)
    return out


def apply_patches(suggestions, notes: list[str] | None = None) -> list[str]:
    """Write every patch, or none: first check, for every file, that it is inside the work tree it was named
    in and still holds the suggestion's text. A file keeps its mode, owner and hard links; how one was
    written, when not atomically, goes to `notes`."""
    planned = [(target, file, _new_text(target, file, patch))
               for target, patch in suggestions for file in [_file_to_write(target)]]
    written = []
    for target, file, data in planned:
        note = atomic_write(file, data, keep_file=True)
        if note and notes is not None:
            notes.append(f"{target.path}: {note}")
        written.append(_named(target, file))
    return written


def _named(target: Target, file: Path) -> str:
    """How a message names a written file: as its diff does, or, outside any repository and the current
    folder (where the diff's name, the absolute path without its "/", reads as a relative path), absolutely."""
    if target.repo is None and target.root is None and not file.is_relative_to(Path.cwd().resolve()):
        return str(file)
    return target.path


def _file_to_write(target: Target) -> Path:
    """The file a patch goes to: the target's own (a symbolic link's target), inside the work tree it was named in."""
    file = target.file.resolve()
    if target.root is not None and not file.is_relative_to(target.root):
        raise PatchcoderError(f"{file} is outside the repository at {target.root} (reached through a symbolic "
                              "link); nothing was written")
    if not file.is_file():
        raise PatchcoderError(f"{target.path} is no longer a regular file; nothing was written")
    if not file.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH) or not os.access(file, os.W_OK):
        raise PatchcoderError(f"{target.path} is read-only; make it writable to apply the suggestion (nothing was "
                              "written)")  # a rename would replace it anyway: root, or a writable folder
    return file


def _new_text(target: Target, file: Path, patch) -> bytes:
    """The file's new content, after checking that it still holds what the suggestion was made from."""
    changed = f"{target.path} changed since the suggestion was made; nothing was written"
    current = file.read_bytes().decode("utf-8", "surrogateescape")
    if not target.staged or current == patch.original:
        if current != patch.original:
            raise PatchcoderError(changed)
        return patch.apply(patch.original).encode("utf-8", "surrogateescape")
    # The suggestion was made on the staged content: the index must still hold it; the work tree may differ
    # from it by git's line-ending filter (core.autocrlf) or by unstaged changes (a partially staged file).
    if _staged_text(target) != patch.original:
        raise PatchcoderError(f"{target.path}: the staged content changed since the suggestion was made; "
                              "nothing was written")
    moved = _carried(patch, current)
    if moved is None:
        raise PatchcoderError(f"{target.path}: the lines the suggestion changes (made on the staged content) differ "
                              "in the work tree; nothing was written")
    return moved.encode("utf-8", "surrogateescape")


def _staged_text(target: Target) -> str | None:
    index = target.repo.index
    index.read()
    try:
        return target.repo[index[target.path].id].data.decode("utf-8", "surrogateescape")
    except KeyError:
        return None


def _carried(patch, text: str) -> str | None:
    """The patch's change made on `text`, another version of the text it was computed from: each operation
    moves to where its lines, and a line of context on each side, are in `text` (compared without their line
    endings, which git's filters may change), and its new lines take `text`'s line endings. None when some
    operation's lines are not found unchanged."""
    import difflib

    from patchcoder.layout import Layout
    from patchcoder.tokenizer.edits import EditOp, EditScript, split_lines

    old, new = split_lines(patch.original), split_lines(text)
    key = [line.rstrip("\r\n") for line in old], [line.rstrip("\r\n") for line in new]
    blocks = difflib.SequenceMatcher(None, *key, autojunk=False).get_matching_blocks()
    ops = []
    for op in patch.script.ops:
        lo, hi = max(0, op.start - 1), min(len(old), op.end + 1)
        block = next((b for b in blocks if b.a <= lo and hi <= b.a + b.size), None)
        if block is None or (op.end == len(old)) != (op.end + block.b - block.a == len(new)):
            return None
        ops.append(EditOp(op.kind, op.start + block.b - block.a, op.end + block.b - block.a, op.text))
    return Layout(text, tuple(new)).restore(EditScript(tuple(ops))).apply(text)
