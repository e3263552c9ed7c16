"""The interface every residual measure shares (science.md §3, §3.1), the same shape as methods and attacks.

A probe is a class with declared hyperparameters (`core.params.Param`), no work in the constructor, one
metadata record (`ProbeInfo`: label, family, direction, range, caption...) and one verb:

    readings = get_probe("decodability").measure(ctx, {"original": θ_o, "ssd": θ_u, ...})

`measure` returns a `Readings`: one list of values per model (one value, or one per layer of
`Readings.layers`) and the measure's resolution. Probes measure many models at once, so those that fine-tune
copies (relearning) run them as one batch. The engine (the verdict's yardstick and controls), the figures
(heatmap rows, captions, axis labels) and the report all read the same `ProbeInfo`, so a measure is
described once. Adding a measure is one class in one file, decorated with `@register`.

The metadata says what a measure may conclude:
* family  — "output" (what an outsider without θ_r sees), "functional" (residual evidence that may make an
  output-matching model pseudo-converged) or "context" (where a model sits; shown, never deciding);
* direction — +1 when a higher value points towards θ_o ("still holds D_f"), −1 when a lower one does;
* lo, hi — the range: a retrain band that touches a limit on the decisive side cannot be crossed, so the
  measure "cannot decide" there (the saturation rule of science.md §3.1);
* coordinates — "theta_o" for measures read in θ_o's coordinates (patching, barriers to θ_o / θ_r): they are
  compared only with retrains that share θ_o's initialisation and say nothing about a model that does not;
* forgetting — "class", "sample" or "any": the forgetting kind a measure applies to.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from ..params import Param, check_params
from ..registry import Registry
from ..results import _clean
from .common import ProbeData, layer_outputs

probes: Registry = Registry("probe")

FAMILIES = ("output", "functional", "context")


@dataclass(frozen=True)
class ProbeInfo:
    """What a measure is, once, for the engine, the figures and the report."""

    name: str
    label: str  # short, for tables and axes
    family: str  # "output" | "functional" | "context"
    direction: int  # +1: higher = towards θ_o (holds D_f); -1: lower = towards θ_o
    caption: str  # one or two sentences: what it measures and how to read it
    unit: str = ""
    lo: float = 0.0  # range of the measure
    hi: float = 1.0
    per_layer: bool = False
    coordinates: str = "any"  # "theta_o": only comparable between models that share θ_o's initialisation
    forgetting: str = "any"  # "class" | "sample" | "any"
    abs_tol: float = 0.0  # smallest tolerance around the retrain band (above the resolution)
    reading: bool = False  # the definition is our reading of the paper
    in_verdict: bool = True  # measured on the yardstick and the controls (False: costly context, heatmap only)
    against_retrain: bool = False  # measured against θ_r itself: θ_r's own value is a definition, not a reading

    def applies(self, class_wise: bool) -> bool:
        return self.forgetting == "any" or (self.forgetting == "class") == class_wise

    def to_dict(self) -> dict[str, Any]:
        return _clean(dict(self.__dict__))


@dataclass
class Readings:
    """One probe's values on many models: `values[model]` is one value, or one per layer of `layers`."""

    probe: str
    values: dict[str, list[float]]
    layers: list[str] | None = None  # None: one value per model
    resolution: float = 0.0  # the smallest change the measure can show (1/n for an accuracy on n samples)
    baseline: list[float] | None = None  # the same measure on the raw input (per-layer probes), if it has one
    settings: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)  # per-model details a figure may draw

    def value(self, model: str, layer: str | None = None) -> float:
        v = self.values.get(model)
        if not v:
            return float("nan")
        return float(v[self.layers.index(layer)] if layer is not None and self.layers else v[0])

    def keys(self) -> list[tuple[str, str | None]]:
        """(evidence key, layer): one per layer for per-layer probes, else one."""
        if self.layers:
            return [(f"{self.probe}@{l}", l) for l in self.layers]
        return [(self.probe, None)]

    def to_dict(self) -> dict[str, Any]:
        return _clean({"probe": self.probe, "values": self.values, "layers": self.layers,
                       "resolution": self.resolution, "baseline": self.baseline, "settings": self.settings,
                       "extra": self.extra})


class ProbeContext:
    """What probes read, built once per (θ_o, θ_r, data): the references, the probe data and a memo of
    what several probes share (each model's activations on D_f and on the held-out data)."""

    def __init__(self, original: nn.Module, retrain: nn.Module, data: ProbeData, seed: int = 0, split: Any = None,
                 template_factory: Any = None):
        self.original, self.retrain, self.data = original.eval(), retrain.eval(), data
        self.seed, self.split = int(seed), split
        self.template_factory = template_factory  # seed -> fresh model (relearning needs a template)
        self.layers = list(original.layer_names)
        self.hidden = list(original.hidden_layer_names)
        self.memo: dict[Any, Any] = {}

    @classmethod
    def from_experiment(cls, exp, data: ProbeData | None = None) -> "ProbeContext":
        return cls(exp.models["original"], exp.models["retrain"], data or ProbeData.from_experiment(exp),
                   exp.config.seed, exp.prepare(), exp.fresh_model)

    @property
    def class_wise(self) -> bool:
        return bool(self.data.forget_classes)

    def acts(self, model: nn.Module, part: str) -> dict[str, torch.Tensor]:
        """Every layer's output of `model` on 'forget', 'heldout' or 'retain_sample' (memoised per model)."""
        key = ("acts", id(model), part)
        if key not in self.memo:
            self.memo[key] = (model, layer_outputs(model, getattr(self.data, part)[0]))  # keeps the model alive
        return self.memo[key][1]

    def shared(self, key: Any, build) -> Any:
        """A value several probes or calls share (built once per context)."""
        if key not in self.memo:
            self.memo[key] = build()
        return self.memo[key]

    def shared_by(self, tag: tuple, models: dict[str, nn.Module], build) -> Any:
        """`shared` for a value computed on a set of models (several scores of one fit): keyed by the models'
        names and identities, so another set is computed afresh. The models must stay alive while the context
        is used (`acts` keeps every model it saw), or a new model could reuse an id."""
        return self.shared((*tag, tuple(sorted(models)), tuple(id(m) for m in models.values())), build)


class Probe:
    """Base class of every registered measure (see module docstring)."""

    name: ClassVar[str] = ""
    label: ClassVar[str] = ""
    family: ClassVar[str] = "context"
    direction: ClassVar[int] = +1
    caption: ClassVar[str] = ""
    unit: ClassVar[str] = ""
    lo: ClassVar[float] = 0.0
    hi: ClassVar[float] = 1.0
    per_layer: ClassVar[bool] = False
    coordinates: ClassVar[str] = "any"
    forgetting: ClassVar[str] = "any"
    abs_tol: ClassVar[float] = 0.0
    reading: ClassVar[bool] = False
    in_verdict: ClassVar[bool] = True
    against_retrain: ClassVar[bool] = False
    params: ClassVar[tuple[Param, ...]] = ()

    def __init__(self, **hyper: Any):
        self.hp = check_params(self.name, self.params, hyper)

    @classmethod
    def info(cls) -> ProbeInfo:
        return ProbeInfo(cls.name, cls.label, cls.family, cls.direction, cls.caption, cls.unit, cls.lo, cls.hi,
                         cls.per_layer, cls.coordinates, cls.forgetting, cls.abs_tol, cls.reading, cls.in_verdict,
                         cls.against_retrain)

    def measure(self, ctx: ProbeContext, models: dict[str, nn.Module]) -> Readings:
        raise NotImplementedError

    def _readings(self, values: dict[str, list[float]], layers: list[str] | None = None, resolution: float = 0.0,
                  **kw: Any) -> Readings:
        return Readings(self.name, {k: [float(x) for x in v] for k, v in values.items()}, layers, resolution,
                        settings=dict(self.hp), **kw)


def register(cls: type[Probe]) -> type[Probe]:
    assert cls.family in FAMILIES, cls.family
    return probes.register(cls.name)(cls)


def get_probe(name: str, **hyper: Any) -> Probe:
    return probes.get(name)(**hyper)


def info(name: str) -> ProbeInfo:
    return probes.get(name).info()


def infos(family: str | None = None, per_layer: bool | None = None) -> list[ProbeInfo]:
    """The metadata of every registered probe (optionally of one family / per-layer or not), in order."""
    out = [probes.get(n).info() for n in probes.names()]
    return [i for i in out if (family is None or i.family == family) and (per_layer is None or i.per_layer == per_layer)]


def auc(pos, neg) -> float:
    """Probability that a random positive scores above a random negative (ties count half); NaNs dropped."""
    pos = np.asarray([p for p in pos if np.isfinite(p)], dtype=float)
    neg = np.asarray([n for n in neg if np.isfinite(n)], dtype=float)
    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    diff = pos[:, None] - neg[None, :]
    return float(((diff > 0).sum() + 0.5 * (diff == 0).sum()) / diff.size)
