"""Declared hyperparameters, shared by unlearning methods and attacks.

A `Param` says name, default, range and a one-line help; constructors validate against it and the
dashboard draws its widgets from it, so no form is written by hand.
"""
from __future__ import annotations

import functools
import numbers
import types
import typing
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from .errors import ResidueError


@dataclass(frozen=True)
class Param:
    """A declared hyperparameter: the range is enforced here and drawn as a widget by the dashboard."""

    name: str
    default: Any
    low: float | None = None
    high: float | None = None
    help: str = ""
    choices: tuple | None = None
    log: bool = False  # widget on a log scale (learning rates)

    def check(self, value: Any) -> Any:
        if self.choices is not None:
            if value not in self.choices:
                raise ResidueError(f"{self.name} must be one of {list(self.choices)}, got {shown(value)}.")
            return value
        if isinstance(self.default, bool):
            if not isinstance(value, bool):
                raise ResidueError(f"{self.name} must be true or false, got {shown(value)}.")
            return value
        if isinstance(self.default, (int, float)):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ResidueError(f"{self.name} must be a number, got {shown(value)}.")
            if not np.isfinite(value):  # before int(): NaN and inf would escape as ValueError / OverflowError
                raise ResidueError(f"{self.name} must be in [{self.low}, {self.high}], got {value}.")
            if isinstance(self.default, int) and float(value) != int(value):
                raise ResidueError(f"{self.name} must be a whole number, got {shown(value)}.")
            value = type(self.default)(value)
            if (self.low is not None and value < self.low) or (
                    self.high is not None and value > self.high):
                raise ResidueError(f"{self.name} must be in [{self.low}, {self.high}], got {value}.")
            return value
        if isinstance(self.default, str) and not isinstance(value, str):
            raise ResidueError(f"{self.name} must be text, got {shown(value)}.")
        return value


def shown(value: Any, limit: int = 60) -> str:
    """A value as a message quotes it: its repr, cut short so the message stays one readable line."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "…"


def typed(value: Any, kind: type, where: str) -> Any:
    """One setting checked against its declared type, the same way for a config file and the Python API.

    Whole numbers are accepted where a number is declared (and widened to float); booleans and NaN are not
    numbers; numpy scalars become Python ones, so a config hashes the same however it was built."""
    if kind is int:
        ok = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    elif kind is float:
        ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and value == value
    else:
        ok = isinstance(value, kind)
    if not ok:
        raise ResidueError(f"config: {where} must be {'a number' if kind is float else kind.__name__}, "
                           f"got {shown(value)}.")
    return kind(value) if kind in (int, float) else value


def typed_list(value: Any, kind: type, where: str) -> list:
    """A list of one declared kind (a list of whole numbers: forget classes, indices...)."""
    items = list(value) if isinstance(value, (list, tuple, np.ndarray)) else None
    try:
        return [typed(v, kind, where) for v in items] if items is not None else typed(value, list, where)
    except ResidueError:
        what = "whole numbers" if kind is int else kind.__name__
        raise ResidueError(f"config: {where} must be a list of {what}, got {shown(value)}.") from None


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def check_fields(obj: Any, where: str = "") -> None:
    """Check every field of a config dataclass against its annotation (`X | None` admits None, `list[X]` a
    list of X), normalising it in place: the Python API refuses what a config file would, with the same line."""
    for name, hint in _hints(type(obj)).items():
        value = getattr(obj, name)
        path = f"{where}.{name}" if where else name
        if typing.get_origin(hint) in (typing.Union, types.UnionType):
            if value is None and type(None) in typing.get_args(hint):
                continue
            hint = next(a for a in typing.get_args(hint) if a is not type(None))
        if typing.get_origin(hint) is list:
            value = typed_list(value, typing.get_args(hint)[0], path)
        else:
            value = typed(value, typing.get_origin(hint) or hint, path)
        object.__setattr__(obj, name, value)


def check_params(owner: str, declared: Sequence[Param], given: dict[str, Any]) -> dict[str, Any]:
    """All declared hyperparameters, given values validated, the rest at their defaults."""
    by_name = {p.name: p for p in declared}
    unknown = set(given) - set(by_name)
    if unknown:
        raise ResidueError(
            f"{owner}: unknown hyperparameter(s) {sorted(unknown)}; known: {sorted(by_name) or 'none'}.")
    try:
        return {n: p.check(given[n]) if n in given else p.default for n, p in by_name.items()}
    except ResidueError as e:
        raise ResidueError(f"{owner}: {e}") from None
