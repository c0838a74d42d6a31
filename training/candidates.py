"""Candidate shards: training examples that carry the candidates the true script competes with.

Rank mode decides by scoring every single-statement rewrite of a window, and "no change", with the
model (patchcoder.ranking); the script loss alone never shows the model those rivals. Each example here
is a window exactly as in the token shards (`build_examples`: a bug's window, or a "no change" window of
correct code), followed by its candidates, each ending in `<|eos|>`:

    prompt | true script <|eos|> | rival 1 <|eos|> | … | rival K <|eos|>
    mask:  0 … 0 | 1 … 1         | 2 … 2             | … | 2 … 2

The rivals are up to `negatives` of what ranking would score for that window, drawn in a seeded order:
"no change" first for a bug's window, then the rewrite engine's rewrites of the window (those that
script inside it; unlike ranking's, not checked to parse). For a "no change" window the true script is `<|eos|>` and every rival is a
rewrite of correct code: the false alarms rank mode must learn to refuse. They are written as token
shards (same layout and manifest, `patchcoder.tokenizer.shards`) whose manifest says `"examples":
{"kind": "candidates", ...}`; the trainer reads them as one trie per example (`training.data`).

Hard rivals (`hard=K`, with a `scorer` model folder): sampled rewrites are mostly easy to refuse, while
at inference "no change" must beat *every* rewrite under the model's best head. With a scorer, each
window is first ranked as rank mode ranks it (`ranking.rank`, rewrites that parse, under the scorer's
`keep_heads` best heads) and the K best-scoring wrong candidates come first among the rivals, right
after "no change" for a bug; sampled rewrites fill the rest. The scorer is loaded once per worker
process, and must use the shards' vocabulary.
"""

from __future__ import annotations

import functools
import hashlib
import os
from pathlib import Path

from patchcoder.tokenizer.examples import Example, ExampleConfig, build_examples

KIND = "candidates"
TRUE, RIVAL = 1, 2  # mask values of the true script's tokens and of the rivals'


def candidate_examples(tokenizer, row: dict, config: ExampleConfig, *, negatives: int = 15, seed: int = 0,
                       max_candidate_tokens: int = 384, scorer: str | None = None, hard: int = 0,
                       keep_heads: int | None = 3) -> tuple[list[Example], list[str]]:
    """The examples of a row (`build_examples`), each with up to `negatives` rival candidates appended
    (at most `max_candidate_tokens` tokens of candidates in all, the true one included). With `scorer`
    (a model folder) the `hard` best-scoring wrong candidates of rank mode come first (the module's
    docstring). An example for which ranking has no rival at all is dropped ("no_rivals")."""
    from patchcoder.ranking import Source, options, rewrites, scripts
    from patchcoder.windows import Window

    examples, dropped = build_examples(tokenizer, row, config)
    out = []
    sources: dict[bool, Source] = {}  # the old text and the new one, each parsed and walked once for the row
    for ex in examples:
        if ex.no_change not in sources:
            sources[ex.no_change] = Source(row["new"] if ex.no_change else row["old"], row.get("language"))
    windows = [Window(0, ex.ids[:ex.answer_start], ex.window_start, ex.window_lines) for ex in examples]
    hardest = _hardest(tokenizer, [sources[ex.no_change] for ex in examples], windows,
                       [ex.ids[ex.answer_start:] for ex in examples], scorer=scorer, hard=hard,
                       keep_heads=keep_heads, room=max_candidate_tokens)
    for ex, window, hard_rivals in zip(examples, windows, hardest, strict=True):
        source = sources[ex.no_change]
        prompt, true = ex.ids[:ex.answer_start], ex.ids[ex.answer_start:]
        found = options(tokenizer, source, window, rewrites(source, [window]))
        key = f"{seed}\0{row.get('commit')}\0{row.get('path')}\0{ex.window_start}\0{ex.no_change}"
        order = sorted(range(len(found)), key=lambda k: hashlib.blake2b(f"{key}\0{k}".encode(), digest_size=8).digest())
        rivals: list[list[int]] = []
        budget = max_candidate_tokens - len(true)
        # Unlike ranking, rivals are not checked to parse (Python's compiler over the whole file is most of
        # the cost): a rival that does not parse is one ranking never scores, a harmless extra negative.
        chosen = [found[k] for k in order[:2 * negatives]]  # some do not script inside the window
        sampled = scripts(tokenizer, source, window, chosen)  # [<|eos|>] ("no change") comes first
        for ids in sampled[:1] + hard_rivals + sampled[1:]:
            if len(rivals) == negatives or len(ids) > budget:
                break
            if ids != true and ids not in rivals:
                rivals.append(ids)
                budget -= len(ids)
        if not rivals:
            dropped.append("no_rivals")
            continue
        ids = prompt + true + [t for r in rivals for t in r]
        mask = [0] * len(prompt) + [TRUE] * len(true) + [RIVAL] * (len(ids) - len(prompt) - len(true))
        out.append(Example(ids, ex.answer_start, ex.window_start, ex.window_lines, ex.sstub, ex.message_dropped,
                           ex.no_change, loss_mask=mask))
    return out, dropped


def _hardest(tokenizer, sources: list, windows: list, trues: list[list[int]], *, scorer: str | None, hard: int,
             keep_heads: int | None, room: int) -> list[list[list[int]]]:
    """Per window, up to `hard` of rank mode's candidates other than the true script, the scorer's
    best-scoring first (none without a scorer)."""
    if not scorer or not hard or not windows:
        return [[] for _ in windows]
    from patchcoder.decoding import autocast
    from patchcoder.ranking import rank

    model = _scorer(scorer)
    with autocast(model):
        rankings = rank(model, tokenizer, sources, windows, max_new_tokens=room, keep_heads=keep_heads)
    out = []
    for ranking, true in zip(rankings, trues, strict=True):
        order = sorted(range(len(ranking.candidates)), key=lambda k: -ranking.scores[k])
        out.append([ranking.candidates[k] for k in order if ranking.candidates[k] != true][:hard])
    return out


_SCORERS: dict = {}  # model folder → its model, loaded once per worker process


def _scorer(path: str):
    if path not in _SCORERS:
        from patchcoder.checkpoint import load_checkpoint

        _SCORERS[path] = load_checkpoint(path).model.eval()
    return _SCORERS[path]


def make_candidate_shards(data_dir: str | os.PathLike, out: str | os.PathLike, *, config: ExampleConfig,
                          negatives: int = 15, seed: int = 0, vocab: str | os.PathLike | None = None, jobs: int = 1,
                          resume: bool = False, show_progress: bool = False, ray: str | None = None,
                          scorer: str | os.PathLike | None = None, hard: int = 0, keep_heads: int | None = 3):
    """Candidate shards of every mined (or synthetic) shard under `data_dir`, under `out`; the summary
    of `tokenize_dataset`. With `scorer` (a model folder) and `hard`, each window's first rivals are
    the scorer's `hard` best-scoring wrong candidates under its `keep_heads` best heads; `vocab`
    defaults to the scorer's tokenizer, and must be the same vocabulary."""
    from patchcoder.ground.errors import PatchcoderError
    from patchcoder.tokenizer.shards import tokenize_dataset

    if negatives < 1:
        raise PatchcoderError(f"negatives must be at least 1, got {negatives}")
    if hard < 0 or hard > negatives:
        raise PatchcoderError(f"hard rivals must be between 0 and negatives ({negatives}), got {hard}")
    if hard and scorer is None:
        raise PatchcoderError("hard rivals need a scorer: the model folder whose best wrong candidates they are")
    if keep_heads is not None and keep_heads < 1:
        raise PatchcoderError(f"keep_heads must be at least 1, got {keep_heads}")
    describe = {"kind": KIND, "negatives": negatives, "seed": seed}
    if scorer is not None and hard:
        from patchcoder.checkpoint import TOKENIZER_FILE, load_checkpoint
        from patchcoder.tokenizer.vocab import CodeTokenizer

        scorer = str(Path(scorer).resolve())
        checkpoint = load_checkpoint(scorer)  # a clear error for a folder that is not a model, before any work
        if vocab is None and (Path(scorer) / TOKENIZER_FILE).exists():
            vocab = Path(scorer) / TOKENIZER_FILE
        tokenizer = CodeTokenizer.load(vocab) if vocab else CodeTokenizer.default()
        if tokenizer.fingerprint != checkpoint.tokenizer.fingerprint:
            raise PatchcoderError(f"the scorer {scorer} uses another vocabulary than the shards' ({vocab or 'the default'})")
        describe |= {"hard": hard, "scorer": scorer, "keep_heads": keep_heads,
                     "scorer_digest": _weights_digest(Path(scorer))}
    else:
        scorer, hard = None, 0
    make = functools.partial(candidate_examples, negatives=negatives, seed=seed, scorer=scorer, hard=hard,
                             keep_heads=keep_heads)
    return tokenize_dataset(data_dir, out, vocab=vocab, config=config, jobs=jobs, resume=resume,
                            show_progress=show_progress, ray=ray, make_examples=make, describe=describe)


def _weights_digest(folder: Path) -> str:
    """blake2b of the scorer's weights file: a resumed run must rank with the same model."""
    from patchcoder.checkpoint import WEIGHTS_FILE

    digest = hashlib.blake2b(digest_size=16)
    with open(folder / WEIGHTS_FILE, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def split_candidates(ids, mask, eos_id: int) -> tuple[list[int], list[list[int]]]:
    """(prompt, candidates) of one candidate-shard example: candidates[0] is the true script; each
    candidate ends in `<|eos|>`."""
    n = len(ids)
    start = next((k for k in range(n) if mask[k]), n)
    prompt = [int(t) for t in ids[:start]]
    candidates: list[list[int]] = []
    current: list[int] = []
    for k in range(start, n):
        current.append(int(ids[k]))
        if ids[k] == eos_id:
            candidates.append(current)
            current = []
    if current or not candidates or mask[start] != TRUE:
        raise ValueError("not a candidate-shard example (its answer must be candidates ending in <|eos|>, the true one first)")
    return prompt, candidates
