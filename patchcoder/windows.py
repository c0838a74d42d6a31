"""Windows: the runs of whole lines of a text that the model reads at once, framed as in training.

A window's prompt (file path, optional intent, the window's lines; `tokenizer.examples.encode_prompt`)
takes at most three quarters of the prompt budget `max_tokens` (the example length the model was
trained with); the rest is left for the edit script. A text with a focus that fits one window gets the
window around it; otherwise windows tile the whole text (or the focus lines). Shared by the product
(`Repairer`) and the evaluation harness, so both decode exactly the same windows.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass
class Window:
    """Lines [start, start + n_lines) of item `index`, framed as the prompt the model decodes from."""

    index: int
    prompt: list[int]
    start: int
    n_lines: int
    focus: tuple[int, int] | None = None  # first and last line (file coordinates) that candidates may rewrite

    @property
    def rewritable(self) -> tuple[int, int]:
        """[lo, hi): the lines candidates may rewrite: the window's, or its focus lines when it has one."""
        lo, hi = self.start, self.start + self.n_lines
        if self.focus is not None:  # e.g. the lines a developer changed: rewrite only those
            lo, hi = max(lo, self.focus[0]), max(lo, min(hi, self.focus[1] + 1))
        return lo, hi


def windows_for(tokenizer, code: str, *, max_tokens: int, language: str | None, path: str | None = None,
                intent: str | None = None, focus: tuple[int, int] | None = None, index: int = 0) -> list[Window]:
    """The windows of `code` (item `index`): with a `focus` (first, last lines, 0-based, inclusive) that
    fits one window, the window around it; otherwise windows that tile the text (or the focus lines),
    each as many whole lines as the prompt budget takes, each keeping its part of the focus. A single
    line too long for any prompt gives no window."""
    from patchcoder.tokenizer.edits import split_lines
    from patchcoder.tokenizer.examples import encode_prompt

    tok, path = tokenizer, path or ""
    n = len(split_lines(code))
    lines = tok.encode_lines(code, language)
    frame = {"path": path, "intent": intent, "language": language}
    if n == 0:
        return [window_around(tok, code, lines, index=index, budget=prompt_budget(tok, max_tokens, **frame),
                              focus=focus, **frame)]
    budget = prompt_budget(tok, max_tokens, **frame)
    if focus is not None:
        first, last = max(0, min(focus[0], n - 1)), max(0, min(focus[1], n - 1))
        first, last = min(first, last), max(first, last)
        if last - first < tok.max_lines and sum(len(lines[k]) + 1 for k in range(first, last + 1)) <= budget:
            return [window_around(tok, code, lines, index=index, budget=budget, focus=(first, last), **frame)]
        lo, hi = first, last + 1
    else:
        lo, hi = 0, n
    windows, start = [], lo
    while start < hi:
        end, cost = start + 1, len(lines[start]) + 1  # a window holds at least one line
        while end < hi and end - start < tok.max_lines and cost + len(lines[end]) + 1 <= budget:
            cost += len(lines[end]) + 1
            end += 1
        if cost <= budget:
            prompt = encode_prompt(tok, code, path, intent, language, start, end, line_ids=lines)
            windows.append(Window(index, prompt, start, end - start, (start, end - 1) if focus else None))
        start = end
    return windows


def prompt_budget(tokenizer, max_tokens: int, *, path: str, intent: str | None, language: str | None) -> int:
    """Tokens a window's lines may take: `PROMPT_SHARE` of max_tokens less the prompt's framing, as
    training examples cut their windows (`tokenizer.examples`); the rest is room for the script."""
    from patchcoder.tokenizer.examples import PROMPT_SHARE, encode_prompt

    framing = encode_prompt(tokenizer, "", path, intent, language)
    return int(PROMPT_SHARE * max_tokens) - len(framing)


def window_around(tokenizer, code: str, lines: list[list[int]], *, index: int, budget: int,
                  focus: tuple[int, int] | None, path: str, intent: str | None, language: str | None) -> Window:
    """The longest run of lines around the focus (default: the middle line) whose prompt leaves room
    for the script; `lines` are the text's encoded lines (`encode_lines`)."""
    from patchcoder.tokenizer.edits import split_lines
    from patchcoder.tokenizer.examples import encode_prompt

    tok = tokenizer
    n = len(split_lines(code))
    first, last = focus or (n // 2, n // 2)
    first, last = max(0, min(first, n)), max(0, min(last, n))
    start, end = first, min(n, max(last, first) + 1) if n else 0
    cost = sum(len(lines[k]) + 1 for k in range(start, end))
    grew = True
    while grew and end - start < tok.max_lines:
        grew = False
        for k in ((start - 1,) if start > 0 else ()) + ((end,) if end < n else ()):
            if cost + len(lines[k]) + 1 > budget or end - start >= tok.max_lines:
                continue
            cost += len(lines[k]) + 1
            start, end = (k, end) if k < start else (start, k + 1)
            grew = True
    prompt = encode_prompt(tok, code, path, intent, language, start, end, line_ids=lines)
    return Window(index, prompt, start, end - start, (first, last) if focus else None)
