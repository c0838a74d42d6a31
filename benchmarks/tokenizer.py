"""Syntax-aware tokenizer vs plain byte-level BPE: throughput and compression, side by side in one run.

    python benchmarks/tokenizer.py [--repeats 7] [--jobs 2] [--train-mb 20] [--vocab-size 8192]

Held-out files: every .py file of the installed flask and requests packages (reserved for evaluation,
so never in any vocabulary's training data). Baseline: a plain Hugging Face byte-level BPE (GPT-2
pre-tokenizer regex) trained on the same sample, at the same vocabulary size, as a syntax-aware BPE
trained here; the shipped vocabulary is measured too. Throughput is the median of --repeats runs,
with the parse cache off (every run parses every file), for one process and for --jobs processes
(the baseline uses the Rust thread pool of `encode_batch_fast`, as the syntax-aware path does). Compression is reported both on whole
files and line by line (each line encoded alone, as lines are in a marked code window).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sysconfig
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from patchcoder.tokenizer.corpus import bpe_inputs, source_files
from patchcoder.tokenizer.lexer import Lexer
from patchcoder.tokenizer.vocab import CodeTokenizer, train

_WORKER: CodeTokenizer | None = None


def _init(tok: CodeTokenizer) -> None:
    global _WORKER
    _WORKER = tok
    _WORKER.lexer = Lexer(cache_size=0)


def _encode_chunk(texts: list[str]) -> int:
    return sum(len(ids) for ids in _WORKER.encode_batch(texts, "python"))


def held_out_files() -> list[Path]:
    roots = {Path(p) for p in (sysconfig.get_paths()["purelib"], "/usr/lib/python3/dist-packages")}
    files = []
    for root in sorted(roots):
        for package in ("flask", "requests"):
            files += sorted((root / package).rglob("*.py"))
        if files:
            break
    return files


def plain_bpe(texts: list[str], vocab_size: int):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    hf = Tokenizer(models.BPE())
    hf.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    hf.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  min_frequency=2, max_token_length=32, show_progress=False)
    hf.train_from_iterator(texts, trainer)
    return hf


def interleaved_medians(fns, repeats: int) -> list[float]:
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for fn, bucket in zip(fns, times, strict=True):
            started = time.perf_counter()
            fn()
            bucket.append(time.perf_counter() - started)
    print("  raw seconds per run:", [[round(t, 3) for t in bucket] for bucket in times])
    return [statistics.median(bucket) for bucket in times]


def compare_scripts(mined: str) -> None:
    """Tokens of edit_script's scripts vs scripts made from difflib's line opcodes, on mined changes."""
    import difflib

    import pyarrow.parquet as pq

    from patchcoder.mining.shards import shard_files
    from patchcoder.tokenizer import edit_script
    from patchcoder.tokenizer.edits import split_lines

    tok = CodeTokenizer.default()
    kinds = {"insert": "INSERT", "delete": "DELETE", "replace": "REPLACE"}

    def cost(kind: str, text: str, language: str | None) -> int:  # opcode, markers, text, <END>
        return (2 if kind == "INSERT" else 3) + (len(tok.encode(text, language)) + 1 if kind != "DELETE" else 0)

    totals = {"ours": 0, "difflib": 0, "ours_ops": 0, "difflib_ops": 0, "shorter": 0, "longer": 0, "rows": 0}
    for shard in shard_files(mined):
        for row in pq.read_table(shard, columns=["old", "new", "language"]).to_pylist():
            old, new, language = row["old"], row["new"], row["language"]
            if old is None or new is None:
                continue
            script = edit_script(old, new, language, lexer=tok.lexer)
            ours = sum(cost(op.kind, op.text, language) for op in script.ops)
            a, b = split_lines(old), split_lines(new)
            opcodes = [o for o in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes() if o[0] != "equal"]
            theirs = sum(cost(kinds[tag], "".join(b[j1:j2]), language) for tag, _, _, j1, j2 in opcodes)
            totals["rows"] += 1
            totals["ours"] += ours
            totals["difflib"] += theirs
            totals["ours_ops"] += len(script.ops)
            totals["difflib_ops"] += len(opcodes)
            totals["shorter"] += ours < theirs
            totals["longer"] += ours > theirs
    print(f"{totals['rows']} changes: edit_script {totals['ours']} tokens in {totals['ours_ops']} operations; "
          f"difflib line diff {totals['difflib']} tokens in {totals['difflib_ops']} operations "
          f"(ratio {totals['ours'] / max(1, totals['difflib']):.4f}); edit_script shorter for "
          f"{totals['shorter']} changes, longer for {totals['longer']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--train-mb", type=float, default=20.0, help="training sample per source (stdlib, include)")
    parser.add_argument("--vocab-size", type=int, default=8192)
    parser.add_argument("--sweep", metavar="SIZES", help="also compare vocabulary sizes, e.g. 4096,8192,16384,32768")
    parser.add_argument("--mined", metavar="DIR",
                        help="only compare edit-script lengths with difflib line diffs on a mined dataset")
    args = parser.parse_args()
    if args.mined:
        compare_scripts(args.mined)
        return

    files = held_out_files()
    texts = [f.read_text(encoding="utf-8") for f in files]
    n_bytes = sum(len(t.encode()) for t in texts)
    lines = [line for t in texts for line in t.splitlines(keepends=True)]
    print(f"held-out: {len(files)} files of flask + requests, {n_bytes / 1e6:.2f} MB, {len(lines)} lines")

    budget = int(args.train_mb * 1e6)
    stdlib = sysconfig.get_paths()["stdlib"]
    sample = [*source_files(stdlib, budget, exclude=["site-packages"]), *source_files("/usr/include", budget // 2)]
    sample_bytes = sum(p.stat().st_size for p, _ in sample)
    print(f"training sample: {len(sample)} files (stdlib + /usr/include), {sample_bytes / 1e6:.1f} MB, "
          f"vocabulary size {args.vocab_size}")
    sample_inputs = list(bpe_inputs(sample, jobs=args.jobs))
    ours = train(iter(sample_inputs), args.vocab_size)
    plain = plain_bpe([p.read_bytes().decode("utf-8", "replace") for p, _ in sample], args.vocab_size)
    shipped = CodeTokenizer.default()

    # ---- compression
    def bytes_per_token(count: int) -> float:
        return n_bytes / count

    plain_file = sum(len(e.ids) for e in plain.encode_batch_fast(texts))
    plain_line = sum(len(e.ids) for e in plain.encode_batch_fast(lines))
    rows = [("plain byte-level BPE (same sample, same size)", plain_file, plain_line)]
    for name, tok in (("syntax-aware BPE (same sample, same size)", ours), ("syntax-aware, shipped vocabulary", shipped)):
        tok.lexer = Lexer(cache_size=0)
        file_count = sum(len(ids) for ids in tok.encode_batch(texts, "python"))
        line_count = sum(len(ids) for t in texts for ids in tok.encode_lines(t, "python"))
        rows.append((name, file_count, line_count))
    print("\ncompression (bytes per token; higher is better)        whole files   line by line")
    for name, file_count, line_count in rows:
        print(f"  {name:<52} {bytes_per_token(file_count):>10.3f} {bytes_per_token(line_count):>13.3f}")
    print(f"  ratio syntax-aware / plain (same sample):            {plain_file / rows[1][1]:>10.3f} "
          f"{plain_line / rows[1][2]:>13.3f}")

    if args.sweep:
        print("\nvocabulary size sweep (syntax-aware, same sample)   bytes/token: files   line by line")
        for size in [int(x) for x in args.sweep.split(",")]:
            swept = train(iter(sample_inputs), size)
            file_count = sum(len(ids) for ids in swept.encode_batch(texts, "python"))
            line_count = sum(len(ids) for t in texts for ids in swept.encode_lines(t, "python"))
            print(f"  {size:>6} ids {'':<39} {bytes_per_token(file_count):>8.3f} {bytes_per_token(line_count):>13.3f}")

    # ---- throughput
    tok = shipped
    tok.lexer = Lexer(cache_size=0)
    chunks = [texts[k::args.jobs * 4] for k in range(args.jobs * 4)]
    with ProcessPoolExecutor(args.jobs, initializer=_init, initargs=(tok,)) as pool:
        for _ in range(2):  # warm the workers (grammar loading, word caches)
            list(pool.map(_encode_chunk, chunks))
        # the three are interleaved in each repeat, so that load from other work on the machine hits all alike
        t_plain, t_ours_1, t_ours_n = interleaved_medians([
            lambda: plain.encode_batch_fast(texts),
            lambda: tok.encode_batch(texts, "python"),
            lambda: list(pool.map(_encode_chunk, chunks)),
        ], args.repeats)
    tokens_plain, tokens_ours = rows[0][1], rows[2][1]
    print(f"\nthroughput (median of {args.repeats} runs, parse cache off)      MB/s    Mtokens/s")
    for name, seconds, tokens in (
        ("plain BPE, encode_batch_fast (Rust threads)", t_plain, tokens_plain),
        ("syntax-aware, 1 process", t_ours_1, tokens_ours),
        (f"syntax-aware, {args.jobs} processes", t_ours_n, tokens_ours),
    ):
        print(f"  {name:<52} {n_bytes / seconds / 1e6:>7.2f} {tokens / seconds / 1e6:>10.3f}")
    print(f"  ratio syntax-aware ({args.jobs} processes) / plain, MB/s:        {t_plain / t_ours_n:>7.3f}")
    print(f"  ratio syntax-aware (1 process) / plain, MB/s:             {t_plain / t_ours_1:>7.3f}")
    print(f"\nmachine: {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
