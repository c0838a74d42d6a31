"""Names a programmer confuses: known pairs and names differing in one word."""

from __future__ import annotations

from patchcoder.tokenizer.rewrites import similar_names
from patchcoder.tokenizer.rewrites.names import JAVASCRIPT_CONFUSABLE, PYTHON_CONFUSABLE


def test_similar_names():
    assert similar_names("any", []) == ["all"]
    assert "set_value" in similar_names("get_value", ["set_value", "get_values2", "value"])
    assert similar_names("getValue", ["setValue"]) == ["setValue"]
    assert similar_names("frobnicate", ["other"]) == []


def test_confusable_tables_are_symmetric():
    for table in (PYTHON_CONFUSABLE, JAVASCRIPT_CONFUSABLE):
        for name, others in table.items():
            assert name not in others
            assert all(name in table[other] for other in others)
