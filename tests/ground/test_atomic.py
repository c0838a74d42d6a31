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


def test_a_kept_file_keeps_its_mode_and_a_hard_linked_one_its_inode(tmp_path):
    """keep_file (a user's file under `suggest --apply`): mode kept; with other hard links, written in place."""
    path, link = tmp_path / "mod.py", tmp_path / "link.py"
    path.write_text("old\n")
    os.chmod(path, 0o751)
    assert atomic_write(path, "new\n", keep_file=True) is None  # one link: replaced atomically
    assert path.read_text() == "new\n" and _mode(path) == 0o751
    os.link(path, link)
    inode = os.stat(path).st_ino
    note = atomic_write(path, "newer\n", keep_file=True)
    assert note and "2 hard links" in note
    assert link.read_text() == "newer\n" and os.stat(path).st_ino == os.stat(link).st_ino == inode
    assert _mode(path) == 0o751 and not list(tmp_path.rglob("*.tmp"))


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs root to make files of another owner")
def test_a_kept_file_keeps_its_owner():
    """Root gives the new file the old one's owner; a user who cannot (here root acting as nobody) writes in place."""
    import shutil
    import tempfile

    folder = tempfile.mkdtemp(prefix="atomic-owner-")
    try:
        os.chmod(folder, 0o777)
        path = os.path.join(folder, "mod.py")
        with open(path, "w") as f:
            f.write("old\n")
        os.chown(path, 4321, 4322)
        assert atomic_write(path, "new\n", keep_file=True) is None
        assert (os.stat(path).st_uid, os.stat(path).st_gid) == (4321, 4322)
        os.chmod(path, 0o666)
        inode = os.stat(path).st_ino
        os.seteuid(65534)  # nobody: may write the file, may not give a new file to uid 4321
        try:
            note = atomic_write(path, "newer\n", keep_file=True)
        finally:
            os.seteuid(0)
        assert note and "owner" in note
        assert open(path).read() == "newer\n" and os.stat(path).st_ino == inode and os.stat(path).st_uid == 4321
        assert [n for n in os.listdir(folder) if n.endswith(".tmp")] == []
    finally:
        shutil.rmtree(folder)
