"""Output-level measurements: posteriors, accuracy, divergences between models."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


@torch.no_grad()
def logits(model: nn.Module, X: torch.Tensor, batch_size: int = 8192) -> torch.Tensor:
    model.eval()
    if len(X) == 0:
        return torch.empty(0, device=X.device)
    return torch.cat([model(X[i: i + batch_size]) for i in range(0, len(X), batch_size)])


def probs(model: nn.Module, X: torch.Tensor) -> torch.Tensor:
    return logits(model, X).softmax(-1)


def accuracy(model: nn.Module, X: torch.Tensor, y: torch.Tensor) -> float:
    if len(y) == 0:
        return float("nan")
    return float((logits(model, X).argmax(-1) == y).float().mean())


def mean_loss(model: nn.Module, X: torch.Tensor, y: torch.Tensor) -> float:
    return float(F.cross_entropy(logits(model, X), y))


def kl_divergence(p: torch.Tensor, q: torch.Tensor, eps: float = 1e-12) -> float:
    """Mean KL(p || q) over rows of two posterior matrices."""
    p, q = p.clamp_min(eps), q.clamp_min(eps)
    return float((p * (p.log() - q.log())).sum(-1).mean())


def js_divergence(p: torch.Tensor, q: torch.Tensor) -> float:
    """Mean Jensen-Shannon divergence (natural log, in [0, ln 2])."""
    m = 0.5 * (p + q)
    return 0.5 * kl_divergence(p, m) + 0.5 * kl_divergence(q, m)
