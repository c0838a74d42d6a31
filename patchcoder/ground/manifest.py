"""The record of a resumable sharded output (mine, synth, tokenize): `manifest.json` in its folder.

It names the output's format, holds what the run asked for, and lists the finished work units with
their counts ("units"). A unit counts as done only once the manifest lists it, and the manifest is
replaced whole after each unit (storage.py: by a rename on a file system, one PUT on an object store), so a
killed run leaves nothing half-written that a later `--resume` would trust: the resumed run redoes exactly
the units the manifest does not list.
"""

from __future__ import annotations

import json
import os

from patchcoder.ground.errors import PatchcoderError, UsageError
from patchcoder.ground.storage import Location

NAME = "manifest.json"


class Manifest:
    """`manifest.json` of the output folder `folder` (a path or a URL, storage.py); its fields read as
    `manifest["key"]`."""

    def __init__(self, folder: str | os.PathLike | Location, fields: dict):
        self.folder = Location(folder)
        self.fields = fields

    @property
    def path(self) -> Location:
        return self.folder / NAME

    @property
    def units(self) -> dict[str, dict]:
        """The finished units: key → counts."""
        return self.fields["units"]

    def __getitem__(self, key: str):
        return self.fields[key]

    def get(self, key: str, default=None):
        return self.fields.get(key, default)

    @property
    def finished(self) -> bool:
        """False only for a run that records it has not finished (`complete` false: killed, or still running)."""
        return self.get("complete") is not False

    @staticmethod
    def _fields(folder: str | os.PathLike | Location) -> dict | None:
        """The manifest's fields in `folder` as stored (None: no manifest; {} unreadable ones)."""
        path = Location(folder) / NAME
        if not path.exists():
            return None
        try:
            fields = json.loads(path.read_bytes())
        except (ValueError, IsADirectoryError):  # not JSON, or a folder of that name (a failing read is raised)
            return {}
        return fields if isinstance(fields, dict) else {}

    @classmethod
    def unfinished(cls, folder: str | os.PathLike | Location) -> bool:
        """Does `folder` hold a run, of any kind, that records it has not finished?"""
        fields = cls._fields(folder)
        return fields is not None and not cls(folder, fields).finished

    @classmethod
    def read(cls, folder: str | os.PathLike | Location, format: str, kind: str) -> Manifest | None:
        """The manifest in `folder`, or None when it has none; one that is not `format` is an error."""
        fields = cls._fields(folder)
        if fields is None:
            return None
        path = Location(folder) / NAME
        if fields.get("format") != format:
            raise PatchcoderError(f"{path} is not a patchcoder {kind} manifest")
        units = fields.get("units")
        if not isinstance(units, dict) or not all(isinstance(k, str) and isinstance(v, dict) for k, v in units.items()):
            raise PatchcoderError(f"{path} is damaged: its \"units\" are not a mapping of finished units to their counts")
        return cls(folder, fields)

    @classmethod
    def open(cls, folder: str | os.PathLike | Location, format: str, kind: str, *, resume: bool, same: dict,
             what: str | None = None) -> Manifest | None:
        """The manifest of the run already in `folder`, for a run that continues it (None when there is none).

        Continuing needs `resume`, and the fields `same` must equal the earlier run's (`what` says what
        they are to the user; default: their names). What the earlier run left half-written is removed.
        """
        try:
            manifest = cls.read(folder, format, kind)
        except PatchcoderError as exc:
            raise UsageError(f"{exc}; choose another --out") from None
        if manifest is None:
            return None
        if not resume:
            raise UsageError(f"{folder} already holds a {kind} run; pass --resume to continue it, or choose another --out")
        different = [key for key, value in same.items() if manifest.get(key) != value]
        if different:
            raise UsageError(f"{folder} holds a run with different {what or ', '.join(different)}; "
                             "--resume needs the same ones")
        manifest.folder.remove_temp_files()
        return manifest

    @classmethod
    def create(cls, folder: str | os.PathLike | Location, fields: dict) -> Manifest:
        """Start the manifest of a new run in `folder` (made if missing), with no unit done. A folder that
        holds anything else is refused: a new run never writes among files it did not make."""
        manifest = cls(folder, {**fields, "units": {}})
        if manifest.folder.exists() and not manifest.folder.is_dir():
            raise UsageError(f"{manifest.folder} is a file, not a folder; choose another --out")
        if manifest.folder.has_files():
            raise UsageError(f"{manifest.folder} is not empty and holds no run to resume; choose another --out")
        manifest.folder.make_folder()
        manifest.write()
        return manifest

    def write(self) -> None:
        self.path.write(json.dumps(self.fields, indent=1, sort_keys=True))

    def record(self, key: str, counts: dict) -> None:
        """Unit `key` is finished (its output written): list it, with its counts."""
        self.units[key] = counts
        self.write()

    def complete(self) -> None:
        """Every unit is finished."""
        self.fields["complete"] = True
        self.write()
