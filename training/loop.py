"""The training loop, through Hugging Face Accelerate: one process on a CPU, several (gloo) or GPUs (NCCL).

    accelerator = Accelerator(mixed_precision=...)      device, bf16 autocast, DDP
    for step in ...: grad_accum micro-batches → clip → AdamW → warmup + cosine learning rate
    every checkpoint_every steps, at the end and on SIGTERM/SIGINT: save_state + our state as JSON

A run folder holds checkpoints/step-NNNNNN/ (the newest two), metrics.csv, tensorboard/, loss.png
and, at the end, final/: a model folder (patchcoder.checkpoint: weights, config.json, tokenizer.json,
training.json, decoding.json with the prompt budget).
Resuming from a run folder continues with the same data order and reproduces the losses.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
import os
import shutil
import signal
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from patchcoder.ground.atomic import TEMP_SUFFIX, replace_directory, temp_directory
from patchcoder.ground.errors import PatchcoderError
from patchcoder.training.config import TrainConfig
from patchcoder.training.data import CandidateBatches, MixtureBatches, validation_batches
from patchcoder.training.logs import TrainingLog

STATE_NAME = "patchcoder_state.json"


@dataclasses.dataclass
class TrainResult:
    steps: int
    tokens: int
    final_dir: Path | None
    train_loss: float | None
    valid_loss: float | None
    seconds: float
    interrupted: bool = False
    rank: int = 0
    weights_digest: str = ""  # sha256 of this rank's parameters: equal on every rank after DDP
    data_digest: str = ""  # sha256 of the token ids this rank trained on in this invocation
    rank_tokens: int = 0  # tokens of the candidate tries read by the ranking loss


def learning_rate(step: int, optim) -> float:
    """Linear warmup to `lr`, then cosine decay to `lr * min_lr_ratio` at `max_steps`."""
    if step < optim.warmup_steps:
        return optim.lr * (step + 1) / optim.warmup_steps
    progress = min(1.0, (step - optim.warmup_steps) / max(1, optim.max_steps - optim.warmup_steps))
    floor = optim.lr * optim.min_lr_ratio
    return floor + (optim.lr - floor) * 0.5 * (1 + math.cos(math.pi * progress))


def edit_loss(logits: torch.Tensor, ids: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Next-token cross-entropy weighted per target token (1 on the edit script, lm weight on code, 0 on pad)."""
    # logits (B, T, V) predict ids[:, 1:]; weights belong to the predicted tokens
    targets, w = ids[:, 1:], weights[:, 1:]
    losses = F.cross_entropy(logits[:, :-1].float().reshape(-1, logits.size(-1)), targets.reshape(-1), reduction="none")
    return (losses * w.reshape(-1)).sum() / w.sum().clamp_min(1.0)


def rank_loss(model, batch, temperature: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """The listwise ranking loss of a TrieBatch (training.data) and the share of its examples whose
    true script scores strictly highest: per example, a softmax over its candidates' mean
    log-probability per token — the score rank mode compares — divided by `temperature`, with the
    true script (each example's first candidate) as the target. One tree forward reads every
    example's candidates as a trie; only the states that predict a candidate token meet the head."""
    h = model(batch.ids, batch.parents, hidden=True)  # (B, T, C)
    states = h[batch.node_row, batch.node_parent]  # (N, C): what predicts each candidate token
    unwrapped = getattr(model, "module", model)  # DDP keeps the model in .module
    logp = unwrapped.head(states).float().log_softmax(-1).gather(1, batch.node_token[:, None])[:, 0]  # (N,)
    scores = (logp[batch.paths] * batch.path_mask).sum(1) / batch.path_mask.sum(1)  # (C,)
    counts = torch.bincount(batch.owner)
    first = torch.cumsum(counts, 0) - counts
    position = torch.arange(len(batch.owner), device=scores.device) - first[batch.owner]
    table = torch.full((len(counts), int(counts.max())), float("-inf"), device=scores.device)
    table = table.index_put((batch.owner, position), scores / temperature)
    loss = (torch.logsumexp(table, dim=1) - table[:, 0]).mean()
    rivals = table[:, 1:].max(dim=1).values if table.shape[1] > 1 else torch.full_like(table[:, 0], float("-inf"))
    return loss, (table[:, 0] > rivals).float().mean().detach()


def _param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """Weight decay on the matrices only: not on norms, biases, the embedding, the loop scales, nor the
    G-SWA gates (decay would pull every gate towards 0.5, the global/local balance it starts from)."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        matrix = p.dim() >= 2 and "embed" not in name and ".gate." not in f".{name}."
        (decay if matrix else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


class _StopFlag:
    """SIGTERM/SIGINT ask the loop to checkpoint and stop at the end of the current step."""

    def __init__(self):
        self.requested = False
        self._previous = {}

    def __enter__(self):
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                self._previous[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread (e.g. inside a test launcher)
                pass
        return self

    def _handle(self, signum, frame):
        self.requested = True

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def _checkpoints(out: Path) -> list[Path]:
    """A run's finished checkpoints, oldest first (by step: past step 999,999 the names grow a digit)."""
    root = out / "checkpoints"
    if not root.exists():
        return []
    found = [p for p in root.glob("step-*") if p.is_dir() and not p.name.endswith(TEMP_SUFFIX)]
    return sorted((p for p in found if p.name[5:].isdigit()), key=lambda p: int(p.name[5:]))


# What --resume may change: how long the run is, and what it logs, evaluates and checkpoints. Everything else
# decides the weights, and a changed value would continue one run as another while recording only the new one.
# The token folders are compared by what they hold (`_source_digests`), not by how their paths are written, and the
# vocabulary by its fingerprint when the checkpoint records one.
RESUME_MAY_CHANGE = frozenset({"optim.max_steps", "run.checkpoint_every", "run.eval_every", "run.eval_batches",
                               "run.log_every", "run.compile", "run.init_from", "data.valid", "data.rank_valid"})


def _changed_settings(saved: dict, now: dict) -> list[str]:
    """The settings (section.key) that differ between a checkpoint's configuration and this run's. A key the
    checkpoint lacks (a setting added since) counts as its default. The paths of the token folders and of the
    vocabulary are not compared (the same folder can be written many ways): `_source_digests` and the
    vocabulary's fingerprint are."""
    try:
        saved = TrainConfig.from_dict(saved).to_dict()
    except PatchcoderError:
        pass
    changed = []
    for section in sorted(set(saved) | set(now)):
        old, new = saved.get(section, {}), now.get(section, {})
        if not isinstance(old, dict) or not isinstance(new, dict):
            changed += [section] if old != new else []
            continue
        for key in sorted(set(old) | set(new)):
            name = f"{section}.{key}"
            a, b = old.get(key), new.get(key)
            if name in ("data.train", "data.rank"):
                a, b = ([s["weight"] for s in v] if isinstance(v, list) else v for v in (a, b))
            elif name == "run.tokenizer":
                continue
            if name not in RESUME_MAY_CHANGE and a != b:
                changed.append(f"{name}: {old.get(key)!r} -> {new.get(key)!r}")
    return changed


def _source_digests(folders) -> list[str]:
    """What each token folder holds (its source, how it was made, its units), independent of its path."""
    return [hashlib.sha256(json.dumps({k: f.manifest.get(k) for k in ("data", "config", "vocab_fingerprint", "units")},
                                      sort_keys=True).encode()).hexdigest()[:16] for f in folders]


def _read_state(checkpoint: Path) -> dict:
    """A checkpoint's own state file; a damaged one is one CheckpointError line that names it."""
    from patchcoder.checkpoint import CheckpointError

    path = checkpoint / STATE_NAME
    try:
        state = json.loads(path.read_text())
        if not isinstance(state, dict) or not isinstance(state.get("config"), dict) or \
                not isinstance(state.get("step"), int) or not isinstance(state.get("batches"), list):
            raise ValueError("config, step or batches missing")
        return state
    except (OSError, ValueError, RecursionError) as exc:
        raise CheckpointError(f"{path}: damaged training state ({exc}){_older_hint(checkpoint)}") from None


def _older_hint(checkpoint: Path) -> str:
    found = _checkpoints(checkpoint.parent.parent)
    older = found[:found.index(checkpoint)] if checkpoint in found else []
    return f"; resume from the checkpoint before it with --resume {older[-1]}" if older else ""


def latest_checkpoint(run_dir: str | os.PathLike) -> Path | None:
    found = _checkpoints(Path(run_dir))
    return found[-1] if found else None


def train(config: TrainConfig, out: str | os.PathLike, *, resume: str | os.PathLike | None = None,
          max_steps: int | None = None, show_progress: bool = True, stop_after: int | None = None) -> TrainResult:
    """Train (or continue) a model; see the module docstring. `stop_after` ends the run early at that
    step with a checkpoint, as a signal would (for tests and staged training)."""
    from accelerate import Accelerator
    from accelerate.utils import set_seed

    from patchcoder.checkpoint import load_model
    from patchcoder.model import PatchCoder, PatchCoderConfig
    from patchcoder.tokenizer.loader import TokenShards
    from patchcoder.tokenizer.vocab import CodeTokenizer

    started = time.perf_counter()
    if max_steps is not None:
        config.optim.max_steps = max_steps
    config.validate()
    out = Path(out)
    resume_dir = Path(resume) if resume is not None else None
    if resume_dir is None and (_checkpoints(out) or (out / "final").exists()):
        raise PatchcoderError(f"{out} already holds a training run; continue it with --resume {out}, "
                              "or choose another --out")
    checkpoint = None
    if resume_dir is not None:
        checkpoint = latest_checkpoint(resume_dir) if (resume_dir / "checkpoints").exists() else resume_dir
        if checkpoint is None or not (checkpoint / STATE_NAME).exists():
            raise PatchcoderError(f"{resume_dir} holds no training checkpoint to resume from")
        saved = _read_state(checkpoint)
        if saved["config"].get("model") != config.to_dict()["model"]:
            raise PatchcoderError(f"{checkpoint} was trained with a different model configuration")
        if changed := _changed_settings(saved["config"], config.to_dict()):
            raise PatchcoderError(f"{checkpoint} was trained with other settings ({'; '.join(changed)}); resume with "
                                  "the same ones (only optim.max_steps and what is logged, evaluated and checkpointed "
                                  "may change), or start a new stage from its weights with --init-from")

    accelerator = Accelerator(mixed_precision=config.run.mixed_precision, cpu=not torch.cuda.is_available())
    main = accelerator.is_main_process
    set_seed(config.run.seed)

    sources = [(TokenShards(s.path), s.weight) for s in config.data.train]
    for shards, _ in sources:
        budget = shards.manifest["config"]["max_tokens"]
        if budget > config.data.seq_len:
            raise PatchcoderError(f"{shards.directory} holds examples of up to {budget} tokens, more than seq_len "
                                  f"{config.data.seq_len}: tokenize with --max-tokens {config.data.seq_len}")
    ranking = config.optim.rank_weight > 0
    rank_sources = [(TokenShards(s.path), s.weight) for s in config.data.rank] if ranking else []
    tokenizer = CodeTokenizer.load(config.run.tokenizer) if config.run.tokenizer else CodeTokenizer.default()
    valid_shards = TokenShards(config.data.valid) if config.data.valid else None
    rank_valid_shards = TokenShards(config.data.rank_valid) if ranking and config.data.rank_valid else None
    every = [s for s, _ in sources + rank_sources] + [s for s in (valid_shards, rank_valid_shards) if s is not None]
    for shards in every:
        if shards.manifest["vocab_fingerprint"] != tokenizer.fingerprint:
            raise PatchcoderError(f"{shards.directory} was not made with the configured tokenizer "
                                  "(set [run] tokenizer to the vocabulary file it was made with)")
    if checkpoint is not None and saved.get("tokenizer", tokenizer.fingerprint) != tokenizer.fingerprint:
        raise PatchcoderError(f"{checkpoint} was trained with another vocabulary than the configured tokenizer")
    sources_held = {"train": _source_digests(s for s, _ in sources), "rank": _source_digests(s for s, _ in rank_sources)}
    if checkpoint is not None and saved.get("sources", sources_held) != sources_held:
        raise PatchcoderError(f"{checkpoint} was trained on other token folders (or these were made again since); "
                              "resume with the same ones, or start a new stage from its weights with --init-from")
    try:
        model_config = PatchCoderConfig.from_dict({**config.model, "vocab_size": tokenizer.vocab_size})
    except (ValueError, TypeError) as exc:
        raise PatchcoderError(f"[model] settings: {exc}") from None
    model = PatchCoder(model_config)
    if config.run.init_from and checkpoint is None:
        _check_start_vocabulary(Path(config.run.init_from), tokenizer)
        _start_from(model, load_model(config.run.init_from), config.run.init_from, announce=main)
    optimizer = torch.optim.AdamW(_param_groups(model, config.optim.weight_decay), lr=config.optim.lr,
                                  betas=(config.optim.beta1, config.optim.beta2))
    pad_to = config.data.seq_len if config.run.compile else 64  # a compiled model wants one shape
    batches = MixtureBatches(sources, config.optim.batch_size, config.data.seq_len, seed=config.run.seed,
                             rank=accelerator.process_index, world_size=accelerator.num_processes,
                             lm_weight=config.optim.lm_loss_weight, pad_to=pad_to)
    valid = None
    if config.data.valid:
        valid = validation_batches(valid_shards, config.optim.batch_size, config.data.seq_len, config.run.eval_batches)
    rank_batches = rank_valid = None
    if ranking:
        rank_batches = CandidateBatches(rank_sources, config.optim.rank_batch, config.data.rank_len,
                                        seed=config.run.seed, rank=accelerator.process_index,
                                        world_size=accelerator.num_processes)  # trie rows are not compiled
        if config.data.rank_valid:
            rank_valid = validation_batches(rank_valid_shards, config.optim.rank_batch,
                                            config.data.rank_len, config.run.eval_batches, kind=CandidateBatches)
    model, optimizer = accelerator.prepare(model, optimizer)
    forward = torch.compile(model) if config.run.compile else model

    step, tokens, rank_tokens = 0, 0, 0
    if checkpoint is not None:
        from patchcoder.checkpoint import CheckpointError

        try:
            accelerator.load_state(str(checkpoint))
            step, tokens, rank_tokens = saved["step"], saved["tokens"], saved.get("rank_tokens", 0)
            batches.load_state_dict(saved["batches"][accelerator.process_index])
            if rank_batches is not None and saved.get("rank_batches"):  # started without ranking: from the start
                rank_batches.load_state_dict(saved["rank_batches"][accelerator.process_index])
        except PatchcoderError:
            raise
        except Exception as exc:  # torch, safetensors and accelerate raise many kinds for a damaged file
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            raise CheckpointError(f"{checkpoint}: damaged or incompatible training checkpoint "
                                  f"({type(exc).__name__}: {first[:300]}){_older_hint(checkpoint)}") from None
    log = TrainingLog(out, enabled=main, resume_step=step if checkpoint is not None else None)
    if main:
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.json").write_text(json.dumps(config.to_dict(), indent=1))

    def save(at_step: int) -> None:
        accelerator.wait_for_everyone()
        final = out / "checkpoints" / f"step-{at_step:06d}"
        tmp = temp_directory(final)  # every process writes its part of the state into it
        if main and tmp.exists():
            shutil.rmtree(tmp)
        accelerator.wait_for_everyone()
        accelerator.save_state(str(tmp))
        states = accelerator.gather_for_metrics([json.dumps(batches.state_dict())], use_gather_object=True)
        rank_states = accelerator.gather_for_metrics([json.dumps(rank_batches.state_dict())], use_gather_object=True) \
            if rank_batches is not None else []
        if main:
            state = {"step": at_step, "tokens": tokens, "config": config.to_dict(), "tokenizer": tokenizer.fingerprint,
                     "sources": sources_held, "batches": [json.loads(s) for s in states]}
            if rank_batches is not None:
                state["rank_tokens"] = rank_tokens
                state["rank_batches"] = [json.loads(s) for s in rank_states]
            (tmp / STATE_NAME).write_text(json.dumps(state, indent=1))
            replace_directory(tmp, final)
            for old in _checkpoints(out)[:-2]:
                shutil.rmtree(old, ignore_errors=True)
        accelerator.wait_for_everyone()

    def validate() -> float | None:
        if not valid:
            return None
        model.eval()
        total = 0.0
        with torch.no_grad(), accelerator.autocast():
            for ids, weights in valid:
                ids, weights = ids.to(accelerator.device), weights.to(accelerator.device)
                total += float(edit_loss(forward(ids), ids, weights))
        model.train()
        return total / len(valid)

    def validate_ranking() -> tuple[float, float]:
        model.eval()
        losses, hits = [], []
        with torch.no_grad(), accelerator.autocast():
            for batch in rank_valid:
                loss, accuracy = rank_loss(model, batch.to(accelerator.device), config.optim.rank_temperature)
                losses.append(float(loss))
                hits.append(float(accuracy))
        model.train()
        return sum(losses) / len(losses), sum(hits) / len(hits)

    model.train()
    accum = config.optim.grad_accum
    last_loss = valid_loss = None
    interrupted = False
    window_tokens, window_start = 0, time.perf_counter()
    data_hash = hashlib.sha256()
    progress = log.progress(total=config.optim.max_steps, completed=step, enabled=show_progress and main)
    with _StopFlag() as stop, progress:
        while step < config.optim.max_steps:
            lr = learning_rate(step, config.optim)
            for group in optimizer.param_groups:
                group["lr"] = lr
            micro_losses, step_tokens, rank_losses, rank_hits = [], 0, [], []
            for micro in range(accum):
                ids, weights = next(batches)
                data_hash.update(ids.numpy().tobytes())
                ids, weights = ids.to(accelerator.device), weights.to(accelerator.device)
                last = micro == accum - 1
                # DDP reduces the gradients in the micro-step's last backward: the ranking loss's, when on
                sync = contextlib.nullcontext() if last and not ranking else accelerator.no_sync(model)
                with sync, accelerator.autocast():
                    loss = edit_loss(forward(ids), ids, weights)
                    accelerator.backward(loss / accum)
                micro_losses.append(loss.detach())
                step_tokens += int((ids != batches.pad_id).sum()) * accelerator.num_processes
                if ranking:
                    trie = next(rank_batches)
                    data_hash.update(trie.ids.numpy().tobytes())
                    sync = contextlib.nullcontext() if last else accelerator.no_sync(model)
                    with sync, accelerator.autocast():
                        ranked, accuracy = rank_loss(model, trie.to(accelerator.device), config.optim.rank_temperature)
                        accelerator.backward(config.optim.rank_weight * ranked / accum)
                    rank_losses.append(ranked.detach())
                    rank_hits.append(accuracy)
                    rank_tokens += int((trie.ids != batches.pad_id).sum()) * accelerator.num_processes
            grad_norm = accelerator.clip_grad_norm_(model.parameters(), config.optim.clip)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            loss_value = float(accelerator.reduce(torch.stack(micro_losses).mean(), reduction="mean"))
            tokens += step_tokens
            window_tokens += step_tokens
            last_loss = loss_value
            if step % config.run.log_every == 0 or step == config.optim.max_steps:
                elapsed = time.perf_counter() - window_start
                log.train(step, loss_value, lr, float(grad_norm), tokens, window_tokens / max(elapsed, 1e-9))
                if ranking:
                    log.ranking(step, "rank", float(accelerator.reduce(torch.stack(rank_losses).mean(), reduction="mean")),
                                float(accelerator.reduce(torch.stack(rank_hits).mean(), reduction="mean")), rank_tokens)
                window_tokens, window_start = 0, time.perf_counter()
            if step % config.run.eval_every == 0 or step == config.optim.max_steps:
                if valid:
                    valid_loss = validate()
                    log.valid(step, valid_loss)
                if rank_valid:
                    log.ranking(step, "rank_valid", *validate_ranking())
            progress.update(step, loss_value, tokens)
            stop_now = stop.requested or (stop_after is not None and step >= stop_after)
            flag = accelerator.reduce(torch.tensor(float(stop_now), device=accelerator.device), reduction="sum")
            if float(flag) > 0 and step < config.optim.max_steps:
                save(step)
                interrupted = True
                break
            if step % config.run.checkpoint_every == 0 or step == config.optim.max_steps:
                save(step)

    final_dir = None
    if not interrupted:
        final_dir = out / "final"
        if main:
            export(accelerator.unwrap_model(model), tokenizer, config, final_dir, step, tokens)
        accelerator.wait_for_everyone()
    log.close()
    weights_hash = hashlib.sha256()
    for _, p in sorted(accelerator.unwrap_model(model).state_dict().items()):
        weights_hash.update(p.detach().float().cpu().numpy().tobytes())
    return TrainResult(step, tokens, final_dir, last_loss, valid_loss, time.perf_counter() - started, interrupted,
                       accelerator.process_index, weights_hash.hexdigest(), data_hash.hexdigest(), rank_tokens)


def export_checkpoint(checkpoint: str | os.PathLike, directory: str | os.PathLike) -> Path:
    """Export a training checkpoint (checkpoints/step-N, or a run folder's newest) like a run's final/:
    to evaluate or ship an intermediate model, or to start a new stage with --init-from."""
    from patchcoder.checkpoint import WEIGHTS_FILE, load_model
    from patchcoder.model import PatchCoderConfig
    from patchcoder.tokenizer.vocab import CodeTokenizer

    checkpoint = Path(checkpoint)
    if (checkpoint / "checkpoints").exists():
        checkpoint = latest_checkpoint(checkpoint) or checkpoint
    state_file = checkpoint / STATE_NAME
    if not state_file.exists() or not (checkpoint / WEIGHTS_FILE).exists():
        raise PatchcoderError(f"{checkpoint} is not a training checkpoint (no {STATE_NAME} or {WEIGHTS_FILE})")
    state = _read_state(checkpoint)
    config = TrainConfig.from_dict(state["config"], origin=str(state_file))
    tokenizer = CodeTokenizer.load(config.run.tokenizer) if config.run.tokenizer else CodeTokenizer.default()
    model_config = PatchCoderConfig.from_dict({**config.model, "vocab_size": tokenizer.vocab_size})
    model = load_model(checkpoint, config=model_config)  # checks the tensors against the configuration
    export(model, tokenizer, config, Path(directory), state["step"], state["tokens"])
    return Path(directory)


def export(model, tokenizer, config: TrainConfig, directory: Path, steps: int, tokens: int) -> None:
    """The deliverable: a model folder (patchcoder.checkpoint) with how it was made, and the prompt
    budget the product windows with: the sequence length it was trained with."""
    from patchcoder.checkpoint import save_checkpoint

    save_checkpoint(directory, model, tokenizer, training={"steps": steps, "tokens": tokens, "config": config.to_dict()},
                    max_tokens=config.data.seq_len)


def _check_start_vocabulary(start: Path, tokenizer) -> None:
    """--init-from's weights must have been trained with this run's vocabulary: the same number of ids is not
    enough (an id would mean another token, and the run would ship the new vocabulary with the old embeddings)."""
    from patchcoder.checkpoint import TOKENIZER_FILE
    from patchcoder.tokenizer.vocab import CodeTokenizer

    own = start / TOKENIZER_FILE
    theirs = CodeTokenizer.load(own) if own.is_file() else CodeTokenizer.default()
    if theirs.fingerprint != tokenizer.fingerprint:
        raise PatchcoderError(f"--init-from {start} was trained with another vocabulary than this run's "
                              f"({own if own.is_file() else 'the default one'}); set [run] tokenizer to it, "
                              "and tokenize the data with it")


def _start_from(model, start, where: str, *, announce: bool) -> None:
    """A new stage's weights from `start` (--init-from). The configurations must be the same, except the loop
    count R: the L physical layers are shared by every loop, so another R keeps them all and only the
    loop-specific gates (G-SWA, present when R > 1) are dropped or start from their zero initialisation."""
    if dataclasses.replace(start.config, loops=model.config.loops) != model.config:
        raise PatchcoderError(f"{where} has another model configuration than this run's")
    state, mine = start.state_dict(), model.state_dict()
    shared = {k: v for k, v in state.items() if k in mine}
    missing = model.load_state_dict(shared, strict=False).missing_keys
    if announce and start.config.loops != model.config.loops:
        print(f"--init-from {where}: loops {start.config.loops} -> {model.config.loops}; "
              f"{len(state) - len(shared)} loop-specific tensors dropped, {len(missing)} start from their "
              "initialisation", file=sys.stderr, flush=True)
