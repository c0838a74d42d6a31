"""`patchcoder synth`: the command line end to end on real files, rows in the miner's schema, exclusions
(every held-out repository, tests, benchmarks, the project), --per-package naming, --jobs invariance, resume, and one-line errors."""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import json
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import datasets
import pyarrow.parquet as pq
import pytest

from patchcoder.ground.errors import UsageError
from patchcoder.mining.shards import SCHEMA, shard_files
from patchcoder.tokenizer.rewrites import KINDS, parses
from patchcoder.training.synth import (
    PROJECT_ROOT,
    Source,
    SynthConfig,
    _project_code,
    default_sources,
    exclusion_reason,
    list_files,
    synthesize,
)

STDLIB = Path(sysconfig.get_paths()["stdlib"])
GOOD = ("bisect.py", "colorsys.py", "textwrap.py", "shlex.py", "heapq.py")


@pytest.fixture(scope="module")
def source_dir(tmp_path_factory) -> Path:
    """Real standard-library modules, plus files that must be skipped, each for a different reason."""
    root = tmp_path_factory.mktemp("src")
    pkg = root / "pkg"
    pkg.mkdir()
    for name in GOOD:
        shutil.copy(STDLIB / name, pkg / name)
    (pkg / "__init__.py").write_text("")                              # no_site
    (pkg / "same_as_bisect.py").write_bytes((STDLIB / "bisect.py").read_bytes())  # duplicate
    (pkg / "broken.py").write_text("def f(:\n    return 1\n")         # unparsable
    (pkg / "latin.py").write_bytes(b"# caf\xe9\nx = 1\n")             # undecodable
    (pkg / "big.py").write_text("x = 1\n" * 10_000)                   # too_large (60 kB > --max-bytes)
    (pkg / "tests").mkdir()
    (pkg / "tests" / "test_pkg.py").write_text("def test_x():\n    assert 1 + 1 == 2\n")  # test_suite
    # code reserved for evaluation, under its own name anywhere on the path
    (root / "flask").mkdir()
    (root / "flask" / "helpers.py").write_bytes((STDLIB / "shlex.py").read_bytes() + b"\n# flask\n")
    (root / "vendored_copy" / "requests").mkdir(parents=True)
    (root / "vendored_copy" / "requests" / "api.py").write_bytes((STDLIB / "heapq.py").read_bytes() + b"\n#\n")
    (root / "humaneval").mkdir()
    (root / "humaneval" / "problems.py").write_text("def add(a, b):\n    return a + b\n")  # benchmark
    return root


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "patchcoder", *args], capture_output=True, text=True)


def _rows(out) -> list[dict]:
    return [row for f in shard_files(out) for row in pq.read_table(f).to_pylist()]


def test_cli_end_to_end_on_real_files(source_dir, tmp_path):
    out = tmp_path / "out"
    result = _cli("synth", str(source_dir), "--out", str(out), "--seed", "3", "--per-file", "3", "--jobs", "1",
                  "--max-bytes", "50000", "--json", "--no-progress")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert "examples (rows)" in result.stderr  # the rich table goes to stderr
    assert summary["files_used"] == len(GOOD) and summary["examples"] == 3 * len(GOOD)
    assert summary["skipped"] == {"benchmark": 1, "duplicate": 1, "no_site": 1, "reserved_for_eval": 2,
                                  "test_suite": 1, "too_large": 1, "undecodable": 1, "unparsable": 1}
    assert sum(summary["kinds"].values()) == summary["examples"] and set(summary["kinds"]) <= set(KINDS)

    ds = datasets.load_dataset("parquet", data_files=shard_files(out), split="train")
    assert len(ds) == 3 * len(GOOD)
    assert pq.read_schema(shard_files(out)[0]).remove_metadata() == SCHEMA
    commits = set()
    for row in ds:
        original = (source_dir / row["path"]).read_text()
        assert row["new"] == original and row["old"] != original
        assert parses(row["old"])
        assert row["repo"] == f"synth:{source_dir.name}" and row["path"].startswith("pkg/")
        assert row["change"] == "M" and row["language"] == "python" and row["old_path"] == row["path"]
        assert row["old_blob"] == hashlib.sha1(b"blob %d\0" % len(row["old"].encode()) + row["old"].encode()).hexdigest()
        assert row["new_blob"] == hashlib.sha1(b"blob %d\0" % len(original.encode()) + original.encode()).hexdigest()
        assert row["diff"].startswith(f"diff --git a/{row['path']} b/{row['path']}\n")
        assert row["added"] + row["deleted"] >= 1 and row["hunks"] == 1
        assert row["sstub"] and row["message"].split()[0] in ("Fix", "Add", "Remove")
        assert len(row["commit"]) == 40 and row["commit"] not in commits
        commits.add(row["commit"])
    assert "flask" not in {p for row in ds for p in Path(row["path"]).parts}


def test_jobs_invariance_resume_and_seed(source_dir, tmp_path):
    sources = [Source("src", str(source_dir / "pkg"))]
    config = SynthConfig(seed=5, per_file=2, files_per_shard=2, max_bytes=50_000)
    one = synthesize(sources, tmp_path / "one", config, jobs=1, show_progress=False)
    two = synthesize(sources, tmp_path / "two", config, jobs=2, show_progress=False)
    assert one.examples == two.examples == 2 * len(GOOD) and one.kinds == two.kinds and one.skipped == two.skipped
    rows = _rows(tmp_path / "one")
    assert rows == _rows(tmp_path / "two")

    # a run killed before its last unit: the manifest lacks it, a temp file lies around
    out = tmp_path / "two"
    manifest = json.loads((out / "manifest.json").read_text())
    last = max(manifest["units"])
    shard = manifest["units"].pop(last)["shard"]
    if shard:
        (out / shard).unlink()
    manifest["complete"] = False
    (out / "manifest.json").write_text(json.dumps(manifest))
    (out / "shards" / ".00000.parquet.x.tmp").write_bytes(b"half")
    with pytest.raises(UsageError, match="--resume"):
        synthesize(sources, out, config, jobs=1, show_progress=False)
    with pytest.raises(UsageError, match="different options"):
        synthesize(sources, out, SynthConfig(seed=6, per_file=2, files_per_shard=2), resume=True, show_progress=False)
    resumed = synthesize(sources, out, config, jobs=1, resume=True, show_progress=False)
    assert resumed.resumed_units == len(manifest["units"]) and resumed.examples == one.examples
    assert _rows(out) == rows
    assert not list(out.rglob("*.tmp"))

    (source_dir / "pkg" / "new_module.py").write_text("def f(a, b):\n    return a + b\n")
    try:
        with pytest.raises(UsageError, match="changed"):
            synthesize(sources, out, config, jobs=1, resume=True, show_progress=False)
    finally:
        (source_dir / "pkg" / "new_module.py").unlink()

    other = synthesize(sources, tmp_path / "seed6", dataclasses.replace(config, seed=6), jobs=1, show_progress=False)
    assert [r["old"] for r in _rows(tmp_path / "seed6")] != [r["old"] for r in rows]
    assert other.examples == one.examples


def test_default_sources_keep_out_flask_requests_tests_and_the_project():
    skipped = collections.Counter()
    files = list_files(default_sources(), SynthConfig(), skipped)
    assert len(files) > 1000
    repos = {f.repo for f in files}
    assert "synth:stdlib/json" in repos and any(r.startswith("synth:site-packages/") for r in repos)
    for file in files:
        parts = {p.lower().removesuffix(".py") for p in Path(file.abspath).parts}
        assert not parts & {"flask", "requests"}, file
        real = Path(file.abspath).resolve()
        if real.is_relative_to(PROJECT_ROOT):  # only an environment kept in the checkout (a .venv), never its code
            assert any((d / "pyvenv.cfg").is_file() for d in real.parents if d.is_relative_to(PROJECT_ROOT)), file
        assert not {p.lower() for p in Path(file.path).parent.parts} & {"test", "tests"}, file
    flask = Path(sysconfig.get_paths()["purelib"]) / "flask"
    if flask.is_dir():  # installed on this machine: its files were seen and refused, not missed
        assert skipped["reserved_for_eval"] >= len(list(flask.rglob("*.py")))


def test_an_environment_inside_the_checkout_is_not_the_project(tmp_path):
    """A `.venv` made in patchcoder's checkout holds other projects' packages: `synth` reads them (found running
    the suite in such a venv: every site-packages file was refused as "project"); the checkout's code stays out."""
    root = tmp_path / "checkout"
    (root / ".venv" / "lib" / "site-packages" / "pkg").mkdir(parents=True)
    (root / ".venv" / "pyvenv.cfg").write_text("home = /usr/bin\n")
    (root / "training").mkdir()
    assert not _project_code(str(root / ".venv" / "lib" / "site-packages" / "pkg" / "mod.py"), root)
    assert _project_code(str(root / "training" / "synth.py"), root)
    assert _project_code(str(root / "venv-notes" / "x.py"), root)  # a folder without pyvenv.cfg is the project's
    assert not _project_code(str(tmp_path / "elsewhere.py"), root)


def test_exclusion_rules():
    assert exclusion_reason(("pip", "_vendor", "requests", "api.py")) == "reserved_for_eval"
    assert exclusion_reason(("app.py",), root_parts=("usr", "lib", "site-packages", "flask")) == "reserved_for_eval"
    assert exclusion_reason(("requests.py",)) == "reserved_for_eval"
    assert exclusion_reason(("swe_bench", "harness.py")) == "benchmark"
    assert exclusion_reason(("pkg", "tests", "util.py")) == "test_suite"
    assert exclusion_reason(("pkg", "test_util.py")) == "test_suite"
    assert exclusion_reason(("pkg", "tests", "util.py"), include_tests=True) is None
    assert exclusion_reason(("pkg", "_vendor", "six.py")) == "vendored"
    assert exclusion_reason(("patchcoder", "model.py")) == "project"
    assert exclusion_reason(("flask_cors", "core.py")) is None  # another project, not pallets/flask
    assert exclusion_reason(("pkg", "requests_util.py")) is None


def test_every_held_out_repository_is_refused_anywhere_on_the_path():
    """flask and requests (held out), jinja (validation), rich (test) and the repositories mined for the
    real-bug-fix evaluation sets never feed training: as a package, a vendored copy, a source root or a mined
    repository's name; --evaluation-set allows them (benchmarks stay out)."""
    from patchcoder.training.synth import HELD_OUT, RESERVED

    assert {"pallets/flask", "psf/requests", "pallets/jinja", "Textualize/rich"} <= set(HELD_OUT)
    names = {"flask", "requests", "jinja", "jinja2", "rich", "tornado", "scrapy", "networkx", "httpie", "starlette",
             "aiohttp"}
    assert names <= RESERVED
    for name in sorted(names):
        assert exclusion_reason((name, "core.py")) == "reserved_for_eval", name
        assert exclusion_reason(("pip", "_vendor", name, "api.py")) == "reserved_for_eval", name
        assert exclusion_reason((f"{name}.py",)) == "reserved_for_eval", name
        assert exclusion_reason(("x.py",), root_parts=("data", "pypi", name)) == "reserved_for_eval", name
        assert exclusion_reason((name, "core.py"), evaluation_set=True) is None, name
    for repo in HELD_OUT:  # a mined repository's name is its root (synth over mined shards)
        assert exclusion_reason(("src", "m.py"), root_parts=tuple(repo.split("/"))) == "reserved_for_eval", repo
    for repo in ("pallets/click", "pallets/werkzeug", "psf/black", "Textualize/textual"):
        assert exclusion_reason(("src", "m.py"), root_parts=tuple(repo.split("/"))) is None, repo
    assert exclusion_reason(("sphinx", "jinja2glue.py")) is None and exclusion_reason(("richtext.py",)) is None


def test_mined_held_out_repositories_are_refused(new_repo, tmp_path):
    from patchcoder.mining.run import mine
    from patchcoder.training.synth import user_sources

    repos = []
    for name, module in (("pallets/jinja", "textwrap.py"), ("Textualize/rich", "shlex.py"),
                         ("httpie/cli", "heapq.py"), ("pallets/click", "bisect.py")):
        repo = new_repo(name.replace("/", "_"))
        repo.commit("Add a module", {"m.py": (STDLIB / module).read_bytes()})
        repos.append(f"{name}={repo.path}")
    mined = tmp_path / "mined"
    mine(repos, mined, jobs=1, show_progress=False)
    summary = synthesize(user_sources([str(mined)]), tmp_path / "out", SynthConfig(seed=0, per_file=1), jobs=1,
                         show_progress=False)
    assert summary.skipped == {"reserved_for_eval": 3} and {r["repo"] for r in _rows(tmp_path / "out")} == {"pallets/click"}


def test_per_package_names_a_repository_per_top_level_package(tmp_path):
    """A folder filled by `pip install --target`: one repository per package or module, as site-packages."""
    site = tmp_path / "pypi"
    (site / "alpha").mkdir(parents=True)
    shutil.copy(STDLIB / "textwrap.py", site / "alpha" / "wrap.py")
    shutil.copy(STDLIB / "bisect.py", site / "beta.py")
    (site / "alpha-1.0.dist-info").mkdir()
    (site / "rich").mkdir()
    shutil.copy(STDLIB / "shlex.py", site / "rich" / "text.py")  # held out, whatever the folder
    result = _cli("synth", str(site), "--per-package", "--out", str(tmp_path / "out"), "--per-file", "1", "--jobs", "1",
                  "--json", "--no-progress")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["skipped"] == {"reserved_for_eval": 1}
    assert {(r["repo"], r["path"]) for r in _rows(tmp_path / "out")} == {("synth:pypi/alpha", "alpha/wrap.py"),
                                                                         ("synth:pypi/beta", "beta.py")}
    result = _cli("synth", str(site), "--out", str(tmp_path / "out2"), "--per-file", "1", "--jobs", "1",
                  "--no-progress")
    assert result.returncode == 0, result.stderr
    assert {r["repo"] for r in _rows(tmp_path / "out2")} == {"synth:pypi"}


def test_cli_errors_are_one_line(tmp_path):
    missing = _cli("synth", str(tmp_path / "nope"), "--out", str(tmp_path / "o"))
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1 and "does not exist" in missing.stderr
    bad_kind = _cli("synth", str(tmp_path), "--out", str(tmp_path / "o2"), "--kinds", "wrong_everything")
    assert bad_kind.returncode == 2 and "unknown mutation class" in bad_kind.stderr


JS = """import { readHeader, readBody } from "./io";

export function total(items, limit) {
  let sum = 0;
  for (let i = 0; i < items.length; i++) {
    if (items[i] > limit && !items.skip) {
      sum += items[i];
    }
  }
  const seen = [];
  seen.push(sum);
  return Math.max(sum, limit);
}
"""


def test_javascript_sources(tmp_path):
    root = tmp_path / "web"
    (root / "src").mkdir(parents=True)
    (root / "src" / "total.js").write_text(JS)
    (root / "src" / "total.test.js").write_text("test('x', () => expect(1).toBe(1));\n")  # test_suite
    (root / "src" / "notes.py").write_text("x = 1 + 2\n")  # not asked for
    summary = synthesize([Source("web", str(root))], tmp_path / "out",
                         SynthConfig(seed=1, per_file=5, languages=("javascript",)), jobs=1, show_progress=False)
    assert summary.examples == 5 and summary.skipped == {"test_suite": 1}
    rows = _rows(tmp_path / "out")
    assert {r["language"] for r in rows} == {"javascript"} and {r["path"] for r in rows} == {"src/total.js"}
    assert all(r["new"] == JS and parses(r["old"], "javascript") for r in rows)
    with pytest.raises(UsageError, match="no rewrite engine"):
        synthesize([Source("web", str(root))], tmp_path / "o2", SynthConfig(languages=("cobol",)), show_progress=False)


def test_mined_shards_as_a_source(new_repo, tmp_path):
    """The latest `new` text of each mined file, under the mined repository's own name; flask stays out."""
    from patchcoder.mining.run import mine
    from patchcoder.training.synth import user_sources

    textwrap_v1 = (STDLIB / "textwrap.py").read_bytes()
    textwrap_v2 = textwrap_v1.replace(b"width=70", b"width=72")
    lib = new_repo("lib")
    lib.commit("Add textwrap", {"wrap.py": textwrap_v1, "README.md": b"hello\n"})
    lib.commit("Widen the default width", {"wrap.py": textwrap_v2, "bisect_copy.py": (STDLIB / "bisect.py").read_bytes()})
    flask = new_repo("flask")
    flask.commit("Add helpers", {"helpers.py": (STDLIB / "shlex.py").read_bytes()})
    flask.commit("Tweak helpers", {"helpers.py": (STDLIB / "shlex.py").read_bytes() + b"\n"})
    mined = tmp_path / "mined"
    mine([lib.path, flask.path], mined, jobs=1, show_progress=False)

    sources = user_sources([str(mined)])
    assert sources[0].mined
    summary = synthesize(sources, tmp_path / "out", SynthConfig(seed=2, per_file=3), jobs=1, show_progress=False)
    assert summary.skipped == {"reserved_for_eval": 1} and summary.files_used == 2 and summary.examples == 6
    rows = _rows(tmp_path / "out")
    assert {r["repo"] for r in rows} == {"lib"}
    by_path = {r["path"]: r["new"] for r in rows}
    assert by_path == {"wrap.py": textwrap_v2.decode(), "bisect_copy.py": (STDLIB / "bisect.py").read_text()}


def test_evaluation_sets_may_use_the_reserved_projects(source_dir, tmp_path):
    out = tmp_path / "heldout"
    result = _cli("synth", str(source_dir), "--out", str(out), "--seed", "3", "--per-file", "1", "--jobs", "1",
                  "--max-bytes", "50000", "--evaluation-set", "--json", "--no-progress")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert "reserved_for_eval" not in summary["skipped"] and summary["skipped"]["benchmark"] == 1
    assert any("requests" in row["path"] for row in _rows(out))
    assert exclusion_reason(("flask", "app.py"), evaluation_set=True) is None
    assert exclusion_reason(("humaneval", "p.py"), evaluation_set=True) == "benchmark"


def test_the_class_mix_reweights_the_draw_of_the_same_files(source_dir, tmp_path):
    sources = [Source("src", str(source_dir / "pkg"))]
    plain_config = SynthConfig(seed=2, per_file=6, max_bytes=50_000)
    plain = synthesize(sources, tmp_path / "plain", plain_config, jobs=1, show_progress=False)
    manifest = json.loads((tmp_path / "plain" / "manifest.json").read_text())
    assert "mix" not in json.dumps(manifest)  # no mix: the request of runs made before it (they resume)
    mix = (("swapped_arguments", 0.0), ("wrong_boolean_operator", 0.0), ("wrong_number", 10.0))
    mixed = synthesize(sources, tmp_path / "mixed", SynthConfig(seed=2, per_file=6, max_bytes=50_000, mix=mix),
                       jobs=1, show_progress=False)
    assert plain.files_used == mixed.files_used and plain.kinds.get("swapped_arguments")
    assert "swapped_arguments" not in mixed.kinds and "wrong_boolean_operator" not in mixed.kinds
    assert mixed.kinds["wrong_number"] > plain.kinds.get("wrong_number", 0)
    assert {(r["repo"], r["path"]) for r in _rows(tmp_path / "mixed")} == \
        {(r["repo"], r["path"]) for r in _rows(tmp_path / "plain")}
    with pytest.raises(UsageError, match="different options"):  # a run resumes only with its own mix
        synthesize(sources, tmp_path / "plain", SynthConfig(seed=2, per_file=6, max_bytes=50_000, mix=mix),
                   resume=True, show_progress=False)
    other = (("swapped_arguments", 0.0), ("wrong_boolean_operator", 0.0), ("wrong_number", 9.0))
    with pytest.raises(UsageError, match="different options"):
        synthesize(sources, tmp_path / "mixed", SynthConfig(seed=2, per_file=6, max_bytes=50_000, mix=other),
                   resume=True, show_progress=False)
    again = synthesize(sources, tmp_path / "mixed", SynthConfig(seed=2, per_file=6, max_bytes=50_000, mix=mix),
                       resume=True, show_progress=False)  # its own mix, read back from the manifest's JSON
    assert again.examples == mixed.examples and again.resumed_units == len(
        json.loads((tmp_path / "mixed" / "manifest.json").read_text())["units"])
    with pytest.raises(UsageError, match="factor of 0"):
        synthesize(sources, tmp_path / "none", SynthConfig(kinds=("wrong_number",), mix=(("wrong_number", 0),)),
                   show_progress=False)


def test_cli_mix(source_dir, tmp_path):
    out = tmp_path / "out"
    result = _cli("synth", str(source_dir / "pkg"), "--out", str(out), "--per-file", "4", "--jobs", "1",
                  "--max-bytes", "50000", "--mix", "variable_misuse=0, wrong_function_name=0", "--json", "--no-progress")
    assert result.returncode == 0, result.stderr
    kinds = json.loads(result.stdout)["kinds"]
    assert kinds and not {"variable_misuse", "wrong_function_name"} & set(kinds)
    for bad, said in (("wrong_number", "CLASS=FACTOR"), ("wrong_number=x", "CLASS=FACTOR"),
                      ("no_such_class=2", "unknown mutation class"), ("wrong_number=-1", ">= 0"), (",", "at least one"),
                      ("", "at least one"), ("wrong_number=1=2", "CLASS=FACTOR"),
                      ("wrong_number=2,wrong_number=3", "twice")):
        result = _cli("synth", str(source_dir / "pkg"), "--out", str(tmp_path / "bad"), "--mix", bad)
        assert result.returncode == 2 and result.stderr.count("\n") == 1 and said in result.stderr, (bad, result.stderr)


def test_a_named_pipe_is_skipped_not_read_and_rows_with_nulls_are_counted(tmp_path):
    import os

    from patchcoder.mining.shards import write_shard
    from patchcoder.training.synth import user_sources

    src = tmp_path / "src" / "pkg"
    src.mkdir(parents=True)
    shutil.copy(STDLIB / "bisect.py", src / "bisect.py")
    os.mkfifo(src / "pipe.py")  # reading it would wait for a writer forever
    summary = synthesize([Source("src", str(tmp_path / "src"))], tmp_path / "out", SynthConfig(seed=2, per_file=2), jobs=1,
                         show_progress=False)
    assert summary.files_used == 1 and summary.skipped.get("unreadable") == 1
    text = (STDLIB / "bisect.py").read_text()
    row = {"repo": "lib", "commit": "c" * 40, "parent": "0" * 40, "author_time": 1, "message": "m", "path": "a.py",
           "old_path": None, "change": "A", "language": "python", "old": None, "new": text, "old_blob": "0" * 40,
           "new_blob": "b" * 40, "diff": "", "added": 1, "deleted": 0, "hunks": 1, "sstub": None}
    write_shard(tmp_path / "mined" / "shards" / "lib" / "00000.parquet",
                [row, {**row, "path": None, "new_blob": "d" * 40}, {**row, "path": "b.py", "author_time": None}])
    mined = synthesize(user_sources([str(tmp_path / "mined")]), tmp_path / "out2", SynthConfig(seed=2, per_file=2),
                       jobs=1, show_progress=False)
    assert mined.files_used == 1 and mined.skipped.get("incomplete_row") == 2


def test_a_file_whose_name_is_not_utf8_is_counted_and_skipped(tmp_path):
    """Rows name their file, and parquet holds text: such a name is skipped and counted, the rest is used."""
    import os

    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(STDLIB / "bisect.py", src / "good.py")
    (src / os.fsdecode(b"caf\xe9.py")).write_bytes((STDLIB / "colorsys.py").read_bytes())
    result = _cli("synth", str(src), "--out", str(tmp_path / "out"), "--per-file", "1", "--jobs", "1", "--json",
                  "--no-progress")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["skipped"] == {"undecodable_name": 1}
    assert {r["path"] for r in _rows(tmp_path / "out")} == {"good.py"}
