"""The trainer through Accelerate: a real run, its export, exact resume after a stop or a kill, and DDP."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from patchcoder.model import PatchCoder
from patchcoder.tokenizer.vocab import CodeTokenizer
from patchcoder.training.config import DataConfig, DataSource, OptimConfig, RunConfig, TrainConfig
from patchcoder.training.loop import train

MODEL = dict(d_model=32, n_layers=1, n_heads=2, n_kv_heads=1, loops=2, window=8)


def small_config(tokens, steps=8, **run) -> TrainConfig:
    return TrainConfig(
        model=dict(MODEL),
        data=DataConfig(train=[DataSource(str(tokens["alpha"])), DataSource(str(tokens["beta"]), 0.5)],
                        valid=str(tokens["gamma"]), seq_len=128),
        optim=OptimConfig(batch_size=4, lr=3e-3, warmup_steps=2, max_steps=steps),
        run=RunConfig(**{"checkpoint_every": 2, "eval_every": 4, "eval_batches": 2, "log_every": 1, **run}),
    )


def _losses(run_dir) -> dict[tuple[str, int], float]:
    with open(run_dir / "metrics.csv", newline="") as f:
        return {(r["split"], int(r["step"])): float(r["loss"]) for r in csv.DictReader(f)}


def _config_file(tokens, path, steps, checkpoint_every=2):
    config = small_config(tokens, steps, checkpoint_every=checkpoint_every)
    sources = ", ".join(f'{{path = "{s.path}", weight = {s.weight}}}' for s in config.data.train)
    model = "\n".join(f"{k} = {v}" for k, v in MODEL.items())
    path.write_text(f"""[model]\n{model}\n[data]\ntrain = [{sources}]\nvalid = "{config.data.valid}"\nseq_len = 128
[optim]\nbatch_size = 4\nlr = 3e-3\nwarmup_steps = 2\nmax_steps = {steps}
[run]\ncheckpoint_every = {checkpoint_every}\neval_every = 4\neval_batches = 2\nlog_every = 1\n""")
    return path


@pytest.fixture(scope="module")
def reference(tokens, tmp_path_factory):
    """An uninterrupted 8-step run, the yardstick of the resume tests."""
    out = tmp_path_factory.mktemp("reference")
    result = train(small_config(tokens), out, show_progress=False)
    return out, result


def test_a_run_trains_and_exports_a_loadable_model(reference):
    out, result = reference
    assert result.steps == 8 and not result.interrupted and result.tokens > 0
    losses = _losses(out)
    assert [s for (split, s) in losses if split == "train"] == list(range(1, 9))
    assert {("valid", 4), ("valid", 8)} <= set(losses)
    assert losses[("train", 8)] < losses[("train", 1)]  # it learns
    model = PatchCoder.from_pretrained(out / "final")
    tokenizer = CodeTokenizer.load(out / "final" / "tokenizer.json")
    assert model.config.vocab_size == tokenizer.vocab_size and model.config.d_model == 32
    assert json.loads((out / "final" / "training.json").read_text())["steps"] == 8
    assert (out / "loss.png").stat().st_size > 1000
    assert list((out / "tensorboard").glob("events.out.tfevents.*"))
    assert [p.name for p in sorted((out / "checkpoints").iterdir())] == ["step-000006", "step-000008"]
    with torch.no_grad():
        logits = model(torch.tensor([[tokenizer.pad_id, 5, 6]]))
    assert logits.shape == (1, 3, tokenizer.vocab_size)


def test_a_new_stage_starts_from_exported_weights(reference, tokens, tmp_path):
    out, _ = reference
    config = small_config(tokens, steps=1)
    config.run.init_from = str(out / "final")
    config.optim.lr = 0.0  # one step that changes nothing: the export must come back unchanged
    config.optim.warmup_steps = 1
    result = train(config, tmp_path / "stage2", show_progress=False)
    assert result.weights_digest == _digest(out)
    config.model["d_model"] = 64
    with pytest.raises(Exception, match="model configuration"):
        train(config, tmp_path / "stage3", show_progress=False)


def test_a_new_stage_may_change_the_loop_count_and_keeps_the_shared_layers(reference, tokens, tmp_path):
    out, _ = reference
    before = PatchCoder.from_pretrained(out / "final").state_dict()
    config = small_config(tokens, steps=1)
    config.run.init_from = str(out / "final")
    config.model["loops"] = 1
    config.optim.lr = 0.0  # one step that changes nothing: the shared layers must come back unchanged
    config.optim.warmup_steps = 1
    train(config, tmp_path / "r1", show_progress=False)
    after = PatchCoder.from_pretrained(tmp_path / "r1" / "final")
    assert after.config.loops == 1
    state = after.state_dict()
    gates = [k for k in before if ".gate." in k]
    assert gates and not any(k in state for k in gates)  # R = 1 has no gates: dropped
    assert set(state) == set(before) - set(gates)
    for k, v in state.items():
        assert torch.equal(v, before[k]), k
    config.model.update(loops=2, n_heads=4)  # anything else than R that differs is still refused
    with pytest.raises(Exception, match="model configuration"):
        train(config, tmp_path / "r2", show_progress=False)


def test_a_checkpoint_exports_like_a_final_model(reference, tmp_path):
    out, _ = reference
    result = subprocess.run([sys.executable, "-m", "patchcoder", "train", "--export", str(out / "checkpoints" /
                             "step-000006"), "--out", str(tmp_path / "step6")], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    model = PatchCoder.from_pretrained(tmp_path / "step6")
    assert json.loads((tmp_path / "step6" / "training.json").read_text())["steps"] == 6
    assert CodeTokenizer.load(tmp_path / "step6" / "tokenizer.json").vocab_size == model.config.vocab_size
    from patchcoder.training.loop import export_checkpoint

    newest = export_checkpoint(out, tmp_path / "newest")  # a run folder: its newest checkpoint
    assert _digest_of(newest) == _digest(out)  # step 8 is the end of the run: the same weights as final/
    bad = subprocess.run([sys.executable, "-m", "patchcoder", "train", "--export", str(tmp_path), "--out",
                          str(tmp_path / "x")], capture_output=True, text=True)
    assert bad.returncode == 2 and "not a training checkpoint" in bad.stderr


def _digest_of(folder) -> str:
    import hashlib

    model = PatchCoder.from_pretrained(folder)
    digest = hashlib.sha256()
    for _, p in sorted(model.state_dict().items()):
        digest.update(p.detach().float().cpu().numpy().tobytes())
    return digest.hexdigest()


def test_a_finished_run_is_not_overwritten(reference, tokens):
    from patchcoder.ground.errors import PatchcoderError

    out, _ = reference
    before = (out / "metrics.csv").read_text()
    with pytest.raises(PatchcoderError, match="already holds a training run"):
        train(small_config(tokens), out, show_progress=False)
    assert (out / "metrics.csv").read_text() == before


def test_stop_and_resume_reproduces_the_losses(reference, tokens, tmp_path):
    ref_dir, ref = reference
    out = tmp_path / "run"
    first = train(small_config(tokens), out, show_progress=False, stop_after=3)
    assert first.interrupted and first.steps == 3 and first.final_dir is None
    assert (out / "checkpoints" / "step-000003").is_dir()
    second = train(small_config(tokens), out, resume=out, show_progress=False)
    assert second.steps == 8 and not second.interrupted
    assert _losses(out) == pytest.approx(_losses(ref_dir), abs=1e-6)
    assert second.weights_digest == ref.weights_digest


def test_sigkill_then_resume_reproduces_the_losses(tokens, tmp_path):
    # Every run is a fresh process with the same settings, the reference included: float results
    # depend on the thread count, and this process's may have been changed by other tests.
    config = _config_file(tokens, tmp_path / "run.toml", steps=16)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}

    def argv(out):
        return [sys.executable, "-m", "patchcoder", "train", "--config", str(config), "--out", str(out), "--no-progress"]

    reference = subprocess.run(argv(tmp_path / "reference"), capture_output=True, text=True, env=env)
    assert reference.returncode == 0, reference.stderr[-2000:]
    out = tmp_path / "killed"
    proc = subprocess.Popen(argv(out), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
                            env=env)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (out / "checkpoints" / "step-000004").exists():
        if proc.poll() is not None:
            pytest.fail(f"training ended early: {proc.stderr.read().decode()[-2000:]}")
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (out / "final").exists(), "the run finished before the kill; the test proves nothing"
    resumed = subprocess.run(argv(out) + ["--resume", str(out), "--json"], capture_output=True, text=True, env=env)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert json.loads(resumed.stdout)["steps"] == 16
    assert _losses(out) == _losses(tmp_path / "reference")
    assert json.loads(resumed.stdout)["weights_digest"] == _digest(tmp_path / "reference")


def _digest(run_dir) -> str:
    """The weights digest of a finished run, from its exported model (as the trainer computes it)."""
    return _digest_of(run_dir / "final")


def test_sigterm_saves_a_checkpoint_and_exits_2(tokens, tmp_path):
    config = _config_file(tokens, tmp_path / "run.toml", steps=400, checkpoint_every=1000)
    out = tmp_path / "term"
    argv = [sys.executable, "-m", "patchcoder", "train", "--config", str(config), "--out", str(out), "--no-progress"]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (out / "metrics.csv").exists():
        time.sleep(0.05)
    time.sleep(1.0)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2, err.decode()[-2000:]
    assert "--resume" in err.decode()
    (checkpoint,) = (out / "checkpoints").iterdir()
    state = json.loads((checkpoint / "patchcoder_state.json").read_text())
    assert 0 < state["step"] < 400 and checkpoint.name == f"step-{state['step']:06d}"


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_see_different_data_and_end_with_identical_weights(tokens, tmp_path):
    # A real launch, as a user would type it (a fresh interpreter: forking this one after torch has
    # run its thread pools would deadlock the children).
    config = _config_file(tokens, tmp_path / "run.toml", steps=4)
    argv = ["accelerate", "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
            "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(_free_port()),
            "-m", "patchcoder.training", "--config", str(config), "--out", str(tmp_path / "ddp"), "--json",
            "--no-progress"]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    ranks = sorted((json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")),
                   key=lambda r: r["rank"])
    assert [r["rank"] for r in ranks] == [0, 1]
    assert ranks[0]["steps"] == ranks[1]["steps"] == 4
    assert ranks[0]["data_digest"] != ranks[1]["data_digest"]
    assert ranks[0]["weights_digest"] == ranks[1]["weights_digest"]
    assert PatchCoder.from_pretrained(tmp_path / "ddp" / "final").config.d_model == 32
