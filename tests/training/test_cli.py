"""`patchcoder train` configuration from presets, files and --set overrides."""

import argparse

import pytest

from patchcoder.ground.errors import PatchcoderError, UsageError
from patchcoder.training.cli import add_arguments, build_config
from patchcoder.training.config import load_config


def _config(*argv):
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return build_config(parser.parse_args(["--out", "x", *argv]))


def test_presets_and_overrides():
    config = _config("--preset", "tiny", "--data", "a:0.7", "--data", "b", "--set", "model.loops=3",
                     "--set", "optim.lr=1e-4", "--set", "run.compile=true", "--max-steps", "5")
    assert config.model["loops"] == 3 and config.model["d_model"] == 64
    assert config.optim.lr == 1e-4 and config.run.compile is True
    assert [(s.path, s.weight) for s in config.data.train] == [("a", 0.7), ("b", 1.0)]
    default = _config("--preset", "default")
    assert default.model["d_model"] == 256 and default.data.seq_len == 512


@pytest.mark.parametrize("item", ["optim.nope=1", "loops=3", "x.y=1", "data.train=[]"])
def test_bad_overrides_are_usage_errors(item):
    with pytest.raises(UsageError):
        _config("--preset", "tiny", "--set", item)


def test_config_files(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text('[model]\nd_model = 32\n[data]\ntrain = ["tokens", {path = "/abs", weight = 2}]\n'
                    '[optim]\nmax_steps = 7\n')
    config = load_config(path)
    assert config.optim.max_steps == 7
    assert [(s.path, s.weight) for s in config.data.train] == [(str(tmp_path / "tokens"), 1.0), ("/abs", 2.0)]
    path.write_text("[optim]\nmax_step = 7\n")
    with pytest.raises(PatchcoderError, match="max_step"):
        load_config(path)
    path.write_text("[optim\n")
    with pytest.raises(PatchcoderError, match="not valid TOML"):
        load_config(path)
