"""Real single-statement bug fixes from held-out histories: the evaluation sets of issue 13, item 4.

Reads folders of mined shards (`patchcoder mine` or `patchcoder split` output) and keeps the rows that

1. come from a repository held out from every training set (`patchcoder.training.synth.HELD_OUT`: flask,
   requests, jinja, rich, and the repositories mined for this purpose); rows of any other repository are
   refused, so a training repository cannot slip in;
2. are Python files changed in place (`change` M or R) whose commit message speaks of a fix: FIX_MESSAGE below,
   case-insensitive and word-bounded (fix/fixes/fixed/fixing, bug/bugfix/hotfix, typo, wrong, incorrect,
   correct/corrected/correctly, broken, regression, crash, error, mistake, oops);
3. are single-statement changes: the miner's `sstub` column is set (one line removed, one added, and their
   code lexemes differ: tokenizer/sstub.py);
4. change code, not only a docstring or a comment: the two files' ASTs differ once docstrings are removed
   (files that do not parse with this Python, e.g. Python 2 code, are compared token by token without
   comments);
5. are not the same change twice (the same repository, path and removed/added line, e.g. a fix cherry-picked
   onto a release branch: the first in commit order is kept);
6. and, with --train, do not appear in the training data (the same old → new blobs, or the same fixed file).

Rows keep the miner's schema unchanged (the `commit` column names the commit each fix came from) and are
shuffled with --seed, so `patchcoder eval --data OUT --limit N` reads a sample across repositories. Repositories
named by --valid-repos go to OUT_VALID (for choosing things), all others to OUT_TEST. Each output folder gets
shards/*.parquet and summary.json (counts per repository, per class and per filter; how many fixes change only
string literals, and how many are in test files: both kept).

    python training/recipe/realfixes.py /data/mined-heldout /data/splits/valid /data/splits/test \
        /data/mined-realfix-src --train /data/splits/train \
        --valid-repos pallets/jinja,httpie/cli,encode/starlette \
        --out-valid /data/realfix-valid --out-test /data/realfix-test --seed 0
"""

from __future__ import annotations

import argparse
import ast
import collections
import io
import json
import random
import re
import sys
import tokenize
import warnings
from pathlib import Path

FIX_MESSAGE = re.compile(
    r"\b(?:fix(?:e[sd]|ing|up)?|bugs?|bugfix(?:es)?|hotfix(?:es)?|typos?|wrong(?:ly)?|incorrect(?:ly)?"
    r"|correct(?:s|ed|ly|ion|ions)?|broken|regressions?|crash(?:es|ed|ing)?|errors?|mistakes?|oops)\b",
    re.IGNORECASE,
)
_DEFINITIONS = (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
_LAYOUT = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT,
           tokenize.ENCODING, tokenize.ENDMARKER}


def is_fix_message(message: str | None) -> bool:
    return bool(message) and FIX_MESSAGE.search(message) is not None


def _without_docstrings(tree: ast.AST) -> str:
    for node in ast.walk(tree):
        if isinstance(node, _DEFINITIONS) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
                node.body = node.body[1:]
    return ast.dump(tree)


def _tokens(text: str) -> list[tuple[int, str]] | None:
    try:
        return [(t.type, t.string) for t in tokenize.generate_tokens(io.StringIO(text).readline)
                if t.type not in _LAYOUT]
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return None


def changes_code(old: str, new: str) -> bool:
    """False when old and new differ only in docstrings, comments or layout."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return _without_docstrings(ast.parse(old)) != _without_docstrings(ast.parse(new))
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            pass
    a, b = _tokens(old), _tokens(new)
    return a is None or b is None or a != b


def strings_only(old: str, new: str) -> bool:
    """True when old and new differ only inside string literals (a message, a key, a template), which the
    summary counts apart: such fixes are kept, but read differently from code fixes."""
    def blanked(text: str) -> str:
        tree = ast.parse(text)
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, (str, bytes)):
                node.value = type(node.value)()
        return ast.dump(tree)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return blanked(old) == blanked(new)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            return False


def _changed_lines(diff: str) -> tuple[str, str]:
    removed = [line[1:] for line in diff.splitlines() if line.startswith("-") and not line.startswith("---")]
    added = [line[1:] for line in diff.splitlines() if line.startswith("+") and not line.startswith("+++")]
    return "\n".join(removed).strip(), "\n".join(added).strip()


def _shards(folder: str) -> list[str]:
    files = sorted(str(p) for p in Path(folder).rglob("*.parquet"))
    if not files:
        raise SystemExit(f"no parquet shards under {folder}")
    return files


def training_keys(folders: list[str]) -> tuple[set[tuple[str, str]], set[str]]:
    import pyarrow.parquet as pq

    pairs, fixed = set(), set()
    for folder in folders:
        for file in _shards(folder):
            table = pq.read_table(file, columns=["old_blob", "new_blob"])
            olds, news = table.column("old_blob").to_pylist(), table.column("new_blob").to_pylist()
            pairs.update(zip(olds, news, strict=True))
            fixed.update(news)
    return pairs, fixed


def select(folders: list[str], train: list[str] | None = None) -> tuple[list[dict], collections.Counter]:
    """The kept rows (in commit order per repository) and how many rows each filter dropped."""
    import pyarrow.parquet as pq

    from patchcoder.training.synth import HELD_OUT

    held_out = set(HELD_OUT)
    train_pairs, train_fixed = training_keys(train) if train else (set(), set())
    drops: collections.Counter = collections.Counter()
    columns_first = ["repo", "language", "change", "sstub", "message"]
    kept: list[dict] = []
    for folder in folders:
        for file in _shards(folder):
            head = pq.read_table(file, columns=columns_first).to_pylist()
            wanted = []
            for i, row in enumerate(head):
                if row["repo"] not in held_out:
                    drops["not_held_out"] += 1
                elif row["language"] != "python" or row["change"] not in ("M", "R"):
                    drops["not_python_modification"] += 1
                elif row["sstub"] is None:
                    drops["not_single_statement"] += 1
                elif not is_fix_message(row["message"]):
                    drops["message_not_a_fix"] += 1
                else:
                    wanted.append(i)
            if wanted:
                table = pq.read_table(file).take(wanted)
                kept.extend(table.to_pylist())
    out, seen = [], set()
    kept.sort(key=lambda r: (r["repo"], r["author_time"], r["commit"], r["path"]))
    for row in kept:
        if not changes_code(row["old"], row["new"]):
            drops["docstring_or_comment_only"] += 1
            continue
        key = (row["repo"], row["path"], *_changed_lines(row["diff"]))
        if key in seen:
            drops["repeated_change"] += 1
            continue
        seen.add(key)
        if (row["old_blob"], row["new_blob"]) in train_pairs or row["new_blob"] in train_fixed:
            drops["in_training_data"] += 1
            continue
        out.append(row)
    return out, drops


def write(rows: list[dict], out: Path, seed: int, drops: collections.Counter, sources: list[str],
          rows_per_shard: int = 500) -> dict:
    from patchcoder.mining.shards import write_shard

    if out.exists() and any(out.iterdir()):
        raise SystemExit(f"{out} is not empty; choose another folder")
    rows = sorted(rows, key=lambda r: (r["repo"], r["commit"], r["path"]))
    random.Random(seed).shuffle(rows)
    (out / "shards").mkdir(parents=True, exist_ok=True)
    for n, start in enumerate(range(0, len(rows), rows_per_shard)):
        write_shard(out / "shards" / f"{n:05d}.parquet", rows[start:start + rows_per_shard])
    by_repo = collections.Counter(r["repo"] for r in rows)
    by_class = collections.Counter(r["sstub"] for r in rows)
    by_repo_class: dict[str, dict[str, int]] = collections.defaultdict(dict)
    for (repo, cls), n in sorted(collections.Counter((r["repo"], r["sstub"]) for r in rows).items()):
        by_repo_class[repo][cls] = n
    summary = {
        "rows": len(rows),
        "commits": len({(r["repo"], r["commit"]) for r in rows}),
        "repos": dict(sorted(by_repo.items())),
        "classes": dict(by_class.most_common()),
        "repo_classes": dict(by_repo_class),
        "strings_only": sum(strings_only(r["old"], r["new"]) for r in rows),
        "test_files": sum(bool(re.search(r"(^|/)(tests?|testing)/|(^|/)test_[^/]*\.py$|_test\.py$", r["path"]))
                          for r in rows),
        "seed": seed,
        "sources": sources,
        "fix_message_regex": FIX_MESSAGE.pattern,
        "dropped_before_the_split": dict(sorted(drops.items())),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    return summary


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("mined", nargs="+", help="folders of mined shards (mine or split output)")
    p.add_argument("--train", action="append", default=[], metavar="DIR",
                   help="training shards: drop a fix whose old -> new pair or fixed file occurs there (repeatable)")
    p.add_argument("--valid-repos", default="pallets/jinja,httpie/cli,encode/starlette",
                   help="comma-separated repositories for the validation set (default: %(default)s)")
    p.add_argument("--out-valid", required=True, type=Path)
    p.add_argument("--out-test", required=True, type=Path)
    p.add_argument("--seed", type=int, default=0, help="order of the rows in the shards (default: 0)")
    args = p.parse_args(argv)
    valid = {r.strip() for r in args.valid_repos.split(",") if r.strip()}
    rows, drops = select(args.mined, args.train)
    sources = [str(Path(m).resolve()) for m in args.mined]
    for name, out, part in (("valid", args.out_valid, [r for r in rows if r["repo"] in valid]),
                            ("test", args.out_test, [r for r in rows if r["repo"] not in valid])):
        summary = write(part, out, args.seed, drops, sources)
        print(f"{name}: {summary['rows']} rows from {summary['commits']} commits -> {out}", file=sys.stderr)
        print(json.dumps({"set": name, **{k: summary[k] for k in ("rows", "commits", "repos", "classes",
                                                                  "strings_only", "test_files")}}))
    print(json.dumps({"dropped": dict(sorted(drops.items()))}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
