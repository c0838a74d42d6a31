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
    assert item["path"] == "geometry.py" and item["sstub"] == "change_binary_operator"
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


def test_usage_errors(work, fixer, tmp_path):
    assert _suggest(work, fixer, "missing.py").returncode == 2
    bad_rev = _suggest(work, fixer, "--rev", "nope")
    assert bad_rev.returncode == 2 and "names no commit" in bad_rev.stderr
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
    """The shipped model fixes the planted bug alike (same fix, same score) in LF, CRLF and tab-indented
    files; the diff and the written file keep the file's line endings and tabs."""
    lf = PLANTED.read_text()
    bug, fix = "if not os.path.exists(path):", "if os.path.exists(path):"
    layouts = {"lf": lf, "crlf": lf.replace("\n", "\r\n"), "tabs": lf.replace("    ", "\t")}
    patches = Repairer.load().repair([{"code": code, "path": "planted_bug.py"} for code in layouts.values()])
    assert len({round(p.score, 6) for p in patches}) == 1
    _git(tmp_path, "init", "-q")
    for (name, code), patch in zip(layouts.items(), patches, strict=True):
        assert patch.apply(code) == code.replace(bug, fix), name
        (tmp_path / name).mkdir()
        (tmp_path / name / "planted_bug.py").write_bytes(code.encode())
        subprocess.run(["git", "apply", "--check", f"--directory={name}", "-"], input=patch.diff.encode(),
                       cwd=tmp_path, check=True, capture_output=True)
    crlf = tmp_path / "crlf" / "planted_bug.py"
    applied = subprocess.run([sys.executable, "-m", "patchcoder", "suggest", str(crlf), "--apply", "--allow-dirty"],
                             cwd=tmp_path, capture_output=True, text=True)
    assert applied.returncode == 1, applied.stderr
    assert crlf.read_bytes() == layouts["crlf"].replace(bug, fix).encode()
