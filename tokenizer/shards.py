"""Token shards: mined parquet shards → flat memory-mappable token arrays, in parallel, resumable.

Layout of an output folder:
    manifest.json                    vocabulary fingerprint, example config, finished units and their counts
    shards/<unit>.ids.npy            all token ids of the unit's examples, concatenated (uint16 or uint32)
    shards/<unit>.mask.npy           1 where the token is part of the answer (script, <|eos|>), else 0 (uint8)
    shards/<unit>.offsets.npy        int64, example k is ids[offsets[k]:offsets[k+1]]
    shards/<unit>.examples.parquet   per example: repo, commit, path, language, sstub, window, message dropped, no change
One unit is one input parquet file. Its files are written to temporary names and renamed; a unit counts
as done only once the manifest (also renamed into place) lists it, so a killed run resumes cleanly.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from patchcoder.ground.errors import PatchcoderError
from patchcoder.tokenizer.examples import Dropped, ExampleConfig, build_examples

MANIFEST = "manifest.json"
FORMAT = "patchcoder-tokens/1"
COLUMNS = ["repo", "commit", "path", "language", "message", "old", "new", "sstub"]
ARRAYS = ("ids", "mask", "offsets")


@dataclass
class TokenizeSummary:
    units: int = 0
    skipped_units: int = 0  # already done (resume)
    rows: int = 0
    examples: int = 0
    no_change_examples: int = 0
    tokens: int = 0
    answer_tokens: int = 0
    messages_dropped: int = 0
    dropped: Counter = field(default_factory=Counter)
    languages: Counter = field(default_factory=Counter)
    sstubs: Counter = field(default_factory=Counter)
    seconds: float = 0.0

    def add(self, counts: dict) -> None:
        for name in ("rows", "examples", "no_change_examples", "tokens", "answer_tokens", "messages_dropped"):
            setattr(self, name, getattr(self, name) + counts[name])
        for name in ("dropped", "languages", "sstubs"):
            getattr(self, name).update(counts[name])

    def as_dict(self) -> dict:
        return {
            "units": self.units, "skipped_units": self.skipped_units, "rows": self.rows,
            "examples": self.examples, "no_change_examples": self.no_change_examples, "tokens": self.tokens, "answer_tokens": self.answer_tokens,
            "messages_dropped": self.messages_dropped, "dropped": dict(self.dropped),
            "languages": dict(self.languages), "sstubs": dict(self.sstubs), "seconds": round(self.seconds, 2),
        }


def unit_name(shard: Path, data_dir: Path) -> str:
    relative = shard.relative_to(data_dir).with_suffix("")
    return "__".join(relative.parts)


def _atomic_save(path: Path, array: np.ndarray) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        with open(tmp, "wb") as f:
            np.save(f, array)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _write_manifest(out: Path, manifest: dict) -> None:
    tmp = out / f".{MANIFEST}.tmp"
    tmp.write_text(json.dumps(manifest, indent=1, sort_keys=True))
    os.replace(tmp, out / MANIFEST)


def read_manifest(out: str | os.PathLike) -> dict:
    path = Path(out) / MANIFEST
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise PatchcoderError(f"{out} has no {MANIFEST}; make token shards with `patchcoder tokenize --data ... --out {out}`") from None
    if manifest.get("format") != FORMAT:
        raise PatchcoderError(f"{path} is not a patchcoder token-shard manifest")
    return manifest


# ---- the worker side

_TOKENIZER = None


def _init_worker(vocab: str | None) -> None:
    global _TOKENIZER
    from patchcoder.tokenizer.vocab import CodeTokenizer

    _TOKENIZER = CodeTokenizer.load(vocab) if vocab else CodeTokenizer.default()


def tokenize_unit(shard: str, out_prefix: str, config: ExampleConfig) -> dict:
    """Turn one mined parquet file into one unit of token arrays; returns its counts."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    tok = _TOKENIZER
    parquet = pq.ParquetFile(shard)
    dtype = np.uint16 if tok.vocab_size <= 2**16 else np.uint32
    all_ids: list[np.ndarray] = []
    all_masks: list[np.ndarray] = []
    offsets = [0]
    meta: dict[str, list] = {k: [] for k in ("repo", "commit", "path", "language", "sstub", "window_start",
                                             "window_lines", "message_dropped", "no_change")}
    counts = {"rows": 0, "examples": 0, "no_change_examples": 0, "tokens": 0, "answer_tokens": 0, "messages_dropped": 0,
              "dropped": Counter(), "languages": Counter(), "sstubs": Counter()}
    rows = (row for batch in parquet.iter_batches(batch_size=256, columns=COLUMNS) for row in batch.to_pylist())
    for row in rows:  # a few hundred rows in memory at a time, not the whole shard
        counts["rows"] += 1
        try:
            examples, dropped_parts = build_examples(tok, row, config)
        except Dropped as dropped:
            counts["dropped"][dropped.reason] += 1
            continue
        for reason in dropped_parts:
            counts["dropped"][f"{reason} (part of a change)" if examples else reason] += 1
        for example in examples:
            ids = np.asarray(example.ids, dtype=dtype)
            mask = np.zeros(len(ids), dtype=np.uint8)
            mask[example.answer_start:] = 1
            all_ids.append(ids)
            all_masks.append(mask)
            offsets.append(offsets[-1] + len(ids))
            for key, value in (("repo", row["repo"]), ("commit", row["commit"]), ("path", row["path"]),
                               ("language", row["language"]), ("sstub", example.sstub),
                               ("window_start", example.window_start), ("window_lines", example.window_lines),
                               ("message_dropped", example.message_dropped), ("no_change", example.no_change)):
                meta[key].append(value)
            counts["examples"] += 1
            counts["no_change_examples"] += example.no_change
            counts["tokens"] += len(ids)
            counts["answer_tokens"] += len(ids) - example.answer_start
            counts["messages_dropped"] += example.message_dropped
            counts["languages"][row["language"] or "unknown"] += 1
            counts["sstubs"][example.sstub or "none"] += 1
    prefix = Path(out_prefix)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    arrays = {
        "ids": np.concatenate(all_ids) if all_ids else np.zeros(0, dtype=dtype),
        "mask": np.concatenate(all_masks) if all_masks else np.zeros(0, dtype=np.uint8),
        "offsets": np.asarray(offsets, dtype=np.int64),
    }
    for name, array in arrays.items():
        _atomic_save(prefix.with_name(f"{prefix.name}.{name}.npy"), array)
    meta_path = prefix.with_name(f"{prefix.name}.examples.parquet")
    tmp = meta_path.with_name(f".{meta_path.name}.tmp")
    pq.write_table(pa.table(meta), tmp)
    os.replace(tmp, meta_path)
    counts["dropped"] = dict(counts["dropped"])
    counts["languages"] = dict(counts["languages"])
    counts["sstubs"] = dict(counts["sstubs"])
    return counts


def _run_unit(shard: str, out_prefix: str, config: ExampleConfig) -> dict:
    return tokenize_unit(shard, out_prefix, config)


# ---- the driver


def tokenize_dataset(
    data_dir: str | os.PathLike,
    out: str | os.PathLike,
    *,
    vocab: str | os.PathLike | None = None,
    config: ExampleConfig = ExampleConfig(),
    jobs: int = 1,
    resume: bool = False,
    show_progress: bool = False,
) -> TokenizeSummary:
    """Tokenize every mined shard under `data_dir` into token shards under `out`."""
    from patchcoder.mining.shards import shard_files
    from patchcoder.tokenizer.vocab import CodeTokenizer

    started = time.perf_counter()
    data_dir, out = Path(data_dir), Path(out)
    if not data_dir.is_dir():
        raise PatchcoderError(f"mined data folder {data_dir} does not exist (make it with `patchcoder mine ... --out {data_dir}`)")
    shards = [Path(p) for p in shard_files(data_dir)]
    if not shards:
        raise PatchcoderError(f"no parquet shards under {data_dir}")
    tok = CodeTokenizer.load(vocab) if vocab else CodeTokenizer.default()
    vocab_path = str(Path(vocab).resolve()) if vocab else None
    expected = {
        "format": FORMAT,
        "vocab_fingerprint": tok.fingerprint,
        "vocab_size": tok.vocab_size,
        "pad_id": tok.pad_id,
        "eos_id": tok.eos_id,
        "dtype": "uint16" if tok.vocab_size <= 2**16 else "uint32",
        "config": config.as_dict(),
    }
    manifest = None
    if (out / MANIFEST).exists():
        if not resume:
            raise PatchcoderError(f"{out} already holds token shards; pass --resume to continue, or choose a new --out")
        manifest = read_manifest(out)
        different = [k for k, v in expected.items() if manifest.get(k) != v]
        if different:
            raise PatchcoderError(f"cannot resume {out}: its {', '.join(different)} differ from this run's")
    if manifest is None:
        manifest = {**expected, "data": str(data_dir.resolve()), "units": {}}
        out.mkdir(parents=True, exist_ok=True)
        _write_manifest(out, manifest)
    for stale in (out / "shards").glob(".*.tmp") if (out / "shards").exists() else ():
        stale.unlink()

    summary = TokenizeSummary()
    todo = []
    for shard in shards:
        name = unit_name(shard, data_dir)
        if name in manifest["units"]:
            summary.skipped_units += 1
            summary.add(manifest["units"][name])
        else:
            todo.append((name, shard))

    progress = None
    if show_progress:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        from patchcoder.ground.console import stderr

        progress = Progress(TextColumn("tokenize"), BarColumn(), MofNCompleteColumn(), TextColumn("shards"),
                            TimeElapsedColumn(), console=stderr(), transient=True)
        progress.start()
        task = progress.add_task("tokenize", total=len(shards), completed=summary.skipped_units)

    def finished(name: str, counts: dict) -> None:
        manifest["units"][name] = counts
        _write_manifest(out, manifest)
        summary.units += 1
        summary.add(counts)
        if progress is not None:
            progress.advance(task)

    try:
        if jobs <= 1 or len(todo) <= 1:
            _init_worker(vocab_path)
            for name, shard in todo:
                finished(name, tokenize_unit(str(shard), str(out / "shards" / name), config))
        else:
            with ProcessPoolExecutor(jobs, initializer=_init_worker, initargs=(vocab_path,)) as pool:
                futures = {pool.submit(_run_unit, str(shard), str(out / "shards" / name), config): name
                           for name, shard in todo}
                for future in as_completed(futures):
                    finished(futures[future], future.result())
    finally:
        if progress is not None:
            progress.stop()
    summary.seconds = time.perf_counter() - started
    return summary


def print_summary(summary: TokenizeSummary, out: Path) -> None:
    from rich.table import Table

    from patchcoder.ground.console import stderr

    console = stderr()
    table = Table(title=f"token shards in {out}", show_header=False)
    table.add_row("units written / already done", f"{summary.units} / {summary.skipped_units}")
    table.add_row("mined rows", str(summary.rows))
    table.add_row("examples", str(summary.examples))
    table.add_row("of which no change", str(summary.no_change_examples))
    table.add_row("tokens (answer tokens)", f"{summary.tokens} ({summary.answer_tokens})")
    table.add_row("messages dropped", str(summary.messages_dropped))
    for reason, count in sorted(summary.dropped.items()):
        table.add_row(f"dropped: {reason}", str(count))
    for language, count in summary.languages.most_common():
        table.add_row(f"language: {language}", str(count))
    for sstub, count in summary.sstubs.most_common():
        table.add_row(f"sstub: {sstub}", str(count))
    table.add_row("seconds", f"{summary.seconds:.1f}")
    console.print(table)
