"""Structural edit scripts (DESIGN.md §3.4): INSERT / DELETE / REPLACE operations on the lines of the old text.

Lines end after "\\n" (a "\\r\\n" line keeps its "\\r"); the last line may have no newline. Operations point
at line markers of the old text: `INSERT i text` inserts before line i (i == number of lines: at the end),
`DELETE i j` drops lines i..j-1, `REPLACE i j text` puts `text` (whole lines) in their place. They are
ordered and do not overlap, so `apply` is exact, and the same grammar is enforced when parsing tokens.
`edit_script` aligns lines by a weighted longest common subsequence whose weights are the lines'
lexeme counts (tree-sitter lexemes, lexer.py), so the script re-emits as few lexemes as possible.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from patchcoder.ground.errors import PatchcoderError
from patchcoder.ground.sstub import common_affixes
from patchcoder.tokenizer import special as sp

KINDS = ("INSERT", "DELETE", "REPLACE")
DIFF_CONTEXT = 3
_MAX_DP_CELLS = 4_000_000  # beyond this (e.g. 2000 × 2000 changed lines) difflib aligns the lines
_NO_NEWLINE = "\\ No newline at end of file\n"
_HUNK_HEADER = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")


class EditScriptError(PatchcoderError):
    """A script that does not fit its old text, or a malformed token sequence / diff."""


def split_lines(text: str) -> list[str]:
    """Lines of `text`, each keeping its "\\n" (only "\\n" ends a line, as in git)."""
    lines = text.split("\n")
    last = lines.pop()
    out = [line + "\n" for line in lines]
    if last:
        out.append(last)
    return out


@dataclass(frozen=True)
class EditOp:
    kind: str  # "INSERT" | "DELETE" | "REPLACE"
    start: int  # first old line touched (INSERT: the line it goes before)
    end: int  # one past the last old line touched (INSERT: == start)
    text: str = ""  # the new lines (INSERT, REPLACE); "" for DELETE

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise EditScriptError(f"unknown edit operation {self.kind!r} (expected one of {', '.join(KINDS)})")
        if self.kind == "INSERT" and self.end != self.start:
            raise EditScriptError(f"INSERT at line {self.start} must have end == start, got {self.end}")
        if self.kind != "INSERT" and not self.start < self.end:
            raise EditScriptError(f"{self.kind} needs start < end, got {self.start}..{self.end}")
        if self.kind == "DELETE" and self.text:
            raise EditScriptError("DELETE carries no text")
        if self.kind != "DELETE" and not self.text:
            raise EditScriptError(f"{self.kind} at line {self.start} needs non-empty text")
        if self.start < 0:
            raise EditScriptError(f"line {self.start} is negative")


@dataclass(frozen=True)
class EditScript:
    """An ordered, non-overlapping list of EditOp, and the change's single-statement bug class (or None)."""

    ops: tuple[EditOp, ...] = ()
    sstub: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "ops", tuple(self.ops))
        for prev, op in zip(self.ops, self.ops[1:], strict=False):
            if op.start < prev.end or (prev.kind == "INSERT" and op.start == prev.start):
                raise EditScriptError(
                    f"operations overlap or are out of order: {prev.kind} {prev.start}..{prev.end} "
                    f"then {op.kind} {op.start}..{op.end}"
                )

    def __len__(self) -> int:
        return len(self.ops)

    def check(self, old_lines: Sequence[str]) -> None:
        """Raise EditScriptError unless every operation fits the old text's lines."""
        n = len(old_lines)
        ends_with_newline = n == 0 or old_lines[-1].endswith("\n")
        for op in self.ops:
            if op.end > n:
                raise EditScriptError(f"{op.kind} {op.start}..{op.end} is past the last line marker <L{n}>")
            if op.text and not op.text.endswith("\n") and op.end != n:
                raise EditScriptError(f"{op.kind} at line {op.start}: text must end with a newline unless it ends the file")
            if op.kind == "INSERT" and op.start == n and not ends_with_newline:
                raise EditScriptError("cannot INSERT after a last line that has no newline; REPLACE that line instead")

    def apply(self, old: str) -> str:
        """The new text. Exact: `edit_script(old, new).apply(old) == new`."""
        lines = split_lines(old)
        self.check(lines)
        out: list[str] = []
        pos = 0
        for op in self.ops:
            out.extend(lines[pos:op.start])
            out.append(op.text)
            pos = op.end
        out.extend(lines[pos:])
        return "".join(out)

    def new_ranges(self) -> Iterator[tuple[EditOp, int, int]]:
        """Each op with the range of new-text lines it produces."""
        delta = 0
        for op in self.ops:
            count = len(split_lines(op.text))
            yield op, op.start + delta, op.start + delta + count
            delta += count - (op.end - op.start)

    def shifted(self, offset: int) -> EditScript:
        """The same script with every line number moved by `offset` (e.g. into a window's numbering)."""
        return EditScript(tuple(EditOp(o.kind, o.start + offset, o.end + offset, o.text) for o in self.ops), self.sstub)

    # ---- unified diff

    def to_unified_diff(self, old: str, path: str, context: int = DIFF_CONTEXT) -> str:
        """A unified diff of `path` (headers a/path, b/path) that `git apply` and `unidiff` accept."""
        lines = split_lines(old)
        self.check(lines)
        if not self.ops:
            return ""
        n_old = len(lines)
        ranges = list(self.new_ranges())
        groups: list[list[tuple[EditOp, int, int]]] = [[ranges[0]]]
        for item in ranges[1:]:
            if item[0].start - groups[-1][-1][0].end <= 2 * context:
                groups[-1].append(item)
            else:
                groups.append([item])
        # as git writes them: a name with a space ends with a tab, so that the header reads unambiguously
        tab = "\t" if " " in path else ""
        out = [f"--- {quote_path('a/' + path)}{tab}\n", f"+++ {quote_path('b/' + path)}{tab}\n"]
        for group in groups:
            first, first_new = group[0][0], group[0][1]
            old_start = max(0, first.start - context)
            new_start = first_new - (first.start - old_start)
            old_end = min(n_old, group[-1][0].end + context)
            body: list[str] = []
            pos = old_start
            old_count = new_count = 0
            for op, _, _ in group:
                for i in range(pos, op.start):
                    body.extend(_diff_line(" ", lines[i], i == n_old - 1))
                old_count += op.start - pos + (op.end - op.start)
                new_count += op.start - pos
                for i in range(op.start, op.end):
                    body.extend(_diff_line("-", lines[i], i == n_old - 1))
                new_lines = split_lines(op.text)
                last_new = op.end == n_old  # the op's text ends the new file
                for k, line in enumerate(new_lines):
                    body.extend(_diff_line("+", line, last_new and k == len(new_lines) - 1))
                new_count += len(new_lines)
                pos = op.end
            for i in range(pos, old_end):
                body.extend(_diff_line(" ", lines[i], i == n_old - 1))
            old_count += old_end - pos
            new_count += old_end - pos
            a = old_start + 1 if old_count else old_start
            c = new_start + 1 if new_count else new_start
            out.append(f"@@ -{a},{old_count} +{c},{new_count} @@\n")
            out.extend(body)
        return "".join(out)

    @classmethod
    def from_unified_diff(cls, old: str, diff_text: str) -> EditScript:
        """The script of a one-file unified diff against `old`; raises EditScriptError if it does not apply."""
        old_lines = split_lines(old)
        diff_lines = split_lines(diff_text)
        headers = sum(1 for line in diff_lines if line.startswith("+++ "))
        if headers > 1:
            raise EditScriptError(f"the diff changes {headers} files; pass the diff of one file")
        ops: list[EditOp] = []
        i = 0
        while i < len(diff_lines):
            match = _HUNK_HEADER.match(diff_lines[i])
            i += 1
            if not match:
                continue
            a, b, d = int(match.group(1)), int(match.group(2) or 1), int(match.group(4) or 1)
            # read the hunk: (tag, content, diff line number); a "\ No newline" marker trims the line before it
            entries: list[list] = []
            remaining_old, remaining_new = b, d
            while i < len(diff_lines) and (remaining_old or remaining_new or diff_lines[i].startswith("\\")):
                line = diff_lines[i]
                i += 1
                tag, content = ("", line) if line == "\n" else (line[0], line[1:])
                if tag == "":  # a blank context line whose leading space an editor stripped
                    tag = " "
                if tag == "\\":
                    if not entries or not entries[-1][1].endswith("\n"):
                        raise EditScriptError(f"diff line {i}: misplaced '\\ No newline at end of file'")
                    entries[-1][1] = entries[-1][1][:-1]
                    continue
                if tag not in " -+":
                    raise EditScriptError(f"diff line {i}: unexpected line {line.rstrip()!r} inside a hunk")
                remaining_old -= tag in " -"
                remaining_new -= tag in " +"
                if remaining_old < 0 or remaining_new < 0:
                    raise EditScriptError(f"diff line {i}: the hunk is longer than its header says")
                entries.append([tag, content, i])
            if remaining_old or remaining_new:
                raise EditScriptError("the diff ends inside a hunk (its header promises more lines)")
            # turn runs of -/+ lines into operations, checking every context and removed line against old
            old_pos = a - 1 if b else a
            run_start, removed, added = old_pos, 0, []
            for tag, content, number in [*entries, [" ", None, 0]]:
                if tag == " ":
                    if removed or added:
                        kind = "REPLACE" if removed and added else "DELETE" if removed else "INSERT"
                        ops.append(EditOp(kind, run_start, run_start + removed, "".join(added)))
                    if content is None:
                        break
                    _expect(old_lines, old_pos, content, number)
                    old_pos += 1
                    run_start, removed, added = old_pos, 0, []
                elif tag == "-":
                    _expect(old_lines, old_pos, content, number)
                    old_pos += 1
                    removed += 1
                else:
                    added.append(content)
        try:
            script = cls(tuple(ops))
        except EditScriptError as exc:
            raise EditScriptError(f"the diff's hunks are out of order or overlap ({exc})") from None
        script.check(old_lines)
        return script

    # ---- tokens

    def to_tokens(self, tokenizer, language: str | None = None,
                  new_line_ids: Sequence[Sequence[int]] | None = None) -> list[int]:
        """`<INSERT> <Li> text <END>`, `<DELETE> <Li> <Lj>`, `<REPLACE> <Li> <Lj> text <END>`, in order.

        The text is encoded with `language`, or taken from `new_line_ids` (the ids of each line of the
        whole new text, as `CodeTokenizer.encode_lines` gives them) so that it is lexed in context.
        """
        s = tokenizer.special
        out: list[int] = []
        for op, new_start, new_end in self.new_ranges():
            out.append(s[f"<{op.kind}>"])
            out.append(tokenizer.line_marker(op.start))
            if op.kind != "INSERT":
                out.append(tokenizer.line_marker(op.end))
            if op.kind != "DELETE":
                if new_line_ids is not None:
                    for ids in new_line_ids[new_start:new_end]:
                        out.extend(ids)
                else:
                    out.extend(tokenizer.encode(op.text, language))
                out.append(s[sp.END])
        return out

    @classmethod
    def from_tokens(cls, ids: Sequence[int], tokenizer, n_lines: int) -> EditScript:
        """Parse a script for an old window of `n_lines` lines, strictly: an id sequence the decoder's
        grammar would not allow (unknown token, out-of-range or misordered marker, missing `<END>`, text
        in a DELETE, tokens after `<|eos|>`) raises EditScriptError naming the position."""
        s = tokenizer.special
        kind_of = {s[sp.INSERT]: "INSERT", s[sp.DELETE]: "DELETE", s[sp.REPLACE]: "REPLACE"}
        end_id, eos_id = s[sp.END], s[sp.EOS]
        ops: list[EditOp] = []
        k = 0

        def name(i: int) -> str:
            return tokenizer.decode([i], errors="replace") if 0 <= i < tokenizer.vocab_size else f"id {i}"

        def marker(position: int) -> int:
            if position >= len(ids):
                raise EditScriptError(f"token {position}: the script ends where a line marker is expected")
            line = tokenizer.line_of_marker(ids[position])
            if line is None:
                raise EditScriptError(f"token {position}: expected a line marker, got {name(ids[position])!r}")
            if line > n_lines:
                raise EditScriptError(f"token {position}: <L{line}> is past the window's last marker <L{n_lines}>")
            return line

        while k < len(ids):
            token = ids[k]
            if token == eos_id:
                if k != len(ids) - 1:
                    raise EditScriptError(f"token {k + 1}: tokens after <|eos|>")
                break
            if token not in kind_of:
                raise EditScriptError(f"token {k}: expected <INSERT>, <DELETE>, <REPLACE> or <|eos|>, got {name(token)!r}")
            kind = kind_of[token]
            start = marker(k + 1)
            k += 2
            end = start
            if kind != "INSERT":
                end = marker(k)
                if end <= start:
                    raise EditScriptError(f"token {k}: {kind} needs <Li> <Lj> with i < j, got <L{start}> <L{end}>")
                k += 1
            text = ""
            if kind != "DELETE":
                text_start = k
                while k < len(ids) and ids[k] != end_id:
                    if tokenizer.is_special(ids[k]):
                        raise EditScriptError(f"token {k}: special token {name(ids[k])!r} inside {kind} text")
                    k += 1
                if k == len(ids):
                    raise EditScriptError(f"token {k}: {kind} text is missing its <END>")
                if k == text_start:
                    raise EditScriptError(f"token {k}: {kind} has empty text")
                text = tokenizer.decode(ids[text_start:k])
                k += 1
            if ops and (start < ops[-1].end or (ops[-1].kind == "INSERT" and start == ops[-1].start)):
                raise EditScriptError(f"token {k}: {kind} at <L{start}> overlaps or precedes the previous operation")
            ops.append(EditOp(kind, start, end, text))
        script = cls(tuple(ops))
        for op in script.ops:
            if op.text and not op.text.endswith("\n") and op.end != n_lines:
                raise EditScriptError(f"{op.kind} at <L{op.start}>: text must end with a newline unless it ends the window")
        return script


# git's C-style quoting of a path in a diff header (git's quote.c with core.quotePath on, its default)
_QUOTED = {"\a": "\\a", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\v": "\\v", "\f": "\\f", "\r": "\\r",
           '"': '\\"', "\\": "\\\\"}


def quote_path(name: str) -> str:
    """`name` as git writes it in a diff header: as it is, or, when it holds a control character, a quote, a
    backslash or a non-ASCII character, in double quotes with C escapes (other bytes as octal `\\ooo` of
    their UTF-8), which `git apply` reads back."""
    if not any(c in _QUOTED or ord(c) < 0x20 or ord(c) >= 0x7F for c in name):
        return name
    out = []
    for c in name:
        if c in _QUOTED:
            out.append(_QUOTED[c])
        elif ord(c) < 0x20 or ord(c) >= 0x7F:
            out.extend(f"\\{byte:03o}" for byte in c.encode("utf-8", "surrogateescape"))
        else:
            out.append(c)
    return '"' + "".join(out) + '"'


def _diff_line(tag: str, line: str, is_last: bool) -> list[str]:
    if line.endswith("\n"):
        return [tag + line]
    assert is_last, "only the last line of a text can lack its newline"
    return [tag + line + "\n", _NO_NEWLINE]


def _expect(old_lines: Sequence[str], index: int, content: str, diff_line: int) -> None:
    if index >= len(old_lines) or old_lines[index] != content:
        found = old_lines[index] if index < len(old_lines) else "(end of file)"
        raise EditScriptError(
            f"diff line {diff_line}: old line {index + 1} is {found.rstrip()!r}, the diff expects {content.rstrip()!r}"
        )


# ---- computing a script


_LEXEME_START = re.compile(rb"(?:\A|(?<=\xff))[^\s\xff]")


def _line_weights(text: str, n_lines: int, lo: int, hi: int, language: str | None, lexer) -> list[int]:
    """Lexemes in each of lines lo..hi-1 of `text` (whitespace pieces do not count; a blank line weighs 1).

    The pieces come from the (cached) parse of the whole text, joined with byte 0xFF (never in UTF-8):
    splitting at newline-then-separator gives the lines, and only the lines asked for are counted.
    """
    data = text.encode("utf-8", "surrogatepass")
    segments = b"\xff".join(lexer.pieces(data, language)).split(b"\n\xff")
    if len(segments) != n_lines:  # cannot happen (pieces end at newlines), but never misalign
        return [1] * (hi - lo)
    return [max(1, len(_LEXEME_START.findall(segment))) for segment in segments[lo:hi]]


def _align(a: Sequence[str], b: Sequence[str], weights: Sequence[int]) -> list[tuple[int, int]]:
    """Matched (i, j) pairs of a maximum-weight common subsequence of lines a and b (weights over b)."""
    import numpy as np

    n, m = len(a), len(b)
    if n == 0 or m == 0:
        return []
    if n * m > _MAX_DP_CELLS:
        import difflib

        matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
        return [(blk.a + k, blk.b + k) for blk in matcher.get_matching_blocks() for k in range(blk.size)]
    ids: dict[str, int] = {}
    a_ids = np.array([ids.setdefault(x, len(ids)) for x in a])
    b_ids = np.array([ids.setdefault(x, len(ids)) for x in b])
    w = np.asarray(weights, dtype=np.int64) + 1  # +1: among equal lexeme counts, keep more lines
    table = np.zeros((n + 1, m + 1), dtype=np.int64)  # table[i, j]: best weight of a[:i] vs b[:j]
    for i in range(1, n + 1):
        prev = table[i - 1]
        candidate = np.maximum(prev[1:], np.where(b_ids == a_ids[i - 1], prev[:-1] + w, 0))
        table[i, 1:] = np.maximum.accumulate(candidate)
    pairs: list[tuple[int, int]] = []
    i, j = n, m
    while i > 0 and j > 0:
        if a_ids[i - 1] == b_ids[j - 1] and table[i, j] == table[i - 1, j - 1] + w[j - 1]:
            pairs.append((i - 1, j - 1))
            i -= 1
            j -= 1
        elif table[i - 1, j] == table[i, j]:
            i -= 1
        else:
            j -= 1
    pairs.reverse()
    return pairs



def edit_script(old: str, new: str, language: str | None = None, *, lexer=None) -> EditScript:
    """The script turning `old` into `new`; `script.apply(old) == new`.

    Lines are aligned to re-emit as few lexemes as possible; then operations separated only by a line
    or two that cost fewer tokens to re-emit than a separate operation are merged into one REPLACE."""
    from patchcoder.ground.sstub import classify_sstub
    from patchcoder.tokenizer.lexer import shared_lexer

    a, b = split_lines(old), split_lines(new)
    prefix, suffix = common_affixes(a, b)
    a_mid, b_mid = a[prefix:len(a) - suffix], b[prefix:len(b) - suffix]
    if not a_mid and not b_mid:
        return EditScript(())
    if a_mid and b_mid:
        weights = _line_weights(new, len(b), prefix, len(b) - suffix, language, lexer or shared_lexer())
        pairs = _align(a_mid, b_mid, weights)
    else:
        pairs = []
    ops: list[EditOp] = []
    pi = pj = 0
    for i, j in [*pairs, (len(a_mid), len(b_mid))]:
        if i > pi or j > pj:
            start, end, text = prefix + pi, prefix + i, "".join(b_mid[pj:j])
            kind = "REPLACE" if i > pi and j > pj else "DELETE" if i > pi else "INSERT"
            ops.append(EditOp(kind, start, end, text))
        pi, pj = i + 1, j + 1
    return EditScript(tuple(_merge_close_ops(ops, a)), sstub=classify_sstub(old, new, language))


def _op_overhead(op: EditOp) -> int:
    """Tokens an operation costs besides its text: the opcode, its markers, and <END> after a text."""
    return 1 + (1 if op.kind == "INSERT" else 2) + (0 if op.kind == "DELETE" else 1)


def _merge_close_ops(ops: list[EditOp], old_lines: Sequence[str]) -> list[EditOp]:
    """Merge neighbouring operations when re-emitting the unchanged lines between them costs fewer
    tokens than a separate operation (e.g. two edits around one blank line become one REPLACE).
    The gap's token count is estimated as one per whitespace-separated word plus one per line."""
    merged: list[EditOp] = []
    for op in ops:
        if merged:
            prev = merged[-1]
            gap = old_lines[prev.end:op.start]
            gap_tokens = sum(len(line.split()) + 1 for line in gap)
            saving = _op_overhead(prev) + _op_overhead(op) - _op_overhead(EditOp("REPLACE", 0, 1, "x"))
            if gap and gap_tokens < saving:
                merged[-1] = EditOp("REPLACE", prev.start, op.end, prev.text + "".join(gap) + op.text)
                continue
        merged.append(op)
    return merged

