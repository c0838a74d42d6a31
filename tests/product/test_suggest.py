"""`patchcoder suggest` on real git working trees, with a real model that learned one fix."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from patchcoder.ground.errors import PatchcoderError
from patchcoder.repair import Repairer
from patchcoder.suggest import apply_patches, suggest, targets

BUGGY = "def area(width, height):\n    return width + height\n"
FIXED = "def area(width, height):\n    return width * height\n"
FIRST = "def area(width, height):\n    return 0\n"
PLANTED = Path(__file__).resolve().parents[2] / "examples" / "planted_bug.py"  # README's main job


def _git(cwd, *args):
    env = {**os.environ, "GIT_AUTHOR_NAME": "A", "GIT_AUTHOR_EMAIL": "a@x", "GIT_COMMITTER_NAME": "A",
           "GIT_COMMITTER_EMAIL": "a@x", "HOME": str(cwd)}
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True, env=env)


@pytest.fixture
def work(tmp_path):
    """A repository whose committed geometry.py is FIRST, with BUGGY in the work tree (unstaged)."""
    _git(tmp_path, "init", "-q")
    (tmp_path / "geometry.py").write_text(FIRST)
    (tmp_path / "logo.png").write_bytes(b"\x89PNG\0\0")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "-qm", "first")
    (tmp_path / "geometry.py").write_text(BUGGY)
    (tmp_path / "logo.png").write_bytes(b"\x89PNG\0\1")
    return tmp_path


def _suggest(cwd, fixer, *args):
    return subprocess.run([sys.executable, "-m", "patchcoder", "suggest", "--checkpoint", str(fixer), *args],
                          cwd=cwd, capture_output=True, text=True)


def test_changed_files_get_the_fix_as_a_diff_git_applies(work, fixer):
    result = _suggest(work, fixer)
    assert result.returncode == 1, result.stderr
    assert result.stdout.startswith("--- a/geometry.py\n+++ b/geometry.py\n")
    assert "logo.png: skipped, not a recognised programming language" in result.stderr
    subprocess.run(["git", "apply", "-"], input=result.stdout, text=True, cwd=work, check=True)
    assert (work / "geometry.py").read_text() == FIXED


@pytest.mark.parametrize("options", [[], ["--beam", "3"], ["--mode", "both"]])
def test_json_output(work, fixer, options):
    result = _suggest(work, fixer, "--json", *options)
    assert result.returncode == 1, result.stderr
    (item,) = json.loads(result.stdout)
    assert item["path"] == "geometry.py" and item["sstub"] == item["kind"] == "change_binary_operator"
    assert item["score"] <= 0 and item["diff"].startswith("--- a/geometry.py")
    assert item["script"] == [{"kind": "REPLACE", "start": 1, "end": 2, "text": "    return width * height\n"}]


def test_apply_refuses_unstaged_changes_unless_allowed(work, fixer):
    refused = _suggest(work, fixer, "--apply")
    assert refused.returncode == 2 and "unstaged changes" in refused.stderr
    assert (work / "geometry.py").read_text() == BUGGY
    applied = _suggest(work, fixer, "--apply", "--allow-dirty")
    assert applied.returncode == 1, applied.stderr
    assert (work / "geometry.py").read_text() == FIXED
    assert _suggest(work, fixer).returncode == 0  # nothing left to suggest: exit 0
    empty = _suggest(work, fixer, "--json")
    assert empty.returncode == 0 and json.loads(empty.stdout) == []  # still a JSON list


def test_staged_content_is_what_counts_with_staged(work, fixer):
    _git(work, "add", "geometry.py")
    (work / "geometry.py").write_text(FIRST + "# work in progress\n")
    result = _suggest(work, fixer, "--staged", "--json")
    assert result.returncode == 1, result.stderr
    assert json.loads(result.stdout)[0]["script"][0]["text"] == "    return width * height\n"


def test_a_file_changed_after_the_suggestion_is_not_written(work, fixer):
    found, _ = targets([], cwd=work)
    suggestions = suggest(Repairer.load(fixer), found)
    assert len(suggestions) == 1
    (work / "geometry.py").write_text(BUGGY + "\n")
    with pytest.raises(PatchcoderError, match="changed since the suggestion"):
        apply_patches(suggestions)
    assert (work / "geometry.py").read_text() == BUGGY + "\n"


def test_plain_files_outside_a_repository(tmp_path, fixer):
    (tmp_path / "geometry.py").write_text(BUGGY)
    # named by its absolute path, the file is shown relative to the current directory, where it applies
    diff = _suggest(tmp_path, fixer, str(tmp_path / "geometry.py"))
    assert diff.returncode == 1 and diff.stdout.startswith("--- a/geometry.py\n+++ b/geometry.py\n"), diff.stdout
    subprocess.run(["git", "apply", "--check", "-"], input=diff.stdout, text=True, cwd=tmp_path, check=True,
                   capture_output=True)
    elsewhere = _suggest(tmp_path.parent, fixer, str(tmp_path / "geometry.py"))
    assert elsewhere.stdout.startswith(f"--- a/{tmp_path.relative_to(tmp_path.parent)}/geometry.py"), elsewhere.stdout
    result = _suggest(tmp_path, fixer, "geometry.py", "--apply")
    assert result.returncode == 1, result.stderr
    assert (tmp_path / "geometry.py").read_text() == FIXED
    nothing = _suggest(tmp_path, fixer)
    assert nothing.returncode == 2 and "not inside a git repository" in nothing.stderr
    # applied from elsewhere (outside any repository and the current folder), the message names it absolutely
    (tmp_path / "geometry.py").write_text(BUGGY)
    (tmp_path / "here").mkdir()
    away = _suggest(tmp_path / "here", fixer, "../geometry.py", "--apply")
    assert away.returncode == 1 and f"applied 1 patch: {tmp_path / 'geometry.py'}" in away.stderr, away.stderr


def test_usage_errors(work, fixer, tmp_path):
    assert _suggest(work, fixer, "missing.py").returncode == 2
    bad_rev = _suggest(work, fixer, "--rev", "nope")
    assert bad_rev.returncode == 2 and "names no commit" in bad_rev.stderr
    rev_and_paths = _suggest(work, fixer, "--rev", "HEAD", "geometry.py")
    assert rev_and_paths.returncode == 2 and "--rev" in rev_and_paths.stderr and "paths" in rev_and_paths.stderr
    no_model = subprocess.run([sys.executable, "-m", "patchcoder", "suggest", "--checkpoint", str(tmp_path)],
                              cwd=work, capture_output=True, text=True)
    errors = [line for line in no_model.stderr.splitlines() if "error" in line]
    assert no_model.returncode == 2 and len(errors) == 1 and "checkpoint" in errors[0]


def test_a_subcommand_imports_only_its_own_modules():
    code = ("import sys; from patchcoder.cli import build_parser; build_parser('suggest'); "
            "a = 'patchcoder.mining.run' in sys.modules; build_parser(); print(a, 'patchcoder.mining.run' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "True"]


def test_line_endings_and_tabs_do_not_change_what_the_model_sees(tmp_path):
    """The shipped model proposes the same change (same script, same score) for the planted-bug file in LF,
    CRLF, tab-indented and byte-order-marked layouts; the diff and the written file keep the file's line endings,
    tabs and mark. (What is tested is the layout, not whether the proposal is right.)"""
    lf = PLANTED.read_text()
    layouts = {"lf": lf, "crlf": lf.replace("\n", "\r\n"), "tabs": lf.replace("    ", "\t"), "bom": "\ufeff" + lf}
    repairer = Repairer.load()
    patches = repairer.repair([{"code": code, "path": "planted_bug.py"} for code in layouts.values()], mode="rank")
    assert all(p is not None for p in patches) and len({round(p.score, 6) for p in patches}) == 1
    assert len({tuple((o.kind, o.start, o.end) for o in p.script.ops) for p in patches}) == 1
    changed = patches[0].apply(lf)
    assert changed != lf
    expected = {"lf": changed, "crlf": changed.replace("\n", "\r\n"), "tabs": changed.replace("    ", "\t"),
                "bom": "\ufeff" + changed}
    _git(tmp_path, "init", "-q")
    for (name, code), patch in zip(layouts.items(), patches, strict=True):
        assert patch.apply(code) == expected[name], name
        (tmp_path / name).mkdir()
        (tmp_path / name / "planted_bug.py").write_bytes(code.encode())
        subprocess.run(["git", "apply", "--check", f"--directory={name}", "-"], input=patch.diff.encode(),
                       cwd=tmp_path, check=True, capture_output=True)
    crlf = tmp_path / "crlf" / "planted_bug.py"
    # the path in the prompt (crlf/planted_bug.py) moves the scores: the written file is the model's proposal for
    # that path, at any score, in the file's own line endings
    (own,) = repairer.repair([{"code": layouts["crlf"], "path": "crlf/planted_bug.py"}], mode="rank")
    applied = subprocess.run([sys.executable, "-m", "patchcoder", "suggest", "--min-score=-inf", str(crlf),
                              "--apply", "--allow-dirty"], cwd=tmp_path, capture_output=True, text=True)
    assert applied.returncode == 1, applied.stderr
    written = crlf.read_bytes()
    assert written == own.apply(layouts["crlf"]).encode() and written != layouts["crlf"].encode()
    assert written.count(b"\n") == written.count(b"\r\n")


def test_apply_finds_the_repository_from_the_file_not_the_current_directory(work, fixer, tmp_path_factory):
    """Named from outside its repository, or from a superproject for a submodule's file, a file with unstaged
    changes is still refused, and its diff names it as its own repository does."""
    outside = _suggest(work.parent, fixer, "--apply", str(work / "geometry.py"))
    assert outside.returncode == 2 and "unstaged changes" in outside.stderr, outside.stderr
    assert (work / "geometry.py").read_text() == BUGGY
    assert _suggest(work.parent, fixer, str(work / "geometry.py")).stdout.startswith("--- a/geometry.py\n")
    top = tmp_path_factory.mktemp("superproject")
    _git(top, "init", "-q")
    _git(top, "-c", "protocol.file.allow=always", "submodule", "add", "-q", str(work), "sub")
    _git(top, "commit", "-qm", "a submodule")
    (top / "sub" / "geometry.py").write_text(BUGGY)
    inside = _suggest(top, fixer, "--apply", "sub/geometry.py")
    assert inside.returncode == 2 and "unstaged changes" in inside.stderr, inside.stderr
    assert (top / "sub" / "geometry.py").read_text() == BUGGY
    _git(top / "sub", "commit", "-qam", "the bug")  # the superproject now sees its submodule changed
    changes = _suggest(top, fixer)  # the superproject's changes: the submodule is named, not misread
    assert changes.returncode == 0 and "sub: skipped, a submodule: run patchcoder suggest inside it" in changes.stderr


def test_writes_stay_inside_the_repository_and_keep_symbolic_links(work, fixer, tmp_path_factory):
    elsewhere = tmp_path_factory.mktemp("elsewhere")  # another repository, where the file is committed (clean)
    _git(elsewhere, "init", "-q")
    (elsewhere / "geometry.py").write_text(BUGGY)
    _git(elsewhere, "add", ".")
    _git(elsewhere, "commit", "-qm", "elsewhere")
    (work / "link.py").symlink_to(elsewhere / "geometry.py")
    _git(work, "add", "link.py")
    _git(work, "commit", "-qm", "a link out of the repository")
    for options in ([], ["--allow-dirty"]):
        refused = _suggest(work, fixer, "link.py", "--apply", *options)
        assert refused.returncode == 2 and "outside the repository" in refused.stderr, refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1
    assert (elsewhere / "geometry.py").read_text() == BUGGY
    # an untracked link among the changes is skipped, never replaced by a file
    (work / "link.py").unlink()
    _git(work, "rm", "-q", "--cached", "link.py")
    (work / "alias.py").symlink_to("geometry.py")
    applied = _suggest(work, fixer, "--apply", "--allow-dirty")
    assert applied.returncode == 1, applied.stderr
    assert "alias.py: skipped, a symbolic link" in applied.stderr
    assert (work / "alias.py").is_symlink() and (work / "geometry.py").read_text() == FIXED
    # named, a link inside the repository is written through to its target, and stays a link
    (work / "geometry.py").write_text(BUGGY)
    through = _suggest(work, fixer, "alias.py", "--apply", "--allow-dirty")
    assert through.returncode == 1, through.stderr
    assert (work / "alias.py").is_symlink() and (work / "geometry.py").read_text() == FIXED


def test_staged_apply_with_autocrlf_and_with_a_partially_staged_file(work, fixer):
    """--staged --apply compares what git compares: the index, and the work tree after git's line-ending
    filter; a partially staged file gets the fix where its lines are in the work tree."""
    _git(work, "config", "core.autocrlf", "true")
    (work / "geometry.py").write_bytes(BUGGY.replace("\n", "\r\n").encode())
    _git(work, "add", "geometry.py")  # the index holds LF, the work tree CRLF
    applied = _suggest(work, fixer, "--staged", "--apply")
    assert applied.returncode == 1, applied.stderr
    assert (work / "geometry.py").read_bytes() == FIXED.replace("\n", "\r\n").encode()
    _git(work, "config", "core.autocrlf", "false")
    (work / "geometry.py").write_text(BUGGY)
    _git(work, "add", "geometry.py")
    (work / "geometry.py").write_text("import math\n\n" + BUGGY)  # an unstaged change above the staged bug
    assert "unstaged changes" in _suggest(work, fixer, "--staged", "--apply").stderr
    partial = _suggest(work, fixer, "--staged", "--apply", "--allow-dirty")  # as the patchcoder-fix hook runs it
    assert partial.returncode == 1, partial.stderr
    assert (work / "geometry.py").read_text() == "import math\n\n" + FIXED
    assert _git(work, "show", ":geometry.py").stdout == BUGGY  # the index is left as it was
    (work / "geometry.py").write_text(BUGGY.replace("width + height", "width + height  # hm"))
    clash = _suggest(work, fixer, "--staged", "--apply", "--allow-dirty")  # the fixed line itself changed since
    assert clash.returncode == 2 and "differ in the work tree" in clash.stderr, clash.stderr


def test_apply_keeps_hard_links_and_mode(work, fixer, tmp_path_factory):
    copy = tmp_path_factory.mktemp("links") / "copy.py"
    os.link(work / "geometry.py", copy)
    os.chmod(copy, 0o754)
    inode = copy.stat().st_ino
    applied = _suggest(work, fixer, "--apply", "--allow-dirty")
    assert applied.returncode == 1, applied.stderr
    assert "written in place to keep its 2 hard links" in applied.stderr
    assert copy.read_text() == FIXED and (work / "geometry.py").stat().st_ino == inode
    assert copy.stat().st_mode & 0o777 == 0o754


def test_each_case_gets_a_message_that_names_it(work, fixer, tmp_path_factory):
    directory = _suggest(work.parent, fixer, work.name)
    assert directory.returncode == 2 and f"{work.name} is a directory" in directory.stderr
    bare = tmp_path_factory.mktemp("bare")
    _git(bare, "init", "-q", "--bare")
    in_bare = _suggest(bare, fixer)
    assert in_bare.returncode == 2 and "is a bare repository" in in_bare.stderr, in_bare.stderr
    (work / "main.go").write_text("package main\n\nfunc area(w, h int) int {\n\treturn w + h\n}\n")
    go = _suggest(work, fixer, "main.go", "--mode", "rank")
    assert go.returncode == 0 and "rank mode has no candidate rewrites for go" in go.stderr, go.stderr


def test_a_size_guard_and_a_progress_bar(work, fixer):
    (work / "long.py").write_text("".join(f"value_{i} = {i}\n" for i in range(30)))
    skipped = _suggest(work, fixer, "long.py", "--max-lines", "10")
    assert skipped.returncode == 0 and "long.py: skipped, 30 lines to read, more than --max-lines 10" in skipped.stderr
    shown = _suggest(work, fixer, "geometry.py", "--progress")
    assert shown.returncode == 1 and "repairing" in shown.stderr
    assert "repairing" not in _suggest(work, fixer, "geometry.py").stderr  # not a terminal, not asked


def test_a_file_with_a_merge_conflict_is_skipped_with_a_note_when_staged(work):
    """An unmerged entry has no staged content (its sides are in the index's conflict stages)."""
    _git(work, "add", "geometry.py")
    _git(work, "commit", "-qm", "buggy")
    _git(work, "checkout", "-qb", "other")
    (work / "geometry.py").write_text(FIXED)
    _git(work, "commit", "-qam", "fixed")
    _git(work, "checkout", "-q", "-")
    (work / "geometry.py").write_text(FIRST)
    _git(work, "commit", "-qam", "first again")
    assert subprocess.run(["git", "merge", "-q", "other"], cwd=work, capture_output=True).returncode != 0
    notes: list[str] = []
    found, _ = targets([], staged=True, cwd=work, notes=notes)
    assert [t.path for t in found] == []
    assert "geometry.py: skipped, unmerged (a merge conflict): resolve it and stage the result first" in notes
    found, _ = targets([], cwd=work, notes=[])  # the work tree's file, with its conflict markers, is text to read
    assert [t.path for t in found] == ["geometry.py"] and "<<<<<<<" in found[0].text


def test_a_named_file_that_is_not_code_is_skipped_and_a_script_is_read_by_its_shebang(tmp_path):
    from patchcoder.suggest import targets

    (tmp_path / "notes.txt").write_text("x = 1\n")
    (tmp_path / "tool").write_text("#!/usr/bin/env python3\n" + BUGGY)
    (tmp_path / "crlf-tool").write_bytes(("#!/usr/bin/python3\n" + BUGGY).replace("\n", "\r\n").encode())
    notes: list[str] = []
    found, _ = targets(["notes.txt", "tool", "crlf-tool"], cwd=tmp_path, notes=notes)
    assert [t.file.name for t in found] == ["tool", "crlf-tool"]
    assert notes == ["notes.txt: skipped, not a recognised programming language"]


def test_a_file_named_twice_is_patched_once(work, fixer):
    """Named twice, or also through a symbolic link, a file gets one diff (which `git apply` takes) and one write."""
    (work / "alias.py").symlink_to("geometry.py")
    shown = _suggest(work, fixer, "geometry.py", "./geometry.py", "alias.py")
    assert shown.returncode == 1 and shown.stdout.count("+++ b/geometry.py") == 1, shown.stdout
    subprocess.run(["git", "apply", "--check", "-"], input=shown.stdout, text=True, cwd=work, check=True,
                   capture_output=True)
    applied = _suggest(work, fixer, "geometry.py", "alias.py", "--apply", "--allow-dirty")
    assert applied.returncode == 1 and "applied 1 patch: geometry.py\n" in applied.stderr, applied.stderr


def test_a_file_whose_name_is_not_utf8_is_skipped_with_a_note(work, fixer):
    """The model reads a file's name: one of other bytes is skipped, and the other files still get their fix."""
    (work / os.fsdecode(b"caf\xe9.py")).write_bytes(BUGGY.encode())
    for args in ([], ["--staged"]):
        if args:
            _git(work, "add", ".")
        result = _suggest(work, fixer, *args)
        assert result.returncode == 1 and result.stdout.startswith("--- a/geometry.py\n"), result.stderr
        assert "skipped, its name is not UTF-8" in result.stderr
    named = _suggest(work, fixer, os.fsdecode(b"caf\xe9.py"))
    assert named.returncode == 0 and "skipped, its name is not UTF-8" in named.stderr, named.stderr


def test_a_read_only_file_is_not_written(work, fixer):
    (work / "geometry.py").chmod(0o444)
    refused = _suggest(work, fixer, "--apply", "--allow-dirty")
    assert refused.returncode == 2 and "geometry.py is read-only" in refused.stderr, refused.stderr
    assert (work / "geometry.py").read_text() == BUGGY and (work / "geometry.py").stat().st_mode & 0o777 == 0o444


def test_a_file_whose_mode_alone_changed_has_no_changes_to_look_at(work, fixer):
    """chmod +x changes no line: the file is not read whole (nor a commit of it blocked for code it did not touch)."""
    _git(work, "add", "geometry.py")
    _git(work, "commit", "-qm", "buggy")
    (work / "geometry.py").chmod(0o755)
    for args in ([], ["--staged"]):
        if args:
            _git(work, "add", "geometry.py")
        result = _suggest(work, fixer, *args)
        assert result.returncode == 0 and "no suggestion (0 files looked at)" in result.stderr, result.stderr


def test_an_untracked_virtual_environment_or_build_folder_is_not_read(work):
    """Untracked files are your changes, but not a whole virtual environment or build folder left out of
    .gitignore: each such folder gets one note (with what to do), and the rest is still looked at."""
    from patchcoder.suggest import MAX_UNTRACKED

    (work / ".venv" / "lib").mkdir(parents=True)
    (work / ".venv" / "pyvenv.cfg").write_text("home = /usr/bin\n")
    (work / ".venv" / "lib" / "six.py").write_text(BUGGY)
    (work / "build" / "lib").mkdir(parents=True)
    for i in range(MAX_UNTRACKED + 2):
        (work / "build" / "lib" / f"m{i}.py").write_text(f"x = {i}\n")
    (work / "build" / "README").write_text("not code\n")
    (work / "newpkg").mkdir()
    for i in range(3):
        (work / "newpkg" / f"n{i}.py").write_text(f"y = {i}\n")
    notes: list[str] = []
    found, _ = targets([], cwd=work, notes=notes)
    assert sorted(t.path for t in found) == ["geometry.py", "newpkg/n0.py", "newpkg/n1.py", "newpkg/n2.py"]
    assert (".venv/: skipped, an untracked virtual environment with 1 file of code: add it to .gitignore, or "
            "`git add -N` the files in it to look at") in notes
    assert f"build/: skipped, an untracked folder with {MAX_UNTRACKED + 2} files of code (more than {MAX_UNTRACKED} " \
           "to read): add it to .gitignore, or `git add -N` the files in it to look at" in notes
    _git(work, "add", "-N", "build/lib/m7.py")  # marked: the marked file is read, the rest still is not
    _git(work, "add", "newpkg/n0.py")  # a staged new file is not untracked (a diff from HEAD's tree calls it so)
    notes = []
    found, _ = targets([], cwd=work, notes=notes)
    assert sorted(t.path for t in found) == ["build/lib/m7.py", "geometry.py", "newpkg/n0.py", "newpkg/n1.py",
                                             "newpkg/n2.py"]
    assert any(f"build/: skipped, an untracked folder with {MAX_UNTRACKED + 1} files of code" in n for n in notes)
    (work / ".venv" / "pyvenv.cfg").unlink()  # no longer a virtual environment, and one file: read
    found, _ = targets([], cwd=work, notes=[])
    assert ".venv/lib/six.py" in [t.path for t in found]
    # a virtual environment inside a new folder of yours: only it is skipped, whatever its size
    (work / "tool" / "env" / "lib").mkdir(parents=True)
    (work / "tool" / "main.py").write_text("z = 1\n")
    (work / "tool" / "env" / "pyvenv.cfg").write_text("home = /usr/bin\n")
    for i in range(MAX_UNTRACKED + 5):
        (work / "tool" / "env" / "lib" / f"v{i}.py").write_text(f"v = {i}\n")
    notes = []
    found, _ = targets([], cwd=work, notes=notes)
    assert "tool/main.py" in [t.path for t in found] and not [t for t in found if t.path.startswith("tool/env/")]
    assert [n for n in notes if n.startswith("tool/")] == [
        f"tool/env/: skipped, an untracked virtual environment with {MAX_UNTRACKED + 5} files of code: add it to "
        ".gitignore, or `git add -N` the files in it to look at"]


def test_a_file_whose_lines_end_in_carriage_returns_alone_is_skipped_with_a_note(tmp_path):
    """git reads such a file as one line, and so would the model: a patch would rewrite all of it."""
    (tmp_path / "mac.py").write_bytes(BUGGY.replace("\n", "\r").encode())
    (tmp_path / "crlf.py").write_bytes(BUGGY.replace("\n", "\r\n").encode())
    (tmp_path / "one.py").write_bytes(b"x = 1\r")  # one line: nothing to mistake
    (tmp_path / "two.py").write_bytes(b"import os\rprint(os.sep)")
    (tmp_path / "mixed.py").write_bytes(b"a = 1\rb = 2\nc = 3\n")
    notes: list[str] = []
    found, _ = targets(["mac.py", "crlf.py", "one.py", "two.py", "mixed.py"], cwd=tmp_path, notes=notes)
    assert [t.file.name for t in found] == ["crlf.py", "one.py"]
    assert notes == [f"{name}: skipped, lines ending in \\r alone (classic Mac OS), which git reads as one; convert "
                     "them to \\n to look at it" for name in ("mac.py", "two.py", "mixed.py")]
