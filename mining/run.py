"""A mining run: many repositories, cut into work units, mined in parallel, written in one canonical order.

A work unit is a range of at most `commits_per_shard` consecutive commits of one repository. Workers
mine units in any order; the parent commits them strictly in plan order (repository order, then
oldest commits first), removing duplicates as it goes, so the shards are the same for any `--jobs`
and a resumed run ends with exactly the rows of an uninterrupted one.
"""

from __future__ import annotations

import collections
import concurrent.futures as cf
import dataclasses
import multiprocessing
import os
import re
import time
from pathlib import Path

from patchcoder.errors import PatchcoderError, UsageError
from patchcoder.mining import shards
from patchcoder.mining.filters import (
    COMMIT_REASONS,
    FILE_REASONS,
    REPO_REASONS,
    Deduplicator,
    DropCounter,
    FilterConfig,
)
from patchcoder.mining.walk import (
    NotARepository,
    list_commits,
    mine_commits,
    open_repository,
    repository_name,
    resolve_head,
)


@dataclasses.dataclass(frozen=True)
class Unit:
    repo: str
    path: str
    index: int
    shas: tuple[str, ...]

    @property
    def key(self) -> str:
        return f"{self.repo}/{self.index:05d}"

    @property
    def shard(self) -> str:
        return f"shards/{self.repo}/{self.index:05d}.parquet"

    @property
    def pending(self) -> str:
        """Where a worker leaves the unit's rows until the parent has removed duplicates."""
        return self.shard + ".pending"


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
    resumed_units: int = 0
    notes: list[str] = dataclasses.field(default_factory=list)

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


# ---------------------------------------------------------------------------------------------
# Finding repositories


def discover_repositories(paths: list[str]) -> tuple[list[tuple[str, str]], DropCounter]:
    """(name, path) of every repository named or found one level inside a named directory.

    A named path that is neither a repository nor a directory holding one raises `UsageError`
    before any work starts; a non-repository inside a scanned directory is counted and skipped.
    """
    found: list[tuple[str, str]] = []
    drops = DropCounter()
    for raw in paths:
        path = os.path.abspath(raw)
        try:
            open_repository(path)
            found.append((repository_name(path), path))
            continue
        except NotARepository:
            pass
        children = []
        if os.path.isdir(path):
            skipped = 0
            for entry in sorted(os.scandir(path), key=lambda e: e.name):
                if not entry.is_dir() or entry.name.startswith("."):
                    continue
                try:
                    open_repository(entry.path)
                    children.append((repository_name(entry.path), entry.path))
                except NotARepository:
                    skipped += 1
            if children:
                drops["not_a_repository"] += skipped
        if not children:
            raise UsageError(f"{raw} is not a git repository (nor a directory of repositories)")
        found.extend(children)
    # Names are shard folder names: make them safe and unique.
    named, seen = [], collections.Counter()
    for name, path in found:
        safe = re.sub(r"[^A-Za-z0-9._+-]", "_", name) or "repo"
        seen[safe] += 1
        named.append((safe if seen[safe] == 1 else f"{safe}-{seen[safe]}", path))
    return named, drops


# ---------------------------------------------------------------------------------------------
# Workers

_progress_queue = None


def _init_worker(queue) -> None:
    global _progress_queue
    _progress_queue = queue


@dataclasses.dataclass
class UnitResult:
    """What a worker hands back: the dedup keys of its rows (the rows themselves are in its pending shard)."""

    key: str
    keys: list[tuple[str, str]]
    commits: list[str]
    diffs: list[str] | None
    drops: dict[str, int]


def mine_unit(unit: Unit, config: FilterConfig, out: str, advance=None) -> UnitResult:
    """Mine one unit and write its rows, before duplicate removal, to the unit's pending shard.

    Runs in a worker process (progress goes through the queue) or inline (progress through `advance`).
    """
    drops = DropCounter()
    unreported = 0

    def report(n: int) -> None:
        nonlocal unreported
        if advance is not None:
            advance(n)
            return
        unreported += n
        if _progress_queue is not None and unreported >= 16:
            _progress_queue.put(unreported)
            unreported = 0

    repo = open_repository(unit.path)
    rows = [pair.to_row() for pair in mine_commits(repo, list(unit.shas), unit.repo, config, drops, report)]
    if _progress_queue is not None and unreported:
        _progress_queue.put(unreported)
    if rows:
        shards.write_shard(Path(out) / unit.pending, rows)
    return UnitResult(
        key=unit.key,
        keys=[(r["old_blob"], r["new_blob"]) for r in rows],
        commits=[r["commit"] for r in rows],
        diffs=[r["diff"] for r in rows] if config.near_duplicates is not None else None,
        drops=drops.as_dict(),
    )


# ---------------------------------------------------------------------------------------------
# The run


def _request(repos, config, branch, first_parent, since, until, commits_per_shard) -> dict:
    """Everything that decides the output; a resumed run must ask for exactly the same."""
    return {
        "repos": [{"name": n, "path": p} for n, p in repos],
        "config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(config).items()},
        "branch": branch,
        "first_parent": first_parent,
        "since": str(since) if since is not None else None,
        "until": str(until) if until is not None else None,
        "commits_per_shard": commits_per_shard,
    }


def plan_units(repos, heads: dict[str, str | None], first_parent, since, until, commits_per_shard, drops) -> list[Unit]:
    units = []
    for name, path in repos:
        head = heads[name]
        if head is None:
            continue
        repo = open_repository(path)
        shas = list_commits(repo, head, first_parent, since, until, drops)
        for i in range(0, len(shas), commits_per_shard):
            units.append(Unit(name, path, i // commits_per_shard, tuple(shas[i:i + commits_per_shard])))
    return units


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
) -> MineSummary:
    """Mine `paths` into parquet shards under `out`; see the module docstring for the guarantees."""
    from patchcoder.console import stderr

    started = time.perf_counter()
    config = config or FilterConfig()
    jobs = max(1, jobs or os.cpu_count() or 1)
    out = Path(out)
    repos, repo_drops = discover_repositories(paths)
    request = _request(repos, config, branch, first_parent, since, until, commits_per_shard)

    manifest = shards.read_manifest(out) if out.exists() else None
    if manifest is not None and not resume:
        raise UsageError(f"{out} already holds a mining run; pass --resume to continue it, or choose another --out")
    if manifest is not None and manifest["request"] != request:
        raise UsageError(f"{out} holds a run with different options or repositories; --resume needs the same ones")
    if manifest is None:
        heads = {}
        for name, path in repos:
            try:
                heads[name] = resolve_head(open_repository(path), branch)
            except PatchcoderError:
                repo_drops["bad_branch"] += 1
                heads[name] = None
            if heads[name] is None and branch is None:
                repo_drops["empty_repository"] += 1
        if branch is not None and repos and repo_drops["bad_branch"] == len(repos):
            raise UsageError(f"{branch!r} names no commit in any of the repositories")
        manifest = {"format": shards.FORMAT, "request": request, "heads": heads,
                    "repo_drops": repo_drops.as_dict(), "units": {}, "complete": False}
        out.mkdir(parents=True, exist_ok=True)
        shards.write_manifest(out, manifest)
    else:
        shards.remove_stale_temp_files(out)

    plan_drops = DropCounter()
    units = plan_units(repos, manifest["heads"], first_parent, since, until, commits_per_shard, plan_drops)
    done = manifest["units"]
    dedup = Deduplicator(config.near_duplicates)
    for unit in units:  # rebuild the duplicate filter from what earlier runs committed, in plan order
        entry = done.get(unit.key)
        if entry and entry["rows"]:
            for key in shards.read_dedup_keys(out / entry["shard"]):
                dedup.add_exact(key)
    if config.near_duplicates is not None and done:
        # MinHash signatures are not stored; recomputing them needs the diffs, which the shards hold.
        import pyarrow.parquet as pq
        dedup = Deduplicator(config.near_duplicates)
        for unit in units:
            entry = done.get(unit.key)
            if entry and entry["rows"]:
                table = pq.read_table(out / entry["shard"], columns=["old_blob", "new_blob", "diff"])
                for old_blob, new_blob, diff in zip(*(table.column(c).to_pylist() for c in table.column_names), strict=True):
                    dedup.check(old_blob, new_blob, diff)
    todo = [u for u in units if u.key not in done]
    total_commits = sum(len(u.shas) for u in units)
    done_commits = total_commits - sum(len(u.shas) for u in todo)

    def commit_unit(unit: Unit, result: UnitResult) -> None:
        counts = DropCounter(result.drops)
        diffs = result.diffs or [""] * len(result.keys)
        keep = []
        for (old_blob, new_blob), diff in zip(result.keys, diffs, strict=True):
            reason = dedup.check(old_blob, new_blob, diff)
            if reason:
                counts[reason] += 1
            keep.append(reason is None)
        kept_commits = len({c for c, k in zip(result.commits, keep, strict=True) if k})
        counts["commits_kept"] += kept_commits
        counts["no_kept_files"] += counts["commits_passed"] - kept_commits
        shards.publish_shard(out / unit.pending, out / unit.shard, keep)
        done[unit.key] = {"shard": unit.shard if any(keep) else None, "rows": sum(keep), "drops": counts.as_dict()}
        shards.write_manifest(out, manifest)

    progress_bar = _progress(stderr(), show_progress)
    with progress_bar:
        task = progress_bar.add_task("mining", total=total_commits, completed=done_commits,
                                     rows=sum(e["rows"] for e in done.values()))
        rows_written = sum(e["rows"] for e in done.values())

        def on_commit(unit, result):
            nonlocal rows_written
            commit_unit(unit, result)
            rows_written += done[unit.key]["rows"]
            progress_bar.update(task, rows=rows_written)

        if jobs == 1 or len(todo) <= 1:
            for unit in todo:
                on_commit(unit, mine_unit(unit, config, str(out), lambda n: progress_bar.advance(task, n)))
        else:
            _run_pool(todo, config, str(out), jobs, on_commit, lambda n: progress_bar.advance(task, n))

    manifest["complete"] = True
    shards.write_manifest(out, manifest)
    summary = summarise(manifest, units)
    summary.seconds = time.perf_counter() - started
    summary.commits_this_run = sum(len(u.shas) for u in todo)
    summary.resumed_units = len(units) - len(todo)
    for reason, n in plan_drops.items():
        summary.drops[reason] = summary.drops.get(reason, 0) + n
    if first_parent and config.skip_merges and summary.drops.get("merge", 0) * 2 > summary.commits_seen > 0:
        summary.notes.append("most first-parent commits are merges (pull requests); --all-commits also walks "
                             "the commits of the merged branches")
    return summary


def _run_pool(todo: list[Unit], config: FilterConfig, out: str, jobs: int, on_commit, advance) -> None:
    """Mine units in worker processes, handing results to `on_commit` in plan order.

    A worker that dies (e.g. a crash inside libgit2 on a damaged pack) breaks the pool: the pool is
    rebuilt and its units retried once; a unit that breaks it twice is committed empty and counted.
    """
    ctx = multiprocessing.get_context("spawn" if os.name != "posix" else "forkserver")
    queue = ctx.Queue()
    order = [u.key for u in todo]
    by_key = {u.key: u for u in todo}
    results: dict[str, UnitResult] = {}
    crashes: collections.Counter = collections.Counter()
    waiting = collections.deque(todo)
    next_commit = 0
    window = jobs * 3  # bounds how many units are mined ahead of the one to commit next

    def drain_progress():
        while True:
            try:
                advance(queue.get_nowait())
            except Exception:
                return

    while next_commit < len(order):
        pool = cf.ProcessPoolExecutor(jobs, mp_context=ctx, initializer=_init_worker, initargs=(queue,))
        inflight: dict[cf.Future, Unit] = {}
        try:
            while next_commit < len(order):
                while waiting and (not inflight or len(inflight) + len(results) < window):
                    unit = waiting.popleft()
                    inflight[pool.submit(mine_unit, unit, config, out)] = unit
                finished, _ = cf.wait(list(inflight), timeout=0.2, return_when=cf.FIRST_COMPLETED)
                drain_progress()
                for future in finished:
                    inflight.pop(future)
                    result = future.result()
                    results[result.key] = result
                while next_commit < len(order) and order[next_commit] in results:
                    key = order[next_commit]
                    on_commit(by_key[key], results.pop(key))
                    next_commit += 1
        except cf.process.BrokenProcessPool:
            for unit in inflight.values():
                crashes[unit.key] += 1
                if crashes[unit.key] >= 2:
                    crashed = {"commits_seen": len(unit.shas), "unit_crashed": len(unit.shas)}
                    results[unit.key] = UnitResult(unit.key, [], [], None, crashed)
                else:
                    waiting.append(unit)
            position = {key: i for i, key in enumerate(order)}
            waiting = collections.deque(sorted(waiting, key=lambda u: position[u.key]))
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            drain_progress()


def summarise(manifest: dict, units: list[Unit]) -> MineSummary:
    totals = DropCounter(manifest.get("repo_drops", {}))
    rows = shards_written = 0
    for unit in units:
        entry = manifest["units"].get(unit.key)
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


def _progress(console, enabled: bool):
    from rich.progress import ProgressColumn
    from rich.text import Text

    class _RateColumn(ProgressColumn):
        def render(self, task):
            return Text(f"{task.speed:,.0f} commits/s" if task.speed else "")

    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("commits"),
        TextColumn("{task.fields[rows]:,} rows"),
        _RateColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=not enabled,
        transient=False,
    )


def print_summary(summary: MineSummary, out: Path) -> None:
    from rich.table import Table

    from patchcoder.console import stderr

    table = Table(title=f"patchcoder mine → {out}", show_header=True, header_style="bold")
    table.add_column("what")
    table.add_column("count", justify="right")
    table.add_row("repositories mined", f"{summary.repos:,}")
    table.add_row("commits seen", f"{summary.commits_seen:,}")
    table.add_row("commits kept", f"{summary.commits_kept:,}")
    table.add_row("files kept (rows)", f"{summary.rows:,}")
    table.add_row("shards", f"{summary.shards:,}")
    for group, reasons in (("repository", REPO_REASONS), ("commit", COMMIT_REASONS), ("file", FILE_REASONS)):
        for reason in reasons + tuple(sorted(set(summary.drops) - set(REPO_REASONS + COMMIT_REASONS + FILE_REASONS)) if group == "file" else ()):
            if summary.drops.get(reason):
                table.add_row(f"[dim]dropped {group}: {reason}", f"{summary.drops[reason]:,}")
    rate = summary.commits_this_run / summary.seconds if summary.seconds else 0.0
    table.add_row("time", f"{summary.seconds:,.1f} s")
    table.add_row("throughput", f"{rate:,.0f} commits/s")
    if summary.resumed_units:
        table.add_row("units resumed from an earlier run", f"{summary.resumed_units:,}")
    stderr().print(table)
    for note in summary.notes:
        stderr().print(f"[yellow]note:[/yellow] {note}")
