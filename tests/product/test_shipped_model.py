"""The default model shipped inside the package: complete, small, loaded without running code, and
it fixes the bug planted in examples/ exactly as README's main job says."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

from patchcoder import Repairer
from patchcoder.checkpoint import SHIPPED_MODEL, read_decoding
from patchcoder.tokenizer.vocab import CodeTokenizer

ROOT = Path(__file__).resolve().parents[2]
PLANTED = ("    if not os.path.exists(path):\n", "    if os.path.exists(path):\n")  # the bug, its fix


def test_the_shipped_model_is_complete_small_and_loads():
    names = {p.name for p in SHIPPED_MODEL.iterdir()}
    assert {"model.safetensors", "config.json", "tokenizer.json", "training.json", "MODEL_CARD.md"} <= names
    assert (SHIPPED_MODEL / "model.safetensors").stat().st_size <= 32 * 2**20
    repairer = Repairer.load()  # None: the shipped model
    assert repairer.tokenizer.fingerprint == CodeTokenizer.default().fingerprint
    assert repairer.model.config.loops == 2 and repairer.max_tokens == 256
    card = (SHIPPED_MODEL / "MODEL_CARD.md").read_text()
    training = json.loads((SHIPPED_MODEL / "training.json").read_text())
    steps = training["steps"]
    # the prompt budget at the folder's top level is the sequence length it was trained with
    assert read_decoding(SHIPPED_MODEL)["max_tokens"] == training["config"]["data"]["seq_len"] == 256
    assert f"{steps:,}" in card or str(steps) in card  # the card describes these weights


def test_readme_main_job_fixes_the_planted_bug(tmp_path):
    readme = (ROOT / "README.md").read_text()
    command = re.search(r'^pip install .* && patchcoder fix --test "python (\S+)" (\S+)$', readme, re.M)
    assert command, "README's main job runs patchcoder fix on a file in examples/ with a check from examples/"
    check, example = ROOT / command.group(1), ROOT / command.group(2)
    assert example.parent.name == check.parent.name == "examples"
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    assert subprocess.run([sys.executable, command.group(1)], cwd=tmp_path).returncode != 0  # the bug is there
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    test = f'"{sys.executable}" {command.group(1)}'  # the README's `python`, as this interpreter
    run = subprocess.run([sys.executable, "-m", "patchcoder", "fix", "--test", test, command.group(2), "--json",
                          "--no-progress"], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert run.returncode == 1, run.stderr  # 1: a fix was found
    (fix, *_) = json.loads(run.stdout)["fixes"]
    assert (tmp_path / command.group(2)).read_text() == example.read_text()  # shown, not written
    subprocess.run(["git", "apply", "-"], input=fix["diff"], text=True, cwd=tmp_path, check=True)
    buggy, fixed = PLANTED
    assert example.read_text().count(buggy) == 1
    assert (tmp_path / command.group(2)).read_text() == example.read_text().replace(buggy, fixed)
    assert subprocess.run([sys.executable, command.group(1)], cwd=tmp_path).returncode == 0
