"""Aggregation over the jobs' typed records: values across seeds by scenario and key path, their mean and sample
standard deviation, and the derived figures several sections share (SalUn's avg gap, rank correlation)."""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from .record import JobRecord


def stats(values: list[float]) -> tuple[float, float, int]:
    """(mean, sample sd, count) of the finite values: a seed that measured nothing is left out, not zero."""
    v = np.asarray([x for x in values if x is not None and np.isfinite(x)], dtype=float)
    if not len(v):
        return float("nan"), float("nan"), 0
    return float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0, len(v)


def ms(values: list[float], digits: int = 3, pct: bool = False) -> str:
    """'mean ± sd' (sample sd over seeds); one value alone is shown bare."""
    m, s, n = stats(values)
    if n == 0:
        return "–"
    k = 100.0 if pct else 1.0
    unit = "%" if pct else ""
    d = max(digits - 2, 0) if pct else digits
    return f"{m * k:.{d}f}{unit}" if n == 1 else f"{m * k:.{d}f} ± {s * k:.{d}f}{unit}"


def mean(values: list[float]) -> float:
    """The mean over seeds of what is finite (NaN when nothing is)."""
    return stats(values)[0]


class Runs:
    """The jobs' records, looked up by scenario and a key path (a section, then keys or list indices), across
    seeds: `runs.get("class", "quality", "finetune", "UA")` is finetune's UA on every seed that has it."""

    def __init__(self, records: list[JobRecord]):
        self.records = records

    def scenarios(self) -> list[str]:
        return list(dict.fromkeys(r.scenario for r in self.records))

    def of(self, scenario: str) -> list[JobRecord]:
        return [r for r in self.records if r.scenario == scenario]

    def get(self, scenario: str, section: str, *path: Any) -> list[Any]:
        out = []
        for r in self.of(scenario):
            v: Any = r.part(section)
            for p in path:
                if v is None:
                    break
                v = v.get(p) if isinstance(v, dict) else (v[p] if isinstance(v, list) and isinstance(p, int) else None)
            if v is not None:
                out.append(v)
        return out

    def first(self, scenario: str, section: str) -> Any:
        """A section of the scenario's first record (what holds for every seed: radii, measures, targets)."""
        rs = self.of(scenario)
        return rs[0].part(section) if rs else None

    def models(self, scenario: str, section: str = "quality") -> list[str]:
        return [k for k in self.first(scenario, section) or {} if not k.startswith(("norm", "radii"))]


def avg_gap(runs: Runs, scenario: str, model: str) -> list[float]:
    """SalUn's 'Avg. Gap': mean |metric − retrain's metric| over UA, RA, TA and MIA-efficacy, per seed."""
    gaps = []
    for r in runs.of(scenario):
        q = r.quality
        if model in q:
            gaps.append(float(np.mean([abs(q[model][k] - q["retrain"][k]) for k in ("UA", "RA", "TA", "MIA")])))
    return gaps


def group_targets(runs: Runs, sc: str) -> list[str]:
    """The leak's group-deletion targets of a scenario (retrain and the approximate methods attacked)."""
    return [t for t in runs.first(sc, "leak_group") if t != "group_size"]


def ranks(values: list[float]) -> np.ndarray:
    """Ranks 0..n-1, tied values sharing their mean rank (what Spearman's ρ needs)."""
    v = np.asarray(values, dtype=float)
    r = np.empty(len(v))
    r[v.argsort(kind="stable")] = np.arange(len(v))
    for x in np.unique(v):
        r[v == x] = r[v == x].mean()
    return r


def spearman(a: list[float], b: list[float]) -> float:
    """Spearman's rank correlation; NaN when either side ranks nothing (all equal)."""
    ra, rb = ranks(a), ranks(b)
    return float(np.corrcoef(ra, rb)[0, 1]) if ra.std() > 0 and rb.std() > 0 else float("nan")


def anchors_apart(job: dict) -> bool:
    """Is the ceiling above the floor by more than two standard errors of their difference? Only then is there room
    between them to place a method (at small N, or where θ_o's seeds already behave like retrains, there is none)."""
    c, f = job["ceiling"], job["floor"]
    if c["F"] is None or f["F"] is None:
        return False
    return c["F"] - f["F"] > 2 * math.hypot(c["se"] or 0.0, f["se"] or 0.0)
