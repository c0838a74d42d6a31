"""Find a fix that makes your failing tests pass: `patchcoder fix --test "pytest -x tests/test_io.py"`.

CMD runs first on an untouched copy of the tree: if it passes there is nothing to fix (exit 0); a failure is
run again, under coverage, and a pass then means a flaky test (exit 2). The lines the failing tests run
and the passing ones do not are the suspects (Ochiai); where coverage cannot be collected, the lines changed
against HEAD, then the PATHs given, are used instead. The model's single-statement rewrites of the most
suspicious lines are tried in its order (model log-probability plus the line's suspiciousness), each in a
scratch copy of the tree — never in your files — until one makes CMD pass (when CMD is pytest, each first
runs only the tests that failed, and the whole of CMD only if they pass). The fix is shown as a unified
diff with its score, tries and time; --apply writes it into your file, only if the file still holds the
text the fix was made from. Ctrl-C stops the search and leaves your tree as it was.

Exit codes: 0 nothing to fix, 1 a fix was found (shown or applied), 2 error (bad command, flaky test, bad
arguments), 3 no candidate made the tests pass within the limits.
"""

from __future__ import annotations

import argparse
import json
import sys

from patchcoder.ground.argtypes import positive_int, positive_seconds


def add_arguments(p: argparse.ArgumentParser) -> None:
    from patchcoder.fix import FixConfig

    d = FixConfig(test="")
    p.add_argument("paths", nargs="*", metavar="PATH", help="look for the fault only in these files or folders")
    p.add_argument("--test", required=True, metavar="CMD",
                   help="the test command (run by the shell), e.g. 'pytest -x tests/test_io.py'")
    p.add_argument("-C", dest="directory", default=".", metavar="DIR",
                   help="run CMD in DIR (default: the current folder); inside a git repository its whole work "
                        "tree is copied")
    p.add_argument("--timeout", type=positive_seconds, metavar="SECONDS",
                   help="time-out of one run of CMD (default: 3 × the first run's time + 5 s)")
    p.add_argument("--max-tries", type=positive_int, default=d.max_tries, metavar="N",
                   help="candidates tried at most (default: %(default)s)")
    p.add_argument("--budget", type=positive_seconds, metavar="SECONDS", help="time for the whole search")
    p.add_argument("--jobs", type=positive_int, default=d.jobs, metavar="N",
                   help="scratch copies tried in parallel (default: %(default)s)")
    p.add_argument("--all", action="store_true", help="keep going and list every plausible patch within the limits")
    p.add_argument("--full", metavar="CMD2", help="a wider test command each plausible patch must also pass")
    p.add_argument("--include-tests", action="store_true", help="test files may hold the fault too")
    p.add_argument("--no-failing-first", action="store_true",
                   help="run the whole of CMD for every candidate (default, when CMD is pytest: first only the "
                        "tests that failed, the whole of CMD only if they pass)")
    p.add_argument("--suspects", type=positive_int, default=d.suspects, metavar="N",
                   help="how many of the most suspicious lines get candidates (default: %(default)s)")
    p.add_argument("--beam", type=positive_int, default=d.beam, metavar="N",
                   help="with N > 1, the model's beam-search scripts join the enumerated rewrites (default: 1)")
    p.add_argument("--narrow", action="store_true",
                   help="only the rewrite classes of the synthetic bugs, not the wider candidate set (fewer, "
                        "faster to try, fewer fixes within reach)")
    p.add_argument("--apply", action="store_true", help="write the fix into your file")
    p.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    p.add_argument("--checkpoint", metavar="DIR", help="a model folder (default: the model shipped with patchcoder)")
    p.add_argument("--no-progress", action="store_true", help="do not show the progress display")


def run(args: argparse.Namespace) -> int:
    from patchcoder.fix import FixConfig, apply_fix, fix
    from patchcoder.ground.console import stderr
    from patchcoder.mining.pool import stop_on_sigterm
    from patchcoder.repair import Repairer

    config = FixConfig(test=args.test, directory=args.directory, paths=tuple(args.paths),
                       include_tests=args.include_tests, timeout=args.timeout, max_tries=args.max_tries,
                       budget=args.budget, jobs=args.jobs, all=args.all, full=args.full, suspects=args.suspects,
                       beam=args.beam, wide=not args.narrow, failing_first=not args.no_failing_first)
    repairer = Repairer.load(args.checkpoint)
    console = stderr()
    show = not args.no_progress and console.is_terminal
    # SIGTERM stops like Ctrl-C: every running command killed, every scratch copy removed, exit 143
    with stop_on_sigterm(), _Display(console, show) as display:
        result = fix(repairer, config, display.progress())
    if result.localisation is not None and not args.json:
        console.print(f"[dim]fault localisation: {result.localisation.method}")
    if args.json:
        json.dump(result.as_dict(), sys.stdout, indent=1)
        sys.stdout.write("\n")
    elif result.fixes:
        _show(result, console)
    console.print(("" if result.fixes else "[bold]") + result.message
                  + f" ({result.seconds:.1f} s, {result.candidates} candidates)")
    if result.fixes and args.apply:
        apply_fix(result.fixes[0])
        console.print(f"applied the fix to {result.fixes[0].path}")
    return result.exit_code


def _show(result, console) -> None:
    for fix_ in result.fixes:
        if sys.stdout.isatty():
            from rich.console import Console
            from rich.syntax import Syntax

            out = Console()
            kind = getattr(fix_.patch, "kind", None)  # as suggest's header: the kind of edit, unless "other"
            what = f" ({kind.replace('_', ' ')})" if kind and kind != "other" else ""
            out.rule(f"[bold]{fix_.path}[/bold]  score {fix_.score:.3f}{what}, try {fix_.order + 1}")
            out.print(Syntax(fix_.diff, "diff", theme="ansi_dark", background_color="default"))
        else:
            sys.stdout.write(fix_.diff)


class _Display:
    """The live line on stderr: the stage, then tries, elapsed time and the current suspicious line."""

    def __init__(self, console, enabled: bool):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self._bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                             TimeElapsedColumn(), TextColumn("{task.fields[where]}"), console=console,
                             disable=not enabled, transient=True)
        self._task = self._bar.add_task("starting", total=None, where="")

    def progress(self):
        from patchcoder.fix import Progress

        def stage(name: str) -> None:
            self._bar.update(self._task, description={"baseline": "running the tests", "localising":
                                                      "localising (tests under coverage)", "ranking":
                                                      "ranking candidates", "trying": "trying"}.get(name, name))

        def trying(candidate, n: int, total: int) -> None:
            self._bar.update(self._task, completed=n - 1, total=total,
                             where=f"{candidate.path}:{candidate.line + 1}")

        return Progress(stage, trying)

    def __enter__(self):
        self._bar.__enter__()
        return self

    def __exit__(self, *exc):
        return self._bar.__exit__(*exc)
