"""`Repairer.repair` (and `candidates`) check their items and arguments before any work: each bad one
is one PatchcoderError line that names the item by its index (or the argument), never a TypeError from
deep inside, nor a string repaired one character at a time."""

from __future__ import annotations

import pytest

from patchcoder.ground.errors import PatchcoderError
from patchcoder.repair import Repairer

GOOD = "def f(x):\n    return x + 1\n"


def _refused(call, *fragments: str) -> str:
    with pytest.raises(PatchcoderError) as info:
        call()
    message = str(info.value)
    assert "\n" not in message and all(f in message for f in fragments), message
    return message


class NotCallable:
    pass


# (items, what the message names); the bad item is always at index 2, after two good ones.
BAD_ITEMS = [
    (b"def f(): pass\n", "item 2"),
    (None, "item 2"),
    (3, "item 2"),
    (3.5, "item 2"),
    (["x = 1\n"], "item 2"),
    ({"path": "a.py"}, "item 2: no 'code'"),
    ({"code": b"x = 1\n"}, "item 2: no 'code'"),
    ({"code": None}, "item 2: no 'code'"),
    ("x = '\ud800'\n", "item 2: 'code' holds a lone surrogate"),
    ({"code": "x = 1\n", "path": "\udcff.py"}, "item 2: 'path' holds a lone surrogate"),
    ({"code": "x = 1\n", "intent": "fix \udc80"}, "item 2: 'intent' holds a lone surrogate"),
    ({"code": "x = 1\n", "path": 7}, "item 2: 'path' must be a str"),
    ({"code": "x = 1\n", "intent": ["fix"]}, "item 2: 'intent' must be a str"),
    ({"code": "x = 1\n", "language": "klingon"}, "item 2: unknown language 'klingon'"),
    ({"code": "x = 1\n", "language": "Python"}, "item 2: unknown language 'Python'"),
    ({"code": "x = 1\n", "language": 3}, "item 2: 'language' must be a str"),
    ({"code": "x = 1\n", "focus": "abc"}, "item 2: 'focus' must be (first, last)"),
    ({"code": "x = 1\n", "focus": 3}, "item 2: 'focus'"),
    ({"code": "x = 1\n", "focus": (1,)}, "item 2: 'focus'"),
    ({"code": "x = 1\n", "focus": (1, 2, 3)}, "item 2: 'focus'"),
    ({"code": "x = 1\n", "focus": (2, 1)}, "item 2: 'focus'"),
    ({"code": "x = 1\n", "focus": (-1, 0)}, "item 2: 'focus'"),
    ({"code": "x = 1\n", "focus": (0.5, 1)}, "item 2: 'focus'"),
    ({"code": "x = 1\n", "focus": (True, 1)}, "item 2: 'focus'"),
    ({"code": "x = 1\n", "focus": ("0", "1")}, "item 2: 'focus'"),
    ({"code": "x = 1\n", "check": "not callable"}, "item 2: 'check' must be a callable"),
    ({"code": "x = 1\n", "check": NotCallable()}, "item 2: 'check' must be a callable"),
    ({"code": "x = 1\n", "fcous": (0, 0)}, "item 2: unknown key 'fcous'"),
]


@pytest.mark.parametrize("bad, names", BAD_ITEMS, ids=[repr(b)[:40] for b, _ in BAD_ITEMS])
def test_each_bad_item_is_named_by_its_index(bad, names):
    items = [GOOD, {"code": GOOD, "path": "m.py"}, bad]
    _refused(lambda: Repairer(None, None).repair(items), names)  # no model: refused before any work
    _refused(lambda: Repairer(None, None).candidates(items), names)


@pytest.mark.parametrize("items", ["def f(x):\n    return x\n", b"x = 1\n", {"code": GOOD}, 3, None])
def test_items_must_be_a_list(items):
    message = _refused(lambda: Repairer(None, None).repair(items), "items must be a list")
    if isinstance(items, (str, dict)):
        assert "pass [text]" in message


BAD_ARGUMENTS = [
    ({"batch_size": 0}, "batch_size must be a whole number ≥ 1, got 0"),
    ({"batch_size": -3}, "batch_size"),
    ({"batch_size": 2.5}, "batch_size"),
    ({"batch_size": "16"}, "batch_size"),
    ({"batch_size": None}, "batch_size"),
    ({"beam": 0}, "beam"),
    ({"beam": "2"}, "beam"),
    ({"beam": True}, "beam"),
    ({"max_checks": 0}, "max_checks must be a whole number ≥ 1, got 0"),
    ({"max_checks": "50"}, "max_checks"),
    ({"max_checks": 1.5}, "max_checks"),
    ({"max_checks": None}, "max_checks"),
    ({"mode": "guess"}, "mode"),
    ({"mode": 3}, "mode"),
    ({"show_progress": "yes"}, "show_progress"),
]


@pytest.mark.parametrize("options, names", BAD_ARGUMENTS, ids=[repr(o) for o, _ in BAD_ARGUMENTS])
def test_each_bad_argument_is_named(options, names):
    _refused(lambda: Repairer(None, None).repair([GOOD], **options), names)


@pytest.mark.parametrize("options, names", [
    ({"max_tokens": 0}, "max_tokens"),
    ({"max_tokens": 10**8}, "max_tokens must be a whole number from 1 to 65,536"),
    ({"max_new_tokens": -1}, "max_new_tokens"),
    ({"max_new_tokens": "192"}, "max_new_tokens"),
    ({"mode": "fast"}, "mode"),
    ({"min_score": float("nan")}, "min_score"),
    ({"keep_heads": 0}, "keep_heads"),
    ({"precision": "fp8"}, "precision"),
])
def test_the_constructor_checks_its_options(options, names):
    _refused(lambda: Repairer(None, None, **options), names)


def test_good_items_of_every_shape_are_accepted():
    """A generator, a focus given as a list, a known language, None for optional keys: all decoded, in order
    (an untrained tiny model: what it proposes does not matter here)."""
    import torch

    from patchcoder.model import PatchCoder, PatchCoderConfig
    from patchcoder.tokenizer.vocab import CodeTokenizer

    tok = CodeTokenizer.default()
    torch.manual_seed(0)
    model = PatchCoder(PatchCoderConfig(vocab_size=tok.vocab_size, d_model=32, n_layers=1, n_heads=2, n_kv_heads=1,
                                        window=4)).eval()
    repairer = Repairer(model, tok, max_tokens=128, max_new_tokens=4)
    items = ({"code": GOOD, "focus": [0, 1], "language": "python"}, GOOD, {"code": "", "intent": None, "path": None})
    assert len(repairer.repair(item for item in items)) == 3
