"""How far can each residual measure be trusted? (science.md §3: every residual measure carries its own
trust figure.)

Over n ≥ 5 seeds s, each seed is a small "world" with its own references θ_o^s (trained on D_train with
init s, order s) and θ_r^s (retrained on D_r from the same init s). In each world four candidates are
measured against those references:

  holds D_f:    θ_o^s fine-tuned briefly on D_r (shares the references' initialisation),
                θ_o^{s+1}, the original of the next seed (another initialisation);
  never saw it: θ_r'^s, a retrain with init s and another data order (shares the initialisation),
                θ_r^{s+1}, the retrain of the next seed (another initialisation).

Each group holds one model with and one without the references' initialisation, so a measure that
only sees the initialisation (weight distance, CKA: the initialisation confound) cannot score well.
For every measure the trust figure is the AUC with which it separates the two groups (ranked in the
measure's declared direction; two-sided output measures use max(AUC, 1 − AUC)). AUC ≥ 0.85 is
labelled strong, ≥ 0.7 moderate, anything else weak (0.5 = a coin).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..progress import Progress, as_progress
from ..results import _clean
from .common import ProbeData
from .measures import MEASURES, MeasureSet, finetuned, scratch_models

ORDER_OFFSET = 7919  # data-order seed of the "same init, other order" retrains: init s, order s + k·offset
HEATMAP_TRUST = {"weight_dist_r": "weight_dist_r", "weight_dist_o": "weight_dist_o", "cka_o": "cka_o",
                 "cka_r": "cka_o", "probe_acc": "probe_acc", "attribution": "attribution",
                 "patch_recovery": "depth", "patch_drop": "depth"}


def auc(pos, neg) -> float:
    """Probability that a random positive scores above a random negative (ties count half); NaN-free inputs."""
    pos = np.asarray([p for p in pos if np.isfinite(p)], dtype=float)
    neg = np.asarray([n for n in neg if np.isfinite(n)], dtype=float)
    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    diff = pos[:, None] - neg[None, :]
    return float(((diff > 0).sum() + 0.5 * (diff == 0).sum()) / diff.size)


def strength(a: float) -> str:
    if not np.isfinite(a):
        return "n/a"
    return "strong" if a >= 0.85 else "moderate" if a >= 0.7 else "weak"


def oriented_auc(holds, never, direction: int) -> float:
    """AUC of 'holds D_f' against 'never saw it' in the measure's direction (0: two-sided)."""
    if direction < 0:
        return auc([-v for v in holds], [-v for v in never])
    a = auc(holds, never)
    if direction == 0 and np.isfinite(a):
        return max(a, 1 - a)
    return a


@dataclass
class TrustEntry:
    measure: str
    label: str
    family: str
    direction: int
    auc: float
    strength: str
    holds: list[float]
    never: list[float]

    def to_dict(self) -> dict[str, Any]:
        return _clean(self.__dict__)


@dataclass
class TrustReport:
    seeds: list[int]
    entries: dict[str, TrustEntry]
    per_layer: dict[str, list[float]] = field(default_factory=dict)  # heatmap metric -> AUC per layer
    layers: list[str] = field(default_factory=list)
    candidates: list[dict[str, Any]] = field(default_factory=list)  # world, name, group, measure values
    seconds: float = 0.0
    settings: dict[str, Any] = field(default_factory=dict)

    def auc(self, measure: str) -> float:
        return self.entries[measure].auc if measure in self.entries else float("nan")

    def strength(self, measure: str) -> str:
        return self.entries[measure].strength if measure in self.entries else "n/a"

    def for_heatmap(self, metric: str) -> dict[str, Any]:
        """{"auc", "strength", "per_layer"} of the trust measure behind a layer-heatmap metric."""
        m = HEATMAP_TRUST.get(metric, metric)
        return {"measure": m, "auc": self.auc(m), "strength": self.strength(m),
                "per_layer": self.per_layer.get(metric, [])}

    def to_dict(self) -> dict[str, Any]:
        return _clean({"seeds": self.seeds, "entries": {k: v.to_dict() for k, v in self.entries.items()},
                       "per_layer": self.per_layer, "layers": self.layers, "candidates": self.candidates,
                       "seconds": self.seconds, "settings": self.settings})


def trust_from_values(holds: dict[str, list[float]], never: dict[str, list[float]],
                      measures: dict[str, Any] | None = None) -> dict[str, TrustEntry]:
    """Trust entries from measure values of the two groups. `measures` maps a name to a `Measure` (or to a
    direction int for measures not in `MEASURES`, e.g. an attack's score)."""
    out = {}
    for name in holds:
        spec = (measures or {}).get(name, MEASURES.get(name))
        direction = spec if isinstance(spec, int) else (spec.direction if spec is not None else +1)
        label = getattr(spec, "label", name)
        family = getattr(spec, "family", "extra")
        a = oriented_auc(holds[name], never[name], direction)
        out[name] = TrustEntry(name, label, family, direction, a, strength(a), list(map(float, holds[name])),
                               list(map(float, never[name])))
    return out


def trust(exp, n_seeds: int = 5, data: ProbeData | None = None, ft_epochs: int = 1, ft_lr: float = 1e-3,
          progress: Progress | None = None, **measure_options) -> TrustReport:
    """Trust AUC of every measure over `n_seeds` worlds (see module docstring). Trains 3·n_seeds models from
    scratch (batched, cached; the experiment's own θ_o and θ_r are world 0) and n_seeds brief fine-tunings."""
    progress = as_progress(progress)
    if n_seeds < 2:
        raise ValueError("trust needs at least 2 seeds (5 or more for a meaningful AUC).")
    start = time.perf_counter()
    exp.prepare()
    data = data or ProbeData.from_experiment(exp)
    s0 = int(exp.config.seed)
    seeds = [s0 + i for i in range(n_seeds)]
    specs = ([("train", s, s) for s in seeds] + [("retain", s, s) for s in seeds]
             + [("retain", s, s + ORDER_OFFSET) for s in seeds])
    models = scratch_models(exp, specs, progress, "trust models")
    orig = dict(zip(seeds, models[:n_seeds]))
    retr = dict(zip(seeds, models[n_seeds:2 * n_seeds]))
    alt = dict(zip(seeds, models[2 * n_seeds:]))
    holds: dict[str, list[float]] = {m: [] for m in MEASURES}
    never: dict[str, list[float]] = {m: [] for m in MEASURES}
    layer_vals: dict[str, dict[str, list[list[float]]]] = {"holds": {}, "never": {}}
    candidates = []
    layers: list[str] = []
    total = 4 * n_seeds
    done = 0
    for i, s in enumerate(seeds):
        nxt = seeds[(i + 1) % n_seeds]
        ms = MeasureSet(orig[s], retr[s], data, seed=s, **measure_options)
        layers = ms.prober.layers
        group = [("holds", f"θ_o^{s} fine-tuned {ft_epochs} epoch(s) on D_r", finetuned(exp, orig[s], ft_epochs, ft_lr)),
                 ("holds", f"θ_o^{nxt} (other seed)", orig[nxt]),
                 ("never", f"θ_r^{s} other data order", alt[s]),
                 ("never", f"θ_r^{nxt} (other seed)", retr[nxt])]
        for g, name, model in group:
            lp = ms.layers(model, name)
            vals = ms(model, name, lp)
            for k, v in vals.items():
                (holds if g == "holds" else never)[k].append(v)
            for metric in HEATMAP_TRUST:
                layer_vals[g].setdefault(metric, []).append(lp.values(metric))
            candidates.append({"world": s, "name": name, "group": g, "values": vals})
            done += 1
            progress("trust", done, total)
    entries = trust_from_values(holds, never)
    per_layer = {}
    for metric, measure in HEATMAP_TRUST.items():
        direction = MEASURES[measure].direction
        if metric in ("patch_recovery",):
            direction = -1  # recovering θ_r's drop = erased
        elif metric == "patch_drop":
            direction = -1
        elif metric == "cka_r":
            direction = -1
        h = np.asarray(layer_vals["holds"][metric], dtype=float)
        n = np.asarray(layer_vals["never"][metric], dtype=float)
        per_layer[metric] = [oriented_auc(h[:, j], n[:, j], direction) for j in range(h.shape[1])]
    return TrustReport(seeds, entries, per_layer, layers, candidates, time.perf_counter() - start,
                       {"n_seeds": n_seeds, "ft_epochs": ft_epochs, "ft_lr": ft_lr, "order_offset": ORDER_OFFSET,
                        "thresholds": {"strong": 0.85, "moderate": 0.7}})
