"""How far can each measure, and the verdict, be trusted? Their hit rates on controls over several seeds
(science.md §3.1: a measure earns the right to decide only after it passes controls).

For each seed s (the experiment's config with `seed = s`: its own split, θ_o, θ_r and yardstick), the verdict's
controls are judged (`core.verdict.verdicts(..., controls=True)`):

  θ_o                          must be called under-unlearned, and every functional measure must see it;
  θ_o, last layer retrained    (class-wise forgetting) must be called pseudo-converged: a functional measure
  on D_r (head-only)           earns a hit when it lies beyond the band towards θ_o;
  two held-out retrains        (other data order; other initialisation) must be called clean: a measure earns
                               a hit when it does *not* count against them.

Per measure (per layer for per-layer measures) the trust figure is these hit rates; a measure "passes" when it
flags at most 10% of the held-out retrains and (functional measures) flags the head-only control in at least
80% of the seeds, or (output measures) θ_o. The verdict's own hit rates are reported beside them. Costs one
verdict per seed (its models are cached).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any

from .experiment import Experiment
from .progress import Progress, as_progress
from .results import _clean
from .verdict import verdicts

PASS_CLEAN, PASS_DETECT = 0.9, 0.8


@dataclass
class TrustEntry:
    key: str  # evidence key ("probe" or "probe@layer")
    probe: str
    label: str
    family: str
    original: list[bool] = field(default_factory=list)  # per seed: θ_o beyond the band towards θ_o
    pseudo: list[bool] = field(default_factory=list)  # per seed: the head-only control beyond towards θ_o
    retrains: list[bool] = field(default_factory=list)  # per held-out retrain: NOT counted against it

    @staticmethod
    def _rate(v: list[bool]) -> float:
        return float(sum(v) / len(v)) if v else float("nan")

    @property
    def rates(self) -> dict[str, float]:
        return {"original": self._rate(self.original), "pseudo": self._rate(self.pseudo),
                "retrains_clean": self._rate(self.retrains)}

    @property
    def passed(self) -> bool:
        r = self.rates
        clean_ok = not self.retrains or r["retrains_clean"] >= PASS_CLEAN
        if self.family == "functional":
            return clean_ok and (not self.pseudo or r["pseudo"] >= PASS_DETECT)
        return clean_ok

    def text(self) -> str:
        parts = [f"θ_o {sum(self.original)}/{len(self.original)}"]
        if self.pseudo:
            parts.append(f"head-only {sum(self.pseudo)}/{len(self.pseudo)}")
        parts.append(f"held-out retrains clean {sum(self.retrains)}/{len(self.retrains)}")
        return ", ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return _clean({**self.__dict__, "rates": self.rates, "passed": self.passed, "text": self.text()})


@dataclass
class TrustReport:
    seeds: list[int]
    entries: dict[str, TrustEntry]
    verdicts: dict[str, list[str]]  # control -> its label per seed
    expected: dict[str, str]  # control -> the label it must get
    seconds: float = 0.0
    settings: dict[str, Any] = field(default_factory=dict)

    def for_key(self, key: str) -> dict[str, Any] | None:
        e = self.entries.get(key)
        return e.to_dict() if e is not None else None

    def verdict_rates(self) -> dict[str, tuple[int, int]]:
        """control -> (seeds where it got its expected label, seeds)."""
        return {c: (sum(v == self.expected[c] for v in vs), len(vs)) for c, vs in self.verdicts.items()}

    def to_dict(self) -> dict[str, Any]:
        return _clean({"seeds": self.seeds, "entries": {k: v.to_dict() for k, v in self.entries.items()},
                       "verdicts": self.verdicts, "expected": self.expected,
                       "verdict_rates": {k: list(v) for k, v in self.verdict_rates().items()},
                       "seconds": self.seconds, "settings": self.settings})


def outcomes(report) -> dict[str, dict]:
    """One seed's controls in plain data (what a science-report job stores): per control its expected label,
    the label it got, and per evidence key whether the measure counted against it and whether it pointed
    towards θ_o."""
    out = {}
    for c in report.controls:
        v = report.control_verdicts[c.name]
        ev = [e for e in v.evidence if e.family != "context"]
        out[c.name] = {"expected": c.expected, "label": c.label, "passed": c.passed,
                       "counts": {e.key: bool(e.decides and e.counts) for e in ev},
                       "towards": {e.key: bool(e.toward == "θ_o" and e.side != "within") for e in ev},
                       "family": {e.key: e.family for e in ev}, "probe": {e.key: e.probe for e in ev},
                       "label_of": {e.key: e.label for e in ev}}
    return out


def from_outcomes(per_seed: list[dict[str, dict]], seeds: list[int], settings: dict | None = None) -> "TrustReport":
    """The trust report of several seeds' `outcomes` (a live run's or a science report's)."""
    entries: dict[str, TrustEntry] = {}
    labels: dict[str, list[str]] = {}
    expected: dict[str, str] = {}
    for seed in per_seed:
        for cname, o in seed.items():
            labels.setdefault(cname, []).append(o["label"])
            expected[cname] = o["expected"]
            for key, counted in o["counts"].items():
                t = entries.setdefault(key, TrustEntry(key, o["probe"][key], o["label_of"][key], o["family"][key]))
                if cname == "control: θ_o":
                    t.original.append(o["towards"][key])
                elif cname == "control: head-only":
                    t.pseudo.append(counted)
                else:
                    t.retrains.append(not counted)
    return TrustReport(list(seeds), entries, labels, expected, 0.0, dict(settings or {}))


def trust(exp, n_seeds: int = 5, progress: Progress | None = None, **verdict_options) -> TrustReport:
    """Control hit rates of every measure and of the verdict over `n_seeds` seeds of the experiment's config,
    starting at its own seed (see module docstring)."""
    progress = as_progress(progress)
    if n_seeds < 2:
        raise ValueError("trust needs at least 2 seeds (5 or more for a meaningful rate).")
    start = time.perf_counter()
    s0 = int(exp.config.seed)
    seeds = [s0 + i for i in range(n_seeds)]
    per_seed = []
    for i, s in enumerate(seeds):
        world = exp if s == s0 and "original" in exp.models else Experiment(
            replace(exp.config, seed=s), store=exp.store, device=exp.device, dataset=getattr(exp, "_dataset", None))
        world.reference_models(progress.scoped(f"seed {s}"))
        rep = verdicts(world, names=[], controls=True, progress=progress.scoped(f"seed {s}"), **verdict_options)
        per_seed.append(outcomes(rep))
        progress("trust", i + 1, n_seeds)
    out = from_outcomes(per_seed, seeds, {"n_seeds": n_seeds, "pass": {"retrains_clean": PASS_CLEAN,
                                                                       "detect": PASS_DETECT},
                                          **{k: v for k, v in verdict_options.items()
                                             if isinstance(v, (int, float, str, bool))}})
    out.seconds = time.perf_counter() - start
    return out
