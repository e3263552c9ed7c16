"""Class views (views.md): class-wise accuracy of every model on train and test, and the prediction matrix
(true class × predicted class: share of the true class, mean confidence) of θ_u beside θ_r."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from .. import metrics
from ..results import _clean


@dataclass
class ClassAccuracy:
    classes: list[int]
    class_names: list[str]
    forget_classes: list[int]
    train: dict[str, list[float]]  # model -> accuracy per class (NaN where a class has no sample)
    test: dict[str, list[float]]
    counts: dict[str, list[int]] = field(default_factory=dict)  # "train"/"test" -> samples per class

    def to_dict(self) -> dict[str, Any]:
        return _clean(self.__dict__)


@dataclass
class PredictionMatrix:
    """share[t][p]: fraction of true-class-t samples predicted p; confidence[t][p]: their mean top probability."""

    model: str
    part: str
    classes: list[int]
    share: list[list[float]]
    confidence: list[list[float]]
    counts: list[int]

    def to_dict(self) -> dict[str, Any]:
        return _clean(self.__dict__)


def _per_class(pred: np.ndarray, y: np.ndarray, n: int) -> list[float]:
    return [float((pred[y == c] == c).mean()) if (y == c).any() else float("nan") for c in range(n)]


def class_accuracy(models: dict[str, nn.Module], split, class_names: list[str] | None = None) -> ClassAccuracy:
    """Accuracy per class of every model on the training set (D_f and D_r together) and the test set."""
    n = int(split.dataset.n_classes)
    out: dict[str, dict[str, list[float]]] = {"train": {}, "test": {}}
    counts = {}
    for part in ("train", "test"):
        X, y = split.tensors(part)
        yy = y.cpu().numpy()
        counts[part] = [int((yy == c).sum()) for c in range(n)]
        for name, m in models.items():
            out[part][name] = _per_class(metrics.logits(m, X).argmax(-1).cpu().numpy(), yy, n)
    return ClassAccuracy(list(range(n)), list(class_names or split.dataset.class_names), list(split.forget_classes),
                         out["train"], out["test"], counts)


@torch.no_grad()
def prediction_matrix(model: nn.Module, X: torch.Tensor, y: torch.Tensor, n_classes: int, name: str = "model",
                      part: str = "test") -> PredictionMatrix:
    p = metrics.probs(model, X)
    conf, pred = p.max(-1)
    pred, conf, yy = pred.cpu().numpy(), conf.cpu().numpy(), y.cpu().numpy()
    share = np.zeros((n_classes, n_classes))
    confidence = np.full((n_classes, n_classes), np.nan)
    counts = [int((yy == t).sum()) for t in range(n_classes)]
    for t in range(n_classes):
        rows = yy == t
        if not rows.any():
            continue
        for q in range(n_classes):
            hit = rows & (pred == q)
            share[t, q] = hit.sum() / rows.sum()
            if hit.any():
                confidence[t, q] = conf[hit].mean()
    return PredictionMatrix(name, part, list(range(n_classes)), share.tolist(), confidence.tolist(), counts)


def prediction_matrices(models: dict[str, nn.Module], split, names: list[str], part: str = "test",
                        include_forget: bool = True) -> dict[str, PredictionMatrix]:
    """Prediction matrices of the named models on `part` (plus D_f when `include_forget`, so a forgotten
    class appears even where the test split holds few of its samples)."""
    X, y = split.tensors(part)
    label = part
    if include_forget and part != "forget":
        fX, fy = split.tensors("forget")
        X, y = torch.cat([X, fX]), torch.cat([y, fy])
        label = f"{part} + forget"
    n = int(split.dataset.n_classes)
    return {k: prediction_matrix(models[k], X, y, n, k, label) for k in names}
