"""ground/atomic.py: a file or folder is replaced whole or not at all, and a killed writer's temp files are found."""

from __future__ import annotations

import os
import stat

import pytest

from patchcoder.ground.atomic import atomic_directory, atomic_write, remove_temp_files


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_bytes_text_and_writer(tmp_path):
    atomic_write(tmp_path / "a.bin", b"\x00\x01")
    atomic_write(tmp_path / "sub" / "b.txt", "é\r\n")  # the folder is made; text is UTF-8, line endings as given
    atomic_write(tmp_path / "c.txt", lambda tmp: open(tmp, "w").write("from a writer"))
    assert (tmp_path / "a.bin").read_bytes() == b"\x00\x01"
    assert (tmp_path / "sub" / "b.txt").read_bytes() == "é\r\n".encode()
    assert (tmp_path / "c.txt").read_text() == "from a writer"
    assert not list(tmp_path.rglob("*.tmp"))


def test_mode_follows_the_umask_unless_given(tmp_path):
    old = os.umask(0o027)
    try:
        atomic_write(tmp_path / "new", b"x")
    finally:
        os.umask(old)
    assert _mode(tmp_path / "new") == 0o640  # as any new file, not mkstemp's 0600
    atomic_write(tmp_path / "script", b"#!/bin/sh\n", mode=0o755)
    assert _mode(tmp_path / "script") == 0o755


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temp_file(tmp_path):
    target = tmp_path / "kept.json"
    atomic_write(target, "old")

    def fail(tmp):
        open(tmp, "w").write("half")
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        atomic_write(target, fail)
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept.json"]


def test_remove_temp_files_finds_what_a_killed_writer_left(tmp_path):
    (tmp_path / "shards" / "repo").mkdir(parents=True)
    (tmp_path / "shards" / "repo" / ".00001.parquet.1a2b3c4d.tmp").write_bytes(b"half")
    (tmp_path / ".manifest.json.tmp").write_text("{")
    (tmp_path / "shards" / "repo" / "00000.parquet").write_bytes(b"done")
    assert remove_temp_files(tmp_path) == 2
    assert [p.name for p in tmp_path.rglob("*") if p.is_file()] == ["00000.parquet"]


def test_atomic_directory_swaps_a_folder_in_whole(tmp_path):
    final = tmp_path / "final"
    with atomic_directory(final) as tmp:
        tmp.mkdir()
        (tmp / "weights").write_text("v1")
    with pytest.raises(RuntimeError), atomic_directory(final) as tmp:
        tmp.mkdir()
        (tmp / "weights").write_text("v2, half")
        raise RuntimeError("killed")
    assert (final / "weights").read_text() == "v1"  # the old folder stays until a new one is complete
    with atomic_directory(final) as tmp:  # the next attempt starts from an empty folder
        assert not tmp.exists()
        tmp.mkdir()
        (tmp / "weights").write_text("v3")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["final"]
    assert [p.name for p in final.iterdir()] == ["weights"] and (final / "weights").read_text() == "v3"
