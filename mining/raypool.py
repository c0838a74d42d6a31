"""The units of a sharded run (mine, synth, tokenize) as Ray tasks: `--ray [ADDRESS]`, for runs that outgrow one machine.

Ray is imported here only, and only when a run asks for it (`pip install 'patchcoder[ray]'`). The driver stays
what it is in a local run: it plans the units, keeps the manifest, decides questions in plan order and commits
results in plan order; only `work(unit, channel)` runs in the cluster, and writes its shard under the output
folder, which every node must see: a shared file system, or an fsspec URL (the URL travels with the task, whose
process opens the store itself; ground/storage.py). The channel is a small actor, the mailbox: tasks
post progress and questions to it and wait there for answers; the driver collects and answers.

Faults: a task whose worker process (or node) dies is retried once by Ray, from scratch (its shard is written
atomically and a repeated question gets the same answer); a unit that dies twice is `on_crash(unit)`. A killed
driver leaves the manifest as a local run does, and `--resume` redoes the rest.

Plan order without deadlock: a unit's task may wait for its answer, which waits for every earlier unit. No
more tasks are submitted than the cluster has CPUs, so every submitted task runs, and the earliest
undecided unit is never queued behind tasks that wait for it.
"""

from __future__ import annotations

import collections
import contextlib
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from typing import Any

from patchcoder.ground.errors import PatchcoderError
from patchcoder.mining.pool import Results, stop_on_sigterm


def _ray():
    try:
        import ray
    except ImportError:
        raise PatchcoderError("--ray needs Ray, which is not installed: pip install 'patchcoder[ray]'") from None
    return ray


class RayPool:
    """Runs units as Ray tasks on the cluster at `address` (as `ray.init` takes it: None starts or finds a
    local Ray, "auto" a running cluster, "ray://HOST:10001" a remote one). `init_options` go to `ray.init`
    (e.g. `num_cpus`, `object_store_memory` for a local Ray)."""

    inline = False

    def __init__(self, address: str | None = None, *, initializer=None, initargs: tuple = (),
                 died: str = "a worker process died ({error})", init_options: dict | None = None):
        self.address, self.initializer, self.initargs, self.died = address, initializer, initargs, died
        self.init_options = init_options or {}
        self._mailbox = None
        self.connect()  # before any work: no Ray, or no cluster there, is one line at once

    def connect(self):
        """Ray, connected to the cluster (once per process); a cluster that cannot be reached is one line."""
        ray = _ray()
        if not ray.is_initialized():
            _knock(self.address)
            try:
                local = {"include_dashboard": False} if self.address is None else {}  # a new Ray: no web UI
                ray.init(address=self.address, log_to_driver=False, **local, **self.init_options)
            except Exception as exc:  # no cluster there, or a local one that cannot start: nothing to run on
                where = f"at {self.address}" if self.address else "on this machine"
                first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                raise PatchcoderError(f"cannot reach a Ray cluster {where}: {first}") from None
        return ray

    def answer(self, key: str, answer: Any) -> None:
        self._mailbox.answer.remote(key, answer)


    def run(self, units, work, on_result, *, on_progress=None, on_question=None, on_crash=None,
            in_plan_order=False) -> None:
        ray = self.connect()
        results = Results(units, on_result, in_plan_order)
        waiting = collections.deque(units)
        capacity = max(1, int(ray.cluster_resources().get("CPU", 1)))
        window = capacity * 3
        task = ray.remote(num_cpus=1, max_retries=1, retry_exceptions=False)(_run_unit)
        self._mailbox = ray.remote(num_cpus=0)(_Mailbox).remote()
        running: dict = {}  # ObjectRef → unit

        with stop_on_sigterm():
            try:
                while not results.done:
                    while waiting and len(running) < capacity and (not running or len(running) + len(results) < window):
                        unit = waiting.popleft()
                        running[task.remote(work, unit, self._mailbox, self.initializer, self.initargs)] = unit
                    finished = []
                    if running:
                        finished, _ = ray.wait(list(running), num_returns=len(running), timeout=0.05)
                    progress, questions = ray.get(self._mailbox.collect.remote())
                    if progress and on_progress is not None:
                        on_progress(progress)
                    for key, question in questions:
                        on_question(key, question)
                    for ref in finished:
                        unit = running.pop(ref)
                        try:
                            results[unit.key] = ray.get(ref)
                        except ray.exceptions.RayTaskError as exc:  # the unit's own error, as in one process
                            raise exc.cause if isinstance(exc.cause, BaseException) else exc from None
                        except ray.exceptions.RayError as exc:  # its worker or node died, twice
                            if on_crash is None:
                                raise PatchcoderError(self.died.format(error=type(exc).__name__)) from None
                            results[unit.key] = on_crash(unit)
                    results.hand_over()
            except ray.exceptions.RayError as exc:  # the cluster itself failed (not a unit): one line, as in a local run
                first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                raise PatchcoderError(f"the Ray cluster failed: {type(exc).__name__}: {first}") from None
            finally:
                for ref in running:
                    ray.cancel(ref, force=True)
                ray.kill(self._mailbox)
                self._mailbox = None


def _knock(address: str | None) -> None:
    """A head node's address (HOST:PORT) where nothing listens is one line at once: Ray itself keeps retrying
    for many minutes (measured: over 5 on Ray 2.60)."""
    host, colon, port = (address or "").rpartition(":")
    if not colon or not port.isdigit() or "://" in address:
        return  # None or "auto" (a local Ray), ray://HOST:PORT (Ray Client has its own timeout)
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=10).close()
    except OSError as exc:
        raise PatchcoderError(f"cannot reach a Ray cluster at {address}: {exc.strerror or exc}") from None


# ---------------------------------------------------------------------------------------------
# In the cluster


class _Mailbox:
    """The actor between the driver and its tasks: progress counts, questions, answers."""

    def __init__(self):
        self.progress = 0
        self.questions: list[tuple[str, Any]] = []
        self.answers: dict[str, Any] = {}

    def post(self, progress: int, question: tuple[str, Any] | None = None) -> None:
        self.progress += progress
        if question is not None:
            self.answers.pop(question[0], None)  # a retried unit asks again: only the new answer counts
            self.questions.append(question)

    def collect(self) -> tuple[int, list]:
        progress, questions = self.progress, self.questions
        self.progress, self.questions = 0, []
        return progress, questions

    def answer(self, key: str, answer: Any) -> None:
        self.answers[key] = answer

    def take(self, key: str) -> tuple[bool, Any]:
        if key in self.answers:
            return True, self.answers.pop(key)
        return False, None


_prepared: set = set()  # the initializers this worker process has run


def _run_unit(work, unit, mailbox, initializer, initargs):
    if initializer is not None and (initializer, initargs) not in _prepared:
        initializer(*initargs)  # Ray reuses worker processes: once per process, as for a local worker
        _prepared.add((initializer, initargs))
    channel = _RayChannel(mailbox)
    result = work(unit, channel)
    channel.flush()
    return result


class _RayChannel:
    def __init__(self, mailbox):
        self.mailbox = mailbox
        self.unreported = 0

    def progress(self, n: int) -> None:
        self.unreported += n
        if self.unreported >= 64:  # an actor call costs more than a pipe message
            self.flush()

    def flush(self) -> None:
        if self.unreported:
            self.mailbox.post.remote(self.unreported)
            self.unreported = 0

    def ask(self, key: str, question: Any) -> Any:
        import ray

        ray.get(self.mailbox.post.remote(self.unreported, (key, question)))
        self.unreported = 0
        while True:
            found, answer = ray.get(self.mailbox.take.remote(key))
            if found:
                return answer
            time.sleep(0.02)


# ---------------------------------------------------------------------------------------------
# A throwaway cluster on this machine (tests, benchmarks)


class LocalCluster:
    """A Ray cluster started on this machine by `local_cluster`: its `address`, the environment `env` its
    drivers need (its auth token; `patchcoder mine --ray ADDRESS` in a subprocess with that env), and its
    processes."""

    def __init__(self, address: str, env: dict, sessions: list[int], temp_dir: str):
        self.address, self.env, self.sessions, self.temp_dir = address, env, sessions, temp_dir

    def processes(self) -> list:
        """Its live processes (psutil): those in the sessions of its `ray start` commands or naming its temp dir,
        and their children (its workers: `ray::FUNCTION` while they run a task)."""
        import psutil  # Ray ships it (and puts it on the path on import)

        found = {}
        for p in psutil.process_iter(["cmdline"]):
            try:
                if os.getsid(p.pid) in self.sessions or any(self.temp_dir in a for a in p.info["cmdline"] or ()):
                    for q in (p, *p.children(recursive=True)):
                        found[q.pid] = q
            except (psutil.Error, OSError):
                pass
        found.pop(os.getpid(), None)
        return list(found.values())

    def kill(self) -> None:
        """Kill exactly its processes; never `ray stop`, which stops every Ray on the machine, other users' too."""
        import psutil

        doomed = self.processes()
        for p in doomed:
            with contextlib.suppress(psutil.Error):
                p.kill()
        psutil.wait_procs(doomed, timeout=30)


@contextlib.contextmanager
def local_cluster(nodes: int = 1, cpus: int = 1, *, worker_niceness: int | None = None,
                  object_store_mb: int = 100, token: str | None = None) -> Iterator[LocalCluster]:
    """A throwaway Ray cluster for tests and benchmarks: `nodes` nodes on this machine (`ray start --head`,
    then `ray start --address`), `cpus` CPUs each, with its own temp dir and auth token (it accepts its own
    drivers only; `token`: that token, else a new one), stopped at the end even on failure. `worker_niceness`:
    Ray's default lowers its workers' priority by 15; 0 runs them as a local `--jobs` worker runs.

    Every port is chosen here: a raylet whose agents are slow to report their own ports (a loaded machine)
    otherwise exits after 15 s (ray-project/ray#65983). A node counts as started when `ray status` lists it."""
    _ray()
    ray_cli = shutil.which("ray", path=os.path.dirname(sys.executable)) or shutil.which("ray")
    temp_dir = tempfile.mkdtemp(prefix="ray-", dir="/tmp")  # short: Ray's socket paths must fit 107 bytes
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token or secrets.token_hex(32),
           "RAY_worker_register_timeout_seconds": "600"}  # worker start-up on a busy machine
    env.pop("RAY_ADDRESS", None)
    if worker_niceness is not None:
        env["RAY_worker_niceness"] = str(worker_niceness)
    cluster = LocalCluster("", env, [], temp_dir)

    def start(head: bool) -> None:
        ports = {option: _free_port() for option in (
            "--port", "--dashboard-port", "--ray-client-server-port", "--dashboard-agent-listen-port",
            "--dashboard-agent-grpc-port", "--runtime-env-agent-port", "--metrics-export-port")}
        if head:
            cluster.address = f"127.0.0.1:{ports['--port']}"
            where = ["--head", "--include-dashboard", "false", "--temp-dir", temp_dir]
        else:
            where = ["--address", cluster.address]
            for option in ("--port", "--dashboard-port", "--ray-client-server-port"):
                del ports[option]
        proc = subprocess.Popen([ray_cli, "start", *where, "--num-cpus", str(cpus), "--object-store-memory",
                                 str(object_store_mb * 2**20), "--node-ip-address", "127.0.0.1",
                                 "--disable-usage-stats", *(str(x) for pair in ports.items() for x in pair)],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                                start_new_session=True)  # its own session: what it starts can be found by it
        cluster.sessions.append(proc.pid)
        output, _ = proc.communicate(timeout=600)
        if proc.returncode != 0 and "timed out during startup" not in output:
            raise PatchcoderError(f"ray start failed: {' '.join(output.strip().splitlines()[-1:])}")

    def wait_for(n: int) -> None:
        """Until `n` nodes are up: `ray start` gives up after a fixed 30 s, which a loaded machine can exceed,
        but leaves the node starting."""
        deadline = time.monotonic() + 600
        while True:
            status = subprocess.run([ray_cli, "status", "--address", cluster.address], capture_output=True,
                                    text=True, env=env, timeout=600).stdout
            active = status.partition("Active:")[2].partition("Pending:")[0]
            if len(re.findall(r"^\s*\d+ node_", active, re.MULTILINE)) >= n:
                return
            if time.monotonic() > deadline:
                raise PatchcoderError(f"the local Ray cluster did not reach {n} nodes in 10 minutes")
            time.sleep(5)

    try:
        start(head=True)
        wait_for(1)
        for n in range(2, nodes + 1):
            start(head=False)
            wait_for(n)
        yield cluster
    finally:
        cluster.kill()
        shutil.rmtree(temp_dir, ignore_errors=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
