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


def test_one_slip_is_one_letter_added_dropped_replaced_or_two_adjacent_swapped():
    from patchcoder.tokenizer.rewrites.names import one_slip

    for a, b in [("hasattr", "hasttr"), ("attr", "attri"), ("items", "itmes"), ("Template", "TEmplate"),
                 ("ab", "ba"), ("len", "lenn")]:
        assert one_slip(a, b) and one_slip(b, a)
    for a, b in [("name", "name"), ("abc", "cab"), ("items", "item_s_"), ("abcd", "badc"), ("x", "xyz")]:
        assert not one_slip(a, b)


def test_spellings_finds_the_names_one_slip_away_in_pool_order_and_leaves_short_names_out():
    from patchcoder.tokenizer.rewrites.names import Spellings

    spellings = Spellings(["items", "hasattr", "item", "x", "y", "ids", "idx", "has_attr"])
    assert spellings.near("itmes") == ["items"]
    assert spellings.near("item") == ["items"]  # a plural is one slip too
    assert spellings.near("items") == ["item"]
    assert spellings.near("hasttr") == ["hasattr"]  # not has_attr: two slips
    assert spellings.near("x") == [] and spellings.near("z") == []  # x/y: too short to be a misspelling
    assert spellings.near("ids") == []  # ids/idx: both 3 letters
    assert spellings.near("frobnicate") == []
    assert Spellings(["rows", "row_", "roe", "rowx"]).near("row") == ["rows", "row_", "rowx"]  # in pool order
    assert Spellings(["rowx", "rows"]).near("row") == ["rowx", "rows"]
