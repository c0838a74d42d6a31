"""What the trainer reads: a weighted mixture of token-shard folders, in batches that resume exactly.

Step s of the run draws the source of each of the global batch's rows (batch × world size) from a
generator seeded by (seed, s), so every rank computes the same assignment and takes its own slice;
each source walks its own per-epoch permutation. The whole state is a few integers, so a resumed
run reads exactly the examples the uninterrupted one would have.
"""

from __future__ import annotations

import numpy as np
import torch

from patchcoder.ground.errors import PatchcoderError
from patchcoder.tokenizer.loader import TokenShards


class _Stream:
    """One source's examples, a fresh permutation per epoch (a function of seed, source, epoch)."""

    def __init__(self, shards: TokenShards, seed: int, index: int):
        self.shards, self.seed, self.index = shards, seed, index
        self.epoch, self.position = 0, 0
        self._order: np.ndarray | None = None

    def _permutation(self) -> np.ndarray:
        if self._order is None:
            self._order = np.random.default_rng([self.seed, self.index, self.epoch]).permutation(len(self.shards))
        return self._order

    def take(self, n: int) -> list[int]:
        out = []
        while len(out) < n:
            order = self._permutation()
            k = min(n - len(out), len(order) - self.position)
            out.extend(int(i) for i in order[self.position:self.position + k])
            self.position += k
            if self.position == len(order):
                self.epoch, self.position, self._order = self.epoch + 1, 0, None
        return out


class MixtureBatches:
    """Batches (ids (B, T) int64, target weights (B, T) float32) from weighted token-shard sources.

    T is the longest example of the global batch rounded up to `pad_to` (capped at `seq_len`), so
    short examples do not pay for a long fixed length. Weights are 1 on the edit script (the loss
    mask), `lm_weight` on the other real tokens, 0 on padding.
    """

    def __init__(self, sources: list[tuple[TokenShards, float]], batch_size: int, seq_len: int, *, seed: int = 0,
                 rank: int = 0, world_size: int = 1, lm_weight: float = 0.0, pad_to: int = 64):
        if not sources:
            raise PatchcoderError("no training data")
        empty = [i for i, (s, _) in enumerate(sources) if len(s) == 0]
        if empty:
            raise PatchcoderError(f"training source {sources[empty[0]][0].directory} has no examples")
        pads = {s.pad_id for s, _ in sources}
        if len(pads) != 1:
            raise PatchcoderError("the training sources were tokenized with different vocabularies")
        self.sources = [s for s, _ in sources]
        weights = np.array([w for _, w in sources], dtype=np.float64)
        self.probabilities = weights / weights.sum()
        self.batch_size, self.seq_len, self.seed = batch_size, seq_len, seed
        self.rank, self.world_size = rank, world_size
        self.lm_weight, self.pad_to = lm_weight, pad_to
        self.pad_id = pads.pop()
        self.step = 0
        self.streams = [_Stream(s, seed, i) for i, s in enumerate(self.sources)]

    def __iter__(self):
        return self

    def __next__(self) -> tuple[torch.Tensor, torch.Tensor]:
        rows = self.batch_size * self.world_size
        choice = np.random.default_rng([self.seed, 1_000_003, self.step]).choice(
            len(self.sources), size=rows, p=self.probabilities)
        picks: list[tuple[int, int]] = [(-1, -1)] * rows
        for source in range(len(self.sources)):
            slots = np.flatnonzero(choice == source)
            for slot, example in zip(slots, self.streams[source].take(len(slots)), strict=True):
                picks[int(slot)] = (source, example)
        self.step += 1
        examples = [self.sources[s][e] for s, e in picks]
        longest = max(len(ids) for ids, _ in examples)
        length = min(self.seq_len, -(-longest // self.pad_to) * self.pad_to)
        mine = examples[self.rank * self.batch_size:(self.rank + 1) * self.batch_size]
        ids = np.full((self.batch_size, length), self.pad_id, dtype=np.int64)
        weights = np.zeros((self.batch_size, length), dtype=np.float32)
        for row, (example_ids, loss_mask) in enumerate(mine):
            n = min(len(example_ids), length)
            ids[row, :n] = example_ids[:n]
            weights[row, :n] = np.where(loss_mask[:n] > 0, 1.0, self.lm_weight)
        return torch.from_numpy(ids), torch.from_numpy(weights)

    def state_dict(self) -> dict:
        return {
            "step": self.step, "seed": self.seed, "world_size": self.world_size,
            "sizes": [len(s) for s in self.sources],
            "streams": [(st.epoch, st.position) for st in self.streams],
        }

    def load_state_dict(self, state: dict) -> None:
        for key, mine in (("seed", self.seed), ("world_size", self.world_size), ("sizes", [len(s) for s in self.sources])):
            saved = [int(x) for x in state[key]] if isinstance(mine, list) else state[key]
            if saved != mine:
                raise PatchcoderError(f"cannot resume the data order: saved {key} {saved} differs from {mine}")
        self.step = int(state["step"])
        for stream, (epoch, position) in zip(self.streams, state["streams"], strict=True):
            stream.epoch, stream.position, stream._order = int(epoch), int(position), None


def validation_batches(shards: TokenShards, batch_size: int, seq_len: int, count: int):
    """The first `count` batches of the validation set, in a fixed order (the same every evaluation)."""
    batches = MixtureBatches([(shards, 1.0)], batch_size, seq_len, seed=12345)
    return [next(batches) for _ in range(min(count, max(1, len(shards) // batch_size)))]
