"""Convergence stability (science.md §3): is θ_u a stable minimum, or does the forgotten data come back?

* gradient norm of the retain loss at θ_u (a pseudo-converged point need not sit at a minimum of D_r),
* bounce-back: forget accuracy during k *benign* fine-tuning steps on D_r only (the ReA paper's
  observation that benign fine-tuning brings residuals back); a retrain has nothing to bring back,
* quick relearning: forget accuracy on the rest of D_f after a few steps on a handful of forget samples
  mixed with retain batches (a cheap form of the ReA relearning-speed probe; the attack in
  `core.attacks` is the full one).
All fine-tuning happens on copies; the models passed in are never changed.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..results import _clean
from ..training import make_optimizer
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
    relearn_steps: list[int] = field(default_factory=list)
    relearn_acc: list[float] = field(default_factory=list)  # accuracy on the held-back forget samples
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def bounce(self) -> float:
        """Forget accuracy gained by benign fine-tuning: after k steps minus before."""
        return float(self.forget_acc[-1] - self.forget_acc[0])

    @property
    def bounced_acc(self) -> float:
        return float(self.forget_acc[-1])

    @property
    def relearned_acc(self) -> float:
        return float(self.relearn_acc[-1]) if self.relearn_acc else float("nan")

    def to_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d.update(bounce=self.bounce, bounced_acc=self.bounced_acc, relearned_acc=self.relearned_acc)
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


def relearn(model: nn.Module, data: ProbeData, shots: int = 5, k: int = 10, lr: float = 0.01, retain_batch: int = 32,
            record: tuple[int, ...] | None = None, seed: int = 0):
    """Fine-tune on `shots` forget samples (each step mixed with a retain batch); accuracy on the other
    forget samples at the recorded steps."""
    (fX, fy), (rX, ry) = data.forget, data.retain
    if len(fy) <= shots:
        return [], []
    record = sorted({0, k, *(record or (1, 2, 5))} & set(range(k + 1)))
    g = torch.Generator().manual_seed(int(seed) + 17)
    perm = torch.randperm(len(fy), generator=g).to(fX.device)
    probe, rest = perm[:shots], perm[shots:]
    work = copy.deepcopy(model).train()
    opt = make_optimizer(work.parameters(), "sgd", lr, momentum=0.9)
    acc = []
    for step in range(k + 1):
        if step in record:
            work.eval()
            acc.append(_acc(work, fX[rest], fy[rest]))
            work.train()
        if step == k:
            break
        idx = torch.randint(len(ry), (retain_batch,), generator=g).to(rX.device)
        X = torch.cat([fX[probe], rX[idx]])
        y = torch.cat([fy[probe], ry[idx]])
        with torch.enable_grad():
            loss = F.cross_entropy(work(X), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return record, acc


def stability(model: nn.Module, data: ProbeData, name: str = "model", k: int = 30, lr: float = 0.01,
              batch_size: int = 64, shots: int = 5, relearn_steps: int = 10, seed: int = 0) -> Stability:
    """Gradient norm on D_r, bounce-back after k benign steps, and quick relearning, for one model."""
    gn = grad_norm(model, *data.retain)
    steps, f_acc, r_acc = bounce_back(model, data, k, lr=lr, batch_size=batch_size, seed=seed)
    rs, ra = relearn(model, data, shots, relearn_steps, lr, seed=seed) if shots > 0 else ([], [])
    return Stability(name, gn, steps, f_acc, r_acc, rs, ra,
                     {"k": k, "lr": lr, "batch_size": batch_size, "optimizer": "sgd (momentum 0.9)", "shots": shots,
                      "relearn_steps": relearn_steps, "seed": seed})


def nanmean(v) -> float:
    v = [x for x in v if x is not None and np.isfinite(x)]
    return float(np.mean(v)) if v else float("nan")
