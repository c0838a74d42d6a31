"""A crafted model folder cannot crash, hang or exhaust memory at load: every field of config.json,
decoding.json and training.json is checked (type, range, divisibility, unknown and missing keys), and
each bad value is one CheckpointError line naming the file and the field."""

from __future__ import annotations

import dataclasses
import json
import shutil

import pytest

from patchcoder.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from patchcoder.model import PatchCoderConfig


@pytest.fixture(scope="module")
def folder(tmp_path_factory, tiny_model):
    """A whole, valid model folder (the default vocabulary, a tiny model)."""
    from patchcoder.tokenizer.vocab import CodeTokenizer

    tok = CodeTokenizer.default()
    path = tmp_path_factory.mktemp("checkpoint") / "final"
    save_checkpoint(path, tiny_model(vocab_size=tok.vocab_size), tok,
                    training={"steps": 1, "tokens": 2, "config": {"data": {"seq_len": 256}}}, max_tokens=256)
    return path


@pytest.fixture
def crafted(folder, tmp_path):
    """A fresh copy of the folder, to spoil one file of."""
    copy = tmp_path / "final"
    shutil.copytree(folder, copy)
    return copy


def refused(path, *fields: str) -> str:
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    message = str(info.value)
    assert "\n" not in message and all(f in message for f in fields), message
    return message


NAN, INF = float("nan"), float("inf")
# Every config.json field with values it must refuse (json.loads reads NaN and Infinity too).
BAD_CONFIG = {
    "vocab_size": [0, -1, 2**20 + 1, 1.5, "8192", True, None],
    "d_model": [0, 1, 16_385, 32.0, "32", None],
    "n_layers": [0, 257, 2.0, "2", False, None],
    "n_heads": [0, -4, 257, 4.0, "4", None],
    "n_kv_heads": [0, 257, 2.0, "2", None],
    "loops": [0, 65, 1e6, 1_000_000, 2.0, "2", True, None],
    "window": [-1, 65_537, 10**8, 4.0, "4", None],
    "clp_shift": [1, 0, "true", None],
    "gate_mode": ["both", "", 1, True, None],
    "embed_scale": ["x", True, NAN, INF, -INF, [1], None],
    "hidden_scale": ["x", False, NAN, -INF, {"a": 1}, None],
    "learn_scales": [1, "false", None],
    "ffn_hidden": [-1, 131_073, 64.0, "64", None],
    "rope_base": [0, -1.0, "x", NAN, INF, True, None],
    "norm_eps": [0, -1e-5, 1.5, NAN, "1e-5", None],
    "dropout": [-0.1, 1.0, 2.0, NAN, "0", True, None],
    "tie_embeddings": [1, "yes", None],
}


def test_the_folder_is_valid(folder):
    assert load_checkpoint(folder).decoding == {"max_tokens": 256}


def test_the_table_covers_every_field():
    assert set(BAD_CONFIG) == {f.name for f in dataclasses.fields(PatchCoderConfig)}


CONFIG_CASES = [(key, bad) for key, values in BAD_CONFIG.items() for bad in values]


@pytest.mark.parametrize("key, bad", CONFIG_CASES, ids=[f"{k}={b!r}" for k, b in CONFIG_CASES])
def test_each_config_field_refuses_each_bad_value(crafted, key, bad):
    config = json.loads((crafted / "config.json").read_text())
    (crafted / "config.json").write_text(json.dumps({**config, key: bad}))
    refused(crafted, "config.json", key)


@pytest.mark.parametrize("changes, message", [
    ({"n_heads": 0}, "n_heads must be a whole number from 1 to 256, got 0"),
    ({"rope_base": "x"}, "rope_base must be a finite number > 0, got 'x'"),
    ({"dropout": 2.0}, "dropout must be a number in [0, 1), got 2.0"),
    ({"loops": 1e6}, "loops must be a whole number from 1 to 64, got 1000000.0"),
    ({"loops": 1_000_000}, "loops must be a whole number from 1 to 64, got 1000000"),
    ({"window": 10**8}, "window must be a whole number from 0 to 65,536"),
    ({"d_model": 30}, "d_model 30 is not a multiple of n_heads 4"),
    ({"d_model": 12}, "the head size d_model / n_heads must be even"),
    ({"n_kv_heads": 3}, "n_heads 4 is not a multiple of n_kv_heads 3"),
    ({"n_kv_heads": 8}, "n_heads 4 is not a multiple of n_kv_heads 8"),
    ({"n_experts": 4}, "unknown config fields ['n_experts']"),
])
def test_the_reported_config_cases(crafted, changes, message):
    config = json.loads((crafted / "config.json").read_text())
    (crafted / "config.json").write_text(json.dumps({**config, **changes}))
    assert message in refused(crafted, "config.json")


@pytest.mark.parametrize("key", list(BAD_CONFIG))
def test_a_missing_config_field_is_refused(crafted, key):
    """A default would silently describe another model than the weights'."""
    config = json.loads((crafted / "config.json").read_text())
    del config[key]
    (crafted / "config.json").write_text(json.dumps(config))
    refused(crafted, "config.json", f"missing config fields ['{key}']")


@pytest.mark.parametrize("text", ["[1, 2]", '"config"', "null", "{", "\udcff".encode("utf-8", "surrogateescape")])
def test_a_config_that_is_not_an_object(crafted, text):
    path = crafted / "config.json"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    refused(crafted, "config.json", "not a valid model config")


DECODING_RULES_CASES = [
    ("max_tokens", [0, -5, 1.5, 1e8, 10**8, "512", True, 65_537]),
    ("mode", ["guess", 1, True]),
    ("precision", ["fp8", 16, False]),
    ("keep_heads", [0, -1, 2.5, "1", True]),
    ("min_score", ["x", float("nan"), float("inf"), True, [1]]),
    ("undo_weight", [-0.5, "x", float("nan"), float("inf"), True]),
    ("min_score_by_edit", [{}, {"nope": 1.0}, {"other": "x"}, {"other": float("nan")}, {"other": True}, [1], 1.0,
                           {"other": -1.0, "change_binary_operator": None}]),
]
DECODING_CASES = [(key, bad) for key, values in DECODING_RULES_CASES for bad in values]


def test_the_decoding_table_covers_every_option():
    from patchcoder.checkpoint import DECODING_KEYS

    assert {key for key, _ in DECODING_RULES_CASES} == set(DECODING_KEYS)


@pytest.mark.parametrize("key, bad", DECODING_CASES, ids=[f"{k}={b!r}" for k, b in DECODING_CASES])
def test_each_decoding_option_refuses_each_bad_value(crafted, key, bad):
    (crafted / "decoding.json").write_text(json.dumps({"max_tokens": 256, key: bad}))
    refused(crafted, "decoding.json", key)


def test_decoding_json_unknown_keys_and_notes(crafted):
    (crafted / "decoding.json").write_text(json.dumps({"max_tokens": 256, "min_scor": -1.0}))
    refused(crafted, "decoding.json", "unknown option(s) 'min_scor'", "known: max_tokens, mode")
    notes = {"max_tokens": 300, "max_tokens_from": "x", "why": "y", "keep_heads": 2, "keep_heads_why": "z"}
    (crafted / "decoding.json").write_text(json.dumps(notes))  # notes on where a value came from are not options
    assert load_checkpoint(crafted).decoding == {"max_tokens": 300, "keep_heads": 2}
    (crafted / "decoding.json").write_text("[]")
    refused(crafted, "decoding.json", "not a JSON object")


@pytest.mark.parametrize("training, message", [
    ({"config": {"data": {"seq_len": -5}}}, "config.data.seq_len must be a whole number from 1 to 65,536, got -5"),
    ({"config": {"data": {"seq_len": 1e8}}}, "config.data.seq_len must be a whole number from 1 to 65,536"),
    ({"config": {"data": {"seq_len": 100_000_000}}}, "config.data.seq_len must be a whole number from 1 to 65,536"),
    ({"config": {"data": {"seq_len": "512"}}}, "config.data.seq_len must be a whole number"),
    ({"config": {"data": {"seq_len": 0}}}, "config.data.seq_len must be a whole number"),
    ({"config": {"data": [512]}}, "config.data must be a JSON object"),
    ({"config": "x"}, "config must be a JSON object"),
    ([], "not a JSON object"),
])
def test_the_prompt_budget_from_training_json_is_checked(crafted, training, message):
    """Folders made before decoding.json gave the budget take it from training.json: a crafted one
    used to give max_tokens -5 (silently no suggestion) or 10^8 (gigabytes of memory)."""
    (crafted / "decoding.json").unlink()
    (crafted / "training.json").write_text(json.dumps(training))
    assert message in refused(crafted, "training.json")


def test_the_shipped_config_gives_every_field():
    from patchcoder.checkpoint import SHIPPED_MODEL

    data = json.loads((SHIPPED_MODEL / "config.json").read_text())
    assert PatchCoderConfig.from_dict(data, complete=True).to_dict() == data
