"""A mining run: many repositories, cut into work units, mined in parallel, written in one canonical order.

A work unit is a range of at most `commits_per_shard` consecutive commits of one repository (plan.py).
Workers mine units in any order (pool.py); the driver decides duplicates and commits the units strictly
in plan order (repository order, then oldest commits first), so the shards are the same for any `--jobs`
and a resumed run ends with exactly the rows of an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import time

from patchcoder.ground.manifest import Manifest
from patchcoder.ground.storage import Location
from patchcoder.mining import shards
from patchcoder.mining.filters import (
    COMMIT_REASONS,
    FILE_REASONS,
    REPO_REASONS,
    Deduplicator,
    DropCounter,
    FilterConfig,
)
from patchcoder.mining.plan import Unit, discover_repositories, plan_units, resolve_heads
from patchcoder.mining.pool import Channel, Pool, make_pool, progress_bar
from patchcoder.mining.walk import is_bare_date, mine_commits, open_repository


@dataclasses.dataclass
class MineSummary:
    """What a run did: counts by reason, and throughput of this invocation."""

    repos: int = 0
    commits_seen: int = 0
    commits_kept: int = 0
    rows: int = 0
    shards: int = 0
    drops: dict[str, int] = dataclasses.field(default_factory=dict)
    seconds: float = 0.0
    commits_this_run: int = 0
    cpu_seconds: float = 0.0
    resumed_units: int = 0
    notes: list[str] = dataclasses.field(default_factory=list)

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)

    def table_rows(self) -> list[tuple[str, int | str]]:
        """The rows of the closing summary table."""
        rows: list[tuple[str, int | str]] = [
            ("repositories mined", self.repos),
            ("commits seen", self.commits_seen),
            ("commits kept", self.commits_kept),
            ("files kept (rows)", self.rows),
            ("shards", self.shards),
        ]
        known = REPO_REASONS + COMMIT_REASONS + FILE_REASONS
        for group, reasons in (("repository", REPO_REASONS), ("commit", COMMIT_REASONS),
                               ("file", FILE_REASONS + tuple(sorted(set(self.drops) - set(known))))):
            rows += [(f"[dim]dropped {group}: {reason}", self.drops[reason]) for reason in reasons if self.drops.get(reason)]
        rate = self.commits_this_run / self.seconds if self.seconds else 0.0
        rows.append(("time", f"{self.seconds:,.1f} s ({self.cpu_seconds:,.1f} s of CPU)"))
        rows.append(("throughput", f"{rate:,.0f} commits/s"))
        if self.resumed_units:
            rows.append(("units resumed from an earlier run", self.resumed_units))
        return rows


# ---------------------------------------------------------------------------------------------
# A unit's work
#
# A worker mines a unit, asks the driver which of its rows are duplicates of rows in earlier units
# (sending their dedup keys; the driver decides strictly in plan order), and writes only the kept rows.
# Rows never cross the process boundary, and no shard is written twice.


@dataclasses.dataclass
class UnitResult:
    """What a worker reports when its unit's shard is written."""

    key: str
    drops: dict[str, int]
    cpu_seconds: float = 0.0


def mine_unit(unit: Unit, channel: Channel, *, config: FilterConfig, out: str) -> UnitResult:
    """Mine one unit and write its kept rows as the unit's shard."""
    cpu_start = time.process_time()
    drops = DropCounter()
    repo = unit.source
    rows = [pair.to_row() for pair in mine_commits(open_repository(repo.path), list(unit.items), repo.name, config,
                                                   drops, channel.progress)]
    keys = [(r["old_blob"], r["new_blob"]) for r in rows]
    commits = [r["commit"] for r in rows]
    diffs = [r["diff"] for r in rows] if config.near_duplicates is not None else None
    keep = channel.ask(unit.key, (keys, commits, diffs, drops["commits_passed"]))
    kept = [row for row, k in zip(rows, keep, strict=True) if k]
    if kept:
        shards.write_shard(Location(out) / unit.shard, kept)
    return UnitResult(unit.key, drops.as_dict(), time.process_time() - cpu_start)


class _Verdicts:
    """The driver's duplicate filter: decides each unit's keep mask in plan order, exactly once."""

    def __init__(self, dedup: Deduplicator, order: list[str]):
        self.dedup, self.order = dedup, order
        self.masks: dict[str, list[bool]] = {}
        self.counts: dict[str, DropCounter] = {}
        self._waiting: dict[str, tuple] = {}
        self._next = 0

    def answer(self, pool: Pool, key: str, question) -> None:
        """Unit `key` asks which of its rows to keep: reply to it, and to every unit decided now, in plan order."""
        if key in self.masks:  # a retried unit asks again: same answer
            pool.answer(key, self.masks[key])
        for decided in self.offer(key, *question):
            pool.answer(decided, self.masks[decided])

    def offer(self, key: str, keys, commits, diffs, commits_passed: int) -> list[str]:
        """Record a unit's keys; decide every unit that is now next in line. Returns the keys decided."""
        if key not in self.masks:
            self._waiting[key] = (keys, commits, diffs, commits_passed)
        decided = []
        while self._next < len(self.order) and self.order[self._next] in self._waiting:
            unit_key = self.order[self._next]
            self._decide(unit_key, *self._waiting.pop(unit_key))
            decided.append(unit_key)
            self._next += 1
        return decided

    def _decide(self, key, keys, commits, diffs, commits_passed) -> None:
        counts = DropCounter()
        keep = []
        for (old_blob, new_blob), diff in zip(keys, diffs or [""] * len(keys), strict=True):
            reason = self.dedup.check(old_blob, new_blob, diff)
            if reason:
                counts[reason] += 1
            keep.append(reason is None)
        kept_commits = len({c for c, k in zip(commits, keep, strict=True) if k})
        counts["commits_kept"] += kept_commits
        counts["no_kept_files"] += commits_passed - kept_commits
        self.masks[key], self.counts[key] = keep, counts


# ---------------------------------------------------------------------------------------------
# The run


def _request(repos, config, branch, first_parent, since, until, commits_per_shard) -> dict:
    """Everything that decides the output; a resumed run must ask for exactly the same."""
    return {
        "repos": [dataclasses.asdict(r) for r in repos],
        "config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(config).items()},
        "branch": branch,
        "first_parent": first_parent,
        "since": str(since) if since is not None else None,
        # a bare date has meant "to the end of that day" since session 18 (before: its first second)
        "until": (f"{until} (whole day)" if is_bare_date(str(until)) else str(until)) if until is not None else None,
        "commits_per_shard": commits_per_shard,
    }


def mine(
    paths: list[str],
    out: str | os.PathLike,
    *,
    config: FilterConfig | None = None,
    branch: str | None = None,
    first_parent: bool = True,
    since: str | None = None,
    until: str | None = None,
    jobs: int | None = None,
    resume: bool = False,
    commits_per_shard: int = 500,
    show_progress: bool = True,
    ray: str | None = None,
) -> MineSummary:
    """Mine `paths` into parquet shards under `out` (a folder path, or an fsspec URL: ground/storage.py); see the
    module docstring for the guarantees.

    `ray`: run the units as Ray tasks on the cluster at that address ("" for `ray.init`'s default), pool.py."""
    started, cpu_started = time.perf_counter(), time.process_time()
    config = config or FilterConfig()
    jobs = max(1, jobs or os.cpu_count() or 1)
    out = Location(out)
    repos, repo_drops = discover_repositories(paths)
    request = _request(repos, config, branch, first_parent, since, until, commits_per_shard)

    manifest = Manifest.open(out, shards.FORMAT, "mining", resume=resume, same={"request": request},
                             what="options or repositories")
    head_notes: list[str] = []
    if manifest is None:
        heads = resolve_heads(repos, branch, repo_drops, head_notes)
        manifest = Manifest.create(out, {"format": shards.FORMAT, "request": request, "heads": heads,
                                         "repo_drops": repo_drops.as_dict(), "complete": False})

    plan_drops = DropCounter()
    units = plan_units(repos, manifest["heads"], first_parent, since, until, commits_per_shard, plan_drops)
    done = manifest.units
    dedup = _committed_rows(out, units, done, config, show_progress)
    todo = [u for u in units if u.key not in done]
    total_commits = sum(len(u.items) for u in units)
    done_commits = total_commits - sum(len(u.items) for u in todo)

    verdicts = _Verdicts(dedup, [u.key for u in todo])
    pool = make_pool(jobs, todo, ray=ray,
                     died="mining worker processes die before finishing any work ({error}); try --jobs 1")
    worker_cpu = 0.0
    rows_written = sum(e["rows"] for e in done.values())

    with progress_bar("commits", rows="rows", rate=True, enabled=show_progress) as progress:
        task = progress.add_task("mining", total=total_commits, completed=done_commits, rows=rows_written)

        def commit(unit: Unit, result: UnitResult) -> None:
            nonlocal worker_cpu, rows_written
            if not pool.inline:  # inline units are already in this process's CPU time
                worker_cpu += result.cpu_seconds
            counts = DropCounter(result.drops)
            counts.update(verdicts.counts.get(unit.key, {}))
            rows = sum(verdicts.masks.get(unit.key, []))
            manifest.record(unit.key, {"shard": unit.shard if rows else None, "rows": rows, "drops": counts.as_dict()})
            rows_written += rows
            progress.update(task, rows=rows_written)

        def crashed(unit: Unit) -> UnitResult:
            """A unit that killed its worker twice is committed empty, and counted.

            If it died after its verdict, the rows it was told to keep are in its shard only if the shard was
            stored (atomically) before the death; otherwise they are lost and counted, and their keys stay in
            the duplicate filter, since later units may already have been decided against them."""
            if unit.key not in verdicts.masks:
                for decided in verdicts.offer(unit.key, [], [], None, 0):
                    pool.answer(decided, verdicts.masks[decided])
            elif (out / unit.shard).exists():
                return UnitResult(unit.key, {"commits_seen": len(unit.items)})
            else:
                lost = sum(verdicts.masks[unit.key])
                verdicts.masks[unit.key], verdicts.counts[unit.key] = [], DropCounter({"rows_lost": lost})
            return UnitResult(unit.key, {"commits_seen": len(unit.items), "unit_crashed": len(unit.items)})

        pool.run(todo, functools.partial(mine_unit, config=config, out=str(out)), commit,
                 on_progress=lambda n: progress.advance(task, n),
                 on_question=lambda key, question: verdicts.answer(pool, key, question),
                 on_crash=crashed, in_plan_order=True)

    manifest.complete()
    summary = summarise(manifest, units)
    summary.seconds = time.perf_counter() - started
    summary.cpu_seconds = time.process_time() - cpu_started + worker_cpu
    summary.commits_this_run = sum(len(u.items) for u in todo)
    summary.resumed_units = len(units) - len(todo)
    for reason, n in plan_drops.items():
        summary.drops[reason] = summary.drops.get(reason, 0) + n
    summary.repos -= plan_drops["unreadable_repository"]
    summary.notes.extend(head_notes)
    if first_parent and config.skip_merges and summary.drops.get("merge", 0) * 2 > summary.commits_seen > 0:
        summary.notes.append("most first-parent commits are merges (pull requests); --all-commits also walks "
                             "the commits of the merged branches")
    return summary


def _committed_rows(out: Location, units: list[Unit], done: dict, config: FilterConfig,
                    show_progress: bool = False) -> Deduplicator:
    """The duplicate filter with the rows that earlier runs committed, added in plan order (with a progress bar:
    near-duplicate signatures are not stored, so a resume recomputes them from the shards' diffs)."""
    dedup = Deduplicator(config.near_duplicates)
    finished = [done[u.key]["shard"] for u in units if done.get(u.key) and done[u.key]["rows"]]
    if not finished:
        return dedup
    with progress_bar("shards", transient=True, enabled=show_progress) as progress:
        task = progress.add_task("reading finished shards", total=len(finished))
        for shard in finished:
            if config.near_duplicates is None:
                for key in shards.read_dedup_keys(out / shard):
                    dedup.add_exact(key)
            else:
                table = shards.read_shard(out / shard, ["old_blob", "new_blob", "diff"])
                for old_blob, new_blob, diff in zip(*(table.column(c).to_pylist() for c in table.column_names),
                                                    strict=True):
                    dedup.check(old_blob, new_blob, diff)
            progress.advance(task)
    return dedup


def summarise(manifest: Manifest, units: list[Unit]) -> MineSummary:
    totals = DropCounter(manifest.get("repo_drops", {}))
    rows = shards_written = 0
    for unit in units:
        entry = manifest.units.get(unit.key)
        if entry:
            totals.update(entry["drops"])
            rows += entry["rows"]
            shards_written += entry["shard"] is not None
    summary = MineSummary(
        repos=sum(1 for h in manifest["heads"].values() if h is not None),
        commits_seen=totals.pop("commits_seen", 0),
        commits_kept=totals.pop("commits_kept", 0),
        rows=rows,
        shards=shards_written,
    )
    totals.pop("commits_passed", None)
    summary.drops = totals.as_dict()
    return summary
