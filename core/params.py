"""Declared hyperparameters, shared by unlearning methods and attacks.

A `Param` says name, default, range and a one-line help; constructors validate against it and the
dashboard draws its widgets from it, so no form is written by hand.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

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
                raise ResidueError(f"{self.name} must be one of {list(self.choices)}, got {value!r}.")
            return value
        if isinstance(self.default, bool):
            if not isinstance(value, bool):
                raise ResidueError(f"{self.name} must be true or false, got {value!r}.")
            return value
        if isinstance(self.default, (int, float)):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ResidueError(f"{self.name} must be a number, got {value!r}.")
            if isinstance(self.default, int) and float(value) != int(value):
                raise ResidueError(f"{self.name} must be a whole number, got {value!r}.")
            value = type(self.default)(value)
            if value != value or (self.low is not None and value < self.low) or (
                    self.high is not None and value > self.high):
                raise ResidueError(f"{self.name} must be in [{self.low}, {self.high}], got {value}.")
            return value
        return value



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
