"""What the trainer reads: a weighted mixture of token-shard folders, in batches that resume exactly.

Step s of the run draws the source of each of the global batch's rows (batch × world size) from a
generator seeded by (seed, s), so every rank computes the same assignment and takes its own slice;
each source walks its own per-epoch permutation. The whole state is a few integers, so a resumed
run reads exactly the examples the uninterrupted one would have.
"""

from __future__ import annotations

import dataclasses
import functools

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
        examples = self._draw()
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

    def _draw(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """The global batch of this step (every rank's rows: the padded length is the global batch's)."""
        rows = self.batch_size * self.world_size
        choice = np.random.default_rng([self.seed, 1_000_003, self.step]).choice(
            len(self.sources), size=rows, p=self.probabilities)
        picks: list[tuple[int, int]] = [(-1, -1)] * rows
        for source in range(len(self.sources)):
            slots = np.flatnonzero(choice == source)
            for slot, example in zip(slots, self.streams[source].take(len(slots)), strict=True):
                picks[int(slot)] = (source, example)
        self.step += 1
        return [self.sources[s][e] for s, e in picks]

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


def validation_batches(shards: TokenShards, batch_size: int, seq_len: int, count: int, kind=None):
    """The first `count` batches of the validation set, in a fixed order (the same every evaluation);
    `kind`: the batch class (default MixtureBatches; CandidateBatches for candidate shards)."""
    batches = (kind or MixtureBatches)([(shards, 1.0)], batch_size, seq_len, seed=12345)
    return [next(batches) for _ in range(min(count, max(1, len(shards) // batch_size)))]


@dataclasses.dataclass
class TrieBatch:
    """Candidate-shard examples as trees (`PatchCoder.tree_forward`): each row a prompt, then its
    candidates read as one trie; and where each candidate's tokens are, for its sequence log-probability.

    ids, parents (B, T): tokens and parent indices (-1: a root; padding is roots).
    node_row, node_parent, node_token (N,): every candidate-token node: its row, the index whose logits
        predict it (its parent), and its token.
    paths (C, L), path_mask (C, L): each candidate's nodes, indices into the N nodes, 0-padded.
    owner (C,): the example (0 … E-1) a candidate belongs to; the first candidate of each example is its
        true script.
    """

    ids: torch.Tensor
    parents: torch.Tensor
    node_row: torch.Tensor
    node_parent: torch.Tensor
    node_token: torch.Tensor
    paths: torch.Tensor
    path_mask: torch.Tensor
    owner: torch.Tensor

    @property
    def examples(self) -> int:
        return int(self.owner.max()) + 1 if len(self.owner) else 0

    def to(self, device) -> TrieBatch:
        return TrieBatch(*(getattr(self, f.name).to(device) for f in dataclasses.fields(self)))


def trie_row(prompt: list[int], candidates: list[list[int]], max_len: int) -> tuple[list[int], list[int], list[list[int]]]:
    """(tokens, parents, paths) of one prompt and its candidates as a trie: the prompt a chain, each
    candidate's first token a child of the prompt's last, shared prefixes read once. Candidates are
    added in order while the row stays within `max_len` tokens (the first, the true one, always)."""
    tokens, parents = list(prompt), list(range(-1, len(prompt) - 1))
    children: dict[tuple[int, int], int] = {}
    paths: list[list[int]] = []
    for k, candidate in enumerate(candidates):
        added, at, path = [], len(prompt) - 1, []
        for token in candidate:
            node = children.get((at, token))
            if node is None:
                node = len(tokens) + len(added)
                added.append((token, at))
            path.append(node)
            at = node
        if k and len(tokens) + len(added) > max_len:
            break
        for token, parent in added:
            children[(parent, token)] = len(tokens)
            tokens.append(token)
            parents.append(parent)
        paths.append(path)
    return tokens, parents, paths


def trie_batch(examples: list[tuple[list[int], list[list[int]]]], max_len: int, pad_id: int, pad_to: int = 64) -> TrieBatch:
    """A TrieBatch of (prompt, candidates) pairs (`candidates.split_candidates`)."""
    rows = [trie_row(prompt, candidates, max_len) for prompt, candidates in examples]
    longest = max(len(tokens) for tokens, _, _ in rows)
    T = -(-longest // pad_to) * pad_to
    ids = np.full((len(rows), T), pad_id, dtype=np.int64)
    parents = np.full((len(rows), T), -1, dtype=np.int64)
    node_index: dict[tuple[int, int], int] = {}
    node_row, node_parent, node_token, paths, owner = [], [], [], [], []
    for b, (tokens, row_parents, row_paths) in enumerate(rows):
        ids[b, :len(tokens)] = tokens
        parents[b, :len(tokens)] = row_parents
        for path in row_paths:
            flat = []
            for node in path:
                if (b, node) not in node_index:
                    node_index[(b, node)] = len(node_row)
                    node_row.append(b)
                    node_parent.append(row_parents[node])
                    node_token.append(tokens[node])
                flat.append(node_index[(b, node)])
            paths.append(flat)
            owner.append(b)
    width = max(len(p) for p in paths)
    path_array = np.zeros((len(paths), width), dtype=np.int64)
    path_mask = np.zeros((len(paths), width), dtype=np.float32)
    for c, path in enumerate(paths):
        path_array[c, :len(path)] = path
        path_mask[c, :len(path)] = 1.0
    as_long = functools.partial(torch.tensor, dtype=torch.long)
    return TrieBatch(torch.from_numpy(ids), torch.from_numpy(parents), as_long(node_row), as_long(node_parent),
                     as_long(node_token), torch.from_numpy(path_array), torch.from_numpy(path_mask), as_long(owner))


class CandidateBatches(MixtureBatches):
    """TrieBatches from weighted candidate-shard sources (`patchcoder candidates`), drawn and resumed
    exactly as MixtureBatches draws token shards; `seq_len` bounds a trie row (rivals that do not fit
    are left out)."""

    def __init__(self, sources: list[tuple[TokenShards, float]], batch_size: int, seq_len: int, *, seed: int = 0,
                 rank: int = 0, world_size: int = 1, pad_to: int = 64):
        super().__init__(sources, batch_size, seq_len, seed=seed, rank=rank, world_size=world_size, pad_to=pad_to)
        for shards in self.sources:
            if (shards.manifest.get("examples") or {}).get("kind") != "candidates":
                raise PatchcoderError(f"{shards.directory} holds no candidates (make it with `patchcoder candidates`)")
        self.eos_id = int(self.sources[0].manifest["eos_id"])

    def __next__(self) -> TrieBatch:  # type: ignore[override]
        from patchcoder.training.candidates import split_candidates

        mine = self._draw()[self.rank * self.batch_size:(self.rank + 1) * self.batch_size]
        return trie_batch([split_candidates(ids, mask, self.eos_id) for ids, mask in mine], self.seq_len,
                          self.pad_id, self.pad_to)
