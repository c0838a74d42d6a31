"""Reading token shards: random access to examples (memory-mapped) and a resumable batch sampler.

    shards = TokenShards("tokens/")             # nothing is read into memory
    ids, loss_mask = shards[0]                  # numpy views of one example
    batches = Batches(shards, batch_size=8, seq_len=1024, seed=0)
    for step, (ids, loss_mask) in zip(range(1000), batches):   # (8, 1024) arrays, padded with <|pad|>
        ...
    state = batches.state_dict()                # later: batches.load_state_dict(state) resumes exactly

loss_mask[t] == 1 marks token t as part of the answer (the edit script and <|eos|>): with next-token
prediction, the loss on predicting ids[:, t] from ids[:, :t] counts where loss_mask[:, t] == 1, i.e.
targets = ids[:, 1:] weighted by loss_mask[:, 1:].

The order is a function of (seed, epoch) only: each epoch is a fresh permutation of all examples, cut
into global batches of batch_size × world_size; rank r takes the r-th slice of each global batch.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from patchcoder.ground.errors import PatchcoderError
from patchcoder.ground.manifest import Manifest
from patchcoder.ground.storage import url_scheme
from patchcoder.tokenizer.shards import FORMAT, KIND


class TokenShards:
    """All examples of a token-shard folder (made by `patchcoder tokenize`), as one indexable sequence."""

    def __init__(self, directory: str | os.PathLike) -> None:
        if url_scheme(os.fspath(directory)) is not None:  # np.load(mmap_mode=...) maps a local file
            raise PatchcoderError(f"{directory}: training reads token shards from a folder on this machine (they are "
                                  "memory-mapped); copy them here first, e.g. with `aws s3 sync` or `gcloud storage rsync`")
        self.directory = Path(directory)
        self.manifest = Manifest.read(self.directory, FORMAT, KIND)
        if self.manifest is None:
            raise PatchcoderError(f"{directory} has no manifest.json; make token shards with "
                                  f"`patchcoder tokenize --data ... --out {directory}`")
        if not self.manifest.finished:
            raise PatchcoderError(f"{directory} holds a tokenize run that has not finished; finish it with "
                                  "`patchcoder tokenize ... --resume` before training on it")
        self.pad_id: int = self.manifest["pad_id"]
        self.vocab_size: int = self.manifest["vocab_size"]
        self._ids: list[np.ndarray] = []
        self._masks: list[np.ndarray] = []
        self._offsets: list[np.ndarray] = []
        for name in sorted(self.manifest["units"]):
            prefix = self.directory / "shards" / name
            try:
                arrays = [np.load(f"{prefix}.{kind}.npy", mmap_mode="r") for kind in ("ids", "mask", "offsets")]
            except FileNotFoundError as exc:
                raise PatchcoderError(f"token shard {prefix} is listed in the manifest but missing ({exc.filename})") from None
            if len(arrays[2]) < 2:
                continue
            self._ids.append(arrays[0])
            self._masks.append(arrays[1])
            self._offsets.append(arrays[2])
        counts = [len(o) - 1 for o in self._offsets]
        self._starts = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)

    def __len__(self) -> int:
        return int(self._starts[-1])

    def _locate(self, index: int) -> tuple[int, int]:
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"example {index} out of range (0..{len(self) - 1})")
        unit = int(np.searchsorted(self._starts, index, side="right")) - 1
        return unit, index - int(self._starts[unit])

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """(token ids, loss mask) of one example, as read-only views of the memory-mapped arrays."""
        unit, k = self._locate(index)
        offsets = self._offsets[unit]
        a, b = int(offsets[k]), int(offsets[k + 1])
        return self._ids[unit][a:b], self._masks[unit][a:b]

    def lengths(self) -> np.ndarray:
        """Token count of every example (reads only the offsets)."""
        if not self._offsets:
            return np.zeros(0, dtype=np.int64)
        return np.concatenate([np.diff(o) for o in self._offsets])


class Batches:
    """Fixed-shape batches (ids int64 (B, T), loss mask uint8 (B, T)) sampled from TokenShards, forever.

    Examples longer than `seq_len` are cut at the end; shorter ones are padded with `<|pad|>` and mask 0.
    Deterministic given `seed` (and rank/world_size); `state_dict()` after any number of batches and
    `load_state_dict()` on a fresh Batches resume the same sequence of batches.
    """

    def __init__(self, shards: TokenShards, batch_size: int, seq_len: int, *, seed: int = 0,
                 shuffle: bool = True, rank: int = 0, world_size: int = 1) -> None:
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is not in 0..{world_size - 1}")
        self.shards = shards
        self.batch_size = batch_size
        self.seq_len = seq_len
        self.seed = seed
        self.shuffle = shuffle
        self.rank = rank
        self.world_size = world_size
        self.steps_per_epoch = len(shards) // (batch_size * world_size)
        if self.steps_per_epoch == 0:
            raise PatchcoderError(
                f"{len(shards)} examples are fewer than one global batch ({batch_size} × {world_size} ranks)"
            )
        self.epoch = 0
        self.step = 0  # batches already taken in this epoch
        self._order: np.ndarray | None = None
        self._order_epoch = -1

    def _epoch_order(self) -> np.ndarray:
        if self._order_epoch != self.epoch:
            n = len(self.shards)
            self._order = (np.random.default_rng([self.seed, self.epoch]).permutation(n) if self.shuffle
                           else np.arange(n))
            self._order_epoch = self.epoch
        return self._order

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        return self

    def __next__(self) -> tuple[np.ndarray, np.ndarray]:
        if self.step >= self.steps_per_epoch:
            self.epoch += 1
            self.step = 0
        order = self._epoch_order()
        global_start = self.step * self.batch_size * self.world_size + self.rank * self.batch_size
        indices = order[global_start:global_start + self.batch_size]
        ids = np.full((self.batch_size, self.seq_len), self.shards.pad_id, dtype=np.int64)
        mask = np.zeros((self.batch_size, self.seq_len), dtype=np.uint8)
        for row, index in enumerate(indices):
            example_ids, example_mask = self.shards[int(index)]
            n = min(len(example_ids), self.seq_len)
            ids[row, :n] = example_ids[:n]
            mask[row, :n] = example_mask[:n]
        self.step += 1
        return ids, mask

    def state_dict(self) -> dict:
        return {"seed": self.seed, "epoch": self.epoch, "step": self.step, "rank": self.rank,
                "world_size": self.world_size, "examples": len(self.shards)}

    def load_state_dict(self, state: dict) -> None:
        for key in ("seed", "world_size", "examples"):
            mine = len(self.shards) if key == "examples" else getattr(self, key)
            if state[key] != mine:
                raise PatchcoderError(f"cannot resume batches: saved {key} {state[key]} differs from {mine}")
        self.epoch, self.step = int(state["epoch"]), int(state["step"])
