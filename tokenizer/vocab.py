"""CodeTokenizer: syntax-aware pre-tokens (lexer.py) encoded by a byte-level BPE, plus the special tokens.

Lossless for every Python `str`: a text is encoded as UTF-8 with `surrogatepass` (so lone surrogates
survive), each byte is shown to the BPE as one of 256 printable characters (the GPT-2 byte alphabet),
and the pieces are joined with U+E000, a character outside that alphabet, which the BPE's only
pre-tokenizer (`Split`, removed) cuts on. So no merge crosses a piece boundary, the Hugging Face
tokenizer stays fully serialisable, and every byte has a token (nothing is ever unknown).

The vocabulary file is one JSON document: patchcoder's metadata plus the Hugging Face tokenizer.
Ids: BPE tokens first, then the special tokens of special.py in order.
"""

from __future__ import annotations

import codecs
import hashlib
import json
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from functools import cached_property
from pathlib import Path

from patchcoder.ground.atomic import atomic_write
from patchcoder.ground.errors import PatchcoderError
from patchcoder.tokenizer import special as sp
from patchcoder.tokenizer.lexer import Lexer

FORMAT = "patchcoder-bpe/1"
SEPARATOR = "\ue000"
DEFAULT_VOCAB = Path(__file__).parent / "vocab" / "patchcoder-bpe-v1.json"


def _byte_alphabet() -> list[str]:
    """The character standing for each byte: printable Latin-1 bytes stand for themselves, the others
    (controls, space, soft hyphen, ...) are moved to U+0100 and up, in byte order (as in GPT-2)."""
    printable = set(range(ord("!"), ord("~") + 1)) | set(range(0xA1, 0xAD)) | set(range(0xAE, 0x100))
    chars, shifted = [], 0
    for byte in range(256):
        if byte in printable:
            chars.append(chr(byte))
        else:
            chars.append(chr(256 + shifted))
            shifted += 1
    return chars


BYTE_CHARS = _byte_alphabet()
_FROM_BYTE_CHARS = {char: byte for byte, char in enumerate(BYTE_CHARS)}


# The BPE's pre-tokens are the lexer's pieces with three joins, chosen for compression (issue 3: no worse
# than plain BPE): a single space is joined to the piece after it (" foo", as GPT-2 does; in a longer
# run only the last space moves), a line's newline to the piece before it ("):\n"), and adjacent
# punctuation pieces to each other ("()", "):"). Boundaries are only ever removed, so a pre-token never
# cuts a tree-sitter leaf, and a newline still only ends a pre-token, so pre-tokens still group into lines.
# The joins are byte regexes over the pieces joined with byte 0xFF, which UTF-8 never contains (nor does
# `surrogatepass` output); then one charmap decode maps each byte to its byte character and 0xFF to SEPARATOR.
_WS = rb" \t\n\x0b\x0c\r"
_PUNCT = re.escape(bytes(b for b in range(33, 127) if not chr(b).isalnum() and b != ord("_")))
# (each pattern starts with a literal, so that `re` can search for it instead of trying every position)
_LAST_SPACE_OF_RUN = re.compile(rb" \xff(?<=[" + _WS + rb"] \xff)(?=[^\xff" + _WS + rb"])")
_LONE_SPACE = re.compile(rb" \xff(?=[^\xff" + _WS + rb"])")
_NEWLINE_AFTER_CODE = re.compile(rb"\xff(?<=[^\xff" + _WS + rb"]\xff)(?=\r?\n(?:\xff|$))")
_PUNCT_RUN = re.compile(rb"\xff(?<=[" + _PUNCT + rb"]\xff)(?=[" + _PUNCT + rb"])")
_LINE_END = re.compile(f"(?<={BYTE_CHARS[ord(chr(10))]}){SEPARATOR}")
_DECODING_TABLE = "".join(BYTE_CHARS[:255]) + SEPARATOR


def pieces_to_bpe_input(pieces: Iterable[bytes]) -> str:
    """The string the BPE model sees for pieces of UTF-8 text (as `str.encode("utf-8", "surrogatepass")`
    gives; never a 0xFF byte): byte characters, pre-tokens joined by SEPARATOR."""
    data = b"\xff".join(pieces)
    data = _PUNCT_RUN.sub(b"", data)
    data = _NEWLINE_AFTER_CODE.sub(b"", data)
    data = _LAST_SPACE_OF_RUN.sub(b"\xff ", data)
    data = _LONE_SPACE.sub(b" ", data)
    return codecs.charmap_decode(data, "strict", _DECODING_TABLE)[0]


def split_bpe_lines(bpe_input: str) -> list[str]:
    """The BPE input of each line (a line's pre-tokens end with its newline)."""
    return _LINE_END.split(bpe_input) if bpe_input else []


def _text_bytes(text: str) -> bytes:
    if not isinstance(text, str):
        raise TypeError(f"expected str, got {type(text).__name__}")
    return text.encode("utf-8", "surrogatepass")


MAX_LINES_LIMIT = 100_000  # far above any window; a larger value in a file is damage (it would build as many ids)


class CodeTokenizer:
    """Encode code to ids and back; `special[name]` and `line_marker(i)` give the special ids."""

    def __init__(self, hf_tokenizer, *, max_lines: int = sp.MAX_LINES, meta: dict | None = None) -> None:
        self._hf = hf_tokenizer
        self.max_lines = max_lines
        self.meta = dict(meta or {})
        self.bpe_size = hf_tokenizer.get_vocab_size()
        names = sp.special_names(max_lines)
        self.special: dict[str, int] = {name: self.bpe_size + i for i, name in enumerate(names)}
        self.vocab_size = self.bpe_size + len(names)
        self.pad_id = self.special[sp.PAD]
        self.eos_id = self.special[sp.EOS]
        self._line0 = self.special[sp.line_marker_name(0)]
        self.lexer = Lexer()
        self.word_cache_size = 200_000
        self._word_ids: dict[str, list[int]] = {}
        # id -> the bytes it stands for (special tokens: their name), for a fast decode
        id_bytes: list[bytes] = [b""] * self.vocab_size
        for token, i in hf_tokenizer.get_vocab().items():
            id_bytes[i] = bytes(_FROM_BYTE_CHARS[c] for c in token)
        for name, i in self.special.items():
            id_bytes[i] = name.encode()
        self._id_bytes = id_bytes

    # ---- loading and saving

    @classmethod
    def load(cls, path: str | os.PathLike) -> CodeTokenizer:
        from tokenizers import Tokenizer

        path = Path(path)
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise PatchcoderError(f"vocabulary file {path} does not exist") from None
        except (OSError, ValueError, RecursionError) as exc:
            raise PatchcoderError(f"vocabulary file {path} is not readable JSON ({exc})") from None
        if not isinstance(document, dict) or document.get("format") != FORMAT:
            raise PatchcoderError(f"{path} is not a patchcoder vocabulary (expected format {FORMAT!r})")
        try:
            hf = Tokenizer.from_str(json.dumps(document["hf_tokenizer"]))
            max_lines = int(document["max_lines"])
            if not 1 <= max_lines <= MAX_LINES_LIMIT:
                raise ValueError(f"max_lines {max_lines} is not between 1 and {MAX_LINES_LIMIT:,}")
        except Exception as exc:  # tokenizers raises plain Exception for a malformed tokenizer
            raise PatchcoderError(f"vocabulary file {path} is damaged ({type(exc).__name__}: {exc}); "
                                  "rebuild it with `patchcoder tokenize train-vocab`") from None
        meta = {k: v for k, v in document.items() if k not in ("hf_tokenizer", "format")}
        return cls(hf, max_lines=max_lines, meta=meta)

    @classmethod
    def default(cls) -> CodeTokenizer:
        """The vocabulary shipped in the package (see DEFAULT_VOCAB's "trained_by" field)."""
        return _default()

    def save(self, path: str | os.PathLike) -> None:
        document = {
            "format": FORMAT,
            **self.meta,
            "vocab_size": self.vocab_size,
            "max_lines": self.max_lines,
            "special_tokens": sp.special_names(self.max_lines),
            "hf_tokenizer": json.loads(self._hf.to_str()),
        }
        atomic_write(path, json.dumps(document, ensure_ascii=False, separators=(",", ":")))

    def __reduce__(self):
        # picklable (e.g. for spawned worker processes): rebuilt from the serialised BPE
        return (_restore, (self._hf.to_str(), self.max_lines, self.meta))

    @cached_property
    def fingerprint(self) -> str:
        """A short hash of the vocabulary, recorded with token shards so they are never mixed."""
        return hashlib.sha256(self._hf.to_str().encode() + str(self.max_lines).encode()).hexdigest()[:16]

    # ---- encoding

    def pieces(self, text: str, language: str | None = None) -> list[bytes]:
        return self.lexer.pieces(_text_bytes(text), language)

    def encode(self, text: str, language: str | None = None) -> list[int]:
        """Token ids of `text`; `language` (e.g. "python") picks the tree-sitter grammar, None the regex lexer."""
        return self.encode_pieces(self.pieces(text, language))

    def encode_pieces(self, pieces: Sequence[bytes]) -> list[int]:
        if not pieces:
            return []
        return self._encode_words(pieces_to_bpe_input(pieces).split(SEPARATOR))

    def _encode_words(self, words: list[str]) -> list[int]:
        """Ids of pre-tokens (BPE input words). Code repeats its words, so a word's ids are cached: the
        Rust BPE only sees words not met before, and the encode path is bound by parsing, not by BPE."""
        cache = self._word_ids
        missing = [w for w in set(words) if w not in cache]
        if missing:
            if len(cache) + len(missing) > self.word_cache_size:
                cache.clear()
            for word, encoding in zip(missing, self._hf.encode_batch_fast(missing, add_special_tokens=False),
                                      strict=True):
                cache[word] = encoding.ids
        out: list[int] = []
        extend = out.extend
        try:
            for word in words:
                extend(cache[word])
        except KeyError:  # another thread cleared the cache meanwhile: encode without it
            return [i for e in self._hf.encode_batch_fast(words, add_special_tokens=False) for i in e.ids]
        return out

    def encode_batch(self, texts: Sequence[str], language: str | None = None) -> list[list[int]]:
        return [self.encode(t, language) for t in texts]

    def encode_lines(self, text: str, language: str | None = None,
                     start: int = 0, stop: int | None = None) -> list[list[int] | None]:
        """Token ids of each line of `text` (lines end after "\\n"; the last may not), lexed as one file.

        Only lines start..stop-1 are encoded (the others are None), which is what a window needs."""
        lines = split_bpe_lines(pieces_to_bpe_input(self.pieces(text, language)))
        stop = len(lines) if stop is None else min(stop, len(lines))
        start = max(0, start)
        out: list[list[int] | None] = [None] * len(lines)
        for k in range(start, stop):
            out[k] = self._encode_words(lines[k].split(SEPARATOR))
        return out

    # ---- decoding

    def decode(self, ids: Iterable[int], errors: str = "strict") -> str:
        """The text of `ids`; special tokens appear as their names. `errors="replace"` accepts byte
        sequences that are not UTF-8 (e.g. from a sampled model), which `encode` never produces."""
        id_bytes = self._id_bytes
        try:
            data = b"".join([id_bytes[i] for i in ids])
        except IndexError:
            bad = next(i for i in ids if not 0 <= i < self.vocab_size)
            raise PatchcoderError(f"token id {bad} is outside the vocabulary (size {self.vocab_size})") from None
        try:
            return data.decode("utf-8", "surrogatepass")
        except UnicodeDecodeError:
            if errors == "strict":
                raise
            return data.decode("utf-8", errors)

    def token_bytes(self, i: int) -> bytes:
        return self._id_bytes[i]

    # ---- special tokens

    def line_marker(self, i: int) -> int:
        """Id of `<Li>`, 0 <= i <= max_lines."""
        if not 0 <= i <= self.max_lines:
            raise ValueError(f"line marker <L{i}> is out of range (0..{self.max_lines})")
        return self._line0 + i

    def line_of_marker(self, token_id: int) -> int | None:
        """i when `token_id` is `<Li>`, else None."""
        i = token_id - self._line0
        return i if 0 <= i <= self.max_lines else None

    def is_special(self, token_id: int) -> bool:
        return token_id >= self.bpe_size

    def __repr__(self) -> str:
        name = self.meta.get("name", "unnamed")
        return f"CodeTokenizer({name!r}, vocab_size={self.vocab_size}, max_lines={self.max_lines})"


_DEFAULT: CodeTokenizer | None = None


def _restore(hf_json: str, max_lines: int, meta: dict) -> CodeTokenizer:
    from tokenizers import Tokenizer

    return CodeTokenizer(Tokenizer.from_str(hf_json), max_lines=max_lines, meta=meta)


def _default() -> CodeTokenizer:
    global _DEFAULT
    if _DEFAULT is None:
        if not DEFAULT_VOCAB.exists():
            raise PatchcoderError(
                f"the shipped vocabulary {DEFAULT_VOCAB} is missing; reinstall patchcoder or pass --vocab FILE"
            )
        _DEFAULT = CodeTokenizer.load(DEFAULT_VOCAB)
    return _DEFAULT


def train(
    bpe_inputs: Iterator[str],
    vocab_size: int,
    *,
    max_lines: int = sp.MAX_LINES,
    meta: dict | None = None,
    show_progress: bool = False,
) -> CodeTokenizer:
    """Train a BPE on `bpe_inputs` (strings made by `pieces_to_bpe_input`) so that the whole
    vocabulary, special tokens included, has `vocab_size` ids."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    n_special = len(sp.special_names(max_lines))
    bpe_size = vocab_size - n_special
    if bpe_size < 256 + 1:
        raise PatchcoderError(f"vocabulary size {vocab_size} is too small: 256 bytes + {n_special} special tokens")
    hf = Tokenizer(models.BPE())
    hf.pre_tokenizer = pre_tokenizers.Split(SEPARATOR, behavior="removed")
    trainer = trainers.BpeTrainer(
        vocab_size=bpe_size,
        initial_alphabet=BYTE_CHARS,
        min_frequency=2,
        max_token_length=32,
        show_progress=show_progress,
    )
    hf.train_from_iterator(bpe_inputs, trainer)
    return CodeTokenizer(hf, max_lines=max_lines, meta=meta)
