"""Edit scripts: exact apply, minimality in lexemes, unified diffs (unidiff, git apply), strict token grammar."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
import unidiff
from hypothesis import given, settings
from hypothesis import strategies as st

from patchcoder.tokenizer import EditOp, EditScript, EditScriptError, edit_script
from patchcoder.tokenizer.edits import split_lines

# lines drawn from a small pool so that old and new share lines; endings "\n", "\r\n" or none at the end
LINE = st.sampled_from(["x = 1", "y = f(x)", "", "  return y", "if a < b:", "\tpass", "# note", "é€ 😀", "z\x00"])


@st.composite
def texts(draw):
    lines = draw(st.lists(LINE, max_size=12))
    ending = draw(st.sampled_from(["\n", "\r\n"]))
    text = "".join(line + ending for line in lines)
    if text and draw(st.booleans()):
        text = text[: -len(ending)]  # last line without newline
    return text


@settings(max_examples=400, deadline=None)
@given(texts(), texts(), st.sampled_from([None, "python"]))
def test_apply_edit_script_gives_new(old, new, language):
    script = edit_script(old, new, language)
    assert script.apply(old) == new
    for op in script.ops:
        assert op.kind in ("INSERT", "DELETE", "REPLACE")
    if old == new:
        assert script.ops == ()


@settings(max_examples=300, deadline=None)
@given(texts(), texts())
def test_unified_diff_round_trip(old, new):
    script = edit_script(old, new)
    diff = script.to_unified_diff(old, "pkg/mod.py")
    assert EditScript.from_unified_diff(old, diff) == script
    if script.ops:
        patch = unidiff.PatchSet(diff)
        assert len(patch) == 1 and patch[0].path == "pkg/mod.py"
        assert patch[0].added == sum(len(split_lines(op.text)) for op in script.ops)
        assert patch[0].removed == sum(op.end - op.start for op in script.ops)


@settings(max_examples=200, deadline=None)
@given(texts(), texts())
def test_tokens_round_trip(tok, old, new):
    script = edit_script(old, new, "python")
    ids = script.to_tokens(tok, "python")
    n = len(split_lines(old))
    assert EditScript.from_tokens(ids, tok, n) == script
    assert EditScript.from_tokens([*ids, tok.eos_id], tok, n) == script


def test_script_shape():
    ctx = "keep this line\nand this one too\n"  # a gap too long to re-emit instead of a new operation
    old = "a\nb\n" + ctx + "d\n" + ctx + "e\n"
    new = "a\nB\n" + ctx + ctx + "e\nf\n"
    script = edit_script(old, new)
    assert script.ops == (
        EditOp("REPLACE", 1, 2, "B\n"),
        EditOp("DELETE", 4, 5),
        EditOp("INSERT", 8, 8, "f\n"),
    )


def test_operations_around_a_short_gap_are_merged():
    old = "x = 1\n\ny = 2\nreturn x + y\n"
    new = "x = 10\n\ny = 20\nreturn x + y\n"
    # separately: <REPLACE> <L0> <L1> x = 10 <END> <REPLACE> <L2> <L3> y = 20 <END>; merged, the blank
    # line costs one token instead of four
    assert edit_script(old, new).ops == (EditOp("REPLACE", 0, 3, "x = 10\n\ny = 20\n"),)


def test_alignment_is_minimal_in_lexemes():
    # Two alignments keep 2 old lines; the one keeping the long line re-emits fewer lexemes.
    long_line = "result = compute(alpha, beta, gamma, delta)\n"
    old = "a\nb\n" + long_line
    new = long_line + "a\nb\n"
    script = edit_script(old, new, "python")
    emitted = "".join(op.text for op in script.ops)
    assert emitted == "a\nb\n"
    assert script.apply(old) == new


def test_last_line_without_newline_and_crlf():
    old = "a\r\nb\r\nc"
    new = "a\r\nB\r\nc\r\n"
    script = edit_script(old, new)
    assert script.apply(old) == new
    assert "\\ No newline at end of file" in script.to_unified_diff(old, "f.txt")


def test_apply_rejects_scripts_that_do_not_fit():
    with pytest.raises(EditScriptError, match="past the last line"):
        EditScript((EditOp("DELETE", 0, 3),)).apply("a\nb\n")
    with pytest.raises(EditScriptError, match="must end with a newline"):
        EditScript((EditOp("INSERT", 0, 0, "x"),)).apply("a\nb\n")
    with pytest.raises(EditScriptError, match="no newline"):
        EditScript((EditOp("INSERT", 1, 1, "x\n"),)).apply("a")
    with pytest.raises(EditScriptError, match="overlap"):
        EditScript((EditOp("DELETE", 0, 2), EditOp("DELETE", 1, 3)))
    with pytest.raises(EditScriptError, match="overlap"):
        EditScript((EditOp("INSERT", 1, 1, "x\n"), EditOp("INSERT", 1, 1, "y\n")))
    with pytest.raises(EditScriptError):
        EditOp("REPLACE", 2, 2, "x\n")
    with pytest.raises(EditScriptError):
        EditOp("DELETE", 0, 1, "x\n")


def test_from_unified_diff_rejects_a_stale_diff():
    old = "a\nb\nc\n"
    diff = edit_script(old, "a\nB\nc\n").to_unified_diff(old, "f")
    with pytest.raises(EditScriptError, match="old line 2"):
        EditScript.from_unified_diff("a\nX\nc\n", diff)
    with pytest.raises(EditScriptError, match="ends inside a hunk"):
        EditScript.from_unified_diff(old, diff.rsplit("\n", 2)[0] + "\n")


def test_from_unified_diff_reads_git_diff_output(tmp_path):
    git = shutil.which("git")
    if git is None:
        pytest.skip("git is not installed")
    old = "".join(f"line {i}\n" for i in range(30)) + "tail"
    new = old.replace("line 3\n", "line three\n").replace("line 20\n", "").replace("tail", "tail\nmore\n")
    (tmp_path / "a.txt").write_text(old)
    (tmp_path / "b.txt").write_text(new)
    result = subprocess.run([git, "diff", "--no-index", "--no-color", "a.txt", "b.txt"], cwd=tmp_path,
                            capture_output=True, text=True)
    script = EditScript.from_unified_diff(old, result.stdout)
    assert script.apply(old) == new


CASES = [
    ("a\nb\nc\n", "a\nB\nc\n"),
    ("a\nb\nc", "a\nb\nc\n"),  # add the missing final newline
    ("a\nb\nc\n", "a\nb\nc"),  # remove it
    ("a\r\nb\r\n", "a\r\nb\r\nc\r\n"),
    ("", "new file content\n"),
    ("only\n", ""),
    ("".join(f"{i}\n" for i in range(40)), "".join(f"{i}\n" for i in range(40) if i not in (5, 30)) + "end"),
    ("x\n\n\ny\n", "\n\nx\ny\n"),
]


@pytest.mark.parametrize(("old", "new"), CASES)
def test_git_apply_accepts_the_diff(tmp_path, old, new):
    git = shutil.which("git")
    if git is None:
        pytest.skip("git is not installed")
    subprocess.run([git, "init", "-q", str(tmp_path)], check=True)
    path = tmp_path / "src" / "f.py"
    path.parent.mkdir()
    path.write_bytes(old.encode())
    diff = edit_script(old, new).to_unified_diff(old, "src/f.py")
    patch_file = tmp_path / "change.patch"
    patch_file.write_bytes(diff.encode())
    check = subprocess.run([git, "apply", "--check", "change.patch"], cwd=tmp_path, capture_output=True, text=True)
    assert check.returncode == 0, check.stderr + diff
    subprocess.run([git, "apply", "change.patch"], cwd=tmp_path, check=True)
    assert path.read_bytes() == new.encode()


@pytest.mark.parametrize("name", ["tab\there.py", "new\nline.py", "caf\u00e9.py", 'say "hi".py', "back\\slash.py",
                                  "sp ace.py", "bell\a.py", "plain.py"])
def test_file_names_are_quoted_as_git_quotes_them(tmp_path, name):
    """Headers name the file as `git diff` does (C-style quoted when needed), and `git apply` finds it."""
    git = shutil.which("git")
    if git is None:
        pytest.skip("git is not installed")
    old, new = "x = 1\n", "x = 2\n"
    env = {"GIT_AUTHOR_NAME": "A", "GIT_AUTHOR_EMAIL": "a@x", "GIT_COMMITTER_NAME": "A", "GIT_COMMITTER_EMAIL": "a@x",
           "HOME": str(tmp_path), "PATH": os.environ["PATH"]}
    subprocess.run([git, "init", "-q", str(tmp_path)], check=True)
    (tmp_path / name).write_text(old)
    subprocess.run([git, "add", "--", name], cwd=tmp_path, check=True, env=env)
    subprocess.run([git, "commit", "-qm", "old"], cwd=tmp_path, check=True, env=env)
    (tmp_path / name).write_text(new)
    theirs = subprocess.run([git, "diff", "--", name], cwd=tmp_path, check=True, capture_output=True, env=env).stdout
    ours = edit_script(old, new).to_unified_diff(old, name)
    headers = [line for line in theirs.decode().splitlines(keepends=True) if line.startswith(("--- ", "+++ "))]
    assert ours.splitlines(keepends=True)[:2] == headers
    (tmp_path / name).write_text(old)
    check = subprocess.run([git, "apply", "--check", "-"], input=ours.encode(), cwd=tmp_path, capture_output=True)
    assert check.returncode == 0, check.stderr.decode() + ours


def test_strict_token_parser_errors(tok):
    s = tok.special
    L = tok.line_marker
    ins, dele, rep, end = s["<INSERT>"], s["<DELETE>"], s["<REPLACE>"], s["<END>"]
    x = tok.encode("x\n")
    good = [rep, L(1), L(2), *x, end, ins, L(4), *x, end, tok.eos_id]
    assert EditScript.from_tokens(good, tok, 4).ops == (EditOp("REPLACE", 1, 2, "x\n"), EditOp("INSERT", 4, 4, "x\n"))
    bad = {
        "past the window": [dele, L(1), L(6)],
        "i < j": [dele, L(2), L(2)],
        "missing its <END>": [ins, L(0), *x],
        "empty text": [ins, L(0), end],
        "overlaps": [dele, L(1), L(3), dele, L(2), L(4)],
        "expected a line marker": [dele, *x],
        "expected <INSERT>": [*x],
        "inside INSERT text": [ins, L(0), *x, s["<|edit|>"], end],
        "tokens after": [dele, L(0), L(1), tok.eos_id, dele],
        "ends where a line marker": [rep, L(0)],
        "must end with a newline": [ins, L(0), *tok.encode("x"), end],
    }
    for message, ids in bad.items():
        with pytest.raises(EditScriptError, match=message):
            EditScript.from_tokens(ids, tok, 4)


def test_shifted_and_new_ranges():
    script = EditScript((EditOp("REPLACE", 1, 2, "x\ny\n"), EditOp("INSERT", 3, 3, "d\n")))
    assert script.apply("a\nb\nc\n") == "a\nx\ny\nc\nd\n"
    assert [(op.kind, ns, ne) for op, ns, ne in script.new_ranges()] == [("REPLACE", 1, 3), ("INSERT", 4, 5)]
    assert script.shifted(10).ops[0].start == 11


@settings(max_examples=150, deadline=None)
@given(texts(), texts())
def test_grammar_accepts_every_script(tok, old, new):
    from patchcoder.tokenizer import EditGrammar

    n = len(split_lines(old))
    ids = [*edit_script(old, new, "python").to_tokens(tok, "python"), tok.eos_id]
    grammar = EditGrammar(tok, n)
    for token in ids:
        assert grammar.mask()[token]
        grammar.advance(token)
    assert grammar.done


def test_grammar_rejects_what_the_parser_rejects(tok):
    from patchcoder.tokenizer import EditGrammar

    s, L = tok.special, tok.line_marker
    ins, dele, rep, end = s["<INSERT>"], s["<DELETE>"], s["<REPLACE>"], s["<END>"]
    x, no_newline = tok.encode("x\n"), tok.encode("x")
    for ids in ([dele, L(1), L(6)], [dele, L(2), L(2)], [ins, L(0), end], [dele, L(1), L(3), dele, L(2)],
                [dele, *x], [*x], [ins, L(0), *x, s["<|edit|>"]], [dele, L(0), L(1), tok.eos_id, dele],
                [ins, L(0), *no_newline, end], [ins, L(2), *x, end, ins, L(2)], [rep, L(1), L(2), end]):
        grammar = EditGrammar(tok, 4)
        with pytest.raises(EditScriptError):
            for token in ids:
                allowed = grammar.mask()[token]
                grammar.advance(token)
                assert allowed
    # an INSERT may end the window's text without a newline
    grammar = EditGrammar(tok, 4)
    for token in [ins, L(4), *no_newline]:
        grammar.advance(token)
    assert grammar.mask()[end]


@settings(max_examples=600, deadline=None)
@given(st.lists(st.integers(0, 13), max_size=14), st.integers(0, 4))
def test_grammar_and_parser_accept_the_same_sequences(tok, choices, n_lines):
    from patchcoder.tokenizer import EditGrammar

    s, L = tok.special, tok.line_marker
    alphabet = [s["<INSERT>"], s["<DELETE>"], s["<REPLACE>"], s["<END>"], L(0), L(1), L(2), L(3), L(4), L(5),
                tok.encode("x\n")[0], tok.encode("y")[0], s["<|msg|>"], s["<|pad|>"]]
    ids = [alphabet[c] for c in choices] + [tok.eos_id]
    try:
        script = EditScript.from_tokens(ids, tok, n_lines)
        parsed = True
    except EditScriptError:
        parsed = False
    grammar = EditGrammar(tok, n_lines)
    accepted = True
    for token in ids:
        if not grammar.mask()[token]:
            accepted = False
            break
        grammar.advance(token)
    assert parsed == (accepted and grammar.done), (ids, n_lines)
    if parsed:
        assert EditScript.from_tokens(script.to_tokens(tok) + [tok.eos_id], tok, n_lines) == script
