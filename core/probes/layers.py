"""Per-layer residual probes (science.md §3 (a)–(e)), one row per layer, one column per model.

(a) relative weight distance of each layer to θ_r and to θ_o,
(b) linear CKA between the model's and θ_o's activations on D_f (θ_r's column is the reference),
(c) linear-probe accuracy: a linear read-out of the labels fitted on frozen layer features of held-out
    data (test + shadow pool, never trained on), evaluated on D_f: how decodable the forgotten data
    still is from that layer,
(d) captum layer attribution mass on D_f (LayerConductance by default, LayerIntegratedGradients optional):
    mean over forget samples of Σ_neurons |attribution| towards the true label,
(e) activation patching and the depth score (see `patching.py`).

(a) and (b) say *where the model sits* (every method that starts from θ_o stays near θ_o: the
initialisation confound), not whether it remembers; the verdict never decides on them.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from ..progress import Progress, as_progress
from ..results import _clean
from .common import ProbeData, layer_outputs, layer_params
from .patching import PatchingResult, patching

METRICS = {
    "weight_dist_r": "relative weight distance to θ_r",
    "weight_dist_o": "relative weight distance to θ_o",
    "cka_o": "linear CKA to θ_o on D_f",
    "cka_r": "linear CKA to θ_r on D_f",
    "probe_acc": "linear-probe accuracy on D_f",
    "attribution": "attribution mass on D_f",
    "patch_recovery": "patching: share of θ_r's drop reproduced (clip(Δ²/Δ¹, 0, 1))",
    "patch_drop": "patching: drop Δ² of θ_o's true-label log-prob",
}


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


# -- (c) linear probe -----------------------------------------------------------------------------
def linear_probe_accuracy(F_fit: torch.Tensor, y_fit: torch.Tensor, F_eval: torch.Tensor, y_eval: torch.Tensor,
                          n_classes: int, ridge: float = 1e-2, kind: str = "ridge") -> float:
    """Fit a linear read-out of labels on (F_fit, y_fit), return its accuracy on (F_eval, y_eval).

    kind="ridge" (default): least squares onto one-hot labels on standardised features, ridge penalty
    `ridge`·n — closed form, deterministic, milliseconds. kind="logistic": scikit-learn's multinomial
    logistic regression (C = 1/ridge), slower."""
    Ff = F_fit.flatten(1).double()
    Fe = F_eval.flatten(1).double()
    mu, sd = Ff.mean(0), Ff.std(0).clamp_min(1e-6)
    Ff, Fe = (Ff - mu) / sd, (Fe - mu) / sd
    if kind == "logistic":
        from sklearn.linear_model import LogisticRegression

        clf = LogisticRegression(C=1.0 / max(ridge, 1e-8), max_iter=500)
        clf.fit(Ff.cpu().numpy(), y_fit.cpu().numpy())
        return float((clf.predict(Fe.cpu().numpy()) == y_eval.cpu().numpy()).mean())
    n, p = Ff.shape
    Y = torch.nn.functional.one_hot(y_fit, n_classes).double()
    ym = Y.mean(0)
    Yc = Y - ym
    lam = ridge * n
    if p <= n:
        W = torch.linalg.solve(Ff.T @ Ff + lam * torch.eye(p, dtype=Ff.dtype, device=Ff.device), Ff.T @ Yc)
    else:  # dual form: p x p would be larger than n x n
        W = Ff.T @ torch.linalg.solve(Ff @ Ff.T + lam * torch.eye(n, dtype=Ff.dtype, device=Ff.device), Yc)
    pred = (Fe @ W + ym).argmax(1)
    return float((pred == y_eval).double().mean())


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


# -- one model, all layers ------------------------------------------------------------------------
@dataclass
class LayerProbe:
    """Every per-layer measure of one model (lists follow `layers`)."""

    model: str
    layers: list[str]
    weight_dist_r: list[float]
    weight_dist_o: list[float]
    cka_o: list[float]
    cka_r: list[float]
    probe_acc: list[float]
    attribution: list[float]
    attribution_net: list[float]
    patching: PatchingResult | None
    total_dist_r: float = float("nan")
    total_dist_o: float = float("nan")

    @property
    def depth(self) -> float:
        return self.patching.depth if self.patching is not None else float("nan")

    def values(self, metric: str) -> list[float]:
        """Per-layer values of one metric (NaN where a layer has none, e.g. patching the logits)."""
        if metric in ("patch_recovery", "patch_drop"):
            out = [float("nan")] * len(self.layers)
            if self.patching is None:
                return out
            for l, d1, d2, u in zip(self.patching.layers, self.patching.drop_retrain, self.patching.drop_model,
                                    self.patching.used):
                i = self.layers.index(l)
                if metric == "patch_drop":
                    out[i] = d2
                elif u:
                    out[i] = float(np.clip(d2 / d1, 0.0, 1.0))
            return out
        return list(getattr(self, metric))

    def summary(self) -> dict[str, float]:
        """One number per measure, for verdicts and trust AUCs (see `trust.MEASURES`)."""
        hidden = [i for i, l in enumerate(self.layers) if l != "head"] or list(range(len(self.layers)))

        def mean(v):
            v = [v[i] for i in hidden if np.isfinite(v[i])]
            return float(np.mean(v)) if v else float("nan")

        return {
            "weight_dist_r": self.total_dist_r, "weight_dist_o": self.total_dist_o,
            "cka_o": mean(self.cka_o), "probe_acc": float(np.nanmax([self.probe_acc[i] for i in hidden])),
            "attribution": mean(self.attribution), "depth": self.depth,
        }

    def to_dict(self) -> dict[str, Any]:
        d = {k: getattr(self, k) for k in ("model", "layers", "weight_dist_r", "weight_dist_o", "cka_o", "cka_r",
                                           "probe_acc", "attribution", "attribution_net", "total_dist_r",
                                           "total_dist_o")}
        d["patching"] = self.patching.to_dict() if self.patching is not None else None
        d["depth"] = self.depth
        d["patch_recovery"] = self.values("patch_recovery")
        return _clean(d)


@dataclass
class LayerReport:
    """Per-layer measures for every model; columns: θ_o, θ_r (references) and each method."""

    layers: list[str]
    models: dict[str, LayerProbe]
    probe_input_baseline: float  # linear-probe accuracy on D_f from the raw inputs (no model at all)
    settings: dict[str, Any] = field(default_factory=dict)
    trust: dict[str, dict[str, Any]] = field(default_factory=dict)  # measure -> {"auc":..., "label":...}
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def columns(self) -> list[str]:
        return list(self.models)

    def matrix(self, metric: str) -> list[list[float]]:
        """rows = layers, columns = models (`columns`), for the layer heatmap."""
        cols = [self.models[c].values(metric) for c in self.columns]
        return [[cols[j][i] for j in range(len(cols))] for i in range(len(self.layers))]

    def depth_scores(self) -> dict[str, float]:
        return {n: p.depth for n, p in self.models.items()}

    def to_dict(self) -> dict[str, Any]:
        return _clean({"layers": self.layers, "models": {k: v.to_dict() for k, v in self.models.items()},
                       "probe_input_baseline": self.probe_input_baseline, "settings": self.settings,
                       "trust": self.trust, "seconds": self.seconds, "metrics": METRICS})


class LayerProber:
    """Computes `LayerProbe`s against fixed references θ_o and θ_r, reusing their activations.

    Build once per (θ_o, θ_r, data); call `probe(name, model)` for each model to compare."""

    def __init__(self, original: nn.Module, retrain: nn.Module, data: ProbeData, attribution: str = "conductance",
                 n_steps: int = 16, probe_kind: str = "ridge", ridge: float = 1e-2, patch_threshold: float = 0.05,
                 patch_layers: list[str] | None = None):
        self.original, self.retrain, self.data = original.eval(), retrain.eval(), data
        self.layers = list(original.layer_names)
        self.patch_layers = list(patch_layers) if patch_layers is not None else list(original.hidden_layer_names)
        self.attribution_method, self.n_steps = attribution, n_steps
        self.probe_kind, self.ridge, self.patch_threshold = probe_kind, ridge, patch_threshold
        fX, fy = data.forget
        self.acts_o = layer_outputs(original, fX)
        self.acts_r = layer_outputs(retrain, fX)
        self._input_baseline: float | None = None

    @property
    def settings(self) -> dict[str, Any]:
        return {"attribution": self.attribution_method, "n_steps": self.n_steps, "probe": self.probe_kind,
                "ridge": self.ridge, "patch_threshold": self.patch_threshold, "patch_layers": self.patch_layers,
                "probe_fit": "held-out (test + shadow)", "n_forget": int(len(self.data.forget[1])),
                "n_heldout": int(len(self.data.heldout[1]))}

    def input_baseline(self) -> float:
        if self._input_baseline is None:
            (hX, hy), (fX, fy) = self.data.heldout, self.data.forget
            self._input_baseline = linear_probe_accuracy(hX, hy, fX, fy, self.data.n_classes, self.ridge,
                                                         self.probe_kind)
        return self._input_baseline

    @torch.no_grad()
    def probe(self, name: str, model: nn.Module, parts: tuple[str, ...] = ("weights", "cka", "probe", "attribution",
                                                                           "patching")) -> LayerProbe:
        model.eval()
        (fX, fy), (hX, hy) = self.data.forget, self.data.heldout
        nan = [float("nan")] * len(self.layers)
        acts = layer_outputs(model, fX) if {"cka", "patching"} & set(parts) else {}
        wr = weight_distances(model, self.retrain) if "weights" in parts else nan
        wo = weight_distances(model, self.original) if "weights" in parts else nan
        cka_o = [linear_cka(acts[l], self.acts_o[l]) for l in self.layers] if "cka" in parts else nan
        cka_r = [linear_cka(acts[l], self.acts_r[l]) for l in self.layers] if "cka" in parts else nan
        if "probe" in parts:
            held = layer_outputs(model, hX)
            facts = acts or layer_outputs(model, fX)
            pacc = [linear_probe_accuracy(held[l], hy, facts[l], fy, self.data.n_classes, self.ridge, self.probe_kind)
                    for l in self.layers]
        else:
            pacc = nan
        if "attribution" in parts:
            mass, net = attribution_mass(model, fX, fy, self.layers, self.attribution_method, self.n_steps)
        else:
            mass, net = nan, nan
        patch = (patching(self.original, self.retrain, model, fX, fy, self.patch_layers, self.patch_threshold,
                          retrain_acts=self.acts_r, model_acts=acts) if "patching" in parts else None)
        return LayerProbe(name, self.layers, wr, wo, cka_o, cka_r, pacc, mass, net, patch,
                          weight_distance(model, self.retrain) if "weights" in parts else float("nan"),
                          weight_distance(model, self.original) if "weights" in parts else float("nan"))


def layer_probes(models: dict[str, nn.Module], data: ProbeData, original: str = "original", retrain: str = "retrain",
                 progress: Progress | None = None, **options) -> LayerReport:
    """Per-layer probes of every model in `models` (θ_o and θ_r included as reference columns).

    Options go to `LayerProber` (attribution, n_steps, probe_kind, ridge, patch_threshold, patch_layers)."""
    import time

    progress = as_progress(progress)
    prober = LayerProber(models[original], models[retrain], data, **options)
    order = [original, retrain] + [n for n in models if n not in (original, retrain)]
    out, secs = {}, {}
    for i, name in enumerate(order):
        t = time.perf_counter()
        out[name] = prober.probe(name, models[name])
        secs[name] = time.perf_counter() - t
        progress("layer probes", i + 1, len(order))
    return LayerReport(prober.layers, out, prober.input_baseline(), prober.settings, seconds=secs)
