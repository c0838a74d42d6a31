"""Which programming language a file is in, from its path and (failing that) its shebang line.

Shared by the miner (the `language` column), the tokenizer (which grammar to parse with) and
`suggest`. Names are lower-case and match the tree-sitter grammar names where there is one.
"""

from __future__ import annotations

import posixpath
import re

EXTENSIONS: dict[str, str] = {
    ".py": "python", ".pyi": "python", ".pyw": "python",
    ".js": "javascript", ".mjs": "javascript", ".cjs": "javascript", ".jsx": "javascript",
    ".ts": "typescript", ".mts": "typescript", ".cts": "typescript", ".tsx": "tsx",
    ".java": "java",
    ".go": "go",
    ".rs": "rust",
    ".c": "c", ".h": "c",
    ".cc": "cpp", ".cpp": "cpp", ".cxx": "cpp", ".c++": "cpp", ".hh": "cpp", ".hpp": "cpp", ".hxx": "cpp",
    ".h++": "cpp", ".ipp": "cpp", ".inl": "cpp",
    ".cs": "c_sharp",
    ".rb": "ruby",
    ".php": "php",
    ".kt": "kotlin", ".kts": "kotlin",
    ".scala": "scala",
    ".swift": "swift",
    ".m": "objc", ".mm": "objc",
    ".sh": "bash", ".bash": "bash", ".zsh": "bash",
    ".lua": "lua",
    ".pl": "perl", ".pm": "perl",
    ".r": "r",
    ".jl": "julia",
    ".hs": "haskell",
    ".ml": "ocaml", ".mli": "ocaml",
    ".ex": "elixir", ".exs": "elixir",
    ".erl": "erlang",
    ".clj": "clojure",
    ".dart": "dart",
    ".zig": "zig",
    ".sql": "sql",
    ".html": "html", ".htm": "html",
    ".css": "css", ".scss": "scss",
    ".vue": "vue",
    ".cmake": "cmake",
    ".pyx": "cython", ".pxd": "cython",
}

FILENAMES: dict[str, str] = {
    "makefile": "make", "gnumakefile": "make", "cmakelists.txt": "cmake",
    "dockerfile": "dockerfile", "sconstruct": "python", "sconscript": "python",
    "rakefile": "ruby", "gemfile": "ruby",
}

_SHEBANG = re.compile(rb"^#![ \t]*(?:/usr)?(?:/local)?/bin/(?:env[ \t]+(?:-\S+[ \t]+)*)?([A-Za-z_.+-]+?)[0-9.]*(?:[ \t]|$)")
_SHEBANG_INTERPRETERS = {
    "python": "python", "pypy": "python", "node": "javascript", "nodejs": "javascript", "deno": "typescript",
    "sh": "bash", "bash": "bash", "zsh": "bash", "dash": "bash", "ruby": "ruby", "perl": "perl", "lua": "lua",
    "php": "php", "rscript": "r", "julia": "julia",
}

# Every name language_of can give (what `mine --languages` accepts).
LANGUAGES: tuple[str, ...] = tuple(sorted({*EXTENSIONS.values(), *FILENAMES.values(), *_SHEBANG_INTERPRETERS.values()}))


def language_of(path: str, head: bytes | None = None) -> str | None:
    """The language of `path` (posix separators), or None when it is not recognisably code.

    `head` (the file's first bytes) is consulted only for extension-less files with a shebang.
    """
    name = posixpath.basename(path).lower()
    if name in FILENAMES:
        return FILENAMES[name]
    ext = posixpath.splitext(name)[1]
    if ext in EXTENSIONS:
        return EXTENSIONS[ext]
    if ext == "" and head and head.startswith(b"#!"):
        match = _SHEBANG.match(head.split(b"\n", 1)[0].rstrip(b"\r"))  # a CRLF file's first line too
        if match:
            return _SHEBANG_INTERPRETERS.get(match.group(1).decode("ascii", "replace").lower())
    return None
