"""The special tokens (DESIGN.md §3.3): never produced from text, only placed by patchcoder itself.

Their ids follow the BPE ids (so a BPE id needs no shift); `CodeTokenizer.special` maps name -> id.
"""

from __future__ import annotations

MSG, FILE, CODE, EDIT, EOS, PAD = "<|msg|>", "<|file|>", "<|code|>", "<|edit|>", "<|eos|>", "<|pad|>"
FRAMING = (MSG, FILE, CODE, EDIT, EOS, PAD)

INSERT, DELETE, REPLACE, END = "<INSERT>", "<DELETE>", "<REPLACE>", "<END>"
EDIT_OPS = (INSERT, DELETE, REPLACE, END)

# Reserved for fill-in-the-middle and for a diffusion-style mask, plus spares so that a later version
# can add tokens without moving the line markers.
FIM_PREFIX, FIM_MIDDLE, FIM_SUFFIX, MASK = "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>", "<|mask|>"
RESERVED = (FIM_PREFIX, FIM_MIDDLE, FIM_SUFFIX, MASK) + tuple(f"<|reserved_{i}|>" for i in range(8))

# A code window shows at most MAX_LINES lines: markers <L0> … <L{MAX_LINES-1}> precede its lines and
# <L{n}> follows the last of n lines, so MAX_LINES + 1 markers exist.
MAX_LINES = 256


def line_marker_name(i: int) -> str:
    return f"<L{i}>"


def special_names(max_lines: int = MAX_LINES) -> list[str]:
    """All special tokens in id order (after the BPE ids)."""
    return [*FRAMING, *EDIT_OPS, *RESERVED, *(line_marker_name(i) for i in range(max_lines + 1))]
