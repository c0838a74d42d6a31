"""Mining throughput: `patchcoder mine` vs PyDriller vs `git log -p` on the same repository, in one run.

    python benchmarks/mining.py REPO [--since DATE] [--repeats 3] [--jobs 2] [--pydriller-commits 400]

Three measurements, interleaved round by round so that machine noise hits all of them alike:
- floor: `git log -p --no-merges HEAD >/dev/null` (git's C diff machinery, nothing kept);
- `patchcoder mine REPO --all-commits` (the same commits: every non-merge commit, each against its
  first parent), writing shards, as a subprocess;
- PyDriller reading the same fields (old/new text, diff, message, added/deleted) for the files whose
  language the miner keeps. PyDriller is slow, so it reads the newest `--pydriller-commits` non-merge
  commits and its throughput (commits/s) is compared with the miner's on the whole range.
Prints each run, the medians, and the ratios of medians, for wall-clock throughput and for CPU time
(user + system of the whole process tree, from getrusage): on a shared machine the CPU figures are
the steadier ones, the wall-clock ones include the parallel speed-up of `--jobs`.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time


def _non_merge_commits(repo: str, since: str | None) -> list[str]:
    args = ["git", "-C", repo, "rev-list", "--no-merges", "HEAD"] + ([f"--since={since}"] if since else [])
    return subprocess.run(args, capture_output=True, text=True, check=True).stdout.split()


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _self_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def time_git_log(repo: str, since: str | None) -> tuple[float, float]:
    """(wall seconds, CPU seconds)"""
    args = ["git", "-C", repo, "log", "-p", "--no-merges", "HEAD"] + ([f"--since={since}"] if since else [])
    start, cpu = time.perf_counter(), _children_cpu()
    subprocess.run(args, stdout=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start, _children_cpu() - cpu


def time_patchcoder(repo: str, since: str | None, jobs: int) -> tuple[float, float]:
    """(wall seconds, CPU seconds); the CPU time of the worker processes comes from the run's own summary."""
    out = tempfile.mkdtemp(prefix="bench-mine-")
    args = [sys.executable, "-m", "patchcoder", "mine", repo, "--out", out, "--all-commits", "--jobs", str(jobs),
            "--no-progress", "--json"] + (["--since", since] if since else [])
    try:
        start = time.perf_counter()
        result = subprocess.run(args, capture_output=True, text=True, check=True)
        wall = time.perf_counter() - start
        return wall, json.loads(result.stdout)["cpu_seconds"]
    finally:
        shutil.rmtree(out, ignore_errors=True)


def time_pydriller(repo: str, commits: list[str]) -> tuple[float, float]:
    from pydriller import Repository

    from patchcoder.ground.languages import language_of

    wanted = set(commits)
    start, cpu = time.perf_counter(), _self_cpu() + _children_cpu()
    kept = 0
    for commit in Repository(repo, only_commits=commits, only_no_merge=True).traverse_commits():
        assert commit.hash in wanted
        message = commit.msg
        for mf in commit.modified_files:
            if language_of(mf.new_path or mf.old_path or "") is None:
                continue
            fields = (mf.source_code_before, mf.source_code, mf.diff, mf.added_lines, mf.deleted_lines, message)
            kept += fields[-1] is not None
    return time.perf_counter() - start, _self_cpu() + _children_cpu() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("repo")
    parser.add_argument("--since", help="limit every tool to commits since this date")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--pydriller-commits", type=int, default=400)
    args = parser.parse_args()

    print(f"repository: {args.repo} (cloned for the run)")
    # One ordinary clone for all three tools (PyDriller/GitPython cannot open some bare mirrors).
    clone_dir = tempfile.mkdtemp(prefix="bench-repo-")
    subprocess.run(["git", "clone", "--quiet", "--no-checkout", args.repo, clone_dir], check=True)
    args.repo = clone_dir
    commits = _non_merge_commits(args.repo, args.since)
    sample = commits[: args.pydriller_commits]
    print(f"HEAD: {subprocess.run(['git', '-C', args.repo, 'rev-parse', 'HEAD'], capture_output=True, text=True).stdout.strip()}")
    print(f"non-merge commits: {len(commits)} (PyDriller reads the newest {len(sample)}); jobs: {args.jobs}; "
          f"cpus: {os.cpu_count()}")
    runs: dict[str, list[tuple[float, float]]] = {"git log -p": [], "patchcoder mine": [], "pydriller": []}
    for i in range(args.repeats):
        wall, cpu = time_git_log(args.repo, args.since)
        runs["git log -p"].append((len(commits) / wall, len(commits) / cpu))
        wall, cpu = time_patchcoder(args.repo, args.since, args.jobs)
        runs["patchcoder mine"].append((len(commits) / wall, len(commits) / cpu))
        wall, cpu = time_pydriller(args.repo, sample)
        runs["pydriller"].append((len(sample) / wall, len(sample) / cpu))
        print(f"round {i + 1}: " + ", ".join(f"{k} {v[-1][0]:,.0f} commits/s ({v[-1][1]:,.0f} per CPU-second)"
                                             for k, v in runs.items()), flush=True)
    wall = {k: statistics.median(x[0] for x in v) for k, v in runs.items()}
    cpu = {k: statistics.median(x[1] for x in v) for k, v in runs.items()}
    print("\nmedian throughput:          commits/s    commits per CPU-second")
    for k in runs:
        print(f"  {k:22s} {wall[k]:10,.0f} {cpu[k]:14,.0f}")
    print(f"\npatchcoder / pydriller:  wall {wall['patchcoder mine'] / wall['pydriller']:.1f}x, "
          f"CPU {cpu['patchcoder mine'] / cpu['pydriller']:.1f}x  (target >= 8x)")
    print(f"git log -p / patchcoder: wall {wall['git log -p'] / wall['patchcoder mine']:.2f}x, "
          f"CPU {cpu['git log -p'] / cpu['patchcoder mine']:.2f}x  (target <= 3x)")
    shutil.rmtree(clone_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
