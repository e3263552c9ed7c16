"""Per-layer measures (science.md §3 (a)–(e)) and the layer report the heatmap draws.

Context measures registered here, one row per layer:
(a) relative weight distance of each layer to θ_r and to θ_o,
(b) linear CKA between the model's and θ_o's (or θ_r's) activations on D_f,
(d) captum layer attribution mass on D_f (LayerConductance by default, LayerIntegratedGradients optional):
    mean over forget samples of Σ_neurons |attribution| towards the true label.
They say *where the model sits* (every method that starts from θ_o stays near θ_o: the initialisation confound),
not whether it remembers, so they never decide a verdict. The functional per-layer measures — decodability of
the forgotten class (c) and activation patching (e) — live in `decodability.py` and `patching.py`.

`layer_probes(models, data)` runs every registered per-layer probe (and the depth score) on every model and
returns a `LayerReport`: rows = layers, columns = models, one matrix per measure.
"""
from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ..params import Param
from ..progress import Progress, as_progress
from ..results import _clean
from .base import Probe, ProbeContext, Readings, info, infos, register
from .common import ProbeData, layer_params


# -- (b) CKA --------------------------------------------------------------------------------------
def linear_cka(X: torch.Tensor, Y: torch.Tensor) -> float:
    """Linear CKA (Kornblith et al. 2019) between two activation matrices with the same rows.

    Invariant to orthogonal transforms and isotropic scaling of either side; 1 for identical features."""
    X = X.flatten(1).double()
    Y = Y.flatten(1).double()
    X = X - X.mean(0, keepdim=True)
    Y = Y - Y.mean(0, keepdim=True)
    # the n x n Gram form is cheaper when features outnumber samples
    if X.shape[1] + Y.shape[1] > 2 * X.shape[0]:
        Kx, Ky = X @ X.T, Y @ Y.T
        hsic, nx, ny = (Kx * Ky).sum(), Kx.norm(), Ky.norm()
    else:
        hsic = (Y.T @ X).norm() ** 2
        nx, ny = (X.T @ X).norm(), (Y.T @ Y).norm()
    denom = float(nx * ny)
    if denom <= 1e-24:
        return float("nan")  # a constant layer (e.g. all ReLUs dead on D_f)
    return float(hsic / (nx * ny))


# -- (a) weight distance --------------------------------------------------------------------------
def weight_distances(model: nn.Module, ref: nn.Module) -> list[float]:
    """Per layer ‖θ_l − θ_ref,l‖ / ‖θ_ref,l‖ (all parameters of the block)."""
    a, b = layer_params(model), layer_params(ref)
    out = []
    for name in a:
        num = math.sqrt(sum(float(((p - q) ** 2).sum()) for p, q in zip(a[name], b[name])))
        den = math.sqrt(sum(float((q ** 2).sum()) for q in b[name]))
        out.append(num / den if den > 0 else float("nan"))
    return out


def weight_distance(model: nn.Module, ref: nn.Module) -> float:
    """Relative distance over all parameters."""
    num = sum(float(((p.detach() - q.detach()) ** 2).sum()) for p, q in zip(model.parameters(), ref.parameters()))
    den = sum(float((q.detach() ** 2).sum()) for q in ref.parameters())
    return math.sqrt(num / den) if den > 0 else float("nan")


# -- (d) attribution ------------------------------------------------------------------------------
def attribution_mass(model: nn.Module, X: torch.Tensor, y: torch.Tensor, layers: list[str],
                     method: str = "conductance", n_steps: int = 16) -> tuple[list[float], list[float]]:
    """captum layer attribution towards the true label on (X, y), per layer: (mass, net).

    mass = mean over samples of Σ_neurons |attribution|; net = mean of Σ_neurons attribution (by the
    completeness axiom roughly the logit gain from the all-zero input, the same for every layer)."""
    from captum.attr import LayerConductance, LayerIntegratedGradients

    cls = {"conductance": LayerConductance, "integrated_gradients": LayerIntegratedGradients}[method]
    model.eval()
    mass, net = [], []
    with torch.enable_grad():
        for name in layers:
            attr = cls(model, model.blocks[name]).attribute(X, baselines=torch.zeros_like(X), target=y,
                                                             n_steps=n_steps)
            if isinstance(attr, (tuple, list)):
                attr = attr[0]
            attr = attr.detach().flatten(1).double()
            mass.append(float(attr.abs().sum(1).mean()))
            net.append(float(attr.sum(1).mean()))
    return mass, net


# -- the context measures, registered --------------------------------------------------------------
class _WeightDistance(Probe):
    family, per_layer, lo, hi = "context", True, 0.0, float("inf")
    ref: str = ""

    def measure(self, ctx: ProbeContext, models: dict) -> Readings:
        ref = ctx.original if self.ref == "o" else ctx.retrain
        return self._readings({n: weight_distances(m, ref) for n, m in models.items()}, ctx.layers)


@register
class WeightDistanceO(_WeightDistance):
    name, ref, direction, coordinates = "weight_dist_o", "o", -1, "theta_o"
    label = "weight distance to θ_o"
    caption = "How far each layer's weights moved from θ_o's, relative to θ_o's norm: where the model sits, not what it remembers."


@register
class WeightDistanceR(_WeightDistance):
    name, ref, direction, coordinates, against_retrain = "weight_dist_r", "r", +1, "theta_o", True
    label = "weight distance to θ_r"
    caption = "How far each layer's weights are from θ_r's, relative to θ_r's norm: where the model sits, not what it remembers."


class _Cka(Probe):
    family, per_layer = "context", True
    ref: str = ""

    def measure(self, ctx: ProbeContext, models: dict) -> Readings:
        ref = ctx.acts(ctx.original if self.ref == "o" else ctx.retrain, "forget")
        out = {}
        for n, m in models.items():
            acts = ctx.acts(m, "forget")
            out[n] = [linear_cka(acts[l], ref[l]) for l in ctx.layers]
        return self._readings(out, ctx.layers)


@register
class CkaO(_Cka):
    name, ref, direction = "cka_o", "o", +1
    label = "CKA to θ_o on D_f"
    caption = "How similar the layer's activations on D_f are to θ_o's (1 = the same up to rotation and scale)."


@register
class CkaR(_Cka):
    name, ref, direction, against_retrain = "cka_r", "r", -1, True
    label = "CKA to θ_r on D_f"
    caption = "How similar the layer's activations on D_f are to θ_r's (1 = the same up to rotation and scale)."


@register
class Attribution(Probe):
    name = "attribution"
    label = "attribution mass on D_f"
    family, per_layer, direction, lo, hi = "context", True, +1, 0.0, float("inf")
    in_verdict = False  # the costliest context measure: drawn in the heatmap, not measured on every retrain
    caption = "The attribution (captum) that flows through the layer towards the true label on D_f."
    params = (Param("method", "conductance", help="captum layer attribution", choices=("conductance",
                                                                                       "integrated_gradients")),
              Param("n_steps", 16, 2, 256, "integration steps"))

    def measure(self, ctx: ProbeContext, models: dict) -> Readings:
        fX, fy = ctx.data.forget
        # captum hooks the layers it attributes: on a private copy, so other threads reading the model never run
        # through those hooks
        out = {n: attribution_mass(copy.deepcopy(m), fX, fy, ctx.layers, self.hp["method"], self.hp["n_steps"])[0]
               for n, m in models.items()}
        return self._readings(out, ctx.layers)


# -- the layer report ------------------------------------------------------------------------------
@dataclass
class LayerReport:
    """Every per-layer measure of every model: rows = layers, columns = models (θ_o, θ_r first)."""

    layers: list[str]
    columns: list[str]
    values: dict[str, dict[str, list[float]]]  # measure -> model -> one value per layer (NaN where none)
    baselines: dict[str, float] = field(default_factory=dict)  # measure -> its value on the raw input
    depth: dict[str, float] = field(default_factory=dict)  # model -> unlearning depth score
    patching: dict[str, dict] = field(default_factory=dict)  # model -> PatchingResult.to_dict()
    measures: dict[str, dict] = field(default_factory=dict)  # measure -> ProbeInfo.to_dict()
    settings: dict[str, Any] = field(default_factory=dict)
    trust: dict[str, dict[str, Any]] = field(default_factory=dict)  # measure -> control hit rates
    seconds: dict[str, float] = field(default_factory=dict)

    def matrix(self, metric: str) -> list[list[float]]:
        """rows = layers, columns = models (`columns`), for the layer heatmap."""
        cols = [self.values[metric][c] for c in self.columns]
        return [[cols[j][i] for j in range(len(cols))] for i in range(len(self.layers))]

    def row(self, metric: str, model: str) -> list[float]:
        return list(self.values[metric][model])

    def depth_scores(self) -> dict[str, float]:
        return dict(self.depth)

    def to_dict(self) -> dict[str, Any]:
        return _clean({"layers": self.layers, "columns": self.columns, "values": self.values,
                       "baselines": self.baselines, "depth": self.depth, "patching": self.patching,
                       "measures": self.measures, "settings": self.settings, "trust": self.trust,
                       "seconds": self.seconds})


def _padded(r: Readings, layers: list[str]) -> dict[str, list[float]]:
    """A per-layer reading on the report's rows (hidden-layer measures get NaN for the head)."""
    return {n: [r.value(n, l) if l in (r.layers or []) else float("nan") for l in layers] for n in r.values}


def layer_probes(models: dict[str, nn.Module], data: ProbeData | ProbeContext, original: str = "original",
                 retrain: str = "retrain", progress: Progress | None = None, attribution: str = "conductance",
                 patch_threshold: float = 0.05, seed: int = 0) -> LayerReport:
    """Every registered per-layer measure (and the depth score) of every model in `models` (θ_o and θ_r
    included as reference columns). `data` may be a `ProbeContext` already holding activations."""
    from .measures import measure

    progress = as_progress(progress)
    ctx = data if isinstance(data, ProbeContext) else ProbeContext(models[original], models[retrain], data, seed)
    order = [original, retrain] + [n for n in models if n not in (original, retrain)]
    ordered = {n: models[n] for n in order}
    hp = {"attribution": {"method": attribution}, "patch_ratio": {"threshold": patch_threshold},
          "patch_drop": {"threshold": patch_threshold}, "depth": {"threshold": patch_threshold}}
    names = [i.name for i in infos(per_layer=True) if i.applies(ctx.class_wise)]
    values, baselines, secs = {}, {}, {}
    for k, name in enumerate(names):
        t = time.perf_counter()
        r = measure(ctx, name, ordered, **hp.get(name, {}))
        values[name] = _padded(r, ctx.layers)
        if r.baseline:
            baselines[name] = float(r.baseline[0])
        secs[name] = time.perf_counter() - t
        progress("layer probes", k + 1, len(names) + 1)
    d = measure(ctx, "depth", ordered, **hp["depth"])
    progress("layer probes", len(names) + 1, len(names) + 1)
    return LayerReport(ctx.layers, order, values, baselines, {n: d.value(n) for n in order},
                       d.extra.get("patching", {}), {n: info(n).to_dict() for n in [*names, "depth"]},
                       {"attribution": attribution, "patch_threshold": patch_threshold,
                        "probe_fit": "held-out (test + shadow)", "n_forget": int(len(ctx.data.forget[1])),
                        "n_heldout": int(len(ctx.data.heldout[1]))}, seconds=secs)
