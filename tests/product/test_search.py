"""The validation search: candidates tried in order in scratch copies, with time-outs, limits and jobs."""

from __future__ import annotations

import hashlib
import sys

import pytest

from patchcoder.localize import coverage_spectrum, only_tests
from patchcoder.scratch import ScratchTree
from patchcoder.search import Candidate, search, try_candidate

sys.path.insert(0, __import__("os").path.dirname(__file__))
from test_localize import PYTEST, STATS, TESTS, digest, make_project  # noqa: E402

WRONG = STATS.replace("total -= x", "total *= x")
LOOPS = STATS.replace("total -= x", "total -= x\n        while True:\n            pass")
RIGHT = STATS.replace("total -= x", "total += x")
ALSO_RIGHT = STATS.replace("total -= x", "total = total + x")


def candidates(*texts):
    return [Candidate("pkg/stats.py", text, -k) for k, text in enumerate(texts)]


def test_the_first_passing_candidate_in_order_wins_and_a_hanging_one_is_killed(tmp_path):
    root = make_project(tmp_path / "proj")
    before = digest(root)
    trees = [ScratchTree(root), ScratchTree(root)]
    try:
        result = search(candidates(WRONG, LOOPS, RIGHT, ALSO_RIGHT), trees, PYTEST, timeout=20)
        for tree in trees:  # every copy is back to the original text
            assert (tree.root / "pkg" / "stats.py").read_text() == STATS
    finally:
        for tree in trees:
            tree.remove()
    assert result.stopped == "found" and [t.order for t in result.fixes] == [2]
    assert result.fixes[0].candidate.text == RIGHT
    assert result.timeouts == 1 and 3 <= result.tries <= 4
    assert digest(root) == before


def test_limits_all_and_a_wider_suite(tmp_path):
    root = make_project(tmp_path / "proj")
    with ScratchTree(root) as tree:
        none = search(candidates(WRONG, RIGHT), [tree], PYTEST, timeout=30, max_tries=1)
        assert (none.fixes, none.tries, none.stopped) == ([], 1, "max_tries")
        every = search(candidates(RIGHT, WRONG, ALSO_RIGHT), [tree], PYTEST, timeout=30, stop_first=False)
        assert [t.order for t in every.fixes] == [0, 2] and every.tries == 3
        # a wider suite that the second fix breaks: it is no longer plausible
        full = f"{sys.executable} -c \"import pkg.stats, inspect; assert 'total = total' not in inspect.getsource(pkg.stats)\""
        strict = search(candidates(RIGHT, ALSO_RIGHT), [tree], PYTEST, timeout=30, stop_first=False,
                        full_command=full)
        assert [t.order for t in strict.fixes] == [0]
        budget = search(candidates(LOOPS, RIGHT), [tree], PYTEST, timeout=60, budget=2.0)
        assert budget.fixes == [] and budget.stopped == "budget"


def test_no_stale_bytecode_between_same_size_candidates(tmp_path):
    # `-=` and `+=` have the same size; written within the same second, bytecode caches would mix them up
    root = make_project(tmp_path / "proj")
    assert len(WRONG.replace("total *= x", "total /= x")) == len(RIGHT)
    texts = [STATS.replace("total -= x", f"total {op}= x") for op in "*/%-"] + [RIGHT]
    with ScratchTree(root) as tree:
        result = search(candidates(*texts), [tree], PYTEST, timeout=30)
    assert [t.order for t in result.fixes] == [4]
    assert hashlib.sha256(result.fixes[0].candidate.text.encode()).digest() == hashlib.sha256(RIGHT.encode()).digest()


# test_biggest logs each of its runs, so a test can count the runs of the tests that passed before
COUNTED = TESTS.replace("def test_biggest():\n", "def test_biggest():\n    import os\n"
                        "    with open(os.environ['BIGGEST_RUNS'], 'a') as f:\n        f.write('ran\\n')\n")
# makes the failing tests pass and breaks test_biggest (which passed): only the whole command sees it
RIGHT_BUT_BREAKS = RIGHT.replace("if x > best", "if x < best")


def failing_first(root):
    """The tests that fail on the unmodified tree, as localisation reports them."""
    with ScratchTree(root) as tree:
        found, _ = coverage_spectrum(tree, PYTEST, timeout=120)
    return found.failing_tests


def test_failing_tests_first_never_skips_the_whole_command(tmp_path):
    root = make_project(tmp_path / "proj")
    failing = failing_first(root)
    assert failing == ["tests/test_stats.py::test_mean", "tests/test_stats.py::test_mean_of_one"]
    with ScratchTree(root) as tree, only_tests(failing) as quick_env:
        result = search(candidates(RIGHT_BUT_BREAKS, RIGHT), [tree], PYTEST, timeout=60, quick_env=quick_env,
                        stop_first=False)
        broken = try_candidate(0, candidates(RIGHT_BUT_BREAKS)[0], tree, PYTEST, 60, quick_env=quick_env)
    # the failing tests pass with the first candidate, but the whole command does not: not a fix
    assert broken.quick.passed and not broken.result.passed and not broken.plausible
    assert [t.order for t in result.fixes] == [1] and result.fixes[0].candidate.text == RIGHT
    assert broken.seconds == pytest.approx(broken.quick.seconds + broken.result.seconds)


def test_failing_tests_first_saves_runs_of_the_rest(tmp_path, monkeypatch):
    root = make_project(tmp_path / "proj")
    (root / "tests" / "test_stats.py").write_text(COUNTED)
    log = tmp_path / "biggest.log"
    monkeypatch.setenv("BIGGEST_RUNS", str(log))
    failing = failing_first(root)
    log.unlink()
    texts = [STATS.replace("total -= x", f"total {op}= x") for op in "*/%"] + [RIGHT]
    with ScratchTree(root) as tree:
        plain = search(candidates(*texts), [tree], PYTEST, timeout=60)
        runs_plain = len(log.read_text().splitlines())
        log.unlink()
        with only_tests(failing) as quick_env:
            quick = search(candidates(*texts), [tree], PYTEST, timeout=60, quick_env=quick_env)
        runs_quick = len(log.read_text().splitlines())
    assert plain.fixes[0].candidate.text == quick.fixes[0].candidate.text == RIGHT
    assert plain.tries == quick.tries == 4
    # the passing test ran once per candidate without the quick runs, and only for the fix with them
    assert (runs_plain, runs_quick) == (4, 1)
    assert quick.fixes[0].quick is not None and quick.fixes[0].quick.passed
