"""What `train` refuses before it trains, in one line: shards or starting weights of another vocabulary, a resume
with other settings, a damaged checkpoint; and which checkpoint is the newest past step 999,999."""

from __future__ import annotations

import json
import os
import shutil

import pytest

from patchcoder.checkpoint import CheckpointError
from patchcoder.cli import main
from patchcoder.ground.errors import PatchcoderError
from patchcoder.tokenizer.examples import ExampleConfig
from patchcoder.tokenizer.shards import tokenize_dataset
from patchcoder.tokenizer.vocab import CodeTokenizer
from patchcoder.training.loop import _checkpoints, latest_checkpoint, train
from tests.training.test_train import small_config


@pytest.fixture(scope="module")
def other_vocab(mined, tmp_path_factory):
    """A 600-id vocabulary trained here, and gamma's validation shards made with it."""
    folder = tmp_path_factory.mktemp("other-vocab")
    src = folder / "src"
    src.mkdir()
    for k in range(6):
        (src / f"m{k}.py").write_text(f"def handler_{k}(request, response):\n    return request.value + {k}\n" * 30)
    vocab = folder / "vocab.json"
    assert main(["tokenize", "train-vocab", "--files", str(src), "--vocab-size", "600", "--jobs", "1",
                 "--out", str(vocab)]) == 0
    shards = folder / "gamma"
    tokenize_dataset(mined["gamma"], shards, vocab=vocab, config=ExampleConfig(max_tokens=128), jobs=1)
    return vocab, shards


@pytest.fixture(scope="module")
def stopped(tokens, tmp_path_factory):
    """A run stopped at step 4, with checkpoints at steps 2 and 4."""
    out = tmp_path_factory.mktemp("stopped")
    train(small_config(tokens), out, show_progress=False, stop_after=4)
    return out


def test_validation_shards_of_another_vocabulary_are_refused_before_training(tokens, other_vocab, tmp_path):
    config = small_config(tokens)
    config.data.valid = str(other_vocab[1])
    with pytest.raises(PatchcoderError, match="was not made with the configured tokenizer"):
        train(config, tmp_path / "run", show_progress=False)
    assert not (tmp_path / "run" / "metrics.csv").exists()


def test_starting_weights_of_another_vocabulary_are_refused(tokens, stopped, other_vocab, tmp_path):
    start = tmp_path / "start"
    start.mkdir()
    assert main(["train", "--export", str(stopped), "--out", str(start)]) == 0
    CodeTokenizer.load(other_vocab[0]).save(start / "tokenizer.json")  # as if trained with the other vocabulary
    config = small_config(tokens, steps=1)
    config.run.init_from = str(start)
    with pytest.raises(PatchcoderError, match="another vocabulary"):
        train(config, tmp_path / "run", show_progress=False)


def test_a_resume_with_other_settings_is_refused_and_a_longer_one_is_not(tokens, stopped, tmp_path):
    changed = small_config(tokens)
    changed.optim.batch_size = 8
    changed.data.train[1].weight = 3.0
    with pytest.raises(PatchcoderError, match="other settings") as caught:
        train(changed, tmp_path / "x", resume=stopped, show_progress=False)
    assert "optim.batch_size: 4 -> 8" in str(caught.value) and "data.train" in str(caught.value)
    longer = small_config(tokens, steps=6)
    longer.run.eval_every = 3  # what is evaluated may change too
    run = tmp_path / "copy"
    shutil.copytree(stopped, run)
    assert train(longer, run, resume=run, show_progress=False).steps == 6


@pytest.mark.parametrize("damage", ["truncated weights", "bad state"])
def test_a_damaged_checkpoint_is_one_line_that_names_the_one_before_it(tokens, stopped, tmp_path, damage):
    run = tmp_path / "run"
    shutil.copytree(stopped, run)
    newest = latest_checkpoint(run)
    assert newest.name == "step-000004"
    if damage == "truncated weights":
        weights = newest / "model.safetensors"
        weights.write_bytes(weights.read_bytes()[:1000])
    else:
        (newest / "patchcoder_state.json").write_text('{"step": 4')
    with pytest.raises(CheckpointError) as caught:
        train(small_config(tokens), run, resume=run, show_progress=False)
    message = str(caught.value)
    assert "\n" not in message and str(newest) in message and f"--resume {run / 'checkpoints' / 'step-000002'}" in message


def test_the_newest_checkpoint_is_the_highest_step_past_a_million(tmp_path):
    for step in (999_998, 999_999, 1_000_001):
        (tmp_path / "checkpoints" / f"step-{step:06d}").mkdir(parents=True)
    assert [p.name for p in _checkpoints(tmp_path)] == ["step-999998", "step-999999", "step-1000001"]
    assert latest_checkpoint(tmp_path).name == "step-1000001"


@pytest.mark.parametrize("max_lines", [-5, 0, 200_000])
def test_a_vocabulary_file_with_an_absurd_line_count_is_refused_at_once(tmp_path, max_lines):
    path = tmp_path / "tokenizer.json"
    CodeTokenizer.default().save(path)
    document = json.loads(path.read_text())
    document["max_lines"] = max_lines
    path.write_text(json.dumps(document))
    with pytest.raises(PatchcoderError, match="max_lines"):
        CodeTokenizer.load(path)


def test_a_resume_compares_what_the_folders_hold_not_how_their_paths_are_written(tokens, stopped, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(stopped, run)
    moved = small_config(tokens)
    for source in moved.data.train:  # the same folders through other spellings of their paths
        source.path = str(tmp_path / ".." / tmp_path.name / ".." / tmp_path.name / os.path.relpath(source.path, tmp_path))
    assert moved.data.train[0].path != small_config(tokens).data.train[0].path
    assert train(moved, run, resume=run, show_progress=False).steps == 8

    swapped = small_config(tokens)
    swapped.data.train[0].path, swapped.data.train[1].path = swapped.data.train[1].path, swapped.data.train[0].path
    swapped.data.train[0].weight, swapped.data.train[1].weight = 1.0, 0.5  # the weights as saved, the folders not
    again = tmp_path / "again"
    shutil.copytree(stopped, again)
    with pytest.raises(PatchcoderError, match="other token folders"):
        train(swapped, again, resume=again, show_progress=False)


def test_a_checkpoint_saved_before_a_setting_existed_resumes_with_its_default(tokens, stopped, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(stopped, run)
    state_file = latest_checkpoint(run) / "patchcoder_state.json"
    state = json.loads(state_file.read_text())
    for key in ("rank_batch", "rank_temperature"):  # as a checkpoint made before the ranking loss had them
        del state["config"]["optim"][key]
    state_file.write_text(json.dumps(state))
    assert train(small_config(tokens), run, resume=run, show_progress=False).steps == 8
