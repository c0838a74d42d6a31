"""Names a programmer confuses: known pairs per language (any/all, min/max, push/unshift, ...) and names that
differ in one word (read_header/read_body, getX/setX)."""

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
