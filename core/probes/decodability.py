"""Decodability of the forgotten class from each hidden layer (science.md §3.1), scored continuously.

A ten-class linear read-out of D_f scores 0.97–1.00 for every model on the digits, retrains included: an 8×8
digit is linearly decodable from almost any wide projection of its pixels, so such an accuracy saturates and
cannot tell a model that learned the class from one that never saw it. Here, per hidden layer:

* a binary logistic read-out "forgotten class(es) vs the rest" is fitted on *held-out* features only (test set
  and shadow pool, never D_f), on features standardised over that held-out set;
* its L2 penalty is strong and the same for every model and layer. It is chosen once per run by
  cross-validation on the held-out *raw inputs*: the C whose out-of-fold mean probability of the forgotten
  class, on held-out samples of that class, is closest to 0.5 — half-way between a read-out that sees nothing
  and one that saturates. With a weak penalty every layer of every model decodes the class near-perfectly
  (saturated); with this one the read-out can use only the directions that carry much of the layer's
  variance, which is where a network that learned the class puts it;
* scores: `decodability` = mean probability of the forgotten class on D_f (continuous, in [0, 1]), and
  `decodability_auc` = AUC of D_f against an equal-size retain sample (rank-based, so it saturates near 1 on
  easy data: its band then touches 1 and the verdict marks it "cannot decide").

The same read-out on the raw input is the baseline drawn beside every layer. Each layer is evidence on its own:
there is no maximum over layers. Class-wise forgetting only (in sample-wise forgetting there is no forgotten
class to decode).
"""
from __future__ import annotations

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from ..params import Param
from .base import Probe, ProbeContext, Readings, auc, register

C_GRID = tuple(float(c) for c in np.logspace(-4, 0, 9))


def _standardise(fit: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    mu, sd = fit.mean(0), fit.std(0)
    sd = np.where(sd > 1e-8, sd, 1.0)  # constant features (dead ReLUs) stay 0 instead of dividing by zero
    return [(a - mu) / sd for a in (fit, *others)]


def _fit(X: np.ndarray, t: np.ndarray, C: float):
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=C, max_iter=1000).fit(X, t)


def choose_c(X: np.ndarray, t: np.ndarray, seed: int = 0, grid: tuple[float, ...] = C_GRID, folds: int = 3) -> float:
    """The penalty whose out-of-fold mean P(positive) on the held-out positives is closest to 0.5 (see module)."""
    from sklearn.model_selection import StratifiedKFold

    k = int(min(folds, t.sum(), (1 - t).sum()))
    if k < 2:
        return grid[len(grid) // 2]
    oof = {C: np.zeros(len(t)) for C in grid}
    for fit_i, val_i in StratifiedKFold(k, shuffle=True, random_state=seed).split(X, t):
        A, B = _standardise(X[fit_i], X[val_i])
        for C in grid:
            oof[C][val_i] = _fit(A, t[fit_i], C).predict_proba(B)[:, 1]
    return min(grid, key=lambda C: abs(float(oof[C][t == 1].mean()) - 0.5))


class _ClassReadout(Probe):
    """Shared by the two scores of the binary read-out: fits once per (model, layer) and keeps both."""

    per_layer = True
    forgetting = "class"
    params = (Param("C", 0.0, 0.0, 100.0, "L2 penalty of the read-out as sklearn's C; 0 = chosen by "
                    "cross-validation on the held-out raw inputs (see the module docstring)"),)

    def _all(self, ctx: ProbeContext, models: dict) -> dict:
        return ctx.shared_by(("readout", self.hp["C"]), models, lambda: readout(ctx, models, self.hp["C"]))


def readout(ctx: ProbeContext, models: dict, C: float = 0.0) -> dict:
    """{"C", "baseline": (p, auc), model: [(mean P, AUC) per hidden layer]} of the binary read-out."""
    d = ctx.data
    classes = list(d.forget_classes)
    (hX, hy), (fX, _) = d.heldout, d.forget
    t = np.isin(hy.cpu().numpy(), classes).astype(int)
    rng = np.random.default_rng([ctx.seed, 0xDEC])
    rX = d.retain_sample[0]
    pick = np.sort(rng.choice(len(rX), min(len(rX), len(fX)), replace=False))
    flat = {"heldout": hX.flatten(1), "forget": fX.flatten(1), "retain": rX[pick].flatten(1)}
    if not 0 < t.sum() < len(t):
        nan = (float("nan"), float("nan"))
        return {"C": float("nan"), "baseline": nan, **{n: [nan] * len(ctx.hidden) for n in models}}

    def score(H: torch.Tensor, Fq: torch.Tensor, R: torch.Tensor, c: float) -> tuple[float, float]:
        A, B, Rr = _standardise(*(x.double().cpu().numpy() for x in (H, Fq, R)))
        clf = _fit(A, t, c)
        pf, pr = clf.predict_proba(B)[:, 1], clf.predict_proba(Rr)[:, 1]
        return float(pf.mean()), auc(pf, pr)

    with threadpool_limits(1):  # hundreds of small fits: threads only add overhead
        c = float(C) if C and C > 0 else ctx.shared(("readout_C", ctx.seed),
                                                    lambda: choose_c(flat["heldout"].double().cpu().numpy(), t,
                                                                     ctx.seed))
        out = {"C": c, "baseline": score(flat["heldout"], flat["forget"], flat["retain"], c)}
        for name, model in models.items():
            h, f, r = ctx.acts(model, "heldout"), ctx.acts(model, "forget"), _retain_acts(ctx, model, pick)
            out[name] = [score(h[l].flatten(1), f[l].flatten(1), r[l].flatten(1), c) for l in ctx.hidden]
    return out


def _retain_acts(ctx: ProbeContext, model, pick: np.ndarray) -> dict:
    full = ctx.acts(model, "retain_sample")
    return {k: v[torch.as_tensor(pick, device=v.device)] for k, v in full.items()}


@register
class Decodability(_ClassReadout):
    name = "decodability"
    label = "decodability of the forgotten class"
    family = "functional"
    direction = +1
    abs_tol = 0.02
    caption = ("Mean probability of the forgotten class on D_f from a strongly regularised linear read-out of the "
               "layer, fitted on held-out data only (never on D_f). A model that never learned the class sits near "
               "the input's baseline; one whose hidden layers still encode it sits near θ_o.")

    def measure(self, ctx: ProbeContext, models: dict) -> Readings:
        out = self._all(ctx, models)
        return self._readings({n: [v[0] for v in out[n]] for n in models}, ctx.hidden, 0.0,
                              baseline=[out["baseline"][0]] * len(ctx.hidden),
                              extra={"C": out["C"], "baseline": out["baseline"][0]})


@register
class DecodabilityAuc(_ClassReadout):
    name = "decodability_auc"
    label = "decodability AUC (D_f vs retain)"
    family = "functional"
    direction = +1
    abs_tol = 0.02
    caption = ("AUC with which the same read-out ranks D_f above an equal retain sample. Rank-based, it saturates "
               "near 1 on easy data for every model, retrains included: then it cannot decide.")

    def measure(self, ctx: ProbeContext, models: dict) -> Readings:
        out = self._all(ctx, models)
        n = len(ctx.data.forget[1])
        return self._readings({m: [v[1] for v in out[m]] for m in models}, ctx.hidden, 1.0 / max(n * n, 1),
                              baseline=[out["baseline"][1]] * len(ctx.hidden),
                              extra={"C": out["C"], "baseline": out["baseline"][1]})
