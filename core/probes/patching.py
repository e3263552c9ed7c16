"""Activation patching and the unlearning depth score (science.md §3 (e)).

In θ_o, on D_f, replace layer l's output with the same layer's activations from another model and
measure how much the true label's log-probability drops:
  Δ¹_l  with θ_r's activations (what a model that never saw D_f would do to θ_o),
  Δ²_l  with θ_u's activations.
Over the layers where Δ¹_l is above a small threshold,

    depth = Σ Δ¹_l · max(Δ²_l / Δ¹_l, 0) / Σ Δ¹_l        (1 = erased like a retrain, 0 = intact).

The ratio is not clipped at 1 (science.md §3.1): a model that destroys more of θ_o's answer than θ_r does is
not "erased like a retrain", it is beyond it, and the verdict must see that. By default only hidden layers are
patched: patching the logits layer replaces the output itself and would measure outputs, not residuals.
Patching is causal, but it assumes the donor's activations live in θ_o's basis: a donor with another
initialisation scrambles θ_o whatever it knows, so the measure is read in θ_o's coordinates — compared only
with retrains that share θ_o's initialisation, and not applied to models that do not.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from ..params import Param
from .base import Probe, ProbeContext, Readings, register
from .common import layer_outputs, run_from, true_logprob


@dataclass
class PatchingResult:
    layers: list[str]
    base_logprob: float  # mean true-label log-prob of θ_o on D_f, unpatched
    drop_retrain: list[float]  # Δ¹_l
    drop_model: list[float]  # Δ²_l
    used: list[bool]  # Δ¹_l above the threshold: the layers the score averages over
    threshold: float
    depth: float  # NaN when no layer carries a drop above the threshold

    def to_dict(self) -> dict:
        d = asdict(self)
        d["depth"] = None if not np.isfinite(self.depth) else float(self.depth)
        return d


def depth_score(drop_retrain, drop_model, threshold: float = 0.05) -> tuple[float, list[bool]]:
    """The depth score from per-layer drops; returns (score, mask of layers used)."""
    d1 = np.asarray(drop_retrain, dtype=float)
    d2 = np.asarray(drop_model, dtype=float)
    used = d1 > threshold
    if not used.any():
        return float("nan"), used.tolist()
    ratio = np.clip(d2[used] / d1[used], 0.0, None)
    return float((d1[used] * ratio).sum() / d1[used].sum()), used.tolist()


@torch.no_grad()
def patch_drops(original: nn.Module, donor_acts: dict[str, torch.Tensor], X: torch.Tensor, y: torch.Tensor,
                layers: list[str], base: torch.Tensor | None = None) -> list[float]:
    """Mean drop of θ_o's true-label log-prob on (X, y) when each layer's output is the donor's."""
    if base is None:
        base = true_logprob(original(X), y)
    return [float((base - true_logprob(run_from(original, l, donor_acts[l]), y)).mean()) for l in layers]


@torch.no_grad()
def patching(original: nn.Module, retrain: nn.Module, model: nn.Module, X: torch.Tensor, y: torch.Tensor,
             layers: list[str] | None = None, threshold: float = 0.05,
             retrain_acts: dict[str, torch.Tensor] | None = None,
             model_acts: dict[str, torch.Tensor] | None = None) -> PatchingResult:
    """Δ¹, Δ² and the depth score of `model` (θ_u) against `retrain` (θ_r), patched into `original` (θ_o).

    `layers` defaults to the hidden layers. Activations may be passed in when already computed."""
    original.eval()
    layers = list(layers) if layers is not None else list(original.hidden_layer_names)
    base = true_logprob(original(X), y)
    ra = retrain_acts if retrain_acts is not None else layer_outputs(retrain, X)
    ma = model_acts if model_acts is not None else layer_outputs(model, X)
    d1 = patch_drops(original, ra, X, y, layers, base)
    d2 = patch_drops(original, ma, X, y, layers, base)
    score, used = depth_score(d1, d2, threshold)
    return PatchingResult(layers, float(base.mean()), d1, d2, used, threshold, score)


# -- the measures, registered --------------------------------------------------------------------------------
def _patch_all(ctx, models: dict, threshold: float) -> dict[str, PatchingResult]:
    """Patching of every model against the context's θ_o and θ_r (memoised per context and threshold)."""
    def build() -> dict[str, PatchingResult]:
        fX, fy = ctx.data.forget
        ra = ctx.acts(ctx.retrain, "forget")
        return {n: patching(ctx.original, ctx.retrain, m, fX, fy, ctx.hidden, threshold, retrain_acts=ra,
                            model_acts=ctx.acts(m, "forget")) for n, m in models.items()}

    return ctx.shared_by(("patching", float(threshold)), models, build)


def layer_ratios(p: PatchingResult) -> list[float]:
    """Δ²_l / Δ¹_l on the layers the depth score uses (NaN on the others), unclipped."""
    return [float(d2 / d1) if u else float("nan") for d1, d2, u in zip(p.drop_retrain, p.drop_model, p.used)]


class _Patching(Probe):
    """What the patching measures share: read in θ_o's coordinates, lower = more like θ_o, one threshold."""

    direction, lo, hi, coordinates, against_retrain = -1, 0.0, float("inf"), "theta_o", True
    params = (Param("threshold", 0.05, 0.0, 10.0, "layers whose Δ¹ (θ_r's drop, in nats) is below this are ignored"),)

    def _results(self, ctx: ProbeContext, models: dict) -> dict[str, PatchingResult]:
        return _patch_all(ctx, models, self.hp["threshold"])


@register
class Depth(_Patching):
    name = "depth"
    label = "unlearning depth (patching)"
    family = "functional"
    abs_tol = 0.05
    caption = ("Patch θ_o's hidden layers on D_f with the model's activations and compare the drop of the true "
               "label's log-probability with the drop θ_r's activations cause: 1 = erased like a retrain, 0 = intact, "
               "above 1 = destroyed more than a retrain. Read in θ_o's coordinates.")

    def measure(self, ctx: ProbeContext, models: dict) -> Readings:
        res = self._results(ctx, models)
        return self._readings({n: [p.depth] for n, p in res.items()}, None, 0.0,
                              extra={"patching": {n: p.to_dict() for n, p in res.items()}})


@register
class PatchRatio(_Patching):
    name = "patch_ratio"
    label = "patching: Δ²/Δ¹ per layer"
    family, per_layer = "context", True
    caption = ("Per layer, the model's patching drop over θ_r's (Δ²/Δ¹): 1 = this layer erased like a retrain's, "
               "0 = θ_o's layer intact; empty where θ_r's own drop is below the threshold.")

    def measure(self, ctx: ProbeContext, models: dict) -> Readings:
        return self._readings({n: layer_ratios(p) for n, p in self._results(ctx, models).items()}, ctx.hidden, 0.0)


@register
class PatchDrop(_Patching):
    name = "patch_drop"
    label = "patching: drop Δ² (nats)"
    family, per_layer, unit, lo = "context", True, "nats", float("-inf")
    caption = ("Per layer, how much θ_o's true-label log-probability on D_f drops when the layer is patched with the "
               "model's activations.")

    def measure(self, ctx: ProbeContext, models: dict) -> Readings:
        return self._readings({n: list(p.drop_model) for n, p in self._results(ctx, models).items()}, ctx.hidden, 0.0)
