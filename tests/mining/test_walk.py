"""`walk` on a pygit2-built history: the exact rows, the exact drop counts, and damaged input."""

from __future__ import annotations

import os
import subprocess
import tracemalloc

import pygit2
import pytest
import unidiff

from patchcoder.ground.errors import PatchcoderError
from patchcoder.mining import DropCounter, walk
from patchcoder.mining.walk import NotARepository, open_repository

EXPECTED_ROWS = [
    # (first line of message, change, path, old_path, language, added, deleted, hunks)
    ("Add the app", "A", "src/app.py", None, "python", 2, 0, 1),
    ("Add the app", "A", "src/old.py", None, "python", 1, 0, 1),
    ("Add the app", "A", "src/util.py", None, "python", 6, 0, 1),
    ("Return two from main", "M", "src/app.py", "src/app.py", "python", 1, 1, 1),
    ("Rename util to helpers", "R", "src/helpers.py", "src/util.py", "python", 1, 1, 1),
    ("Remove old module", "D", "src/old.py", "src/old.py", "python", 0, 1, 1),
    ("Vendor a library", "M", "src/app.py", "src/app.py", "python", 1, 1, 1),
    ("Toggle flag on", "A", "src/flag.py", None, "python", 1, 0, 1),
    ("Toggle flag off", "M", "src/flag.py", "src/flag.py", "python", 1, 1, 1),
    ("Toggle flag on again", "M", "src/flag.py", "src/flag.py", "python", 1, 1, 1),
    ("Fix the helper", "M", "src/helpers.py", "src/helpers.py", "python", 1, 1, 1),
]

EXPECTED_DROPS = {
    "commits_seen": 16,
    "commits_passed": 12,  # passed the commit filters; "Add a symlink and a submodule" then kept no file
    "merge": 1,
    "bot_author": 1,
    "empty_message": 1,
    "too_many_files": 1,
    "language": 1,  # README.md
    "vendored": 1,
    "binary": 1,
    "undecodable": 1,
    "generated": 1,
    "lock_file": 1,
    "minified": 1,
    "non_utf8_path": 1,
    "lfs_pointer": 1,
    "symlink": 1,
    "submodule": 1,
    "exact_duplicate": 1,  # "Toggle flag off again" repeats the blobs of "Toggle flag off"
}


def _summary(pair):
    return (pair.message.split("\n")[0], pair.change, pair.path, pair.old_path, pair.language,
            pair.added, pair.deleted, pair.hunks)


def test_walk_yields_exactly_the_expected_rows(history):
    drops = DropCounter()
    pairs = list(walk(history.path, drops=drops))
    assert [_summary(p) for p in pairs] == EXPECTED_ROWS
    assert drops.as_dict() == EXPECTED_DROPS


def test_single_statement_fixes_are_classified(history):
    sstubs = {(p.message, p.path): p.sstub for p in walk(history.path)}
    assert sstubs == {
        ("Add the app", "src/app.py"): None,
        ("Add the app", "src/old.py"): None,
        ("Add the app", "src/util.py"): None,
        ("Return two from main", "src/app.py"): "change_numeric_literal",
        ("Rename util to helpers", "src/helpers.py"): "change_numeric_literal",
        ("Remove old module", "src/old.py"): None,
        ("Vendor a library", "src/app.py"): "change_numeric_literal",
        ("Toggle flag on", "src/flag.py"): None,
        ("Toggle flag off", "src/flag.py"): "change_boolean_literal",
        ("Toggle flag on again", "src/flag.py"): "change_boolean_literal",
        ("Fix the helper", "src/helpers.py"): "change_numeric_literal",
    }


def test_row_texts_blobs_and_diffs_are_those_of_the_repository(history):
    repo = history.repo
    for pair in walk(history.path):
        commit = repo[pair.commit]
        assert pair.parent == (str(commit.parent_ids[0]) if commit.parent_ids else "0" * 40)
        assert pair.author_time == commit.author.time
        assert pair.message == commit.message
        if pair.change != "D":
            assert repo[pair.new_blob].data.decode() == pair.new == repo[commit.tree[pair.path].id].data.decode()
        else:
            assert pair.new is None and pair.new_blob == "0" * 40
        if pair.change == "A":
            assert pair.old is None and pair.old_blob == "0" * 40
        else:
            parent_tree = repo[pair.parent].tree
            assert repo[parent_tree[pair.old_path].id].data.decode() == pair.old
        # The diff is built from blobs already in memory; it must equal libgit2's patch of the tree diff.
        tree_diff = (repo.diff(repo[pair.parent].tree, commit.tree) if commit.parent_ids
                     else commit.tree.diff_to_tree(swap=True))
        tree_diff.find_similar(flags=pygit2.enums.DiffFind.FIND_RENAMES)
        assert pair.diff in {patch.text for patch in tree_diff}
        patch = unidiff.PatchSet(pair.diff)
        assert len(patch) == 1
        assert (patch[0].added, patch[0].removed, len(patch[0])) == (pair.added, pair.deleted, pair.hunks)
        # The diff turns old into new: git apply agrees (pygit2 applies exactly like `git apply`).
        diff = pygit2.Diff.parse_diff(pair.diff)
        assert diff.stats.insertions == pair.added and diff.stats.deletions == pair.deleted


def test_filters_are_options(history):
    drops = DropCounter()
    pairs = list(walk(history.path, drops=drops, skip_bots=False, skip_merges=False, skip_auto_messages=False,
                      max_files=100, languages=("python",)))
    messages = {p.message.split("\n")[0] for p in pairs}
    assert "Bump dependency" in messages
    assert "Reformat everything" in messages
    assert "Merge branch 'feature'" in messages  # diffed against its first parent: brings feature.py
    assert any(p.path == "src/feature.py" and p.message.startswith("Merge") for p in pairs)
    assert "web/bundle.js" not in {p.path for p in pairs}  # javascript is not in languages
    assert drops["merge"] == drops["bot_author"] == drops["too_many_files"] == 0


def test_all_commits_walks_merged_branches(history):
    first_parent = {p.commit for p in walk(history.path)}
    everything = list(walk(history.path, first_parent=False))
    assert first_parent < {p.commit for p in everything}
    assert any(p.message == "Feature work" and p.path == "src/feature.py" for p in everything)


def test_since_until_and_branch(history):
    pairs = list(walk(history.path, since=1_700_000_000 + 60 * 3, until=1_700_000_000 + 60 * 4))
    assert [p.message for p in pairs] == ["Rename util to helpers", "Remove old module"]
    drops = DropCounter()
    feature = list(walk(history.path, branch="feature", drops=drops))
    assert feature[-1].message == "Feature work"
    with pytest.raises(Exception, match="names no commit"):
        list(walk(history.path, branch="no-such-branch"))


def test_near_duplicates_are_optional(new_repo):
    b = new_repo("r")
    body = "".join(f"    total += values[{i}] * weight\n" for i in range(30))
    b.commit("Add sums", {
        "a.py": ("def f(values, weight):\n    total = 0\n" + body + "    return total\n").encode(),
        "b.py": ("def g(values, weight):\n    total = 0\n" + body + "    return total\n").encode(),
    })
    b.commit("Use a loop in f", {"a.py": b"def f(values, weight):\n    return sum(v * weight for v in values)\n"})
    b.commit("Use a loop in g", {"b.py": b"def g(values, weight):\n    return sum(v * weight for v in values)\n"})
    assert len(list(walk(b.path))) == 4
    drops = DropCounter()
    pairs = list(walk(b.path, near_duplicates=0.8, drops=drops))
    # b.py's addition repeats a.py's, and g's rewrite repeats f's
    assert [(p.message, p.path) for p in pairs] == [("Add sums", "a.py"), ("Use a loop in f", "a.py")]
    assert drops["near_duplicate"] == 2


def test_a_100_mb_blob_is_skipped_without_being_read(new_repo):
    b = new_repo("big")
    b.commit("Add small", {"small.py": b"x = 1\n"})
    b.commit("Add huge", {"huge.py": b"x = 1\n" * (100 * 1024 * 1024 // 6), "small.py": b"x = 2\n"})
    drops = DropCounter()
    tracemalloc.start()
    pairs = list(walk(b.path, drops=drops))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 20 * 1024 * 1024  # the 100 MB blob was never inflated into Python
    assert [(p.message, p.path) for p in pairs] == [("Add small", "small.py"), ("Add huge", "small.py")]
    assert drops["oversized_file"] == 1


def test_empty_repository_yields_nothing(tmp_path):
    pygit2.init_repository(str(tmp_path / "empty"))
    drops = DropCounter()
    assert list(walk(tmp_path / "empty", drops=drops)) == []
    assert drops["empty_repository"] == 1


def test_not_a_repository(tmp_path):
    (tmp_path / "plain").mkdir()
    with pytest.raises(NotARepository, match="is not a git repository"):
        open_repository(tmp_path / "plain")
    with pytest.raises(NotARepository):
        list(walk(tmp_path / "plain"))


def _git(*args, cwd=None):
    env = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "HOME": str(cwd or "/tmp")}
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, env=env)


def test_shallow_clone_stops_at_its_boundary(history, tmp_path):
    clone = tmp_path / "shallow"
    _git("clone", "--quiet", "--depth", "3", f"file://{history.path}", str(clone))
    assert pygit2.Repository(str(clone)).is_shallow
    drops = DropCounter()
    pairs = list(walk(clone, drops=drops))
    # depth 3 = "Fix the helper", the merge, and the boundary commit "Reformat everything"
    assert [p.message.split("\n")[0] for p in pairs] == ["Fix the helper"]
    assert drops["commits_seen"] == 3 and drops["missing_parent"] == 1 and drops["merge"] == 1


def test_missing_and_corrupt_objects_are_counted_not_fatal(new_repo):
    b = new_repo("damaged")
    b.commit("Add files", {"a.py": b"a = 1\n", "b.py": b"b = 1\n", "c.py": b"c = 1\n"})
    b.commit("Change files", {"a.py": b"a = 2\n", "b.py": b"b = 2\n", "c.py": b"c = 2\n"})
    objects = os.path.join(b.repo.path, "objects")

    def loose(oid):
        return os.path.join(objects, str(oid)[:2], str(oid)[2:])

    tree = b.repo.head.peel(pygit2.Commit).tree
    os.unlink(loose(tree["a.py"].id))  # missing
    with open(loose(tree["b.py"].id), "r+b") as f:  # corrupt: garbage instead of zlib data
        os.chmod(f.name, 0o644)
        f.write(b"\x00garbage" * 4)
    drops = DropCounter()
    pairs = list(walk(b.path, drops=drops))
    assert [(p.message, p.path) for p in pairs] == [
        ("Add files", "a.py"), ("Add files", "b.py"), ("Add files", "c.py"), ("Change files", "c.py"),
    ]
    assert drops["missing_object"] + drops["file_error"] == 2


def _raw_commit(repo: pygit2.Repository, text: bytes, parents: list, header: bytes, message: bytes) -> pygit2.Oid:
    """A commit object written byte for byte (author, committer, encoding as given), as old or odd tools write them."""
    tree = repo.TreeBuilder()
    tree.insert("a.py", repo.create_blob(text), pygit2.enums.FileMode.BLOB)
    body = b"tree %s\n" % str(tree.write()).encode() + b"".join(b"parent %s\n" % str(p).encode() for p in parents)
    return repo.odb.write(pygit2.enums.ObjectType.COMMIT, body + header + b"\n" + message)


def test_an_unknown_encoding_or_a_name_outside_its_encoding_is_decoded_not_fatal(tmp_path):
    repo = pygit2.init_repository(str(tmp_path / "odd"), initial_head="main")
    ada = b"author Ada <ada@example.org> 1700000000 +0000\ncommitter Ada <ada@example.org> 1700000000 +0000\n"
    jose = b"author Jos\xe9 <jose@example.org> 1700000060 +0000\ncommitter Jos\xe9 <jose@example.org> 1700000060 +0000\n"
    first = _raw_commit(repo, b"x = 1\n", [], ada, b"Add x\n")
    # git writes whatever i18n.commitEncoding says; Python knows neither name
    second = _raw_commit(repo, b"x = 2\n", [first], ada + b"encoding bogus-enc\n", b"Fix the value of x\n")
    third = _raw_commit(repo, b"x = 3\n", [second], ada + b"encoding UTF-8-MAC\n", b"Change x again\n")
    fourth = _raw_commit(repo, b"x = 4\n", [third], jose + b"encoding UTF-8\n", b"Caf\xe9 fix\n")  # Latin-1 bytes
    repo.references.create("refs/heads/main", fourth)
    drops = DropCounter()
    pairs = list(walk(repo.workdir, drops=drops))
    assert [p.message.splitlines()[0] for p in pairs] == ["Add x", "Fix the value of x", "Change x again", "Caf\ufffd fix"]
    assert [p.new for p in pairs] == ["x = 1\n", "x = 2\n", "x = 3\n", "x = 4\n"]
    assert drops["corrupt_commit"] == 0 and drops["commits_passed"] == 4


def test_until_a_bare_date_keeps_the_commits_of_that_day(history):
    # the fixture's commits are all made on 2023-11-14 (UTC), from 22:14 on
    every = [p.commit for p in walk(history.path)]
    assert [p.commit for p in walk(history.path, since="2023-11-14", until="2023-11-14")] == every
    assert list(walk(history.path, until="2023-11-13")) == []
    assert list(walk(history.path, since="2023-11-15")) == []
    early = {p.message for p in walk(history.path, until="2023-11-14T22:16:00+00:00")}  # a time is exact
    assert early == {"Add the app", "Return two from main"}


@pytest.mark.parametrize("moved, kept", [(4, True), (6, False)])
def test_max_files_counts_a_renamed_file_once(new_repo, moved, kept):
    b = new_repo("moves")
    body = "".join(f"    value = value * {i} + {i}\n" for i in range(12))
    files = {f"old/m{i}.py": f"def f{i}(value):\n{body}    return value\n".encode() for i in range(moved)}
    for path, text in files.items():
        b.commit(f"Add {path}", {path: text})
    changes = {path: None for path in files}
    changes.update({path.replace("old/", "new/"): text.replace(b"return value", b"return -value")
                    for path, text in files.items()})
    b.commit("Move the modules and negate", changes)  # 2 * moved deltas before rename detection
    drops = DropCounter()
    pairs = [p for p in walk(b.path, max_files=5, drops=drops) if p.message.startswith("Move")]
    assert ([p.change for p in pairs] == ["R"] * moved) if kept else (pairs == [] and drops["too_many_files"] == 1)


def test_a_damaged_head_is_one_clear_error(new_repo):
    b = new_repo("torn")
    b.commit("Add a", {"a.py": b"a = 1\n"})
    with open(os.path.join(b.repo.path, "refs", "heads", "main"), "w") as f:
        f.write("0123\n")  # what a torn write of a reference leaves
    with pytest.raises(PatchcoderError, match="HEAD cannot be read"):
        list(walk(b.path))
