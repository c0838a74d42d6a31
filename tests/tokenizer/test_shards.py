"""Examples, token shards (parallel, resumable) and the memory-mapped batch loader, on real parquet."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from patchcoder.cli import main
from patchcoder.ground.errors import PatchcoderError
from patchcoder.mining.shards import write_shard
from patchcoder.tokenizer import EditScript, edit_script
from patchcoder.tokenizer.examples import Dropped, ExampleConfig, build_example
from patchcoder.tokenizer.loader import Batches, TokenShards
from patchcoder.tokenizer.shards import tokenize_dataset


def module(k: int, lines: int = 30, bug: bool = False) -> str:
    body = "".join(f"    total += weight_{i} * {i}\n" for i in range(lines))
    cond = "<=" if bug else "<"
    return f'"""Module {k}."""\n\n\ndef score_{k}(items):\n    total = 0\n{body}    if total {cond} 0:\n        return None\n    return total\n'


def row(k: int, old: str | None, new: str | None, message: str = "Fix the bound check", path: str | None = None):
    return {
        "repo": f"repo{k % 3}", "commit": f"{k:040x}", "parent": f"{k + 1:040x}", "author_time": 1_700_000_000 + k,
        "message": message, "path": path or f"pkg/mod_{k}.py", "old_path": None,
        "change": "M" if old is not None and new is not None else "A" if old is None else "D",
        "language": "python", "old": old, "new": new, "old_blob": f"{2 * k:040x}", "new_blob": f"{2 * k + 1:040x}",
        "diff": "", "added": 1, "deleted": 1, "hunks": 1, "sstub": None,
    }


@pytest.fixture
def mined(tmp_path):
    """A mined folder with three shards: 24 fixable changes, plus an added and a deleted file."""
    out = tmp_path / "mined"
    for shard in range(3):
        rows = [row(k, module(k, 20 + 3 * k, bug=True), module(k, 20 + 3 * k)) for k in range(shard * 8, shard * 8 + 8)]
        if shard == 0:
            rows += [row(100, None, module(100)), row(101, module(101), None)]
        write_shard(out / "shards" / f"repo{shard}" / "00000.parquet", rows)
    return out


def test_example_layout(tok):
    old, new = module(1, 40, bug=True), module(1, 40)
    example = build_example(tok, row(1, old, new), ExampleConfig(drop_message=0.0, max_tokens=4096))
    ids = example.ids
    s = tok.special
    assert ids[0] == s["<|msg|>"] and tok.decode(ids[1:ids.index(s["<|file|>"])]) == "Fix the bound check"
    code_at, edit_at = ids.index(s["<|code|>"]), ids.index(s["<|edit|>"])
    assert tok.decode(ids[ids.index(s["<|file|>"]) + 1:code_at]) == "pkg/mod_1.py"
    assert example.answer_start == edit_at + 1 and ids[-1] == tok.eos_id
    # the window: markers <L0>..<Ln> interleaved with the old lines
    window = ids[code_at + 1:edit_at]
    markers = [tok.line_of_marker(i) for i in window if tok.line_of_marker(i) is not None]
    assert markers == list(range(example.window_lines + 1))
    lines = old.splitlines(keepends=True)[example.window_start:example.window_start + example.window_lines]
    assert tok.decode([i for i in window if tok.line_of_marker(i) is None]) == "".join(lines)
    # the answer parses back into the script, and applying it to the window gives the new window
    script = EditScript.from_tokens(ids[example.answer_start:], tok, example.window_lines)
    assert script == edit_script(old, new).shifted(-example.window_start)
    assert example.sstub == "change_binary_operator"


def test_window_shrinks_to_the_token_budget(tok):
    old, new = module(2, 400, bug=True), module(2, 400)
    small = build_example(tok, row(2, old, new), ExampleConfig(max_tokens=300, drop_message=0.0))
    assert len(small.ids) <= 300
    assert 0 < small.window_lines < 400
    assert small.window_start + small.window_lines >= 402  # the changed line is inside the window
    with pytest.raises(Dropped, match="too_long"):
        build_example(tok, row(2, old, new), ExampleConfig(max_tokens=20))


def test_message_dropping_is_deterministic(tok):
    config = ExampleConfig(drop_message=0.5, seed=3)
    dropped = [build_example(tok, row(k, module(k, bug=True), module(k)), config).message_dropped for k in range(40)]
    again = [build_example(tok, row(k, module(k, bug=True), module(k)), config).message_dropped for k in range(40)]
    assert dropped == again and 5 < sum(dropped) < 35
    example = build_example(tok, row(0, module(0, bug=True), module(0)), ExampleConfig(drop_message=1.0))
    assert example.ids[1] == tok.special["<|file|>"]


def test_tokenize_dataset_parallel_and_resumable(tok, mined, tmp_path):
    out = tmp_path / "tokens"
    summary = tokenize_dataset(mined, out, jobs=2)
    assert summary.units == 3 and summary.rows == 26 and summary.examples == 24
    assert summary.dropped == {"added_file": 1, "deleted_file": 1}
    assert summary.sstubs == {"change_binary_operator": 24}
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["vocab_fingerprint"] == tok.fingerprint and len(manifest["units"]) == 3

    shards = TokenShards(out)
    assert len(shards) == 24 and shards.lengths().sum() == summary.tokens
    ids, mask = shards[0]
    assert ids.dtype == np.uint16 and mask.dtype == np.uint8 and len(ids) == len(mask)
    assert ids[-1] == tok.eos_id and mask[-1] == 1 and mask[0] == 0
    assert int(mask.sum()) == len(ids) - 1 - list(ids).index(tok.special["<|edit|>"])

    # a run killed after one unit: the manifest lists one unit; --resume redoes the others identically
    before = {p.name: p.read_bytes() for p in (out / "shards").glob("*.npy")}
    kept = dict(list(manifest["units"].items())[:1])
    manifest["units"] = kept
    (out / "manifest.json").write_text(json.dumps(manifest))
    (out / "shards" / ".junk.npy.tmp").write_bytes(b"half-written")
    with pytest.raises(PatchcoderError, match="--resume"):
        tokenize_dataset(mined, out)
    again = tokenize_dataset(mined, out, resume=True, jobs=1)
    assert again.units == 2 and again.skipped_units == 1 and again.examples == 24
    assert {p.name: p.read_bytes() for p in (out / "shards").glob("*.npy")} == before
    assert not list((out / "shards").glob(".*.tmp"))
    with pytest.raises(PatchcoderError, match="config"):
        tokenize_dataset(mined, out, resume=True, config=ExampleConfig(max_tokens=77))


def test_batches_are_deterministic_and_resumable(mined, tmp_path):
    out = tmp_path / "tokens"
    tokenize_dataset(mined, out, jobs=1)
    shards = TokenShards(out)
    batches = Batches(shards, batch_size=4, seq_len=512, seed=7)
    assert batches.steps_per_epoch == 6
    first = [next(batches) for _ in range(9)]  # crosses an epoch boundary
    for ids, mask in first:
        assert ids.shape == mask.shape == (4, 512) and ids.dtype == np.int64
        assert np.all(ids[mask == 1] != shards.pad_id)
    state = Batches(shards, batch_size=4, seq_len=512, seed=7)
    for _ in range(5):
        next(state)
    saved = state.state_dict()
    resumed = Batches(shards, batch_size=4, seq_len=512, seed=7)
    resumed.load_state_dict(json.loads(json.dumps(saved)))
    for expected in first[5:]:
        got = next(resumed)
        assert np.array_equal(got[0], expected[0]) and np.array_equal(got[1], expected[1])
    # an epoch visits every example once; two ranks split each global batch
    epoch = np.concatenate([ids[:, :4] for ids, _ in first[:6]])
    assert len({tuple(r) for r in epoch}) <= 24
    r0 = Batches(shards, batch_size=2, seq_len=512, seed=7, rank=0, world_size=2)
    r1 = Batches(shards, batch_size=2, seq_len=512, seed=7, rank=1, world_size=2)
    assert np.array_equal(np.concatenate([next(r0)[0], next(r1)[0]]), first[0][0])
    with pytest.raises(PatchcoderError, match="seed"):
        Batches(shards, batch_size=4, seq_len=512, seed=8).load_state_dict(saved)


def test_tokenize_command_on_a_mined_git_repository(tmp_path, capsys, make_repo):
    repo = make_repo(tmp_path / "repo", [
        ("Add the scorer", {"score.py": module(0, 12, bug=True).encode(), "README.md": b"# demo\n"}),
        ("Fix the off-by-one bound in score", {"score.py": module(0, 12).encode()}),
        ("Swap the arguments of the call", {"util.py": b"def f(a, b):\n    return g(b, a)\n"}),
        ("Fix argument order in f", {"util.py": b"def f(a, b):\n    return g(a, b)\n"}),
    ])
    mined = tmp_path / "mined"
    assert main(["mine", repo, "--out", str(mined), "--jobs", "1", "--no-progress"]) == 0
    out = tmp_path / "tokens"
    assert main(["tokenize", "--data", str(mined), "--out", str(out), "--jobs", "1", "--no-progress", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["examples"] == 2
    assert summary["sstubs"] == {"change_binary_operator": 1, "swap_arguments": 1}
    assert len(TokenShards(out)) == 2
    assert main(["tokenize", "--data", str(tmp_path / "nowhere"), "--out", str(out)]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_miner_diffs_parse_into_scripts(tmp_path, make_repo):
    import pyarrow.parquet as pq

    from patchcoder.mining.shards import shard_files

    repo = make_repo(tmp_path / "repo", [
        ("Add files", {"a.py": b"x = 1\ny = 2\nz = 3", "b.c": b"int a;\r\nint b;\r\n"}),
        ("Change the last line and add a newline", {"a.py": b"x = 1\ny = 2\nz = 4\n"}),
        ("Edit CRLF lines", {"b.c": b"int a;\r\nlong b;\r\nint c;\r\n"}),
        ("Drop the final newline again", {"a.py": b"x = 1\ny = 20\nz = 4"}),
    ])
    mined = tmp_path / "mined"
    assert main(["mine", repo, "--out", str(mined), "--jobs", "1", "--no-progress"]) == 0
    rows = [r for f in shard_files(mined) for r in pq.read_table(f).to_pylist() if r["old"] is not None]
    assert len(rows) == 3
    for r in rows:
        assert EditScript.from_unified_diff(r["old"], r["diff"]).apply(r["old"]) == r["new"]


def test_train_vocab_from_mined_data_and_encode_command(mined, tmp_path, capsys):
    out = tmp_path / "v.json"
    assert main(["tokenize", "train-vocab", "--data", str(mined), "--vocab-size", "700", "--jobs", "1",
                 "--out", str(out)]) == 0
    source = tmp_path / "m.py"
    source.write_text(module(1))
    assert main(["tokenize", "encode", str(source), "--vocab", str(out)]) == 0
    captured = capsys.readouterr()
    assert captured.out.replace("|", "") == module(1) + "\n"
    assert "bytes/token" in captured.err
    assert main(["tokenize"]) == 2  # neither --data/--out nor an action


PY_LINES = ["x = 1", "y = f(x, 2)", "", "    return y", "if a < b:", "\tpass", "# note é", "s = 'a b'"]


@settings(max_examples=120, deadline=None)
@given(st.lists(st.sampled_from(PY_LINES), max_size=40), st.lists(st.sampled_from(PY_LINES), max_size=40),
       st.integers(60, 2000), st.booleans())
def test_answer_applied_to_window_gives_the_new_window(tok, old_lines, new_lines, budget, final_newline):
    from patchcoder.tokenizer.examples import build_examples

    old = "\n".join(old_lines) + ("\n" if final_newline and old_lines else "")
    new = "\n".join(new_lines) + ("\n" if new_lines else "")
    try:
        examples, dropped = build_examples(tok, row(0, old, new), ExampleConfig(max_tokens=budget, drop_message=0.0))
    except Dropped as exc:
        assert exc.reason == "no_change" and old == new
        return
    assert set(dropped) <= {"too_long"}
    ops = []
    for example in examples:
        assert len(example.ids) <= budget
        part = EditScript.from_tokens(example.ids[example.answer_start:], tok, example.window_lines)
        ops.extend(part.shifted(example.window_start).ops)
        # the part applied to its window, put back into the old text, is the old text with that part applied
        old_all = old.splitlines(keepends=True)
        lo, hi = example.window_start, example.window_start + example.window_lines
        patched = "".join(old_all[:lo]) + part.apply("".join(old_all[lo:hi])) + "".join(old_all[hi:])
        assert patched == EditScript(part.shifted(example.window_start).ops).apply(old)
    if not dropped:
        assert EditScript(tuple(ops)).apply(old) == new


def test_encode_prompt_matches_the_training_framing(tok):
    from patchcoder.tokenizer.examples import encode_prompt

    old, new = module(3, 30, bug=True), module(3, 30)
    example = build_example(tok, row(3, old, new, message="Fix it"), ExampleConfig(drop_message=0.0, max_tokens=4096))
    prompt = encode_prompt(tok, old, "pkg/mod_3.py", "Fix it", "python", example.window_start,
                           example.window_start + example.window_lines)
    assert prompt == example.ids[:example.answer_start]
    with pytest.raises(ValueError):
        encode_prompt(tok, old, "x.py", start=5, end=2)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 699), st.sampled_from(["delete", "insert", "replace"])), min_size=1,
                max_size=6))
def test_far_apart_changes_become_one_example_each(tok, edits):
    from patchcoder.tokenizer.examples import build_examples

    old_lines = [f"value_{i} = compute({i})\n" for i in range(700)]
    new_lines = list(old_lines)
    for line, kind in sorted(dict(edits).items(), reverse=True):  # bottom-up: earlier line numbers stay valid
        if kind == "delete":
            del new_lines[line]
        elif kind == "insert":
            new_lines.insert(line, "inserted = True\n")
        else:
            new_lines[line] = f"value_{line} = compute({line} + 1)\n"
    old, new = "".join(old_lines), "".join(new_lines)
    examples, dropped = build_examples(tok, row(0, old, new), ExampleConfig(max_tokens=2048, drop_message=0.0))
    assert not dropped
    ops = []
    for example in examples:
        assert len(example.ids) <= 2048 and example.window_lines <= tok.max_lines
        part = EditScript.from_tokens(example.ids[example.answer_start:], tok, example.window_lines)
        ops.extend(part.shifted(example.window_start).ops)
    assert EditScript(tuple(ops)).apply(old) == new
    lines = sorted(dict(edits))
    assert len(examples) >= (1 if lines[-1] - lines[0] < tok.max_lines else 2)


def test_one_operation_longer_than_a_window_is_dropped(tok):
    old = "".join(f"{i}\n" for i in range(300))
    new = "".join(f"x{i}\n" for i in range(300))
    with pytest.raises(Dropped, match="too_many_lines"):
        build_example(tok, row(0, old, new), ExampleConfig(max_tokens=100_000))


def _window_text(tok, example) -> tuple[str, list[int]]:
    """The code a prompt shows (markers removed) and its marker numbers."""
    s = tok.special
    window = example.ids[example.ids.index(s["<|code|>"]) + 1:example.ids.index(s["<|edit|>"])]
    markers = [tok.line_of_marker(i) for i in window if tok.line_of_marker(i) is not None]
    return tok.decode([i for i in window if tok.line_of_marker(i) is None]), markers


def test_no_change_examples_show_the_new_code_and_answer_eos(tok):
    from patchcoder.tokenizer.examples import build_examples

    config = ExampleConfig(drop_message=0.0, max_tokens=300, no_change=1.0, no_change_at_change=1.0)
    old, new = module(5, 200, bug=True), module(5, 200)
    examples, dropped = build_examples(tok, row(5, old, new), config)
    assert not dropped and [e.no_change for e in examples] == [False, True]
    change, keep = examples
    # the answer is <|eos|> alone, there is no message, and the window is the new text's lines
    assert keep.ids[keep.answer_start:] == [tok.eos_id] and keep.message_dropped and keep.sstub is None
    assert keep.ids[1] == tok.special["<|file|>"] and len(keep.ids) <= 300
    text, markers = _window_text(tok, keep)
    assert markers == list(range(keep.window_lines + 1))
    lines = new.splitlines(keepends=True)
    assert text == "".join(lines[keep.window_start:keep.window_start + keep.window_lines])
    # "at the change": the fixed line (the comparison) is inside the window, as in the buggy one
    fixed = next(i for i, line in enumerate(lines) if "if total < 0" in line)
    assert keep.window_start <= fixed < keep.window_start + keep.window_lines
    assert change.window_start <= fixed < change.window_start + change.window_lines


def test_a_windows_size_says_nothing_about_its_answer(tok):
    """Windows take the prompt budget inference cuts them with, whatever the answer: a long script, a short
    one and "no change" get windows of the same lines (before session 9 the answer's length set it)."""
    from patchcoder.tokenizer.examples import PROMPT_SHARE, build_examples
    from patchcoder.windows import windows_for

    old = module(6, 200, bug=True)
    short = module(6, 200)
    long = old.replace("    if total <= 0:\n", "    if total <= 0 and all(w is not None for w in (weight_0, weight_1)):\n")
    config = ExampleConfig(drop_message=0.0, max_tokens=300, no_change=1.0, no_change_at_change=1.0)
    (fix, keep), _ = build_examples(tok, row(6, old, short, path="pkg/mod.py"), config)
    (grow, _), _ = build_examples(tok, row(6, old, long, path="pkg/mod.py"), config)
    assert len(grow.ids) - grow.answer_start > len(fix.ids) - fix.answer_start + 10  # a much longer script
    assert (grow.window_start, grow.window_lines) == (fix.window_start, fix.window_lines)
    assert fix.answer_start == grow.answer_start <= int(PROMPT_SHARE * 300)
    # the no-change window is as large as the buggy one (the same code but for one line)
    assert abs(keep.window_lines - fix.window_lines) <= 1
    assert abs(keep.answer_start - fix.answer_start) <= 12  # at most one line's tokens apart
    # and as large as the window inference cuts around that line
    line = next(i for i, text in enumerate(short.splitlines()) if "if total < 0" in text)
    (window,) = windows_for(tok, short, max_tokens=300, language="python", path="pkg/mod.py", focus=(line, line))
    assert abs(window.n_lines - keep.window_lines) <= 1 and abs(len(window.prompt) - keep.answer_start) <= 12
    # the old format (windows filled the whole budget) told the answer's length by the window's size
    filled = ExampleConfig(drop_message=0.0, max_tokens=300, no_change=1.0, no_change_at_change=1.0, prompt_share=1.0)
    (fix1, keep1), _ = build_examples(tok, row(6, old, short, path="pkg/mod.py"), filled)
    (grow1, _), _ = build_examples(tok, row(6, old, long, path="pkg/mod.py"), filled)
    assert grow1.window_lines < fix1.window_lines < keep1.window_lines


def test_changes_far_apart_in_tokens_get_windows_inference_could_cut(tok):
    """Two edits whose lines between them fit the whole budget but not the prompt's share of it become two
    windows, each within the prompt budget (one window spanning both would be larger than any inference cuts)."""
    from patchcoder.tokenizer.examples import PROMPT_SHARE, build_examples

    old_lines = [f"value_{i} = compute({i}, scale=factor_{i})\n" for i in range(80)]  # 16 tokens a line
    for max_tokens, second in ((512, 45), (384, 38)):  # the span costs ~0.8 of the budget: over 3/4, under all
        new_lines = list(old_lines)
        for k in (20, second):
            new_lines[k] = f"value_{k} = compute({k} + 1, scale=factor_{k})\n"
        examples, dropped = build_examples(tok, row(7, "".join(old_lines), "".join(new_lines)),
                                           ExampleConfig(max_tokens=max_tokens, drop_message=0.0))
        assert not dropped and all(e.answer_start <= int(PROMPT_SHARE * max_tokens) for e in examples)
        ops = [op for e in examples
               for op in EditScript.from_tokens(e.ids[e.answer_start:], tok, e.window_lines).shifted(e.window_start).ops]
        assert sorted(op.start for op in ops) == [20, second] and len(examples) == 2


def test_no_change_rate_and_placement_are_deterministic(tok):
    from patchcoder.tokenizer.examples import build_examples

    config = ExampleConfig(drop_message=0.0, max_tokens=200, no_change=0.5, no_change_at_change=0.5, seed=7)
    rows = [row(k, module(k, 150, bug=True), module(k, 150)) for k in range(40)]

    def kept():
        out = []
        for r in rows:
            examples, _ = build_examples(tok, r, config)
            out.append([(e.window_start, e.window_lines) for e in examples if e.no_change])
        return out

    first = kept()
    assert first == kept()
    assert 8 < sum(map(len, first)) < 32  # about half of the rows
    fixed = next(i for i, line in enumerate(module(0, 150).splitlines()) if "if total < 0" in line)
    away = [w for ws in first for w in ws if not w[0] <= fixed < w[0] + w[1]]
    assert away and len(away) < sum(map(len, first))  # some windows elsewhere, some at the change
    none = ExampleConfig(drop_message=0.0, max_tokens=200)
    assert all(not e.no_change for r in rows for e in build_examples(tok, r, none)[0])


def test_tokenize_command_writes_no_change_examples(tok, mined, tmp_path, capsys):
    out = tmp_path / "tokens"
    code = main(["tokenize", "--data", str(mined), "--out", str(out), "--no-change", "1", "--jobs", "1",
                 "--json", "--no-progress", "--max-tokens", "512"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["no_change_examples"] == 24 and summary["examples"] == 48
    import pyarrow.parquet as pq

    shards = TokenShards(out)

    flags = [f for path in sorted((out / "shards").rglob("*.examples.parquet"))
             for f in pq.read_table(path).column("no_change").to_pylist()]
    assert sum(flags) == 24
    # the loss of exactly those examples is on <|eos|> alone (a change's answer has more tokens)
    answers = [int(shards[i][1].sum()) for i in range(len(shards))]
    assert answers.count(1) == 24 and len(answers) == 48


def test_tokenize_refuses_other_data_on_resume_and_a_folder_it_did_not_make(mined, tmp_path):
    out = tmp_path / "tokens"
    tokenize_dataset(mined, out)
    other = tmp_path / "other"
    write_shard(other / "shards" / "x" / "00000.parquet", [row(7, module(7, bug=True), module(7))])
    with pytest.raises(PatchcoderError, match="different"):
        tokenize_dataset(other, out, resume=True)  # e.g. split/valid resumed into split/train's tokens
    before = sorted(p.name for p in (mined / "shards").rglob("*"))
    with pytest.raises(PatchcoderError, match="is inside --data .*: its shards would be read as input"):
        tokenize_dataset(mined, mined)  # into the mined folder itself
    with pytest.raises(PatchcoderError, match="is inside --data .*: its shards would be read as input"):
        tokenize_dataset(mined, mined / "tokens")  # or a folder in it: a resumed run would read its own shards
    assert sorted(p.name for p in (mined / "shards").rglob("*")) == before


def test_a_damaged_shard_is_counted_and_the_others_are_tokenized(mined, tmp_path):
    damaged = next((mined / "shards" / "repo1").glob("*.parquet"))
    damaged.write_bytes(damaged.read_bytes()[:200])  # truncated: no parquet footer
    out = tmp_path / "tokens"
    summary = tokenize_dataset(mined, out, jobs=1)
    assert summary.units == 3 and summary.dropped["unreadable_shard"] == 1
    assert len(TokenShards(out)) == 16  # the 24 changes less the damaged shard's 8


def test_a_shard_of_other_columns_or_with_a_row_of_other_bytes_is_counted_and_the_rest_tokenized(mined, tmp_path):
    """A shard without the columns of mined data is counted, not a crash nor a silent "deleted file" per row; a
    row whose text is not UTF-8 (another tool's parquet) is counted, and the rest of its batch is read."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    first = next((mined / "shards" / "repo1").glob("*.parquet"))
    pq.write_table(pq.read_table(first).drop_columns(["new"]), first)
    second = next((mined / "shards" / "repo2").glob("*.parquet"))
    table = pq.read_table(second)
    old = table.column("old").to_pylist()
    raw = pa.array([o.encode() for o in old], pa.binary())
    raw = pa.array([b"\xff\xfe" + o if i == 0 else o for i, o in enumerate(raw.to_pylist())], pa.binary())
    index = table.column_names.index("old")
    pq.write_table(table.set_column(index, "old", raw.view(pa.string())), second)
    summary = tokenize_dataset(mined, tmp_path / "tokens", jobs=1)
    assert summary.dropped["missing_columns"] == 1 and summary.dropped["undecodable_row"] == 1
    assert len(TokenShards(tmp_path / "tokens")) == 8 + 7  # repo0's 8 changes, repo2's other 7


def test_training_refuses_a_tokenize_run_that_has_not_finished(mined, tmp_path):
    out = tmp_path / "tokens"
    tokenize_dataset(mined, out)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["complete"] is True
    manifest["complete"] = False  # as a killed run leaves it
    (out / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(PatchcoderError, match="not finished"):
        TokenShards(out)


def test_train_vocab_refuses_no_input_and_an_existing_file(mined, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    out = tmp_path / "v.json"
    assert main(["tokenize", "train-vocab", "--files", str(empty), "--vocab-size", "600", "--jobs", "1",
                 "--out", str(out), "--no-progress"]) == 2
    assert not out.exists() and "no code files" in capsys.readouterr().err
    assert main(["tokenize", "train-vocab", "--data", str(tmp_path / "missing"), "--out", str(out)]) == 2
    out.write_text("mine")
    assert main(["tokenize", "train-vocab", "--data", str(mined), "--vocab-size", "600", "--jobs", "1",
                 "--out", str(out)]) == 2
    assert out.read_text() == "mine" and "never overwritten" in capsys.readouterr().err


def test_a_read_that_fails_for_a_moment_leaves_its_unit_for_resume(mined, tmp_path, monkeypatch):
    import pyarrow.parquet as pq

    real = pq.ParquetFile
    failures = iter([ConnectionResetError(104, "Connection reset by peer")])

    def flaky(*args, **kwargs):  # the first read of a shard on a network store fails, as connections do
        failure = next(failures, None)
        if failure is not None:
            raise failure
        return real(*args, **kwargs)

    monkeypatch.setattr(pq, "ParquetFile", flaky)
    out = tmp_path / "tokens"
    with pytest.raises(ConnectionResetError):
        tokenize_dataset(mined, out, jobs=1)
    again = tokenize_dataset(mined, out, jobs=1, resume=True)
    assert again.examples == 24 and "unreadable_shard" not in again.dropped


def test_a_file_where_a_folder_is_expected_is_one_line(mined, tmp_path, capsys):
    afile = tmp_path / "afile"
    afile.write_text("not a folder")
    with pytest.raises(PatchcoderError, match="is a file, not a folder"):
        tokenize_dataset(mined, afile)
    assert afile.read_text() == "not a folder"
    shard = next((mined / "shards").rglob("*.parquet"))
    assert main(["tokenize", "--data", str(shard), "--out", str(tmp_path / "t")]) == 2
    assert "is a file" in capsys.readouterr().err
