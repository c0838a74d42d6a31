"""`patchcoder mine`: shards and manifest, --jobs invariance, kill-and-resume, and the command line's errors."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import datasets
import pyarrow.parquet as pq
import pytest

from patchcoder.mining import walk
from patchcoder.mining.filters import FilterConfig
from patchcoder.mining.run import mine
from patchcoder.mining.shards import SCHEMA, shard_files
from tests.mining.conftest import grow_edits

COLUMNS = ["repo", "commit", "parent", "message", "path", "old_path", "change", "language", "old", "new",
           "old_blob", "new_blob", "diff", "added", "deleted", "hunks"]


def _rows(out) -> list[dict]:
    files = shard_files(out)
    if not files:
        return []
    return [row for f in files for row in pq.read_table(f).to_pylist()]


def _cli(*args, **kwargs):
    return subprocess.run([sys.executable, "-m", "patchcoder", *args], capture_output=True, text=True, **kwargs)


def test_cli_writes_shards_datasets_can_load(history, tmp_path):
    out = tmp_path / "out"
    result = _cli("mine", history.path, "--out", str(out), "--json", "--jobs", "1")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["rows"] == 11 and summary["commits_seen"] == 16 and summary["drops"]["merge"] == 1
    assert "commits kept" in result.stderr  # the rich summary table goes to stderr
    ds = datasets.load_dataset("parquet", data_files=str(out / "**" / "*.parquet"), split="train")
    assert set(COLUMNS) <= set(ds.column_names)
    assert len(ds) == 11
    keys = [(r["commit"], r["path"]) for r in ds]
    assert len(set(keys)) == len(keys)
    expected = [p.to_row() for p in walk(history.path)]
    assert sorted(ds.to_list(), key=lambda r: (r["author_time"], r["path"])) == sorted(
        expected, key=lambda r: (r["author_time"], r["path"]))
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["complete"] is True
    assert pq.read_schema(shard_files(out)[0]).remove_metadata() == SCHEMA


def test_output_does_not_depend_on_jobs(new_repo, tmp_path):
    b = _many_commits(new_repo("many"), 120)
    c = _many_commits(new_repo("other"), 40)
    one = mine([b.path, c.path], tmp_path / "one", jobs=1, commits_per_shard=7, show_progress=False)
    two = mine([b.path, c.path], tmp_path / "two", jobs=2, commits_per_shard=7, show_progress=False)
    assert one.rows == two.rows > 0 and one.drops == two.drops
    assert [os.path.relpath(f, tmp_path / "one") for f in shard_files(tmp_path / "one")] == \
           [os.path.relpath(f, tmp_path / "two") for f in shard_files(tmp_path / "two")]
    assert _rows(tmp_path / "one") == _rows(tmp_path / "two")
    # duplicates across shards and repositories are removed in plan order, once
    assert one.drops["exact_duplicate"] > 0
    rows = _rows(tmp_path / "one")
    assert len({(r["old_blob"], r["new_blob"]) for r in rows}) == len(rows)


def _many_commits(b, n: int, name: str = "VALUE"):
    """n commits editing a few files in a cycle, so that later commits repeat earlier blob pairs."""
    for i in range(n):
        path = f"pkg/mod{i % 5}.py"
        value = (i // 5) % 6
        b.commit(f"Change {path} to {value}", {path: f"{name} = {value}\n\n\ndef get():\n    return {name}\n".encode()})
    return b


def test_resume_after_sigkill_gives_the_uninterrupted_rows(new_repo, tmp_path):
    b = new_repo("long")
    grow_edits(b, 1500)
    reference = tmp_path / "reference"
    mine([b.path], reference, jobs=2, commits_per_shard=25, show_progress=False)

    out = tmp_path / "killed"
    argv = [sys.executable, "-m", "patchcoder", "mine", b.path, "--out", str(out), "--jobs", "2",
            "--commits-per-shard", "25", "--no-progress"]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    manifest = out / "manifest.json"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # kill as soon as a few units are committed
        if manifest.exists():
            try:
                if len(json.loads(manifest.read_text())["units"]) >= 3:
                    break
            except (json.JSONDecodeError, KeyError):
                pass
        time.sleep(0.005)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    state = json.loads(manifest.read_text())
    assert not state["complete"], "the run finished before it could be killed; the test proves nothing"
    assert 3 <= len(state["units"]) < 60

    result = _cli("mine", b.path, "--out", str(out), "--jobs", "2", "--commits-per-shard", "25", "--resume",
                  "--json", "--no-progress")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["resumed_units"] >= 3
    assert _rows(out) == _rows(reference)
    assert [os.path.basename(f) for f in shard_files(out)] == [os.path.basename(f) for f in shard_files(reference)]
    assert not list(out.rglob("*.tmp")) and not list(out.rglob("*.pending"))


def test_existing_output_needs_resume_and_same_options(history, tmp_path):
    out = tmp_path / "out"
    assert _cli("mine", history.path, "--out", str(out), "--jobs", "1").returncode == 0
    again = _cli("mine", history.path, "--out", str(out))
    assert again.returncode == 2 and "--resume" in again.stderr
    different = _cli("mine", history.path, "--out", str(out), "--resume", "--max-files", "3")
    assert different.returncode == 2 and "different options" in different.stderr
    same = _cli("mine", history.path, "--out", str(out), "--resume", "--json")
    assert same.returncode == 0 and json.loads(same.stdout)["rows"] == 11


def test_directory_of_repositories_counts_non_repositories(new_repo, tmp_path):
    _many_commits(new_repo("repos/alpha"), 5)
    _many_commits(new_repo("repos/beta"), 5, name="OTHER")
    (tmp_path / "repos" / "notes").mkdir()
    result = _cli("mine", str(tmp_path / "repos"), "--out", str(tmp_path / "out"), "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["repos"] == 2 and summary["drops"]["not_a_repository"] == 1
    assert {r["repo"] for r in _rows(tmp_path / "out")} == {"alpha", "beta"}


def test_repositories_can_be_named(new_repo, tmp_path):
    a = _many_commits(new_repo("mirror-a/repo"), 5)
    b = _many_commits(new_repo("mirror-b/repo"), 5, name="OTHER")
    result = _cli("mine", f"pallets/click={a.path}", b.path, "--out", str(tmp_path / "out"), "--json")
    assert result.returncode == 0, result.stderr
    assert {r["repo"] for r in _rows(tmp_path / "out")} == {"pallets/click", "repo"}
    assert sorted(p.name for p in (tmp_path / "out" / "shards").iterdir()) == ["pallets_click", "repo"]
    bad = _cli("mine", f"x={tmp_path}", "--out", str(tmp_path / "out2"))
    assert bad.returncode == 2 and "not a git repository" in bad.stderr


@pytest.mark.parametrize("args, message", [
    (["mine", "{plain}", "--out", "{out}"], "is not a git repository"),
    (["mine", "{history}", "{plain}", "--out", "{out}"], "is not a git repository"),
    (["mine", "{history}"], "the following arguments are required: --out"),
    (["mine", "{history}", "--out", "{out}", "--jobs", "zero"], "expected a whole number"),
    (["mine", "{history}", "--out", "{out}", "--since", "yesterday"], "expected an ISO date"),
    (["mine", "{history}", "--out", "{out}", "--languages", ","], "--languages: expected at least one language"),
    (["mine", "{history}", "--out", "{out}", "--languages", "python,klingon"], "unknown language 'klingon'; known: "),
    (["mine", "{history}", "--out", "{out}", "--branch", "nope"], "names no commit"),
    (["frobnicate"], "invalid choice"),
])
def test_bad_command_lines_exit_2_with_one_line(history, tmp_path, args, message):
    (tmp_path / "plain").mkdir()
    fill = {"plain": str(tmp_path / "plain"), "out": str(tmp_path / "out"), "history": history.path}
    result = _cli(*[a.format(**fill) for a in args])
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and message in result.stderr, result.stderr
    assert not (tmp_path / "out" / "shards").exists()  # nothing was mined


def _missing(package: str):
    """Skips the case where `package` (an optional storage backend) is installed after all."""
    import importlib.util

    return pytest.mark.skipif(importlib.util.find_spec(package) is not None, reason=f"{package} is installed")


@pytest.mark.parametrize("args, message", [
    pytest.param(["mine", "REPO", "--out", "s3://bucket/mined"],
                 "argument --out: s3://bucket/mined: s3:// needs the package s3fs, which is not installed: "
                 "pip install 'patchcoder[s3]'", marks=_missing("s3fs")),
    pytest.param(["synth", "REPO", "--out", "gs://bucket/synth"],
                 "gs:// needs the package gcsfs, which is not installed: pip install 'patchcoder[gcs]'",
                 marks=_missing("gcsfs")),
    pytest.param(["tokenize", "--data", "abfs://container/mined", "--out", "tokens"],
                 "argument --data: abfs://container/mined: abfs:// needs the package adlfs, which is not installed: "
                 "pip install adlfs", marks=_missing("adlfs")),
    (["tokenize", "--data", "mined", "--out", "nosuch://tokens"],
     "no fsspec file system is known for nosuch:// (give a folder path, or a URL such as s3://BUCKET/PREFIX)"),
], ids=["mine-s3", "synth-gs", "tokenize-abfs-data", "tokenize-unknown-out"])
def test_a_url_whose_storage_is_not_installed_is_one_line_and_writes_nothing(history, tmp_path, args, message):
    """A URL's scheme needs its fsspec package (s3fs, gcsfs, ...): without it, one line naming what to install,
    before any work, and no local folder named `s3:` either."""
    result = _cli(*[history.path if a == "REPO" else a for a in args], cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and message in lines[0], lines
    assert sorted(p.name for p in tmp_path.iterdir()) == ["history"]  # no folder `s3:` (or any other)


def test_shard_folders_are_unique_and_every_shard_is_visible_to_datasets(new_repo, tmp_path):
    paths = [_many_commits(new_repo(where), 3, name=f"N{i}").path
             for i, where in enumerate(["m1/proj", "m2/proj", "m2/proj-2", "m3/.github", "m3/__init"])]
    out = tmp_path / "out"
    result = _cli("mine", *paths, "--out", str(out), "--json", "--jobs", "1")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["repos"] == 5 and summary["rows"] == 5  # one row each: the three files begin alike
    folders = sorted(p.name for p in (out / "shards").iterdir())
    assert folders == ["github", "init", "proj", "proj-2", "proj-3"]
    assert len({r["repo"] for r in _rows(out)}) == 5
    ds = datasets.load_dataset("parquet", data_files=str(out / "shards" / "**" / "*.parquet"), split="train")
    assert len(ds) == 5


def test_a_damaged_or_lost_repository_is_skipped_named_and_counted(new_repo, tmp_path):
    _many_commits(new_repo("repos/good"), 4)
    torn = _many_commits(new_repo("repos/torn"), 4, name="TORN")
    with open(os.path.join(torn.repo.path, "refs", "heads", "main"), "w") as f:
        f.write("0123\n")  # a truncated reference
    lost = _many_commits(new_repo("repos/lost"), 4, name="LOST")
    head = str(lost.repo.head.target)
    os.unlink(os.path.join(lost.repo.path, "objects", head[:2], head[2:]))  # its head commit is gone
    result = _cli("mine", str(tmp_path / "repos"), "--out", str(tmp_path / "out"), "--json", "--jobs", "1")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["repos"] == 1 and summary["rows"] == 1
    assert summary["drops"]["bad_head"] == 1 and summary["drops"]["unreadable_repository"] == 1
    assert "corrupt_commit" not in summary["drops"]
    assert "torn" in result.stderr and "HEAD cannot be read" in result.stderr
    assert {r["repo"] for r in _rows(tmp_path / "out")} == {"good"}


KILL_IN_WRITE = """
import os
from patchcoder.mining import shards
_write = shards.write_shard
def write_shard(where, rows):
    if str(where).endswith(os.environ["PATCHCODER_TEST_KILL_SHARD"]):
        os._exit(137)  # as the OOM killer would, every time: after the unit's verdict, before its shard is stored
    return _write(where, rows)
shards.write_shard = write_shard
"""


def test_a_unit_that_dies_twice_after_its_verdict_is_recorded_without_rows(new_repo, tmp_path):
    b = new_repo("dies")
    for i in range(6):
        b.commit(f"Add m{i}", {f"m{i}.py": f"x = {i}\n".encode()})
    inject = tmp_path / "inject"
    inject.mkdir()
    (inject / "sitecustomize.py").write_text(KILL_IN_WRITE)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(inject), os.getcwd()]),
               PATCHCODER_TEST_KILL_SHARD="dies/00001.parquet")
    out = tmp_path / "out"
    args = ["mine", b.path, "--out", str(out), "--jobs", "2", "--commits-per-shard", "2", "--json", "--no-progress"]
    result = _cli(*args, env=env)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["drops"]["unit_crashed"] == 2 and summary["drops"]["rows_lost"] == 2
    assert summary["rows"] == 4 == len(_rows(out))
    units = json.loads((out / "manifest.json").read_text())["units"]
    assert units["dies/00001"]["rows"] == 0 and units["dies/00001"]["shard"] is None
    assert all((out / u["shard"]).exists() for u in units.values() if u["shard"])
    again = _cli(*args[:-2], "--resume", "--json")  # no fault any more: the finished run is read back whole
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["rows"] == 4


def test_a_resume_rebuilds_the_near_duplicate_filter_from_the_finished_shards(new_repo, tmp_path):
    b = new_repo("near")
    body = "".join(f"    total += values[{i}] * weight\n" for i in range(30))
    b.commit("Add f", {"a.py": ("def f(values, weight):\n    total = 0\n" + body + "    return total\n").encode()})
    b.commit("Add g", {"b.py": ("def g(values, weight):\n    total = 0\n" + body + "    return total\n").encode()})
    b.commit("Use a loop in f", {"a.py": b"def f(values, weight):\n    return sum(v * weight for v in values)\n"})
    b.commit("Use a loop in g", {"b.py": b"def g(values, weight):\n    return sum(v * weight for v in values)\n"})
    config = FilterConfig(near_duplicates=0.8)
    whole = mine([b.path], tmp_path / "whole", config=config, jobs=1, commits_per_shard=1, show_progress=False)
    assert whole.rows == 2 and whole.drops["near_duplicate"] == 2  # g repeats f, twice
    out = tmp_path / "cut"
    shutil.copytree(tmp_path / "whole", out)
    manifest = json.loads((out / "manifest.json").read_text())
    for key in ("near/00001", "near/00003"):  # as if the run had been killed before these units
        assert manifest["units"].pop(key)["rows"] == 0
    manifest["complete"] = False
    (out / "manifest.json").write_text(json.dumps(manifest))
    resumed = mine([b.path], out, config=config, jobs=1, commits_per_shard=1, resume=True, show_progress=False)
    assert resumed.resumed_units == 2 and resumed.rows == 2 and resumed.drops["near_duplicate"] == 2
    assert _rows(out) == _rows(tmp_path / "whole")


def test_until_a_date_is_recorded_whole_day_and_an_older_run_is_not_resumed_with_the_new_meaning(history, tmp_path):
    out = tmp_path / "out"
    mine([history.path], out, until="2023-11-14", jobs=1, show_progress=False)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["request"]["until"] == "2023-11-14 (whole day)"
    manifest["request"]["until"], manifest["complete"] = "2023-11-14", False  # as a run made before the change
    (out / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(Exception, match="different"):
        mine([history.path], out, until="2023-11-14", jobs=1, resume=True, show_progress=False)


def test_names_that_differ_only_in_case_keep_their_names_and_get_two_folders(new_repo, tmp_path):
    a = _many_commits(new_repo("m1/lib"), 3)
    b = _many_commits(new_repo("m2/lib"), 3, name="OTHER")
    result = _cli("mine", f"Acme/lib={a.path}", f"acme/lib={b.path}", "--out", str(tmp_path / "out"), "--json")
    assert result.returncode == 0, result.stderr
    assert {r["repo"] for r in _rows(tmp_path / "out")} == {"Acme/lib", "acme/lib"}
    assert sorted(p.name for p in (tmp_path / "out" / "shards").iterdir()) == ["Acme_lib", "acme_lib-2"]
