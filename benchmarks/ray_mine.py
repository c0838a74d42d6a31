"""Mining on Ray against local worker processes: `patchcoder mine --ray ADDRESS` vs `--jobs N`, in one run.

    python benchmarks/ray_mine.py REPO_OR_DIR... [--repeats 3] [--commits-per-shard 500] [--workers 2]
                                  [--all-commits]

Starts a one-node Ray cluster of `--workers` CPUs on this machine (mining/raypool.py's `local_cluster`: its
own temp dir and auth token, its workers as nice as local ones; not timed, as a cluster is up before a run),
then runs, alternating (local, Ray, local, Ray, ...) so that machine noise hits both alike:
`patchcoder mine --jobs N` and `patchcoder mine --ray ADDRESS`, each a fresh subprocess into a fresh output
folder. Prints each run with the load average and CPU seconds (the Ray driver's own too), the medians, their
ratio, and Ray's overhead per unit, (median Ray - median local) / units. Checks that both wrote the same
shards. Stops the cluster at the end. Needs `pip install 'patchcoder[ray]'`.
"""

from __future__ import annotations

import argparse
import filecmp
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from patchcoder.mining.raypool import local_cluster


def _mine(repos: list[str], extra: list[str], commits_per_shard: int, env: dict | None = None
          ) -> tuple[float, dict, str]:
    out = tempfile.mkdtemp(prefix="bench-ray-")
    shutil.rmtree(out)
    args = [sys.executable, "-m", "patchcoder", "mine", *repos, "--out", out, "--no-progress", "--json",
            "--commits-per-shard", str(commits_per_shard), *extra]
    start, before = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
    result = subprocess.run(args, capture_output=True, text=True, env=env)
    seconds, after = time.perf_counter() - start, resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed: {result.stderr.strip()}")
    summary = json.loads(result.stdout)
    # the CPU of the subprocess and of the descendants it waited for: a local run's driver and workers, a Ray
    # run's driver alone (Ray's workers are its raylet's children)
    summary["tree_cpu"] = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return seconds, summary, out


def _same_shards(a: str, b: str) -> bool:
    def files(root):
        return sorted(os.path.relpath(os.path.join(d, f), root) for d, _, fs in os.walk(root) for f in fs
                      if f.endswith(".parquet"))

    return files(a) == files(b) and all(filecmp.cmp(os.path.join(a, f), os.path.join(b, f), shallow=False)
                                        for f in files(a))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("repos", nargs="+")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--commits-per-shard", type=int, default=500)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--all-commits", action="store_true", help="passed on to `patchcoder mine`")
    args = parser.parse_args()
    walk = ["--all-commits"] if args.all_commits else []

    local_times, ray_times, units = [], [], None
    with local_cluster(nodes=1, cpus=args.workers, worker_niceness=0, object_store_mb=200) as cluster:
        address, env = cluster.address, cluster.env
        for round_ in range(args.repeats):
            load = os.getloadavg()[0]
            local, summary, local_out = _mine(args.repos, ["--jobs", str(args.workers), *walk], args.commits_per_shard)
            on_ray, ray_summary, ray_out = _mine(args.repos, ["--ray", address, *walk], args.commits_per_shard, env)
            same = _same_shards(local_out, ray_out)
            with open(os.path.join(local_out, "manifest.json")) as f:
                units = len(json.load(f)["units"])
            shutil.rmtree(local_out)
            shutil.rmtree(ray_out)
            if not same or summary["rows"] != ray_summary["rows"]:
                raise SystemExit("the Ray run wrote other shards than the local run")
            local_times.append(local)
            ray_times.append(on_ray)
            print(f"round {round_ + 1}: local --jobs {args.workers} {local:.1f} s ({summary['cpu_seconds']:.0f} CPU-s), "
                  f"Ray {on_ray:.1f} s ({ray_summary['cpu_seconds']:.0f} CPU-s of driver and tasks; the driver "
                  f"{ray_summary['tree_cpu']:.2f} CPU-s) "
                  f"({summary['commits_seen']:,} commits, {summary['rows']:,} rows, {units} units; "
                  f"load average {load:.1f} → {os.getloadavg()[0]:.1f})", flush=True)
    local, on_ray = statistics.median(local_times), statistics.median(ray_times)
    print(f"median of {args.repeats}: local {local:.1f} s, Ray {on_ray:.1f} s, Ray / local = {on_ray / local:.3f}; "
          f"Ray's overhead per unit {(on_ray - local) / units * 1000:.0f} ms ({units} units)")


if __name__ == "__main__":
    main()
