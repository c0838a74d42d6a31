"""A `Rewrite`: one byte range of a text replaced (a bug, or a candidate fix), and the `Site` it comes from."""

from __future__ import annotations

import bisect
import dataclasses
import functools
import re

from patchcoder.tokenizer.rewrites.kinds import FIX_SSTUB, MESSAGES


@dataclasses.dataclass(frozen=True)
class Rewrite:
    """`source[start:end]` (UTF-8 byte offsets) replaced by `text`; `code` is the rewritten source."""

    kind: str
    start: int
    end: int
    text: str
    sstub: str
    source: bytes = dataclasses.field(repr=False, compare=False)

    @functools.cached_property
    def code(self) -> str:
        return (self.source[:self.start] + self.text.encode() + self.source[self.end:]).decode()

    @property
    def message(self) -> str:
        return MESSAGES[self.kind]

    @functools.cached_property
    def lines(self) -> tuple[int, int]:
        """0-based [first, last) lines of the source that the rewrite replaces; (i, i) inserts before line i."""
        starts = _line_starts(self.source)  # bisect, not a count from the start: many rewrites of a long text
        before = bisect.bisect_right(starts, self.start)
        first = before - 1  # newlines before `start`
        if self._inserts_lines:
            return first, first
        last = first + bisect.bisect_right(starts, self.end) - before  # newlines in [start, end)
        return first, last if self._ends_a_line else last + 1

    @property
    def new_lines(self) -> str:
        """What lines [first, last) of the source (`lines`) become: the rewrite with the rest of the
        lines it touches, whole lines, without building the whole rewritten `code`."""
        if self._inserts_lines:
            return self.text
        begin = self.source.rfind(b"\n", 0, self.start) + 1
        stop = self.end if self._ends_a_line else self.source.find(b"\n", self.end) + 1 or len(self.source)
        return (self.source[begin:self.start] + self.text.encode() + self.source[self.end:stop]).decode()

    @property
    def _inserts_lines(self) -> bool:
        return self.start == self.end and (self.start == 0 or self.source[self.start - 1] == 10)

    @property
    def _ends_a_line(self) -> bool:
        return self.end > self.start and self.source[self.end - 1] == 10

    def inverse(self) -> Rewrite:
        """The rewrite of `code` that restores `source` exactly (the fix of an injected bug)."""
        new_end = self.start + len(self.text.encode())
        return Rewrite(self.kind, self.start, new_end, self.source[self.start:self.end].decode(), self.sstub,
                       self.code.encode())


@dataclasses.dataclass(frozen=True)
class Site:
    """One span of a source with one or more alternative replacements, all of one kind (sstub: the fix's
    class when it differs from the kind's)."""

    kind: str
    start: int
    end: int
    texts: tuple[str, ...]
    sstub: str | None = None

    def rewrite(self, text: str, source: bytes) -> Rewrite:
        """The rewrite of `source` that puts `text` (one of `texts`) in this site's span."""
        return Rewrite(self.kind, self.start, self.end, text, self.sstub or FIX_SSTUB[self.kind], source)


@functools.lru_cache(maxsize=4)
def _line_starts(source: bytes) -> list[int]:
    """`line_starts` of the source that many rewrites share (bytes keep their hash: looked up at once)."""
    return line_starts(source)


def line_starts(source: bytes) -> list[int]:
    """Byte offset of the start of each line of `source`."""
    return [0] + [m.end() for m in re.finditer(rb"\n", source)]
