"""Convergence stability (science.md §3): is θ_u a stable minimum, or does the forgotten data come back?

* gradient norm of the retain loss at θ_u (a pseudo-converged point need not sit at a minimum of D_r),
* bounce-back: forget accuracy after k *benign* fine-tuning steps on D_r only (the ReA paper's observation
  that benign fine-tuning brings residuals back); a retrain has nothing to bring back.
Relearning from forget samples is the ReA relearning-speed measure (`relearning.py`). All fine-tuning happens
on copies; the models passed in are never changed.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..params import Param
from ..results import _clean
from ..training import make_optimizer
from .base import Probe, ProbeContext, Readings, register
from .common import ProbeData


def grad_norm(model: nn.Module, X: torch.Tensor, y: torch.Tensor, batch_size: int = 4096) -> float:
    """‖∇θ mean CE(X, y)‖₂ at the model's weights (full set, not a mini-batch)."""
    work = copy.deepcopy(model).eval()
    work.zero_grad(set_to_none=True)
    n = len(y)
    with torch.enable_grad():
        for i in range(0, n, batch_size):
            loss = F.cross_entropy(work(X[i:i + batch_size]), y[i:i + batch_size], reduction="sum") / n
            loss.backward()
    return float(torch.sqrt(sum((p.grad.double() ** 2).sum() for p in work.parameters() if p.grad is not None)))


@torch.no_grad()
def _acc(model: nn.Module, X: torch.Tensor, y: torch.Tensor) -> float:
    return float((model(X).argmax(-1) == y).double().mean()) if len(y) else float("nan")


@dataclass
class Stability:
    model: str
    grad_norm_retain: float
    steps: list[int]
    forget_acc: list[float]  # after each recorded number of benign fine-tuning steps (steps[0] = 0)
    retain_acc: list[float]
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def bounce(self) -> float:
        """Forget accuracy gained by benign fine-tuning: after k steps minus before."""
        return float(self.forget_acc[-1] - self.forget_acc[0])

    @property
    def bounced_acc(self) -> float:
        return float(self.forget_acc[-1])

    def to_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d.update(bounce=self.bounce, bounced_acc=self.bounced_acc)
        return _clean(d)


def bounce_back(model: nn.Module, data: ProbeData, k: int = 30, record: tuple[int, ...] | None = None,
                lr: float = 0.01, batch_size: int = 64, optimizer: str = "sgd", seed: int = 0):
    """Benign fine-tuning on D_r only; forget/retain accuracy at the recorded step counts."""
    record = sorted({0, k, *(record or (1, 2, 5, 10, 20))} & set(range(k + 1)))
    work = copy.deepcopy(model).train()
    opt = make_optimizer(work.parameters(), optimizer, lr, momentum=0.9)
    (fX, fy), (rX, ry) = data.forget, data.retain
    g = torch.Generator().manual_seed(int(seed))
    f_acc, r_acc = [], []
    for step in range(k + 1):
        if step in record:
            work.eval()
            f_acc.append(_acc(work, fX, fy))
            r_acc.append(_acc(work, data.retain_sample[0], data.retain_sample[1]))
            work.train()
        if step == k:
            break
        idx = torch.randint(len(ry), (batch_size,), generator=g).to(rX.device)
        with torch.enable_grad():
            loss = F.cross_entropy(work(rX[idx]), ry[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return record, f_acc, r_acc


def bounced_many(models: list[nn.Module], data: ProbeData, k: int = 30, lr: float = 0.01, batch_size: int = 64,
                 seed: int = 0) -> list[float]:
    """Forget accuracy of each model after `bounce_back`'s k benign SGD steps, all models as one batch.

    Every model sees the same retain batches (one generator seeded with `seed`, as `bounce_back` draws them),
    and the batched SGD follows `torch.optim.SGD`'s arithmetic, so the numbers match the one-by-one loop."""
    from ..batched import BatchedOptimizer, Flat, buffers_of, forward_many, loss_grad_fn, stack

    template = models[0]
    spec = Flat(template)
    stacked = stack(models)
    flat = spec.flatten(stacked).detach().clone()
    bufs = {k: v.clone() for k, v in buffers_of(template, stacked).items()}  # batch norm: each model's own
    opt = BatchedOptimizer(flat, "sgd", lr, momentum=0.9)
    grad = loss_grad_fn(template)
    (fX, fy), (rX, ry) = data.forget, data.retain
    g = torch.Generator().manual_seed(int(seed))
    M = len(models)
    ones = torch.ones(M, batch_size, device=rX.device)
    for _ in range(k):
        idx = torch.randint(len(ry), (batch_size,), generator=g).to(rX.device)
        Xb = rX[idx].unsqueeze(0).expand(M, *rX[idx].shape)
        gr, _ = grad(flat, Xb, ry[idx].unsqueeze(0).expand(M, -1), ones, bufs)
        opt.step(flat, gr)
    logits = forward_many(template, {**spec.views(flat), **bufs}, fX)
    return (logits.argmax(-1) == fy).double().mean(1).cpu().tolist()


def stability(model: nn.Module, data: ProbeData, name: str = "model", k: int = 30, lr: float = 0.01,
              batch_size: int = 64, seed: int = 0) -> Stability:
    """Gradient norm on D_r and the bounce-back after k benign steps, for one model."""
    gn = grad_norm(model, *data.retain)
    steps, f_acc, r_acc = bounce_back(model, data, k, lr=lr, batch_size=batch_size, seed=seed)
    return Stability(name, gn, steps, f_acc, r_acc,
                     {"k": k, "lr": lr, "batch_size": batch_size, "optimizer": "sgd (momentum 0.9)", "seed": seed})


@register
class GradNorm(Probe):
    name = "grad_norm"
    label = "gradient norm on D_r"
    family, direction, lo, hi = "context", +1, 0.0, float("inf")
    caption = "‖∇ CE(D_r)‖ at the model's weights: a point that is not a minimum of the retain loss may move."

    def measure(self, ctx: ProbeContext, models: dict) -> Readings:
        return self._readings({n: [grad_norm(m, *ctx.data.retain)] for n, m in models.items()})


@register
class BounceBack(Probe):
    name = "bounce"
    label = "forget accuracy after benign fine-tuning"
    family, direction = "functional", +1
    abs_tol = 0.02
    caption = ("Forget accuracy after a few benign fine-tuning steps on D_r alone: residuals that benign training "
               "brings back. A retrain has nothing to bring back.")
    params = (Param("steps", 30, 1, 1000, "benign SGD steps on D_r"), Param("lr", 0.01, 1e-5, 1.0, "SGD learning rate",
                                                                              log=True))

    def measure(self, ctx: ProbeContext, models: dict) -> Readings:
        acc = bounced_many(list(models.values()), ctx.data, self.hp["steps"], self.hp["lr"], seed=ctx.seed)
        return self._readings({n: [a] for n, a in zip(models, acc)}, None, 1.0 / max(len(ctx.data.forget[1]), 1))
