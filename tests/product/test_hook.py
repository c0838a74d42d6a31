"""The pre-commit hook with real `git commit`s: strict blocks a planted bug, warn lets it through, a
clean commit passes, and the hook's own failure never blocks."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

BUGGY = "def area(width, height):\n    return width + height\n"
FIRST = "def area(width, height):\n    return 0\n"


def _git(cwd, *args, check=True):
    env = {**os.environ, "GIT_AUTHOR_NAME": "A", "GIT_AUTHOR_EMAIL": "a@x", "GIT_COMMITTER_NAME": "A",
           "GIT_COMMITTER_EMAIL": "a@x", "HOME": str(cwd)}
    return subprocess.run(["git", *args], cwd=cwd, check=check, capture_output=True, text=True, env=env)


def _hook(cwd, *args):
    return subprocess.run([sys.executable, "-m", "patchcoder", "hook", *args], cwd=cwd, capture_output=True, text=True)


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


def test_pre_commit_framework_manifest():
    from pathlib import Path

    import yaml

    hooks = yaml.safe_load((Path(__file__).resolve().parents[2] / ".pre-commit-hooks.yaml").read_text())
    assert {h["id"] for h in hooks} == {"patchcoder-check", "patchcoder-fix"}
    assert all(h["require_serial"] and not h["pass_filenames"] for h in hooks)


def test_the_models_threshold_hides_a_weak_suggestion_and_the_hooks_own_replaces_it(repo, fixer, tmp_path):
    """A model folder's calibrated min_score applies to the hook's check; the hook's --min-score, even
    a lower one, replaces it."""
    import json
    import shutil

    model = tmp_path / "calibrated"
    shutil.copytree(fixer, model)
    (model / "decoding.json").write_text(json.dumps({"min_score": 0.0}))  # no script scores above 0
    (repo / "geometry.py").write_text(BUGGY)
    _git(repo, "add", "geometry.py")
    _hook(repo, "install", "--mode", "strict", "--min-score", "-100", "--checkpoint", str(model))
    blocked = _git(repo, "commit", "-m", "Compute the area", check=False)
    assert blocked.returncode != 0 and "blocked" in blocked.stderr
    _hook(repo, "install", "--mode", "strict", "--checkpoint", str(model))
    quiet = _git(repo, "commit", "-m", "Compute the area", check=False)
    assert quiet.returncode == 0 and "patchcoder suggests" not in quiet.stderr
