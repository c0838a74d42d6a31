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
import json
import multiprocessing
import os
import re
import shutil
import time
from pathlib import Path

from patchcoder.ground.errors import PatchcoderError, UsageError
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
    repo: str  # the `repo` column
    folder: str  # the repository's shard folder: its name made safe for a file system
    path: str
    index: int
    shas: tuple[str, ...]

    @property
    def key(self) -> str:
        return f"{self.folder}/{self.index:05d}"

    @property
    def shard(self) -> str:
        return f"shards/{self.folder}/{self.index:05d}.parquet"


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


# ---------------------------------------------------------------------------------------------
# Finding repositories


def discover_repositories(paths: list[str]) -> tuple[list[tuple[str, str, str]], DropCounter]:
    """(name, folder, path) of every repository named or found one level inside a named directory.

    An argument `NAME=PATH` names the repository (e.g. `pallets/click=/mirrors/click.git`); otherwise
    the name is the folder's. A named path that is neither a repository nor a directory holding one
    raises `UsageError` before any work starts; a non-repository inside a scanned directory is
    counted and skipped.
    """
    found: list[tuple[str, str]] = []
    drops = DropCounter()
    for raw in paths:
        given_name = None
        if "=" in raw and not os.path.exists(raw):
            given_name, _, raw = raw.partition("=")
            if not given_name.strip():
                raise UsageError(f"{given_name}={raw}: the name before '=' is empty")
        path = os.path.abspath(raw)
        try:
            open_repository(path)
            found.append((given_name or repository_name(path), path))
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
        if given_name:
            raise UsageError(f"{given_name}={raw}: a name can only be given to a repository, not a directory")
        found.extend(children)
    # Names become shard folder names too: make them safe, and both unique.
    named, seen = [], collections.Counter()
    for name, path in found:
        safe = re.sub(r"[^A-Za-z0-9._+-]", "_", name) or "repo"
        seen[safe] += 1
        suffix = "" if seen[safe] == 1 else f"-{seen[safe]}"
        named.append((name + suffix, safe + suffix, path))
    return named, drops


# ---------------------------------------------------------------------------------------------
# Workers
#
# A worker mines a unit, sends the dedup keys of its rows to the parent, waits for the parent's
# verdict (which rows are duplicates of rows in earlier units, decided strictly in plan order), and
# writes only the kept rows. Rows never cross the process boundary, and no shard is written twice.
# The verdict comes back as a small file, so a worker needs nothing but the output folder.

_queue = None
_parent_pid = None


def _init_worker(queue, parent_pid: int) -> None:
    global _queue, _parent_pid
    _queue, _parent_pid = queue, parent_pid


@dataclasses.dataclass
class UnitResult:
    """What a worker reports when its unit's shard is written."""

    key: str
    drops: dict[str, int]
    cpu_seconds: float = 0.0


def _verdict_path(out: str, unit: Unit) -> Path:
    return Path(out) / ".verdicts" / f"{unit.folder}.{unit.index:05d}.json"


def _await_verdict(out: str, unit: Unit) -> list[bool]:
    path = _verdict_path(out, unit)
    while not path.exists():
        if _parent_pid is not None and not _alive(_parent_pid):
            raise SystemExit(1)  # the run was killed: nobody will ever answer
        time.sleep(0.002)
    keep = json.loads(path.read_text())
    path.unlink()
    return keep


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def mine_unit(unit: Unit, config: FilterConfig, out: str, decide=None, advance=None) -> UnitResult:
    """Mine one unit and write its kept rows as the unit's shard.

    Inline, `decide(unit, keys, commits, diffs, commits_passed) -> keep mask` and `advance(n)` are callables; in a
    worker process both go through the parent (the queue, then the verdict file).
    """
    cpu_start = time.process_time()
    drops = DropCounter()
    unreported = 0

    def report(n: int) -> None:
        nonlocal unreported
        if advance is not None:
            advance(n)
            return
        unreported += n
        if unreported >= 16:
            _queue.put(("progress", unreported))
            unreported = 0

    repo = open_repository(unit.path)
    rows = [pair.to_row() for pair in mine_commits(repo, list(unit.shas), unit.repo, config, drops, report)]
    keys = [(r["old_blob"], r["new_blob"]) for r in rows]
    commits = [r["commit"] for r in rows]
    diffs = [r["diff"] for r in rows] if config.near_duplicates is not None else None
    if decide is not None:
        keep = decide(unit, keys, commits, diffs, drops["commits_passed"])
    else:
        _queue.put(("progress", unreported))
        _queue.put(("keys", unit.key, keys, commits, diffs, drops["commits_passed"]))
        keep = _await_verdict(out, unit)
    kept = [row for row, k in zip(rows, keep, strict=True) if k]
    if kept:
        shards.write_shard(Path(out) / unit.shard, kept)
    return UnitResult(unit.key, drops.as_dict(), time.process_time() - cpu_start)


class _Verdicts:
    """The parent's duplicate filter: decides each unit's keep mask in plan order, exactly once."""

    def __init__(self, dedup: Deduplicator, order: list[str]):
        self.dedup, self.order = dedup, order
        self.masks: dict[str, list[bool]] = {}
        self.counts: dict[str, DropCounter] = {}
        self._waiting: dict[str, tuple] = {}
        self._next = 0

    def decide(self, key: str, keys, commits, diffs, commits_passed: int) -> list[bool]:
        """Decide one unit now (inline runs, where units come in plan order)."""
        self.offer(key, keys, commits, diffs, commits_passed)
        return self.masks[key]

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
        "repos": [{"name": n, "folder": f, "path": p} for n, f, p in repos],
        "config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(config).items()},
        "branch": branch,
        "first_parent": first_parent,
        "since": str(since) if since is not None else None,
        "until": str(until) if until is not None else None,
        "commits_per_shard": commits_per_shard,
    }


def plan_units(repos, heads: dict[str, str | None], first_parent, since, until, commits_per_shard, drops) -> list[Unit]:
    units = []
    for name, folder, path in repos:
        head = heads[folder]
        if head is None:
            continue
        repo = open_repository(path)
        shas = list_commits(repo, head, first_parent, since, until, drops)
        for i in range(0, len(shas), commits_per_shard):
            units.append(Unit(name, folder, path, i // commits_per_shard, tuple(shas[i:i + commits_per_shard])))
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
    from patchcoder.ground.console import stderr

    started, cpu_started = time.perf_counter(), time.process_time()
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
        for _name, folder, path in repos:
            try:
                heads[folder] = resolve_head(open_repository(path), branch)
            except PatchcoderError:
                repo_drops["bad_branch"] += 1
                heads[folder] = None
            if heads[folder] is None and branch is None:
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

    verdicts = _Verdicts(dedup, [u.key for u in todo])

    worker_cpu = 0.0

    def commit_unit(unit: Unit, result: UnitResult) -> int:
        nonlocal worker_cpu
        if jobs > 1 and len(todo) > 1:  # inline units are already in this process's CPU time
            worker_cpu += result.cpu_seconds
        counts = DropCounter(result.drops)
        counts.update(verdicts.counts.get(unit.key, {}))
        rows = sum(verdicts.masks.get(unit.key, []))
        done[unit.key] = {"shard": unit.shard if rows else None, "rows": rows, "drops": counts.as_dict()}
        shards.write_manifest(out, manifest)
        return rows

    progress_bar = _progress(stderr(), show_progress)
    with progress_bar:
        rows_written = sum(e["rows"] for e in done.values())
        task = progress_bar.add_task("mining", total=total_commits, completed=done_commits, rows=rows_written)

        def advance(n: int) -> None:
            progress_bar.advance(task, n)

        def on_commit(unit: Unit, result: UnitResult) -> None:
            nonlocal rows_written
            rows_written += commit_unit(unit, result)
            progress_bar.update(task, rows=rows_written)

        if jobs == 1 or len(todo) <= 1:
            def decide(unit, keys, commits, diffs, commits_passed):
                return verdicts.decide(unit.key, keys, commits, diffs, commits_passed)

            for unit in todo:
                on_commit(unit, mine_unit(unit, config, str(out), decide, advance))
        else:
            _run_pool(todo, config, str(out), jobs, verdicts, on_commit, advance)

    manifest["complete"] = True
    shards.write_manifest(out, manifest)
    summary = summarise(manifest, units)
    summary.seconds = time.perf_counter() - started
    summary.cpu_seconds = time.process_time() - cpu_started + worker_cpu
    summary.commits_this_run = sum(len(u.shas) for u in todo)
    summary.resumed_units = len(units) - len(todo)
    for reason, n in plan_drops.items():
        summary.drops[reason] = summary.drops.get(reason, 0) + n
    if first_parent and config.skip_merges and summary.drops.get("merge", 0) * 2 > summary.commits_seen > 0:
        summary.notes.append("most first-parent commits are merges (pull requests); --all-commits also walks "
                             "the commits of the merged branches")
    return summary


def _run_pool(todo: list[Unit], config: FilterConfig, out: str, jobs: int, verdicts: _Verdicts,
              on_commit, advance) -> None:
    """Mine units in worker processes; answer their dedup questions and commit them in plan order.

    A worker that dies (e.g. a crash inside libgit2 on a damaged pack) breaks the pool: the pool is
    rebuilt and its units retried once; a unit that breaks it twice is committed empty and counted.
    Units are submitted in plan order and picked up first-in first-out, so the lowest undecided unit
    is always being mined by a worker that is not waiting: the verdicts cannot deadlock.
    """
    ctx = multiprocessing.get_context("spawn" if os.name != "posix" else "forkserver")
    queue = ctx.Queue()
    order = [u.key for u in todo]
    by_key = {u.key: u for u in todo}
    position = {key: i for i, key in enumerate(order)}
    results: dict[str, UnitResult] = {}
    crashes: collections.Counter = collections.Counter()
    waiting = collections.deque(todo)
    next_commit = 0
    barren_pools = 0  # pools that broke before finishing a single unit, in a row
    window = jobs * 3  # bounds how many units are mined ahead of the one to commit next
    (Path(out) / ".verdicts").mkdir(parents=True, exist_ok=True)

    def answer(key: str) -> None:
        unit = by_key[key]
        shards.atomic_write_text(_verdict_path(out, unit), json.dumps(verdicts.masks[key]))

    def drain_queue() -> None:
        while True:
            try:
                message = queue.get_nowait()
            except Exception:
                return
            if message[0] == "progress":
                advance(message[1])
            else:
                _, key, keys, commits, diffs, commits_passed = message
                if key in verdicts.masks:  # a retried unit asks again: same answer
                    answer(key)
                for decided in verdicts.offer(key, keys, commits, diffs, commits_passed):
                    answer(decided)

    while next_commit < len(order):
        pool = cf.ProcessPoolExecutor(jobs, mp_context=ctx, initializer=_init_worker, initargs=(queue, os.getpid()))
        inflight: dict[cf.Future, Unit] = {}
        try:
            while next_commit < len(order):
                while waiting and (not inflight or len(inflight) + len(results) < window):
                    unit = waiting.popleft()
                    inflight[pool.submit(mine_unit, unit, config, out)] = unit
                finished, _ = cf.wait(list(inflight), timeout=0.01, return_when=cf.FIRST_COMPLETED)
                drain_queue()
                for future in finished:
                    inflight.pop(future)
                    result = future.result()
                    results[result.key] = result
                    barren_pools = 0
                while next_commit < len(order) and order[next_commit] in results:
                    key = order[next_commit]
                    on_commit(by_key[key], results.pop(key))
                    next_commit += 1
        except cf.process.BrokenProcessPool as exc:
            barren_pools += 1
            if barren_pools >= 2:
                raise PatchcoderError(
                    f"mining worker processes die before finishing any work ({exc}); try --jobs 1") from None
            for unit in inflight.values():
                crashes[unit.key] += 1
                if crashes[unit.key] >= 2:
                    for decided in verdicts.offer(unit.key, [], [], None, 0):
                        answer(decided)
                    results[unit.key] = UnitResult(unit.key, {"commits_seen": len(unit.shas),
                                                              "unit_crashed": len(unit.shas)})
                else:
                    waiting.append(unit)
            waiting = collections.deque(sorted(waiting, key=lambda u: position[u.key]))
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            drain_queue()
    shutil.rmtree(Path(out) / ".verdicts", ignore_errors=True)


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
    from patchcoder.ground.console import count_table, stderr

    table = count_table(f"patchcoder mine → {out}")
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
    table.add_row("time", f"{summary.seconds:,.1f} s ({summary.cpu_seconds:,.1f} s of CPU)")
    table.add_row("throughput", f"{rate:,.0f} commits/s")
    if summary.resumed_units:
        table.add_row("units resumed from an earlier run", f"{summary.resumed_units:,}")
    stderr().print(table)
    for note in summary.notes:
        stderr().print(f"[yellow]note:[/yellow] {note}")
