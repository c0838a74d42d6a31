"""Text to train a vocabulary on: source files under folders, or the `new` texts of mined shards.

Files are taken in a fixed pseudo-random order (hash of the path) up to a byte budget per folder, so a
budget samples the whole tree rather than its first sub-folders. Anything under a path component
named in EVALUATION_ONLY is never read (DATA.md: flask and requests are reserved for evaluation).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from patchcoder.ground.languages import language_of

EVALUATION_ONLY = frozenset({"flask", "requests"})
MAX_FILE_BYTES = 1_000_000  # larger files are almost always generated or data


def source_files(root: str | os.PathLike, max_bytes: int | None = None,
                 exclude: Iterable[str] = ()) -> Iterator[tuple[Path, str]]:
    """(path, language) of the code files under `root` (a file or a folder), within `max_bytes` in total,
    skipping paths below `root` with a component named in `exclude` (e.g. "site-packages")."""
    root = Path(root)
    skip = EVALUATION_ONLY | set(exclude)
    candidates = [root] if root.is_file() else [p for p in root.rglob("*") if p.is_file() and not p.is_symlink()]
    candidates.sort(key=lambda p: hashlib.blake2b(str(p).encode(), digest_size=8).digest())
    taken = 0
    for path in candidates:
        if skip.intersection(path.parts[len(root.parts):]) or EVALUATION_ONLY.intersection(path.parts):
            continue
        language = language_of(path.as_posix())
        if language is None:
            continue
        try:
            size = path.stat().st_size
        except OSError:
            continue
        if size == 0 or size > MAX_FILE_BYTES:
            continue
        if max_bytes is not None and taken + size > max_bytes:
            if taken >= max_bytes:
                return
            continue
        taken += size
        yield path, language


def mined_texts(data_dir: str | os.PathLike, max_bytes: int | None = None) -> Iterator[tuple[bytes, str | None]]:
    """(text, language) of each distinct `new` file text in a mined dataset (patchcoder mine --out DIR)."""
    from patchcoder.mining.shards import read_shard, shard_files

    seen: set[str] = set()
    taken = 0
    for shard in shard_files(data_dir):
        table = read_shard(shard, ["repo", "new", "new_blob", "language"])
        for repo, new, blob, language in zip(*(table.column(c).to_pylist() for c in table.column_names), strict=True):
            if new is None or blob in seen or EVALUATION_ONLY.intersection(Path(repo or "").parts):
                continue
            seen.add(blob)
            data = new.encode("utf-8", "surrogatepass")
            taken += len(data)
            yield data, language
            if max_bytes is not None and taken >= max_bytes:
                return


def _lex_file(item: tuple[Path | bytes, str | None]) -> str:
    from patchcoder.tokenizer.lexer import Lexer
    from patchcoder.tokenizer.vocab import pieces_to_bpe_input

    source, language = item
    data = source if isinstance(source, bytes) else source.read_bytes()
    # files need not be UTF-8: undecodable bytes become lone surrogates, encoded as CodeTokenizer does
    data = data.decode("utf-8", "surrogateescape").encode("utf-8", "surrogatepass")
    return pieces_to_bpe_input(Lexer(cache_size=0).pieces(data, language))


def bpe_inputs(items: Iterable[tuple[Path | bytes, str | None]], jobs: int = 1) -> Iterator[str]:
    """Lex each (file or text, language) into the BPE's input string, in `jobs` processes."""
    if jobs <= 1:
        yield from map(_lex_file, items)
        return
    with ProcessPoolExecutor(jobs) as pool:
        yield from pool.map(_lex_file, items, chunksize=16)
