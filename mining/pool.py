"""The worker pool of a sharded run (mine, synth, tokenize): runs units of work and hands their results back.

The driver plans the units (plan.py), keeps the manifest and commits each result through `on_result`.
A unit's work runs as `work(unit, channel)`, a picklable callable that writes the unit's shard itself
(rows never cross processes) and returns small counts; through the `Channel` it reports progress and
asks the driver questions only the driver can answer (mine: which of its rows duplicate rows of earlier
units, decided strictly in plan order). `make_pool` picks the in-process pool for one job or one unit,
else local worker processes.

Room to grow: `ProcessPool.run` is the one place that starts and stops worker processes, so stopping them
with the driver on SIGINT/SIGTERM belongs in its `finally`; units on other machines (e.g. Ray tasks) are
another implementation of the `Pool` protocol, whose channel carries progress and answers its own way.
"""

from __future__ import annotations

import collections
import concurrent.futures as cf
import json
import multiprocessing
import os
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

from patchcoder.ground.atomic import atomic_write
from patchcoder.ground.errors import PatchcoderError
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
              scratch: str | os.PathLike | None = None, died: str = "a worker process died ({error})") -> Pool:
    """The pool for `units`: this process for one job or at most one unit, else `jobs` worker processes.

    `initializer(*initargs)` prepares each process that runs units (e.g. loads a vocabulary); `scratch` is
    a folder for the driver's answers; `died` the error when workers die (`{error}`: what happened).
    """
    if jobs <= 1 or len(units) <= 1:
        return InlinePool(initializer, initargs)
    return ProcessPool(jobs, initializer=initializer, initargs=initargs, scratch=scratch, died=died)


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


class ProcessPool:
    """Runs units in `jobs` local worker processes (forkserver), submitted in plan order.

    Workers send progress and questions through one queue; an answer comes back as a small file in
    `scratch`, so a worker needs nothing but that folder. A worker that dies (e.g. a crash inside libgit2
    on a damaged pack) breaks the pool: with `on_crash`, the pool is rebuilt and its units retried once,
    and pools that break twice in a row before finishing any unit end the run. Units are submitted in
    plan order and picked up first-in first-out, so the lowest undecided unit is always being worked on
    by a worker that is not waiting: questions decided in plan order cannot deadlock.
    """

    inline = False

    def __init__(self, jobs: int, *, initializer: Callable | None = None, initargs: tuple = (),
                 scratch: str | os.PathLike | None = None, died: str = "a worker process died ({error})"):
        self.jobs, self.initializer, self.initargs, self.died = jobs, initializer, initargs, died
        self.scratch = Path(scratch) if scratch is not None else None

    def answer(self, key: str, answer: Any) -> None:
        atomic_write(_answer_path(str(self.scratch), key), json.dumps(answer))

    def run(self, units, work, on_result, *, on_progress=None, on_question=None, on_crash=None,
            in_plan_order=False) -> None:
        ctx = multiprocessing.get_context("spawn" if os.name != "posix" else "forkserver")
        queue = ctx.Queue()
        order = [u.key for u in units]
        by_key = {u.key: u for u in units}
        position = {key: i for i, key in enumerate(order)}
        results: dict[str, Any] = {}
        crashes: collections.Counter = collections.Counter()
        waiting = collections.deque(units)
        next_result = 0  # in plan order: the position of the next unit to hand over
        delivered = 0
        barren_pools = 0  # pools that broke before finishing a single unit, in a row
        window = self.jobs * 3  # bounds how many units are worked on ahead of the one to hand over next
        if self.scratch is not None:
            self.scratch.mkdir(parents=True, exist_ok=True)

        def drain_queue() -> None:
            while True:
                try:
                    message = queue.get_nowait()
                except Exception:
                    return
                if message[0] == "progress":
                    if on_progress is not None:
                        on_progress(message[1])
                else:
                    _, key, question = message
                    on_question(key, question)

        def hand_over() -> None:
            nonlocal next_result, delivered
            if in_plan_order:
                while next_result < len(order) and order[next_result] in results:
                    key = order[next_result]
                    on_result(by_key[key], results.pop(key))
                    next_result += 1
                    delivered += 1
            else:
                for key in list(results):
                    on_result(by_key[key], results.pop(key))
                    delivered += 1

        while delivered < len(order):
            pool = cf.ProcessPoolExecutor(self.jobs, mp_context=ctx, initializer=_start_worker,
                                          initargs=(queue, os.getpid(), self.scratch and str(self.scratch),
                                                    self.initializer, self.initargs))
            inflight: dict[cf.Future, Unit] = {}
            try:
                while delivered < len(order):
                    while waiting and (not inflight or len(inflight) + len(results) < window):
                        unit = waiting.popleft()
                        inflight[pool.submit(_work, work, unit)] = unit
                    finished, _ = cf.wait(list(inflight), timeout=0.01, return_when=cf.FIRST_COMPLETED)
                    drain_queue()
                    for future in finished:
                        if future.exception() is None:
                            results[inflight.pop(future).key] = future.result()
                            barren_pools = 0
                    for future in finished:
                        if future in inflight:
                            future.result()  # raises: a dead worker (retried below) or the unit's own error
                    hand_over()
            except cf.process.BrokenProcessPool as exc:
                barren_pools += 1
                if on_crash is None or barren_pools >= 2:
                    raise PatchcoderError(self.died.format(error=exc)) from None
                for unit in inflight.values():
                    crashes[unit.key] += 1
                    if crashes[unit.key] >= 2:
                        results[unit.key] = on_crash(unit)
                    else:
                        waiting.append(unit)
                waiting = collections.deque(sorted(waiting, key=lambda u: position[u.key]))
            finally:
                pool.shutdown(wait=True, cancel_futures=True)
                drain_queue()
        if self.scratch is not None:
            shutil.rmtree(self.scratch, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# Inside a worker process

_channel: _WorkerChannel | None = None


def _start_worker(queue, parent_pid: int, scratch: str | None, initializer, initargs) -> None:
    global _channel
    _channel = _WorkerChannel(queue, parent_pid, scratch)
    if initializer is not None:
        initializer(*initargs)


def _work(work, unit: Unit):
    result = work(unit, _channel)
    _channel.flush()
    return result


def _answer_path(scratch: str, key: str) -> Path:
    return Path(scratch) / f"{key.replace('/', '.')}.json"


class _WorkerChannel:
    def __init__(self, queue, parent_pid: int, scratch: str | None):
        self.queue, self.parent_pid, self.scratch = queue, parent_pid, scratch
        self.unreported = 0

    def progress(self, n: int) -> None:
        self.unreported += n
        if self.unreported >= 16:  # a message per commit would cost more than mining it
            self.flush()

    def flush(self) -> None:
        if self.unreported:
            self.queue.put(("progress", self.unreported))
            self.unreported = 0

    def ask(self, key: str, question: Any) -> Any:
        self.flush()
        self.queue.put(("ask", key, question))
        path = _answer_path(self.scratch, key)
        while not path.exists():
            if not _alive(self.parent_pid):
                raise SystemExit(1)  # the run was killed: nobody will ever answer
            time.sleep(0.002)
        answer = json.loads(path.read_text())
        path.unlink()
        return answer


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


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
