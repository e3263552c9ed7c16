"""ROC curves as current practice reports them (Carlini et al. 2022): AUC, TPR at low FPR, the curve
itself for linear and log-log axes."""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass
class Roc:
    fpr: list[float]
    tpr: list[float]
    auc: float
    tpr_at_1pct: float
    tpr_at_01pct: float
    accuracy: float  # best balanced accuracy over thresholds
    n_pos: int
    n_neg: int

    def to_dict(self) -> dict:
        return asdict(self)


def roc_curve(scores, labels) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fpr, tpr, thresholds); higher score = more likely positive. Ties handled like sklearn."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels).astype(bool)
    order = np.argsort(-s, kind="mergesort")
    s, y = s[order], y[order]
    distinct = np.r_[np.nonzero(np.diff(s))[0], len(s) - 1]
    tps = np.cumsum(y)[distinct]
    fps = (distinct + 1) - tps
    P, N = max(int(y.sum()), 1), max(int((~y).sum()), 1)
    tpr = np.r_[0.0, tps / P]
    fpr = np.r_[0.0, fps / N]
    thr = np.r_[np.inf, s[distinct]]
    return fpr, tpr, thr


def tpr_at_fpr(fpr: np.ndarray, tpr: np.ndarray, target: float) -> float:
    """Highest TPR reachable with FPR <= target."""
    ok = fpr <= target + 1e-12
    return float(tpr[ok].max()) if ok.any() else 0.0


def summarize(scores, labels) -> Roc:
    """ROC summary of member scores. Non-finite scores are ranked lowest (never crash a figure)."""
    s = np.nan_to_num(np.asarray(scores, dtype=np.float64), nan=-np.inf, posinf=1e300, neginf=-1e300)
    y = np.asarray(labels).astype(int)
    if y.min(initial=0) == y.max(initial=0):
        raise ValueError("ROC needs both members and non-members.")
    fpr, tpr, _ = roc_curve(s, y)
    auc = float(np.trapezoid(tpr, fpr))
    acc = float(np.max(0.5 * (tpr + 1 - fpr)))
    # thin the curve for plotting/JSON while keeping its shape
    if len(fpr) > 600:
        keep = np.unique(np.r_[np.linspace(0, len(fpr) - 1, 500).astype(int), np.nonzero(fpr < 0.02)[0][:100]])
        fpr, tpr = fpr[keep], tpr[keep]
    return Roc(fpr.tolist(), tpr.tolist(), auc, tpr_at_fpr(fpr, tpr, 0.01), tpr_at_fpr(fpr, tpr, 0.001), acc,
               int(y.sum()), int((1 - y).sum()))


def auc_standard_error(auc: float, n_pos: int, n_neg: int) -> float:
    """Hanley & McNeil's (1982) standard error of an AUC from n_pos positives and n_neg negatives."""
    a = min(max(float(auc), 1e-6), 1 - 1e-6)
    q1, q2 = a / (2 - a), 2 * a * a / (1 + a)
    var = (a * (1 - a) + (n_pos - 1) * (q1 - a * a) + (n_neg - 1) * (q2 - a * a)) / max(n_pos * n_neg, 1)
    return float(np.sqrt(max(var, 0.0)))


def below_chance_reason(roc: Roc, members: str = "forget samples", nonmembers: str = "non-members") -> str:
    """One line saying why a curve lies below the diagonal, or '' when it does not.

    Within two standard errors of 0.5 it is sampling noise; further below, the model treats the members as
    *less* familiar than samples it never saw (they score lower than the non-members): a model that forgot more
    than a retrain would have (over-unlearning), or sets that differ in more than membership."""
    if not np.isfinite(roc.auc) or roc.auc >= 0.5:
        return ""
    se = auc_standard_error(roc.auc, roc.n_pos, roc.n_neg)
    if roc.auc >= 0.5 - 2 * se:
        return (f"AUC {roc.auc:.2f} is below 0.5 by less than two standard errors (±{2 * se:.2f} with {roc.n_pos} "
                f"{members} and {roc.n_neg} {nonmembers}): chance, not a signal.")
    return (f"AUC {roc.auc:.2f} is clearly below 0.5: the model scores its {members} as less familiar than "
            f"{nonmembers} it never saw — it forgot them harder than a retrain would, which an attacker can also "
            f"read by flipping the score (AUC {1 - roc.auc:.2f}).")
