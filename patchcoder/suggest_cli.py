"""Propose patches for your changes: the files changed against HEAD (default), the staged ones
(--staged), those changed against another commit (--rev), or the files named (whole).

In a terminal, each suggestion is shown as a coloured diff with its score; piped, the output is a
raw unified diff that `git apply` accepts; with --json, a list of objects (path, diff, score, script,
sstub, kind: its kind of edit, which chooses its threshold). --apply writes the patches, but only after
checking that every file still holds exactly the text the suggestion was computed from (else nothing is
written), and never to a file with unstaged changes unless --allow-dirty. Exit codes: 0 no suggestion,
1 suggestions shown (or applied), 2 usage or internal error.
"""

from __future__ import annotations

import argparse
import json
import sys

from rich.markup import escape

from patchcoder.ground.argtypes import positive_int, score
from patchcoder.ground.errors import PatchcoderError
from patchcoder.suggest import MAX_LINES


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="*", metavar="PATH", help="files to look at whole (default: your changes)")
    p.add_argument("-m", "--intent", metavar="TEXT", help="what the change is meant to do, like a commit message")
    p.add_argument("--staged", action="store_true", help="look at the staged content (the index), not the work tree")
    p.add_argument("--rev", metavar="REV", help="look at the changes against REV instead of HEAD")
    p.add_argument("--apply", action="store_true", help="write the suggested patches into the files")
    p.add_argument("--allow-dirty", action="store_true", help="with --apply, also write files with unstaged changes")
    p.add_argument("--json", action="store_true", help="print the suggestions as a JSON list on stdout")
    p.add_argument("--beam", type=positive_int, default=1, metavar="N",
                   help="beam width: 1 is greedy; N keeps the N best scripts and proposes the best (default: 1)")
    p.add_argument("--mode", choices=["generate", "rank", "both"],
                   help="generate scripts under the edit grammar, rank the known single-statement rewrites of the "
                        "changed lines, or both (default: the model's own, 'rank' for the shipped model)")
    p.add_argument("--min-score", type=score, metavar="S",
                   help="only suggestions whose score (mean log-probability per token) is at least S (default: "
                        "the thresholds calibrated for the model, in its decoding.json: one per kind of edit where "
                        "it gives them; S replaces them all; --min-score=-inf shows every suggestion)")
    p.add_argument("--checkpoint", metavar="DIR", help="a model folder (default: the model shipped with patchcoder)")
    p.add_argument("--max-lines", type=positive_int, default=MAX_LINES, metavar="N",
                   help="skip (with a note) a file with more than N lines for the model to read: the whole file, or "
                        f"the span of its changes (default: {MAX_LINES:,}; about a minute of work here)")
    p.add_argument("--progress", action="store_true",
                   help="show a progress bar on stderr also when it is not a terminal (in one, it shows for long work)")


def run(args: argparse.Namespace) -> int:
    from patchcoder.ground.console import stderr
    from patchcoder.repair import Repairer
    from patchcoder.suggest import apply_patches, dirty_files, suggest, targets

    if args.staged and args.paths:
        raise PatchcoderError("--staged looks at the index; it cannot be combined with paths")
    if args.rev and args.paths:
        raise PatchcoderError("--rev looks at the changes against REV; it cannot be combined with paths (named "
                              "files are read whole)")
    notes: list[str] = []
    found, _ = targets(args.paths, staged=args.staged, rev=args.rev, notes=notes, max_lines=args.max_lines)
    _say(notes)
    suggestions = []
    if found:
        repairer = Repairer.load(args.checkpoint)
        # a progress bar on stderr: asked for, or in a terminal when the work is long
        progress = True if args.progress else None if stderr().is_terminal else False
        suggestions = suggest(repairer, found, args.intent, args.min_score, beam=args.beam, mode=args.mode,
                              notes=notes, show_progress=progress)
        _say(notes)
    if not suggestions:
        if args.json:
            sys.stdout.write("[]\n")  # always a JSON list
        else:
            stderr().print(f"no suggestion ({len(found)} file{'s' if len(found) != 1 else ''} looked at)")
        return 0
    if args.json:
        json.dump([{"path": t.path, "diff": p.diff, "score": p.score, "sstub": p.sstub,
                    "kind": p.kind,
                    "script": [{"kind": o.kind, "start": o.start, "end": o.end, "text": o.text} for o in p.script.ops]}
                   for t, p in suggestions], sys.stdout, indent=1)
        sys.stdout.write("\n")
    elif sys.stdout.isatty():
        _show(suggestions)
    else:
        sys.stdout.write("".join(p.diff for _, p in suggestions))
    if args.apply:
        dirty = [] if args.allow_dirty else dirty_files([t for t, _ in suggestions])
        if dirty:
            raise PatchcoderError(f"{', '.join(dirty)} has unstaged changes; stage or stash them, or pass "
                                  "--allow-dirty (nothing was written)")
        written = apply_patches(suggestions, notes)
        _say(notes)
        stderr().print(escape(f"applied {len(written)} patch{'es' if len(written) != 1 else ''}: {', '.join(written)}"),
                       soft_wrap=True)
    return 1


def _say(notes: list[str]) -> None:
    """Print the notes (file names taken literally, not as rich markup), and forget them."""
    from patchcoder.ground.console import stderr

    for note in notes:
        stderr().print(f"[dim]note: {escape(note)}", soft_wrap=True)  # a path is never cut in two
    notes.clear()


def _show(suggestions) -> None:
    from rich.console import Console
    from rich.syntax import Syntax

    console = Console()
    for target, patch in suggestions:
        what = f" ({patch.kind.replace('_', ' ')})" if patch.kind and patch.kind != "other" else ""
        console.rule(f"[bold]{escape(target.path)}[/bold]  score {patch.score:.3f}{what}")
        console.print(Syntax(patch.diff, "diff", theme="ansi_dark", background_color="default"))
