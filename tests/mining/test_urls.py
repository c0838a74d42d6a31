"""Sharded runs at fsspec URLs (ground/storage.py): mine → tokenize and synth with `--out`/`--data` file:// URLs and
two worker processes write the bytes of a local run; a memory:// run (an object store inside this process) never
touches the local file system, and a run cut short resumes there; a run killed with SIGKILL resumes at a URL."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
from pathlib import Path

import fsspec
import pytest

from patchcoder.cli import main
from patchcoder.ground.errors import PatchcoderError
from patchcoder.mining.run import mine
from patchcoder.tokenizer.loader import TokenShards
from patchcoder.tokenizer.shards import tokenize_dataset
from patchcoder.training.synth import Source, SynthConfig, synthesize
from tests.mining.conftest import grow_edits, wait_for_units

ARGS = ["--commits-per-shard", "10", "--no-progress"]


def _files(out: Path) -> dict[str, bytes]:
    """Every file of an output folder but its manifest, by relative path."""
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*"))
            if p.is_file() and p.name != "manifest.json"}


def _units(manifest: bytes) -> dict:
    return {key: {k: v for k, v in entry.items() if k != "cpu_seconds"}
            for key, entry in json.loads(manifest)["units"].items()}


@pytest.fixture
def sources(tmp_path) -> list[Source]:
    src = tmp_path / "src"
    src.mkdir()
    for name in ("bisect.py", "colorsys.py", "shlex.py"):
        shutil.copy(Path(sysconfig.get_paths()["stdlib"]) / name, src / name)
    return [Source("src", str(src))]


SYNTH = SynthConfig(seed=5, per_file=2, files_per_shard=1, max_bytes=50_000)


def test_mine_then_tokenize_at_file_urls_with_two_jobs_write_the_bytes_of_a_local_run(new_repo, tmp_path):
    repo = grow_edits(new_repo("r"), 40).path
    local = tmp_path / "local"
    mine([repo], local / "mined", jobs=1, commits_per_shard=10, show_progress=False)
    tokenize_dataset(local / "mined", local / "tokens", jobs=1)

    url = f"file://{tmp_path}/bucket"
    assert main(["mine", repo, "--out", f"{url}/mined", "--jobs", "2", *ARGS]) == 0
    assert main(["tokenize", "--data", f"{url}/mined", "--out", f"{url}/tokens", "--jobs", "2", "--no-progress"]) == 0
    for name in ("mined", "tokens"):
        written = tmp_path / "bucket" / name
        assert _files(written) == _files(local / name), name
        assert _units((written / "manifest.json").read_bytes()) == _units((local / name / "manifest.json").read_bytes())
    assert len(_files(local / "mined")) == 4 and len(_files(local / "tokens")) == 16
    assert json.loads((tmp_path / "bucket" / "tokens" / "manifest.json").read_text())["data"] == f"{url}/mined"
    assert not list((tmp_path / "bucket").rglob("*.tmp"))


def test_synth_at_a_file_url_with_two_jobs_writes_the_bytes_of_a_local_run(tmp_path, sources):
    synthesize(sources, tmp_path / "local", SYNTH, jobs=1, show_progress=False)
    assert main(["synth", *[s.root for s in sources], "--out", f"file://{tmp_path}/bucket/synth", "--seed", "5",
                 "--per-file", "2", "--files-per-shard", "1", "--max-bytes", "50000", "--jobs", "2",
                 "--no-progress"]) == 0
    written = tmp_path / "bucket" / "synth"
    assert _files(written) == _files(tmp_path / "local") and len(_files(written)) == 3
    assert _units((written / "manifest.json").read_bytes()) == _units((tmp_path / "local" / "manifest.json").read_bytes())


_TOUCHED: list | None = None  # while a list: what the audit hook saw opened, made or listed under a memory: name
_FILE_EVENTS = {"open", "os.mkdir", "os.makedirs", "os.rename", "os.replace", "os.remove", "os.listdir", "os.scandir",
                "os.chmod", "shutil.rmtree", "shutil.move"}


def _audit(event: str, args: tuple) -> None:
    if _TOUCHED is not None and event in _FILE_EVENTS and args and "memory:" in str(args[0]):
        _TOUCHED.append((event, str(args[0])))


def test_a_memory_url_run_never_touches_the_local_file_system_and_resumes(new_repo, tmp_path, sources, monkeypatch):
    """memory:// is an object store inside this process: no rename, no folders. Had any step of mine, tokenize
    or synth used os or pathlib on the URL, it would have opened or made `memory:/...` under the working folder."""
    global _TOUCHED
    repo = grow_edits(new_repo("r"), 40).path
    local = tmp_path / "local"
    mine([repo], local / "mined", jobs=1, commits_per_shard=10, show_progress=False)
    tokenize_dataset(local / "mined", local / "tokens", jobs=1)
    synthesize(sources, local / "synth", SYNTH, jobs=1, show_progress=False)

    fs = fsspec.filesystem("memory")
    root = f"/urls-test/{tmp_path.name}"
    url = f"memory://{root}"

    def files(name: str) -> dict[str, bytes]:
        prefix = f"{root}/{name}/"
        return {p[len(prefix):]: fs.cat_file(p) for p in sorted(fs.find(prefix)) if not p.endswith("/manifest.json")}

    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    sys.addaudithook(_audit)  # a hook stays for the process; it records only while _TOUCHED is a list
    _TOUCHED = []
    try:
        mine([repo], f"{url}/mined", jobs=1, commits_per_shard=10, show_progress=False)
        tokenize_dataset(f"{url}/mined", f"{url}/tokens", jobs=1)
        synthesize(sources, f"{url}/synth", SYNTH, jobs=1, show_progress=False)
        for name in ("mined", "tokens", "synth"):
            assert files(name) == _files(local / name) != {}, name

        # A run cut short: the last two units were written but never listed (one left a stale part, as an upload
        # that failed would on a store without atomic PUTs), and the manifest says the run is not complete.
        manifest = json.loads(fs.cat_file(f"{root}/mined/manifest.json"))
        lost = sorted(manifest["units"])[-2:]
        stale = manifest["units"][lost[0]]["shard"]
        for key in lost:
            del manifest["units"][key]
        manifest["complete"] = False
        fs.pipe_file(f"{root}/mined/manifest.json", json.dumps(manifest).encode())
        fs.pipe_file(f"{root}/mined/{stale}", b"PAR1 and then nothing")
        with pytest.raises(PatchcoderError, match="--resume"):
            mine([repo], f"{url}/mined", jobs=1, commits_per_shard=10, show_progress=False)
        resumed = mine([repo], f"{url}/mined", jobs=1, commits_per_shard=10, resume=True, show_progress=False)
        assert resumed.resumed_units == 2 and resumed.commits_this_run == 20
        assert files("mined") == _files(local / "mined")

        tokens = json.loads(fs.cat_file(f"{root}/tokens/manifest.json"))
        del tokens["units"][max(tokens["units"])]
        fs.pipe_file(f"{root}/tokens/manifest.json", json.dumps(tokens).encode())
        again = tokenize_dataset(f"{url}/mined", f"{url}/tokens", jobs=1, resume=True)
        assert again.units == 1 and again.skipped_units == 3
        assert files("tokens") == _files(local / "tokens")
        touched = _TOUCHED
    finally:
        _TOUCHED = None
        fs.rm(root, recursive=True)
    assert touched == [] and list(cwd.iterdir()) == []


@pytest.mark.slow
def test_a_run_killed_with_sigkill_resumes_at_a_file_url(new_repo, tmp_path):
    repo = grow_edits(new_repo("long"), 600).path
    reference = tmp_path / "reference"
    mine([repo], reference, jobs=1, commits_per_shard=20, show_progress=False)

    out = tmp_path / "bucket" / "mined"
    argv = [sys.executable, "-m", "patchcoder", "mine", repo, "--out", f"file://{out}", "--jobs", "2",
            "--commits-per-shard", "20", "--no-progress"]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    manifest = out / "manifest.json"
    wait_for_units(manifest, 3, seconds=60)  # kill as soon as a few units are committed
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    state = json.loads(manifest.read_text())  # whole: the manifest is replaced by a rename at a file:// URL too
    assert not state["complete"], "the run finished before it could be killed; the test proves nothing"
    assert 3 <= len(state["units"]) < 30

    result = subprocess.run([*argv, "--resume", "--json"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["resumed_units"] >= 3
    assert _files(out) == _files(reference) != {}
    assert not list(out.rglob("*.tmp"))


def test_training_reads_token_shards_from_a_folder_not_a_url():
    with pytest.raises(PatchcoderError, match="copy them here first"):
        TokenShards("s3://bucket/tokens")
