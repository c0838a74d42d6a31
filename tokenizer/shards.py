"""Token shards: mined parquet shards → flat memory-mappable token arrays, in parallel, resumable.

Layout of an output folder:
    manifest.json                    vocabulary fingerprint, example config, finished units and their counts
    shards/<unit>.ids.npy            all token ids of the unit's examples, concatenated (uint16 or uint32)
    shards/<unit>.mask.npy           1 where the token is part of the answer (script, <|eos|>), else 0 (uint8)
    shards/<unit>.offsets.npy        int64, example k is ids[offsets[k]:offsets[k+1]]
    shards/<unit>.examples.parquet   per example: repo, commit, path, language, sstub, window, message dropped, no change
The input and the output folder are each a path or an fsspec URL (ground/storage.py). One unit is one input
parquet file. Its files are written atomically (temp file + rename, or one PUT on an object store); a unit
counts as done only once the manifest (ground/manifest.py) lists it, so a killed run resumes cleanly. The run
goes through the miner's worker pool (mining/pool.py).
"""

from __future__ import annotations

import functools
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from patchcoder.ground.errors import PatchcoderError
from patchcoder.ground.manifest import Manifest
from patchcoder.ground.storage import Location
from patchcoder.mining.plan import Unit
from patchcoder.mining.pool import Channel, make_pool, progress_bar
from patchcoder.tokenizer.examples import Dropped, ExampleConfig, build_examples

FORMAT = "patchcoder-tokens/1"
KIND = "token-shard"  # how errors name the manifest
COLUMNS = ["repo", "commit", "path", "language", "message", "old", "new", "sstub"]
REQUIRED = ("repo", "commit", "path", "language", "old", "new")  # without one, a shard's rows cannot be read
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

    def table_rows(self) -> list[tuple[str, int | str]]:
        """The rows of the closing summary table."""
        return [
            ("units written / already done", f"{self.units:,} / {self.skipped_units:,}"),
            ("mined rows", self.rows),
            ("examples", self.examples),
            ("of which no change", self.no_change_examples),
            ("tokens (answer tokens)", f"{self.tokens:,} ({self.answer_tokens:,})"),
            ("messages dropped", self.messages_dropped),
            *((f"dropped: {reason}", count) for reason, count in sorted(self.dropped.items())),
            *((f"language: {language}", count) for language, count in self.languages.most_common()),
            *((f"sstub: {sstub}", count) for sstub, count in self.sstubs.most_common()),
            ("seconds", f"{self.seconds:.1f}"),
        ]


def unit_name(shard: Location, data_dir: Location) -> str:
    """The unit of a mined shard: its path below the mined folder, without .parquet, parts joined by __."""
    return "__".join(shard.relative_to(data_dir).removesuffix(".parquet").split("/"))


# ---- the worker side

_TOKENIZER = None


def _init_worker(vocab: str | None) -> None:
    global _TOKENIZER
    from patchcoder.tokenizer.vocab import CodeTokenizer

    _TOKENIZER = CodeTokenizer.load(vocab) if vocab else CodeTokenizer.default()


def tokenize_unit(unit: Unit, channel: Channel, *, out: str, config: ExampleConfig, make_examples=None) -> dict:
    """Turn one mined parquet file (the unit's item) into the unit's token arrays; returns its counts.
    `make_examples(tokenizer, row, config)`: what a row becomes (default `build_examples`)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    tok = _TOKENIZER
    (shard,) = unit.items
    dtype = np.uint16 if tok.vocab_size <= 2**16 else np.uint32
    try:
        all_ids, all_masks, offsets, meta, counts = _tokenize_rows(tok, shard, dtype, config, make_examples)
    except (pa.ArrowException, OSError) as exc:  # a truncated or damaged shard: counted, its unit holds no examples
        if _transient(exc):  # a read that may work next time: the unit stays undone, for --resume
            raise
        all_ids, all_masks, offsets, meta, counts = _tokenize_rows(tok, None, dtype, config, make_examples)
        counts["dropped"]["unreadable_shard"] += 1
    folder = Location(out) / "shards"
    arrays = {
        "ids": np.concatenate(all_ids) if all_ids else np.zeros(0, dtype=dtype),
        "mask": np.concatenate(all_masks) if all_masks else np.zeros(0, dtype=np.uint8),
        "offsets": np.asarray(offsets, dtype=np.int64),
    }
    for name, array in arrays.items():
        (folder / f"{unit.key}.{name}.npy").write(lambda f, array=array: np.save(f, array))
    (folder / f"{unit.key}.examples.parquet").write(lambda f: pq.write_table(pa.table(meta), f))
    counts["dropped"] = dict(counts["dropped"])
    counts["languages"] = dict(counts["languages"])
    counts["sstubs"] = dict(counts["sstubs"])
    return counts


def _transient(exc: BaseException) -> bool:
    """A failure of the reading, not of the file: the network, the disk, a limit of this process."""
    import errno

    return isinstance(exc, (ConnectionError, TimeoutError, BlockingIOError, InterruptedError)) or \
        getattr(exc, "errno", None) in (errno.EIO, errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.EAGAIN)


def _tokenize_rows(tok, shard: str | None, dtype, config: ExampleConfig, make_examples):
    """The examples of one mined shard's rows (none for None), as arrays, their metadata, and the unit's counts."""
    import pyarrow.parquet as pq

    all_ids: list[np.ndarray] = []
    all_masks: list[np.ndarray] = []
    offsets = [0]
    meta: dict[str, list] = {k: [] for k in ("repo", "commit", "path", "language", "sstub", "window_start",
                                             "window_lines", "message_dropped", "no_change")}
    counts = {"rows": 0, "examples": 0, "no_change_examples": 0, "tokens": 0, "answer_tokens": 0, "messages_dropped": 0,
              "dropped": Counter(), "languages": Counter(), "sstubs": Counter()}
    if shard is None:
        return all_ids, all_masks, offsets, meta, counts
    source, filesystem = Location(shard).for_arrow()
    parquet = pq.ParquetFile(source, filesystem=filesystem)
    if any(c not in parquet.schema_arrow.names for c in REQUIRED):  # not a mined (or synth) shard
        counts["dropped"]["missing_columns"] += 1
        return all_ids, all_masks, offsets, meta, counts
    for row in _rows(parquet):  # a few hundred rows in memory at a time, not the whole shard
        counts["rows"] += 1
        if row is None:
            counts["dropped"]["undecodable_row"] += 1
            continue
        try:
            examples, dropped_parts = (make_examples or build_examples)(tok, row, config)
        except Dropped as dropped:
            counts["dropped"][dropped.reason] += 1
            continue
        for reason in dropped_parts:
            counts["dropped"][f"{reason} (part of a change)" if examples else reason] += 1
        for example in examples:
            ids = np.asarray(example.ids, dtype=dtype)
            if example.loss_mask is None:
                mask = np.zeros(len(ids), dtype=np.uint8)
                mask[example.answer_start:] = 1
            else:
                mask = np.asarray(example.loss_mask, dtype=np.uint8)
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
    return all_ids, all_masks, offsets, meta, counts


def _rows(parquet):
    """The rows of a parquet file as dicts, 256 at a time; None for a row whose text is not UTF-8 (written by
    another tool: parquet's text must be UTF-8, and pyarrow refuses the whole batch that holds it)."""
    for batch in parquet.iter_batches(batch_size=256, columns=COLUMNS):
        try:
            rows = batch.to_pylist()
        except UnicodeDecodeError:
            rows = [_row(batch, i) for i in range(batch.num_rows)]
        yield from rows


def _row(batch, i: int) -> dict | None:
    try:
        return batch.slice(i, 1).to_pylist()[0]
    except UnicodeDecodeError:
        return None


# ---- the driver


def tokenize_dataset(
    data_dir: str | os.PathLike | Location,
    out: str | os.PathLike | Location,
    *,
    vocab: str | os.PathLike | None = None,
    config: ExampleConfig = ExampleConfig(),
    jobs: int = 1,
    resume: bool = False,
    show_progress: bool = False,
    ray: str | None = None,
    make_examples=None,
    describe: dict | None = None,
) -> TokenizeSummary:
    """Tokenize every mined shard under `data_dir` into token shards under `out` (each a folder path or an fsspec
    URL, ground/storage.py). `make_examples`, a picklable function (tokenizer, row, config) → (examples, dropped
    reasons), replaces `build_examples` (e.g. examples that carry competing candidates, made on a higher floor),
    and `describe` is recorded in the manifest with the config (a resumed run must be made alike)."""
    from patchcoder.mining.shards import shard_files
    from patchcoder.tokenizer.vocab import CodeTokenizer

    started = time.perf_counter()
    data_dir, out = Location(data_dir), Location(out)
    if not data_dir.is_dir():
        if data_dir.exists():
            raise PatchcoderError(f"{data_dir} is a file; --data takes the folder `patchcoder mine` (or synth) wrote")
        raise PatchcoderError(f"mined data folder {data_dir} does not exist (make it with `patchcoder mine ... --out {data_dir}`)")
    inside = f"{out.resolve()}/".startswith(f"{data_dir.resolve()}/")
    if inside:
        raise PatchcoderError(f"--out {out} is inside --data {data_dir}: its shards would be read as input; choose "
                              "another --out")
    shards = [Location(p) for p in shard_files(data_dir)]
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
        **({"examples": describe} if describe is not None else {}),
        "data": str(data_dir.resolve()),
    }
    manifest = Manifest.open(out, FORMAT, KIND, resume=resume, same=expected)
    if manifest is None:
        manifest = Manifest.create(out, {**expected, "complete": False})

    summary = TokenizeSummary()
    todo = []
    for shard in shards:
        name = unit_name(shard, data_dir)
        if name in manifest.units:
            summary.skipped_units += 1
            summary.add(manifest.units[name])
        else:
            todo.append(Unit(name, (str(shard),)))
    pool = make_pool(jobs, todo, initializer=_init_worker, initargs=(vocab_path,), ray=ray,
                     died="a tokenize worker process died ({error}); rerun with --resume "
                          "(and --jobs 1 to find the shard that kills it)")

    with progress_bar("shards", transient=True, enabled=show_progress) as progress:
        task = progress.add_task("tokenize", total=len(shards), completed=summary.skipped_units)

        def finished(unit: Unit, counts: dict) -> None:
            manifest.record(unit.key, counts)
            summary.units += 1
            summary.add(counts)
            progress.advance(task)

        pool.run(todo, functools.partial(tokenize_unit, out=str(out), config=config, make_examples=make_examples),
                 finished)
    manifest.complete()
    summary.seconds = time.perf_counter() - started
    return summary
