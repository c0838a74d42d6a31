"""Stopping a sharded run: Ctrl-C and SIGTERM end `patchcoder mine --jobs 2` at once together with its worker
processes (exit code 130 / 143, one line), a driver killed with SIGKILL takes its workers with it, and in every
case `--resume` then finishes with exactly the rows of an uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pyarrow.parquet as pq
import pytest

from patchcoder.mining.run import mine
from patchcoder.mining.shards import shard_files
from tests.conftest import as_a_terminal_starts_it
from tests.mining.conftest import grow_edits

ARGS = ["--jobs", "2", "--commits-per-shard", "20", "--no-progress"]


def _rows(out) -> list[dict]:
    return [row for f in shard_files(out) for row in pq.read_table(f).to_pylist()]


def _group(pgid: int) -> set[int]:
    """The live processes of process group `pgid` (a driver started in a session of its own, and everything
    it started: the forkserver, the workers)."""
    if os.path.isdir("/proc"):
        found = set()
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:  # gone meanwhile
                continue
            if fields[0] != "Z" and int(fields[2]) == pgid:  # state, ppid, pgrp
                found.add(int(entry))
        return found
    psutil = pytest.importorskip("psutil")
    return {p.pid for p in psutil.process_iter() if _pgid(p.pid) == pgid and p.status() != psutil.STATUS_ZOMBIE}


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except OSError:
        return None


@pytest.fixture(scope="module")
def long_history(session_repo, tmp_path_factory):
    b = session_repo("stop-long")
    grow_edits(b, 1500)
    reference = tmp_path_factory.mktemp("reference")
    mine([b.path], reference, jobs=1, commits_per_shard=20, show_progress=False)
    return b.path, _rows(reference)


@pytest.mark.parametrize("how, code", [
    ("ctrl-c", 130),
    pytest.param("sigterm", 143, marks=pytest.mark.slow),
    pytest.param("kill-9", -signal.SIGKILL, marks=pytest.mark.slow),
])
def test_a_stopped_run_leaves_no_worker_behind_and_resumes(long_history, tmp_path, how, code):
    repo, reference = long_history
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "patchcoder", "mine", repo, "--out", str(out), *ARGS],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=as_a_terminal_starts_it)
    try:
        manifest = out / "manifest.json"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # stop it once a few units are committed and both workers run
            try:
                if len(json.loads(manifest.read_text())["units"]) >= 2 and len(_group(proc.pid)) >= 4:
                    break
            except (OSError, ValueError, KeyError):
                pass
            time.sleep(0.01)
        workers = _group(proc.pid) - {proc.pid}
        assert len(workers) >= 3  # the forkserver and two workers
        stopped = time.monotonic()
        if how == "ctrl-c":
            os.killpg(proc.pid, signal.SIGINT)  # a terminal's Ctrl-C reaches the whole process group
        else:
            os.kill(proc.pid, signal.SIGTERM if how == "sigterm" else signal.SIGKILL)
        _, stderr = proc.communicate(timeout=60)
        assert proc.returncode == code, stderr
        assert time.monotonic() - stopped < 60  # seconds on a loaded 2-core machine; it hung for > 10 minutes
        if how != "kill-9":
            word = "interrupted" if how == "ctrl-c" else "terminated"
            assert stderr.splitlines() == [f"patchcoder mine: {word}; what is finished is kept: "
                                           "rerun with --resume to continue"]
        deadline = time.monotonic() + 15
        while _group(proc.pid) and time.monotonic() < deadline:  # a killed driver's workers die with it
            time.sleep(0.05)
        assert not _group(proc.pid), f"{len(_group(proc.pid))} processes outlived the driver"
    finally:  # whatever happened, nothing of this test outlives it
        if _group(proc.pid):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert not json.loads(manifest.read_text())["complete"], "the run ended before it was stopped"

    resumed = subprocess.run([sys.executable, "-m", "patchcoder", "mine", repo, "--out", str(out), *ARGS,
                              "--resume"], capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert _rows(out) == reference
    assert not list(out.rglob("*.tmp"))
