"""benchmarks/decision.py compare: which bugs two models' records show exactly at their own thresholds, and the
sign test of the split (the shipping rule's criterion 1 reads the totals alone)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "decision.py"


@pytest.fixture(scope="module")
def decision():
    spec = importlib.util.spec_from_file_location("benchmarks_decision", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _records(path: Path, exact_shown: list[bool], paths=None) -> Path:
    """Records as `decision.py dump` writes them: per bug, a buggy window whose best rewrite is the exact fix
    (or a wrong one) and its clean twin, where "no change" wins (no false alarm: the threshold is -inf)."""
    rows = []
    for i, exact in enumerate(exact_shown):
        where = (paths or [f"m{i}.py" for _ in exact_shown])[i]
        rows.append({"kind": "buggy", "sstub": "change_binary_operator", "path": where, "edit": "change_binary_operator",
                     "candidates": [[-2.0, 1, 0, 0], [-0.5, 4, 1, int(exact)], [-0.9, 4, 1, int(not exact)]]})
        rows.append({"kind": "fixed", "sstub": "change_binary_operator", "path": where, "edit": "change_binary_operator",
                     "candidates": [[-0.1, 1, 0, 1], [-1.5, 4, 1, 0]]})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_the_sign_test_is_exact_and_two_sided(decision):
    assert decision.sign_test(0, 0) == 1.0
    assert decision.sign_test(10, 0) == pytest.approx(2 / 1024)
    assert decision.sign_test(0, 10) == decision.sign_test(10, 0)
    assert decision.sign_test(3, 3) == 1.0
    assert decision.sign_test(28, 17) == pytest.approx(0.1352, abs=1e-4)


def test_compare_counts_the_bugs_each_shows_and_refuses_records_of_other_windows(decision, tmp_path):
    a = _records(tmp_path / "a.jsonl", [True, True, False, False, True])
    b = _records(tmp_path / "b.jsonl", [False, True, True, False, True])
    m = decision.compare(str(a), str(b))
    assert (m["bugs"], m["shown_a"], m["shown_b"], m["both"], m["only_a"], m["only_b"]) == (5, 3, 3, 2, 1, 1)
    assert m["p"] == 1.0
    assert decision.shown_exact(decision_records(a)) == [True, True, False, False, True]
    other = _records(tmp_path / "c.jsonl", [True] * 5, paths=[f"n{i}.py" for i in range(5)])
    with pytest.raises(SystemExit, match="not records of the same windows"):
        decision.compare(str(a), str(other))


def decision_records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]
