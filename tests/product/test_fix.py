"""`patchcoder fix --test CMD` end to end on real projects with a planted bug, and the API's `check` contract,
with a real model that learned one fix (`area`: `width + height` -> `width * height`)."""

from __future__ import annotations

import hashlib
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from patchcoder.ground.errors import PatchcoderError
from patchcoder.repair import Repairer
from tests.conftest import as_a_terminal_starts_it

BUGGY = "def area(width, height):\n    return width + height\n"
FIXED = "def area(width, height):\n    return width * height\n"
PYTEST = f"{sys.executable} -m pytest -q -p no:cacheprovider"
TEST_AREA = "from geometry import area\n\n\ndef test_area():\n    assert area(2, 3) == 6 and area(4, 5) == 20\n"
# The fix (`+` -> `*`) is the fixer model's generated script; beam search makes it a candidate.
BEAM = ("--beam", "2")


def project(root: Path, tests: str = TEST_AREA, code: str = BUGGY) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "geometry.py").write_text(code)
    (root / "test_geometry.py").write_text(tests)
    return root


def digest(root: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and ".pytest_cache" not in path.parts:
            h.update(str(path.relative_to(root)).encode() + path.read_bytes())
    return h.hexdigest()


def _fix(cwd, fixer, *args, env=None, **kwargs):
    return subprocess.run([sys.executable, "-m", "patchcoder", "fix", "--checkpoint", str(fixer), *args],
                          cwd=cwd, capture_output=True, text=True, env={**os.environ, **(env or {})}, **kwargs)


def test_the_fix_is_found_shown_and_the_tree_left_alone(tmp_path, fixer):
    root = project(tmp_path / "proj")
    before = digest(root)
    result = _fix(root, fixer, "--test", PYTEST, *BEAM)
    assert result.returncode == 1, result.stderr
    assert result.stdout.startswith("--- a/geometry.py\n+++ b/geometry.py\n")
    assert "+    return width * height" in result.stdout
    assert "fault localisation: coverage" in result.stderr
    assert digest(root) == before  # shown, not written


def test_json_jobs_and_apply(tmp_path, fixer):
    root = project(tmp_path / "proj")
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    result = _fix(root, fixer, "--test", PYTEST, "--json", "--jobs", "2", "--apply", *BEAM, env={"TMPDIR": str(scratch)})
    assert result.returncode == 1, result.stderr
    out = json.loads(result.stdout)
    assert out["status"] == "fixed" and out["tries"] >= 1 and out["localisation"]["method"] == "coverage"
    (found,) = out["fixes"]
    assert found["path"] == "geometry.py" and found["sstub"] == "change_binary_operator"
    assert found["kind"] == "change_binary_operator"  # its kind of edit, as suggest reports it
    assert (root / "geometry.py").read_text() == FIXED
    assert list(scratch.iterdir()) == []  # every scratch copy removed
    again = _fix(root, fixer, "--test", PYTEST, "--json")
    assert again.returncode == 0 and json.loads(again.stdout)["status"] == "nothing_to_fix"


def test_a_candidate_that_loops_forever_is_killed_and_the_search_goes_on(tmp_path, fixer):
    # test_square fails on the buggy tree too, so it is among the tests each candidate runs first
    tests = TEST_AREA + ("\n\ndef test_square():\n    while area(2, 2) == 0:  # `width - height` loops forever\n"
                         "        pass\n    assert area(3, 3) == 9\n")
    root = project(tmp_path / "proj", tests)
    result = _fix(root, fixer, "--test", PYTEST, "--json", "--all", "--timeout", "20", "--max-tries", "40", *BEAM)
    assert result.returncode == 1, result.stderr
    out = json.loads(result.stdout)
    assert out["timeouts"] >= 1
    assert any("width * height" in f["diff"] for f in out["fixes"])


def test_a_flaky_test_is_reported_and_nothing_is_tried(tmp_path, fixer):
    flag = tmp_path / "ran-once"
    tests = ("import os, pathlib\n\n\ndef test_flaky():\n    flag = pathlib.Path(os.environ['FLAG'])\n"
             "    if not flag.exists():\n        flag.touch()\n        assert False\n")
    root = project(tmp_path / "proj", tests)
    result = _fix(root, fixer, "--test", PYTEST, "--json", env={"FLAG": str(flag)})
    assert result.returncode == 2, result.stderr
    assert json.loads(result.stdout)["status"] == "flaky" and json.loads(result.stdout)["tries"] == 0
    assert (root / "geometry.py").read_text() == BUGGY


def test_a_test_command_that_is_not_python_falls_back_to_the_paths(tmp_path, fixer):
    root = project(tmp_path / "proj")
    (root / "check.sh").write_text("grep -q 'width \\* height' geometry.py\n")
    result = _fix(root, fixer, "geometry.py", "--test", "sh check.sh", "--json", *BEAM)
    assert result.returncode == 1, result.stderr
    out = json.loads(result.stdout)
    assert out["localisation"]["method"] == "paths" and "width * height" in out["fixes"][0]["diff"]
    nothing = _fix(root, fixer, "--test", "sh check.sh")  # no coverage, no git, no PATH: said clearly
    assert nothing.returncode == 2 and "name the files to search" in nothing.stderr


@pytest.mark.parametrize("signum, word", [(signal.SIGINT, "interrupted"), (signal.SIGTERM, "terminated")],
                         ids=["ctrl-c", "sigterm"])
def test_ctrl_c_leaves_the_tree_as_it_was_and_no_scratch_copy(tmp_path, fixer, signum, word):
    # every test run takes a while, so the search is still going when Ctrl-C comes
    tests = TEST_AREA.replace("def test_area():\n", "def test_area():\n    import time\n    time.sleep(1.5)\n")
    root = project(tmp_path / "proj", tests)
    before = digest(root)
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    proc = subprocess.Popen([sys.executable, "-m", "patchcoder", "fix", "--checkpoint", str(fixer), "--test",
                             PYTEST + "; exit 1", "--no-progress", "--max-tries", "50"],
                            cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "TMPDIR": str(scratch)}, preexec_fn=as_a_terminal_starts_it)
    deadline = time.time() + 120
    while time.time() < deadline and not any(p.name.startswith("patchcoder-fix-") for p in scratch.iterdir()):
        time.sleep(0.1)
    time.sleep(4)  # baseline, localisation, then into the search
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signum and word in err, err
    assert digest(root) == before
    assert list(scratch.iterdir()) == []


# ---- the Python API: per-item checks


def test_check_gets_the_first_passing_candidate_and_counts_its_calls(fixer):
    repairer = Repairer.load(fixer)
    seen = []

    def check(code: str) -> bool:
        seen.append(code)
        return "width * height" in code

    (patch,) = repairer.repair([{"code": BUGGY, "path": "geometry.py", "check": check}], max_checks=20, beam=2)
    assert patch is not None and patch.checked and patch.checks == len(seen) <= 20
    assert patch.apply(BUGGY) == FIXED and seen[-1] == FIXED
    assert all(compile(code, "x", "exec") for code in seen)  # never called on a candidate that does not parse


def test_check_limits_failures_and_exceptions(fixer):
    repairer = Repairer.load(fixer)
    calls = {"never": 0, "boom": 0}

    def never(code: str) -> bool:
        calls["never"] += 1
        return False

    def boom(code: str) -> bool:
        calls["boom"] += 1
        raise RuntimeError("the check itself fails")

    patches = repairer.repair([{"code": BUGGY, "path": "geometry.py", "check": never},
                               {"code": BUGGY, "path": "geometry.py", "check": boom},
                               {"code": BUGGY, "path": "geometry.py"}], max_checks=3)
    assert patches[0] is None and patches[1] is None and calls == {"never": 3, "boom": 3}
    assert patches[2] is not None and not patches[2].checked  # an item without a check: as before
    with pytest.raises(PatchcoderError):
        repairer.repair([{"code": BUGGY, "check": "not callable"}])


def test_repairer_fix_runs_the_whole_loop_from_python(tmp_path, fixer):
    root = project(tmp_path / "proj")
    result = Repairer.load(fixer).fix(root, test=PYTEST, beam=2)
    assert result.status == "fixed" and result.exit_code == 1
    assert "width * height" in result.fixes[0].diff
    assert (root / "geometry.py").read_text() == BUGGY


def test_the_order_key_is_the_mean_per_token_plus_twice_log_ochiai():
    from patchcoder.fix import WEIGHT, order_key
    from patchcoder.repair import Patch

    short = Patch(None, "x", None, score=-2.0, logp=-4.0)  # 2 tokens, each unlikely
    long = Patch(None, "x", None, score=-0.5, logp=-10.0)  # 20 tokens, each likely: tried first
    assert order_key(long, 1.0) > order_key(short, 1.0)
    assert WEIGHT == 2.0 and order_key(long, 0.5) == pytest.approx(-0.5 + 2 * math.log(0.5))
    assert order_key(long, 1.0) > order_key(long, 0.5)  # the more suspicious line first


def test_a_test_command_that_cannot_run_is_a_usage_error_before_any_search(tmp_path, fixer):
    root = project(tmp_path / "proj")
    missing = _fix(root, fixer, "--test", "no_such_command_xyz --flag", "--no-progress")
    assert missing.returncode == 2, missing.stderr
    line = missing.stderr.strip()
    assert "\n" not in line and "the test command could not run" in line and "not found" in line, line
    assert "tried" not in line.replace("nothing was tried", "")  # no search ran
    (root / "run.sh").write_text("pytest -q\n")  # not executable: 126
    assert _fix(root, fixer, "--test", "./run.sh", "--no-progress").returncode == 2
    # a test that exits 127 itself, without the shell's words, is an ordinary failure: the search runs
    (root / "test_geometry.py").write_text(TEST_AREA.replace("def test_area():\n", "def test_area():\n"
                                           "    import sys\n    if area(2, 3) != 6:\n        sys.exit(127)\n"))
    own = _fix(root, fixer, "--test", "python -c 'import test_geometry as t; t.test_area()'", *BEAM, "--no-progress")
    assert own.returncode == 1 and "+    return width * height" in own.stdout, own.stderr


@pytest.mark.parametrize("option, value", [("order", "bogus"), ("jobs", 0), ("max_tries", -1), ("beam", 0),
                                           ("timeout", 0.0), ("budget", -5.0), ("suspects", 1.5), ("weight", -1.0),
                                           ("paths", "geometry.py"), ("paths", [None]), ("include_tests", "no"),
                                           ("full", 3)])
def test_repairer_fix_refuses_a_bad_setting_before_running_anything(tmp_path, fixer, option, value):
    root = project(tmp_path / "proj", tests="import pathlib\npathlib.Path('ran').write_text('1')\n")
    with pytest.raises(PatchcoderError, match=f"^{option} must be"):
        Repairer.load(fixer).fix(root, test="python test_geometry.py", **{option: value})
    assert not (root / "ran").exists()  # the test command never ran
    with pytest.raises(PatchcoderError, match="^test must be a shell command"):
        Repairer.load(fixer).fix(root, test="  ")


def test_the_time_out_applies_to_the_first_run_too(tmp_path, fixer):
    root = project(tmp_path / "proj")
    started = time.perf_counter()
    with pytest.raises(PatchcoderError, match=r"did not finish within the time-out \(1 s\) .*nothing was tried"):
        Repairer.load(fixer).fix(root, test="sleep 60", timeout=1.0)
    assert time.perf_counter() - started < 30
    with pytest.raises(PatchcoderError, match=r"within the budget \(1 s\)"):  # the smaller of the two
        Repairer.load(fixer).fix(root, test="sleep 60", timeout=30.0, budget=1.0)


def test_a_pytest_run_that_tests_nothing_is_an_error_before_any_search(tmp_path, fixer):
    root = project(tmp_path / "proj")
    (root / "test_geometry.py").unlink()  # no test at all
    repairer = Repairer.load(fixer)
    with pytest.raises(PatchcoderError, match=r"^the test command ran no tests \(no tests ran in .*nothing was tried"):
        repairer.fix(root, test=PYTEST, paths=["geometry.py"])
    project(root)
    with pytest.raises(PatchcoderError, match=r"ran no tests \(1 deselected in "):
        repairer.fix(root, test=PYTEST + " -k nothing", paths=["geometry.py"])
    with pytest.raises(PatchcoderError, match=r"could not run \(ERROR: file or directory not found: nosuch.py\)"):
        repairer.fix(root, test=PYTEST + " nosuch.py", paths=["geometry.py"])


def test_tests_that_cannot_import_a_module_missing_from_the_environment_are_an_error_before_any_search(tmp_path, fixer):
    """A test module importing what is not installed stops pytest while collecting: no rewrite of the code can
    install it. A module of the tree's own that fails to import is left to the search."""
    root = project(tmp_path / "proj")
    (root / "test_extra.py").write_text("import nosuchmodule_xyz.sub\n\n\ndef test_x():\n    pass\n")
    repairer = Repairer.load(fixer)
    with pytest.raises(PatchcoderError, match=r"^the tests cannot import nosuchmodule_xyz, which is not in the "
                                              r"tree: install it where the test command runs; nothing was tried"):
        repairer.fix(root, test=PYTEST, paths=["geometry.py"])
    (root / "test_extra.py").write_text("import geometry.sub\n")  # the tree's own module: not an install to ask for
    result = repairer.fix(root, test=PYTEST + " test_geometry.py test_extra.py", paths=["geometry.py"])
    assert result.status == "not_found"  # searched (in vain), not refused


def test_a_bug_that_sends_the_projects_own_code_to_a_missing_module_is_searched_and_fixed(tmp_path, fixer):
    """The missing module is imported by the project's code, not a test: a rewrite (here of a version check)
    can be the fix."""
    root = tmp_path / "proj"
    root.mkdir()
    (root / "compat.py").write_text("import sys\n\nif sys.version_info >= (3, 0):\n    import nosuchmodule_xyz as impl\n"
                                    "else:\n    import json as impl\n\n\ndef load(text):\n    return impl.loads(text)\n")
    (root / "test_compat.py").write_text("from compat import load\n\n\ndef test_load():\n    assert load('[1]') == [1]\n")
    result = Repairer.load(fixer).fix(root, test=PYTEST, paths=["compat.py"])
    assert result.status == "fixed", result.message
    assert "-if sys.version_info >= (3, 0):\n+if " in result.fixes[0].diff  # e.g. `<`, or `not` before it
