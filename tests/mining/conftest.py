"""The miner's fixture history (RepoBuilder and new_repo are in tests/conftest.py)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pygit2
import pytest
from pygit2.enums import FileMode

BOT = ("dependabot[bot]", "49699333+dependabot[bot]@users.noreply.github.com")


def build_history(b, submodule: bool = True):
    """One repository exercising every row kind and filter of the miner (see test_walk.py).

    PyDriller crashes on a submodule entry (it asks git for the gitlink as a blob), hence `submodule`.
    """
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


def grow_edits(b, commits: int):
    """`commits` small commits, each editing one of 7 modules in turn: a long history of distinct changes."""
    for i in range(commits):
        b.commit(f"Edit step {i}", {f"m{i % 7}.py": f"STEP = {i}\nNAME = 'm{i % 7}'\n".encode()})
    return b


def wait_for_units(manifest: Path, units: int, *, seconds: float, proc=None, poll: float = 0.005) -> None:
    """Wait until the run writing `manifest` has recorded `units` units (or `seconds` pass, or `proc` ends):
    the moment a test kills a run mid-way."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and (proc is None or proc.poll() is None):
        try:
            if len(json.loads(manifest.read_text())["units"]) >= units:
                return
        except (OSError, ValueError, KeyError):
            pass  # not written yet, or read while being replaced
        time.sleep(poll)


@pytest.fixture(name="build_history")
def build_history_fixture():
    """The `build_history` function itself, for tests that need a variant."""
    return build_history


@pytest.fixture
def history(new_repo):
    return build_history(new_repo("history"))
