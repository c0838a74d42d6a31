"""A training run's configuration: one dataclass, read from TOML (presets live in training/presets/).

    [model]            PatchCoderConfig fields (vocab_size is taken from the token shards)
    [data]             token-shard folders with mixture weights, the validation folder, sequence length
    [optim]            batch, accumulation, learning-rate schedule, clipping
    [run]              seed, precision, checkpoint / validation / logging cadence
"""

from __future__ import annotations

import dataclasses
import sys
from importlib import resources
from pathlib import Path

from patchcoder.checkpoint import MAX_TOKENS
from patchcoder.ground import schema
from patchcoder.ground.errors import PatchcoderError
from patchcoder.ground.schema import Flag, Number, OneOf, Rule, Text, Whole

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

PRESETS = ("tiny", "default")


@dataclasses.dataclass
class DataSource:
    path: str
    """a token-shard folder (made by `patchcoder tokenize`)"""
    weight: float = 1.0
    """relative share of training rows drawn from this folder"""


@dataclasses.dataclass
class DataConfig:
    train: list[DataSource] = dataclasses.field(default_factory=list)
    """the training mixture"""
    valid: str | None = None
    """token shards for periodic validation (held-out repositories)"""
    seq_len: int = 512
    """longest sequence a batch holds; longer examples are cut (the tokenizer's budget should fit)"""
    rank: list[DataSource] = dataclasses.field(default_factory=list)
    """candidate shards (made by `patchcoder candidates`) for the ranking loss (optim.rank_weight)"""
    rank_valid: str | None = None
    """candidate shards of held-out windows: validation ranking loss and accuracy"""
    rank_len: int = 512
    """longest trie row (a prompt and its candidates); rivals that do not fit are left out"""


@dataclasses.dataclass
class OptimConfig:
    batch_size: int = 16
    """sequences per process per micro-step"""
    grad_accum: int = 1
    """micro-steps per optimizer step"""
    lr: float = 1e-3
    """peak learning rate (AdamW)"""
    min_lr_ratio: float = 0.1
    """the cosine schedule decays to lr × this"""
    warmup_steps: int = 100
    max_steps: int = 1000
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.95
    clip: float = 1.0
    """gradient-norm clipping"""
    lm_loss_weight: float = 0.0
    """weight of an extra next-token loss on the prompt (code) tokens; the main loss is on the edit script"""
    rank_weight: float = 0.0
    """weight of the ranking loss (0: off): per window of data.rank, a softmax over its candidates' mean
    log-probabilities (what rank mode compares) whose target is the true script"""
    rank_batch: int = 8
    """candidate-shard examples per process per micro-step"""
    rank_temperature: float = 1.0
    """the ranking softmax reads mean log-probabilities divided by this"""


@dataclasses.dataclass
class RunConfig:
    seed: int = 0
    mixed_precision: str = "bf16"
    """'bf16' (autocast; uses the CPU's matrix units where it has them) or 'no'"""
    checkpoint_every: int = 200
    """optimizer steps between checkpoints (also written at the end and on SIGTERM/SIGINT)"""
    eval_every: int = 200
    eval_batches: int = 20
    log_every: int = 10
    compile: bool = False
    """torch.compile the model (tens of seconds of warm-up; worth it for long runs)"""
    tokenizer: str | None = None
    """vocabulary file of the token shards; None = the vocabulary shipped with patchcoder"""
    init_from: str | None = None
    """start from the weights of an exported model (a `final/` folder): a new stage of training, with a
    fresh optimizer and schedule; the model settings must match"""


@dataclasses.dataclass
class TrainConfig:
    model: dict = dataclasses.field(default_factory=dict)
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    optim: OptimConfig = dataclasses.field(default_factory=OptimConfig)
    run: RunConfig = dataclasses.field(default_factory=RunConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, raw: dict, origin: str = "config") -> TrainConfig:
        unknown = sorted(set(raw) - {"model", "data", "optim", "run"})
        if unknown:
            raise PatchcoderError(f"{origin}: unknown section(s) {unknown}")
        try:
            data = dict(raw.get("data", {}))
            for key in ("train", "rank"):
                if not isinstance(data.get(key, []), list):
                    raise ValueError(f"data.{key} must be a list of token-shard folders, got {schema.shown(data[key])}")
                data[key] = [DataSource(**s) if isinstance(s, dict) else DataSource(str(s)) for s in data.get(key, [])]
            return cls(
                model=dict(raw.get("model", {})),
                data=DataConfig(**data),
                optim=OptimConfig(**raw.get("optim", {})),
                run=RunConfig(**raw.get("run", {})),
            )
        except (TypeError, ValueError) as exc:  # a section that is not a table, an unknown key
            raise PatchcoderError(f"{origin}: {exc}") from None

    def validate(self) -> None:
        """Every setting against its type and range (RULES; [model] against the model's own), then the
        run as a whole: one PatchcoderError naming each bad setting as SECTION.KEY."""
        from patchcoder.model import CONFIG_RULES, config_problems

        problems = []
        for section in ("data", "optim", "run"):
            problems += schema.problems(dataclasses.asdict(getattr(self, section)), RULES[section], f"{section}.")
        for key in ("train", "rank"):
            for i, source in enumerate(getattr(self.data, key)):
                problems += schema.problems(dataclasses.asdict(source), SOURCE_RULES, f"data.{key}[{i}].")
        weight = self.optim.rank_weight
        if isinstance(weight, (int, float)) and not isinstance(weight, bool) and weight > 0 and not self.data.rank:
            problems.append("optim.rank_weight > 0 needs candidate shards: give [data] rank = [...] or --rank DIR")
        unknown = sorted(set(self.model) - set(CONFIG_RULES))
        if unknown:
            problems.append(f"[model] has no setting(s) {', '.join(map(repr, unknown))}; "
                            f"known: {', '.join(CONFIG_RULES)}")
        problems += config_problems(self.model, "model.")
        if not self.data.train:
            problems.append("no training data: give [data] train = [...] or --data DIR")
        if problems:
            raise PatchcoderError("; ".join(problems))


# What each setting may be (patchcoder.ground.schema); [model] follows patchcoder.model.CONFIG_RULES.
SOURCE_RULES: dict[str, Rule] = {"path": Text(), "weight": Number(0, above=True)}
RULES: dict[str, dict[str, Rule]] = {
    "data": {
        "valid": Text(optional=True),
        "seq_len": Whole(1, MAX_TOKENS),  # becomes the model folder's prompt budget
        "rank_valid": Text(optional=True),
        "rank_len": Whole(2, 65_536),
    },
    "optim": {
        "batch_size": Whole(1),
        "grad_accum": Whole(1),
        "lr": Number(0),  # 0: steps that change nothing (a check that an export round-trips)
        "min_lr_ratio": Number(0, 1),
        "warmup_steps": Whole(0),
        "max_steps": Whole(1),
        "weight_decay": Number(0),
        "beta1": Number(0, 1, below=True),
        "beta2": Number(0, 1, below=True),
        "clip": Number(0, above=True),
        "lm_loss_weight": Number(0),
        "rank_weight": Number(0),
        "rank_batch": Whole(1),
        "rank_temperature": Number(0, above=True),
    },
    "run": {
        "seed": Whole(0, 2**32 - 1),  # numpy's seeds
        "mixed_precision": OneOf("bf16", "no"),
        "checkpoint_every": Whole(1),
        "eval_every": Whole(1),
        "eval_batches": Whole(1),
        "log_every": Whole(1),
        "compile": Flag(),
        "tokenizer": Text(optional=True),
        "init_from": Text(optional=True),
    },
}


def load_config(path: str | Path) -> TrainConfig:
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise PatchcoderError(f"config file {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise PatchcoderError(f"{path} is not valid TOML: {exc}") from None
    config = TrainConfig.from_dict(raw, origin=str(path))
    base = path.parent
    for source in [*config.data.train, *config.data.rank]:  # relative data paths are relative to the config file
        source.path = str((base / source.path).resolve()) if not Path(source.path).is_absolute() else source.path
    for key in ("valid", "rank_valid"):
        if getattr(config.data, key) and not Path(getattr(config.data, key)).is_absolute():
            setattr(config.data, key, str((base / getattr(config.data, key)).resolve()))
    return config


def load_preset(name: str) -> TrainConfig:
    if name not in PRESETS:
        raise PatchcoderError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    text = resources.files("patchcoder.training").joinpath("presets", f"{name}.toml").read_text()
    return TrainConfig.from_dict(tomllib.loads(text), origin=f"preset {name}")
