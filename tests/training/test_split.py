"""Splits by repository: no repository and no identical old→new change crosses splits."""

from __future__ import annotations

import json
import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from patchcoder.ground.errors import PatchcoderError
from patchcoder.mining import mine
from patchcoder.mining.shards import shard_files
from patchcoder.training.split import split_by_repository


@pytest.fixture
def five_repos(new_repo, tmp_path):
    """Five repositories; 'shared' repeats one change of 'r0' (a cherry-pick into a fork)."""
    folders = []
    for r in range(5):
        b = new_repo(f"r{r}")
        for c in range(10 + 4 * r):
            b.commit(f"Tune r{r} step {c}", {f"r{r}.py": f"LIMIT_{r} = {c}\n".encode()})
        folders.append(b)
    fork = new_repo("shared")
    fork.commit("Start the fork", {"r0.py": b"LIMIT_0 = 3\n", "own.py": b"x = 0\n"})
    fork.commit("Take r0's change", {"r0.py": b"LIMIT_0 = 4\n"})  # the same blobs as r0's 5th commit
    fork.commit("Own change", {"own.py": b"x = 1\n"})
    for c in range(2, 12):
        fork.commit(f"Own change {c}", {"own.py": f"x = {c}\n".encode()})
    folders.append(fork)
    out = tmp_path / "mined"
    mine([b.path for b in folders], out, jobs=1, show_progress=False)  # one run: exact dedup across repos
    separate = tmp_path / "mined-shared"
    mine([fork.path], separate, jobs=1, show_progress=False)  # a second run keeps its own copy
    return [out, separate]


def _rows(folder):
    return [row for f in shard_files(folder) for row in pq.read_table(f).to_pylist()]


def test_no_repository_and_no_change_crosses_splits(five_repos, tmp_path):
    out = tmp_path / "split"
    summary = split_by_repository(five_repos, out, valid=0.2, test=0.2, seed=0)
    rows = {s: _rows(out / s) for s in ("train", "valid", "test")}
    repos = {s: {r["repo"] for r in rows[s]} for s in rows}
    assert all(repos[s] for s in rows), repos
    assert not (repos["train"] & repos["valid"] or repos["train"] & repos["test"] or repos["valid"] & repos["test"])
    keys = {s: [(r["old_blob"], r["new_blob"]) for r in rows[s]] for s in rows}
    for s in rows:
        assert len(set(keys[s])) == len(keys[s])
    assert not (set(keys["train"]) & set(keys["valid"]) or set(keys["train"]) & set(keys["test"])
                or set(keys["valid"]) & set(keys["test"]))
    assert sum(summary["rows"].values()) == sum(len(v) for v in rows.values())
    # the fork was mined twice: its rows repeat within one split and are kept once
    assert sum(summary["dropped_as_repeated_within"].values()) > 0
    written = json.loads((out / "split.json").read_text())
    assert written["repositories"] == summary["repositories"]


def test_pinned_repositories_and_determinism(five_repos, tmp_path):
    pinned = {"shared": "test", "r0": "train"}
    a = split_by_repository(five_repos, tmp_path / "a", seed=7, pinned=pinned)
    b = split_by_repository(five_repos, tmp_path / "b", seed=7, pinned=pinned)
    assert a == b
    assert "shared" in a["repositories"]["test"] and "r0" in a["repositories"]["train"]
    # r0's change that the fork cherry-picked stays in test only
    assert a["dropped_as_repeated_elsewhere"]["train"] == {"test": 1}
    taken = {(r["old_blob"], r["new_blob"]) for r in _rows(tmp_path / "a" / "test")}
    assert not taken & {(r["old_blob"], r["new_blob"]) for r in _rows(tmp_path / "a" / "train")}
    with pytest.raises(PatchcoderError, match="not found"):
        split_by_repository(five_repos, tmp_path / "c", pinned={"flask": "test"})
    with pytest.raises(PatchcoderError, match="already holds a split"):
        split_by_repository(five_repos, tmp_path / "a")


def test_split_command_line(five_repos, tmp_path):
    result = subprocess.run([sys.executable, "-m", "patchcoder", "split", *map(str, five_repos), "--out",
                             str(tmp_path / "s"), "--test-repos", "r1", "--json"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "r1" in json.loads(result.stdout)["repositories"]["test"]
    bad = subprocess.run([sys.executable, "-m", "patchcoder", "split", str(five_repos[0]), "--out",
                          str(tmp_path / "t"), "--valid", "0.6", "--test", "0.5"], capture_output=True, text=True)
    assert bad.returncode == 2 and "nothing for training" in bad.stderr


def test_a_folder_with_files_but_no_split_is_refused_and_kept(five_repos, tmp_path):
    out = tmp_path / "splits"
    (out / "train" / "shards").mkdir(parents=True)
    (out / "train" / "shards" / "00003.parquet").write_bytes(b"left by a killed run")
    with pytest.raises(PatchcoderError, match="not an empty folder"):
        split_by_repository(five_repos, out, valid=0.2, test=0.2)
    assert sorted(p.name for p in out.rglob("*")) == ["00003.parquet", "shards", "train"]


def test_unfinished_or_damaged_input_is_one_line_naming_it(five_repos, tmp_path):
    manifest = five_repos[0] / "manifest.json"
    fields = json.loads(manifest.read_text())
    fields["complete"] = False  # a mine run killed midway
    manifest.write_text(json.dumps(fields))
    with pytest.raises(PatchcoderError, match="has not finished"):
        split_by_repository(five_repos, tmp_path / "a")
    fields["complete"] = True
    manifest.write_text(json.dumps(fields))
    shard = shard_files(five_repos[1])[0]
    table = pq.read_table(shard)
    pq.write_table(table.set_column(table.schema.get_field_index("repo"), "repo",
                                    pa.array([None] * len(table), pa.string())), shard)
    with pytest.raises(PatchcoderError, match="without a repository") as caught:
        split_by_repository(five_repos, tmp_path / "b")
    assert str(shard) in str(caught.value) and not (tmp_path / "b").exists()
    pq.write_table(table.drop_columns(["repo"]), shard)
    with pytest.raises(PatchcoderError, match="not a readable shard") as caught:
        split_by_repository(five_repos, tmp_path / "c")
    assert "\n" not in str(caught.value)


def test_an_interrupted_split_leaves_nothing_to_read_and_runs_again(five_repos, tmp_path, monkeypatch):
    """Stopped while writing (Ctrl-C after the first input shard), a split leaves no shards in --out that a later
    command would read as a split; run again, it gives what an uninterrupted run gives."""
    import patchcoder.training.split as split_module

    whole = split_by_repository(five_repos, tmp_path / "whole", seed=3)
    copy_rows, calls = split_module._copy_rows, []

    def interrupted(index, *args):
        if calls:
            raise KeyboardInterrupt
        calls.append(index)
        copy_rows(index, *args)

    monkeypatch.setattr(split_module, "_copy_rows", interrupted)
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        split_by_repository(five_repos, out, seed=3)
    assert [p.name for p in out.iterdir()] == [split_module.WORK]  # no split folder, no split.json
    monkeypatch.setattr(split_module, "_copy_rows", copy_rows)
    assert split_by_repository(five_repos, out, seed=3) == whole
    assert sorted(p.name for p in out.iterdir()) == ["split.json", "test", "train", "valid"]
    for split in ("train", "valid", "test"):
        got = [pq.read_table(f).to_pylist() for f in shard_files(out / split)]
        assert got == [pq.read_table(f).to_pylist() for f in shard_files(tmp_path / "whole" / split)]


def test_an_out_folder_given_as_a_link_or_as_the_current_folder_is_written_in_place(five_repos, tmp_path, monkeypatch):
    """--out may be a link to an empty folder (elsewhere, perhaps on another disk), or "."; the split is made in it."""
    whole = split_by_repository(five_repos, tmp_path / "whole", seed=3)
    (tmp_path / "target").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "target", target_is_directory=True)
    assert split_by_repository(five_repos, tmp_path / "link", seed=3) == whole
    assert (tmp_path / "link").is_symlink() and (tmp_path / "target" / "split.json").exists()
    (tmp_path / "here").mkdir()
    monkeypatch.chdir(tmp_path / "here")
    assert split_by_repository(five_repos, ".", seed=3) == whole
    assert sorted(p.name for p in (tmp_path / "here").iterdir()) == ["split.json", "test", "train", "valid"]
