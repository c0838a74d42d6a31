"""Windows (patchcoder.windows): a focus that fits gets the window around it; otherwise windows tile the
text within the prompt budget, and a line too long for any prompt gets none."""

from __future__ import annotations

from patchcoder import Repairer
from patchcoder.windows import Window, windows_for

BUGGY = "def area(width, height):\n    return width + height\n"


def cut(repairer: Repairer, item: dict) -> list[Window]:
    """The windows `Repairer.repair` decodes for `item` (which names its `language`)."""
    return windows_for(repairer.tokenizer, item["code"], max_tokens=repairer.max_tokens, language=item["language"],
                       path=item.get("path"), intent=item.get("intent"), focus=item.get("focus"))


def test_a_focus_too_long_for_one_window_is_tiled(fixer):
    repairer = Repairer.load(fixer)
    code = "".join(f"value_{i} = compute({i}, {i + 1})\n" for i in range(600))
    item = {"code": code, "path": "v.py", "language": "python", "focus": (10, 580)}
    windows = cut(repairer, item)
    assert len(windows) > 1 and windows[0].start == 10 and windows[-1].start + windows[-1].n_lines == 581
    assert all(w.focus == (w.start, w.start + w.n_lines - 1) for w in windows)
    assert all(w.n_lines <= repairer.tokenizer.max_lines for w in windows)
    repairer.repair([{"code": code, "path": "v.py", "focus": (10, 580)}], mode="rank")  # no error


def test_a_line_too_long_for_any_window_is_skipped(fixer):
    repairer = Repairer.load(fixer)
    huge = "blob = '" + "ab" * 4000 + "'\n"
    code = BUGGY + huge + BUGGY.replace("area", "volume")
    windows = cut(repairer, {"code": code, "path": "g.py", "language": "python"})
    assert [(w.start, w.n_lines) for w in windows] == [(0, 2), (3, 2)]  # line 2 has no window
    assert all(len(w.prompt) <= repairer.max_tokens for w in windows)
    (patch,) = repairer.repair([{"code": code, "path": "g.py"}])
    assert patch is None or all(op.start != 2 for op in patch.script.ops)


def test_a_long_text_is_tiled_by_windows(fixer):
    from patchcoder.tokenizer.edits import split_lines

    repairer = Repairer.load(fixer)
    filler = "".join(f"def helper_{i}(value):\n    return value * {i}\n\n\n" for i in range(60))
    code = filler + BUGGY
    item = {"code": code, "path": "geometry.py", "language": "python"}
    windows = cut(repairer, item)
    n = len(split_lines(code))
    assert len(windows) > 1 and windows[0].start == 0
    assert all(a.start + a.n_lines == b.start for a, b in zip(windows, windows[1:], strict=False))  # contiguous
    assert windows[-1].start + windows[-1].n_lines == n  # to the last line
    assert all(len(w.prompt) <= repairer.max_tokens * 3 // 4 for w in windows)
    assert all(w.n_lines <= repairer.tokenizer.max_lines for w in windows)
    # with a focus, one window around it
    (focused,) = cut(repairer, item | {"focus": (n - 1, n - 1)})
    assert focused.start <= n - 1 < focused.start + focused.n_lines


def test_a_focus_window_grows_around_the_focus_and_keeps_it():
    """The window around a focus holds the focus lines, grows on both sides while the budget allows,
    and its rewritable lines are the focus lines; the empty text gets one empty window."""
    from patchcoder.tokenizer.vocab import CodeTokenizer

    tok = CodeTokenizer.default()
    code = "".join(f"x_{i} = {i}\n" for i in range(30))
    (window,) = windows_for(tok, code, max_tokens=512, language="python", path="x.py", focus=(12, 13))
    assert window.start < 12 and window.start + window.n_lines > 14 and window.focus == (12, 13)
    assert window.rewritable == (12, 14)
    (whole,) = windows_for(tok, code, max_tokens=512, language="python", path="x.py")
    assert (whole.start, whole.n_lines, whole.focus, whole.rewritable) == (0, 30, None, (0, 30))
    small = windows_for(tok, code, max_tokens=64, language="python", path="x.py")
    assert len(small) > 1 and sum(w.n_lines for w in small) == 30
    (empty,) = windows_for(tok, "", max_tokens=512, language="python")
    assert (empty.start, empty.n_lines) == (0, 0)
