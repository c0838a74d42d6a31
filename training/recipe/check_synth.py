"""Checks a synthetic training set against what must stay out of it, and counts what it holds.

    python training/recipe/check_synth.py /data/synth-train --held-out /data/mined-heldout /data/splits/valid \
        /data/splits/test /data/mined-realfix-src /data/synth-valid /data/synth-heldout --mirrors M1 M2 ...

Reads the shards its manifest records as done (a run may still be writing others). Reports (JSON on stdout):
whether the run is complete, files used (the manifest's count), rows, distinct original files (the `new` text, by git blob id: exact duplicates
counted once), rows and files per source (stdlib / pypi / mined repositories), the class mix (`sstub`) and the
bug classes, and how many original files are byte-identical to a file of a held-out history: any version of a
file that a held-out repository's mined history touched (old or new side), any original file of the held-out
synthetic sets, and, with --mirrors, every file of those bare mirrors' HEAD trees. Exits 1 when any is found.
"""

from __future__ import annotations

import argparse
import collections
import json
import subprocess
import sys
from pathlib import Path


def _shards(folder: str) -> list[str]:
    files = sorted(str(p) for p in Path(folder).rglob("*.parquet"))
    if not files:
        raise SystemExit(f"no parquet shards under {folder}")
    return files


def held_out_blobs(folders: list[str], mirrors: list[str]) -> set[str]:
    import pyarrow.parquet as pq

    blobs: set[str] = set()
    for folder in folders:
        for file in _shards(folder):
            table = pq.read_table(file, columns=["old_blob", "new_blob"])
            blobs.update(b for b in table.column("old_blob").to_pylist() if b)
            blobs.update(b for b in table.column("new_blob").to_pylist() if b)
    for mirror in mirrors:
        listing = subprocess.run(["git", f"--git-dir={mirror}", "ls-tree", "-r", "HEAD"], capture_output=True,
                                 text=True, check=True).stdout
        blobs.update(line.split()[2] for line in listing.splitlines() if line.split()[1] == "blob")
    blobs.discard("0" * 40)
    return blobs


def source_of(repo: str) -> str:
    if repo.startswith("synth:stdlib/"):
        return "stdlib"
    if repo.startswith("synth:"):
        return repo.split("/")[0].removeprefix("synth:")
    return "mined"


def main(argv: list[str] | None = None) -> int:
    import pyarrow.parquet as pq

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("synth", help="a `patchcoder synth` output folder")
    p.add_argument("--held-out", nargs="*", default=[], metavar="DIR", help="mined or synthetic held-out shards")
    p.add_argument("--mirrors", nargs="*", default=[], metavar="GIT_DIR", help="bare mirrors of held-out repositories")
    args = p.parse_args(argv)

    forbidden = held_out_blobs(args.held_out, args.mirrors)
    manifest_path = Path(args.synth) / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else None
    if manifest is not None:  # only the units the manifest records as done (a run may still be writing)
        units = manifest["units"].values()
        shards = sorted(str(Path(args.synth) / u["shard"]) for u in units if u["shard"])
    else:
        shards = _shards(args.synth)
    rows = 0
    files: dict[str, tuple[str, str]] = {}
    rows_by_source: collections.Counter = collections.Counter()
    sstub: collections.Counter = collections.Counter()
    kinds: collections.Counter = collections.Counter()
    for file in shards:
        table = pq.read_table(file, columns=["repo", "path", "new_blob", "sstub", "message"])
        for repo, path, blob, cls, message in zip(*(table.column(c).to_pylist() for c in
                                                    ("repo", "path", "new_blob", "sstub", "message")), strict=True):
            rows += 1
            rows_by_source[source_of(repo)] += 1
            sstub[cls] += 1
            kinds[message] += 1
            files.setdefault(blob, (repo, path))
    files_by_source = collections.Counter(source_of(repo) for repo, _ in files.values())
    leaked = sorted(f"{repo}:{path}" for b, (repo, path) in files.items() if b in forbidden)
    report = {
        "complete": manifest.get("complete") if manifest else None,
        "files_used": sum(u["files_used"] for u in units) if manifest else None,
        "rows": rows,
        "distinct_original_files": len(files),
        "rows_by_source": dict(rows_by_source.most_common()),
        "files_by_source": dict(files_by_source.most_common()),
        "sstub": dict(sstub.most_common()),
        "messages": dict(kinds.most_common()),
        "held_out_blobs_compared": len(forbidden),
        "files_identical_to_held_out": len(leaked),
        "examples_identical_to_held_out": leaked[:20],
    }
    json.dump(report, sys.stdout, indent=1)
    sys.stdout.write("\n")
    return 1 if leaked else 0


if __name__ == "__main__":
    sys.exit(main())
