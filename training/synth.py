"""A `patchcoder synth` run: clean source files → injected single-statement bugs → (buggy → fixed) rows in the
miner's parquet schema (mining/shards.py), so synthetic pairs flow through the tokenizer like mined commits.

Each kept file yields up to `per_file` examples, each with one bug (the rewrite engine, tokenizer/rewrites/): `old` is the buggy
file, `new` the original, `sstub` the fix's class, `repo` a source name such as `synth:stdlib/json` (one per
top-level package, so a split by repository keeps packages apart). A file's bugs come from a generator seeded
by (seed, repo, path), so the rows are the same for any `--jobs`, and a resumed run ends with exactly the rows
of an uninterrupted one.

Layout of an output folder (as the miner's; a path or an fsspec URL, ground/storage.py): manifest.json, and
shards/<unit>.parquet written atomically; the run goes through the miner's plan and worker pool (mining/plan.py,
mining/pool.py).
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import hashlib
import json
import os
import random
import re
import sys
import sysconfig
import time
from pathlib import Path

from patchcoder.ground.errors import PatchcoderError, UsageError
from patchcoder.ground.manifest import NAME as MANIFEST
from patchcoder.ground.manifest import Manifest
from patchcoder.ground.storage import Location
from patchcoder.mining import shards
from patchcoder.mining.plan import Unit, cut
from patchcoder.mining.pool import Channel, make_pool, progress_bar

FORMAT = "patchcoder-synth/1"
ZERO_SHA = "0" * 40

# Never training data (DATA.md): the repositories held out for evaluation on code the model has never seen,
# each refused under its repository and import names anywhere on a path (a vendored copy included).
HELD_OUT = {
    "pallets/flask": ("flask",),            # held-out synthetic bugs and real commits
    "psf/requests": ("requests",),          # held-out synthetic bugs and real commits
    "pallets/jinja": ("jinja", "jinja2"),   # the validation split
    "Textualize/rich": ("rich",),           # the test split
    # mined only for the real-bug-fix evaluation sets (issue 13)
    "tornadoweb/tornado": ("tornado",),
    "scrapy/scrapy": ("scrapy",),
    "networkx/networkx": ("networkx",),
    "httpie/cli": ("httpie",),
    "encode/starlette": ("starlette",),
    "aio-libs/aiohttp": ("aiohttp",),
}
RESERVED = frozenset(name for names in HELD_OUT.values() for name in names)
# Benchmark collections and evaluation harnesses, by a path component (DATA.md).
_BENCHMARK = re.compile(
    r"^(human_?eval|mbpp|swe_?bench\w*|defects4j|bugs_?in_?py|quix_?bugs|codexglue|bigcodebench|evalplus|ds_?1000|"
    r"livecodebench|lm_eval|bigcode_eval\w*|code_?contests|many_?bugs|bears|bugswarm|bugs_?jar|cruxeval|repobench|"
    r"crosscodeeval|typebugs|apps_eval|codenet|manysstubs\w*|tssb\w*)$",
    re.IGNORECASE,
)
_TEST_DIRS = frozenset({"test", "tests", "idle_test", "__tests__"})
_TEST_FILE = re.compile(r"^(test_.*|.*_test|conftest)\.py$|\.(test|spec)\.[cm]?[jt]sx?$")
_VENDORED = frozenset({"_vendor", "vendor", "vendored", "_vendored", "third_party", "thirdparty", "3rdparty",
                       "node_modules", "extern", "_extern"})
_SKIP_DIRS = frozenset({"__pycache__", "site-packages", "dist-packages", "lib-dynload", ".git", ".hg", ".svn",
                        ".tox", ".venv", "venv"})
PROJECT_ROOT = Path(__file__).resolve().parent.parent  # never train on patchcoder itself

READ_REASONS = ("too_large", "undecodable", "binary", "generated", "minified", "unparsable", "no_site")
PATH_REASONS = ("reserved_for_eval", "benchmark", "test_suite", "vendored", "project", "duplicate")


@dataclasses.dataclass(frozen=True)
class SynthConfig:
    """What decides the output of a run (a resumed run must ask for the same)."""

    seed: int = 0
    """Seed of the bug generator; the same seed and files give the same rows."""
    per_file: int = 4
    """Examples (distinct bugs, one each) drawn from each file."""
    max_files: int | None = None
    """Use at most this many files, sampled with the seed from all eligible ones (None: all)."""
    max_bytes: int = 200_000
    """Skip files larger than this (whole files go into each row, twice)."""
    kinds: tuple[str, ...] | None = None
    """Mutation classes to draw from (None: all of patchcoder.tokenizer.rewrites.KINDS)."""
    mix: tuple[tuple[str, float], ...] | None = None
    """The class mix: (class, factor) pairs multiplying the classes' draw weights (rewrites.DRAW_WEIGHTS); a
    class not named keeps its weight, a factor of 0 never draws it. None: DRAW_WEIGHTS as they are."""
    messages: str = "templated"
    """'templated' ("Fix wrong comparison operator") or 'empty' commit messages."""
    include_tests: bool = False
    """Also use test suites (test/, tests/, test_*.py), excluded by default."""
    evaluation_set: bool = False
    """Make an evaluation set: the projects held out for evaluation (HELD_OUT: flask, requests, jinja, rich, ...)
    are allowed, and only they are never training data; benchmark collections stay excluded."""
    files_per_shard: int = 50
    """Files per work unit and shard."""
    languages: tuple[str, ...] = ("python",)
    """Languages of the files to use (any of patchcoder.tokenizer.rewrites.LANGUAGES)."""


@dataclasses.dataclass(frozen=True)
class Source:
    """A directory (or file) of source code. `per_package` names a repository per top-level package
    (synth:stdlib/json) instead of one for the whole source (synth:myproject)."""

    label: str
    root: str
    per_package: bool = False
    mined: bool = False  # the root holds the miner's parquet shards: use the latest `new` text of each file


@dataclasses.dataclass(frozen=True)
class SourceFile:
    repo: str   # synth:<source label>/<top-level package>
    path: str   # posix path relative to the source root
    abspath: str
    language: str = "python"
    row: int | None = None  # for mined sources: the row of the parquet file `abspath` whose `new` is the text


@dataclasses.dataclass
class SynthSummary:
    """What a run did: rows per class, files skipped per reason, and throughput of this invocation."""

    files_seen: int = 0
    files_used: int = 0
    examples: int = 0
    shards: int = 0
    repos: int = 0
    kinds: dict[str, int] = dataclasses.field(default_factory=dict)
    skipped: dict[str, int] = dataclasses.field(default_factory=dict)
    seconds: float = 0.0
    cpu_seconds: float = 0.0  # CPU time of the work units made by this invocation (all workers)
    examples_this_run: int = 0
    resumed_units: int = 0

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)

    def table_rows(self) -> list[tuple[str, int | str]]:
        """The rows of the closing summary table."""
        rows: list[tuple[str, int | str]] = [
            ("files seen", self.files_seen),
            ("files used", self.files_used),
            ("repositories (synth:…)", self.repos),
            ("examples (rows)", self.examples),
            ("shards", self.shards),
        ]
        rows += [(f"[dim]class: {kind}", count) for kind, count in self.kinds.items()]
        rows += [(f"[dim]skipped file: {reason}", count) for reason, count in self.skipped.items()]
        rate = self.examples_this_run / self.seconds if self.seconds else 0.0
        rows.append(("time", f"{self.seconds:,.1f} s"))
        rows.append(("throughput", f"{rate:,.1f} examples/s"))
        if self.cpu_seconds:
            rows.append(("work units' CPU time", f"{self.cpu_seconds:,.1f} s "
                         f"({self.examples_this_run / self.cpu_seconds:,.0f} examples per CPU-second)"))
        if self.resumed_units:
            rows.append(("units resumed from an earlier run", self.resumed_units))
        return rows


# ---------------------------------------------------------------------------------------------
# Sources and files


def default_sources() -> list[Source]:
    """The installed standard library and every site-packages directory, a repository per top-level package."""
    import site

    paths = sysconfig.get_paths()
    sources = [Source("stdlib", paths["stdlib"], per_package=True)]
    seen = {os.path.realpath(paths["stdlib"])}
    for root in [paths["purelib"], paths["platlib"], *site.getsitepackages()]:
        real = os.path.realpath(root)
        if os.path.isdir(root) and real not in seen:
            seen.add(real)
            sources.append(Source("site-packages", root, per_package=True))
    return sources


def user_sources(paths: list[str], per_package: bool = False) -> list[Source]:
    """Named files or directories, one repository each (synth:<name>), or with `per_package` one per top-level
    package or module of each directory (synth:<name>/<package>, as for site-packages: a directory that packages
    were installed into with `pip install --target`); a missing path is a usage error.
    The names `stdlib` and `site-packages` (when no such path exists here) mean the installed ones."""
    sources = []
    for raw in paths:
        if raw in ("stdlib", "site-packages") and not os.path.exists(raw):
            sources.extend(s for s in default_sources() if s.label == raw)
            continue
        if not os.path.exists(raw):
            raise UsageError(f"{raw} does not exist (expected a directory or file of source code)")
        path = os.path.abspath(raw)
        label = os.path.basename(path.rstrip(os.sep)) or "root"
        mined = _is_mined(path)
        directory = os.path.isdir(path)
        sources.append(Source(label if directory else os.path.splitext(label)[0], path,
                              per_package=per_package and directory and not mined, mined=mined))
    return sources


def _is_mined(path: str) -> bool:
    """A parquet file, or a folder of parquet shards (`patchcoder mine` or `patchcoder split` output)."""
    if os.path.isfile(path):
        return path.endswith(".parquet")
    if (Path(path) / MANIFEST).exists():
        try:
            return Manifest.read(path, shards.FORMAT, "mining") is not None
        except (OSError, PatchcoderError):
            return False
    return any(Path(path).glob("*.parquet")) or any(Path(path).glob("shards/**/*.parquet"))


def exclusion_reason(parts: tuple[str, ...], include_tests: bool = False, root_parts: tuple[str, ...] = (),
                     evaluation_set: bool = False) -> str | None:
    """Why a file must not feed training, else None. `parts` is its path relative to its source root, and
    `root_parts` the root's own absolute path: reserved projects and benchmarks are refused anywhere on the
    path (a source named .../site-packages/flask is flask), the other rules look inside the source only."""
    stems = [p[:-3] if p.endswith(".py") else p for p in parts]
    lowered = [s.lower() for s in stems]
    anywhere = [p.lower() for p in root_parts] + lowered
    if not evaluation_set and any(s in RESERVED for s in anywhere):
        return "reserved_for_eval"
    if any(_BENCHMARK.match(s) for s in anywhere):
        return "benchmark"
    if any(s in _VENDORED for s in lowered[:-1]):
        return "vendored"
    if lowered and (lowered[0] == "patchcoder" or parts[-1].startswith("__editable__")):
        return "project"
    if not include_tests and (any(s in _TEST_DIRS for s in lowered[:-1]) or _TEST_FILE.search(parts[-1])):
        return "test_suite"
    return None


REPO_PREFIX = "synth:"
"""what the `repo` of every synthetic row begins with"""


def is_synthetic(row: dict) -> bool:
    """Whether a row was made by `synth` (one bug per row) rather than mined from a commit."""
    return str(row.get("repo") or "").startswith(REPO_PREFIX)


def _repo_name(source: Source, parts: tuple[str, ...]) -> str:
    if not source.per_package:
        return f"{REPO_PREFIX}{source.label}"
    top = parts[0][:-3] if len(parts) == 1 and parts[0].endswith(".py") else parts[0]
    return f"{REPO_PREFIX}{source.label}/{top}"


def list_files(sources: list[Source], config: SynthConfig, skipped: collections.Counter) -> list[SourceFile]:
    """The eligible Python files of `sources`, in a stable order; exclusions are counted in `skipped`.

    Exact duplicates (same bytes, e.g. a module vendored twice) and symlinked copies are kept once.
    """
    roots = {os.path.realpath(s.root) for s in sources}
    found: list[SourceFile] = []
    sizes: list[int] = []
    seen_real: set[str] = set()
    for source in sources:
        if source.mined:
            mined = _mined_files(source, config, skipped)
            found.extend(mined)
            sizes.extend([-1] * len(mined))  # already unique by blob id
            continue
        root = source.root
        root_parts = Path(os.path.realpath(root)).parts[1:]
        if os.path.isfile(root):
            root_parts = root_parts[:-1]
            entries = [(os.path.basename(root), root)]
            base = os.path.dirname(root)
        else:
            entries = []
            base = root
            for directory, dirs, files in os.walk(root):
                dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS and not d.startswith(".")
                                 and os.path.realpath(os.path.join(directory, d)) not in roots)
                for name in sorted(files):
                    if _language(name, config.languages) is not None:
                        full = os.path.join(directory, name)
                        entries.append((os.path.relpath(full, base), full))
        for rel, full in entries:
            real = os.path.realpath(full)
            if real in seen_real:
                continue
            seen_real.add(real)
            parts = tuple(Path(rel).parts)
            if not _text_name(rel):  # the rows name it (parquet holds UTF-8 text only)
                skipped["undecodable_name"] += 1
                continue
            reason = exclusion_reason(parts, config.include_tests, root_parts, config.evaluation_set)
            if reason is None and _project_code(real):
                reason = "project"
            if reason is not None:
                skipped[reason] += 1
                continue
            try:
                size = os.path.getsize(real)
            except OSError:
                skipped["unreadable"] += 1
                continue
            language = _language(parts[-1], config.languages)
            if language is None:
                continue
            found.append(SourceFile(_repo_name(source, parts), Path(rel).as_posix(), full, language))
            sizes.append(size)
    found, sizes = _drop_duplicates(found, sizes, skipped)
    if config.max_files is not None and len(found) > config.max_files:
        chosen = random.Random(f"files:{config.seed}").sample(range(len(found)), config.max_files)
        found = [found[i] for i in sorted(chosen)]
    return found


def _text_name(name: str) -> bool:
    """Whether a file's name is text: one of other bytes comes from os.walk with surrogate escapes."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _mined_files(source: Source, config: SynthConfig, skipped: collections.Counter) -> list[SourceFile]:
    """The latest `new` text of each (repo, path) in mined shards; the rows keep the mined repository's name,
    so a split by repository puts a repository's synthetic bugs where its real commits are."""
    files = [source.root] if os.path.isfile(source.root) else shards.shard_files(source.root)
    latest: dict[tuple[str, str], tuple[int, str, int, str, str]] = {}
    columns = ["repo", "path", "language", "change", "new_blob", "author_time"]
    for file in files:
        table = shards.read_shard(file, columns)
        for i, (repo, path, language, change, blob, when) in enumerate(
                zip(*(table.column(c).to_pylist() for c in columns), strict=True)):
            if None in (repo, path, blob, when):
                skipped["incomplete_row"] += 1
                continue
            if change == "D" or language not in config.languages or path.endswith((".pyi", ".d.ts")):
                continue
            if (repo, path) not in latest or when >= latest[(repo, path)][0]:
                latest[(repo, path)] = (when, file, i, blob, language)
    found = []
    blobs: set[str] = set()
    for (repo, path), (_, file, i, blob, language) in sorted(latest.items()):
        reason = exclusion_reason(tuple(Path(path).parts), config.include_tests, tuple(repo.split("/")),
                                  config.evaluation_set)
        if reason is None and blob in blobs:
            reason = "duplicate"
        if reason is not None:
            skipped[reason] += 1
            continue
        blobs.add(blob)
        found.append(SourceFile(repo, path, file, language, i))
    return found


@functools.lru_cache(maxsize=2)
def _mined_texts(path: str) -> list[str | None]:
    """The `new` column of one mined shard (a unit reads its rows in order, so two cached files suffice)."""
    return shards.read_shard(path, ["new"]).column("new").to_pylist()


def _language(name: str, languages: tuple[str, ...]) -> str | None:
    """The language of a file name when it is one we use; stubs and declaration files hold no code to break."""
    from patchcoder.ground.languages import language_of

    if name.endswith((".pyi", ".d.ts")):
        return None
    language = language_of(name)
    return language if language in languages else None


def _project_code(path: str, root: Path = PROJECT_ROOT) -> bool:
    """Whether `path` is patchcoder's own code: inside its checkout `root`, but not inside a Python environment
    kept there (a `.venv` in the checkout holds other projects' installed packages, and the standard library's
    and site-packages' files are what `synth` reads by default)."""
    try:
        parts = Path(path).relative_to(root).parts
    except ValueError:
        return False
    return not any(_is_environment(root.joinpath(*parts[:k])) for k in range(1, len(parts)))


@functools.lru_cache(maxsize=256)
def _is_environment(directory: Path) -> bool:
    return (directory / "pyvenv.cfg").is_file()


def _drop_duplicates(files: list[SourceFile], sizes: list[int], skipped) -> tuple[list[SourceFile], list[int]]:
    """Keep the first of files with identical bytes (only files sharing a size are read)."""
    by_size = collections.Counter(sizes)
    digests: set[bytes] = set()
    kept, kept_sizes = [], []
    for file, size in zip(files, sizes, strict=True):
        if size >= 0 and by_size[size] > 1:
            try:
                digest = hashlib.blake2b(Path(file.abspath).read_bytes(), digest_size=16).digest()
            except OSError:
                digest = None
            if digest is not None:
                if digest in digests:
                    skipped["duplicate"] += 1
                    continue
                digests.add(digest)
        kept.append(file)
        kept_sizes.append(size)
    return kept, kept_sizes


# ---------------------------------------------------------------------------------------------
# Rows


def git_blob_id(data: bytes) -> str:
    """The id git gives a blob with these bytes."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def example_row(file: SourceFile, original: str, rewrite, seed: int, messages: str = "templated") -> dict:
    """One row of the miner's schema: `old` the buggy file, `new` the original (the fix is the inverse)."""
    import pygit2

    buggy = rewrite.code
    old, new = buggy.encode(), original.encode()
    ident = f"synth\0{file.repo}\0{file.path}\0{seed}\0{rewrite.kind}\0{rewrite.start}\0{rewrite.end}\0{rewrite.text}"
    patch = pygit2.Patch.create_from(old, new, old_as_path=file.path, new_as_path=file.path, context_lines=3)
    _, added, deleted = patch.line_stats
    return {
        "repo": file.repo,
        "commit": hashlib.sha1(ident.encode()).hexdigest(),
        "parent": ZERO_SHA,
        "author_time": 0,
        "message": rewrite.message if messages == "templated" else "",
        "path": file.path,
        "old_path": file.path,
        "change": "M",
        "language": file.language,
        "old": buggy,
        "new": original,
        "old_blob": git_blob_id(old),
        "new_blob": git_blob_id(new),
        "diff": patch.text,
        "added": added,
        "deleted": deleted,
        "hunks": len(patch.hunks),
        "sstub": rewrite.sstub,
    }


def file_examples(file: SourceFile, config: SynthConfig) -> tuple[list[tuple[str, dict]], str | None]:
    """([(mutation class, row), ...], None) for a usable file, or ([], skip reason)."""
    from patchcoder.mining.filters import FilterConfig, content_reason
    from patchcoder.tokenizer.rewrites import draw_weights, inject_bugs, parses

    try:
        if file.row is not None:
            data = (_mined_texts(file.abspath)[file.row] or "").encode()
        elif not os.path.isfile(file.abspath):  # a named pipe or a device: reading it could wait forever
            return [], "unreadable"
        elif os.path.getsize(file.abspath) > config.max_bytes:
            return [], "too_large"
        else:
            data = Path(file.abspath).read_bytes()
    except OSError:
        return [], "unreadable"
    if len(data) > config.max_bytes:
        return [], "too_large"
    reason = content_reason(data, FilterConfig())
    if reason is not None:
        return [], reason
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return [], "undecodable"
    if not parses(text, file.language):
        return [], "unparsable"
    rng = random.Random(f"{config.seed}\0{file.repo}\0{file.path}")
    weights = None if config.mix is None else draw_weights(config.mix)
    rewrites = inject_bugs(text, rng, config.per_file, file.language, kinds=config.kinds, weights=weights)
    if not rewrites:
        return [], "no_site"
    return [(r.kind, example_row(file, text, r, config.seed, config.messages)) for r in rewrites], None


# ---------------------------------------------------------------------------------------------
# Work units


def synth_unit(unit: Unit, channel: Channel, *, config: SynthConfig, out: str) -> dict:
    """Make one unit's rows (its `items` are source files) and write its shard; returns its counts (rows
    never cross processes)."""
    cpu_started = time.process_time()
    rows: list[dict] = []
    skipped: collections.Counter = collections.Counter()
    kinds: collections.Counter = collections.Counter()
    for file in unit.items:
        file_rows, reason = file_examples(file, config)
        if reason is not None:
            skipped[reason] += 1
            continue
        for kind, row in file_rows:
            rows.append(row)
            kinds[kind] += 1
    if rows:
        shards.write_shard(Location(out) / unit.shard, rows)
    return {"shard": unit.shard if rows else None, "rows": len(rows), "files": len(unit.items),
            "files_used": len(unit.items) - sum(skipped.values()), "kinds": dict(kinds), "skipped": dict(skipped),
            "cpu_seconds": round(time.process_time() - cpu_started, 3)}


# ---------------------------------------------------------------------------------------------
# The run


def _request(sources, config: SynthConfig) -> dict:
    config_dict = {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(config).items()}
    if config.mix is None:  # as runs made before the mix existed recorded their request: they still resume
        del config_dict["mix"]
    else:  # as JSON reads it back: lists, not tuples, or a run with a mix would never resume
        config_dict["mix"] = [[kind, factor] for kind, factor in config.mix]
    return {"sources": [dataclasses.asdict(s) for s in sources], "config": config_dict}


def synthesize(
    sources: list[Source] | None,
    out: str | os.PathLike | Location,
    config: SynthConfig | None = None,
    *,
    jobs: int | None = None,
    resume: bool = False,
    show_progress: bool = True,
    ray: str | None = None,
) -> SynthSummary:
    """Write synthetic bug-fix pairs from `sources` (None: the standard library and site-packages) under `out`
    (a folder path or an fsspec URL)."""
    from patchcoder.tokenizer.rewrites import LANGUAGES, draw_weights, select_kinds

    started = time.perf_counter()
    config = config or SynthConfig()
    kinds = select_kinds(config.kinds)  # unknown names, or a mix that draws nothing, are usage errors before any work
    if config.mix is not None and not any(w > 0 for k, w in draw_weights(config.mix).items() if k in kinds):
        raise UsageError("the mix gives every class to draw a factor of 0")
    unknown = set(config.languages) - set(LANGUAGES)
    if unknown or not config.languages:
        raise UsageError(f"no rewrite engine for {', '.join(sorted(unknown)) or 'no language'}; "
                         f"supported: {', '.join(LANGUAGES)}")
    if config.messages not in ("templated", "empty"):
        raise UsageError(f"messages must be 'templated' or 'empty', not {config.messages!r}")
    jobs = max(1, jobs or os.cpu_count() or 1)
    out = Location(out)
    sources = sources if sources is not None else default_sources()
    request = _request(sources, config)

    manifest = Manifest.open(out, FORMAT, "synth", resume=resume, same={"request": request},
                             what="options or sources")
    skipped: collections.Counter = collections.Counter()
    files = list_files(sources, config, skipped)
    digest = hashlib.sha1("\n".join(f"{f.repo}\0{f.path}" for f in files).encode()).hexdigest()
    if manifest is not None and manifest.get("files_digest") != digest:
        raise UsageError(f"the files under the sources changed since the run in {out} started; "
                         "--resume needs the same files (start a new run in another --out)")
    if manifest is None:
        manifest = Manifest.create(out, {"format": FORMAT, "request": request, "files_digest": digest,
                                         "path_skips": dict(skipped), "complete": False})
    units = cut(files, config.files_per_shard)
    done = manifest.units
    todo = [u for u in units if u.key not in done]
    pool = make_pool(jobs, todo, ray=ray, died="a synth worker process died ({error}); rerun with --resume "
                                      "(and --jobs 1 to find the file that kills it)")

    with progress_bar("files", rows="examples", enabled=show_progress) as progress:
        rows = sum(entry["rows"] for entry in done.values())
        task = progress.add_task("synth", total=len(files), completed=len(files) - sum(len(u.items) for u in todo),
                                 rows=rows)

        def commit(unit: Unit, result: dict) -> None:  # finished units are committed: --resume redoes only the rest
            nonlocal rows
            manifest.record(unit.key, result)
            rows += result["rows"]
            progress.update(task, advance=result["files"], rows=rows)

        pool.run(todo, functools.partial(synth_unit, config=config, out=str(out)), commit)

    manifest.complete()
    summary = summarise(manifest)
    summary.seconds = time.perf_counter() - started
    summary.examples_this_run = sum(done[u.key]["rows"] for u in todo)
    summary.cpu_seconds = round(sum(done[u.key].get("cpu_seconds", 0.0) for u in todo), 3)
    summary.resumed_units = len(units) - len(todo)
    summary.repos = len({f.repo for f in files})
    return summary


def summarise(manifest: Manifest) -> SynthSummary:
    kinds: collections.Counter = collections.Counter()
    skipped: collections.Counter = collections.Counter(manifest.get("path_skips", {}))
    summary = SynthSummary()
    for entry in manifest.units.values():
        kinds.update(entry["kinds"])
        skipped.update(entry["skipped"])
        summary.files_seen += entry["files"]
        summary.files_used += entry["files_used"]
        summary.examples += entry["rows"]
        summary.shards += entry["shard"] is not None
    summary.files_seen += sum(manifest.get("path_skips", {}).values())
    summary.kinds = dict(sorted(kinds.items(), key=lambda kv: (-kv[1], kv[0])))
    summary.skipped = dict(sorted(skipped.items()))
    return summary


def main_json(summary: SynthSummary) -> None:
    json.dump(summary.as_dict(), sys.stdout, indent=1)
    sys.stdout.write("\n")
