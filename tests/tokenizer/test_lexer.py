"""Pre-tokens: tree-sitter leaves for every grammar, regex fallback, lines, and the parse cache."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from patchcoder.tokenizer.lexer import GRAMMARS, Lexer, group_lines, regex_pieces

SAMPLES = {
    "python": 'def f(a, b=1.5e3):\n    """Doc string."""\n    return a ** b  # power\n',
    "javascript": "const f = (a, b) => {\n  // sum\n  return a + b ?? `x${a}`;\n};\n",
    "typescript": "function f(a: number): string {\n  return `${a}`; /* c */\n}\n",
    "tsx": "const C = () => <div className=\"x\">{a}</div>;\n",
    "java": "public class A {\n  static int f(int x) { return x >>> 2; } // shift\n}\n",
    "go": "package main\n\nfunc f(a int) int {\n\treturn a << 1 // c\n}\n",
    "rust": "fn f(a: &mut Vec<u8>) -> usize {\n    a.len() // c\n}\n",
    "c": "#include <stdio.h>\nint main(void) { printf(\"hi %d\\n\", 1); return 0; }\n",
    "cpp": "template <typename T>\nT f(T a) { return a->b::c; }\n",
}


def test_every_grammar_has_a_sample():
    assert set(SAMPLES) == set(GRAMMARS)


@pytest.mark.parametrize("language", sorted(GRAMMARS))
def test_tree_sitter_pieces_concatenate_back(language):
    data = SAMPLES[language].encode()
    pieces = Lexer().pieces(data, language)
    assert b"".join(pieces) == data
    for piece in pieces:
        assert piece  # no empty piece
        assert b"\n" not in piece[:-1]  # a newline only ever ends a piece


def test_leaves_strings_and_comments():
    pieces = Lexer().pieces(SAMPLES["python"].encode(), "python")
    assert b"1.5e3" in pieces  # a number leaf is one piece
    assert b"**" in pieces  # an operator leaf is one piece
    assert b"power" in pieces and b"Doc" in pieces  # comments and strings are split into words
    assert b"    " in pieces  # indentation is its own piece


def test_unparsable_code_still_round_trips():
    data = b"def (((:\n  ]]] \xe2\x82\xac 'unterminated\n\tx = = 1\n"
    pieces = Lexer().pieces(data, "python")
    assert b"".join(pieces) == data


def test_unknown_language_uses_regex_lexer():
    data = b"puts 'hi' if x >= 10 # ruby\n"
    assert Lexer().pieces(data, "ruby") == regex_pieces(data)
    assert b">=" in regex_pieces(data)


def test_parse_cache_parses_each_text_once():
    lexer = Lexer()
    data = SAMPLES["go"].encode()
    first = lexer.pieces(data, "go")
    assert lexer.pieces(data, "go") is first
    assert lexer.parsed == 1
    lexer.pieces(data + b"\n", "go")
    assert lexer.parsed == 2


def test_group_lines():
    lines = group_lines(Lexer().pieces(b"a = 1\r\n\nb\n  c", "python"))
    assert [b"".join(line) for line in lines] == [b"a = 1\r\n", b"\n", b"b\n", b"  c"]


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300), st.sampled_from([None, "python", "c", "javascript", "rust"]))
def test_any_bytes_round_trip(data, language):
    pieces = Lexer(cache_size=0).pieces(data, language)
    assert b"".join(pieces) == data
    assert all(b"\n" not in p[:-1] for p in pieces)


def test_parse_cache_is_bounded_in_bytes():
    lexer = Lexer(cache_bytes=1000)
    texts = [f"x_{k} = {k}\n".encode() * 30 for k in range(10)]  # 240 bytes each
    for data in texts:
        lexer.pieces(data, "python")
    assert lexer._cached_bytes <= 1000 and len(lexer._cache) == 4
    lexer.pieces(texts[-1], "python")
    assert lexer.parsed == 10  # the most recent text is still cached


def test_public_parser_accessor():
    from patchcoder.tokenizer.lexer import tree_sitter_parser

    tree = tree_sitter_parser("rust").parse(b"fn main() {}\n")
    assert tree.root_node.type == "source_file" and not tree.root_node.has_error
    with pytest.raises(KeyError, match="no tree-sitter grammar"):
        tree_sitter_parser("cobol")
