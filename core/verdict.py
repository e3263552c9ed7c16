"""The verdict per unlearning method: clean, pseudo-converged or under-unlearned (science.md §3).

The yardstick is seed variance. Besides θ_r (which shares θ_o's initialisation and data order), a few
more retrains are trained on D_r: some differ from θ_r only in the data order, some in the
initialisation too (both spreads are reported). Every measure of `core.probes.measures.MEASURES` is
computed for each of them against the same references θ_o and θ_r; the spread of a measure is
[min, max] over those retrains, widened on each side by `rel_tol`·(max − min) (default 0.5: a handful of
retrains underestimates the range) and by the measure's `abs_tol`.

* under-unlearned: an *output* measure (forget / retain / test accuracy, JS divergence to θ_r on D_f)
  lies outside the spread — the model does not even look like a retrain;
* pseudo-converged: the outputs are within the spread, but *functional* residual evidence lies beyond
  it in the direction of "still holds D_f": linear-probe decodability, bounce-back under benign
  fine-tuning, quick relearning, loss barriers, plus any evidence handed in by attacks (relearning speed
  of the reminiscence attack, residual knowledge under perturbation...);
* clean: neither.

Weight distance, CKA, attribution mass and the patching depth are reported beside the verdict as
*context* and never decide it (the initialisation confound: everything that starts from θ_o stays near
θ_o). A functional measure whose trust AUC (when a `TrustReport` is given) is weak does not decide either.

Extra evidence (e.g. from attacks) is a list of dicts per model:
    {"measure": "rea_steps_to_90", "label": "ReA relearning steps", "value": 12.0,
     "retrain_values": [40.0, 55.0, 38.0],   # the same measure on retrains (or "lo"/"hi")
     "direction": -1,                          # +1 higher = holds D_f, -1 lower = holds D_f
     "family": "functional",                  # or "output" / "context"
     "beyond": None,                           # set True/False to decide yourself
     "abs_tol": 0.0, "note": "..."}
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from torch import nn

from .errors import ResidueError
from .progress import Progress, as_progress
from .results import _clean

CLEAN, PSEUDO, UNDER = "clean", "pseudo-converged", "under-unlearned"


@dataclass
class Spread:
    measure: str
    order: list[float]  # values of the retrains that differ from θ_r only in the data order
    init: list[float]  # values of the retrains with another initialisation
    lo: float  # combined, before tolerance
    hi: float
    tol: float

    @property
    def low(self) -> float:
        return self.lo - self.tol

    @property
    def high(self) -> float:
        return self.hi + self.tol

    def order_range(self) -> list[float]:
        return [float(np.min(self.order)), float(np.max(self.order))] if self.order else []

    def init_range(self) -> list[float]:
        return [float(np.min(self.init)), float(np.max(self.init))] if self.init else []

    def to_dict(self) -> dict[str, Any]:
        return _clean({"measure": self.measure, "order": self.order, "init": self.init, "lo": self.lo, "hi": self.hi,
                       "tol": self.tol, "low": self.low, "high": self.high, "order_range": self.order_range(),
                       "init_range": self.init_range()})


@dataclass
class Evidence:
    measure: str
    label: str
    family: str  # "output" | "functional" | "context"
    value: float
    low: float
    high: float
    direction: int
    beyond: bool  # outside the spread in a direction that matters (see `side`)
    side: str  # "above" | "below" | "within"
    decides: bool  # may this measure decide the verdict?
    trust_auc: float | None = None
    trust: str | None = None
    source: str = "probe"  # "probe" or the name of the attack that provided it
    note: str = ""

    def text(self) -> str:
        return (f"{self.label} {self.value:.3g} is {self.side} the retrain spread [{self.low:.3g}, {self.high:.3g}]"
                if self.side != "within" else f"{self.label} {self.value:.3g} is within [{self.low:.3g}, {self.high:.3g}]")

    def to_dict(self) -> dict[str, Any]:
        d = _clean(dict(self.__dict__))
        d["text"] = self.text()
        return d


@dataclass
class Verdict:
    model: str
    label: str
    decided_by: list[str]  # the measures that decided it
    reasons: list[str]
    evidence: list[Evidence]

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "label": self.label, "decided_by": self.decided_by, "reasons": self.reasons,
                "evidence": [e.to_dict() for e in self.evidence]}


@dataclass
class VerdictReport:
    yardstick: dict[str, list[str]]  # "order" / "init" -> descriptions of the retrains
    spreads: dict[str, Spread]
    verdicts: dict[str, Verdict]
    values: dict[str, dict[str, float]] = field(default_factory=dict)  # model -> measure -> value
    settings: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    def label(self, model: str) -> str:
        return self.verdicts[model].label

    def to_dict(self) -> dict[str, Any]:
        return _clean({"yardstick": self.yardstick, "spreads": {k: v.to_dict() for k, v in self.spreads.items()},
                       "verdicts": {k: v.to_dict() for k, v in self.verdicts.items()}, "values": self.values,
                       "settings": self.settings, "seconds": self.seconds})


def _side(value: float, low: float, high: float) -> str:
    if not np.isfinite(value):
        return "within"
    return "above" if value > high else "below" if value < low else "within"


def _matters(side: str, direction: int) -> bool:
    if side == "within":
        return False
    if direction == 0:
        return True
    return (side == "above") == (direction > 0)


class Yardstick:
    """Retrains of several seeds measured against θ_o and θ_r: the spread every verdict is read against."""

    def __init__(self, measure_set, order_values: list[dict[str, float]], init_values: list[dict[str, float]],
                 descriptions: dict[str, list[str]], rel_tol: float = 0.5, trust=None):
        self.measure_set = measure_set
        self.order_values, self.init_values = order_values, init_values
        self.descriptions = descriptions
        self.rel_tol = rel_tol
        self.trust = trust
        from .probes.measures import MEASURES

        self.spreads: dict[str, Spread] = {}
        for name, m in MEASURES.items():
            o = [v[name] for v in order_values if np.isfinite(v[name])]
            i = [v[name] for v in init_values if np.isfinite(v[name])]
            allv = o + i
            if not allv:
                continue
            lo, hi = float(min(allv)), float(max(allv))
            self.spreads[name] = Spread(name, o, i, lo, hi, m.abs_tol + rel_tol * (hi - lo))

    @classmethod
    def build(cls, exp, n_order: int = 2, n_init: int = 2, data=None, rel_tol: float = 0.5, trust=None,
              progress: Progress | None = None, **measure_options) -> "Yardstick":
        """Train (batched, cached) n_order retrains with θ_o's init and other data orders and n_init with other
        initialisations, and measure them against the experiment's θ_o and θ_r (`exp.run()` first)."""
        from .probes.common import ProbeData
        from .probes.measures import MeasureSet, scratch_models
        from .probes.trust import ORDER_OFFSET

        progress = as_progress(progress)
        if "original" not in exp.models or "retrain" not in exp.models:
            raise ResidueError("The verdict needs θ_o and θ_r: run the experiment first.")
        if n_order + n_init < 2:
            raise ResidueError("The yardstick needs at least two extra retrains.")
        s = int(exp.config.seed)
        specs = ([("retain", s, s + k * ORDER_OFFSET) for k in range(1, n_order + 1)]
                 + [("retain", s + k, s + k) for k in range(1, n_init + 1)])
        models = scratch_models(exp, specs, progress, "yardstick retrains")
        data = data or ProbeData.from_experiment(exp)
        ms = MeasureSet(exp.models["original"], exp.models["retrain"], data, seed=s, **measure_options)
        values = []
        for j, m in enumerate(models):
            values.append(ms(m, f"yardstick {j}"))
            progress("yardstick", j + 1, len(models))
        desc = {"order": [f"retrain init {s}, order {o}" for _, _, o in specs[:n_order]],
                "init": [f"retrain init {i}, order {o}" for _, i, o in specs[n_order:]]}
        yard = cls(ms, values[:n_order], values[n_order:], desc, rel_tol, trust)
        yard.models = models
        return yard

    def judge(self, name: str, model: nn.Module | None = None, values: dict[str, float] | None = None,
              extra: list[dict[str, Any]] | None = None, layer_probe=None) -> tuple[Verdict, dict[str, float]]:
        """The verdict of one model (measured here unless `values` are given) and its measure values."""
        from .probes.measures import MEASURES

        if values is None:
            if model is None:
                raise ValueError("judge needs a model or its measure values")
            values = self.measure_set(model, name, layer_probe)
        evidence: list[Evidence] = []
        for mname, m in MEASURES.items():
            sp = self.spreads.get(mname)
            if sp is None:
                continue
            v = float(values.get(mname, float("nan")))
            side = _side(v, sp.low, sp.high)
            t_auc = t_str = None
            decides = m.family in ("output", "functional")
            note = ""
            if self.trust is not None and mname in getattr(self.trust, "entries", {}):
                t_auc, t_str = self.trust.auc(mname), self.trust.strength(mname)
                if m.family == "functional" and t_str == "weak":
                    decides, note = False, "trust AUC weak: shown, not deciding"
            if m.family == "context":
                note = "context (where the model sits): never decides"
            evidence.append(Evidence(mname, m.label, m.family, v, sp.low, sp.high, m.direction,
                                     _matters(side, m.direction), side, decides, t_auc, t_str, "probe", note))
        for e in extra or []:
            evidence.append(_extra_evidence(e, self.rel_tol))
        return _decide(name, evidence), dict(values)


def _extra_evidence(e: dict[str, Any], rel_tol: float) -> Evidence:
    value = float(e.get("value", float("nan")))
    direction = int(e.get("direction", +1))
    family = e.get("family", "functional")
    rv = [float(x) for x in e.get("retrain_values", []) if x is not None and np.isfinite(x)]
    lo = float(e.get("lo", min(rv) if rv else float("nan")))
    hi = float(e.get("hi", max(rv) if rv else float("nan")))
    tol = float(e.get("abs_tol", 0.0)) + (rel_tol * (hi - lo) if np.isfinite(hi - lo) else 0.0)
    low, high = lo - tol, hi + tol
    if e.get("beyond") is not None:
        beyond = bool(e["beyond"])
        side = ("above" if direction >= 0 else "below") if beyond else "within"
    elif np.isfinite(low) and np.isfinite(high):
        side = _side(value, low, high)
        beyond = _matters(side, direction)
    else:
        side, beyond = "within", False
    return Evidence(str(e.get("measure", "extra")), str(e.get("label", e.get("measure", "extra"))), family, value, low,
                    high, direction, beyond, side, family in ("output", "functional"), e.get("trust_auc"),
                    e.get("trust"), str(e.get("source", "attack")), str(e.get("note", "")))


def _decide(name: str, evidence: list[Evidence]) -> Verdict:
    outputs = [e for e in evidence if e.family == "output" and e.decides and e.beyond]
    functional = [e for e in evidence if e.family == "functional" and e.decides and e.beyond]
    if outputs:
        return Verdict(name, UNDER, [e.measure for e in outputs],
                       ["outputs differ from every retrain: " + "; ".join(e.text() for e in outputs)], evidence)
    if functional:
        return Verdict(name, PSEUDO, [e.measure for e in functional],
                       ["outputs are within the retrain spread, but residuals are beyond it: "
                        + "; ".join(e.text() for e in functional)], evidence)
    return Verdict(name, CLEAN, [], ["outputs and functional residuals are within the retrain spread"], evidence)


def verdicts(exp, names: list[str] | None = None, extra_evidence: dict[str, list[dict[str, Any]]] | None = None,
             yardstick: Yardstick | None = None, trust=None, layer_report=None, n_order: int = 2, n_init: int = 2,
             progress: Progress | None = None, **measure_options) -> VerdictReport:
    """Verdicts for the experiment's unlearned models (or `names`), read against a seed-variance yardstick.

    `layer_report` (a `core.probes.layers.LayerReport` over the same models) avoids re-running the layer
    probes; `trust` (a `TrustReport`) silences functional measures whose trust is weak."""
    progress = as_progress(progress)
    start = time.perf_counter()
    yard = yardstick or Yardstick.build(exp, n_order, n_init, trust=trust, progress=progress, **measure_options)
    if trust is not None:
        yard.trust = trust
    names = names or [n for n in exp.models if n not in ("original",)]
    out, values = {}, {}
    for i, n in enumerate(names):
        lp = layer_report.models.get(n) if layer_report is not None else None
        out[n], values[n] = yard.judge(n, exp.models[n], extra=(extra_evidence or {}).get(n), layer_probe=lp)
        progress("verdict", i + 1, len(names))
    values.update({f"yardstick order {j + 1}": v for j, v in enumerate(yard.order_values)})
    values.update({f"yardstick init {j + 1}": v for j, v in enumerate(yard.init_values)})
    return VerdictReport(yard.descriptions, yard.spreads, out, values,
                         {"rel_tol": yard.rel_tol, "n_order": len(yard.order_values), "n_init": len(yard.init_values)},
                         time.perf_counter() - start)
