"""Worst-case privacy score against retraining (as in the Machine Unlearning Comparator).

An attacker sees one output of a model on a forget sample and must say whether it came from θ_u or from
θ_r, by thresholding a signal: the posterior's entropy, or the confidence (logit-scaled true-label
confidence log p_y − log(1 − p_y); with no labels, of the top class). At every threshold and in both
directions ("unlearned if above" / "if below"), with the empirical FPR and FNR and δ = 1e-5,

    ε = max(0, min(log(1 − δ − FPR) − log FNR, log(1 − δ − FNR) − log FPR)),
    attack score = 1 − 2^−ε

(ε = ∞ when FPR = FNR = 0; ε = 0 when FPR or FNR ≥ 1 − δ; otherwise the rates are clipped to
[1e-10, 1 − δ − 1e-10], as the Comparator does). Privacy score = 1 − the worst attack score over signals,
thresholds and directions: 1 = indistinguishable from retraining, 0 = perfectly told apart.

Thresholds. By default ("exact") every distinct observed value is tried, so the score is the exact worst case.
The Comparator uses the same formula but clips each signal into a fixed range and tries 51 evenly spaced
thresholds in it, on its own signals (entropy of softmax(z/2), confidence of the *top* class, both rounded to
two decimals): a separation outside the range, or between two of its thresholds, is invisible to it, so it can
score a model much higher (SSD: 0.000 exact, 0.846 on the Comparator's grid). `thresholds="comparator"`
reproduces its arithmetic so the two numbers can be put side by side.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from .. import metrics
from ..params import Param
from ..progress import Progress, as_progress
from .base import Attack, AttackContext, AttackResult, register

DELTA = 1e-5
_CLIP = 1e-10

# The Machine Unlearning Comparator's privacy score (github.com/gnueaj/Machine-Unlearning-Comparator, commit
# 0e3ce99d, backend/app/utils/attack.py: ENTROPY_CONFIG, CONFIDENCE_CONFIG, calculate_scores and
# process_attack_metrics, called with t1=2.0, t2=1.0 by backend/app/threads/unlearn_*_thread.py): per signal a
# fixed range and 51 thresholds `linspace(low, high, 51)`; values clipped into the range; "positive iff value ≥
# threshold" for both assignments of θ_u/θ_r to the positive side; each threshold's attack score rounded to 3
# decimals; the privacy score is 1 − the best of them, rounded to 3 decimals.
COMPARATOR_RANGES = {"entropy": (0.0, 2.5), "confidence": (-2.5, 10.0)}
COMPARATOR_BINS = 51
COMPARATOR_TEMPERATURE = {"entropy": 2.0, "confidence": 1.0}
THRESHOLDS = ("exact", "comparator")


@dataclass
class PrivacyScore:
    score: float  # 1 − worst attack score (1 = like retraining)
    attack_score: float  # 1 − 2^−ε at the worst threshold
    epsilon: float  # may be inf
    signal: str  # which signal gave the worst case
    direction: str  # "unlearned_above" or "unlearned_below": θ_u's outputs predicted where the signal is above/below
    threshold: float
    fpr: float  # share of θ_r's outputs called θ_u
    fnr: float  # share of θ_u's outputs called θ_r
    per_signal: dict[str, float] = field(default_factory=dict)  # privacy score of each signal alone
    n: int = 0  # samples per model
    delta: float = DELTA
    thresholds: str = "exact"  # "exact": every observed value; "comparator": its ranges, 51 thresholds, signals

    def to_dict(self) -> dict:
        d = asdict(self)
        d["epsilon"] = None if not np.isfinite(self.epsilon) else float(self.epsilon)  # JSON has no inf
        return d


def epsilons(fpr: np.ndarray, fnr: np.ndarray, delta: float = DELTA) -> np.ndarray:
    """ε at each (FPR, FNR) pair (vectorised; see the module docstring)."""
    fpr, fnr = np.asarray(fpr, dtype=np.float64), np.asarray(fnr, dtype=np.float64)
    sfp = np.clip(fpr, _CLIP, 1 - delta - _CLIP)
    sfn = np.clip(fnr, _CLIP, 1 - delta - _CLIP)
    eps = np.maximum(0.0, np.minimum(np.log(1 - delta - sfp) - np.log(sfn), np.log(1 - delta - sfn) - np.log(sfp)))
    eps = np.where((fpr >= 1 - delta) | (fnr >= 1 - delta), 0.0, eps)
    return np.where((fpr == 0) & (fnr == 0), np.inf, eps)


def threshold_sweep(unlearned: np.ndarray, retrained: np.ndarray, above: bool = True):
    """Every threshold t of "θ_u iff signal ≥ t" (above) or "θ_u iff signal ≤ t" (below), with its FPR/FNR.

    Returns (thresholds, fpr, fnr), including the trivial thresholds (everything / nothing called θ_u)."""
    u = np.asarray(unlearned, dtype=np.float64)
    r = np.asarray(retrained, dtype=np.float64)
    if not above:
        u, r = -u, -r
    t = np.unique(np.r_[u, r, np.inf])
    su, sr = np.sort(u), np.sort(r)
    tpr = 1 - np.searchsorted(su, t, side="left") / len(su)  # share of u with value >= t
    fpr = 1 - np.searchsorted(sr, t, side="left") / len(sr)
    return (t if above else -t), fpr, 1 - tpr


def worst_case_privacy(unlearned: dict[str, np.ndarray], retrained: dict[str, np.ndarray],
                       delta: float = DELTA) -> PrivacyScore:
    """Privacy score from per-sample signals of θ_u and θ_r (same keys, e.g. "entropy", "confidence")."""
    best = None
    per = {}
    for name in unlearned:
        u, r = np.asarray(unlearned[name]), np.asarray(retrained[name])
        worst_sig = 0.0
        for above in (True, False):
            t, fpr, fnr = threshold_sweep(u, r, above)
            eps = epsilons(fpr, fnr, delta)
            i = int(np.argmax(eps))
            att = 1 - 2.0 ** (-eps[i])
            worst_sig = max(worst_sig, att)
            if best is None or att > best[0]:
                best = (att, eps[i], name, "unlearned_above" if above else "unlearned_below", t[i], fpr[i], fnr[i])
        per[name] = float(1 - worst_sig)
    att, eps, name, direction, thr, fpr, fnr = best
    n = len(next(iter(unlearned.values())))
    return PrivacyScore(float(1 - att), float(att), float(eps), name, direction, float(thr), float(fpr), float(fnr),
                        per, n, delta)


def comparator_privacy(unlearned: dict[str, np.ndarray], retrained: dict[str, np.ndarray],
                       delta: float = DELTA) -> PrivacyScore:
    """The Comparator's privacy score (see COMPARATOR_RANGES) from per-sample signals of θ_u and θ_r, as it
    computes it: values rounded to 2 decimals and clipped into the signal's range, 51 fixed thresholds, each
    threshold's attack score rounded to 3 decimals. The signals should be `comparator_signals`'s."""
    best, per = None, {}
    for name in unlearned:
        low, high = COMPARATOR_RANGES[name]
        u = np.clip(np.round(np.asarray(unlearned[name], dtype=np.float64), 2), low, high)
        r = np.clip(np.round(np.asarray(retrained[name], dtype=np.float64), 2), low, high)
        t = np.linspace(low, high, COMPARATOR_BINS)
        worst_sig = 0.0
        for above in (True, False):  # θ_u on the positive (≥ threshold) side, or θ_r
            pos, neg = (u, r) if above else (r, u)
            fnr = 1 - (pos[:, None] >= t).mean(0)
            fpr = (neg[:, None] >= t).mean(0)
            if not above:  # rates stated as everywhere else: FPR = share of θ_r called θ_u
                fpr, fnr = fnr, fpr
            eps = epsilons(fpr, fnr, delta)
            att = np.round(1 - 2.0 ** -eps, 3)
            i = int(np.argmax(att))
            worst_sig = max(worst_sig, float(att[i]))
            if best is None or att[i] > best[0]:
                best = (float(att[i]), eps[i], name, "unlearned_above" if above else "unlearned_below", t[i],
                        fpr[i], fnr[i])
        per[name] = round(1 - worst_sig, 3)
    att, eps, name, direction, thr, fpr, fnr = best
    n = len(next(iter(unlearned.values())))
    return PrivacyScore(round(1 - att, 3), att, float(eps), name, direction, float(thr), float(fpr), float(fnr),
                        per, n, delta, "comparator")


def comparator_signals(model, X: torch.Tensor) -> dict[str, np.ndarray]:
    """The Comparator's signals: entropy (nats) of softmax(z / 2), and log p − log(1 − p) of the top class
    of softmax(z) (whatever the label)."""
    z = metrics.logits(model, X).double()
    logp = (z / COMPARATOR_TEMPERATURE["entropy"]).log_softmax(-1)
    conf = output_signals(model, X, None, z / COMPARATOR_TEMPERATURE["confidence"])["confidence"]
    return {"entropy": (-(logp.exp() * logp).sum(-1)).cpu().numpy(), "confidence": conf}


def output_signals(model, X: torch.Tensor, y: torch.Tensor | None = None,
                   z: torch.Tensor | None = None) -> dict[str, np.ndarray]:
    """Entropy of the posterior and the logit-scaled confidence log p − log(1 − p) of the true label (or, with
    no labels, of the top class), per sample. `z`: the logits, if already computed."""
    z = metrics.logits(model, X).double() if z is None else z
    logp = z.log_softmax(-1)
    ent = -(logp.exp() * logp).sum(-1)
    idx = (z.argmax(-1) if y is None else y.long()).unsqueeze(-1)
    z_y = z.gather(-1, idx).squeeze(-1)
    rest = z.scatter(-1, idx, float("-inf")).logsumexp(-1)
    return {"entropy": ent.cpu().numpy(), "confidence": (z_y - rest).cpu().numpy()}


def privacy_score(unlearned_model, retrained_model, X: torch.Tensor, y: torch.Tensor | None = None,
                  delta: float = DELTA, thresholds: str = "exact") -> PrivacyScore:
    """Worst-case privacy score of θ_u against θ_r on samples X (normally D_f); `thresholds="comparator"`
    gives the Machine Unlearning Comparator's number instead of the exact worst case."""
    if thresholds == "comparator":
        return comparator_privacy(comparator_signals(unlearned_model, X), comparator_signals(retrained_model, X),
                                  delta)
    return worst_case_privacy(output_signals(unlearned_model, X, y), output_signals(retrained_model, X, y), delta)


@register
class PrivacyScoreAttack(Attack):
    """The privacy score as an attack: θ_u's outputs on D_f (label 1) against θ_r's (label 0)."""

    name = "privacy_score"
    title = "Worst-case privacy score against retrain"
    summary = ("Can one output on a forget sample tell the unlearned model from the retrained one? Entropy and "
               "confidence are thresholded at every observed value (the exact worst case); the worst ε gives the "
               "score (1 = like retraining). The Comparator's setting tries only its 51 fixed thresholds.")
    reference = "Machine Unlearning Comparator (Jeon et al. 2025), worst-case privacy score."
    params = (Param("delta", 1e-5, 1e-12, 1e-2, "δ of the (ε, δ) bound", log=True),
              Param("thresholds", "exact", choices=THRESHOLDS,
                    help="exact: every observed value is a threshold (the worst case); comparator: the Machine "
                         "Unlearning Comparator's signals, fixed ranges and 51 thresholds, for a number to put "
                         "beside its own"))

    def run(self, ctx: AttackContext, target: str, progress: Progress | None = None) -> list[AttackResult]:
        progress = as_progress(progress)
        X, y = ctx.split.tensors("forget")
        if self.hp["thresholds"] == "comparator":
            su, sr = comparator_signals(ctx.models[target], X), comparator_signals(ctx.models["retrain"], X)
            ps = comparator_privacy(su, sr, self.hp["delta"])
        else:
            su, sr = output_signals(ctx.models[target], X, y), output_signals(ctx.models["retrain"], X, y)
            ps = worst_case_privacy(su, sr, self.hp["delta"])
        sign = 1.0 if ps.direction == "unlearned_above" else -1.0
        scores = sign * np.r_[su[ps.signal], sr[ps.signal]]
        labels = np.r_[np.ones(len(y), int), np.zeros(len(y), int)]
        ids = np.r_[ctx.split.forget, ctx.split.forget]
        yc = y.cpu().numpy()
        correct = np.r_[(metrics.logits(ctx.models[target], X).argmax(-1) == y).cpu().numpy(),
                        (metrics.logits(ctx.models["retrain"], X).argmax(-1) == y).cpu().numpy()]
        progress("privacy score", 1, 1)
        extra = {"privacy": ps.to_dict(), "positives": f"{target} outputs on D_f",
                 "negatives": "retrain outputs on D_f"}
        return [AttackResult("privacy_score", target, scores, labels, ids, {"class": np.r_[yc, yc], "correct": correct},
                             extra)]
