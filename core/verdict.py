"""The verdict per model (science.md §3.1): clean, pseudo-converged, under-unlearned or over-unlearned.

**Yardstick.** Besides θ_r, a few more retrains are trained on D_r (batched, cached): `n_order` share θ_o's
initialisation and differ only in the data order, `n_init` have another initialisation. Every registered
probe (`core.probes.base`) is measured on them; each measure — and each layer of a per-layer measure, on its
own — gets a band [min, max] over those retrains, widened by a tolerance of max(the measure's `abs_tol`, twice
its resolution) + `rel_tol`·(max − min) and clipped to the measure's range. Measures read in θ_o's coordinates
(patching, barriers) take their band from the same-initialisation retrains only and do not apply to models
with another initialisation.

**What may decide.** Output measures (forget / retain / test accuracy and MIA-efficacy; in sample-wise
forgetting also the true-label probability) and functional ones (decodability per layer, relearning speed,
depth, barriers, bounce-back). Context measures (weight distance, CKA, attribution, JS to θ_r...) are shown,
never deciding. A functional measure does not decide when its band touches the measure's limit on the side
that means "holds D_f" (it could not be crossed: *saturated*), when its resolution exceeds its tolerance, when
θ_o itself is within the band in this run (it does not see D_f here), or when a five-seed trust report says it
failed its controls.

**Direction.** An output measure beyond the band on θ_o's side (the side where θ_o's own value lies) points
towards θ_o: *under-unlearned*; beyond it on the other side points away: *over-unlearned* (a utility measure —
retain or test accuracy — above the band is an improvement, not a fault). A model that forgot a class as
completely as θ_r did (forget accuracy not above the band) is never under-unlearned.

* under-unlearned: an output deviates towards θ_o;
* over-unlearned: an output deviates away from θ_o (with "still decodable" beside it when functional residual
  evidence is beyond the band too);
* pseudo-converged: outputs within the band, a functional residual beyond it towards "holds D_f";
* clean: neither.

**Controls** (`controls=True`, the default): θ_o must be called under-unlearned; the constructed
pseudo-converged model (θ_o with only its last layer retrained on D_r; class-wise forgetting) pseudo-converged;
two retrains held out of the yardstick (one other data order, one other initialisation) clean. Their outcomes
are part of the report, so a reader sees the rule pass (or fail) them on this very run.

A θ_o that is no better than always predicting the most frequent class gets no verdict at all.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from torch import nn

from .errors import ResidueError
from .experiment import degenerate_original
from .probes.base import ProbeContext, info
from .probes.measures import head_only, measure_all, scratch_models
from .progress import Progress, as_progress
from .results import _clean
from .unlearn import methods

CLEAN, PSEUDO, UNDER, OVER = "clean", "pseudo-converged", "under-unlearned", "over-unlearned"
NO_VERDICT = "no verdict"
LABELS = (CLEAN, PSEUDO, UNDER, OVER)
ORDER_OFFSET = 7919  # data-order seed of the "same init, other order" retrains: init s, order s + k·offset
UTILITY = ("retain_acc", "test_acc")  # higher is better for the user: above the band is not a fault
FORGET_SIDE = ("forget_acc", "true_prob", "mia_efficacy")  # the outputs that say whether D_f is still known

# lineage of a model: what its weights descend from (θ_o-coordinate measures need θ_o's coordinates); θ_r itself
# is the reference of the measures read against it (depth, barrier to θ_r...): its own values there are definitions
FROM_ORIGINAL, SAME_INIT, OTHER_INIT, RETRAIN = "from θ_o", "θ_o's initialisation", "another initialisation", "θ_r"


# -- bands -----------------------------------------------------------------------------------------
@dataclass
class Band:
    """One measure's (or one layer's) retrain band."""

    key: str  # "probe" or "probe@layer"
    probe: str
    layer: str | None
    order: list[float]  # retrains with θ_o's initialisation, other data order
    init: list[float]  # retrains with another initialisation (not in the band of θ_o-coordinate measures)
    lo: float  # min and max of the retrains the band is made of
    hi: float
    tol: float
    range_lo: float
    range_hi: float
    resolution: float = 0.0
    coordinates: str = "any"
    members: int = 0  # how many retrains the band is made of

    @property
    def low(self) -> float:
        return max(self.lo - self.tol, self.range_lo)

    @property
    def high(self) -> float:
        return min(self.hi + self.tol, self.range_hi)

    @property
    def saturated_low(self) -> bool:
        return self.lo - self.tol <= self.range_lo

    @property
    def saturated_high(self) -> bool:
        return self.hi + self.tol >= self.range_hi

    def side(self, value: float) -> str:
        if not np.isfinite(value):
            return "n/a"
        return "above" if value > self.high else "below" if value < self.low else "within"

    def to_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d.update(low=self.low, high=self.high, saturated_low=self.saturated_low, saturated_high=self.saturated_high)
        return _clean(d)


def make_band(key: str, probe: str, layer: str | None, order: list[float], init: list[float], info,
              resolution: float, rel_tol: float) -> Band | None:
    same_only = info.coordinates == "theta_o"
    members = [v for v in (order if same_only else order + init) if np.isfinite(v)]
    if not members:
        return None
    lo, hi = float(min(members)), float(max(members))
    tol = max(info.abs_tol, 2.0 * resolution) + rel_tol * (hi - lo)
    return Band(key, probe, layer, [float(v) for v in order], [float(v) for v in init], lo, hi, tol, info.lo,
                info.hi, resolution, info.coordinates, len(members))


# -- evidence and verdicts --------------------------------------------------------------------------
@dataclass
class Evidence:
    key: str
    probe: str
    layer: str | None
    label: str
    family: str
    value: float
    low: float
    high: float
    side: str  # "above" | "below" | "within" | "n/a"
    toward: str  # "θ_o" | "away" | "" (within, or not deciding)
    decides: bool  # may this measure decide, for this model, in this run?
    counts: bool  # does it count towards the verdict (decides and beyond in a direction that matters)?
    status: str  # why it decides or not, in words
    trust: dict[str, Any] | None = None

    def text(self) -> str:
        where = f"{self.label}{f' at {self.layer}' if self.layer else ''}"
        if self.side == "n/a":
            return f"{where}: no value"
        if self.side == "within":
            return f"{where} {self.value:.3g} is within the retrain band [{self.low:.3g}, {self.high:.3g}]"
        return (f"{where} {self.value:.3g} is {self.side} the retrain band [{self.low:.3g}, {self.high:.3g}]"
                + (" (towards θ_o)" if self.toward == "θ_o" else " (away from θ_o)" if self.toward == "away" else ""))

    def to_dict(self) -> dict[str, Any]:
        d = _clean(dict(self.__dict__))
        d["text"] = self.text()
        return d


@dataclass
class Verdict:
    model: str
    label: str
    decided_by: list[str]  # evidence keys that decided it
    reasons: list[str]
    evidence: list[Evidence]
    still_decodable: bool = False  # over-unlearned, with functional residual evidence beyond the band too

    @property
    def badge(self) -> str:
        return f"{self.label}, still decodable" if self.still_decodable else self.label

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "label": self.label, "badge": self.badge, "decided_by": self.decided_by,
                "reasons": self.reasons, "still_decodable": self.still_decodable,
                "evidence": [e.to_dict() for e in self.evidence]}


@dataclass
class Control:
    """A model whose verdict is known by construction, judged with the same rule."""

    name: str  # its name in the report ("control: head-only")
    description: str
    expected: str
    label: str
    passed: bool

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class VerdictReport:
    yardstick: dict[str, list[str]]  # "order" / "init" -> descriptions of the retrains
    bands: dict[str, Band]
    verdicts: dict[str, Verdict]  # the judged models (θ_r and each unlearned model)
    controls: list[Control] = field(default_factory=list)
    control_verdicts: dict[str, Verdict] = field(default_factory=dict)
    values: dict[str, dict[str, float]] = field(default_factory=dict)  # model -> evidence key -> value
    measures: dict[str, dict] = field(default_factory=dict)  # probe -> ProbeInfo.to_dict()
    warning: str = ""  # set when no verdict is issued (a degenerate θ_o)
    settings: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    def label(self, model: str) -> str:
        return self.verdicts[model].label

    def controls_passed(self) -> tuple[int, int]:
        return sum(c.passed for c in self.controls), len(self.controls)

    def to_dict(self) -> dict[str, Any]:
        return _clean({"yardstick": self.yardstick, "bands": {k: v.to_dict() for k, v in self.bands.items()},
                       "verdicts": {k: v.to_dict() for k, v in self.verdicts.items()},
                       "controls": [c.to_dict() for c in self.controls],
                       "control_verdicts": {k: v.to_dict() for k, v in self.control_verdicts.items()},
                       "values": self.values, "measures": self.measures, "warning": self.warning,
                       "settings": self.settings, "seconds": self.seconds})


# -- the yardstick -----------------------------------------------------------------------------------
class Yardstick:
    """Retrains of several seeds measured with every registered probe: the bands every verdict is read against."""

    def __init__(self, ctx, readings: dict, order_names: list[str], init_names: list[str],
                 descriptions: dict[str, list[str]], rel_tol: float = 0.5, trust=None,
                 original_init_known: bool = True):
        self.ctx, self.readings = ctx, readings
        self.order_names, self.init_names = order_names, init_names
        self.descriptions, self.rel_tol, self.trust = descriptions, rel_tol, trust
        self.original_init_known = original_init_known
        self.infos = {p: info(p) for p in readings}
        self.bands: dict[str, Band] = {}
        for p, r in readings.items():
            for key, layer in r.keys():
                b = make_band(key, p, layer, [r.value(n, layer) for n in order_names],
                              [r.value(n, layer) for n in init_names], self.infos[p], r.resolution, rel_tol)
                if b is not None:
                    self.bands[key] = b

    def judge(self, name: str, lineage: str = FROM_ORIGINAL) -> Verdict:
        """The verdict of model `name`, from the yardstick's readings (every model was measured with them)."""
        original = {k: r.value("original", l) for r in self.readings.values() for k, l in r.keys()}
        evidence = []
        for p, r in self.readings.items():
            inf = self.infos[p]
            for key, layer in r.keys():
                band = self.bands.get(key)
                value = r.value(name, layer)
                evidence.append(self._evidence(key, p, layer, inf, band, value, original.get(key, float("nan")),
                                               lineage, r.resolution))
        return decide(name, evidence, self.ctx.class_wise)

    def _evidence(self, key, probe, layer, inf, band, value, original_value, lineage, resolution) -> Evidence:
        trust = self.trust.for_key(key) if self.trust is not None else None
        if band is None:
            return Evidence(key, probe, layer, inf.label, inf.family, value, np.nan, np.nan, "n/a", "", False, False,
                            "no retrain band (no finite value on the yardstick)", trust)
        side = band.side(value)
        ev = Evidence(key, probe, layer, inf.label, inf.family, value, band.low, band.high, side, "", True, False,
                      "decides", trust)
        if inf.family == "context":
            ev.decides, ev.status = False, "context: where the model sits; shown, never deciding"
            return ev
        if lineage == RETRAIN and inf.against_retrain:
            ev.decides, ev.status = False, "not applicable: θ_r is this measure's reference (its value is a definition)"
            return ev
        if inf.coordinates == "theta_o" and (lineage == OTHER_INIT or not self.original_init_known):
            ev.decides = False
            ev.status = ("not applicable: read in θ_o's coordinates, and this model has another initialisation"
                         if self.original_init_known else
                         "not applicable: θ_o's initialisation is unknown (an uploaded checkpoint)")
            return ev
        if resolution > band.tol:
            ev.decides, ev.status = False, f"cannot decide: its resolution {resolution:.3g} exceeds its tolerance"
            return ev
        if band.members < 2:
            ev.decides, ev.status = False, "cannot decide: its band is made of a single retrain, not a spread"
            return ev
        if trust is not None and not trust.get("passed", True):
            ev.decides, ev.status = False, "not trusted: it failed its five-seed controls"
            return ev
        if inf.family == "output":
            o_side = band.side(original_value)
            if band.saturated_low and band.saturated_high:
                ev.decides, ev.status = False, "cannot decide: the retrain band spans the whole range"
            elif side in ("above", "below"):
                ev.toward = "θ_o" if side == o_side else "away"
                ev.counts = not (probe in UTILITY and side == "above" and ev.toward == "away")
            return ev
        holds = "above" if inf.direction > 0 else "below"
        if (band.saturated_high if holds == "above" else band.saturated_low):
            ev.decides = False
            ev.status = (f"cannot decide: the retrain band reaches the measure's "
                         f"{'upper' if holds == 'above' else 'lower'} limit, so nothing can lie beyond it")
            return ev
        if band.side(original_value) != holds:
            ev.decides = False
            ev.status = "cannot decide: θ_o itself is within the retrain band (the measure does not see D_f here)"
            return ev
        if side == holds:
            ev.toward, ev.counts = "θ_o", True
        elif side != "within":
            ev.toward = "away"
        return ev


def decide(name: str, evidence: list[Evidence], class_wise: bool) -> Verdict:
    """The verdict from one model's evidence (see the module docstring for the rule)."""
    outputs = [e for e in evidence if e.family == "output" and e.decides and e.counts]
    under = [e for e in outputs if e.toward == "θ_o"]
    over = [e for e in outputs if e.toward == "away"]
    functional = [e for e in evidence if e.family == "functional" and e.decides and e.counts]
    forget = next((e for e in evidence if e.probe == "forget_acc"), None)
    if class_wise and under and forget is not None and forget.side in ("within", "below"):
        under = []  # it forgot the class as completely as θ_r did: never under-unlearned
    if under:
        return Verdict(name, UNDER, [e.key for e in under],
                       ["outputs deviate from every retrain towards θ_o: " + "; ".join(e.text() for e in under)],
                       evidence)
    if over:
        reasons = ["outputs deviate from every retrain away from θ_o: " + "; ".join(e.text() for e in over)]
        if functional:
            reasons.append("and residuals are beyond the band too: " + "; ".join(e.text() for e in functional))
        return Verdict(name, OVER, [e.key for e in over], reasons, evidence, still_decodable=bool(functional))
    if functional:
        return Verdict(name, PSEUDO, [e.key for e in functional],
                       ["outputs are within the retrain band, but residuals are beyond it towards θ_o: "
                        + "; ".join(e.text() for e in functional)], evidence)
    return Verdict(name, CLEAN, [], ["outputs and functional residuals are within the retrain band"], evidence)


# -- the whole thing on an experiment ----------------------------------------------------------------
def lineage(exp, name: str) -> str:
    """What a model of the experiment descends from: θ_o, θ_o's initialisation (exact retrains) or another."""
    method = next((m for m in exp.config.methods if m.key == name), None)
    if exp.models.get(name) is exp.models.get("retrain"):
        return RETRAIN  # θ_r itself (also the 'retrain' method, which reuses it)
    if method is not None and methods.get(method.name).exact:
        return SAME_INIT
    return FROM_ORIGINAL


def verdicts(exp, names: list[str] | None = None, n_order: int = 2, n_init: int = 2, rel_tol: float = 0.5,
             controls: bool = True, trust=None, probe_hp: dict[str, dict] | None = None, ctx=None,
             progress: Progress | None = None) -> VerdictReport:
    """Verdicts for the experiment's models `names` (default θ_r and every unlearned model), read against a
    seed-variance yardstick, with this run's controls (see module docstring). `exp.run()` first."""
    progress = as_progress(progress)
    start = time.perf_counter()
    if "original" not in exp.models or "retrain" not in exp.models:
        raise ResidueError("The verdict needs θ_o and θ_r: run the experiment first.")
    if n_order < 1 or n_order + n_init < 2:
        raise ResidueError("The yardstick needs at least two extra retrains, one of them with θ_o's initialisation.")
    names = names if names is not None else [n for n in exp.models if n != "original"]
    warning = degenerate_original(exp)
    s = int(exp.config.seed)
    specs = ([("retain", s, s + k * ORDER_OFFSET) for k in range(1, n_order + 1)]
             + [("retain", s + k, s + k) for k in range(1, n_init + 1)])
    held = [("retain", s, s + (n_order + 1) * ORDER_OFFSET), ("retain", s + n_init + 1, s + n_init + 1)]
    trained = scratch_models(exp, specs + (held if controls else []), progress, "yardstick retrains")
    order_names = [f"yardstick: init {i}, order {o}" for _, i, o in specs[:n_order]]
    init_names = [f"yardstick: init {i}, order {o}" for _, i, o in specs[n_order:]]
    models: dict[str, nn.Module] = {"original": exp.models["original"], "retrain": exp.models["retrain"]}
    models.update({n: exp.models[n] for n in names})
    models.update(zip(order_names + init_names, trained[:len(specs)]))
    control_specs: list[tuple[str, str, str, str]] = []  # name, description, expected, lineage
    if controls:
        class_wise = bool(exp.prepare().forget_classes)
        if class_wise:
            models["control: head-only"] = head_only(exp, progress)
            control_specs.append(("control: head-only", "θ_o with only its last layer retrained on D_r: its outputs "
                                  "forget D_f, its hidden layers are θ_o's", PSEUDO, FROM_ORIGINAL))
        hn = ["control: retrain, other order", "control: retrain, other init"]
        models.update(zip(hn, trained[len(specs):]))
        control_specs += [(hn[0], f"a retrain held out of the yardstick (init {held[0][1]}, order {held[0][2]})",
                           CLEAN, SAME_INIT),
                          (hn[1], f"a retrain held out of the yardstick (init {held[1][1]}, order {held[1][2]})",
                           CLEAN, OTHER_INIT),
                          ("control: θ_o", "the original model itself", UNDER, FROM_ORIGINAL)]
    ctx = ctx or ProbeContext.from_experiment(exp)
    readings = measure_all(ctx, models, probe_hp, progress.scoped("verdict"))
    known = getattr(exp, "original_init_known", True)
    yard = Yardstick(ctx, readings, order_names, init_names,
                     {"order": order_names, "init": init_names}, rel_tol, trust, known)
    out = {n: _no_verdict(n, warning) if warning else yard.judge(n, lineage=lineage(exp, n)) for n in names}
    judged_controls, control_verdicts = [], {}
    for cname, desc, expected, lin in control_specs:
        model_name = "original" if cname == "control: θ_o" else cname
        v = _no_verdict(cname, warning) if warning else yard.judge(model_name, lineage=lin)
        v.model = cname
        control_verdicts[cname] = v
        judged_controls.append(Control(cname, desc, expected, v.label, v.label == expected))
    values = {n: {k: r.value(n, l) for p, r in readings.items() for k, l in r.keys()} for n in models}
    progress("verdict", 1, 1)
    return VerdictReport(yard.descriptions, yard.bands, out, judged_controls, control_verdicts, values,
                         {p: info(p).to_dict() for p in readings}, warning,
                         {"rel_tol": rel_tol, "n_order": n_order, "n_init": n_init, "controls": controls,
                          "probe_hp": probe_hp or {}, "readout_C": readings.get("decodability").extra.get("C")
                          if "decodability" in readings else None},
                         time.perf_counter() - start)


def _no_verdict(name: str, warning: str) -> Verdict:
    return Verdict(name, NO_VERDICT, [], [warning], [])
