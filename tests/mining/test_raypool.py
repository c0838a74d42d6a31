"""mining/raypool.py: mine, synth and tokenize with `--ray` write the bytes of a local run; a worker killed with
SIGKILL mid-unit is retried and no row is lost or doubled; a unit whose worker dies twice is `on_crash`; a killed
driver resumes; without Ray, or with nobody at the address, `--ray` is one line.

The fast cases drive, from this process, a one-node cluster of 2 CPUs; the slow ones use a real two-node cluster
(`ray start --head` and `ray start --address` on this machine) through `patchcoder mine --ray ADDRESS`
subprocesses. Both are raypool.local_cluster: own temp dir, own auth token, stopped by killing exactly their
processes. Without Ray installed (`pip install 'patchcoder[ray]'`) only the not-installed case runs.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import sysconfig
import threading
import time
from pathlib import Path

import pytest

from patchcoder.mining.plan import cut
from patchcoder.mining.run import mine
from tests.mining.conftest import grow_edits, wait_for_units

ROOT = Path(__file__).resolve().parents[2]


def _history(b, n: int = 60):
    for i in range(n):
        path = f"pkg/mod{i % 5}.py"
        b.commit(f"Change {path} to {(i // 5) % 6}", {path: f"VALUE = {(i // 5) % 6}\n\n\ndef get():\n    return VALUE\n".encode()})
    return b


def _files(out: Path) -> dict[str, bytes]:
    """Every file of an output except its manifest (which records timings), by relative path."""
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file() and p.name != "manifest.json"}


def test_ray_without_ray_installed_is_one_line(new_repo, tmp_path):
    repo = _history(new_repo("r"), 3)
    code = ("import sys; sys.modules['ray'] = None; from patchcoder.cli import main; "
            f"sys.exit(main(['mine', {repo.path!r}, '--out', {str(tmp_path / 'out')!r}, '--ray', '--jobs', '1']))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == ["patchcoder mine: error: --ray needs Ray, which is not installed: "
                                          "pip install 'patchcoder[ray]'"]


@pytest.fixture(scope="module")
def local_ray():
    """This process as the driver of a one-node cluster of 2 CPUs (`ray start --head`, by raypool.local_cluster,
    whose ports are all chosen: `ray.init()` starting its own Ray loses its raylet when agents start slowly on a
    busy machine). Its workers are as nice as this process (Ray's default +15 starves them beside a training run)."""
    auth = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    saved = {k: os.environ.get(k) for k in auth}
    os.environ.update(auth)  # the cluster's token for this process's driver; Ray reads it on import
    try:
        ray = pytest.importorskip("ray", reason="Ray is an optional extra: pip install 'patchcoder[ray]'")
        from patchcoder.mining.raypool import local_cluster

        with local_cluster(nodes=1, cpus=2, worker_niceness=0, token=auth["RAY_AUTH_TOKEN"]) as cluster:
            ray.init(address=cluster.address, log_to_driver=False,
                     runtime_env={"env_vars": {"PYTHONPATH": str(ROOT)}})  # tasks unpickle this test's functions
            try:
                yield cluster
            finally:
                ray.shutdown()
    finally:
        for k, v in saved.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)


def test_mine_synth_and_tokenize_on_ray_write_the_bytes_of_a_local_run(local_ray, new_repo, tmp_path):
    from patchcoder.tokenizer.shards import tokenize_dataset
    from patchcoder.training.synth import Source, SynthConfig, synthesize

    repos = [_history(new_repo("a")).path, _history(new_repo("b"), 20).path]
    local = mine(repos, tmp_path / "mine-local", jobs=2, commits_per_shard=7, show_progress=False)
    on_ray = mine(repos, tmp_path / "mine-ray", commits_per_shard=7, show_progress=False, ray="")
    assert local.rows == on_ray.rows > 0 and local.drops == on_ray.drops and local.drops["exact_duplicate"] > 0
    assert _files(tmp_path / "mine-ray") == _files(tmp_path / "mine-local")

    src = tmp_path / "src"
    src.mkdir()
    for name in ("bisect.py", "colorsys.py", "textwrap.py"):
        shutil.copy(Path(sysconfig.get_paths()["stdlib"]) / name, src / name)
    config = SynthConfig(seed=5, per_file=2, files_per_shard=1, max_bytes=50_000)
    synthesize([Source("src", str(src))], tmp_path / "synth-local", config, jobs=2, show_progress=False)
    synthesize([Source("src", str(src))], tmp_path / "synth-ray", config, show_progress=False, ray="")
    assert _files(tmp_path / "synth-ray") == _files(tmp_path / "synth-local") != {}

    tokenize_dataset(tmp_path / "mine-local", tmp_path / "tok-local", jobs=2)
    tokenize_dataset(tmp_path / "mine-local", tmp_path / "tok-ray", ray="")
    assert _files(tmp_path / "tok-ray") == _files(tmp_path / "tok-local") != {}


def test_ray_tasks_write_to_a_url_output_themselves(local_ray, new_repo, tmp_path):
    """`--out file://...`: the URL travels with each task, whose worker process opens the store (ground/storage.py)."""
    from patchcoder.tokenizer.shards import tokenize_dataset

    repos = [_history(new_repo("a"), 30).path]
    mine(repos, tmp_path / "local", jobs=1, commits_per_shard=7, show_progress=False)
    url = f"file://{tmp_path}/bucket"
    mine(repos, f"{url}/mined", commits_per_shard=7, show_progress=False, ray="")
    assert _files(tmp_path / "bucket" / "mined") == _files(tmp_path / "local") != {}
    tokenize_dataset(tmp_path / "local", tmp_path / "tok-local", jobs=1)
    tokenize_dataset(f"{url}/mined", f"{url}/tokens", ray="")
    assert _files(tmp_path / "bucket" / "tokens") == _files(tmp_path / "tok-local") != {}


@pytest.mark.slow
def test_a_unit_whose_worker_dies_twice_is_on_crash_and_the_others_are_whole(local_ray, tmp_path):
    from patchcoder.mining.raypool import RayPool
    from tests.mining.test_pool import add_up

    units = cut(list(range(20)), 2)
    pool = RayPool()
    got = []

    def on_question(key, question):
        pool.answer(key, 10 if question % 2 else 1)

    pool.run(units, functools.partial(add_up, crash_on="00005", log=str(tmp_path), once=False),
             lambda unit, r: got.append(r), on_question=on_question,
             on_crash=lambda unit: {"key": unit.key, "total": None}, in_plan_order=True)
    assert [r["key"] for r in got] == [u.key for u in units]
    assert [r["total"] for r in got] == [None if u.key == "00005" else (10 if sum(u.items) % 2 else 1) * sum(u.items)
                                         for u in units]


def _long_history(b, n: int):
    """`n` commits, each a one-line change in one of 7 longer modules (a unit of 40 takes a while to mine)."""
    body = "".join(f"def f{j}(x):\n    return x * {j} + STEP\n\n\n" for j in range(120))
    for i in range(n):
        b.commit(f"Set step {i}", {f"m{i % 7}.py": f"STEP = {i}\n\n\n{body}".encode()})
    return b


def _titled(process, title: str) -> bool:
    import psutil

    try:
        return process.cmdline()[:1] == [title]
    except psutil.Error:
        return False


def test_a_ray_worker_killed_with_sigkill_mid_mine_is_retried_and_no_row_is_lost_or_doubled(local_ray, new_repo,
                                                                                          tmp_path):
    import psutil  # Ray ships it

    repo = _long_history(new_repo("long"), 240).path
    reference = mine([repo], tmp_path / "reference", jobs=1, commits_per_shard=40, show_progress=False)
    killed = []

    def kill_a_worker_in_a_task():
        seen: dict[int, float] = {}
        deadline = time.monotonic() + 300
        while not killed and time.monotonic() < deadline:
            for p in local_ray.processes():
                if not _titled(p, "ray::_run_unit"):  # the title Ray gives a worker while it runs a unit
                    continue
                if time.monotonic() - seen.setdefault(p.pid, time.monotonic()) > 0.3:  # well into its unit
                    with contextlib.suppress(psutil.Error):
                        p.kill()
                        killed.append(p.pid)
                    break
            time.sleep(0.05)

    killer = threading.Thread(target=kill_a_worker_in_a_task, daemon=True)
    killer.start()
    on_ray = mine([repo], tmp_path / "out", commits_per_shard=40, show_progress=False, ray="")
    killer.join()
    assert killed, "no worker was seen running a unit"
    assert "unit_crashed" not in on_ray.drops and on_ray.rows == reference.rows > 0
    assert _files(tmp_path / "out") == _files(tmp_path / "reference")


# ---------------------------------------------------------------------------------------------
# A real cluster: a head node and a second node on this machine, started and stopped by the test


class Cluster:
    """A running test cluster: its address, and the environment its drivers need (its auth token)."""

    def __init__(self, address: str, env: dict):
        self.address, self.env = address, env

    def mine(self, *args, **kwargs) -> subprocess.CompletedProcess:
        return subprocess.run(_mine_cli(*args), capture_output=True, text=True, env=self.env, **kwargs)


def _mine_cli(*args) -> list[str]:
    return [sys.executable, "-m", "patchcoder", "mine", *args]


@pytest.fixture(scope="module")
def cluster():
    pytest.importorskip("ray", reason="Ray is an optional extra: pip install 'patchcoder[ray]'")
    from patchcoder.mining.raypool import local_cluster

    with local_cluster(nodes=2, cpus=1, worker_niceness=0) as cluster:
        yield Cluster(cluster.address, {**cluster.env, "PYTHONPATH": str(ROOT)})


@pytest.mark.slow
def test_mine_on_a_two_node_cluster_writes_the_bytes_of_a_local_run(cluster, new_repo, tmp_path):
    repos = [_long_history(new_repo("a"), 120).path, _history(new_repo("b"), 40).path]
    reference = tmp_path / "reference"
    mine(repos, reference, jobs=2, commits_per_shard=20, show_progress=False)
    count = f"import ray; ray.init(address={cluster.address!r}); print(sum(n['Alive'] for n in ray.nodes()))"
    nodes = subprocess.run([sys.executable, "-c", count],
                           capture_output=True, text=True, env=cluster.env, timeout=600)
    assert nodes.stdout.split()[-1:] == ["2"], nodes.stderr
    result = cluster.mine(*repos, "--out", str(tmp_path / "out"), "--commits-per-shard", "20", "--no-progress",
                          "--ray", cluster.address, timeout=900)
    assert result.returncode == 0, result.stderr
    assert _files(tmp_path / "out") == _files(reference)


@pytest.mark.slow
def test_a_killed_driver_resumes_on_a_real_cluster(cluster, new_repo, tmp_path):
    b = new_repo("long")
    grow_edits(b, 600)
    reference = tmp_path / "reference"
    mine([b.path], reference, jobs=1, commits_per_shard=20, show_progress=False)

    out = tmp_path / "out"
    args = [b.path, "--out", str(out), "--commits-per-shard", "20", "--no-progress", "--ray", cluster.address]
    proc = subprocess.Popen(_mine_cli(*args), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=cluster.env,
                            start_new_session=True)
    manifest = out / "manifest.json"
    wait_for_units(manifest, 2, seconds=600, proc=proc, poll=0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not json.loads(manifest.read_text())["complete"], "the run ended before the driver was killed"
    resumed = cluster.mine(*args, "--resume", timeout=900)
    assert resumed.returncode == 0, resumed.stderr
    assert _files(out) == _files(reference)


def test_an_unreachable_cluster_is_one_line_at_once(new_repo, tmp_path):
    pytest.importorskip("ray", reason="Ray is an optional extra: pip install 'patchcoder[ray]'")
    from patchcoder.mining.raypool import _free_port

    repo = _history(new_repo("r"), 3)
    result = subprocess.run(_mine_cli(repo.path, "--out", str(tmp_path / "out"), "--ray", f"127.0.0.1:{_free_port()}"),
                            capture_output=True, text=True, timeout=120)  # Ray alone retried for minutes
    assert result.returncode == 2
    assert len(result.stderr.splitlines()) == 1 and "cannot reach a Ray cluster at 127.0.0.1:" in result.stderr
