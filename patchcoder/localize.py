"""Fault localisation for `patchcoder fix`: which lines of the project a failing test command points at.

Spectrum-based (Ochiai): the test command runs once under coverage.py, in every Python process it starts
(a `sitecustomize` put first on PYTHONPATH calls `coverage.process_startup`), and, when it is pytest, with
one coverage context per test and each test's outcome recorded (a small plugin passed through
PYTEST_ADDOPTS). For a line l executed by e_f failing and e_p passing tests, with F failing tests in all,

    Ochiai(l) = e_f / sqrt(F · (e_f + e_p))

(1 for a line that only failing tests run and all of them do; 0 for a line no failing test runs). A
command that is Python but not pytest counts as one test, failing. With `every_test`, pytest's -x and
--maxfail are ignored for this run, so the tests after the first failure run too (not the default of
`patchcoder fix`: on 47 injected cachetools bugs it put the bug line among the first 20 suspects for 68%
against 83% with the command as given, and took twice as long).
Lines of equal score are ordered by TIE_BREAK (see there). Where no line can be scored (the
command does not run Python, or coverage is not installed where it runs), the fallbacks are the lines
changed against HEAD, then every line of the given paths; `Localisation.method` says which was used.
Only the project's own files count: nothing under a virtual environment or site-packages, and test
files only with `include_tests`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import shlex
import shutil
import sys
import tempfile
from pathlib import Path

from patchcoder.ground.errors import UsageError
from patchcoder.ground.languages import language_of
from patchcoder.scratch import CommandResult, ScratchTree, command_env

ASSETS = Path(__file__).parent / "assets" / "coverage"
PLUGIN = "patchcoder_test_contexts"
METHODS = ("coverage", "changed", "paths", "none")


def TIE_BREAK(s: Suspect) -> tuple:  # noqa: N802 - a sort key, named as the constant it is
    """The order of suspects: Ochiai, then, among equal scores (one failing test gives every line that only
    it runs 1.0), the lines in more failing tests' tracebacks first, then more failing tests running the
    line, then file order. Chosen on data (docs/benchmarks.md#fix-localisation, `benchmarks/fix.py
    --localisation`): on 47 injected cachetools bugs, the traceback first put the bug line first for 40%
    against 23% (more failing tests, then file order), in the first 5 for 60% against 49%, in the first 20
    for 83% against 81% (median rank 2 against 5)."""
    return (-s.score, -s.stack, -s.failing, s.path, s.line)


@dataclasses.dataclass(frozen=True)
class Suspect:
    path: str  # relative to the tree's root, with "/"
    line: int  # 0-based
    score: float  # Ochiai, or 1.0 for the fallbacks
    failing: int = 0  # failing tests that run the line
    passing: int = 0
    stack: int = 0  # failing tests whose traceback passes through the line


@dataclasses.dataclass
class Localisation:
    method: str  # one of METHODS
    suspects: list[Suspect]  # most suspicious first
    failed: int = 0  # tests that failed (coverage), else 0
    passed: int = 0
    run: CommandResult | None = None  # the run under coverage
    failing_tests: list[str] = dataclasses.field(default_factory=list)  # pytest node ids, when per-test

    def as_dict(self) -> dict:
        return {"method": self.method, "failed_tests": self.failed, "passed_tests": self.passed,
                "suspects": [dataclasses.asdict(s) for s in self.suspects[:20]]}


def ochiai(failing: int, passing: int, total_failing: int) -> float:
    if failing == 0 or total_failing == 0:
        return 0.0
    return failing / math.sqrt(total_failing * (failing + passing))


def is_test_file(path: str) -> bool:
    parts = path.split("/")
    name = parts[-1]
    return (any(p in ("test", "tests", "testing") for p in parts[:-1]) or name.startswith("test_")
            or name.endswith("_test.py") or name == "conftest.py")


def is_project_file(path: str, include_tests: bool = False) -> bool:
    """A source file of the project: not in a virtual environment or an installed package, not a test
    (unless include_tests)."""
    parts = path.split("/")
    if any(p in ("site-packages", "dist-packages", "node_modules", ".tox", ".nox") for p in parts):
        return False
    if parts[0] in (".venv", "venv", "env", ".env") or path.startswith(".."):
        return False
    return include_tests or not is_test_file(path)


def _within(path: str, paths: list[str]) -> bool:
    return not paths or any(path == p or path.startswith(p.rstrip("/") + "/") for p in paths)


def coverage_spectrum(tree: ScratchTree, command: str, timeout: float | None, subdir: str = ".",
                      include_tests: bool = False, paths: list[str] | None = None, every_test: bool = False,
                      ) -> tuple[Localisation | None, CommandResult]:
    """Run `command` in `tree` under coverage and score its lines (None when nothing was measured), with
    the run's result."""
    work = _plain_temporary("patchcoder-cov-")
    try:
        for name in ("sitecustomize.py", f"{PLUGIN}.py"):
            shutil.copy(ASSETS / name, work / name)
        # coverage.py reads `$NAME` in its settings as a variable and splits `source` at commas: the tree is named
        # through a link with a plain name (coverage resolves links), and a `$` of the temporary folder doubled
        (work / "tree").symlink_to(tree.root, target_is_directory=True)
        (work / "original").symlink_to(tree.source, target_is_directory=True)  # measured to tell what ran
        rcfile = work / "coveragerc"
        rcfile.write_text(f"[run]\nparallel = True\ndata_file = {_literal(work / 'data' / '.coverage')}\n"
                          f"source = {_literal(work / 'tree')}, {_literal(work / 'original')}\n", encoding="utf-8")
        (work / "data").mkdir()
        env = _plugin_env(work, {
            "COVERAGE_PROCESS_START": str(rcfile),
            "PATCHCODER_FIX_OUTCOMES": str(work / "outcomes"),
            **({"PATCHCODER_FIX_EVERY_TEST": "1"} if every_test else {}),
        })
        run = tree.run(command, timeout, env, subdir)
        outcomes: dict[str, str] = {}
        stacks: dict[str, list] = {}
        for part in work.glob("outcomes.*"):
            try:
                found = json.loads(part.read_text())
                outcomes.update(found["outcomes"])
                stacks.update(found["stacks"])
            except (OSError, ValueError, KeyError, TypeError):
                continue
        lines = _lines_by_context(work / "data", rcfile, tree.root)
        if not any(is_project_file(path, include_tests) for path in lines) and any(
                is_project_file(path, include_tests) for path in _lines_by_context(work / "data", rcfile, tree.source)):
            # e.g. an editable install: a candidate written into the copy could never change what the tests run
            raise UsageError(f"the test command runs the source files of {tree.source} itself, not those of the "
                             "copy it runs in (an editable install, or an absolute path in the command or "
                             "PYTHONPATH?); put the copy's own folder first, e.g. PYTHONPATH=src, and run again")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if not lines:
        return None, run
    failing_tests = {t for t, o in outcomes.items() if o == "failed"}
    if not failing_tests:  # not pytest (or no per-test outcome): the whole run is one failing test
        lines = {path: {line: {""} for line in by_line} for path, by_line in lines.items()}
        failing_tests, passing_tests = {""}, set()
    else:
        passing_tests = {t for t, o in outcomes.items() if o == "passed"}
    in_stack = _stack_lines(stacks, failing_tests, tree.root)
    suspects = []
    for path, by_line in lines.items():
        if not is_project_file(path, include_tests) or not _within(path, paths or []):
            continue
        for line, contexts in by_line.items():
            e_f, e_p = len(contexts & failing_tests), len(contexts & passing_tests)
            score = ochiai(e_f, e_p, len(failing_tests))
            if score > 0:
                suspects.append(Suspect(path, line, score, e_f, e_p, in_stack.get((path, line), 0)))
    if not suspects:
        return None, run
    suspects.sort(key=TIE_BREAK)
    return Localisation("coverage", suspects, len(failing_tests - {""}), len(passing_tests), run,
                        sorted(failing_tests - {""})), run


def _plain_temporary(prefix: str) -> Path:
    """A new temporary folder whose path coverage.py's settings and PATH-like variables can hold: coverage
    splits its `source` list at commas, and the folder goes on PYTHONPATH and PATH, split at os.pathsep. The
    system's temporary folder when its path has neither, else /tmp or /var/tmp."""
    for base in (tempfile.gettempdir(), "/tmp", "/var/tmp"):
        if not {",", os.pathsep} & set(base) and os.path.isdir(base) and os.access(base, os.W_OK | os.X_OK):
            return Path(tempfile.mkdtemp(prefix=prefix, dir=base))
    raise UsageError(f"the temporary folder {tempfile.gettempdir()} has a comma or {os.pathsep!r} in its name, which "
                     "coverage.py's settings and PYTHONPATH cannot hold; set TMPDIR to another folder")


def _literal(path: Path) -> str:
    """`path` as a value of coverage.py's configuration file, which reads `$NAME` as a variable."""
    return str(path).replace("$", "$$")


def _stack_lines(stacks: dict[str, list], failing_tests: set[str], root: Path) -> dict[tuple[str, int], int]:
    """(path relative to root, 0-based line) -> how many failing tests' tracebacks pass through it."""
    root = root.resolve()
    count: dict[tuple[str, int], int] = {}
    for test in failing_tests:
        seen = set()
        for path, line in stacks.get(test, []):
            try:
                seen.add((Path(path).resolve().relative_to(root).as_posix(), int(line)))
            except (ValueError, TypeError):
                continue
        for key in seen:
            count[key] = count.get(key, 0) + 1
    return count


@contextlib.contextmanager
def only_tests(tests: list[str]):
    """The environment (a dict, for `ScratchTree.run`) of a run of the same pytest command in which only
    `tests` (node ids) run, e.g. the tests that failed on the unmodified tree; the plugin and shims live in
    a temporary folder until the `with` ends. If none of the tests is collected, every test runs."""
    work = _plain_temporary("patchcoder-only-")
    try:
        shutil.copy(ASSETS / f"{PLUGIN}.py", work / f"{PLUGIN}.py")
        (work / "tests").write_text("".join(t + "\n" for t in tests), encoding="utf-8")
        yield _plugin_env(work, {"PATCHCODER_FIX_ONLY": str(work / "tests")})
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _plugin_env(work: Path, extra: dict[str, str]) -> dict[str, str]:
    """A test run's environment with `work` (holding the plugin) first on PYTHONPATH, also behind a command
    that sets its own PYTHONPATH (the shims), and the plugin loaded by pytest."""
    return command_env({
        "PYTHONPATH": os.pathsep.join([str(work), *filter(None, [os.environ.get("PYTHONPATH")])]),
        "PATH": os.pathsep.join([str(_shims(work)), os.environ.get("PATH", os.defpath)]),
        "PYTEST_ADDOPTS": f"-p {PLUGIN} " + os.environ.get("PYTEST_ADDOPTS", ""),
        **extra,
    })


# Interpreters and runners a test command names. Each found on PATH gets a shim of the same name, first on
# PATH, that puts our folder back in front of PYTHONPATH: a command such as `PYTHONPATH=src python -m pytest`
# replaces the PYTHONPATH we set, and would run without coverage (and without the outcomes plugin).
SHIMMED = ("python", "python3", f"python3.{sys.version_info.minor}", "pytest", "py.test", "coverage")


def _shims(work: Path) -> Path:
    """A folder of shims (see SHIMMED) that run the real program with `work` first on PYTHONPATH."""
    folder = work / "bin"
    folder.mkdir()
    for name in SHIMMED:
        real = shutil.which(name)
        if real is None:
            continue
        shim = folder / name
        shim.write_text(f'#!/bin/sh\nPYTHONPATH={shlex.quote(str(work))}${{PYTHONPATH:+:$PYTHONPATH}}\n'
                        f'export PYTHONPATH\nexec {shlex.quote(real)} "$@"\n', encoding="utf-8")
        shim.chmod(0o755)
    return folder


def _lines_by_context(data_dir: Path, rcfile: Path, root: Path) -> dict[str, dict[int, set[str]]]:
    """path (relative to root) -> 0-based line -> the coverage contexts that ran it."""
    import coverage

    if not any(data_dir.iterdir()):
        return {}
    cov = coverage.Coverage(data_file=str(data_dir / ".coverage"), config_file=str(rcfile))
    cov.combine(data_paths=[str(data_dir)], keep=True)
    data = cov.get_data()
    root = root.resolve()
    out: dict[str, dict[int, set[str]]] = {}
    for measured in data.measured_files():
        try:
            relative = Path(measured).resolve().relative_to(root).as_posix()
        except ValueError:
            continue
        by_line = data.contexts_by_lineno(measured)
        if by_line:
            out[relative] = {line - 1: set(contexts) for line, contexts in by_line.items() if line >= 1}
    return out


def changed_lines(root: str | os.PathLike, paths: list[str] | None = None,
                  include_tests: bool = False) -> list[Suspect]:
    """The lines of the working tree changed against HEAD (new and modified lines), in file order."""
    import pygit2

    try:
        repo = pygit2.Repository(pygit2.discover_repository(str(root)) or str(root))
    except (pygit2.GitError, KeyError, TypeError):
        return []
    if repo.is_bare or repo.head_is_unborn:
        return []
    workdir = Path(repo.workdir).resolve()
    base = Path(root).resolve().relative_to(workdir).as_posix() if Path(root).resolve() != workdir else ""
    suspects = []
    for patch in repo.diff("HEAD"):  # HEAD against the working tree
        path = patch.delta.new_file.path
        if base:
            if not path.startswith(base + "/"):
                continue
            path = path[len(base) + 1:]
        if language_of(path) is None or not is_project_file(path, include_tests) or not _within(path, paths or []):
            continue
        for hunk in patch.hunks:
            for line in hunk.lines:
                if line.origin == "+" and line.new_lineno > 0:
                    suspects.append(Suspect(path, line.new_lineno - 1, 1.0))
    return suspects


def all_lines(root: str | os.PathLike, paths: list[str], include_tests: bool = False) -> list[Suspect]:
    """Every line of the source files under `paths` (relative to root), in file order."""
    root = Path(root)
    suspects = []
    for given in paths:
        target = root / given
        files = [target] if target.is_file() else sorted(p for p in target.rglob("*") if p.is_file())
        for file in files:
            relative = file.relative_to(root).as_posix()
            if language_of(relative) is None or not is_project_file(relative, include_tests):
                continue
            try:
                n = len(file.read_text(encoding="utf-8").splitlines())
            except (OSError, UnicodeDecodeError):
                continue
            suspects.extend(Suspect(relative, k, 1.0) for k in range(n))
    return suspects
