"""Git repositories built with pygit2 for the miner's tests: fixed signatures and times, so shas are stable."""

from __future__ import annotations

import pygit2
import pytest
from pygit2.enums import FileMode, ObjectType

T0 = 1_700_000_000
HUMAN = ("Ada Lovelace", "ada@example.org")
BOT = ("dependabot[bot]", "49699333+dependabot[bot]@users.noreply.github.com")


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


def build_history(path, submodule: bool = True) -> RepoBuilder:
    """One repository exercising every row kind and filter of the miner (see test_walk.py).

    PyDriller crashes on a submodule entry (it asks git for the gitlink as a blob), hence `submodule`.
    """
    b = RepoBuilder(path)
    b.commit("Add the app", {
        "src/app.py": b"def main():\n    return 1\n",
        "src/util.py": b"def helper(x):\n    return x + 1\n\n\ndef other(y):\n    return y * 2\n",
        "src/old.py": b"OLD = True\n",
        "README.md": b"# demo\n",
    })
    b.commit("Return two from main", {"src/app.py": b"def main():\n    return 2\n"})
    b.commit("Rename util to helpers", {
        "src/util.py": None,
        "src/helpers.py": b"def helper(x):\n    return x + 2\n\n\ndef other(y):\n    return y * 2\n",
    })
    b.commit("Remove old module", {"src/old.py": None})
    b.commit("Bump dependency", {"src/app.py": b"def main():\n    return 3\n"}, author=BOT)
    b.commit("Vendor a library", {"vendor/lib.py": b"x = 1\n", "src/app.py": b"def main():\n    return 4\n"})
    b.commit("Add data files", {
        "src/data.py": b"BLOB = '\0\1\2'\n",
        "src/latin.py": b"# caf\xe9\nx = 1\n",
        "src/api_pb2.py": b"# generated\nx = 1\n",
        "package-lock.json": b"{}\n",
        "web/bundle.js": b"var a=" + b"1+" * 800 + b"1;\n",
        "src/\udcff.py".encode("utf-8", "surrogateescape").decode("utf-8", "surrogateescape"): b"x = 1\n",
        "src/model.py": b"version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 12\n",
    })
    links = {"src/link.py": (FileMode.LINK, b"app.py")}
    if submodule:
        links["deps/sub"] = (FileMode.COMMIT, pygit2.Oid(hex="1" * 40))
    b.commit("Add a symlink and a submodule", links)
    b.commit("", {"src/app.py": b"def main():\n    return 5\n"})
    b.commit("Toggle flag on", {"src/flag.py": b"FLAG = True\n"})
    b.commit("Toggle flag off", {"src/flag.py": b"FLAG = False\n"})
    b.commit("Toggle flag on again", {"src/flag.py": b"FLAG = True\n"})
    b.commit("Toggle flag off again", {"src/flag.py": b"FLAG = False\n"})  # same blobs as 'Toggle flag off'
    b.commit("Reformat everything", {f"gen/m{i}.py": b"y = %d\n" % i for i in range(60)})
    b.branch("feature")
    b.commit("Feature work", {"src/feature.py": b"def feature():\n    pass\n"}, branch="feature")
    main_head = b.repo.references["refs/heads/main"].target
    feature_head = b.repo.references["refs/heads/feature"].target
    b.files["main"] = dict(b.files["feature"])
    b.commit("Merge branch 'feature'", {}, parents=[main_head, feature_head])
    b.commit("Fix the helper", {
        "src/helpers.py": b"def helper(x):\n    return x + 1\n\n\ndef other(y):\n    return y * 2\n",
    })
    b.repo.set_head("refs/heads/main")
    return b


@pytest.fixture(name="build_history")
def build_history_fixture():
    """The `build_history` function itself, for tests that need a variant."""
    return build_history


@pytest.fixture
def history(tmp_path):
    return build_history(tmp_path / "history")


@pytest.fixture
def new_repo(tmp_path):
    """A factory: new_repo(name, bare=False) -> RepoBuilder in a fresh folder."""
    return lambda name, bare=False: RepoBuilder(tmp_path / name, bare=bare)
