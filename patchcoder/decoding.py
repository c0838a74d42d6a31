"""Decoding edit scripts: the model proposes, the edit grammar disposes.

At every step each sequence may only take a token its `EditGrammar` allows (markers in range, in
order, non-overlapping; text closed by `<END>`), so every finished output parses and applies.
Batched over prompts of different lengths with the model's KV-cached CLP decoder.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from patchcoder.tokenizer.grammar import EditGrammar


@dataclasses.dataclass
class Decoded:
    ids: list[int]  # the script's tokens, ending with <|eos|> when finished
    finished: bool  # reached <|eos|> within the token budget
    score: float  # mean log-probability per token (length-normalised)


@torch.no_grad()
def constrained_greedy(model, tokenizer, prompts: list[list[int]], n_lines: list[int],
                       max_new_tokens: int = 256) -> list[Decoded]:
    """Greedy edit scripts for `prompts` (each ends with `<|edit|>`) over windows of `n_lines` lines."""
    if len(prompts) != len(n_lines):
        raise ValueError("one line count per prompt")
    if not prompts:
        return []
    model.eval()
    device = model.embed.weight.device
    grammars = [EditGrammar(tokenizer, n) for n in n_lines]
    mode = "clp" if model.config.loops == 1 or model.config.clp_shift else "sequential"
    state, logits = model.start_decoding(prompts, max_new_tokens, mode)
    eos_only = np.zeros(tokenizer.vocab_size, dtype=bool)
    eos_only[tokenizer.eos_id] = True
    outputs: list[list[int]] = [[] for _ in prompts]
    logprob = [0.0] * len(prompts)
    for _ in range(max_new_tokens):
        masks = torch.from_numpy(np.stack([eos_only if g.done else g.mask() for g in grammars])).to(device)
        scores = torch.log_softmax(logits.float().masked_fill(~masks, float("-inf")), dim=-1)
        tokens = scores.argmax(dim=-1)
        for i, grammar in enumerate(grammars):
            if grammar.done:
                continue
            token = int(tokens[i])
            grammar.advance(token)
            outputs[i].append(token)
            logprob[i] += float(scores[i, token])
        if all(g.done for g in grammars):
            break
        logits = model.decode_step(state, tokens)
    return [Decoded(out, g.done, lp / max(1, len(out))) for out, g, lp in zip(outputs, grammars, logprob, strict=True)]
