"""What a configuration value may be: each field's type and range, checked with one line per bad value.

A configuration (the model's config.json, a training run's TOML) declares a rule per field, e.g.
`{"loops": Whole(1, 64), "dropout": Number(0, 1, below=True), "gate_mode": OneOf("hidden", "query")}`;
`problems(values, rules)` lists what is wrong, each line naming the field and what it expects.
Values come from JSON or TOML, so the types are theirs: a whole number is an int (not a bool, not 2.0),
a number is an int or a finite float, a flag is a bool.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Whole:
    """A whole number from `lo` to `hi` (each None: unbounded on that side)."""

    lo: int | None = None
    hi: int | None = None

    def expects(self) -> str:
        if self.lo is not None and self.hi is not None:
            return f"a whole number from {self.lo:,} to {self.hi:,}"
        if self.lo is not None:
            return f"a whole number ≥ {self.lo:,}"
        return "a whole number" if self.hi is None else f"a whole number ≤ {self.hi:,}"

    def accepts(self, value) -> bool:
        return (isinstance(value, int) and not isinstance(value, bool)
                and (self.lo is None or value >= self.lo) and (self.hi is None or value <= self.hi))


@dataclass(frozen=True)
class Number:
    """A finite number from `lo` to `hi` (None: unbounded); `above`/`below` exclude the bound itself."""

    lo: float | None = None
    hi: float | None = None
    above: bool = False  # lo itself is excluded
    below: bool = False  # hi itself is excluded

    def expects(self) -> str:
        if self.lo is not None and self.hi is not None:
            return f"a number in {'(' if self.above else '['}{self.lo:g}, {self.hi:g}{')' if self.below else ']'}"
        if self.lo is not None:
            return f"a finite number {'>' if self.above else '≥'} {self.lo:g}"
        return "a finite number" if self.hi is None else f"a finite number {'<' if self.below else '≤'} {self.hi:g}"

    def accepts(self, value) -> bool:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        try:
            value = float(value)
        except OverflowError:  # an int too large for a float
            return False
        if not math.isfinite(value):
            return False
        if self.lo is not None and (value <= self.lo if self.above else value < self.lo):
            return False
        return self.hi is None or not (value >= self.hi if self.below else value > self.hi)


@dataclass(frozen=True)
class OneOf:
    """One of the given strings."""

    choices: tuple[str, ...]

    def __init__(self, *choices: str):
        object.__setattr__(self, "choices", choices)

    def expects(self) -> str:
        return "one of " + ", ".join(repr(c) for c in self.choices)

    def accepts(self, value) -> bool:
        return isinstance(value, str) and value in self.choices


@dataclass(frozen=True)
class Flag:
    """true or false."""

    def expects(self) -> str:
        return "true or false"

    def accepts(self, value) -> bool:
        return isinstance(value, bool)


@dataclass(frozen=True)
class Text:
    """A string; with `optional`, also None (unset)."""

    optional: bool = False

    def expects(self) -> str:
        return "a string"

    def accepts(self, value) -> bool:
        return isinstance(value, str) or (self.optional and value is None)


@dataclass(frozen=True)
class Table:
    """A JSON object whose keys are among `keys` (at least one) and whose values `value` accepts, e.g. a
    threshold per kind of edit."""

    keys: tuple[str, ...]
    value: Whole | Number | OneOf | Flag | Text

    def expects(self) -> str:
        return f"a non-empty object from some of {', '.join(self.keys)} to {self.value.expects()}"

    def accepts(self, value) -> bool:
        return (isinstance(value, dict) and bool(value)
                and all(k in self.keys and self.value.accepts(v) for k, v in value.items()))


Rule = Whole | Number | OneOf | Flag | Text | Table


def problem(name: str, value, rule: Rule) -> str | None:
    """'NAME must be EXPECTED, got VALUE' when `rule` refuses `value`, else None."""
    if rule.accepts(value):
        return None
    if isinstance(rule, Table) and isinstance(value, dict) and value:  # name the entry that is wrong
        key = next(k for k, v in value.items() if k not in rule.keys or not rule.value.accepts(v))
        if key not in rule.keys:
            return f"{name} has an unknown key {shown(key)}; known: {', '.join(rule.keys)}"
        return problem(f"{name}[{key!r}]", value[key], rule.value)
    return f"{name} must be {rule.expects()}, got {shown(value)}"


def shown(value, width: int = 60) -> str:
    """`value`'s repr for a one-line message: on one line, cut to `width` characters."""
    text = " ".join(repr(value).split("\n"))
    return text if len(text) <= width else text[:width - 3] + "..."


def problems(values: dict, rules: dict[str, Rule], prefix: str = "") -> list[str]:
    """One line per value of `values` that its rule refuses (names shown as prefix + name); fields
    without a value, and values without a rule, are the caller's to judge."""
    found = []
    for name, rule in rules.items():
        if name in values and (line := problem(prefix + name, values[name], rule)) is not None:
            found.append(line)
    return found
