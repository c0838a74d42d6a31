"""The worker pool of a sharded run (mine, synth, tokenize): runs units of work and hands their results back.

The driver plans the units (plan.py), keeps the manifest and commits each result through `on_result`.
A unit's work runs as `work(unit, channel)`, a picklable callable that writes the unit's shard itself
(rows never cross processes) and returns small counts; through the `Channel` it reports progress and
asks the driver questions only the driver can answer (mine: which of its rows duplicate rows of earlier
units, decided strictly in plan order). `make_pool` picks the in-process pool for one job or one unit,
else local worker processes.

Stopping: Ctrl-C (SIGINT) and SIGTERM stop a run at once with its workers, and a worker never outlives
its driver (ProcessPool); the output stays resumable because only the driver commits a unit. Units on
other machines (Ray tasks, raypool.py) are another implementation of the `Pool` protocol.
"""

from __future__ import annotations

import collections
import contextlib
import multiprocessing
import multiprocessing.connection as mpc
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from patchcoder.ground.errors import PatchcoderError, Terminated
from patchcoder.mining.plan import Unit


class Channel(Protocol):
    """What a unit's work may say to the driver while it runs."""

    def progress(self, n: int) -> None:
        """`n` more of the run's counted things (e.g. commits) are done."""

    def ask(self, key: str, question: Any) -> Any:
        """Ask the driver about unit `key`; waits for its `Pool.answer` (a JSON value)."""


class Pool(Protocol):
    inline: bool  # the work runs in this process (its CPU time counts in this process's)

    def run(self, units: Sequence[Unit], work: Callable[[Unit, Channel], Any],
            on_result: Callable[[Unit, Any], None], *, on_progress: Callable[[int], None] | None = None,
            on_question: Callable[[str, Any], None] | None = None,
            on_crash: Callable[[Unit], Any] | None = None, in_plan_order: bool = False) -> None:
        """Run `work` on every unit and call `on_result(unit, result)` for each, in this process.

        `in_plan_order`: results come in the order of `units`, else as units finish. `on_progress(n)` and
        `on_question(key, question)` receive what units send through their channel; the driver replies
        with `answer`. A unit whose worker process dies twice gets `on_crash(unit)` as its result; with no
        `on_crash`, the first death ends the run with a PatchcoderError.
        """

    def answer(self, key: str, answer: Any) -> None:
        """Reply to unit `key`'s question (now, or later when the driver has decided)."""


def make_pool(jobs: int, units: Sequence[Unit], *, initializer: Callable | None = None, initargs: tuple = (),
              died: str = "a worker process died ({error})", ray: str | None = None) -> Pool:
    """The pool for `units`: this process for one job or at most one unit, else `jobs` worker processes;
    with `ray` (an address as `ray.init` takes it, "" for its default), Ray tasks (raypool.py).

    `initializer(*initargs)` prepares each process that runs units (e.g. loads a vocabulary); `died` is
    the error when workers die (`{error}`: what happened).
    """
    if ray is not None:
        from patchcoder.mining.raypool import RayPool

        return RayPool(ray or None, initializer=initializer, initargs=initargs, died=died)
    if jobs <= 1 or len(units) <= 1:
        return InlinePool(initializer, initargs)
    return ProcessPool(jobs, initializer=initializer, initargs=initargs, died=died)


class InlinePool:
    """Runs the units one after another in this process, in plan order; it is also their channel."""

    inline = True

    def __init__(self, initializer: Callable | None = None, initargs: tuple = ()):
        self.initializer, self.initargs = initializer, initargs
        self._answers: dict[str, Any] = {}
        self._on_progress = self._on_question = None

    def run(self, units, work, on_result, *, on_progress=None, on_question=None, on_crash=None,
            in_plan_order=False) -> None:
        self._on_progress, self._on_question = on_progress, on_question
        with stop_on_sigterm():
            if self.initializer is not None:
                self.initializer(*self.initargs)
            for unit in units:
                on_result(unit, work(unit, self))

    def answer(self, key: str, answer: Any) -> None:
        self._answers[key] = answer

    def progress(self, n: int) -> None:
        if self._on_progress is not None:
            self._on_progress(n)

    def ask(self, key: str, question: Any) -> Any:
        self._on_question(key, question)  # units come in plan order: the driver can always decide at once
        return self._answers.pop(key)


class Results:
    """The results of a run's units on their way to `on_result`: handed over in plan order when asked (each
    waits for the units before it), else as they come. Both pools keep theirs here."""

    def __init__(self, units: Sequence[Unit], on_result: Callable[[Unit, Any], None], in_plan_order: bool):
        self.units, self.on_result, self.in_plan_order = list(units), on_result, in_plan_order
        self.by_key = {u.key: u for u in self.units}
        self.held: dict[str, Any] = {}
        self.delivered = 0  # in plan order, also the position of the next unit to hand over

    def __setitem__(self, key: str, result: Any) -> None:
        self.held[key] = result

    def __len__(self) -> int:
        """How many results wait to be handed over."""
        return len(self.held)

    @property
    def done(self) -> bool:
        return self.delivered == len(self.units)

    def hand_over(self) -> None:
        if self.in_plan_order:
            while not self.done and self.units[self.delivered].key in self.held:
                unit = self.units[self.delivered]
                self.on_result(unit, self.held.pop(unit.key))
                self.delivered += 1
        else:
            for key in list(self.held):
                self.on_result(self.by_key[key], self.held.pop(key))
                self.delivered += 1


class ProcessPool:
    """Runs units in `jobs` local worker processes (forkserver), handed out in plan order.

    Each worker has a pipe of its own to the driver: it receives units and answers, and sends progress,
    questions and results. Nothing is shared between workers (no queue, no lock), so a worker that dies
    (a crash inside libgit2 on a damaged pack, the OOM killer) takes nothing with it but its unit: with
    `on_crash` the unit is retried once in a fresh worker and its second death is `on_crash(unit)`;
    workers that die twice in a row before taking a unit end the run. (A queue shared by all workers, as
    before, could be left locked forever by a worker killed while writing to it: the run hung.) Units are
    handed out in plan order, so the lowest undecided unit is always being worked on by a worker that is
    not waiting: questions decided in plan order cannot deadlock.

    Stopping: workers ignore SIGINT (a terminal's Ctrl-C reaches the whole process group) and die with the
    driver (the kernel kills them when their parent dies, on Linux; elsewhere they watch it; an idle
    worker also leaves when its pipe closes). When the driver stops — Ctrl-C, SIGTERM (`Terminated`), an
    error — it kills its workers at once: only the driver commits a unit, so `--resume` redoes exactly the
    units that were cut short.
    """

    inline = False

    def __init__(self, jobs: int, *, initializer: Callable | None = None, initargs: tuple = (),
                 died: str = "a worker process died ({error})"):
        self.jobs, self.initializer, self.initargs, self.died = jobs, initializer, initargs, died
        self._asking: dict[str, _Worker] = {}  # units whose worker waits for an answer

    def answer(self, key: str, answer: Any) -> None:
        worker = self._asking.pop(key, None)
        if worker is not None:  # else the unit's worker died: its retry asks again
            worker.send(answer)

    def run(self, units, work, on_result, *, on_progress=None, on_question=None, on_crash=None,
            in_plan_order=False) -> None:
        ctx = multiprocessing.get_context("spawn" if os.name != "posix" else "forkserver")
        if ctx.get_start_method() == "forkserver":
            # The forkserver imports the work's module once (when it starts, with this process's first pool),
            # and every worker forked from it has it: a replaced worker starts in milliseconds, not seconds.
            ctx.set_forkserver_preload([getattr(work, "func", work).__module__])
        position = {u.key: i for i, u in enumerate(units)}
        results = Results(units, on_result, in_plan_order)
        crashes: collections.Counter = collections.Counter()
        waiting = collections.deque(units)
        workers: list[_Worker] = []
        idle_deaths = 0  # workers that died before taking a unit, in a row
        window = self.jobs * 3  # bounds how many units are worked on ahead of the one to hand over next

        def receive(worker: _Worker, message) -> None:
            nonlocal idle_deaths
            kind = message[0]
            if kind == "progress":
                if on_progress is not None:
                    on_progress(message[1])
            elif kind == "ask":
                self._asking[message[1]] = worker
                on_question(message[1], message[2])
            elif kind == "done":
                results[worker.unit.key] = message[1]
                worker.unit = None
                idle_deaths = 0
            elif kind == "failed":  # the unit's own error: the run stops with it, as it would in one process
                raise message[1]
            else:  # "broken": the initializer failed; every worker would fail the same way
                raise PatchcoderError(self.died.format(error=message[1]))

        def bury(worker: _Worker) -> None:
            """`worker` is dead: retry its unit once, or give it to `on_crash`."""
            nonlocal waiting, idle_deaths
            workers.remove(worker)
            worker.stop()
            error = f"exit code {worker.process.exitcode}"
            unit = worker.unit
            if unit is None:
                idle_deaths += 1
                if idle_deaths >= 2:
                    raise PatchcoderError(self.died.format(error=error))
                return
            self._asking.pop(unit.key, None)
            if on_crash is None:
                raise PatchcoderError(self.died.format(error=error))
            crashes[unit.key] += 1
            if crashes[unit.key] >= 2:
                results[unit.key] = on_crash(unit)
            else:
                waiting = collections.deque(sorted([*waiting, unit], key=lambda u: position[u.key]))

        finished = False
        with stop_on_sigterm():
            try:
                while not results.done:
                    busy = sum(w.unit is not None for w in workers)
                    while len(workers) < min(self.jobs, busy + len(waiting)):
                        workers.append(_Worker(ctx, work, self.initializer, self.initargs))
                    for worker in workers:
                        if worker.unit is None and waiting and (not busy or busy + len(results) < window):
                            worker.unit = waiting.popleft()
                            worker.send(worker.unit)
                            busy += 1
                    ready = set(mpc.wait([w.conn for w in workers] + [w.process.sentinel for w in workers]))
                    for worker in list(workers):
                        if worker.conn in ready or worker.process.sentinel in ready:
                            messages = []
                            try:  # only the pipe's own errors mean a dead worker: a unit's error (an OSError
                                while worker.conn.poll():  # such as a full disk too) stops the run as itself
                                    messages.append(worker.conn.recv())
                            except (EOFError, OSError):
                                worker.dead = True
                            for message in messages:
                                receive(worker, message)
                            if worker.dead or not worker.process.is_alive():
                                bury(worker)
                    results.hand_over()
                finished = True
            finally:
                with ignoring_sigint():  # a second Ctrl-C must not leave workers behind
                    for worker in workers:
                        worker.stop(wait=finished)
                    self._asking.clear()


# ---------------------------------------------------------------------------------------------
# Stopping: signals in the driver, parent death in the workers


@contextlib.contextmanager
def stop_on_sigterm():
    """While the run lasts, SIGTERM raises `Terminated` in the driver (as Ctrl-C raises KeyboardInterrupt),
    so that it stops its workers and says so in one line (exit code 143, cli.py)."""
    def terminate(signum, frame):
        raise Terminated()

    with _handler(signal.SIGTERM, terminate):
        yield


@contextlib.contextmanager
def ignoring_sigint():
    with _handler(signal.SIGINT, signal.SIG_IGN):
        yield


@contextlib.contextmanager
def _handler(signum: int, handler):
    if threading.current_thread() is not threading.main_thread():  # only the main thread may set handlers
        yield
        return
    previous = signal.signal(signum, handler)
    try:
        yield
    finally:
        signal.signal(signum, previous)


class _Worker:
    """The driver's end of one worker process: the process, its pipe, and the unit it works on."""

    def __init__(self, ctx, work, initializer, initargs):
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_worker_main, args=(child, work, initializer, initargs), daemon=True)
        self.process.start()
        child.close()  # the worker's end lives in the worker only: it reads EOF when the driver is gone
        self.unit: Unit | None = None
        self.dead = False

    def send(self, message) -> None:
        try:
            self.conn.send(message)
        except OSError:  # the worker died: its pipe and sentinel say so to the driver's loop
            self.dead = True

    def stop(self, *, wait: bool = False) -> None:
        """End the worker: at once, or with `wait` once it has seen its pipe close (it is idle)."""
        self.conn.close()
        if wait:
            self.process.join(timeout=5)
        if self.process.is_alive():
            self.process.kill()
        self.process.join()


# ---------------------------------------------------------------------------------------------
# Inside a worker process


def _worker_main(conn, work, initializer, initargs) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the driver decides what Ctrl-C stops
    _die_with_parent()
    channel = _WorkerChannel(conn)
    try:
        if initializer is not None:
            initializer(*initargs)
    except Exception as exc:
        conn.send(("broken", f"{type(exc).__name__}: {exc}"))
        return
    while True:
        try:
            unit = conn.recv()
        except (EOFError, OSError):
            return  # the driver finished, or is gone
        try:
            result = work(unit, channel)
            channel.flush()
            message = ("done", result)
        except Exception as exc:
            message = ("failed", _portable(exc))
        try:
            conn.send(message)
        except OSError:
            return


def _portable(exc: Exception) -> Exception:
    """`exc` as it can travel to the driver: pickled if it can be, with the worker's traceback as a note."""
    import pickle
    import traceback

    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:
        exc = RuntimeError(f"{type(exc).__name__}: {exc}")
    if hasattr(exc, "add_note"):
        exc.add_note("in a worker process:\n" + "".join(traceback.format_exception(exc)))
    return exc


def _die_with_parent() -> None:
    """Make sure this worker does not outlive the driver, even mid-unit.

    The worker's parent is the forkserver, which exits when the driver dies (kill -9 included). On Linux
    the kernel then kills the worker (PR_SET_PDEATHSIG); elsewhere a thread watches for the new parent.
    """
    parent = os.getppid()
    if sys.platform.startswith("linux"):
        import ctypes

        PR_SET_PDEATHSIG = 1
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0:
            if os.getppid() != parent:  # the parent died before the request: nobody will send the signal
                os._exit(1)
            return

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, name="patchcoder-parent-watch", daemon=True).start()


class _WorkerChannel:
    def __init__(self, conn):
        self.conn = conn
        self.unreported = 0

    def progress(self, n: int) -> None:
        self.unreported += n
        if self.unreported >= 16:  # a message per commit would cost more than mining it
            self.flush()

    def flush(self) -> None:
        if self.unreported:
            self.conn.send(("progress", self.unreported))
            self.unreported = 0

    def ask(self, key: str, question: Any) -> Any:
        self.flush()
        self.conn.send(("ask", key, question))
        return self.conn.recv()  # EOFError when the driver is gone: the worker ends


def add_ray_option(p) -> None:
    """`--ray [ADDRESS]` for a command whose units run on this pool (mine, synth, tokenize)."""
    p.add_argument("--ray", nargs="?", const="", metavar="ADDRESS",
                   help="run the work units as Ray tasks (pip install 'patchcoder[ray]'): on the cluster at ADDRESS "
                        "('auto': the cluster this machine belongs to), or without ADDRESS on a local Ray; --out must "
                        "be a folder every node sees, or a URL (s3://...)")


# ---------------------------------------------------------------------------------------------
# What the driver shows


def progress_bar(counted: str, *, rows: str | None = None, rate: bool = False, transient: bool = False,
                 enabled: bool = True):
    """A run's rich progress bar on stderr: the task's description, done/total `counted` (e.g. "commits"),
    the task's `rows` field as "N `rows`", and with `rate` the speed in `counted`/s."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        ProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.text import Text

    from patchcoder.ground.console import stderr

    class RateColumn(ProgressColumn):
        def render(self, task):
            return Text(f"{task.speed:,.0f} {counted}/s" if task.speed else "")

    columns = [TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn(counted)]
    if rows is not None:
        columns.append(TextColumn(f"{{task.fields[rows]:,}} {rows}"))
    if rate:
        columns.append(RateColumn())
    columns += [TimeElapsedColumn(), TimeRemainingColumn()]
    return Progress(*columns, console=stderr(), disable=not enabled, transient=transient)
