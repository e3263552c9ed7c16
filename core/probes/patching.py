"""Activation patching and the unlearning depth score (science.md §3 (e)).

In θ_o, on D_f, replace layer l's output with the same layer's activations from another model and
measure how much the true label's log-probability drops:
  Δ¹_l  with θ_r's activations (what a model that never saw D_f would do to θ_o),
  Δ²_l  with θ_u's activations.
Over the layers where Δ¹_l is above a small threshold,

    depth = Σ Δ¹_l · clip(Δ²_l / Δ¹_l, 0, 1) / Σ Δ¹_l        (1 = erased like a retrain, 0 = intact).

By default only hidden layers are patched: patching the logits layer replaces the output itself and
would measure outputs, not residuals. Patching is causal, but it assumes the donor's activations live
in θ_o's basis: a donor with another initialisation scrambles θ_o whatever it knows (see its trust AUC).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

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
    ratio = np.clip(d2[used] / d1[used], 0.0, 1.0)
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
