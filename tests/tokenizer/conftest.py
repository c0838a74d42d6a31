"""Fixtures of the tokenizer's tests: the shipped vocabulary, and mined data written with the miner's schema."""

from __future__ import annotations

import pygit2
import pytest

from patchcoder.tokenizer import CodeTokenizer


@pytest.fixture(scope="session")
def tok() -> CodeTokenizer:
    return CodeTokenizer.default()


@pytest.fixture
def make_repo():
    return _make_repo


def _make_repo(path, history: list[tuple[str, dict[str, bytes | None]]]) -> str:
    """A git repository at `path` with one commit per (message, {file: content or None}), fixed times."""
    repo = pygit2.init_repository(str(path), initial_head="main")
    files: dict[str, bytes] = {}
    parents: list = []
    for tick, (message, changes) in enumerate(history):
        for name, content in changes.items():
            if content is None:
                files.pop(name, None)
            else:
                files[name] = content
        builder = repo.TreeBuilder()
        for name, content in sorted(files.items()):
            builder.insert(name, repo.create_blob(content), pygit2.enums.FileMode.BLOB)
        sig = pygit2.Signature("Ada Lovelace", "ada@example.org", 1_700_000_000 + 60 * tick, 0)
        oid = repo.create_commit("refs/heads/main", sig, sig, message, builder.write(), parents)
        parents = [oid]
    return str(path)
