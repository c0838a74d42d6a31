"""Manage and run the git pre-commit hook: `patchcoder hook install|uninstall|run`.

install writes the pre-commit hook where git runs it (`git rev-parse --git-path hooks`: core.hooksPath
expanded as git does, the main repository's hooks folder from a linked worktree); an existing hook
that is not ours is kept and chained (renamed to pre-commit.before-patchcoder and run first), and put
back by uninstall. run checks the content being committed within a time budget: warn mode prints
suggestions and lets the commit through; strict mode blocks it when a suggestion scores at least
--min-score; a file of code it could not check (too long, not UTF-8, ...) is named, and does not block. The
hook never blocks a commit because of its own failure or time-out (a missing
interpreter, a patchcoder that does not load, a crash): it says so in one line and the commit goes
ahead — in strict mode too, since it cannot tell its failure from a bug. Its processes never import
code from the repository they check (see START).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import stat
import subprocess
import sys
from pathlib import Path

from patchcoder.ground.argtypes import positive_seconds, score
from patchcoder.ground.errors import PatchcoderError, UsageError

MARKER = "# patchcoder pre-commit hook"
# The notes of `suggest` a commit would get every time, for files with no code to check (or none rank mode can
# check): not passed on. The others name a file of code left unchecked (too long, too large, not UTF-8, unmerged)
# and are: the commit goes ahead either way, but not in silence.
QUIET_SKIPS = ("not a recognised programming language", "binary", "a symbolic link", "a submodule")
QUIET = ": rank mode has no candidate rewrites for "
CHAINED = "pre-commit.before-patchcoder"


# How the hook starts Python: `python -c START ARGS…` runs `patchcoder ARGS…`. Not `-m patchcoder`, which
# puts the current directory — the checked repository — first on sys.path and, on Python 3.10, imports
# runpy from there before any code of ours runs. `-c` imports nothing before START, and START drops the
# "" it puts first on sys.path before importing patchcoder, whose __main__ then drops the rest.
_DROP_CWD = 'import sys\nif sys.path[:1] == [""]:\n    del sys.path[0]\n'
START = _DROP_CWD + "from patchcoder.__main__ import main\nmain()\n"
# The installed hook's: everything `hook run` needs is imported first, so that a patchcoder that does
# not load (a broken install, a broken package on PYTHONPATH) gives one line and lets the commit through.
HOOK_START = _DROP_CWD + """try:
    from patchcoder.__main__ import isolate_import_path, main
    isolate_import_path()
    import patchcoder.cli, patchcoder.hook
except Exception as exc:
    reason = f"{type(exc).__name__}: {exc}".splitlines()[0]
    sys.stderr.write(f"patchcoder hook: no check (patchcoder does not load: {reason}); the commit goes ahead\\n")
    sys.exit(0)
main()
"""


def hooks_dir(cwd: str | os.PathLike = ".") -> Path:
    """The folder git runs hooks from, as `git rev-parse --git-path hooks` names it: core.hooksPath with
    `~` expanded and a relative path taken from the work tree's root; in a linked worktree, the main
    repository's hooks folder (git never runs `.git/worktrees/NAME/hooks`)."""
    try:
        found = subprocess.run(["git", "rev-parse", "--is-inside-work-tree", "--git-path", "hooks"], cwd=cwd,
                               capture_output=True, text=True)
    except FileNotFoundError:
        raise PatchcoderError("git is not installed (or not on PATH); the hook needs it") from None
    inside, _, path = found.stdout.partition("\n")
    if found.returncode != 0 or inside != "true":
        raise UsageError("not inside a git work tree")
    return (Path(cwd) / path.rstrip("\n")).resolve()  # git names it relative to cwd


def install(mode: str, timeout: float, min_score: float | None, checkpoint: str | None, cwd=".") -> Path:
    hooks = hooks_dir(cwd)
    hooks.mkdir(parents=True, exist_ok=True)
    hook = hooks / "pre-commit"
    if _foreign(hook):  # a symbolic link is never ours: writing through it would write where it points
        if os.path.lexists(hooks / CHAINED):
            raise PatchcoderError(f"{hook} exists and {hooks / CHAINED} too; move one of them away first")
        hook.rename(hooks / CHAINED)
    args = ["hook", "run", "--mode", mode, "--timeout", str(timeout)]
    if min_score is not None:  # one argument: argparse would take "-inf" or "-1e-05" after a space for an option
        args += [f"--min-score={min_score}"]
    if checkpoint:
        args += ["--checkpoint", str(Path(checkpoint).resolve())]
    command = " ".join(shlex.quote(a) for a in ["-c", HOOK_START, *args])
    # Only exit 1 of `hook run` (strict mode found something) blocks; the hook's own failures never do.
    hook.write_text(f"""#!/bin/sh
{MARKER} (`patchcoder hook uninstall` removes it)
chained="$(dirname "$0")/{CHAINED}"
if [ -x "$chained" ]; then "$chained" "$@" || exit $?; fi
python={shlex.quote(sys.executable)}
if [ ! -x "$python" ]; then
    echo "patchcoder hook: no check ($python is gone; install the hook again); the commit goes ahead" >&2
    exit 0
fi
"$python" {command}
status=$?
if [ "$status" -eq 0 ] || [ "$status" -eq 1 ]; then exit "$status"; fi
echo "patchcoder hook: no check (it stopped with exit status $status); the commit goes ahead" >&2
exit 0
""")
    hook.chmod(hook.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return hook


def _foreign(hook: Path) -> bool:
    """Whether `hook` is a hook other than ours: a file without our marker, or a symbolic link (even a broken one)."""
    if hook.is_symlink():
        return True
    return hook.exists() and MARKER not in hook.read_text(errors="replace")


def uninstall(cwd=".") -> bool:
    hooks = hooks_dir(cwd)
    hook = hooks / "pre-commit"
    if not hook.exists() or _foreign(hook):
        return False
    hook.unlink()
    if os.path.lexists(hooks / CHAINED):  # a chained link, even a broken one
        (hooks / CHAINED).rename(hook)
    return True


def check(mode: str, timeout: float, min_score: float | None, checkpoint: str | None) -> int:
    """The hook itself: 1 blocks the commit (strict mode, a suggestion at or above min_score), else 0."""
    say = _say
    cmd = [sys.executable, "-c", START, "suggest", "--staged", "--json"]
    if min_score is not None:  # the hook's threshold replaces the model's, also when it is lower
        cmd += [f"--min-score={min_score}"]
    if checkpoint:
        cmd += ["--checkpoint", checkpoint]
    try:
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        say(f"patchcoder hook: no check, it took longer than {timeout:g} s (the commit goes ahead)")
        return 0
    if result.returncode in (0, 1):
        for note in unchecked(result.stderr):
            say(f"patchcoder hook: {note}")
    if result.returncode == 0:
        return 0
    reason = result.stderr.strip().splitlines()[-1] if result.stderr.strip() else f"exit {result.returncode}"
    if result.returncode != 1:
        say(f"patchcoder hook: no check ({reason}); the commit goes ahead")
        return 0
    try:
        suggestions = json.loads(result.stdout)
    except json.JSONDecodeError:  # e.g. a traceback: Python exits 1 on an uncaught exception
        say(f"patchcoder hook: no check (unreadable output: {reason}); the commit goes ahead")
        return 0
    blocking = [s for s in suggestions if min_score is None or s["score"] >= min_score]
    for s in suggestions:
        say(f"patchcoder suggests for {s['path']} (score {s['score']:.3f}):\n{s['diff']}")
    if mode == "strict" and blocking:
        paths = sorted({s["path"] for s in blocking})
        say(f"patchcoder hook: commit blocked (strict mode); {advice(paths, min_score, checkpoint)}, or commit with "
            "--no-verify")
        return 1
    return 0


def unchecked(stderr: str) -> list[str]:
    """The notes in `suggest`'s error output that say a file of code was not checked (all but the quiet ones)."""
    out = []
    for line in re.sub(r"\x1b\[[0-9;]*m", "", stderr).splitlines():  # styled when FORCE_COLOR is set
        if not line.startswith("note: "):
            continue
        note = line[len("note: "):]
        _, skipped, reason = note.rpartition(": skipped, ")  # the last: a file's name may hold any text
        if not (skipped and reason.startswith(QUIET_SKIPS)) and QUIET not in note:
            out.append(note)
    return out


def advice(paths: list[str], min_score: float | None, checkpoint: str | None) -> str:
    """How to apply what blocked the commit of `paths` (relative to the work tree's root, where git runs the
    hook), with the hook's own threshold and model, on the content it checked. `--staged --apply` reads what the
    hook read and writes the fix into the work tree only (the index stays as the user staged it), so the files
    are staged again after. `git commit -a` and `git commit FILE` checked a temporary index ($GIT_INDEX_FILE),
    gone once the commit is refused: the files are staged first, which is what those commands do. A file with
    unstaged changes besides needs --allow-dirty (the fix goes where its lines are in the work tree)."""
    import pygit2

    found = pygit2.discover_repository(".")
    temporary = found is not None and _temporary_index(found)
    options = "".join([" --allow-dirty" if found is not None and not temporary and _unstaged(found, paths) else "",
                       f" --min-score={min_score}" if min_score is not None else "",
                       f" --checkpoint {shlex.quote(checkpoint)}" if checkpoint else ""])
    files = " ".join(shlex.quote(p) for p in paths)
    apply = f"`patchcoder suggest --staged --apply{options}`"
    if temporary:
        return f"stage the files (`git add {files}`), apply with {apply}, then `git add {files}` again"
    return f"apply with {apply}, then `git add {files}`"


def _unstaged(git_dir: str, paths: list[str]) -> bool:
    """Whether the repository's own index differs from the work tree for some of `paths`."""
    import pygit2

    repo = pygit2.Repository(git_dir)
    flags = pygit2.enums.FileStatus
    try:
        return any(repo.status_file(p) & (flags.WT_MODIFIED | flags.WT_TYPECHANGE) for p in paths)
    except (KeyError, pygit2.GitError):
        return False


def _temporary_index(git_dir: str) -> bool:
    """Whether git named an index other than the repository's own for this hook (`commit -a`, `commit FILE`)."""
    named = os.environ.get("GIT_INDEX_FILE")
    return bool(named) and os.path.realpath(named) != os.path.realpath(os.path.join(git_dir, "index"))


def _say(text: str) -> None:
    print(text, file=sys.stderr)


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    for name, help_text in (("install", "install the pre-commit hook in this repository"),
                            ("run", "check the staged changes (what the installed hook calls)")):
        s = sub.add_parser(name, help=help_text, description=help_text)
        # install refuses a bad value; run, which an installed hook calls, must not block a commit with a
        # usage error, so it keeps reading plain numbers
        installing = name == "install"
        s.add_argument("--mode", choices=["warn", "strict"], default="warn",
                       help="warn: show suggestions; strict: also block the commit (default: %(default)s)")
        s.add_argument("--timeout", type=positive_seconds if installing else float, default=30.0, metavar="S",
                       help="give up checking after S seconds and let the commit through (default: %(default)s)")
        s.add_argument("--min-score", type=score if installing else float, metavar="S",
                       help="strict mode blocks only for suggestions scoring at least S (default: the model's calibrated "
                            "thresholds, as suggest shows)")
        s.add_argument("--checkpoint", metavar="DIR", help="a model folder (default: the shipped model)")
    sub.add_parser("uninstall", help="remove the hook (and put back a hook it chained)")


def run(args: argparse.Namespace) -> int:
    from rich.markup import escape

    from patchcoder.ground.console import stderr

    if args.action == "install":
        hook = install(args.mode, args.timeout, args.min_score, args.checkpoint)
        chained = hook.with_name(CHAINED)
        kept = f"; the hook that was there is kept as {chained.name} and runs first" \
            if os.path.lexists(chained) else ""
        stderr().print(escape(f"installed {hook} ({args.mode} mode, {args.timeout:g} s budget){kept}"), soft_wrap=True)
        return 0
    if args.action == "uninstall":
        removed = uninstall()
        stderr().print("removed the patchcoder hook" if removed else "no patchcoder hook to remove")
        return 0
    try:
        return check(args.mode, args.timeout, args.min_score, args.checkpoint)
    except Exception as exc:  # the hook must never block a commit by failing
        _say(f"patchcoder hook: no check ({type(exc).__name__}: {exc}); the commit goes ahead")
        return 0
