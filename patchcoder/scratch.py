"""Scratch copies of a working tree, and test commands run in them with a time-out.

`patchcoder fix` never runs a candidate in the user's files: each worker owns one ScratchTree, a copy of
the tree, writes a candidate into it, runs the test command there and puts the file back. The command
runs in its own process group, so a time-out (a candidate can make a loop infinite) kills every process
it started; on Linux also those that left the group (`setsid`, a daemon), found by a mark in their
environment. Virtual environments and `node_modules` inside the tree are linked, not copied (tests read them,
they do not write them); `.git` and bytecode caches are left out.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import signal
import stat
import subprocess
import tempfile
import threading
import time
import uuid
from pathlib import Path

from patchcoder.ground.errors import PatchcoderError

# Not copied: version control and caches (a stale bytecode file must never stand in for a patched source).
SKIP = frozenset({".git", ".hg", ".svn", "__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache",
                  ".hypothesis", ".tox", ".nox"})
LINKED = frozenset({"node_modules"})
RUN_MARK = "PATCHCODER_RUN"  # in the environment of every process a run starts: its own value per run


@dataclasses.dataclass(frozen=True)
class CommandResult:
    returncode: int | None  # None: killed at the time-out
    seconds: float
    output: str  # the end of stdout and stderr, for messages

    @property
    def passed(self) -> bool:
        return self.returncode == 0

    @property
    def timed_out(self) -> bool:
        return self.returncode is None


def command_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a test run: the user's, without bytecode files (a candidate written within the
    same second as the previous one, with the same size, would otherwise run stale bytecode)."""
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("COVERAGE_PROCESS_START", None)
    return {**env, **(extra or {})}


class Cancelled(Exception):  # noqa: N818 - a state, not an error
    """The run was stopped from outside (Ctrl-C, or another worker found a fix)."""


def run_command(command: str, cwd: str | os.PathLike, timeout: float | None, env: dict[str, str] | None = None,
                keep: int = 4000, cancel: threading.Event | None = None) -> CommandResult:
    """Run a shell command in its own process group; at the time-out (or when `cancel` is set: Cancelled),
    kill the whole group."""
    started = time.perf_counter()
    deadline = None if timeout is None else started + timeout
    mark = f"{RUN_MARK}={uuid.uuid4().hex}"
    env = {**(env if env is not None else command_env()), RUN_MARK: mark.partition("=")[2]}
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(command, shell=True, cwd=cwd, env=env,
                                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
        code: int | None = None
        try:
            while True:
                wait = 0.05 if deadline is None else min(0.05, max(0.0, deadline - time.perf_counter()))
                try:
                    code = proc.wait(timeout=wait)
                    break
                except subprocess.TimeoutExpired:
                    if cancel is not None and cancel.is_set():
                        raise Cancelled() from None
                    if deadline is not None and time.perf_counter() >= deadline:
                        break
        finally:  # time-out, Ctrl-C, cancel or done: the group goes, with what it left in the background
            _kill_group(proc)
            _kill_marked(mark.encode())
        seconds = time.perf_counter() - started
        out.seek(max(0, out.seek(0, os.SEEK_END) - keep))
        text = out.read().decode("utf-8", "replace")
    return CommandResult(code, seconds, text)


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILL not delivered
        pass


def _kill_marked(mark: bytes, passes: int = 50) -> None:
    """Kill the processes (of this user) whose environment holds `mark`: those a run started that left its
    process group. Each is stopped when found, so that none can start another between two looks at /proc;
    once a look finds no new one (or after `passes` looks), all are killed. Linux only (/proc); elsewhere the
    group kill is all."""
    stopped: set[int] = set()
    try:
        for _ in range(passes):
            try:
                pids = [int(name) for name in os.listdir("/proc") if name.isdigit()]
            except OSError:  # no /proc: not Linux
                break
            found = [pid for pid in pids if pid not in stopped and _marked(pid, mark)]
            if not found:
                break
            for pid in found:
                try:
                    os.kill(pid, signal.SIGSTOP)
                except OSError:  # gone already
                    continue
                stopped.add(pid)
    finally:  # also when a second Ctrl-C or a SIGTERM interrupts the looking: none is left stopped
        for pid in stopped:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


def _marked(pid: int, mark: bytes) -> bool:
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            return mark in f.read().split(b"\0")
    except OSError:  # gone, or another user's
        return False


def _is_virtualenv(path: Path) -> bool:
    return (path / "pyvenv.cfg").is_file()


def _is_special(path: Path) -> bool:
    """A named pipe, socket or device: not copied (copying would fail, or wait on a pipe for ever)."""
    try:
        mode = path.lstat().st_mode
    except OSError:
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode) or stat.S_ISLNK(mode))


def _escaping_target(path: Path, root: Path) -> str | None:
    """Where `path`, a symbolic link with a relative target that leads out of `root`, leads (absolute), else None."""
    try:
        target = os.readlink(path)
    except OSError:  # not a link
        return None
    if os.path.isabs(target):
        return None
    absolute = os.path.normpath(os.path.join(path.parent, target))
    return None if Path(absolute).is_relative_to(root) else absolute


class ScratchTree:
    """A disposable copy of `root` under a new temporary folder; `with` removes it."""

    def __init__(self, root: str | os.PathLike, parent: str | os.PathLike | None = None):
        self.source = Path(root).resolve()
        if not self.source.is_dir():
            raise PatchcoderError(f"{root} is not a directory")
        self._holder = Path(tempfile.mkdtemp(prefix="patchcoder-fix-", dir=parent))
        self.root = self._holder / self.source.name
        self._linked: list[Path] = []  # virtualenvs and node_modules met while copying: linked afterwards
        self._relinked: dict[Path, str] = {}  # relative links that lead out of the tree -> their target, absolute
        try:
            shutil.copytree(self.source, self.root, symlinks=True, ignore=self._ignore)
            for folder in self._linked:
                (self.root / folder.relative_to(self.source)).symlink_to(folder, target_is_directory=True)
            for link, target in self._relinked.items():
                (self.root / link.relative_to(self.source)).symlink_to(target)
        except BaseException:
            self.remove()
            raise
        self._saved: dict[Path, bytes] = {}

    def _ignore(self, directory: str, names: list[str]) -> set[str]:
        """Not copied: SKIP, named pipes, sockets and devices; virtual environments, node_modules and relative links
        out of the tree are recorded, to be linked afterwards."""
        here = Path(directory)
        linked = {n for n in names if n not in SKIP and (n in LINKED or _is_virtualenv(here / n))}
        self._linked.extend(here / n for n in sorted(linked))
        # a relative link out of the tree (`shared -> ../shared`) would lead elsewhere from the copy: it is made
        # absolute, to where it leads from the original
        relinked = {n: target for n in names if n not in SKIP and n not in linked
                    and (target := _escaping_target(here / n, self.source))}
        self._relinked.update((here / n, target) for n, target in relinked.items())
        return linked | set(relinked) | {n for n in names if n in SKIP or _is_special(here / n)}

    def write(self, relative: str, text: str) -> None:
        """Put `text` at `relative` (the original is kept for `restore`), with a new modification time."""
        path = self._path(relative)
        if path not in self._saved:
            self._saved[path] = path.read_bytes() if path.exists() else b""
        before = path.stat() if path.exists() else None
        path.write_bytes(text.encode("utf-8", "surrogateescape"))
        if before is not None:  # strictly later than before, whatever the clock's resolution
            ns = max(time.time_ns(), before.st_mtime_ns + 1_000_000)
            os.utime(path, ns=(ns, ns))

    def restore(self) -> None:
        """Every file `write` changed back to the copy's original bytes."""
        for path, data in self._saved.items():
            path.write_bytes(data)
            ns = time.time_ns()
            os.utime(path, ns=(ns, ns))
        self._saved.clear()

    def _path(self, relative: str) -> Path:
        path = (self.root / relative).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise PatchcoderError(f"{relative} is outside the tree")
        return path

    def run(self, command: str, timeout: float | None, env: dict[str, str] | None = None,
            subdir: str = ".", cancel: threading.Event | None = None) -> CommandResult:
        """Run `command` in the copy (in `subdir` of it: where the user ran it in the original tree)."""
        return run_command(command, self._path(subdir), timeout, env, cancel=cancel)

    def remove(self) -> None:
        shutil.rmtree(self._holder, ignore_errors=True)

    def __enter__(self) -> ScratchTree:
        return self

    def __exit__(self, *exc) -> None:
        self.remove()
