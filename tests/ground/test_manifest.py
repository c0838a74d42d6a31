"""ground/manifest.py: the record of a resumable sharded output — what counts as done, and who may continue it."""

from __future__ import annotations

import json

import pytest

from patchcoder.ground.errors import PatchcoderError, UsageError
from patchcoder.ground.manifest import Manifest

FORMAT = "patchcoder-test/1"


def test_create_record_complete_and_read_back(tmp_path):
    out = tmp_path / "out"
    manifest = Manifest.create(out, {"format": FORMAT, "request": {"seed": 0}, "complete": False})
    manifest.record("repo/00001", {"rows": 3})
    manifest.record("repo/00000", {"rows": 0})
    manifest.complete()
    text = (out / "manifest.json").read_text()
    assert text == json.dumps({"complete": True, "format": FORMAT, "request": {"seed": 0},
                               "units": {"repo/00000": {"rows": 0}, "repo/00001": {"rows": 3}}}, indent=1, sort_keys=True)
    again = Manifest.read(out, FORMAT, "test")
    assert again.units == {"repo/00000": {"rows": 0}, "repo/00001": {"rows": 3}} and again["complete"] is True
    assert Manifest.read(tmp_path / "nothing", FORMAT, "test") is None


def test_open_continues_only_the_same_run_with_resume(tmp_path):
    Manifest.create(tmp_path, {"format": FORMAT, "request": {"seed": 0}}).record("00000", {"rows": 1})
    (tmp_path / "shards").mkdir()
    (tmp_path / "shards" / ".00001.parquet.0badc0de.tmp").write_bytes(b"half")
    with pytest.raises(UsageError, match="already holds a test run; pass --resume"):
        Manifest.open(tmp_path, FORMAT, "test", resume=False, same={"request": {"seed": 0}})
    with pytest.raises(UsageError, match="different options; --resume needs the same ones"):
        Manifest.open(tmp_path, FORMAT, "test", resume=True, same={"request": {"seed": 1}}, what="options")
    with pytest.raises(UsageError, match="different request"):
        Manifest.open(tmp_path, FORMAT, "test", resume=True, same={"request": {"seed": 1}})
    assert (tmp_path / "shards" / ".00001.parquet.0badc0de.tmp").exists()  # nothing removed for a refused run
    manifest = Manifest.open(tmp_path, FORMAT, "test", resume=True, same={"request": {"seed": 0}})
    assert manifest.units == {"00000": {"rows": 1}}
    assert not list(tmp_path.rglob("*.tmp"))  # what the killed run left half-written is gone
    assert Manifest.open(tmp_path / "new", FORMAT, "test", resume=True, same={}) is None


@pytest.mark.parametrize("text", ['{"format": "patchcoder-other/1", "units": {}}', "{not json", "[]"])
def test_another_format_is_a_one_line_error(tmp_path, text):
    (tmp_path / "manifest.json").write_text(text)
    with pytest.raises(PatchcoderError, match="is not a patchcoder test manifest$"):
        Manifest.read(tmp_path, FORMAT, "test")
    with pytest.raises(UsageError, match="is not a patchcoder test manifest; choose another --out"):
        Manifest.open(tmp_path, FORMAT, "test", resume=True, same={})


@pytest.mark.parametrize("units", ['"units": [], ', '"units": {"00000": {}, "00001": 3}, ', ""])
def test_a_manifest_with_damaged_units_is_a_one_line_error(tmp_path, units):
    (tmp_path / "manifest.json").write_text('{' + units + f'"format": "{FORMAT}"' + '}')
    with pytest.raises(UsageError, match='is damaged: its "units" are not a mapping of finished units to their '
                                         'counts; choose another --out$'):
        Manifest.open(tmp_path, FORMAT, "test", resume=True, same={})


def test_a_folder_named_like_the_manifest_is_a_one_line_error(tmp_path):
    (tmp_path / "manifest.json").mkdir()
    with pytest.raises(UsageError, match="is not a patchcoder test manifest; choose another --out"):
        Manifest.open(tmp_path, FORMAT, "test", resume=True, same={})
