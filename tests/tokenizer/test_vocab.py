"""CodeTokenizer: lossless for every str, special tokens, save/load, training."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from patchcoder.cli import main
from patchcoder.ground.errors import PatchcoderError
from patchcoder.tokenizer import CodeTokenizer
from patchcoder.tokenizer import special as sp
from patchcoder.tokenizer.vocab import DEFAULT_VOCAB

LANGUAGES = [None, "python", "javascript", "typescript", "tsx", "java", "go", "rust", "c", "cpp"]
# any code point, lone surrogates included (hypothesis excludes them from text() by default)
ANY_CHAR = st.characters(codec=None, min_codepoint=0, max_codepoint=0x10FFFF)
CODE_CHARS = st.sampled_from(list("ab_(){}[]:;,.=+-*/<>!&|\"'#\\` \t\n\r\x00é€😀") + ["\ud800", "\udfff"])


@settings(max_examples=300, deadline=None)
@given(st.text(ANY_CHAR, max_size=200), st.sampled_from(LANGUAGES))
def test_round_trip_arbitrary_unicode(tok, text, language):
    assert tok.decode(tok.encode(text, language)) == text


@settings(max_examples=300, deadline=None)
@given(st.text(CODE_CHARS, max_size=300), st.sampled_from(LANGUAGES))
def test_round_trip_code_like_text(tok, text, language):
    ids = tok.encode(text, language)
    assert tok.decode(ids) == text
    assert all(0 <= i < tok.bpe_size for i in ids)  # text never produces a special token


def test_round_trip_edge_cases(tok):
    for text in ["", "\n", "\r\n", "a\r\nb\r\n", "\t\tx\x00y", "no newline at end", "\ud83d\ude00 pair as two surrogates",
                 "lone \udc80 surrogate", "\U0010ffff", "<|msg|><L0><INSERT>"]:
        for language in LANGUAGES:
            assert tok.decode(tok.encode(text, language)) == text


def test_special_token_names_in_text_are_plain_text(tok):
    ids = tok.encode("<|eos|> <L3> <INSERT>", "python")
    assert not any(tok.is_special(i) for i in ids)


def test_special_ids(tok):
    names = sp.special_names(tok.max_lines)
    assert tok.vocab_size == tok.bpe_size + len(names)
    assert sorted(tok.special.values()) == list(range(tok.bpe_size, tok.vocab_size))
    assert tok.line_marker(0) == tok.special["<L0>"]
    assert tok.line_marker(tok.max_lines) == tok.special[f"<L{tok.max_lines}>"]
    assert tok.line_of_marker(tok.line_marker(7)) == 7
    assert tok.line_of_marker(tok.special["<|eos|>"]) is None
    with pytest.raises(ValueError):
        tok.line_marker(tok.max_lines + 1)
    assert tok.decode([tok.special["<|edit|>"], tok.line_marker(3)]) == "<|edit|><L3>"
    for name in ["<|msg|>", "<|file|>", "<|code|>", "<|edit|>", "<|eos|>", "<|pad|>", "<INSERT>", "<DELETE>",
                 "<REPLACE>", "<END>", "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>", "<|mask|>"]:
        assert name in tok.special
    assert tok.pad_id == tok.special["<|pad|>"] and tok.eos_id == tok.special["<|eos|>"]


def test_default_vocabulary_is_small_and_versioned(tok):
    assert DEFAULT_VOCAB.stat().st_size < 2_000_000
    document = json.loads(DEFAULT_VOCAB.read_text())
    assert document["format"] == "patchcoder-bpe/1" and document["name"] == "patchcoder-bpe-v1"
    assert document["trained_by"].startswith("patchcoder tokenize train-vocab")
    assert tok.vocab_size == document["vocab_size"] == 8192


def test_encode_lines_matches_encode(tok):
    text = "def f(x):\n    return x + 1\n\n# end"
    lines = tok.encode_lines(text, "python")
    assert len(lines) == 4
    assert [tok.decode(ids) for ids in lines] == ["def f(x):\n", "    return x + 1\n", "\n", "# end"]
    assert sum(lines, []) == tok.encode(text, "python")


def test_decode_rejects_unknown_ids_and_invalid_utf8(tok):
    with pytest.raises(PatchcoderError, match="outside the vocabulary"):
        tok.decode([tok.vocab_size])
    lone_byte = next(i for i in range(tok.bpe_size) if tok.token_bytes(i) == b"\xff")
    with pytest.raises(UnicodeDecodeError):
        tok.decode([lone_byte])
    assert tok.decode([lone_byte], errors="replace") == "\ufffd"


def test_compression_on_code(tok):
    text = (DEFAULT_VOCAB.parent.parent / "vocab.py").read_text()
    assert len(text.encode()) / len(tok.encode(text, "python")) > 3.0


def test_save_load_round_trip(tok, tmp_path):
    path = tmp_path / "v.json"
    tok.save(path)
    again = CodeTokenizer.load(path)
    assert again.vocab_size == tok.vocab_size and again.fingerprint == tok.fingerprint
    assert again.encode("x = 1\n", "python") == tok.encode("x = 1\n", "python")


def test_load_errors(tmp_path):
    with pytest.raises(PatchcoderError, match="does not exist"):
        CodeTokenizer.load(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(PatchcoderError, match="not a patchcoder vocabulary"):
        CodeTokenizer.load(tmp_path / "bad.json")
    (tmp_path / "damaged.json").write_text('{"format": "patchcoder-bpe/1", "max_lines": 256, "hf_tokenizer": {}}')
    with pytest.raises(PatchcoderError, match="damaged"):
        CodeTokenizer.load(tmp_path / "damaged.json")


def test_train_vocab_command(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for k in range(6):
        (src / f"m{k}.py").write_text(f"def handler_{k}(request, response):\n    return request.value + {k}\n" * 30)
    (src / "x.c").write_text("int main(void) { return 0; }\n" * 20)
    (src / "flask").mkdir()
    (src / "flask" / "app.py").write_text("reserved_for_evaluation = 1\n" * 50)
    out = tmp_path / "v.json"
    assert main(["tokenize", "train-vocab", "--files", str(src), "--vocab-size", "600", "--jobs", "1",
                 "--out", str(out)]) == 0
    tok = CodeTokenizer.load(out)
    assert tok.vocab_size == 600
    assert tok.meta["trained_on"]["files"] == 7  # flask/ is never read
    assert len(tok.encode("    return request.value\n", "python")) <= 6
    assert "reserved_for_evaluation" not in json.dumps(json.loads(out.read_text())["hf_tokenizer"]["model"]["vocab"])


def test_pickle_round_trip(tok):
    import pickle

    again = pickle.loads(pickle.dumps(tok))
    assert again.fingerprint == tok.fingerprint
    assert again.encode("def f(): pass\n", "python") == tok.encode("def f(): pass\n", "python")
