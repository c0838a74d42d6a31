"""The model folder: what a trained model is on disk, written and read only here.

    model.safetensors   the weights (never pickle)                        save_model / load_model
    config.json         PatchCoderConfig, every field given and checked (types, bounds, divisibility)
    tokenizer.json      the vocabulary it was trained with (absent: the default one)
    training.json       how it was made: {"steps", "tokens", "config": the training TOML as JSON}
    decoding.json       how the product decodes with it, every key optional:
                        max_tokens  the prompt budget: the example length it was trained with, at most
                                    MAX_TOKENS (older folders: read from training.json's data.seq_len)
                        mode        "generate", "rank" or "both" (default "generate")
                        keep_heads  ranking reads in full only the candidates under the K best edit heads
                        precision   "auto", "bf16" or "fp32"
                        min_score   the calibrated threshold below which suggest and the hook stay quiet
                        min_score_by_edit  a threshold per kind of edit (patchcoder.ground.sstub.EDIT_KINDS: the
                                    single-statement classes, inserted or deleted lines, "other"), in place of min_score
                                    for a patch of that kind (`patchcoder eval --calibrate R --by-edit`)
                        undo_weight rank mode: the best candidate's score less this times the mean log p
                                    of undoing it, read in the window it makes (ranking.undo_scores)
                        (keys ending in "why"/"from" say where a value came from; they are not read;
                        any other key is refused, so a misspelt option is not silently ignored)

`save_checkpoint` writes a whole folder (training's export), `load_checkpoint` reads one for the
product, and `save_min_score` records a calibration (`patchcoder eval --save-min-score`). Every
problem with a folder is one `CheckpointError` line naming the file and the field.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from patchcoder.ground.atomic import atomic_directory, atomic_write
from patchcoder.ground.errors import PatchcoderError
from patchcoder.ground.schema import Number, OneOf, Rule, Table, Whole, problem, shown
from patchcoder.ground.sstub import EDIT_KINDS

if TYPE_CHECKING:  # loaded when a model is: reading decoding.json needs no torch
    import torch

    from patchcoder.model import PatchCoder, PatchCoderConfig

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
TOKENIZER_FILE = "tokenizer.json"
TRAINING_FILE = "training.json"
DECODING_FILE = "decoding.json"
SHIPPED_MODEL = Path(__file__).parent / "assets" / "model"  # the model patchcoder ships with

MODES = ("generate", "rank", "both")
PRECISIONS = ("auto", "bf16", "fp32")
MAX_TOKENS = 65_536  # the longest prompt budget a folder may ask for (memory grows with it)
# What each decoding.json option may be (patchcoder.ground.schema); None means unset, except for mode and precision.
DECODING_RULES: dict[str, Rule] = {
    "max_tokens": Whole(1, MAX_TOKENS),
    "mode": OneOf(*MODES),
    "min_score": Number(),
    "min_score_by_edit": Table(EDIT_KINDS, Number()),
    "keep_heads": Whole(1),
    "precision": OneOf(*PRECISIONS),
    "undo_weight": Number(0),
}
DECODING_KEYS = tuple(DECODING_RULES)


class CheckpointError(PatchcoderError):
    """A checkpoint directory that cannot be loaded (missing, truncated, or for another model)."""


# ----------------------------------------------------------------------------------------------
# Weights and architecture


def save_model(model: PatchCoder, directory: str | os.PathLike) -> None:
    """Write config.json and model.safetensors (no pickle)."""
    from safetensors.torch import save_file

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    if model.config.tie_embeddings:
        state.pop("head.weight")  # the same tensor as embed.weight
    (directory / CONFIG_FILE).write_text(json.dumps(model.config.to_dict(), indent=2) + "\n")
    save_file(state, str(directory / WEIGHTS_FILE), metadata={"format": "pt"})


def load_model(directory: str | os.PathLike, device: str | torch.device = "cpu", *,
               config: PatchCoderConfig | None = None) -> PatchCoder:
    """The model of a folder written by save_model; every problem is one CheckpointError line.
    `config`: the architecture, when the folder has weights but no config.json (a training checkpoint)."""
    import torch
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from patchcoder.model import PatchCoder, PatchCoderConfig

    directory = Path(directory)
    config_path, weights_path = directory / CONFIG_FILE, directory / WEIGHTS_FILE
    for path in (config_path, weights_path) if config is None else (weights_path,):
        if not path.is_file():
            raise CheckpointError(f"{path}: missing; is {directory} a patchcoder checkpoint directory?")
    if config is None:
        try:
            config = PatchCoderConfig.from_dict(json.loads(config_path.read_text()), complete=True)
        except (OSError, ValueError, RecursionError) as e:  # JSONDecodeError, UnicodeDecodeError: ValueErrors
            raise CheckpointError(f"{config_path}: not a valid model config ({e})") from None
    try:
        state = load_file(str(weights_path), device=str(device))
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{weights_path}: unreadable or truncated safetensors file ({e})") from None
    with torch.device("meta"):  # no random initialisation: every weight comes from the file
        model = PatchCoder(config)
    expected = {k: v for k, v in model.state_dict().items()}
    if config.tie_embeddings:
        expected.pop("head.weight")
    missing = sorted(set(expected) - set(state))
    extra = sorted(set(state) - set(expected))
    if missing or extra:
        raise CheckpointError(
            f"{weights_path}: tensors do not match config.json (missing {missing[:3]}, unexpected {extra[:3]})"
        )
    for name, tensor in state.items():
        if tensor.shape != expected[name].shape:
            raise CheckpointError(
                f"{weights_path}: tensor {name} has shape {tuple(tensor.shape)}, "
                f"config.json implies {tuple(expected[name].shape)}"
            )
    model.load_state_dict({k: v.to(expected[k].dtype) for k, v in state.items()}, strict=False, assign=True)
    if config.tie_embeddings:
        model.head.weight = model.embed.weight
    model.reset_buffers()
    return model


# ----------------------------------------------------------------------------------------------
# The whole folder


@dataclasses.dataclass
class Checkpoint:
    """A model folder as the product uses it."""

    model: PatchCoder
    tokenizer: object  # patchcoder.tokenizer.CodeTokenizer
    decoding: dict  # the decoding options the folder sets (read_decoding)
    directory: Path


def save_checkpoint(directory: str | os.PathLike, model: PatchCoder, tokenizer, *, training: dict,
                    max_tokens: int) -> Path:
    """Write a complete model folder (weights, config, tokenizer, `training` as training.json, the
    prompt budget `max_tokens` in decoding.json), replacing `directory` once all of it is written."""
    decoding = {"max_tokens": check_option("max_tokens", max_tokens)}
    directory = Path(directory)
    with atomic_directory(directory) as tmp:
        save_model(model, tmp)
        tokenizer.save(tmp / TOKENIZER_FILE)
        (tmp / TRAINING_FILE).write_text(json.dumps(training, indent=1))
        (tmp / DECODING_FILE).write_text(json.dumps(decoding, indent=1) + "\n")
    return directory


def load_checkpoint(path: str | os.PathLike | None = None) -> Checkpoint:
    """A model folder (model.safetensors, config.json, tokenizer.json, …); None: the shipped model."""
    from patchcoder.tokenizer.vocab import CodeTokenizer

    directory = Path(path) if path is not None else SHIPPED_MODEL
    if path is None and not (directory / WEIGHTS_FILE).exists():
        raise PatchcoderError(f"the model shipped with patchcoder is missing from {directory} (an incomplete "
                              "install?); reinstall patchcoder or pass a checkpoint folder made by `patchcoder train`")
    model = load_model(directory)
    tokenizer_file = directory / TOKENIZER_FILE
    tokenizer = CodeTokenizer.load(tokenizer_file) if tokenizer_file.exists() else CodeTokenizer.default()
    if tokenizer.vocab_size != model.config.vocab_size:
        raise CheckpointError(f"{directory}: the model's vocabulary ({model.config.vocab_size}) is not the "
                              f"tokenizer's ({tokenizer.vocab_size})")
    return Checkpoint(model, tokenizer, read_decoding(directory), directory)


# ----------------------------------------------------------------------------------------------
# decoding.json


def read_decoding(directory: str | os.PathLike) -> dict:
    """The decoding options a model folder sets (each may be absent): those of its decoding.json, and
    the prompt budget from training.json when decoding.json does not give it (folders made before it did)."""
    directory = Path(directory)
    out = {}
    if "max_tokens" not in (own := _read_decoding_file(directory / DECODING_FILE)):
        seq_len = _trained_seq_len(directory / TRAINING_FILE)
        if seq_len is not None:
            out["max_tokens"] = seq_len
    return out | own


def _read_decoding_file(path: Path) -> dict:
    """The options decoding.json at `path` sets, checked ({} without the file)."""
    if not path.exists():
        return {}
    data = _json_object(path)
    unknown = sorted(k for k in data if k not in DECODING_RULES and not k.endswith(("why", "from")))
    if unknown:
        raise CheckpointError(f"{path}: unknown option(s) {', '.join(map(repr, unknown))}; "
                              f"known: {', '.join(DECODING_KEYS)}")
    out = {}
    for key in DECODING_KEYS:
        if data.get(key) is not None:
            try:
                out[key] = check_option(key, data[key])
            except PatchcoderError as exc:
                raise CheckpointError(f"{path}: {exc}") from None
    return out


def _json_object(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError: ValueErrors
        raise CheckpointError(f"{path}: not readable JSON ({exc})") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: not a JSON object")
    return data


def _trained_seq_len(path: Path) -> int | None:
    """data.seq_len of a training.json (the training configuration's schema), if it has one: checked,
    since it becomes the prompt budget."""
    if not path.exists():
        return None
    data = _json_object(path)
    for where in ("config", "config.data"):
        data = data.get(where.rpartition(".")[2])
        if data is None:
            return None
        if not isinstance(data, dict):
            raise CheckpointError(f"{path}: {where} must be a JSON object, got {shown(data)}")
    seq_len = data.get("seq_len")
    if seq_len is not None and (line := problem("config.data.seq_len", seq_len, DECODING_RULES["max_tokens"])):
        raise CheckpointError(f"{path}: {line}")
    return seq_len


def check_option(key: str, value):
    """`value` if it is a valid decoding option `key` (None: unset, except for mode and precision),
    else a PatchcoderError naming the option."""
    if value is None and key not in ("mode", "precision"):
        return None
    if (line := problem(key, value, DECODING_RULES[key])) is not None:
        raise PatchcoderError(line)
    if key == "min_score_by_edit":
        return {kind: float(v) for kind, v in value.items()}
    return float(value) if key in ("min_score", "undo_weight") else value


_NOT_GIVEN = object()


def save_min_score(directory: str | os.PathLike, min_score: float | None, why: str, mode: str | None = None,
                   keep_heads: int | None | object = _NOT_GIVEN, undo_weight: float | None | object = _NOT_GIVEN,
                   by_edit: dict[str, float] | None = None) -> Path:
    """Record a calibrated `min_score` (None: no threshold) in a model folder's decoding.json, keeping
    its other keys; written atomically. `by_edit`: thresholds per kind of edit calibrated with it (None or
    empty: none, and any the folder had are removed, since they were calibrated against another threshold).
    `mode`, `keep_heads` and `undo_weight`, when given: the decoding
    mode, head pruning and undo weight it was measured with, which must be the folder's own (ranking fewer
    or more candidates changes which one wins and its score, and the scores of different modes or undo
    weights are not on one scale)."""
    path = Path(directory) / DECODING_FILE
    data = {}
    if path.exists():
        _read_decoding_file(path)  # a clear error for a file that is not a valid decoding.json
        data = json.loads(path.read_text())
    own = data.get("mode", "generate")
    if mode is not None and mode != own:
        raise PatchcoderError(f"the threshold was measured in {mode} mode but {directory} decodes in {own} mode; "
                              f"calibrate with --mode {own}")
    own_heads = data.get("keep_heads")
    if keep_heads is not _NOT_GIVEN and own != "generate" and keep_heads != own_heads:
        raise PatchcoderError(f"the threshold was measured with keep_heads {keep_heads} but {directory} ranks with "
                              f"keep_heads {own_heads}; calibrate " +
                              (f"with --keep-heads {own_heads}" if own_heads else "without --keep-heads"))
    own_undo = data.get("undo_weight") or None
    if undo_weight is not _NOT_GIVEN and own != "generate" and (undo_weight or None) != own_undo:
        raise PatchcoderError(f"the threshold was measured with undo_weight {undo_weight} but {directory} ranks with "
                              f"undo_weight {own_undo}; calibrate " +
                              (f"with --undo-weight {own_undo}" if own_undo else "without --undo-weight"))
    if by_edit:
        check_option("min_score_by_edit", by_edit)
    data["min_score"] = min_score  # unrounded: it lies between two measured scores
    data["min_score_from"] = why
    for key in [k for k in data if k.startswith("min_score_by_edit")]:
        del data[key]
    if by_edit:
        data["min_score_by_edit"] = by_edit
    atomic_write(path, json.dumps(data, indent=1) + "\n")
    return path
