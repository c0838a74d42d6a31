"""Names a programmer confuses: known pairs per language (any/all, min/max, push/unshift, ...), names that
differ in one word (read_header/read_body, getX/setX), and names one slip of the keyboard apart
(hasttr/hasattr: `Spellings`)."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable

# Each group is a set of mutual alternatives.
PYTHON_GROUPS = (
    ("any", "all"), ("min", "max"), ("append", "extend"), ("startswith", "endswith"), ("keys", "values", "items"),
    ("lower", "upper"), ("strip", "lstrip", "rstrip"), ("find", "rfind"), ("index", "rindex"), ("split", "rsplit"),
    ("remove", "discard"), ("get", "pop"), ("isinstance", "issubclass"), ("getattr", "hasattr"),
    ("sorted", "reversed"), ("floor", "ceil"), ("read", "readline", "readlines"), ("encode", "decode"),
    ("dumps", "loads"), ("dump", "load"), ("add", "update"), ("union", "intersection", "difference"),
    ("debug", "info", "warning", "error"), ("left", "right"), ("start", "end"), ("first", "last"),
    ("width", "height"), ("x", "y"), ("row", "col"), ("top", "bottom"), ("head", "tail"), ("stdout", "stderr"),
    ("src", "dst"), ("source", "target"), ("old", "new"), ("prev", "next"), ("major", "minor"),
    ("isdigit", "isalpha", "isalnum"), ("isfile", "isdir", "exists"), ("copy", "deepcopy"),
    ("match", "search", "fullmatch"), ("insert", "append"), ("setdefault", "get"), ("basename", "dirname"),
    ("list", "tuple", "set"), ("int", "float"), ("bytes", "str"), ("map", "filter"),
    ("setattr", "getattr"), ("lstrip", "rstrip"), ("ljust", "rjust"), ("readlines", "splitlines"),
)
JAVASCRIPT_GROUPS = (
    ("some", "every"), ("push", "unshift"), ("pop", "shift"), ("slice", "splice"), ("min", "max"), ("floor", "ceil"),
    ("indexOf", "lastIndexOf"), ("startsWith", "endsWith"), ("keys", "values", "entries"), ("map", "forEach"),
    ("filter", "find"), ("find", "findIndex"), ("toLowerCase", "toUpperCase"), ("substring", "substr"),
    ("log", "error", "warn"), ("setTimeout", "setInterval"), ("resolve", "reject"), ("add", "delete"),
    ("parseInt", "parseFloat"), ("trimStart", "trimEnd"), ("then", "catch"), ("left", "right"), ("top", "bottom"),
    ("width", "height"), ("x", "y"), ("start", "end"), ("first", "last"), ("prev", "next"), ("min", "max"),
    ("addEventListener", "removeEventListener"), ("appendChild", "removeChild"), ("stringify", "parse"),
    ("querySelector", "querySelectorAll"), ("getItem", "setItem"), ("call", "apply"), ("assign", "freeze"),
)


def confusable_table(groups: Iterable[tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
    """name -> its alternatives, from every group it belongs to, in order, each once."""
    table: dict[str, tuple[str, ...]] = {}
    for group in groups:
        for name in group:
            table[name] = tuple(dict.fromkeys(table.get(name, ()) + tuple(n for n in group if n != name)))
    return table


PYTHON_CONFUSABLE = confusable_table(PYTHON_GROUPS)
JAVASCRIPT_CONFUSABLE = confusable_table(JAVASCRIPT_GROUPS)

_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")


@functools.lru_cache(maxsize=65536)
def words(name: str) -> tuple[str, ...]:
    """The lower-cased words of an identifier: `readHTTPHeader2` -> ("read", "http", "header", "2")."""
    return tuple(w.lower() for w in _WORD.findall(name))


def similar_names(name: str, pool: Iterable[str], confusable: dict[str, tuple[str, ...]] | None = None) -> list[str]:
    """Names a programmer could write instead of `name`: its confusable alternatives (any/all, min/max, ...;
    Python's by default) and the names of `pool` that differ from it in exactly one word (read_header/read_body,
    getX/setX)."""
    out = list((PYTHON_CONFUSABLE if confusable is None else confusable).get(name, ()))
    mine = words(name)
    if len(mine) >= 2:
        for other in pool:
            if other != name and other not in out:
                theirs = words(other)
                if len(theirs) == len(mine) and sum(a != b for a, b in zip(mine, theirs, strict=True)) == 1:
                    out.append(other)
    return out


def one_slip(a: str, b: str) -> bool:
    """Whether `b` is `a` with one letter added, dropped or replaced, or two adjacent letters swapped."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        diff = [i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y]
        return len(diff) == 1 or (len(diff) == 2 and diff[1] == diff[0] + 1
                                  and a[diff[0]] == b[diff[1]] and a[diff[1]] == b[diff[0]])
    short, long = (a, b) if len(a) < len(b) else (b, a)
    i = next((k for k, (x, y) in enumerate(zip(short, long, strict=False)) if x != y), len(short))
    return short[i:] == long[i + 1:]


class Spellings:
    """The names of a pool, found by spelling: `near(name)` gives the names of the pool one slip from `name`
    (`one_slip`), in pool order — a misspelt name's correct spelling, when the file spells it somewhere.
    Short names are left out (`x`/`y`, `i`/`j` are another kind of slip): both at least 3 letters, one at
    least 4. Looked up by every one-letter deletion of each name, so a query costs its length, not the pool's."""

    def __init__(self, pool: Iterable[str]):
        self._by_key: dict[str, dict[str, None]] = {}
        for name in pool:
            if len(name) >= 3:
                for key in _deletions(name):
                    self._by_key.setdefault(key, {})[name] = None
        self._memo: dict[str, list[str]] = {}

    def near(self, name: str) -> list[str]:
        found = self._memo.get(name)
        if found is None:
            found = {}
            if len(name) >= 3:
                for key in _deletions(name):
                    for other in self._by_key.get(key, ()):
                        if max(len(name), len(other)) >= 4 and one_slip(name, other):
                            found[other] = None
            found = self._memo[name] = list(found)
        return found


def _deletions(name: str) -> list[str]:
    """`name` and every string made by deleting one of its letters."""
    return [name] + [name[:i] + name[i + 1:] for i in range(len(name))]
