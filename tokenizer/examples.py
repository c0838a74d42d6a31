"""Training examples: `<|msg|> message <|file|> path <|code|> marked old window <|edit|> script <|eos|>`.

The window is a run of the old file's lines, each preceded by its marker `<Lk>` (k counted from the
window's first line) and followed by one end marker; it holds every changed line and as much context
around them as the prompt budget allows (growing one line above, one below, in turn). The prompt budget
is the one inference cuts windows with (`patchcoder.windows.prompt_budget`): the window's lines take at
most `prompt_share` of the token budget, less the framing, whatever the answer — so a window's size says
nothing about its answer (before session 9 windows grew to fill the whole budget with the prompt and the
script: a short prompt meant a long script, and a "no change" window, whose answer is one token, was
the longest of all, while inference cuts every window at three quarters). Only a script too long for the
rest of the budget shrinks its window. The loss is on
the answer: the script and `<|eos|>`. A change whose operations do not fit one window (256 lines, or
the token budget) is split at operation boundaries into several examples, each with its own operations.

"No change" examples (`ExampleConfig.no_change`) teach the model when to leave code alone: a window of
the row's *new* text — where the change was (for a synthetic pair: the fixed code at the very place of the
bug) or elsewhere in the file — with no message and the empty script as its answer (`<|eos|>` at once).
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass

from patchcoder.tokenizer import special as sp
from patchcoder.tokenizer.edits import EditScript, edit_script, split_lines

PROMPT_SHARE = 0.75
"""The share of the token budget a window's prompt takes, in training and at inference alike; the rest is
room for the script."""


@dataclass(frozen=True)
class ExampleConfig:
    """How mined changes become examples (serialised into the token shards' manifest)."""

    max_tokens: int = 1024
    """token budget of one example; a change is split into several windows to fit, and a single
    operation that still does not fit is dropped ("too_long")"""
    drop_message: float = 0.2
    """fraction of examples whose commit message is left out (so the model also fixes with no stated intent)"""
    max_message_tokens: int = 96
    """the message is cut to this many tokens"""
    max_path_tokens: int = 32
    """the path is cut to this many tokens (from the left: the file name matters most)"""
    seed: int = 0
    """seed of the message-dropping and no-change choices (a hash of seed, commit and path, so they do not
    depend on order)"""
    no_change: float = 0.0
    """fraction of changed rows that also give a "no change" example: a window of the new text, no message,
    the empty script as the answer"""
    no_change_at_change: float = 0.5
    """of those, the fraction whose window is where the change was (the rest: a window elsewhere in the file)"""
    prompt_share: float = PROMPT_SHARE
    """share of max_tokens a window's prompt may take, as at inference (1.0: windows fill the whole budget
    with the prompt and the answer, the format before session 9)"""

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class Example:
    ids: list[int]
    answer_start: int  # ids[answer_start:] are the script and <|eos|>: the tokens the loss is on
    window_start: int  # first old line shown
    window_lines: int
    sstub: str | None
    message_dropped: bool
    no_change: bool = False  # a window of correct code whose answer is the empty script
    loss_mask: list[int] | None = None  # per token; None: 1 on ids[answer_start:], 0 before


class Dropped(Exception):  # noqa: N818 - a reason, not an error
    """Why a change gives no example (the reason is counted in the summary)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _draw(config: ExampleConfig, commit: str, path: str, what: str = "") -> float:
    """A number in [0, 1) fixed by (seed, commit, path, what): choices that do not depend on order."""
    key = f"{config.seed}\0{commit}\0{path}" + (f"\0{what}" if what else "")
    digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") / 2**64


def _message_dropped(config: ExampleConfig, commit: str, path: str) -> bool:
    return _draw(config, commit, path) < config.drop_message


def prompt_ids(tokenizer, message_ids: list[int], path_ids: list[int], window: list[list[int]]) -> list[int]:
    """`<|msg|> message <|file|> path <|code|> <L0> line … <Ln> <|edit|>`: the part the model reads."""
    s = tokenizer.special
    ids = [s[sp.MSG], *message_ids, s[sp.FILE], *path_ids, s[sp.CODE]]
    for k, line in enumerate(window):
        ids.append(tokenizer.line_marker(k))
        ids.extend(line)
    ids.append(tokenizer.line_marker(len(window)))
    ids.append(s[sp.EDIT])
    return ids


def encode_prompt(tokenizer, code: str, path: str, message: str | None = None, language: str | None = None,
                  start: int = 0, end: int | None = None, config: ExampleConfig = ExampleConfig(),
                  line_ids: list[list[int]] | None = None) -> list[int]:
    """The prompt for lines start..end-1 of `code`, exactly as training examples frame it (for inference:
    the model continues it with an edit script whose markers count from `start`). `line_ids`, the
    whole of `tokenizer.encode_lines(code, language)`, lets many windows share one lexing of the file."""
    n_lines = len(split_lines(code)) if line_ids is None else len(line_ids)
    end = n_lines if end is None else end
    if not 0 <= start <= end <= n_lines:
        raise ValueError(f"window {start}..{end} is not inside the {n_lines} lines of the code")
    if end - start > tokenizer.max_lines:
        raise ValueError(f"a window shows at most {tokenizer.max_lines} lines, got {end - start}")
    message_ids = tokenizer.encode(message)[: config.max_message_tokens] if message else []
    path_ids = tokenizer.encode(path)[-config.max_path_tokens:]
    if line_ids is None:
        line_ids = tokenizer.encode_lines(code, language, start, end)
    return prompt_ids(tokenizer, message_ids, path_ids, line_ids[start:end])


def _new_span(ranges: list[tuple], reach: int) -> tuple[int, int]:
    """New-text lines that a window's script can need (the ops' new lines, for any window start)."""
    return max(0, ranges[0][1] - reach), ranges[-1][2] + reach


def _group_ops(script: EditScript, ranges: list[tuple], old_ids: list, new_ids: list, max_lines: int,
               budget: int, lines_budget: int | None = None) -> list[EditScript]:
    """Split a script into runs of operations that each fit one window: at most max_lines old lines, at
    most `budget` tokens for the changed lines' markers and ids plus the operations' tokens, and at most
    `lines_budget` for the lines alone (the prompt budget inference cuts windows with)."""

    def op_cost(op, new_start: int, new_end: int) -> int:
        markers = 2 if op.kind == "INSERT" else 3
        return markers + (0 if op.kind == "DELETE" else sum(len(new_ids[j]) for j in range(new_start, new_end)) + 1)

    def lines_cost(a: int, b: int) -> int:
        return sum(len(old_ids[line]) + 1 for line in range(a, b))

    groups: list[tuple[list, int]] = []  # (ops, their script tokens)
    for op, new_start, new_end in ranges:
        cost = op_cost(op, new_start, new_end)
        if groups:
            ops, ops_cost = groups[-1]
            lines = lines_cost(ops[0].start, op.end)
            if (op.end - ops[0].start <= max_lines and lines + ops_cost + cost <= budget
                    and (lines_budget is None or lines <= lines_budget)):
                groups[-1] = (ops + [op], ops_cost + cost)
                continue
        groups.append(([op], cost))
    sstub = script.sstub if len(groups) == 1 else None
    return [EditScript(tuple(ops), sstub) for ops, _ in groups]


def build_examples(tokenizer, row: dict, config: ExampleConfig) -> tuple[list[Example], list[str]]:
    """The examples of one mined row (columns of mining/shards.py), and the reasons parts were dropped.

    Changes further apart than a window can show become separate examples (each with only its own
    operations; the rest of the file is still the old text). Raises Dropped when the row gives nothing
    to learn from (an added or deleted file, no change)."""
    old, new, language = row.get("old"), row.get("new"), row.get("language")
    if old is None:
        raise Dropped("added_file")
    if new is None:
        raise Dropped("deleted_file")
    script = edit_script(old, new, language, lexer=tokenizer.lexer)
    if not script.ops:
        raise Dropped("no_change")
    message_dropped = _message_dropped(config, row.get("commit") or "", row.get("path") or "")
    message_ids = [] if message_dropped else tokenizer.encode(row.get("message") or "")[: config.max_message_tokens]
    path_ids = tokenizer.encode(row.get("path") or "")[-config.max_path_tokens:]
    # only lines that can enter a window are encoded: at most max_lines around the changes
    reach = tokenizer.max_lines
    ranges = list(script.new_ranges())
    old_ids = tokenizer.encode_lines(old, language, script.ops[0].start - reach, script.ops[-1].end + reach)
    new_ids = tokenizer.encode_lines(new, language, *_new_span(ranges, reach))
    examples, dropped = [], []
    shift = 0  # how far earlier parts moved the new text's lines
    framing = 1 + len(message_ids) + 1 + len(path_ids) + 1 + 1 + 1 + 1  # msg, file, code, end marker, edit, eos
    # a group's lines must fit the prompt budget too, or its window would be larger than any inference cuts
    for part in _group_ops(script, ranges, old_ids, new_ids, tokenizer.max_lines, config.max_tokens - framing,
                           _lines_budget(config, framing - 1)):
        part_new_ids = new_ids[shift:] if shift >= 0 else [None] * -shift + new_ids  # line j is j + shift
        try:
            examples.append(_window_example(tokenizer, part, old_ids, part_new_ids, message_ids, path_ids,
                                            message_dropped, config))
        except Dropped as exc:
            dropped.append(exc.reason)
        shift += sum(len(split_lines(op.text)) - (op.end - op.start) for op in part.ops)
    commit, path = row.get("commit") or "", row.get("path") or ""
    if config.no_change and _draw(config, commit, path, "no_change") < config.no_change:
        # where the change was, in new-text lines (the first op's new lines to the last op's), or elsewhere
        first, last = ranges[0][1], max(ranges[-1][2], ranges[0][1])
        if _draw(config, commit, path, "no_change_where") >= config.no_change_at_change:
            # any line of the new text: all of it is the code after the change
            n_new = len(split_lines(new))
            if n_new:
                first = last = int(_draw(config, commit, path, "no_change_line") * n_new)
                new_ids = tokenizer.encode_lines(new, language, first - reach, last + reach)
        try:
            examples.append(_no_change_example(tokenizer, new_ids, first, last, path_ids, config))
        except Dropped as exc:
            dropped.append(f"no_change_{exc.reason}")
    return examples, dropped



def _no_change_example(tokenizer, line_ids: list, first: int, last: int, path_ids: list[int],
                       config: ExampleConfig) -> Example:
    """A window of correct code around lines first..last-1 (grown to the budget), answered by `<|eos|>`."""
    fixed = 1 + 1 + len(path_ids) + 1 + 1 + 1 + 1  # msg, file, code, end marker, edit, eos (no message)
    used = fixed + sum(len(ids) + 1 for ids in line_ids[first:last])
    if used > config.max_tokens or last - first > tokenizer.max_lines:
        raise Dropped("too_long")
    limit = _window_limit(config, fixed, prompt_framing=fixed - 1)
    start, end, used = _grow(line_ids, first, last, used, limit, tokenizer.max_lines)
    ids = prompt_ids(tokenizer, [], path_ids, line_ids[start:end])
    answer_start = len(ids)
    ids.append(tokenizer.eos_id)
    assert len(ids) == used, (len(ids), used)
    return Example(ids, answer_start, start, end - start, None, True, no_change=True)


def build_example(tokenizer, row: dict, config: ExampleConfig) -> Example:
    """The example of a row whose changes fit one window; raises Dropped otherwise (see build_examples)."""
    examples, dropped = build_examples(tokenizer, row, config)
    if len(examples) != 1 or dropped:
        raise Dropped(dropped[0] if dropped else "several_windows")
    return examples[0]


def _window_example(tokenizer, script: EditScript, old_ids: list, new_ids: list, message_ids: list[int],
                    path_ids: list[int], message_dropped: bool, config: ExampleConfig) -> Example:
    """One example: a window around `script`'s operations, grown with context up to the token budget.

    `old_ids` are the per-line ids of the whole old text (None outside what is needed); `new_ids` those of
    the text that `script` alone makes, indexed alike (for a part of a script, the whole new text's lines
    shifted by what the earlier parts inserted or deleted)."""
    first, last = script.ops[0].start, script.ops[-1].end
    if last - first > tokenizer.max_lines:  # one operation spanning more lines than a window shows
        raise Dropped("too_many_lines")
    start, end = first, last
    script_ids = script.shifted(-start).to_tokens(tokenizer, new_line_ids=new_ids[start:])
    framing = 1 + len(message_ids) + 1 + len(path_ids) + 1 + 1 + 1  # msg, file, code, end marker, edit
    fixed = framing + len(script_ids) + 1  # and the script, <|eos|>
    used = fixed + sum(len(ids) + 1 for ids in old_ids[start:end])
    if used > config.max_tokens:
        raise Dropped("too_long")
    start, end, used = _grow(old_ids, start, end, used, _window_limit(config, fixed, framing), tokenizer.max_lines)
    if start != first:
        script_ids = script.shifted(-start).to_tokens(tokenizer, new_line_ids=new_ids[start:])

    ids = prompt_ids(tokenizer, message_ids, path_ids, old_ids[start:end])
    answer_start = len(ids)
    ids.extend(script_ids)
    ids.append(tokenizer.eos_id)
    assert len(ids) == used, (len(ids), used)
    return Example(ids, answer_start, start, end - start, script.sstub, message_dropped)


def _lines_budget(config: ExampleConfig, prompt_framing: int) -> int:
    """Tokens a window's lines may take: the prompt budget inference cuts windows with (`prompt_share` of
    max_tokens, less the prompt's framing; `patchcoder.windows.prompt_budget`)."""
    return int(config.prompt_share * config.max_tokens) - prompt_framing


def _window_limit(config: ExampleConfig, fixed: int, prompt_framing: int) -> int:
    """The example length a window may grow to: its lines take at most `_lines_budget`, and the whole
    example (`fixed` tokens besides the lines) at most max_tokens."""
    return fixed + max(0, min(_lines_budget(config, prompt_framing), config.max_tokens - fixed))


def _grow(line_ids: list, start: int, end: int, used: int, max_tokens: int, max_lines: int) -> tuple[int, int, int]:
    """Grow the window start..end-1 alternately above and below, one line at a time, while it stays within
    `max_tokens` (each line costs its ids and its marker) and `max_lines`; returns (start, end, used)."""
    n_lines = len(line_ids)
    grow_above = True
    while end - start < max_lines:
        above = used + len(line_ids[start - 1]) + 1 if start > 0 else None
        below = used + len(line_ids[end]) + 1 if end < n_lines else None
        options = [x for x in ((above, True), (below, False)) if x[0] is not None and x[0] <= max_tokens]
        if not options:
            break
        cost, is_above = options[0] if len(options) == 1 else (options[0] if grow_above else options[1])
        used = cost
        if is_above:
            start -= 1
        else:
            end += 1
        grow_above = not grow_above
    return start, end, used
