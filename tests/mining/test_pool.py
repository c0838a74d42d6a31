"""mining/pool.py: in-process and worker-process pools run the same units to the same results; questions are
answered by the driver, results come in plan order when asked, and a unit that kills its worker is retried once."""

from __future__ import annotations

import errno
import functools
import os
import threading
import time
from pathlib import Path

import pytest

from patchcoder.ground.errors import PatchcoderError
from patchcoder.mining.plan import Unit, cut
from patchcoder.mining.pool import InlinePool, ProcessPool, make_pool

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def importable_tests(monkeypatch):
    """Worker processes unpickle this module's functions by name: they must find `tests.mining.test_pool`."""
    monkeypatch.syspath_prepend(str(ROOT))


def add_up(unit: Unit, channel, *, crash_on: str | None = None, log: str | None = None, once: bool = False,
           flood: float = 0.0, full_on: str | None = None) -> dict:
    """A unit's work: report its items as progress, ask the driver for a factor, return the scaled sum.

    Units in `crash_on` (keys separated by commas) kill their worker process (`once`: only the first time,
    remembered in `log`). `flood`: seconds spent sending progress messages as fast as possible first. The unit
    `full_on` finds the disk full (the OSError a write gives).
    """
    if unit.key == full_on:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), f"out/{unit.key}.parquet")
    if unit.key in (crash_on or "").split(","):
        marker = os.path.join(log, f"crashed-{unit.key}")
        if not (once and os.path.exists(marker)):
            Path(marker).touch()
            os._exit(1)
    end = time.monotonic() + flood
    while time.monotonic() < end:
        channel.progress(16)
    for _ in unit.items:
        channel.progress(1)
    factor = channel.ask(unit.key, sum(unit.items))
    return {"key": unit.key, "total": factor * sum(unit.items), "pid": os.getpid()}


def _run(pool, units, **options):
    got, progress, asked = [], [], []

    def on_question(key, question):  # the driver answers in plan order, as the miner's verdicts do
        asked.append(key)
        pool.answer(key, 10 if question % 2 else 1)

    pool.run(units, functools.partial(add_up, **options.pop("work", {})), lambda unit, r: got.append(r),
             on_progress=progress.append, on_question=on_question, **options)
    return got, sum(progress), asked


def test_inline_and_processes_give_the_same_results(tmp_path):
    units = cut(list(range(40)), 3, folder="repo")
    assert [u.key for u in units[:2]] == ["repo/00000", "repo/00001"] and units[0].shard == "shards/repo/00000.parquet"
    inline, inline_progress, _ = _run(make_pool(1, units), units)
    pool = make_pool(2, units)
    assert isinstance(pool, ProcessPool) and isinstance(make_pool(2, units[:1]), InlinePool)
    ordered, progress, asked = _run(pool, units, in_plan_order=True)
    strip = [{k: v for k, v in r.items() if k != "pid"} for r in inline]
    assert [{k: v for k, v in r.items() if k != "pid"} for r in ordered] == strip  # in plan order
    assert inline_progress == progress == 40 and sorted(asked) == [u.key for u in units]
    assert {r["pid"] for r in ordered} != {os.getpid()} and {r["pid"] for r in inline} == {os.getpid()}

    unordered, _, _ = _run(make_pool(2, units), units)
    assert sorted(({k: v for k, v in r.items() if k != "pid"} for r in unordered), key=lambda r: r["key"]) == strip


def test_a_unit_that_kills_its_worker_is_retried_then_given_up(tmp_path):
    units = cut(list(range(40)), 2)

    def work(name: str, **options) -> dict:
        (tmp_path / name).mkdir()
        return {"crash_on": "00002", "log": str(tmp_path / name), **options}

    got, _, _ = _run(make_pool(2, units), units, work=work("once", once=True),
                     in_plan_order=True, on_crash=lambda unit: pytest.fail("a unit that crashed once is retried"))
    assert [r["key"] for r in got] == [u.key for u in units]

    got, _, _ = _run(make_pool(2, units), units, work=work("always"), in_plan_order=True,
                     on_crash=lambda unit: {"key": unit.key, "total": None})
    assert [r["key"] for r in got] == [u.key for u in units] and got[2]["total"] is None

    with pytest.raises(PatchcoderError, match="^units die here \\("):
        _run(make_pool(2, units, died="units die here ({error})"), units, work=work("never"))


def test_workers_dying_while_others_talk_to_the_driver_do_not_hang_the_run(tmp_path):
    """The cause of the old hang: a shared queue's lock held by a worker killed mid-message blocked every
    later worker's questions for ever. Here every third unit kills its worker once, while the others keep
    sending progress as fast as they can."""
    units = cut(list(range(30)), 1)
    crash_on = ",".join(u.key for u in units[2::3])
    results = []

    def run():
        got, progress, _ = _run(make_pool(2, units), units, in_plan_order=True, on_crash=lambda unit: None,
                                work={"crash_on": crash_on, "log": str(tmp_path), "once": True, "flood": 0.05})
        results.append((got, progress))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout=120)
    assert not thread.is_alive(), "the run hung"
    got, progress = results[0]
    assert [r["key"] for r in got] == [u.key for u in units]
    assert [r["total"] for r in got] == [(10 if i % 2 else 1) * i for i in range(30)]


def test_a_units_own_os_error_stops_the_run_as_itself_not_as_a_dead_worker():
    """A full disk in a worker is the unit's error (as in one process), not a worker that died."""
    units = cut(list(range(12)), 2)
    for jobs in (1, 2):
        with pytest.raises(OSError) as raised:
            _run(make_pool(jobs, units), units, work={"full_on": units[3].key})
        assert raised.value.errno == errno.ENOSPC and raised.value.filename == f"out/{units[3].key}.parquet"
