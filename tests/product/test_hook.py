"""The pre-commit hook with real `git commit`s: strict blocks a planted bug, warn lets it through, a
clean commit passes, and the hook's own failure never blocks. It checks what is being committed
(`commit -a`, `commit FILE`), installs where git runs hooks (linked worktrees, core.hooksPath), and no
process of ours imports code from the repository it checks."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

BUGGY = "def area(width, height):\n    return width + height\n"
FIRST = "def area(width, height):\n    return 0\n"


def _git(cwd, *args, check=True, env=None):
    env = {**os.environ, "GIT_AUTHOR_NAME": "A", "GIT_AUTHOR_EMAIL": "a@x", "GIT_COMMITTER_NAME": "A",
           "GIT_COMMITTER_EMAIL": "a@x", "HOME": str(cwd), **(env or {})}
    return subprocess.run(["git", *args], cwd=cwd, check=check, capture_output=True, text=True, env=env)


def _hook(cwd, *args, python=sys.executable, env=None):
    return subprocess.run([str(python), "-m", "patchcoder", "hook", *args], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, **(env or {})})


def _commits(repo) -> int:
    return int(_git(repo, "rev-list", "--count", "HEAD").stdout)


@pytest.fixture
def repo(tmp_path):
    _git(tmp_path, "init", "-q")
    (tmp_path / "geometry.py").write_text(FIRST)
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "-qm", "first")
    return tmp_path


def test_strict_blocks_a_planted_bug_and_warn_lets_it_through(repo, fixer):
    assert _hook(repo, "install", "--mode", "strict", "--checkpoint", str(fixer)).returncode == 0
    (repo / "geometry.py").write_text(BUGGY)
    _git(repo, "add", "geometry.py")
    blocked = _git(repo, "commit", "-m", "Compute the area", check=False)
    assert blocked.returncode != 0
    assert "+    return width * height" in blocked.stderr and "blocked" in blocked.stderr
    assert _git(repo, "rev-list", "--count", "HEAD").stdout.strip() == "1"

    assert _hook(repo, "install", "--mode", "warn", "--checkpoint", str(fixer)).returncode == 0
    warned = _git(repo, "commit", "-m", "Compute the area", check=False)
    assert warned.returncode == 0, warned.stderr
    assert "patchcoder suggests for geometry.py" in warned.stderr
    assert _git(repo, "rev-list", "--count", "HEAD").stdout.strip() == "2"


def test_a_clean_commit_passes_in_strict_mode(repo, fixer):
    _hook(repo, "install", "--mode", "strict", "--checkpoint", str(fixer))
    (repo / "notes.txt").write_text("not code\n")
    _git(repo, "add", "notes.txt")
    assert _git(repo, "commit", "-m", "Add notes", check=False).returncode == 0


def test_the_hooks_own_failure_or_timeout_never_blocks(repo, tmp_path, fixer):
    (repo / "geometry.py").write_text(BUGGY)
    _git(repo, "add", "geometry.py")
    _hook(repo, "install", "--mode", "strict", "--checkpoint", str(tmp_path / "no-model"))
    broken = _git(repo, "commit", "-m", "With a broken model", check=False)
    assert broken.returncode == 0 and "no check" in broken.stderr
    (repo / "geometry.py").write_text(BUGGY + "\n")
    _git(repo, "add", "geometry.py")
    _hook(repo, "install", "--mode", "strict", "--timeout", "0.01", "--checkpoint", str(fixer))
    slow = _git(repo, "commit", "-m", "Too slow to check", check=False)
    assert slow.returncode == 0 and "longer than 0.01 s" in slow.stderr


def test_install_chains_an_existing_hook_and_uninstall_puts_it_back(repo, fixer):
    hooks = repo / ".git" / "hooks"
    (hooks / "pre-commit").write_text("#!/bin/sh\necho existing-hook-ran >&2\n")
    (hooks / "pre-commit").chmod(0o755)
    assert _hook(repo, "install", "--checkpoint", str(fixer)).returncode == 0
    assert (hooks / "pre-commit.before-patchcoder").exists()
    (repo / "notes.txt").write_text("x\n")
    _git(repo, "add", "notes.txt")
    committed = _git(repo, "commit", "-m", "Notes", check=False)
    assert committed.returncode == 0 and "existing-hook-ran" in committed.stderr
    assert _hook(repo, "uninstall").returncode == 0
    assert (hooks / "pre-commit").read_text() == "#!/bin/sh\necho existing-hook-ran >&2\n"
    assert not (hooks / "pre-commit.before-patchcoder").exists()
    outside = _hook(repo.parent, "install")
    assert outside.returncode == 2 and "not inside a git work tree" in outside.stderr


def test_install_keeps_a_hook_that_is_a_symbolic_link_and_writes_nothing_where_it_points(repo, tmp_path_factory):
    """A pre-commit that is a symbolic link (here a broken one) is someone else's: chained, never written through."""
    hooks, target = repo / ".git" / "hooks", tmp_path_factory.mktemp("elsewhere") / "shared-hook"
    (hooks / "pre-commit").symlink_to(target)
    installed = _hook(repo, "install")
    assert not target.exists() and not (hooks / "pre-commit").is_symlink()
    assert installed.returncode == 0 and "kept as pre-commit.before-patchcoder" in installed.stderr
    assert os.readlink(hooks / "pre-commit.before-patchcoder") == str(target)
    assert _hook(repo, "uninstall").returncode == 0
    assert os.readlink(hooks / "pre-commit") == str(target) and not target.exists()


def test_a_threshold_of_minus_infinity_is_installed_as_one_argument(repo, fixer):
    """`--min-score -inf` after a space reads as an option to argparse: the hook would never check."""
    assert _hook(repo, "install", "--mode", "strict", "--min-score=-inf", "--checkpoint", str(fixer)).returncode == 0
    (repo / "geometry.py").write_text(BUGGY)
    _git(repo, "add", "geometry.py")
    blocked = _git(repo, "commit", "-m", "Compute the area", check=False)
    assert blocked.returncode != 0 and "blocked" in blocked.stderr and "--min-score=-inf" in blocked.stderr
    assert _commits(repo) == 1


def test_pre_commit_framework_manifest():

    import yaml

    hooks = yaml.safe_load((Path(__file__).resolve().parents[2] / ".pre-commit-hooks.yaml").read_text())
    assert {h["id"] for h in hooks} == {"patchcoder-check", "patchcoder-fix"}
    assert all(h["require_serial"] and not h["pass_filenames"] for h in hooks)


def test_the_models_threshold_hides_a_weak_suggestion_and_the_hooks_own_replaces_it(repo, fixer, tmp_path):
    """A model folder's calibrated thresholds apply to the hook's check (here its kind of edit's: min_score
    alone would show the fix); the hook's --min-score, even a lower one, replaces them."""
    import json
    import shutil

    model = tmp_path / "calibrated"
    shutil.copytree(fixer, model)
    # no script scores above 0
    (model / "decoding.json").write_text(json.dumps({"min_score": -100.0,
                                                     "min_score_by_edit": {"change_binary_operator": 0.0}}))
    (repo / "geometry.py").write_text(BUGGY)
    _git(repo, "add", "geometry.py")
    _hook(repo, "install", "--mode", "strict", "--min-score", "-100", "--checkpoint", str(model))
    blocked = _git(repo, "commit", "-m", "Compute the area", check=False)
    assert blocked.returncode != 0 and "blocked" in blocked.stderr
    _hook(repo, "install", "--mode", "strict", "--checkpoint", str(model))
    quiet = _git(repo, "commit", "-m", "Compute the area", check=False)
    assert quiet.returncode == 0 and "patchcoder suggests" not in quiet.stderr


# Modules our processes import (the standard library's and our dependencies'), each planted in the checked
# repository as a file that leaves a mark when imported.
SHADOWS = ["json", "re", "argparse", "shlex", "subprocess", "types", "runpy", "rich", "torch", "numpy", "pygit2",
           "yaml", "safetensors", "tokenizers", "tree_sitter"]


def test_no_process_imports_code_from_the_checked_repository(repo, fixer, tmp_path_factory):
    """Both hook processes, `patchcoder hook run` (pre-commit's entry) and `python -m patchcoder` import nothing
    from the repository, nor from the folder they run in."""
    marks = tmp_path_factory.mktemp("marks")
    (repo / "pkg").mkdir()
    for folder in (repo, repo / "pkg"):
        for name in SHADOWS:
            (folder / f"{name}.py").write_text(f"open({str(marks / name)!r}, 'w').close()\n")
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "Modules named like libraries")
    installed = _hook(repo, "install", "--mode", "strict", "--checkpoint", str(fixer))
    (repo / "geometry.py").write_text(BUGGY)
    _git(repo, "add", "geometry.py")
    committed = _git(repo, "commit", "-m", "Compute the area", check=False)
    console_script = Path(sys.executable).with_name("patchcoder")
    framework = subprocess.run([str(console_script), "hook", "run", "--mode", "strict", "--checkpoint", str(fixer)],
                               cwd=repo, capture_output=True, text=True)
    suggested = subprocess.run([sys.executable, "-m", "patchcoder", "suggest", "--checkpoint", str(fixer),
                                "../geometry.py"], cwd=repo / "pkg", capture_output=True, text=True)
    assert sorted(p.name for p in marks.iterdir()) == []
    assert installed.returncode == 0, installed.stderr
    assert committed.returncode != 0 and "blocked" in committed.stderr  # the check did run
    assert framework.returncode == 1 and "blocked" in framework.stderr, framework.stderr
    assert suggested.returncode == 1 and "width * height" in suggested.stdout, suggested.stderr


@pytest.mark.parametrize("mode", ["warn", "strict"])
def test_a_patchcoder_that_does_not_load_lets_the_commit_through_with_one_line(repo, tmp_path_factory, mode):
    """Also in strict mode: the hook cannot tell a bug from its own failure, and never blocks for the latter."""
    broken = tmp_path_factory.mktemp("broken")
    (broken / "patchcoder").mkdir()
    (broken / "patchcoder" / "__init__.py").write_text("raise ImportError('a broken install')\n")
    assert _hook(repo, "install", "--mode", mode).returncode == 0
    (repo / "geometry.py").write_text(BUGGY)
    _git(repo, "add", "geometry.py")
    committed = _git(repo, "commit", "-m", "Compute the area", check=False, env={"PYTHONPATH": str(broken)})
    assert committed.returncode == 0, committed.stderr
    assert _commits(repo) == 2
    note = committed.stderr.strip()
    assert "\n" not in note and "no check" in note and "a broken install" in note


def test_a_hook_whose_python_was_moved_lets_the_commit_through_with_one_line(repo, tmp_path_factory):
    import site
    import venv

    envs = tmp_path_factory.mktemp("envs")
    venv.create(envs / "venv", with_pip=False, symlinks=True)
    python = envs / "venv" / "bin" / "python"
    packages = next((envs / "venv" / "lib").glob("python*/site-packages"))
    (packages / "patchcoder-under-test.pth").write_text(  # this interpreter's packages, patchcoder included
        "".join(f"import site; site.addsitedir({d!r})\n" for d in site.getsitepackages()))
    assert _hook(repo, "install", "--mode", "strict", "--checkpoint", str(envs / "no-model"), python=python).returncode == 0
    (repo / "geometry.py").write_text(BUGGY)
    _git(repo, "add", "geometry.py")
    ran = _git(repo, "commit", "-m", "Compute the area", check=False)
    assert ran.returncode == 0 and "no check" in ran.stderr  # the hook ran, with the virtual environment's python
    (envs / "venv").rename(envs / "moved")
    (repo / "geometry.py").write_text(BUGGY + "\n")
    _git(repo, "add", "geometry.py")
    moved = _git(repo, "commit", "-m", "Add a line", check=False)
    assert moved.returncode == 0, moved.stderr
    assert _commits(repo) == 3
    note = moved.stderr.strip()
    assert "\n" not in note and "no check" in note and str(python) in note


@pytest.mark.parametrize("way", ["add then commit", "commit -a", "commit FILE", "partly staged"])
def test_strict_mode_blocks_what_is_committed_however_it_is_staged(repo, fixer, way):
    """git commit -a and git commit FILE stage into a temporary index, named by $GIT_INDEX_FILE. Whichever way,
    the advice of the blocked commit, followed as written, applies the fix and the commit goes through."""
    _hook(repo, "install", "--mode", "strict", "--checkpoint", str(fixer))
    (repo / "geometry.py").write_text(BUGGY)
    if way in ("add then commit", "partly staged"):
        _git(repo, "add", "geometry.py")
    if way == "partly staged":  # an unstaged change besides the staged bug
        (repo / "geometry.py").write_text("import math\n\n" + BUGGY)
    command = {"commit -a": ["commit", "-a"], "commit FILE": ["commit", "geometry.py"]}.get(way, ["commit"])
    blocked = _git(repo, *command, "-m", "Compute the area", check=False)
    assert blocked.returncode != 0 and "+    return width * height" in blocked.stderr
    assert _commits(repo) == 1
    advice = blocked.stderr.split("commit blocked")[1]
    steps = advice.split("`")[1::2]  # the commands, in the order given
    assert any(step.startswith("patchcoder suggest ") and f"--checkpoint {fixer}" in step for step in steps), steps
    for step in steps:
        words = shlex.split(step)
        if words[0] == "git":
            _git(repo, *words[1:])
            continue
        applied = subprocess.run([sys.executable, "-m", *words], cwd=repo, capture_output=True, text=True)
        assert applied.returncode == 1 and "applied 1 patch: geometry.py" in applied.stderr, (step, applied.stderr)
    again = _git(repo, *command, "-m", "Compute the area", check=False)
    assert again.returncode == 0, again.stderr
    before = "import math\n\n" if way == "partly staged" else ""
    assert _git(repo, "show", "HEAD:geometry.py").stdout == before + BUGGY.replace("+", "*")


def test_strict_mode_ignores_a_staged_file_left_out_of_the_commit(repo, fixer):
    _hook(repo, "install", "--mode", "strict", "--checkpoint", str(fixer))
    (repo / "geometry.py").write_text(BUGGY)
    (repo / "notes.txt").write_text("not code\n")
    _git(repo, "add", "geometry.py", "notes.txt")
    committed = _git(repo, "commit", "-m", "Add notes", "notes.txt", check=False)
    assert committed.returncode == 0, committed.stderr
    assert _git(repo, "show", "--name-only", "--format=", "HEAD").stdout.split() == ["notes.txt"]


def test_install_in_a_linked_worktree_goes_where_git_runs_hooks(repo, tmp_path_factory):
    """git runs the main repository's hooks folder for every worktree (`git rev-parse --git-path hooks`).
    A missing model folder makes the hook say "no check": proof that git ran it."""
    linked = tmp_path_factory.mktemp("linked") / "worktree"
    _git(repo, "worktree", "add", "-q", str(linked))
    installed = _hook(linked, "install", "--mode", "strict", "--checkpoint", str(linked / "no-model"))
    assert installed.returncode == 0, installed.stderr
    assert (repo / ".git" / "hooks" / "pre-commit").exists()
    (linked / "geometry.py").write_text(BUGGY)
    _git(linked, "add", "geometry.py")
    committed = _git(linked, "commit", "-m", "Compute the area", check=False)
    assert committed.returncode == 0 and "no check" in committed.stderr
    assert _hook(linked, "uninstall").returncode == 0
    assert not (repo / ".git" / "hooks" / "pre-commit").exists()


def test_core_hooks_path_is_resolved_as_git_does(repo, tmp_path_factory):
    """`~/hooks` is expanded (never a literal `./~/hooks`); a relative path is relative to the work tree's root."""
    home = tmp_path_factory.mktemp("home")
    _git(repo, "config", "core.hooksPath", "~/hooks")
    installed = _hook(repo, "install", "--checkpoint", str(home / "no-model"), env={"HOME": str(home)})
    assert installed.returncode == 0, installed.stderr
    assert (home / "hooks" / "pre-commit").exists() and not (repo / "~").exists()
    (repo / "geometry.py").write_text(BUGGY)
    _git(repo, "add", "geometry.py")
    committed = _git(repo, "commit", "-m", "Compute the area", check=False, env={"HOME": str(home)})
    assert committed.returncode == 0 and "no check" in committed.stderr  # git ran it

    _git(repo, "config", "core.hooksPath", "githooks")
    (repo / "sub").mkdir()
    assert _hook(repo / "sub", "install").returncode == 0
    assert (repo / "githooks" / "pre-commit").exists() and not (repo / "sub" / "githooks").exists()


def test_a_file_of_code_left_unchecked_is_named_and_files_with_no_code_are_not(repo, fixer):
    """suggest skips, with a note, a file it cannot read; the hook passes that on when the file is code (here: not
    UTF-8, and longer than suggest reads) and keeps quiet about files with no code to check (text, a link, an
    image), which every commit would otherwise hear about."""
    from patchcoder.suggest import MAX_LINES

    (repo / "latin.py").write_bytes("name = 'café'\n".encode("latin-1"))
    (repo / "long.py").write_text("".join(f"value_{i} = {i}\n" for i in range(MAX_LINES + 1)))
    (repo / "notes.txt").write_text("not code\n")
    (repo / "logo.png").write_bytes(b"\x89PNG\0\0")
    (repo / "alias.py").symlink_to("geometry.py")
    _git(repo, "add", ".")
    _hook(repo, "install", "--mode", "strict", "--checkpoint", str(fixer))
    done = _git(repo, "commit", "-m", "Add files", check=False, env={"FORCE_COLOR": "1"})  # styled notes too
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("patchcoder hook: ")]
    assert lines == ["patchcoder hook: latin.py: skipped, not UTF-8 text",
                     f"patchcoder hook: long.py: skipped, {MAX_LINES + 1:,} changed lines to read, more than --max-lines "
                     f"{MAX_LINES:,}"], done.stderr
