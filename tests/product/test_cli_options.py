"""Every command-line option that takes a number or a name from a list refuses a bad value with one line
and exit code 2, before any work: the options are found by walking the real parser of every subcommand."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from patchcoder.cli import SUBCOMMANDS, build_parser, main
from patchcoder.ground.argtypes import folder_path, location

# Values no numeric or enumerated option accepts.
BAD = ["nan", "inf", "abc", "", "1e999", "0x1g"]
# The one place a plain number type stays: `hook run` is what an installed hook calls, and a usage error
# there would block the commit (the hook never blocks because of its own failure).
PLAIN_NUMBERS_ALLOWED = {("patchcoder hook run", "--timeout"), ("patchcoder hook run", "--min-score")}


def _parsers(parser: argparse.ArgumentParser):
    """Every (sub)parser under `parser`, itself included."""
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in dict.fromkeys(action.choices.values()):  # aliases map to the same parser
                yield from _parsers(sub)


def _valued_options():
    """(parser, option string, action) for every option that converts or restricts its value to a number or a
    name from a list (a folder, `folder_path` or `location`, refuses only URLs it cannot use: `nan` is a folder name)."""
    for parser in _parsers(build_parser()):
        for action in parser._actions:
            if action.option_strings and (action.type is not None or action.choices is not None) \
                    and action.type not in (folder_path, location) and not isinstance(action, argparse._SubParsersAction):
                yield parser, action.option_strings[-1], action


OPTIONS = list(_valued_options())


def test_every_subcommand_is_walked():
    progs = {parser.prog for parser, _, _ in OPTIONS}
    for name, _, _ in SUBCOMMANDS:
        assert any(prog.startswith(f"patchcoder {name}") for prog in progs), name
    assert len(OPTIONS) > 40


def test_numeric_options_have_an_argument_type():
    """A bare int or float accepts nan, inf or -5 where they mean nothing (ground/argtypes has the types)."""
    plain = {(parser.prog, option) for parser, option, action in OPTIONS if action.type in (int, float)}
    assert plain == PLAIN_NUMBERS_ALLOWED


@pytest.mark.parametrize("parser, option, action", [o for o in OPTIONS if (o[0].prog, o[1]) not in PLAIN_NUMBERS_ALLOWED],
                         ids=[f"{p.prog[len('patchcoder '):]} {o}" for p, o, _ in OPTIONS
                              if (p.prog, o) not in PLAIN_NUMBERS_ALLOWED])
def test_every_bad_value_is_one_line_and_exit_2(parser, option, action, capsys):
    for bad in BAD:
        with pytest.raises(SystemExit) as info:
            parser.parse_args([f"{option}={bad}"])
        err = capsys.readouterr().err
        assert info.value.code == 2, (option, bad)
        assert err.count("\n") == 1 and option in err and "Traceback" not in err, err


@pytest.mark.parametrize("argv, message", [
    (["suggest", "--min-score=nan"], "--min-score: expected a finite score or -inf"),
    (["suggest", "--min-score", "inf"], "--min-score: expected a finite score or -inf"),
    (["hook", "install", "--timeout", "-5"], "--timeout: expected a finite number of seconds > 0"),
    (["hook", "install", "--timeout", "nan"], "--timeout: expected a finite number of seconds > 0"),
    (["hook", "install", "--timeout", "inf"], "--timeout: expected a finite number of seconds > 0"),
    (["hook", "install", "--min-score", "nan"], "--min-score: expected a finite score"),
    (["mine", "repo", "--out", "o", "--languages", "klingon"], "unknown language 'klingon'; known: bash, c, "),
    (["mine", "repo", "--out", "o", "--languages", "python,Klingon,elvish"], "unknown languages 'klingon', 'elvish'"),
    (["mine", "repo", "--out", "o", "--languages", ","], "--languages: expected at least one language"),
    (["tokenize", "--data", "d", "--out", "o", "--seed", "1.5"], "--seed: expected a whole number"),
    (["tokenize", "train-vocab", "--out", "v.json", "--max-mb", "inf"], "--max-mb: expected a positive size"),
    (["split", "d", "--out", "o", "--seed", "x"], "--seed: expected a whole number"),
    (["train", "--preset", "tiny", "--out", "o", "--seed", "1.5"], "--seed: expected a whole number"),
    (["eval", "--checkpoint", "c", "--data", "d", "--max-tokens", "100000000"], "whole number from 1 to 65,536"),
])
def test_the_reported_cases(argv, message, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    err = capsys.readouterr().err
    assert info.value.code == 2 and err.count("\n") == 1 and message in err, err


def test_good_values_still_parse():
    args = build_parser("suggest").parse_args(["suggest", "--min-score=-inf"])
    assert args.min_score == float("-inf")
    args = build_parser("hook").parse_args(["hook", "install", "--timeout", "2.5", "--min-score", "-1.25"])
    assert (args.timeout, args.min_score) == (2.5, -1.25)
    args = build_parser("mine").parse_args(["mine", "r", "--out", "o", "--languages", "Python, go,python"])
    assert args.languages == ("python", "go")


def test_a_bad_language_mines_nothing_and_exits_2(tmp_path):
    """Through the console script: a real process, one line, exit 2, no output folder."""
    result = subprocess.run([sys.executable, "-m", "patchcoder", "mine", str(tmp_path), "--out", str(tmp_path / "out"),
                             "--languages", "klingon"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert "unknown language 'klingon'" in result.stderr and "python" in result.stderr
    assert not (tmp_path / "out").exists()


def test_a_reader_that_goes_away_stops_the_command_quietly(tmp_path):
    """`patchcoder ... | head`: when the pipe closes early the command ends with 141 (128 + SIGPIPE) and no
    'internal error' line (it printed one, BrokenPipeError, before)."""
    import subprocess
    import sys

    big = tmp_path / "big.py"
    big.write_text("".join(f"value_{i} = compute({i}, 'text {i}')\n" for i in range(20_000)))
    proc = subprocess.Popen([sys.executable, "-m", "patchcoder", "tokenize", "encode", str(big)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.read(10)
    proc.stdout.close()  # the reader goes away before the tokens are all written
    stderr = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141, stderr
    assert "internal error" not in stderr and "Traceback" not in stderr


def test_a_folder_the_machine_will_not_let_us_write_is_one_line_not_an_internal_error(tmp_path):
    """The machine's limits (a full disk, a read-only or forbidden folder) are said as such, with the path."""
    import errno
    import os

    forbidden = "/sys/patchcoder-test-out"  # sysfs refuses new folders, even to root
    try:
        os.mkdir(forbidden)
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.EACCES, errno.EROFS):
            pytest.skip(f"{forbidden}: {exc}")
        said = exc.strerror
    else:
        os.rmdir(forbidden)
        pytest.skip(f"{forbidden} can be made here")
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "m.py").write_text("def f(a, b):\n    return a + b\n")
    result = subprocess.run([sys.executable, "-m", "patchcoder", "synth", str(tmp_path / "src"), "--out", forbidden,
                             "--no-progress"], capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.startswith(f"patchcoder synth: error: {said}: {forbidden}")
    assert len(result.stderr.splitlines()) == 1 and "internal error" not in result.stderr
