"""Round trip over real code nobody here wrote: the installed Python standard library and /usr/include.

The default run takes a fixed sample of each; `pytest -m slow` takes every file.
"""

from __future__ import annotations

import hashlib
import sysconfig
from pathlib import Path

import pytest

from patchcoder.ground.languages import language_of
from patchcoder.tokenizer import edit_script

STDLIB = Path(sysconfig.get_paths()["stdlib"])
INCLUDE = Path("/usr/include")


def stdlib_files() -> list[Path]:
    return sorted(p for p in STDLIB.rglob("*.py") if "site-packages" not in p.parts and p.is_file())


def header_files() -> list[Path]:
    return sorted(p for p in INCLUDE.rglob("*") if p.suffix in (".h", ".hpp", ".hh", ".hxx", "") and p.is_file()
                  and not p.is_symlink()) if INCLUDE.is_dir() else []


def sample(paths: list[Path], n: int) -> list[Path]:
    return sorted(paths, key=lambda p: hashlib.blake2b(str(p).encode(), digest_size=8).digest())[:n]


def check_round_trip(tok, paths: list[Path]) -> int:
    checked = 0
    for path in paths:
        data = path.read_bytes()
        # undecodable bytes become lone surrogates, which the tokenizer must also keep
        text = data.decode("utf-8", "surrogateescape")
        language = language_of(path.as_posix()) or ("cpp" if path.suffix == "" else None)
        assert tok.decode(tok.encode(text, language)) == text, path
        checked += 1
    return checked


def test_stdlib_sample_round_trips(tok):
    files = sample(stdlib_files(), 150)
    assert check_round_trip(tok, files) == 150


def test_include_sample_round_trips(tok):
    files = sample(header_files(), 150)
    if not files:
        pytest.skip("/usr/include is empty here")
    assert check_round_trip(tok, files) == len(files)


def test_edit_scripts_between_real_files():
    files = sample(stdlib_files(), 40)
    for a, b in zip(files, files[1:], strict=False):
        old, new = a.read_text(errors="surrogateescape"), b.read_text(errors="surrogateescape")
        assert edit_script(old, new, "python").apply(old) == new


@pytest.mark.slow
def test_every_stdlib_file_round_trips(tok):
    files = stdlib_files()
    assert check_round_trip(tok, files) == len(files) > 1000


@pytest.mark.slow
def test_every_include_header_round_trips(tok):
    files = header_files()
    if not files:
        pytest.skip("/usr/include is empty here")
    assert check_round_trip(tok, files) == len(files)
