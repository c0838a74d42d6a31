"""ground/storage.py: a Location is a path or an fsspec URL, and both behave alike (whole files, listings, reads);
a file:// write is temp file + rename, an object store's one PUT; a Location pickles as its text; a URL whose
scheme is unknown or whose package is missing is one line naming what to install."""

from __future__ import annotations

import argparse
import importlib.util
import pickle

import fsspec
import pytest

from patchcoder.ground import argtypes
from patchcoder.ground.errors import UsageError
from patchcoder.ground.storage import Location, check_url, url_scheme


@pytest.fixture(params=["path", "file", "memory"])
def folder(request, tmp_path):
    """The same folder as a path, a file:// URL and a memory:// URL (an object store in this process)."""
    if request.param == "path":
        yield Location(tmp_path / "out")
    elif request.param == "file":
        yield Location(f"file://{tmp_path}/out/")  # a trailing slash names the same folder
    else:
        url = f"memory://storage-test/{tmp_path.name}/out"
        yield Location(url)
        fsspec.filesystem("memory").rm(f"/storage-test/{tmp_path.name}", recursive=True)


def test_a_path_and_a_url_behave_alike(folder):
    assert not folder.exists() and not folder.has_files()
    folder.make_folder()
    (folder / "shards/b/2.parquet").write(b"\x00two")
    (folder / "shards/a/1.parquet").write(lambda f: f.write(b"one"))  # a writer of the open binary file
    (folder / "manifest.json").write("{\"é\": 1}")  # a str is UTF-8
    (folder / "shards/notes.txt").write(b"")
    assert folder.is_dir() and folder.has_files()
    assert (folder / "shards/b/2.parquet").read_bytes() == b"\x00two"
    assert (folder / "manifest.json").read_bytes() == "{\"é\": 1}".encode()
    shards = folder.files(".parquet")
    assert [s.relative_to(folder) for s in shards] == ["shards/a/1.parquet", "shards/b/2.parquet"]
    assert [str(s) for s in shards] == [str(folder / "shards/a/1.parquet"), str(folder / "shards/b/2.parquet")]
    assert shards[0].name == "1.parquet" and not (folder / "shards/c.parquet").exists()
    (folder / "shards/a/1.parquet").write(b"replaced")
    assert (folder / "shards/a/1.parquet").read_bytes() == b"replaced"


def test_a_location_pickles_as_its_text(folder):
    folder.make_folder()
    (folder / "x").write(b"1")  # opens the file system of a URL
    again = pickle.loads(pickle.dumps(folder / "x"))
    assert again == folder / "x" and again._fs is None  # a worker opens the store itself
    assert again.read_bytes() == b"1"


def test_a_failed_write_leaves_the_old_file_and_no_temp_file(folder):
    (folder / "f").write(b"old")

    def fail(f):
        f.write(b"half")
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError):
        (folder / "f").write(fail)
    assert (folder / "f").read_bytes() == b"old"
    assert [p.relative_to(folder) for p in folder.files("")] == ["f"]


def test_temp_files_of_killed_writers_are_removed_on_a_file_system(tmp_path):
    url = Location(f"file://{tmp_path}")
    (tmp_path / "shards").mkdir()
    (tmp_path / "shards" / ".0.parquet.1234abcd.tmp").write_bytes(b"half")
    (tmp_path / "keep.parquet").write_bytes(b"whole")
    assert url.remove_temp_files() == 1
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["keep.parquet"]
    assert Location("memory://nothing-here").remove_temp_files() == 0  # an object store's writes leave none


def test_url_scheme():
    assert [url_scheme(t) for t in ("s3://b/k", "GS://b", "file:///x", "memory://", "simplecache::s3://b")] == [
        "s3", "gs", "file", "memory", None]
    assert [url_scheme(t) for t in ("out", "/shared/mined", "C:/data", "C://data", "a/b://c")] == [
        None, None, None, None, None]
    assert Location("C:/data").path is not None and Location("a/b://c").path is not None


@pytest.mark.skipif(importlib.util.find_spec("s3fs") is not None, reason="s3fs is installed")
def test_a_missing_backend_or_an_unknown_scheme_is_one_line():
    with pytest.raises(UsageError) as info:
        check_url("s3://bucket/mined")
    assert str(info.value) == ("s3://bucket/mined: s3:// needs the package s3fs, which is not installed: "
                               "pip install 'patchcoder[s3]'")
    with pytest.raises(UsageError, match=r"no fsspec file system is known for nosuch://"):
        Location("nosuch://x/y").exists()  # the Python API says it too, before touching anything
    with pytest.raises(argparse.ArgumentTypeError, match="pip install 'patchcoder.s3.'"):
        argtypes.location("s3://bucket/mined")


def test_location_and_folder_path_argument_types(tmp_path):
    assert argtypes.location("out") == "out" and argtypes.location("memory://x") == "memory://x"
    assert argtypes.location(f"file://{tmp_path}") == f"file://{tmp_path}"
    with pytest.raises(argparse.ArgumentTypeError, match="no fsspec file system is known"):
        argtypes.location("nosuch://x")
    with pytest.raises(argparse.ArgumentTypeError, match="got the URL"):  # a model folder is read on this machine
        argtypes.folder_path("memory://x")
