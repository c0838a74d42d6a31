"""DESIGN.md §1: the part folders are installed as patchcoder.<part> and refuse their bare names."""

import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PARTS = ["mining", "tokenizer", "kernels", "training"]


@pytest.mark.parametrize("part", PARTS)
def test_part_is_installed_under_patchcoder(part):
    module = importlib.import_module(f"patchcoder.{part}")
    assert Path(module.__file__).resolve() == ROOT / part / "__init__.py"


@pytest.mark.parametrize("part", PARTS)
def test_bare_name_refuses_to_import(part):
    code = f"import sys; sys.path.insert(0, {str(ROOT)!r}); import {part}"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode != 0
    assert f"patchcoder.{part}" in result.stderr and "ImportError" in result.stderr


@pytest.mark.parametrize("part", PARTS)
def test_bare_name_is_not_on_the_path(part):
    # Outside the source tree, only `patchcoder` is a top-level name (HF's `kernels` must stay free).
    code = f"import importlib.util, sys; sys.exit(importlib.util.find_spec({part!r}) is not None)"
    result = subprocess.run([sys.executable, "-c", code], cwd="/", env={**os.environ, "PYTHONPATH": ""})
    assert result.returncode == 0


def test_console_script_and_module_entry_point():
    for argv in (["patchcoder", "--help"], [sys.executable, "-m", "patchcoder", "--help"]):
        result = subprocess.run(argv, capture_output=True, text=True, cwd="/")
        assert result.returncode == 0, result.stderr
        assert "mine" in result.stdout
