"""Repair guided by the user's own tests (`patchcoder fix --test CMD`, `Repairer.fix`).

1. Baseline: CMD runs on an untouched copy of the tree. It passes: nothing to fix. It fails: it runs a
   second time, under coverage; passing then means the test is flaky, and nothing is tried.
2. Localisation (patchcoder.localize): Ochiai over the tests, or the lines changed against HEAD, or the
   given paths.
3. Candidates: for each of the most suspicious lines, the model's single-statement rewrites of that line
   (and, with beam > 1, its generated scripts), each with its log-probability under the model. They are
   tried in the order of  mean log p_model(script token) + weight · log Ochiai(line)  (see WEIGHT).
4. Validation (patchcoder.search): in `jobs` scratch copies, never in the user's files, with a time-out
   per run that kills the run's process group, within `max_tries` and `budget`. When CMD is pytest, a
   candidate first runs only the tests that failed on the unmodified tree, and the whole of CMD only if
   they pass (`failing_first`); a fix always passes the whole of CMD.
The user's tree is read, never written, unless `apply` is set and a fix was found; then the file is
written only if it still holds the text the fix was made from.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import re
import time
from collections.abc import Callable
from pathlib import Path

from patchcoder.ground.errors import PatchcoderError, UsageError
from patchcoder.ground.languages import language_of
from patchcoder.localize import (
    Localisation,
    Suspect,
    all_lines,
    changed_lines,
    coverage_spectrum,
    is_test_file,
    only_tests,
)
from patchcoder.scratch import CommandResult, ScratchTree
from patchcoder.search import Candidate, SearchResult, search

# The order candidates are tried in: order_key, the model's mean log-probability per token of the candidate's
# edit script plus WEIGHT · log Ochiai(line). Chosen on data (docs/benchmarks.md#fix-order, `benchmarks/fix.py
# --ranks-only --features`, where the exact fix stands in each order): on 25 python-semver bugs, the project
# kept for choosing, the mean per token at WEIGHT 2 put the exact fix within the first 25 tries for 52%
# (median place 21) against 40% (median 88) for the whole script's log p, which favours short scripts, at
# any weight; 2 is the smallest weight of the plateau (2–8 alike; 1 and less fewer within 10 tries). On 40
# cachetools bugs (reported, not chosen on): median place 81.5, against 94.5 for the enumeration order.
WEIGHT = 2.0
# A command the shell cannot run: its exit status (126 not executable, 127 not found) with the shell's own words
# (a test script may exit 126 or 127 itself, e.g. `exit $?` after a command that the code under test names)
CANNOT_RUN = (126, 127)
SHELL_SAYS = ("not found", "permission denied", "cannot execute", "no such file")
# pytest's own exit codes for a run that tested nothing: a usage error (e.g. a test file that does not exist), no test
PYTEST_INTERRUPTED, PYTEST_USAGE, PYTEST_NO_TESTS = 2, 4, 5
# Exit codes of `patchcoder fix`.
NOTHING_TO_FIX, FIXED, ERROR, NOT_FOUND = 0, 1, 2, 3
ORDERS = ("model", "enumeration", "random")


@dataclasses.dataclass
class FixConfig:
    test: str
    """the test command, run by the shell in `directory`; it fails now and should pass once fixed"""
    directory: str = "."
    """where CMD runs (inside a git repository, the whole work tree is copied and CMD runs in this folder of it)"""
    paths: tuple[str, ...] = ()
    """look for the fault only in these files or folders (relative to `directory`)"""
    include_tests: bool = False
    """test files may be suspects too"""
    timeout: float | None = None
    """seconds per run of CMD (None: 3 × the first run's time + 5 s)"""
    max_tries: int = 200
    """candidates tried at most"""
    budget: float | None = None
    """seconds for the whole search (None: no limit)"""
    jobs: int = 1
    """scratch copies tried in parallel"""
    all: bool = False
    """keep going after the first fix, and list every plausible patch found within the limits"""
    full: str | None = None
    """a wider test command that a plausible patch must also pass"""
    suspects: int = 20
    """how many of the most suspicious lines get candidates"""
    weight: float = WEIGHT
    """weight of log Ochiai(line) in the order key"""
    beam: int = 1
    """with > 1, the model's beam-search scripts join the enumerated rewrites"""
    wide: bool = True
    """candidates from the rewrite engine's wider set (False: only the classes of the synthetic bugs)"""
    order: str = "model"
    """the order candidates are tried in: "model" (the key above), "enumeration" (most suspicious line first,
    its rewrites as enumerated: the baseline of benchmarks/fix.py) or "random" (seeded by `seed`)"""
    seed: int = 0
    failing_first: bool = True
    """each candidate first runs only the tests that failed on the unmodified tree (when CMD is pytest and
    localisation saw per-test outcomes); only a candidate that passes them runs the whole of CMD"""


@dataclasses.dataclass
class Fix:
    path: str  # relative to the tree's root
    file: Path  # the user's file
    diff: str
    score: float  # the model's mean log-probability per token (as `suggest` shows)
    key: float  # the order key
    line: int  # the suspicious line it rewrites (0-based)
    order: int  # its position in the order (0 = first tried)
    patch: object  # the repair.Patch

    def as_dict(self) -> dict:
        return {"path": self.path, "diff": self.diff, "score": self.score, "key": self.key, "line": self.line,
                "try": self.order + 1, "sstub": getattr(self.patch, "sstub", None),
                "kind": getattr(self.patch, "kind", None)}


@dataclasses.dataclass
class FixResult:
    status: str  # "nothing_to_fix", "flaky", "fixed", "not_found"
    message: str
    fixes: list[Fix] = dataclasses.field(default_factory=list)
    localisation: Localisation | None = None
    candidates: int = 0
    tries: int = 0
    timeouts: int = 0
    seconds: float = 0.0
    baseline_seconds: float = 0.0
    stopped: str = ""

    @property
    def exit_code(self) -> int:
        return {"nothing_to_fix": NOTHING_TO_FIX, "fixed": FIXED, "flaky": ERROR, "not_found": NOT_FOUND}[self.status]

    def as_dict(self) -> dict:
        return {"status": self.status, "message": self.message, "fixes": [f.as_dict() for f in self.fixes],
                "localisation": self.localisation.as_dict() if self.localisation else None,
                "candidates": self.candidates, "tries": self.tries, "timeouts": self.timeouts,
                "seconds": round(self.seconds, 2), "baseline_seconds": round(self.baseline_seconds, 2),
                "stopped": self.stopped}


@dataclasses.dataclass
class Progress:
    """Callbacks for a display: each is optional."""

    stage: Callable[[str], None] | None = None  # "baseline", "localising", "ranking", "trying"
    trying: Callable[[Candidate, int, int], None] | None = None  # candidate, tries so far, candidates


def tree_of(directory: str | os.PathLike) -> tuple[Path, str]:
    """The tree to copy (the git work tree holding `directory`, else `directory`) and where CMD runs in it."""
    import pygit2

    here = Path(directory).resolve()
    if not here.is_dir():
        raise UsageError(f"{directory}: not a directory")
    found = pygit2.discover_repository(str(here))
    if found is not None:
        repo = pygit2.Repository(found)
        if not repo.is_bare and repo.workdir:
            root = Path(repo.workdir).resolve()
            return root, here.relative_to(root).as_posix() or "."
    return here, "."


def fix(repairer, config: FixConfig, progress: Progress | None = None) -> FixResult:
    """Find a patch that makes `config.test` pass; see the module docstring."""
    check_config(config)
    progress = progress or Progress()
    started = time.perf_counter()
    root, subdir = tree_of(config.directory)
    paths = [_under(root, subdir, p) for p in config.paths]
    trees: list[ScratchTree] = []
    try:
        trees.append(ScratchTree(root))
        _say(progress, "baseline")
        # the first run is a run of CMD too: the time-out applies to it, as the budget does
        limit, what = min(((config.timeout, "time-out"), (config.budget, "budget")),
                          key=lambda x: math.inf if x[0] is None else x[0])
        first = trees[0].run(config.test, limit, subdir=subdir)
        if first.passed:
            return FixResult("nothing_to_fix", "the tests pass: nothing to fix", seconds=_since(started),
                             baseline_seconds=first.seconds)
        if first.timed_out:
            raise PatchcoderError(f"the test command did not finish within the {what} ({limit:g} s) on the "
                                  "untouched tree; nothing was tried")
        said = first.output.strip().splitlines()[-1:]
        if first.returncode in CANNOT_RUN and said and any(w in said[0].lower() for w in SHELL_SAYS):
            raise UsageError(f"the test command could not run ({said[0]}); nothing was tried")
        if (refused := _pytest_refused(first) or _not_installed(first, root)) is not None:
            raise UsageError(f"{refused}; nothing was tried")
        timeout = config.timeout if config.timeout is not None else 3 * first.seconds + 5
        _say(progress, "localising")
        run, localisation = _localise(trees[0], config, root, subdir, paths, timeout)
        if run.passed:
            return FixResult("flaky", "the test command failed, then passed when run again: a flaky test, "
                             "nothing was tried", localisation=localisation, seconds=_since(started),
                             baseline_seconds=first.seconds)
        _say(progress, "ranking")
        candidates = rank_candidates(repairer, root, localisation.suspects[:config.suspects], config)
        if not candidates:
            return FixResult("not_found", "no candidate patch for the suspicious lines", localisation=localisation,
                             seconds=_since(started), baseline_seconds=first.seconds)
        for _ in range(config.jobs - 1):
            trees.append(ScratchTree(root))
        _say(progress, "trying")
        on_start = None
        if progress.trying is not None:
            counter = {"n": 0}

            def on_start(candidate: Candidate) -> None:
                counter["n"] += 1
                progress.trying(candidate, counter["n"], len(candidates))

        budget = None if config.budget is None else max(0.0, config.budget - _since(started))
        quick = config.failing_first and bool(localisation.failing_tests)
        with only_tests(localisation.failing_tests) if quick else contextlib.nullcontext() as quick_env:
            found: SearchResult = search(candidates, trees, config.test, timeout, subdir=subdir,
                                         quick_env=quick_env, max_tries=config.max_tries, budget=budget,
                                         stop_first=not config.all, full_command=config.full, on_start=on_start)
    finally:
        for tree in trees:
            tree.remove()
    fixes = [Fix(t.candidate.path, root / t.candidate.path, t.candidate.info.diff, t.candidate.info.score,
                 t.candidate.score, t.candidate.line, t.order, t.candidate.info) for t in found.fixes]
    result = FixResult("fixed" if fixes else "not_found", "", fixes, localisation, len(candidates), found.tries,
                       found.timeouts, _since(started), first.seconds, found.stopped)
    if fixes:
        result.message = (f"{len(fixes)} plausible patch{'es' if len(fixes) > 1 else ''} "
                          f"after {found.tries} tr{'ies' if found.tries != 1 else 'y'}")
    else:
        why = {"max_tries": f"the limit of {config.max_tries} tries", "budget": "the time budget",
               "exhausted": "the last candidate"}.get(found.stopped, found.stopped)
        result.message = f"no candidate made the tests pass ({found.tries} tried, stopped at {why})"
    return result


def check_config(config: FixConfig) -> None:
    """A PatchcoderError naming the first setting of `config` out of its range, before anything runs."""
    from patchcoder.ground.schema import Flag, Number, OneOf, Text, Whole, problems, shown

    if not isinstance(config.test, str) or not config.test.strip():
        raise PatchcoderError(f"test must be a shell command, got {config.test!r}")
    if not isinstance(config.paths, (list, tuple)) or not all(isinstance(p, (str, os.PathLike)) for p in config.paths):
        hint = f"; for one, pass [{config.paths!r}]" if isinstance(config.paths, str) else ""
        raise PatchcoderError(f"paths must be a list of files or folders, got {shown(config.paths)}{hint}")
    rules = {"max_tries": Whole(1), "jobs": Whole(1), "suspects": Whole(1), "beam": Whole(1),
             "timeout": Number(0, above=True), "budget": Number(0, above=True), "weight": Number(0),
             "order": OneOf(*ORDERS), "full": Text(optional=True), "include_tests": Flag(), "all": Flag(),
             "wide": Flag(), "failing_first": Flag()}
    given = {name: value for name, value in dataclasses.asdict(config).items()
             if not (value is None and name in ("timeout", "budget"))}  # None: no limit
    if found := problems(given, rules):
        raise PatchcoderError(found[0])


def _pytest_refused(run: CommandResult) -> str | None:
    """Why a failed run of pytest tested nothing (no test collected, every test deselected, or a usage error
    such as a test file that does not exist), else None: no candidate can make such a command pass."""
    lines = [line.strip(" =") for line in run.output.splitlines() if line.strip(" =")]
    summary = lines[-1] if lines else ""  # e.g. "no tests ran in 0.01s", "3 deselected in 0.02s"
    if run.returncode == PYTEST_NO_TESTS and re.fullmatch(r"(no tests ran|\d+ deselected)\b.* in [\d.]+s\b.*", summary):
        return f"the test command ran no tests ({summary})"
    usage = [line for line in lines if line.startswith("ERROR: ")]
    if run.returncode == PYTEST_USAGE and usage:
        return f"the test command could not run ({usage[0]})"
    return None


def _not_installed(run: CommandResult, root: Path) -> str | None:
    """Why pytest stopped while collecting, when every error it shows is a test file (or conftest) importing a
    module that is nowhere in the tree (`numpy` not installed where the command runs): no rewrite of the code
    can install it. An import in the project's own code is left to the search (a wrong version check can send
    it to an optional module), and so is a module the tree holds."""
    if run.returncode != PYTEST_INTERRUPTED or "during collection" not in run.output:
        return None
    lines = run.output.splitlines()
    names = set()
    for i, line in enumerate(lines):
        error = re.match(r"E\s+(\w+(?:Error|Exception)\w*): ?(.*)$", line)
        if error is None:
            continue
        missing = re.fullmatch(r"No module named '([\w.]+)'.*", error.group(2))
        frame = next((found for above in reversed(lines[:i]) if (found := _frame_file(above))), None)
        if error.group(1) != "ModuleNotFoundError" or missing is None or frame is None or not is_test_file(frame):
            return None
        names.add(missing.group(1))
    tops = {name.split(".")[0] for name in names}
    for where, folders, files in os.walk(root):
        # not installed packages: a virtual environment in the tree may hold one the command's Python does not see
        folders[:] = [f for f in folders if f not in (".git", "node_modules", "site-packages", "__pycache__")
                      and not os.path.isfile(os.path.join(where, f, "pyvenv.cfg"))]
        if tops & {f.removesuffix(".py") for f in files if f.endswith(".py")} or any(
                f in tops and any(n.endswith(".py") for n in os.listdir(os.path.join(where, f))) for f in folders):
            return None
    if not names:
        return None
    return (f"the tests cannot import {', '.join(sorted(names))}, which is not in the tree: install it where the "
            "test command runs")


def _frame_file(line: str) -> str | None:
    """The file of a traceback line as pytest prints it (`path:12: in <module>`, or Python's `File "path", line
    12`), else None."""
    found = re.match(r"(\S[^:]*):\d+: in \S", line) or re.match(r'\s*File "(.+)", line \d+', line)
    return found.group(1) if found else None


def _under(root: Path, subdir: str, path: str) -> str:
    """A PATH argument (relative to where CMD runs) as a path relative to the tree's root."""
    full = (root / subdir / path).resolve()
    if not full.exists():
        raise UsageError(f"{path}: no such file or directory")
    try:
        return full.relative_to(root).as_posix()
    except ValueError:
        raise UsageError(f"{path} is outside {root}") from None


def _localise(tree: ScratchTree, config: FixConfig, root: Path, subdir: str, paths: list[str],
              timeout: float, every_test: bool = False) -> tuple[CommandResult, Localisation]:
    """The second run (under coverage) and the suspects: coverage, else changed lines, else the paths."""
    found, run = coverage_spectrum(tree, config.test, timeout, subdir, config.include_tests, paths, every_test)
    if found is not None:
        return run, found
    changed = changed_lines(root, paths, config.include_tests)
    if changed:
        return run, Localisation("changed", changed, run=run)
    if paths:
        every = all_lines(root, paths, config.include_tests)
        if every:
            return run, Localisation("paths", every, run=run)
    if run.passed:
        return run, Localisation("none", [], run=run)
    raise UsageError("could not tell where the fault is: the test command gave no coverage (does it run "
                     "Python?), nothing changed against HEAD, and no PATH was given; name the files to search")


def rank_candidates(repairer, root: Path, suspects: list[Suspect], config: FixConfig) -> list[Candidate]:
    """Every candidate rewrite of the suspicious lines, best first by order_key."""
    check_config(config)
    by_file: dict[str, list[Suspect]] = {}
    for s in suspects:
        if language_of(s.path) is not None:
            by_file.setdefault(s.path, []).append(s)
    items, owners = [], []
    for path, mine in by_file.items():
        try:
            text = (root / path).read_bytes().decode("utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        for s in mine:
            items.append({"code": text, "path": path, "focus": (s.line, s.line)})
            owners.append(s)
    ranked = repairer.candidates(items, beam=config.beam, wide=config.wide) if items else []
    best: dict[tuple[str, str], tuple[Candidate, int]] = {}
    position = 0  # enumeration order: suspects as localised, each line's rewrites as enumerated
    for suspect, patches in zip(owners, ranked, strict=True):
        for patch in sorted(patches, key=lambda p: p.rank):
            key = order_key(patch, suspect.score, config.weight)
            text = patch.apply(patch.original)
            old = best.get((suspect.path, text))
            if old is None:
                best[(suspect.path, text)] = (Candidate(suspect.path, text, key, suspect.line, patch), position)
                position += 1
            elif key > old[0].score:
                best[(suspect.path, text)] = (Candidate(suspect.path, text, key, suspect.line, patch), old[1])
    if config.order == "enumeration":
        return [c for c, _ in sorted(best.values(), key=lambda x: x[1])]
    if config.order == "random":
        import random

        out = [c for c, _ in sorted(best.values(), key=lambda x: x[1])]
        random.Random(config.seed).shuffle(out)
        return out
    return [c for c, _ in sorted(best.values(), key=lambda x: (-x[0].score, x[1]))]


def order_key(patch, suspicion: float, weight: float = WEIGHT) -> float:
    """Higher is tried first: the model's mean log-probability per token of the patch's script (its total
    would favour short scripts: see WEIGHT) plus weight · log of the line's suspiciousness (Ochiai)."""
    return patch.score + weight * math.log(max(suspicion, 1e-9))


def apply_fix(fix_: Fix) -> None:
    """Write the fix into the user's file, if the file still holds the text it was made from."""
    from patchcoder.suggest import Target, apply_patches

    apply_patches([(Target(fix_.path, fix_.file, fix_.patch.original, None), fix_.patch)])


def _say(progress: Progress, stage: str) -> None:
    if progress.stage is not None:
        progress.stage(stage)


def _since(started: float) -> float:
    return time.perf_counter() - started
