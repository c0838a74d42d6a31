"""Extract (old file, new file, commit message) pairs from git history into parquet shards.

Walks the first-parent history of each repository with pygit2 (no git subprocess), diffs every
commit against its first parent with rename detection, filters CommitPack-style (merges, bots,
generated/vendored/lock/minified/binary files, oversized files and diffs, commits touching too many
files, exact duplicates) and writes one row per kept (commit, file) to zstd parquet shards under
--out, with manifest.json recording what is done. Every drop is counted in the closing summary.

Load the result with:  datasets.load_dataset("parquet", data_files="OUT/shards/**/*.parquet")
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from patchcoder.ground.argtypes import fraction, iso_date, language_list, location, positive_int
from patchcoder.ground.errors import UsageError
from patchcoder.ground.storage import Location


def add_arguments(p: argparse.ArgumentParser) -> None:
    from patchcoder.mining.filters import FilterConfig
    from patchcoder.mining.pool import add_ray_option

    d = FilterConfig()
    p.add_argument("repos", nargs="+", metavar="REPO_OR_DIR",
                   help="a git repository (work tree or bare), or a directory whose sub-folders are repositories; "
                        "NAME=REPO names a repository for the `repo` column (e.g. pallets/click=/mirrors/click)")
    p.add_argument("--out", required=True, type=location, metavar="DIR", help="output folder for shards/ and manifest.json, or an fsspec URL such as s3://BUCKET/PREFIX "
                        "(docs/cluster.md)")
    p.add_argument("--since", type=iso_date, metavar="DATE", help="only commits committed on or after DATE (ISO 8601)")
    p.add_argument("--until", type=iso_date, metavar="DATE", help="only commits committed on or before DATE (ISO 8601)")
    p.add_argument("--branch", metavar="REF", help="walk from this branch, tag or commit instead of HEAD")
    p.add_argument("--all-commits", action="store_true",
                   help="walk every commit reachable from the branch, not only its first-parent chain")
    p.add_argument("--languages", type=language_list, metavar="LIST",
                   help="comma-separated languages to keep (e.g. python,go); 'any' keeps every text file; "
                        "default: every recognised programming language")
    p.add_argument("--jobs", type=positive_int, default=os.cpu_count() or 1, metavar="N",
                   help="worker processes, parallel over repositories and commit ranges (default: %(default)s = cores)")
    add_ray_option(p)
    p.add_argument("--resume", action="store_true",
                   help="continue a killed or interrupted run in --out; the result equals an uninterrupted run")
    p.add_argument("--commits-per-shard", type=positive_int, default=500, metavar="N",
                   help="commits per work unit and shard (default: %(default)s)")
    p.add_argument("--max-files", type=positive_int, default=d.max_files, metavar="N",
                   help="drop commits changing more files than N (default: %(default)s)")
    p.add_argument("--max-file-bytes", type=positive_int, default=d.max_file_bytes, metavar="N",
                   help="drop files larger than N bytes before or after the change (default: %(default)s)")
    p.add_argument("--max-diff-lines", type=positive_int, default=d.max_diff_lines, metavar="N",
                   help="drop file changes with more than N added+deleted lines (default: %(default)s)")
    p.add_argument("--keep-merges", action="store_true", help="keep merge commits (diffed against their first parent)")
    p.add_argument("--keep-bots", action="store_true", help="keep commits by bot authors")
    p.add_argument("--keep-auto-messages", action="store_true",
                   help="keep commits with empty or generated messages ('Update README.md', 'Merge branch ...')")
    p.add_argument("--near-duplicates", type=fraction, metavar="J",
                   help="also drop changes whose MinHash Jaccard similarity to a kept change is ≥ J (e.g. 0.85)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON on stdout")
    p.add_argument("--no-progress", action="store_true", help="do not show the progress bar")


def run(args: argparse.Namespace) -> int:
    from patchcoder.ground.console import print_summary
    from patchcoder.mining.filters import FilterConfig
    from patchcoder.mining.run import mine

    if args.near_duplicates == 0:
        raise UsageError("--near-duplicates needs a similarity above 0")
    languages, keep_unknown = None, False
    if args.languages:
        if "any" in args.languages:
            keep_unknown = True
        else:
            languages = args.languages
    config = FilterConfig(
        skip_merges=not args.keep_merges,
        skip_bots=not args.keep_bots,
        skip_auto_messages=not args.keep_auto_messages,
        max_files=args.max_files,
        max_file_bytes=args.max_file_bytes,
        max_diff_lines=args.max_diff_lines,
        languages=languages,
        keep_unknown_language=keep_unknown,
        near_duplicates=args.near_duplicates,
    )
    summary = mine(
        args.repos, args.out, config=config, branch=args.branch, first_parent=not args.all_commits,
        since=args.since, until=args.until, jobs=args.jobs, resume=args.resume,
        commits_per_shard=args.commits_per_shard, show_progress=not args.no_progress, ray=args.ray,
    )
    print_summary(f"patchcoder mine → {Location(args.out)}", summary.table_rows(), summary.notes)
    if args.json:
        json.dump(summary.as_dict(), sys.stdout, indent=1)
        sys.stdout.write("\n")
    return 0
