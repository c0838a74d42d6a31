"""Shared fixtures: git repositories built with pygit2 (fixed signatures and times, so shas are stable)."""

from __future__ import annotations

import signal

import pygit2
import pytest
from pygit2.enums import FileMode, ObjectType

T0 = 1_700_000_000
HUMAN = ("Ada Lovelace", "ada@example.org")


def as_a_terminal_starts_it() -> None:
    """`preexec_fn` of a child that a test stops with Ctrl-C: SIGINT at its default disposition, as a terminal
    starts a job. A suite run in the background by a non-interactive shell inherits SIGINT ignored, and a child
    that ignores it never hears the Ctrl-C the test sends."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class RepoBuilder:
    """Commits snapshots onto branches. A file value is bytes, None (delete), or (mode, bytes|oid)."""

    def __init__(self, path, bare: bool = False):
        self.repo = pygit2.init_repository(str(path), bare=bare, initial_head="main")
        self.path = str(path)
        self.files: dict[str, dict] = {}  # branch -> {path: (mode, oid)}
        self.tick = 0

    def commit(self, message: str, changes: dict, branch: str = "main", author=HUMAN, parents=None) -> str:
        files = dict(self.files.get(branch, {}))
        for path, value in changes.items():
            if value is None:
                files.pop(path, None)
                continue
            mode, content = value if isinstance(value, tuple) else (FileMode.BLOB, value)
            oid = content if isinstance(content, pygit2.Oid) else self.repo.create_blob(content)
            files[path] = (mode, oid)
        tree = self._write_tree(files)
        self.tick += 60
        sig = pygit2.Signature(author[0], author[1], T0 + self.tick, 0)
        ref = f"refs/heads/{branch}"
        if parents is None:
            try:
                parents = [self.repo.references[ref].target]
            except KeyError:
                parents = []
        oid = self.repo.create_commit(ref, sig, sig, message, tree, parents)
        self.files[branch] = files
        return str(oid)

    def branch(self, name: str, from_branch: str = "main") -> None:
        target = self.repo.references[f"refs/heads/{from_branch}"].target
        self.repo.references.create(f"refs/heads/{name}", target)
        self.files[name] = dict(self.files[from_branch])

    def _write_tree(self, files: dict) -> pygit2.Oid:
        """Write nested trees by hand (raw bytes), which also allows non-UTF-8 names."""
        root: dict = {}
        for path, entry in files.items():
            parts = path.encode("utf-8", "surrogateescape").split(b"/")
            node = root
            for part in parts[:-1]:
                node = node.setdefault(part, {})
            node[parts[-1]] = entry
        return self._write_node(root)

    def _write_node(self, node: dict) -> pygit2.Oid:
        entries = []
        for name, value in node.items():
            if isinstance(value, dict):
                entries.append((name + b"/", name, 0o40000, self._write_node(value)))
            else:
                mode, oid = value
                entries.append((name, name, int(mode), oid))
        entries.sort(key=lambda e: e[0])  # git sorts trees as if directory names ended in '/'
        raw = b"".join(b"%o %s\0" % (mode, name) + oid.raw for _, name, mode, oid in entries)
        return self.repo.odb.write(ObjectType.TREE, raw)


@pytest.fixture
def new_repo(tmp_path):
    """A factory: new_repo(name, bare=False) -> RepoBuilder in a fresh folder."""
    return lambda name, bare=False: RepoBuilder(tmp_path / name, bare=bare)


@pytest.fixture(scope="session")
def session_repo(tmp_path_factory):
    """A factory for repositories shared by a whole test session: session_repo(name) -> RepoBuilder."""
    return lambda name: RepoBuilder(tmp_path_factory.mktemp("repos") / name)
