"""Candidate shards and the ranking loss: windows followed by the candidates ranking weighs (the true
script first), read as one trie per window, and a softmax over the candidates' mean log-probabilities
trained through Accelerate (resumable like the script loss)."""

from __future__ import annotations

import csv

import pyarrow.parquet as pq
import pytest
import torch

from patchcoder.ground.errors import PatchcoderError
from patchcoder.mining.shards import shard_files
from patchcoder.model import PatchCoder, PatchCoderConfig
from patchcoder.tokenizer.edits import EditScript, split_lines
from patchcoder.tokenizer.examples import ExampleConfig
from patchcoder.tokenizer.loader import TokenShards
from patchcoder.tokenizer.shards import tokenize_dataset
from patchcoder.tokenizer.vocab import CodeTokenizer
from patchcoder.training.candidates import RIVAL, TRUE, make_candidate_shards, split_candidates
from patchcoder.training.config import DataSource
from patchcoder.training.data import trie_batch, trie_row
from patchcoder.training.loop import rank_loss, train

CONFIG = ExampleConfig(max_tokens=128, drop_message=0.2, no_change=0.5)


@pytest.fixture(scope="module")
def candidates(mined, tmp_path_factory):
    """{name: candidate shards} of the alpha and gamma histories, and alpha's plain token shards alike."""
    out = {}
    for name in ("alpha", "gamma"):
        out[name] = tmp_path_factory.mktemp(f"candidates-{name}")
        make_candidate_shards(mined[name], out[name], config=CONFIG, negatives=6)
    out["alpha-tokens"] = tmp_path_factory.mktemp("tokens-alpha-nc")
    tokenize_dataset(mined["alpha"], out["alpha-tokens"], config=CONFIG)
    return out


def _meta(folder) -> list[dict]:
    return [row for f in sorted((folder / "shards").glob("*.examples.parquet")) for row in pq.read_table(f).to_pylist()]


def test_each_example_is_its_window_its_true_script_then_rivals(candidates, mined):
    tok = CodeTokenizer.default()
    shards, plain = TokenShards(candidates["alpha"]), TokenShards(candidates["alpha-tokens"])
    assert shards.manifest["examples"] == {"kind": "candidates", "negatives": 6, "seed": 0}
    key = lambda m: (m["commit"], m["path"], m["window_start"], m["no_change"])  # noqa: E731
    where = {key(m): k for k, m in enumerate(_meta(candidates["alpha-tokens"]))}
    rows = {(r["commit"], r["path"]): r for f in shard_files(mined["alpha"]) for r in pq.read_table(f).to_pylist()}
    metas = _meta(candidates["alpha"])
    assert len(metas) == len(shards) > 20 and sum(m["no_change"] for m in metas) > 5
    for k, meta in enumerate(metas):
        ids, mask = shards[k]
        prompt, cands = split_candidates(ids, mask, tok.eos_id)
        plain_ids, plain_mask = plain[where[key(meta)]]
        answer = int(plain_mask.argmax())
        assert prompt == plain_ids[:answer].tolist() and cands[0] == plain_ids[answer:].tolist()
        assert set(mask[:len(prompt)].tolist()) == {0} and set(mask[len(prompt):len(prompt) + len(cands[0])]) == {TRUE}
        assert set(mask[len(prompt) + len(cands[0]):].tolist()) == {RIVAL}
        rivals = cands[1:]
        assert 1 <= len(rivals) <= 6 and len({tuple(r) for r in rivals}) == len(rivals) and cands[0] not in rivals
        row = rows[(meta["commit"], meta["path"])]
        text = row["new"] if meta["no_change"] else row["old"]
        window = "".join(split_lines(text)[meta["window_start"]:meta["window_start"] + meta["window_lines"]])
        if meta["no_change"]:
            assert cands[0] == [tok.eos_id]  # correct code: the answer is "no change"
        else:
            assert rivals[0] == [tok.eos_id]  # a bug's first rival is "no change"
        for rival in rivals:
            if rival != [tok.eos_id]:
                script = EditScript.from_tokens(rival, tok, meta["window_lines"])
                assert script.apply(window) != window  # a real rewrite of the window


def test_a_trie_reads_shared_prefixes_once_and_keeps_the_true_candidate():
    prompt = [7, 8, 9]
    cands = [[1, 2, 3, 0], [1, 2, 4, 0], [1, 5, 0], [0]]
    tokens, parents, paths = trie_row(prompt, cands, max_len=100)
    assert len(tokens) == 3 + 9  # nodes: 1, 2, 3, 0 | 4, 0 | 5, 0 | 0 (the root's 0 is another node than 3's)
    for cand, path in zip(cands, paths, strict=True):
        assert [tokens[n] for n in path] == cand
        assert parents[path[0]] == 2 and all(parents[b] == a for a, b in zip(path, path[1:], strict=False))
    tokens, _, paths = trie_row(prompt, cands, max_len=8)  # only the true candidate and what still fits
    assert len(paths) == 1 and len(tokens) == 7
    batch = trie_batch([(prompt, cands), ([5], [[0], [6, 0]])], max_len=100, pad_id=60, pad_to=4)
    assert batch.ids.shape == (2, 12) and batch.examples == 2
    assert batch.owner.tolist() == [0, 0, 0, 0, 1, 1] and int(batch.path_mask.sum()) == 4 + 4 + 3 + 1 + 1 + 2
    assert (batch.parents[1, 4:] == -1).all() and (batch.ids[1, 4:] == 60).all()  # padding: roots


def _model(vocab_size: int) -> PatchCoder:
    torch.manual_seed(0)
    return PatchCoder(PatchCoderConfig(vocab_size=vocab_size, d_model=32, n_layers=2, n_heads=4, n_kv_heads=2,
                                       loops=2, window=4))


@pytest.fixture
def one_thread():
    """Small tensors: one intra-op thread is faster, and far faster when the 2 cores are shared."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_the_ranking_loss_is_a_softmax_over_mean_log_probabilities(candidates, one_thread):
    tok = CodeTokenizer.default()
    shards = TokenShards(candidates["alpha"])
    examples = [split_candidates(*shards[k], tok.eos_id) for k in range(3)]
    model = _model(tok.vocab_size).eval()
    batch = trie_batch(examples, max_len=1000, pad_id=tok.pad_id)
    with torch.no_grad():
        loss, accuracy = rank_loss(model, batch, temperature=0.5)
        want, hits = [], []
        for prompt, cands in examples:
            scores = []
            for cand in cands:  # each candidate read alone, after its prompt, by the ordinary forward
                ids = torch.tensor([prompt + cand])
                logp = model(ids)[0, len(prompt) - 1:-1].float().log_softmax(-1)
                scores.append(logp.gather(1, torch.tensor(cand)[:, None]).mean())
            scores = torch.stack(scores) / 0.5
            want.append(torch.logsumexp(scores, 0) - scores[0])
            hits.append(float(scores[0] > scores[1:].max()))
    assert float(loss) == pytest.approx(float(torch.stack(want).mean()), abs=1e-4)
    assert float(accuracy) == pytest.approx(sum(hits) / 3)
    model.train()  # and it is a loss one can descend: the true scripts come first on this batch
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(12):
        optimizer.zero_grad()
        rank_loss(model, batch)[0].backward()
        optimizer.step()
    with torch.no_grad():
        after, accuracy = rank_loss(model, batch)
    assert float(after) < float(loss) / 4 and float(accuracy) == 1.0


def _ranked_config(tokens, candidates, steps=4):
    from tests.training.test_train import small_config

    config = small_config(tokens, steps)
    config.data.rank = [DataSource(str(candidates["alpha"]))]
    config.data.rank_valid = str(candidates["gamma"])
    config.data.rank_len = 200
    config.optim.rank_weight, config.optim.rank_batch = 0.5, 3
    return config


def test_training_with_the_ranking_loss_logs_it_and_resumes_exactly(tokens, candidates, tmp_path):
    whole = train(_ranked_config(tokens, candidates), tmp_path / "whole", show_progress=False)
    with open(tmp_path / "whole" / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows if r["split"] == "rank"] == list(range(1, 5))
    assert {int(r["step"]) for r in rows if r["split"] == "rank_valid"} == {4}
    assert all(0 <= float(r["accuracy"]) <= 1 for r in rows if r["split"].startswith("rank"))
    assert whole.rank_tokens > 0
    out = tmp_path / "resumed"
    first = train(_ranked_config(tokens, candidates), out, show_progress=False, stop_after=2)
    assert first.interrupted
    second = train(_ranked_config(tokens, candidates), out, resume=out, show_progress=False)
    assert second.weights_digest == whole.weights_digest and second.rank_tokens == whole.rank_tokens
    plain = _ranked_config(tokens, candidates)
    plain.optim.rank_weight = 0.0  # the same run without the ranking loss ends elsewhere
    assert train(plain, tmp_path / "plain", show_progress=False).weights_digest != whole.weights_digest


def test_ranking_needs_candidate_shards(tokens, candidates, tmp_path):
    config = _ranked_config(tokens, candidates)
    config.data.rank = []
    with pytest.raises(PatchcoderError, match="rank_weight > 0 needs candidate shards"):
        train(config, tmp_path / "a", show_progress=False)
    config.data.rank = [DataSource(str(tokens["beta"]))]
    with pytest.raises(PatchcoderError, match="holds no candidates"):
        train(config, tmp_path / "b", show_progress=False)
    with pytest.raises(PatchcoderError, match="negatives must be at least 1"):
        make_candidate_shards(tokens["beta"], tmp_path / "c", config=CONFIG, negatives=0)


def _mean_log_p(model, prompt: list[int], cand: list[int]) -> float:
    """A candidate's mean log-probability per token after its prompt, read alone by the ordinary forward (fp32)."""
    with torch.no_grad():
        logp = model(torch.tensor([prompt + cand]))[0, len(prompt) - 1:-1].float().log_softmax(-1)
    return float(logp.gather(1, torch.tensor(cand)[:, None]).mean())


def test_hard_rivals_are_the_scorers_best_scoring_wrong_candidates(candidates, mined, tmp_path, one_thread):
    from patchcoder.checkpoint import load_checkpoint, save_checkpoint
    from patchcoder.ranking import Source
    from patchcoder.ranking import candidates as all_candidates
    from patchcoder.windows import Window

    tok = CodeTokenizer.default()
    scorer = tmp_path / "scorer"
    save_checkpoint(scorer, _model(tok.vocab_size), tok, training={}, max_tokens=128)
    out = tmp_path / "hard"
    make_candidate_shards(mined["alpha"], out, config=CONFIG, negatives=6, scorer=scorer, hard=3, keep_heads=None)
    shards, sampled = TokenShards(out), TokenShards(candidates["alpha"])
    described = shards.manifest["examples"]
    assert (described["hard"], described["keep_heads"], described["scorer"]) == (3, None, str(scorer.resolve()))
    assert len(described["scorer_digest"]) == 32
    model = load_checkpoint(scorer).model.eval()
    rows = {(r["commit"], r["path"]): r for f in shard_files(mined["alpha"]) for r in pq.read_table(f).to_pylist()}
    metas, differs, checked = _meta(out), 0, 0
    assert len(metas) == len(sampled)  # the same windows as the sampled-rival shards
    for k, meta in enumerate(metas):
        prompt, cands = split_candidates(*shards[k], tok.eos_id)
        differs += cands != split_candidates(*sampled[k], tok.eos_id)[1]
        if k % 3:
            continue  # every third window is checked in full: scoring each candidate alone is slow
        row = rows[(meta["commit"], meta["path"])]
        source = Source(row["new"] if meta["no_change"] else row["old"], row["language"])
        window = Window(0, prompt, meta["window_start"], meta["window_lines"])
        wrong = [c for c in all_candidates(tok, source, window) if c != cands[0]]
        scores = sorted((_mean_log_p(model, prompt, c) for c in wrong), reverse=True)
        rivals = cands[1:]
        hard = rivals[1:] if rivals[0] == [tok.eos_id] and not meta["no_change"] else rivals
        hard = [c for c in hard[:3] if len(c) < 60]
        for c in hard:  # each is among the three best-scoring wrong candidates (bf16 scoring of a near-uniform
            # model: scores are all near -9, 0.1 apart at most is bf16 noise)
            assert c in wrong and _mean_log_p(model, prompt, c) >= scores[min(2, len(scores) - 1)] - 0.1
        checked += len(hard)
    assert checked > 10 and differs > 0


def test_hard_rivals_need_a_scorer_with_the_shards_vocabulary(mined, tmp_path):
    import subprocess
    import sys

    with pytest.raises(PatchcoderError, match="hard rivals need a scorer"):
        make_candidate_shards(mined["alpha"], tmp_path / "a", config=CONFIG, negatives=4, hard=2)
    with pytest.raises(PatchcoderError, match="between 0 and negatives"):
        make_candidate_shards(mined["alpha"], tmp_path / "b", config=CONFIG, negatives=4, hard=5, scorer=tmp_path)
    done = subprocess.run([sys.executable, "-m", "patchcoder", "candidates", "--data", str(mined["alpha"]),
                           "--out", str(tmp_path / "c"), "--hard", "2", "--scorer", str(tmp_path / "none")],
                          capture_output=True, text=True)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "c").exists()
