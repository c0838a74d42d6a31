"""The validation search: candidates tried in order in scratch copies, with time-outs, limits and jobs."""

from __future__ import annotations

import hashlib
import sys

from patchcoder.scratch import ScratchTree
from patchcoder.search import Candidate, search

sys.path.insert(0, __import__("os").path.dirname(__file__))
from test_localize import PYTEST, STATS, digest, make_project  # noqa: E402

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
