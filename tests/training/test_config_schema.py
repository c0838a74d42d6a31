"""Every setting of a training run has a type and a range: a bad value, from a TOML file or `--set`, is
one PatchcoderError line naming SECTION.KEY and what it expects, before any work."""

from __future__ import annotations

import argparse
import dataclasses
import math

import pytest

from patchcoder.ground.errors import PatchcoderError, UsageError
from patchcoder.training.cli import add_arguments, build_config
from patchcoder.training.config import DataConfig, OptimConfig, RunConfig


def _config(*sets: str):
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    argv = ["--out", "x", "--preset", "tiny", "--data", "tokens"]
    for item in sets:
        argv += ["--set", item]
    return build_config(parser.parse_args(argv))


def _refused(*sets: str) -> str:
    config = _config(*sets)
    with pytest.raises(PatchcoderError) as info:
        config.validate()
    message = str(info.value)
    assert "\n" not in message
    return message


# Every setting with values (TOML text, as `--set` takes them) it must refuse.
BAD = {
    "data.valid": ["1", "true"],
    "data.seq_len": ["0", "-1", "65537", "1.5", "abc", '"512"'],
    "data.rank_valid": ["1", "[1]"],
    "data.rank_len": ["1", "65537", "1.5", "x"],
    "optim.batch_size": ["0", "1.5", "abc"],
    "optim.grad_accum": ["0", "2.5", "true"],
    "optim.lr": ["x", "-1", "nan", "inf", "true"],
    "optim.min_lr_ratio": ["-0.1", "1.5", "nan", "x"],
    "optim.warmup_steps": ["-1", "1.5", "x"],
    "optim.max_steps": ["0", "1.5", "x"],
    "optim.weight_decay": ["-0.1", "nan", "x"],
    "optim.beta1": ["1", "-0.1", "nan", "x"],
    "optim.beta2": ["1.0", "-1", "x"],
    "optim.clip": ["0", "-1", "nan", "inf", "x"],
    "optim.lm_loss_weight": ["-1", "nan", "x"],
    "optim.rank_weight": ["-1", "nan", "inf", "x"],
    "optim.rank_batch": ["0", "1.5", "x"],
    "optim.rank_temperature": ["0", "-1", "nan", "x"],
    "run.seed": ["1.5", "-1", "4294967296", "x"],
    "run.mixed_precision": ["fp8", "1", "true"],
    "run.checkpoint_every": ["0", "1.5", "x"],
    "run.eval_every": ["0", "x"],
    "run.eval_batches": ["0", "x"],
    "run.log_every": ["0", "x"],
    "run.compile": ["1", '"yes"'],
    "run.tokenizer": ["1", "true"],
    "run.init_from": ["1", "[1]"],
    "model.vocab_size": ["0", "1.5", "x"],
    "model.d_model": ["0", "16385", "64.0", "x"],
    "model.n_layers": ["0", "257", "x"],
    "model.n_heads": ["0", "257", "x"],
    "model.n_kv_heads": ["0", "x"],
    "model.loops": ["abc", "0", "65", "1e6", "1.5"],
    "model.window": ["-1", "65537", "x"],
    "model.clp_shift": ["1", "x"],
    "model.gate_mode": ["both", "1"],
    "model.embed_scale": ["x", "nan", "inf"],
    "model.hidden_scale": ["x", "-inf"],
    "model.learn_scales": ["1", "x"],
    "model.ffn_hidden": ["-1", "x", "64.5"],
    "model.rope_base": ["x", "0", "-1", "nan"],
    "model.norm_eps": ["0", "x", "2"],
    "model.dropout": ["2.0", "-0.5", "1", "x"],
    "model.tie_embeddings": ["1", "x"],
}


def test_the_table_covers_every_setting():
    from patchcoder.model import PatchCoderConfig

    sections = (("data", DataConfig), ("optim", OptimConfig), ("run", RunConfig), ("model", PatchCoderConfig))
    keys = {f"{section}.{f.name}" for section, cls in sections for f in dataclasses.fields(cls)}
    assert set(BAD) == keys - {"data.train", "data.rank"}  # --data/--rank DIR[:WEIGHT] (test_data_weights_and_sources)


CASES = [(key, bad) for key, values in BAD.items() for bad in values]


@pytest.mark.parametrize("key, bad", CASES, ids=[f"{k}={b}" for k, b in CASES])
def test_each_setting_refuses_each_bad_value(key, bad):
    message = _refused(f"{key}={bad}")
    assert key in message, message


@pytest.mark.parametrize("item, message", [
    ("run.seed=1.5", "run.seed must be a whole number from 0 to 4,294,967,295, got 1.5"),
    ("run.seed=-1", "run.seed must be a whole number from 0 to 4,294,967,295, got -1"),
    ("optim.lr=x", "optim.lr must be a finite number ≥ 0, got 'x'"),
    ("optim.lr=-1", "optim.lr must be a finite number ≥ 0, got -1"),
    ("model.loops=abc", "model.loops must be a whole number from 1 to 64, got 'abc'"),
    ("model.loops=1e6", "model.loops must be a whole number from 1 to 64, got 1000000.0"),
    ("data.seq_len=0", "data.seq_len must be a whole number from 1 to 65,536, got 0"),
    ("run.mixed_precision=fp8", "run.mixed_precision must be one of 'bf16', 'no', got 'fp8'"),
    ("model.n_heads=3", "model.d_model 64 is not a multiple of model.n_heads 3"),
    ("model.n_kv_heads=3", "model.n_heads 4 is not a multiple of model.n_kv_heads 3"),
    ("model.n_expert=4", "[model] has no setting(s) 'n_expert'"),
])
def test_the_reported_cases(item, message):
    assert message in _refused(item)


def test_data_weights_and_sources():
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    for weight in ("nan", "-1", "0", "inf"):
        config = build_config(parser.parse_args(["--out", "x", "--preset", "tiny", "--data", f"tokens:{weight}"]))
        with pytest.raises(PatchcoderError, match=r"data.train\[0\].weight must be a finite number > 0"):
            config.validate()
        config = build_config(parser.parse_args(["--out", "x", "--preset", "tiny", "--data", "tokens",
                                                 "--rank", f"candidates:{weight}"]))
        with pytest.raises(PatchcoderError, match=r"data.rank\[0\].weight must be a finite number > 0"):
            config.validate()
    with pytest.raises(UsageError, match="--rank 'c:x'"):
        build_config(parser.parse_args(["--out", "x", "--preset", "tiny", "--data", "t", "--rank", "c:x"]))
    good = _config("optim.lr=3e-4", "run.seed=7", "model.dropout=0.1", "data.seq_len=1024", "run.init_from='a/b'")
    good.validate()
    assert (good.optim.lr, good.run.seed, good.model["dropout"]) == (3e-4, 7, 0.1)


def test_every_message_is_one_line_even_for_several_problems():
    message = _refused("optim.lr=nan", "run.seed=x", "model.loops=0")
    assert all(key in message for key in ("optim.lr", "run.seed", "model.loops")) and "\n" not in message
    assert math.isnan(_config("optim.lr=nan").optim.lr)  # kept as given; validate() is what refuses it


def test_the_cli_says_it_in_one_line_before_any_work(tmp_path):
    """Through the real command: exit 2 and one line, nothing written (the shards named do not even exist)."""
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "patchcoder", "train", "--preset", "tiny", "--data",
                             str(tmp_path / "none"), "--out", str(tmp_path / "run"), "--set", "optim.lr=-1"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert "optim.lr must be a finite number ≥ 0, got -1" in result.stderr
    assert not (tmp_path / "run").exists()
