"""Token shards for the trainer's tests: small pygit2 histories, mined and tokenized for real."""

from __future__ import annotations

import pytest

from patchcoder.mining import mine
from patchcoder.tokenizer.examples import ExampleConfig
from patchcoder.tokenizer.shards import tokenize_dataset

OPERATORS = ["+", "-", "*", "<", ">", "==", "!="]


def grow_history(b, name: str, commits: int) -> None:
    """`commits` small, varied single-function edits to a module, like real bug fixes."""
    values = {i: i for i in range(6)}
    ops = {i: "+" for i in range(6)}
    for c in range(commits):
        i = c % 6
        if c % 2:
            values[i] += c
        else:
            ops[i] = OPERATORS[(OPERATORS.index(ops[i]) + 1 + c) % len(OPERATORS)]
        body = "".join(f"def {name}_{k}(x):\n    return x {ops[k]} {values[k]}\n\n\n" for k in range(6))
        b.commit(f"Fix {name}_{i} for edge case {c}", {f"{name}/core.py": body.encode()})


@pytest.fixture(scope="session")
def mined(session_repo, tmp_path_factory):
    """{repo name: mined folder} for three repositories of 40 commits each."""
    out = {}
    for name in ("alpha", "beta", "gamma"):
        b = session_repo(name)
        grow_history(b, name, 40)
        out[name] = tmp_path_factory.mktemp(f"mined-{name}")
        mine([b.path], out[name], jobs=1, show_progress=False)
    return out


@pytest.fixture(scope="session")
def tokens(mined, tmp_path_factory):
    """Token shards (128-token examples) of alpha and beta, and of gamma for validation."""
    config = ExampleConfig(max_tokens=128, drop_message=0.2)
    out = {}
    for name, folder in mined.items():
        out[name] = tmp_path_factory.mktemp(f"tokens-{name}")
        tokenize_dataset(folder, out[name], config=config, jobs=1)
    return out
