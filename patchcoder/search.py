"""Test-guided search: candidates tried in the model's order, in scratch copies, until the tests pass.

Each worker thread owns one ScratchTree. A worker takes the next candidate in order, writes it into its
copy, runs the test command with the per-run time-out, and puts the file back. With `stop_first`, no
candidate is started once one passes, and the passing candidate earliest in the order among those
already started wins (so `--jobs` changes how fast, never which fix is reported, when the search ends at
the first pass). Limits: `max_tries` candidates and `budget` seconds in all. Ctrl-C stops every running
command (its process group is killed) before it propagates.

Failing tests first (`quick_env`, as APR tools do): a candidate first runs the same command restricted to
the tests that failed on the unmodified tree (see localize.only_tests); most candidates fail there, in a
fraction of the suite's time. Only a candidate that passes them runs the full command, and only the full
command's pass makes it plausible, so a fix found this way passes exactly what it would without the quick
run. (The one thing the quick run can lose: a candidate under which those tests pass only when the rest
of the suite runs before them.)
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

from patchcoder.scratch import Cancelled, CommandResult, ScratchTree


@dataclasses.dataclass(frozen=True)
class Candidate:
    path: str  # relative to the tree's root
    text: str  # the file's whole text with the candidate applied
    score: float  # the order key: higher is tried first
    line: int = -1  # the suspicious line (0-based) the candidate came from
    info: object = None  # whatever the caller needs back (e.g. the Patch)


@dataclasses.dataclass
class Trial:
    order: int  # the candidate's position in the order (0 = tried first)
    candidate: Candidate
    result: CommandResult  # the test command (the quick run's result when the candidate failed it)
    full: CommandResult | None = None  # the wider suite, run on a plausible patch
    quick: CommandResult | None = None  # the run of the tests that failed before, when there was one

    @property
    def plausible(self) -> bool:
        return self.result.passed and (self.full is None or self.full.passed)

    @property
    def seconds(self) -> float:
        """The time of every run the candidate took."""
        runs = (self.result, self.full) if self.quick is None or self.quick is self.result else (
            self.quick, self.result, self.full)
        return sum(r.seconds for r in runs if r is not None)


@dataclasses.dataclass
class SearchResult:
    fixes: list[Trial]  # plausible patches, in the candidates' order
    tries: int  # test runs on candidates
    timeouts: int
    seconds: float
    stopped: str  # "found", "exhausted", "max_tries", "budget"


def try_candidate(order: int, candidate: Candidate, tree: ScratchTree, command: str, timeout: float | None, *,
                  subdir: str = ".", env: dict[str, str] | None = None, quick_env: dict[str, str] | None = None,
                  full_command: str | None = None, cancel: threading.Event | None = None) -> Trial:
    """Write `candidate` into `tree`, run the quick run (with `quick_env`, if given), then, if it passed, the
    command, then, if that passed, `full_command`; put the file back. Raises Cancelled when `cancel` is set."""
    tree.write(candidate.path, candidate.text)
    try:
        quick = None
        if quick_env is not None:
            quick = tree.run(command, timeout, quick_env, subdir, cancel)
            if not quick.passed:
                return Trial(order, candidate, quick, quick=quick)
        result = tree.run(command, timeout, env, subdir, cancel)
        full = None
        if result.passed and full_command:
            full = tree.run(full_command, timeout, env, subdir, cancel)
        return Trial(order, candidate, result, full, quick)
    finally:
        tree.restore()


def search(candidates: Iterable[Candidate], trees: list[ScratchTree], command: str, timeout: float | None, *,
           subdir: str = ".", env: dict[str, str] | None = None, quick_env: dict[str, str] | None = None,
           max_tries: int = 200, budget: float | None = None, stop_first: bool = True,
           full_command: str | None = None, on_trial: Callable[[Trial, int], None] | None = None,
           on_start: Callable[[Candidate], None] | None = None) -> SearchResult:
    """Try `candidates` (already in order) in `trees` (one worker each); see the module docstring."""
    started = time.perf_counter()
    cancel = threading.Event()
    free = list(trees)
    lock = threading.Lock()
    trials: list[Trial] = []
    state = {"tries": 0, "timeouts": 0}

    def attempt(order: int, candidate: Candidate) -> Trial | None:
        with lock:
            tree = free.pop()
        try:
            return try_candidate(order, candidate, tree, command, timeout, subdir=subdir, env=env,
                                 quick_env=quick_env, full_command=full_command, cancel=cancel)
        except Cancelled:
            return None
        finally:
            with lock:
                free.append(tree)

    ordered: Iterator[tuple[int, Candidate]] = enumerate(candidates)
    stopped = "exhausted"
    running: dict[Future, int] = {}
    found_at: int | None = None
    pool = ThreadPoolExecutor(max_workers=len(trees), thread_name_prefix="patchcoder-try")
    try:
        while True:
            # keep every worker busy while limits allow and (with stop_first) nothing has passed yet
            while len(running) < len(trees) and stopped == "exhausted" and found_at is None:
                if state["tries"] >= max_tries:
                    stopped = "max_tries"
                    break
                if budget is not None and time.perf_counter() - started >= budget:
                    stopped = "budget"
                    break
                nxt = next(ordered, None)
                if nxt is None:
                    break
                state["tries"] += 1
                if on_start is not None:
                    on_start(nxt[1])
                running[pool.submit(attempt, *nxt)] = nxt[0]
            if not running:
                break
            remaining = None if budget is None else max(0.0, budget - (time.perf_counter() - started))
            done, _ = wait(list(running), timeout=remaining, return_when=FIRST_COMPLETED)
            if not done:  # the budget ran out with commands still running: stop them
                stopped = "budget"
                cancel.set()
                wait(list(running))
                for future in running:
                    _collect(future, trials, state)
                break
            for future in done:
                running.pop(future)
                trial = _collect(future, trials, state)
                if trial is not None and on_trial is not None:
                    on_trial(trial, state["tries"])
                if trial is not None and trial.plausible and stop_first:
                    found_at = trial.order if found_at is None else min(found_at, trial.order)
    except BaseException:  # Ctrl-C: stop every command, then let it go on up
        cancel.set()
        wait(list(running))
        raise
    finally:
        pool.shutdown(wait=True)
    fixes = sorted((t for t in trials if t.plausible), key=lambda t: t.order)
    if stop_first and fixes:
        fixes, stopped = fixes[:1], "found"
    elif fixes and stopped == "exhausted":
        stopped = "found"
    return SearchResult(fixes, state["tries"], state["timeouts"], time.perf_counter() - started, stopped)


def _collect(future: Future, trials: list[Trial], state: dict) -> Trial | None:
    trial = future.result()
    if trial is not None:
        trials.append(trial)
        state["timeouts"] += trial.result.timed_out
    return trial
