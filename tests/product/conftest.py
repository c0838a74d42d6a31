"""A real (tiny) model that has learned one fix by heart, for the product's tests: trained through the
real pipeline (parquet row → token shards → Accelerate trainer → safetensors export) in a few seconds."""

from __future__ import annotations

import hashlib

import pytest

from patchcoder.mining.shards import write_shard
from patchcoder.tokenizer.examples import ExampleConfig
from patchcoder.tokenizer.shards import tokenize_dataset
from patchcoder.training.config import DataConfig, DataSource, OptimConfig, RunConfig, TrainConfig
from patchcoder.training.loop import train

BUGGY = "def area(width, height):\n    return width + height\n"
FIXED = "def area(width, height):\n    return width * height\n"
PATH = "geometry.py"


def _blob(text: str) -> str:
    data = text.encode()
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@pytest.fixture(scope="session")
def fixer(tmp_path_factory):
    """The export folder of a model that rewrites BUGGY (at PATH, no message) into FIXED."""
    root = tmp_path_factory.mktemp("fixer")
    row = dict(repo="demo", commit="1" * 40, parent="0" * 40, author_time=0, message="", path=PATH, old_path=PATH,
               change="M", language="python", old=BUGGY, new=FIXED, old_blob=_blob(BUGGY), new_blob=_blob(FIXED),
               diff="", added=1, deleted=1, hunks=1, sstub="change_binary_operator")
    write_shard(root / "mined" / "shards" / "demo" / "00000.parquet", [row])
    tokenize_dataset(root / "mined", root / "tokens", config=ExampleConfig(max_tokens=128, drop_message=1.0))
    config = TrainConfig(
        model=dict(d_model=64, n_layers=1, n_heads=2, n_kv_heads=1, loops=2, window=8),
        data=DataConfig(train=[DataSource(str(root / "tokens"))], seq_len=128),
        optim=OptimConfig(batch_size=4, lr=1e-2, warmup_steps=5, max_steps=80, min_lr_ratio=0.5),
        run=RunConfig(checkpoint_every=1000, eval_every=1000, log_every=10),
    )
    result = train(config, root / "run", show_progress=False)
    assert result.train_loss < 0.05, f"the fixer did not learn its fix (loss {result.train_loss})"
    return result.final_dir
