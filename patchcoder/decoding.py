"""Decoding: what the model's cached decoder (`PatchCoder.prefill` / `step`) is driven by.

    generate(model, ids, n)                   plain continuation: greedy, or temperature / top-k / top-p sampling
    constrained_greedy / constrained_beam     edit scripts under the edit grammar: the model proposes, the
                                              grammar disposes (markers in range, in order, non-overlapping;
                                              text closed by `<END>`), so every finished output parses and applies
    score_scripts / score_candidates          known candidate scripts scored by teacher forcing, each
                                              prompt prefilled once and its candidates read as a trie
    autocast(model, precision)                the precision decoding runs in (bf16 where the CPU runs it natively)

Batched over prompts of different lengths (left padding, each sequence keeping its own positions).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses

import numpy as np
import torch

from patchcoder.model import left_pad
from patchcoder.tokenizer.grammar import EditGrammar

GENERATION_MODES = ("clp", "sequential", "uncached")


@dataclasses.dataclass
class Decoded:
    ids: list[int]  # the script's tokens, ending with <|eos|> when finished
    finished: bool  # reached <|eos|> within the token budget
    score: float  # mean log-probability per token (length-normalised)


# ----------------------------------------------------------------------------------------------
# Plain generation


@torch.no_grad()
def generate(model, input_ids, max_new_tokens: int, *, mode: str = "clp", attention_mask: torch.Tensor | None = None,
             temperature: float = 0.0, top_k: int | None = None, top_p: float | None = None,
             eos_token_id: int | None = None, generator: torch.Generator | None = None):
    """Continue each prompt by up to `max_new_tokens` tokens.

    input_ids: a (B, T) tensor (left-padded when `attention_mask` is given, 1 = real token), or a
    list of 1-D sequences of different lengths, which are left-padded here; each sequence keeps its
    own positions. Returns the same kind: (B, T + n) tensor, or a list of prompt + new tokens.
    mode: "clp" (all loops of a token in one batched pass), "sequential" (R passes per token) or
    "uncached" (a full forward per token). Greedy unless temperature > 0; all modes agree greedily.
    For bf16 decoding convert the model (`model.to(torch.bfloat16)`): under autocast, fp32 weights are
    re-cast at every token, which is slower than fp32 decoding on CPU.
    """
    if mode not in GENERATION_MODES:
        raise ValueError(f"mode must be one of {GENERATION_MODES}, got {mode!r}")
    if mode != "uncached":
        model.check_mode(mode)
    device = model.embed.weight.device
    as_list = not torch.is_tensor(input_ids)
    idx, key_start = left_pad(input_ids, attention_mask, device)
    B = idx.shape[0]
    done = torch.zeros(B, dtype=torch.bool, device=device)
    new = []
    state = None
    for _ in range(max_new_tokens):
        if mode == "uncached":
            seq = torch.cat([idx, *[n[:, None] for n in new]], dim=1)
            padding = key_start if bool(key_start.any()) else None  # unpadded: the faster unmasked paths
            logits = model.head(model.run_loops(seq, padding).hidden[-1][:, -1])
        elif state is None:
            state, logits = model.prefill(input_ids, max_new_tokens, mode=mode, attention_mask=attention_mask)
        else:
            logits = model.step(state, new[-1])
        token = sample(logits.float(), temperature=temperature, top_k=top_k, top_p=top_p, generator=generator)
        if eos_token_id is not None:
            token = torch.where(done, torch.full_like(token, eos_token_id), token)
            done |= token == eos_token_id
        new.append(token)
        if eos_token_id is not None and bool(done.all()):
            break
    out = torch.cat([idx, *[n[:, None] for n in new]], dim=1)
    if not as_list:
        return out
    return [out[i, int(key_start[i]) :].cpu() for i in range(B)]


def sample(logits: torch.Tensor, *, temperature: float = 0.0, top_k: int | None = None, top_p: float | None = None,
           generator: torch.Generator | None = None) -> torch.Tensor:
    """logits (B, V) -> token ids (B,): argmax, or temperature / top-k / top-p sampling."""
    if not temperature:
        return logits.argmax(dim=-1)
    logits = logits / temperature
    if top_k:
        kth = torch.topk(logits, min(top_k, logits.shape[-1])).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and top_p < 1.0:
        sorted_logits, order = logits.sort(dim=-1, descending=True)
        cum = sorted_logits.softmax(dim=-1).cumsum(dim=-1)
        drop = cum - sorted_logits.softmax(dim=-1) > top_p  # keep the smallest prefix reaching top_p
        sorted_logits = sorted_logits.masked_fill(drop, float("-inf"))
        logits = torch.full_like(logits, float("-inf")).scatter(1, order, sorted_logits)
    probs = logits.softmax(dim=-1)
    return torch.multinomial(probs, 1, generator=generator)[:, 0]


# ----------------------------------------------------------------------------------------------
# Precision


def autocast(model, precision: str = "auto"):
    """bf16 autocast where matrix units make it pay (CUDA, or a CPU whose oneDNN runs bf16 natively),
    per `precision` ("auto", "bf16" or "fp32"); log-probabilities are always taken in fp32."""
    device = model.embed.weight.device
    use = precision == "bf16" or (precision == "auto" and (
        device.type == "cuda" or (device.type == "cpu" and cpu_runs_bf16())))
    return torch.autocast(device.type, dtype=torch.bfloat16) if use else contextlib.nullcontext()


def cpu_runs_bf16() -> bool:
    """Whether this CPU's oneDNN runs bf16 natively (AVX512-BF16 / AMX); elsewhere bf16 is emulated
    and slower than fp32."""
    try:
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


# ----------------------------------------------------------------------------------------------
# Edit scripts under the edit grammar


def _cached_mode(model) -> str:
    """The cached decoding mode a model runs in: CLP, or sequential loops without the CLP shift."""
    return "clp" if model.config.loops == 1 or model.config.clp_shift else "sequential"


def _start(model, tokenizer, prompts: list[list[int]], n_lines: list[int], max_new_tokens: int, copies: int = 1):
    """Prefill `copies` rows per prompt, one grammar per row. -> (state, logits, grammars)"""
    if len(prompts) != len(n_lines):
        raise ValueError("one line count per prompt")
    model.eval()
    state, logits = model.prefill([p for p in prompts for _ in range(copies)], max_new_tokens, mode=_cached_mode(model))
    return state, logits, [EditGrammar(tokenizer, n) for n in n_lines for _ in range(copies)]


def _masks(grammars: list[EditGrammar], tokenizer, device) -> torch.Tensor:
    """(rows, V) allowed next tokens; a finished script may only repeat `<|eos|>`."""
    eos_only = np.zeros(tokenizer.vocab_size, dtype=bool)
    eos_only[tokenizer.eos_id] = True
    return torch.from_numpy(np.stack([eos_only if g.done else g.mask() for g in grammars])).to(device)


@torch.no_grad()
def constrained_greedy(model, tokenizer, prompts: list[list[int]], n_lines: list[int], *,
                       max_new_tokens: int = 256) -> list[Decoded]:
    """Greedy edit scripts for `prompts` (each ends with `<|edit|>`) over windows of `n_lines` lines."""
    if not prompts:
        return []
    device = model.embed.weight.device
    state, logits, grammars = _start(model, tokenizer, prompts, n_lines, max_new_tokens)
    outputs: list[list[int]] = [[] for _ in prompts]
    logprob = [0.0] * len(prompts)
    active = list(range(len(prompts)))  # sequences still decoding; finished ones leave the batch
    for _ in range(max_new_tokens):
        masks = _masks([grammars[i] for i in active], tokenizer, device)
        scores = torch.log_softmax(logits.float().masked_fill(~masks, float("-inf")), dim=-1)
        tokens = scores.argmax(dim=-1)
        for row, i in enumerate(active):
            token = int(tokens[row])
            grammars[i].advance(token)
            outputs[i].append(token)
            logprob[i] += float(scores[row, token])
        still = [row for row, i in enumerate(active) if not grammars[i].done]
        if not still:
            break
        if len(still) < len(active):
            keep = torch.tensor(still, device=device)
            state.reorder(keep)
            tokens = tokens.index_select(0, keep)
            active = [active[row] for row in still]
        logits = model.step(state, tokens)
    return [Decoded(out, g.done, lp / max(1, len(out))) for out, g, lp in zip(outputs, grammars, logprob, strict=True)]


@torch.no_grad()
def constrained_beam(model, tokenizer, prompts: list[list[int]], n_lines: list[int], *, beam: int = 4,
                     max_new_tokens: int = 256) -> list[list[Decoded]]:
    """The `beam` best edit scripts of each prompt under the edit grammar, best first by mean
    log-probability per token. An empty script (`<|eos|>` at once: "no change") competes like any other."""
    if not prompts:
        return []
    device = model.embed.weight.device
    B, K = len(prompts), beam
    state, logits, grammars = _start(model, tokenizer, prompts, n_lines, max_new_tokens, copies=K)
    outputs: list[list[int]] = [[] for _ in range(B * K)]
    scores = torch.full((B, K), float("-inf"), device=device)
    scores[:, 0] = 0.0  # the K copies of a prompt start as one hypothesis
    eos = tokenizer.eos_id
    finished: list[list[Decoded]] = [[] for _ in range(B)]
    for _ in range(max_new_tokens):
        masks = _masks(grammars, tokenizer, device)
        logp = torch.log_softmax(logits.float().masked_fill(~masks, float("-inf")), dim=-1)  # (B*K, V)
        V = logp.shape[-1]
        total = (scores.view(B * K, 1) + logp).view(B, K * V)
        top, flat = total.topk(K, dim=-1)  # (B, K)
        parents = (flat // V) + torch.arange(B, device=device)[:, None] * K
        tokens = flat % V
        new_grammars, new_outputs, keep_scores = [], [], top.clone()
        for b in range(B):
            for k in range(K):
                parent, token = int(parents[b, k]), int(tokens[b, k])
                if not torch.isfinite(top[b, k]):
                    new_grammars.append(copy.copy(grammars[parent]))
                    new_outputs.append(list(outputs[parent]))
                    continue
                grammar = copy.copy(grammars[parent])
                grammar.advance(token)
                out = outputs[parent] + [token]
                if grammar.done:  # a finished script leaves the beam; its slot goes dead
                    finished[b].append(Decoded(out, True, float(top[b, k]) / len(out)))
                    keep_scores[b, k] = float("-inf")
                new_grammars.append(grammar)
                new_outputs.append(out)
        grammars, outputs, scores = new_grammars, new_outputs, keep_scores
        state.reorder(parents.view(-1))
        if all(len(f) >= K for f in finished) or not torch.isfinite(scores).any():
            break
        # a dead slot still needs an input token; any allowed one will do
        feed = tokens.view(-1).clone()
        for i, g in enumerate(grammars):
            if g.done:
                feed[i] = eos
        logits = model.step(state, feed)
    results = []
    for b in range(B):
        best = sorted(finished[b], key=lambda d: d.score, reverse=True)[:K]
        if not best:  # nothing finished within the budget: report the unfinished hypotheses
            best = [Decoded(outputs[b * K + k], False, float(scores[b, k]) / max(1, len(outputs[b * K + k])))
                    for k in range(K) if torch.isfinite(scores[b, k])]
        results.append(best)
    return results


@torch.no_grad()
def score_scripts(model, prompts: list[list[int]], scripts: list[list[int]], *, batch_size: int = 32) -> list[float]:
    """Mean log-probability per token of each script (ending in `<|eos|>`) after its prompt, by teacher
    forcing: one forward pass per batch instead of one per token (candidate ranking)."""
    model.eval()
    device = model.embed.weight.device
    out: list[float] = []
    for first in range(0, len(prompts), batch_size):
        pairs = list(zip(prompts[first:first + batch_size], scripts[first:first + batch_size], strict=True))
        length = max(len(p) + len(s) for p, s in pairs)
        ids = torch.zeros(len(pairs), length, dtype=torch.long, device=device)  # right padding: never attended to
        for row, (p, s) in enumerate(pairs):
            ids[row, :len(p) + len(s)] = torch.tensor(p + s, device=device)
        logp = torch.log_softmax(model(ids).float(), dim=-1)  # (B, T, V)
        for row, (p, s) in enumerate(pairs):
            positions = torch.arange(len(p) - 1, len(p) + len(s) - 1, device=device)
            targets = torch.tensor(s, device=device)
            out.append(float(logp[row, positions, targets].mean()))
    return out


class CandidateScorer:
    """Scores known continuations (candidate edit scripts) of prompts that are prefilled once: first,
    cheaply, their heads (first two tokens: an edit script's operation and first line), then whole
    candidates, read against each prompt's KV cache — with CLP decoding in one pass per loop, each
    prompt's candidates as a trie of their tokens (`PatchCoder.tree_hidden`; with share_prefixes=False
    one row per candidate), or token by token through the cached sequential decoder, `rows_per_pass`
    rows at a time, for a model without the CLP shift (or with `stepwise`); both kept for comparison."""

    def __init__(self, model, prompts: list[list[int]], max_new_tokens: int, *, rows_per_pass: int = 64,
                 stepwise: bool = False, share_prefixes: bool = True, nodes_per_row: int = 256):
        model.eval()
        self.model, self.rows_per_pass, self.nodes_per_row = model, rows_per_pass, nodes_per_row
        self.share_prefixes = share_prefixes  # False: one row per candidate (kept for comparison)
        self.device = model.embed.weight.device
        self.mode = _cached_mode(model)
        self.stepwise = stepwise or self.mode != "clp"
        with torch.no_grad():
            self.base, first_logits = model.prefill(prompts, max(1, max_new_tokens), mode=self.mode)
        self.first_logp = torch.log_softmax(first_logits.float(), dim=-1)
        self.n_prompts = len(prompts)

    @torch.no_grad()
    def head_scores(self, heads: list[list[tuple[int, int]]]) -> list[list[float]]:
        """Per prompt, log p(first) + log p(second | first) of each of its heads (first, second)."""
        if len(heads) != self.n_prompts:
            raise ValueError("one list of heads per prompt")
        firsts = sorted({(owner, h[0]) for owner, hs in enumerate(heads) for h in hs})
        if not firsts:
            return [[] for _ in heads]
        owners = torch.tensor([o for o, _ in firsts], device=self.device)
        tokens = torch.tensor([[t] for _, t in firsts], device=self.device)
        if self.mode == "clp":
            logits = self.model.block_logits(self.base, tokens, owners)[:, 0]
        else:
            logits = self.model.step(self.base.select(owners), tokens[:, 0])
        second = torch.log_softmax(logits.float(), dim=-1)
        row = {pair: k for k, pair in enumerate(firsts)}
        return [[float(self.first_logp[owner, a] + second[row[(owner, a)], b]) for a, b in hs]
                for owner, hs in enumerate(heads)]

    @torch.no_grad()
    def scores(self, candidates: list[list[list[int]]]) -> list[list[float]]:
        """Per prompt, the mean log-probability of each of its candidates (each ending in `<|eos|>`).

        With CLP, each prompt's candidates are read as a trie (`PatchCoder.tree_hidden`): tokens that
        candidates share at their start are read once, and the vocabulary's log-softmax is taken once
        per distinct prefix, not once per candidate position."""
        if len(candidates) != self.n_prompts:
            raise ValueError("one list of candidates per prompt")
        out = [[0.0] * len(cands) for cands in candidates]
        if any(not tokens for cands in candidates for tokens in cands):
            raise ValueError("a candidate script needs at least one token (<|eos|>)")
        room = self.base.key_valid.shape[1] - self.base.t
        if any(len(tokens) > room for cands in candidates for tokens in cands):
            raise ValueError("a candidate is longer than the max_new_tokens the scorer was made for")
        if self.stepwise:
            self._scores_stepwise(candidates, out)
            return out
        for owner, cands in enumerate(candidates):
            for index, tokens in enumerate(cands):
                if len(tokens) == 1:  # e.g. <|eos|> alone ("no change"): read from the prefill
                    out[owner][index] = float(self.first_logp[owner, tokens[0]])
        for pass_rows in self._passes(self._tries(candidates)):
            self._read_tries(pass_rows, candidates, out)
        return out

    def _tries(self, candidates: list[list[list[int]]]) -> list[_Trie]:
        """Each prompt's candidates as tries of their tokens but the last (the tokens that are read):
        as many tries per prompt as keep each within `nodes_per_row` nodes (a longer candidate gets a
        trie of its own). One-token candidates need none."""
        max_nodes = self.nodes_per_row
        tries: list[_Trie] = []
        for owner, cands in enumerate(candidates):
            trie = None
            for index, tokens in enumerate(cands):
                if len(tokens) == 1:
                    continue
                if trie is None or not self.share_prefixes or (len(trie.tokens) + len(tokens) - 1 > max_nodes
                                                                and trie.paths):
                    trie = _Trie(owner)
                    tries.append(trie)
                trie.add(index, tokens)
        return tries

    def _passes(self, tries: list[_Trie], fill: float = 0.6) -> list[list[_Trie]]:
        """Tries grouped into model passes of at most `rows_per_pass` rows and about 4096 node
        positions (padding included), largest first; a pass also stops at a trie smaller than `fill`
        times its first, so that padding is at most 1 - fill of any row."""
        tries = sorted(tries, key=lambda trie: -len(trie.tokens))
        passes: list[list[_Trie]] = []
        for trie in tries:
            size = len(trie.tokens)
            current = passes[-1] if passes else None
            if (current is None or len(current) >= min(self.rows_per_pass, 4096 // len(current[0].tokens))
                    or size < fill * len(current[0].tokens)):
                passes.append([trie])
            else:
                current.append(trie)
        return passes

    def _read_tries(self, tries: list[_Trie], candidates: list[list[list[int]]], out: list[list[float]]) -> None:
        device, M = self.device, len(tries[0].tokens)
        tokens = torch.zeros(len(tries), M, dtype=torch.long)
        parents = torch.full((len(tries), M), -1, dtype=torch.long)  # padding nodes: roots nobody reads
        for row, trie in enumerate(tries):
            tokens[row, :len(trie.tokens)] = torch.tensor(trie.tokens)
            parents[row, :len(trie.parents)] = torch.tensor(trie.parents)
        owners = torch.tensor([trie.owner for trie in tries], device=device)
        h = self.model.tree_hidden(self.base, tokens.to(device), parents.to(device), owners)
        flat = torch.cat([torch.arange(len(trie.tokens)) + row * M for row, trie in enumerate(tries)]).to(device)
        logp = torch.log_softmax(self.model.head(h.flatten(0, 1).index_select(0, flat)).float(), dim=-1)
        # one term per read token: the log-probability of the token after it, at its node
        start = torch.tensor([0] + [len(trie.tokens) for trie in tries]).cumsum(0)[:-1].tolist()
        nodes, nexts, which, firsts, lengths, keys = [], [], [], [], [], []
        for base, trie in zip(start, tries, strict=True):
            for index, path in trie.paths.items():
                tokens_c = candidates[trie.owner][index]
                nodes.extend(base + node for node in path)
                nexts.extend(tokens_c[1:])
                which.extend([len(keys)] * len(path))
                firsts.append((trie.owner, tokens_c[0]))
                lengths.append(len(tokens_c))
                keys.append((trie.owner, index))
        terms = logp[torch.tensor(nodes, device=device), torch.tensor(nexts, device=device)]
        total = torch.zeros(len(keys), device=device).index_add_(0, torch.tensor(which, device=device), terms)
        first = self.first_logp[torch.tensor([o for o, _ in firsts], device=device),
                                torch.tensor([t for _, t in firsts], device=device)]
        for k, ((owner, index), length) in enumerate(zip(keys, lengths, strict=True)):
            out[owner][index] = float(total[k] + first[k]) / length

    def _scores_stepwise(self, candidates: list[list[list[int]]], out: list[list[float]]) -> None:
        """Every candidate fed token by token through the cached decoder, `rows_per_pass` at a time."""
        flat = [(owner, tokens) for owner, cands in enumerate(candidates) for tokens in cands]
        slot = [k for cands in candidates for k in range(len(cands))]
        # Longest first: a pass's rows have similar lengths, so little of a pass is padding.
        order = sorted(range(len(flat)), key=lambda j: -len(flat[j][1]))
        device = self.device
        for first in range(0, len(order), self.rows_per_pass):
            part = order[first:first + self.rows_per_pass]
            length = len(flat[part[0]][1])
            tokens = torch.zeros(len(part), length, dtype=torch.long, device=device)
            lengths = torch.tensor([len(flat[j][1]) for j in part], device=device)
            for row, j in enumerate(part):
                tokens[row, :len(flat[j][1])] = torch.tensor(flat[j][1], device=device)
            owners = torch.tensor([flat[j][0] for j in part], device=device)
            total = self.first_logp[owners, tokens[:, 0]]
            if length > 1:
                total = total + _stepwise(self.model, self.base.select(owners), tokens, lengths)
            for row, j in enumerate(part):
                out[flat[j][0]][slot[j]] = float(total[row]) / len(flat[j][1])


class _Trie:
    """One prompt's candidates (or some of them) as a trie of the tokens that are read: every token of
    a candidate but its last. Node j holds tokens[j] after node parents[j] (-1: after the prompt);
    paths[index] lists the nodes of candidate `index`, first token first."""

    def __init__(self, owner: int):
        self.owner = owner
        self.tokens: list[int] = []
        self.parents: list[int] = []
        self.paths: dict[int, list[int]] = {}
        self._children: dict[tuple[int, int], int] = {}

    def add(self, index: int, tokens: list[int]) -> None:
        path, parent = [], -1
        for token in tokens[:-1]:
            node = self._children.get((parent, token))
            if node is None:
                node = self._children[(parent, token)] = len(self.tokens)
                self.tokens.append(token)
                self.parents.append(parent)
            path.append(node)
            parent = node
        self.paths[index] = path


def best_heads(head_scores: list[float], keep: int) -> list[int]:
    """Indices of the `keep` highest head scores, highest first."""
    return sorted(range(len(head_scores)), key=head_scores.__getitem__, reverse=True)[:keep]


def score_candidates(model, prompts: list[list[int]], candidates: list[list[list[int]]], *,
                     rows_per_pass: int = 64, stepwise: bool = False, keep_heads: int | None = None,
                     share_prefixes: bool = True, nodes_per_row: int = 256) -> list[list[float | None]]:
    """Like `score_scripts` for many candidate scripts per prompt, each prompt prefilled once
    (`CandidateScorer`). -> per prompt, the mean log-probability of each of its candidates (each
    ending in `<|eos|>`).

    keep_heads=k reads in full only the candidates whose head (first two tokens) is among the
    prompt's k most probable, and the one-token candidates (`<|eos|>`: no change); the others score
    None."""
    if len(prompts) != len(candidates):
        raise ValueError("one list of candidates per prompt")
    if not any(candidates):
        return [[] for _ in candidates]
    scorer = CandidateScorer(model, prompts, max(len(t) for cands in candidates for t in cands),
                             rows_per_pass=rows_per_pass, stepwise=stepwise, share_prefixes=share_prefixes,
                             nodes_per_row=nodes_per_row)
    if keep_heads is None:
        return scorer.scores(candidates)
    heads = [sorted({tuple(c[:2]) for c in cands if len(c) > 1}) for cands in candidates]
    kept = [{hs[k] for k in best_heads(scores, keep_heads)}
            for hs, scores in zip(heads, scorer.head_scores(heads), strict=True)]
    chosen = [[c for c in cands if len(c) == 1 or tuple(c[:2]) in keep] for cands, keep in zip(candidates, kept, strict=True)]
    read = scorer.scores(chosen)
    out: list[list[float | None]] = []
    for cands, keep, values in zip(candidates, kept, read, strict=True):
        values = iter(values)
        out.append([next(values) if len(c) == 1 or tuple(c[:2]) in keep else None for c in cands])
    return out


def _stepwise(model, state, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Sum of log-probabilities of tokens[:, 1:] (up to each row's length), fed one step at a time;
    rows leave the batch as they end."""
    total = torch.zeros(tokens.shape[0], device=tokens.device)
    active = torch.arange(tokens.shape[0], device=tokens.device)
    for step in range(1, tokens.shape[1]):
        still = lengths[active] > step
        if not bool(still.all()):
            keep = still.nonzero().squeeze(1)
            state.reorder(keep)
            active = active[keep]
        logp = torch.log_softmax(model.step(state, tokens[active, step - 1]).float(), dim=-1)
        total[active] += logp.gather(1, tokens[active, step][:, None]).squeeze(1)
    return total
