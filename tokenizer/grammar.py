"""The edit-script grammar as a token-by-token state machine, for constrained decoding.

`EditScript.from_tokens` accepts exactly the sequences this machine accepts (ending in `<|eos|>`):
ordered, in-range, non-overlapping line markers, non-empty text closed by `<END>`. A decoder asks
`mask()` (which ids may come next) before sampling each token and calls `advance(id)` after.
"""

from __future__ import annotations

import numpy as np

from patchcoder.tokenizer import special as sp
from patchcoder.tokenizer.edits import EditScriptError


class EditGrammar:
    """Allowed next tokens of an edit script over an old window of `n_lines` lines."""

    def __init__(self, tokenizer, n_lines: int) -> None:
        if not 0 <= n_lines <= tokenizer.max_lines:
            raise ValueError(f"a window has 0..{tokenizer.max_lines} lines, got {n_lines}")
        self.tok = tokenizer
        self.n_lines = n_lines
        s = tokenizer.special
        self._ops = {s[sp.INSERT]: "INSERT", s[sp.DELETE]: "DELETE", s[sp.REPLACE]: "REPLACE"}
        self._end, self._eos = s[sp.END], tokenizer.eos_id
        self.phase = "op"  # op | start | end | first_text | text | done
        self.kind: str | None = None
        self.start = 0
        self.min_start = 0  # the next operation may start at this marker or later
        self._insert_at: int | None = None  # the previous op was an INSERT at this marker
        self._end_line = 0  # where the current op's old range ends (its text must end with a newline unless here)
        self._newline = False  # the last text token ends with a newline

    @property
    def done(self) -> bool:
        return self.phase == "done"

    def _start_range(self, kind: str) -> range:
        lo = self.min_start if self._insert_at is None else self._insert_at + 1
        hi = self.n_lines if kind == "INSERT" else self.n_lines - 1
        return range(lo, hi + 1)

    def allowed_ops(self) -> list[int]:
        return [i for i, kind in self._ops.items() if len(self._start_range(kind))] + [self._eos]

    def mask(self) -> np.ndarray:
        """Boolean mask over the vocabulary: True where the id may come next."""
        mask = np.zeros(self.tok.vocab_size, dtype=bool)
        if self.phase == "op":
            mask[self.allowed_ops()] = True
        elif self.phase in ("start", "end"):
            lines = self._start_range(self.kind) if self.phase == "start" else range(self.start + 1, self.n_lines + 1)
            if len(lines):
                first = self.tok.line_marker(lines[0])
                mask[first:first + len(lines)] = True
        elif self.phase in ("first_text", "text"):
            mask[: self.tok.bpe_size] = True
            mask[self._end] = self._may_end()
        return mask

    def _may_end(self) -> bool:
        return self.phase == "text" and (self._newline or self._end_line == self.n_lines)

    def advance(self, token: int) -> None:
        """Consume `token`; raises EditScriptError if the grammar does not allow it here."""
        if self.phase == "done":
            raise EditScriptError("the script has already ended with <|eos|>")
        if self.phase == "op":
            if token == self._eos:
                self.phase = "done"
            elif token in self._ops and len(self._start_range(self._ops[token])):
                self.kind = self._ops[token]
                self.phase = "start"
            else:
                raise EditScriptError(f"expected an edit operation or <|eos|>, got id {token}")
        elif self.phase == "start":
            line = self.tok.line_of_marker(token)
            if line is None or line not in self._start_range(self.kind):
                raise EditScriptError(f"id {token} is not an allowed start marker for {self.kind}")
            self.start = line
            if self.kind == "INSERT":
                self._insert_at, self._end_line, self.phase = line, line, "first_text"
            else:
                self.phase = "end"
        elif self.phase == "end":
            line = self.tok.line_of_marker(token)
            if line is None or not self.start < line <= self.n_lines:
                raise EditScriptError(f"id {token} is not an allowed end marker after <L{self.start}>")
            self.min_start, self._insert_at, self._end_line = line, None, line
            self.phase = "first_text" if self.kind == "REPLACE" else "op"
        else:
            if token == self._end and self._may_end():
                if self.kind == "REPLACE":
                    self._insert_at = None
                else:
                    self.min_start = self.start
                self.phase = "op"
            elif 0 <= token < self.tok.bpe_size:
                self.phase = "text"
                self._newline = self.tok.token_bytes(token).endswith(b"\n")
            else:
                raise EditScriptError(f"id {token} is not allowed inside {self.kind} text")
