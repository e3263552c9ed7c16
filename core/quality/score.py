"""The NeurIPS 2023 unlearning competition's forgetting score, ported exactly and vectorised.

Source: `google-deepmind/unlearning_evaluation` (Triantafillou et al. 2024, "Are we making progress in
unlearning?"), file `metric.py`: `compute_logit_scaled_confidence`, `_get_single_threshold_rates`,
`_get_double_threshold_rates`, `_get_epsilons`, `compute_forget_score_from_confs`; file `main.py`: `main`
(the utility-adjusted final score). For each forget example, N unlearned and N retrained models each give one
logit-scaled confidence of the true label; an attacker who sees one model's confidence on that example tries
to tell the two populations apart with a single threshold or an interval, its error rates counted across the
models, and every (FPR, FNR) pair it reaches bounds the (ε, δ = 1e-5) of an unlearning guarantee from below.
ε per example is the largest such bound; each example earns 2^-bin of its ε's half-unit bin, and F is their
mean over the forget set. The rules of the released scorer are kept, including its numeric types (the
single-threshold grid is float32, the rates are float32, ε is computed in float32):

* the positive population of an example is whichever pool has the larger median confidence on it;
* if the narrower pool's range is below 1% of the wider one's ("very peaky"), ε = EPSILON_CAP at once;
* single thresholds: a float32 grid of 100 points per unit over both pools' range, "≥ threshold" = positive;
* intervals: the narrower pool is called positive; right ends on a grid of 100 per unit around it, and for
  each right end 400 left ends spanning ±2 around (right end − its range); "inside" = positive;
* a threshold with FPR = FNR = 0 (perfect separation) gives ε = ∞ (then the cap); one with FPR = 0 or FNR = 0
  but not both is discarded (too few models to estimate a rate of 0); the others give
  max(log(1 − δ − FPR) − log FNR, log(1 − δ − FNR) − log FPR), clipped at 0;
* ε is clipped to [0, EPSILON_CAP]; bins are [0, 0.5), [0.5, 1), ... up to ceil(log(N − 1)), worth 1, 1/2,
  1/4, ...; an ε beyond the last bin earns nothing.

One departure, where the released code cannot run: if every threshold of an example is discarded (both
pools the same constant, for instance), `_get_epsilons` fails its `assert thr_eps` (which, on a numpy array,
raises for any length but one). Here such an example gets ε = 0 — no attack in either family tells the pools
apart — and is counted (`Score.rules["no_threshold"]`), never silent.

Speed: the released scorer evaluates ~160 000 intervals × N models per example. The rates depend on a
threshold only through the two *counts* of models on its positive side, so each grid row is reduced to its
breakpoints (the grid index at which a model's confidence crosses the moving end; with both pools sorted
once per example they come out sorted): at most 2N + 1 distinct (count, count) states per row, whose ε is
looked up in a table over all (count, count) pairs built with the released arithmetic. The grid points are
numpy's and torch's own `linspace` values, so the states — and ε — are those of the grid search, bit for bit
(tests/test_quality.py checks it against a direct port of the grid search). Examples that a single threshold
already separates (ε = ∞) or that the 1% rule decides skip the interval family, which could not change them.
"""
from __future__ import annotations

import functools
import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..errors import ResidueError

DELTA = 1e-05  # metric.DELTA
EPSILON_CAP = 50  # metric.EPSILON_CAP
NUM_THRESHOLDS_PER_UNIT = 100  # metric.NUM_THRESHOLDS_PER_UNIT
BUFFER = 2.0  # metric._get_double_threshold_rates: `buffer`
BUCKET = 0.5  # metric.compute_forget_score_from_confs: `bucket_size`
MIN_MODELS = 4
RULES = ("threshold", "peaky", "separated", "no_threshold")  # how each example's ε was decided


def logit_scaled_confidence(logits: Any, targets: Any) -> np.ndarray:
    """log p(true label) − log p(any other label), as `metric.compute_logit_scaled_confidence` computes it
    (softmax after subtracting the row maximum in the logits' own dtype, then float64; 1e-45 guards the logs).

    `logits` (..., n, classes), `targets` (n,): confidences (..., n), float64."""
    z = np.array(logits, copy=True)
    if z.ndim < 2:
        raise ResidueError(f"logits need shape (..., examples, classes), got {z.shape}.")
    t = np.asarray(targets, dtype=np.int64)
    z -= np.max(z, axis=-1, keepdims=True)
    probs = np.array(np.exp(z), dtype=np.float64)
    probs /= np.sum(probs, axis=-1, keepdims=True)
    idx = np.broadcast_to(t[:, None], probs.shape[:-1] + (1,))
    correct = np.take_along_axis(probs, idx, -1)[..., 0]
    np.put_along_axis(probs, idx, 0.0, -1)
    wrong = np.sum(probs, axis=-1)
    return np.log(correct + 1e-45) - np.log(wrong + 1e-45)


def n_bins(n_models: int) -> int:
    """How many half-unit bins earn points with N models: 2·ceil(log(N − 1)) (`compute_forget_score_from_confs`:
    with N samples per population no finite ε estimate exceeds about log(N − 1))."""
    top = float(np.ceil(np.log(n_models - 1))) if n_models > 1 else 0.0
    return int(round(top / BUCKET)) if top > 0 else 0


def points(eps: np.ndarray, n_models: int) -> np.ndarray:
    """Each example's share of the score: 2^-bin for ε in bin [bin/2, (bin+1)/2), 0 past the last bin."""
    eps = np.asarray(eps, dtype=np.float64)
    b = np.floor(eps / BUCKET)
    with np.errstate(invalid="ignore"):
        ok = (b >= 0) & (b < n_bins(n_models))
    return np.where(ok, np.exp2(-np.where(ok, b, 0)), 0.0)


# -- ε per (count, count) state -----------------------------------------------------------------------
@functools.lru_cache(maxsize=64)
def epsilon_table(n_pos: int, n_neg: int, delta: float = DELTA) -> np.ndarray:
    """ε of a threshold that puts `tp` of the n_pos positive models and `fp` of the n_neg negative ones on its
    positive side: table[tp, fp] (float32; NaN = discarded, inf = perfect separation). The arithmetic is
    `_get_epsilons`'s, on float32 rates that are `torch.mean` over the models, as the rate functions compute them."""
    def rates(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        inside = (torch.arange(n)[:, None] < torch.arange(n + 1)[None, :]).type(torch.float32)
        return torch.mean(inside, 0), torch.mean(torch.logical_not(inside).type(torch.float32), 0)

    tpr, fnr = (r[:, None].expand(n_pos + 1, n_neg + 1).reshape(-1) for r in rates(n_pos))
    fpr, tnr = (r[None, :].expand(n_pos + 1, n_neg + 1).reshape(-1) for r in rates(n_neg))
    total = tpr.shape[0]
    thr_eps = torch.zeros(total)
    both_zero = torch.eq(fpr + fnr, torch.zeros(total))
    both_one = torch.eq(tpr + tnr, 2 * torch.ones(total))
    thr_eps = torch.where(both_zero * both_one, torch.full(thr_eps.shape, np.inf), thr_eps)
    one_zero = torch.eq(fpr * fnr, torch.zeros_like(thr_eps))
    thr_eps = torch.where(torch.eq(thr_eps, torch.zeros_like(thr_eps)) * one_zero,
                          torch.full(thr_eps.shape, np.nan), thr_eps)
    fp_, fn_ = fpr.numpy(), fnr.numpy()
    with np.errstate(divide="ignore", invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns of nanmax: discarded anyway
        bound = np.clip(np.nanmax([np.log(1 - delta - fp_) - np.log(fn_), np.log(1 - delta - fn_) - np.log(fp_)],
                                  axis=0), 0, None)
    thr_eps = torch.where(torch.eq(thr_eps, torch.zeros_like(thr_eps)), torch.from_numpy(bound), thr_eps)
    table = thr_eps.numpy().reshape(n_pos + 1, n_neg + 1)
    table.setflags(write=False)  # shared by every caller (cached)
    return table


# -- grids and their breakpoints ---------------------------------------------------------------------
def _linspace_at(start: np.ndarray, stop: np.ndarray, num: np.ndarray | int, j: np.ndarray) -> np.ndarray:
    """`np.linspace(start, stop, num)[j]` elementwise: numpy's own arithmetic (j·step + start, the last point
    `stop` itself), so the values are those of the released scorer's grids bit for bit."""
    num = np.asarray(num)
    with np.errstate(invalid="ignore", divide="ignore"):
        step = np.subtract(stop, start) / np.maximum(num - 1, 1)
    return np.where((j == num - 1) & (num > 1), stop, j * step + start)


def _count_le(start: np.ndarray, stop: np.ndarray, num: int, c: np.ndarray) -> np.ndarray:
    """#{j : np.linspace(start, stop, num)[j] <= c}, elementwise over broadcast arrays, exact.

    With x = (c − start) / step and j0 = round(x) (clipped to the grid), every point before j0 lies at least
    half a step below c and every point after it half a step above (rounding errs by ~1e-12 of a step), so
    only point j0 — and the last point, which numpy sets to `stop` itself — is compared with c."""
    step = np.subtract(stop, start) / (num - 1)
    j0 = np.rint((c - start) / step)
    np.clip(j0, 0, num - 1, out=j0)  # the first num − 1 points are j·step + start
    below = (j0 < num - 1) & (j0 * step + start <= c)
    count = j0.astype(np.int32)
    count += below
    count += stop <= c
    return count


def _best(flat: np.ndarray, n: int, tp: np.ndarray, fp: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """max over the last axes of ε(tp, fp) where valid; -inf where nothing is (`flat`: the ε table, discarded
    entries -inf, with one more -inf at its end for invalid states)."""
    idx = np.where(valid, tp * (n + 1) + fp, len(flat) - 1)
    return flat[idx].reshape(len(idx), -1).max(1)


def _states(bp: np.ndarray, length: np.ndarray | int) -> tuple[np.ndarray, np.ndarray]:
    """Which breakpoints are states of a step count over grid indices 0 <= j < length.

    `bp` (..., 2n): for every model in ascending order of confidence, the grid index from which it is counted
    (nondecreasing along the last axis). The counts change only there, so the states are j = 0 (valid when no
    model is counted yet, `first`) and each breakpoint below `length` that is the last of its equal run."""
    length = np.asarray(length)
    last = np.ones(bp.shape, dtype=bool)
    np.not_equal(bp[..., 1:], bp[..., :-1], out=last[..., :-1])  # several models counted at one j: one state
    last &= bp < length[..., None]
    return last, (bp[..., 0] > 0) & (length > 0)


def _single_best(vals: np.ndarray, c_pos: np.ndarray, c_neg: np.ndarray, flat: np.ndarray, n: int) -> np.ndarray:
    """`_get_single_threshold_rates`: the best ε over each example's float32 `torch.linspace` grid of thresholds,
    "≥ threshold" meaning positive. vals (E, 2n): both pools' confidences in ascending order; c_pos, c_neg:
    how many of each pool are among the first i + 1 of them."""
    lo, hi = vals[:, 0], vals[:, -1]
    num = np.ceil((hi - lo) * NUM_THRESHOLDS_PER_UNIT).astype(np.int64)
    bp = np.empty(vals.shape, np.int64)  # thresholds <= c: c is below the thresholds from this index on
    for e in range(len(vals)):  # grids differ in length; a few µs each
        t = torch.linspace(float(lo[e]), float(hi[e]), int(num[e]), dtype=torch.float32).double().numpy()
        bp[e] = np.searchsorted(np.sort(t), vals[e], "right")
    last, first = _states(bp, num)
    tp, fp = np.concatenate([np.full((len(vals), 1), n), n - c_pos], 1), np.concatenate(
        [np.full((len(vals), 1), n), n - c_neg], 1)
    return _best(flat, n, tp, fp, np.concatenate([first[:, None], last], 1))


def _interval_best(vals: np.ndarray, c_in: np.ndarray, c_out: np.ndarray, narrow: np.ndarray, flat: np.ndarray,
                   n: int) -> np.ndarray:
    """`_get_double_threshold_rates`: the best ε over each example's grid of intervals [l, r], "inside" meaning
    the narrower pool (the released code's positive class here; `c_in` counts it, `c_out` the other).

    For each right end r the count of a pool inside [l, r] is #{c <= r} − #{c < l}: the second term steps up
    at each model's breakpoint as l moves right along its 400-point grid."""
    width = narrow.max(1) - narrow.min(1)
    lo, hi = narrow.min(1) + width - BUFFER, narrow.max(1) + BUFFER
    n_right = np.ceil((hi - lo) * NUM_THRESHOLDS_PER_UNIT).astype(np.int64)
    k = np.arange(int(n_right.max()))
    right = _linspace_at(lo[:, None], hi[:, None], n_right[:, None], k[None, :])  # (E, K)
    # #{c <= r} per pool: the cumulative counts at the last confidence <= r
    at = torch.searchsorted(torch.from_numpy(vals), torch.from_numpy(np.ascontiguousarray(right)), right=True).numpy()
    pad = np.zeros((len(vals), 1), dtype=c_in.dtype)
    upto_in = np.take_along_axis(np.concatenate([pad, c_in], 1), at, 1)[..., None]
    upto_out = np.take_along_axis(np.concatenate([pad, c_out], 1), at, 1)[..., None]
    n_left = int(np.ceil(2 * BUFFER * NUM_THRESHOLDS_PER_UNIT))
    centre = (right - width[:, None])[..., None]
    bp = _count_le(centre - BUFFER, centre + BUFFER, n_left, vals[:, None, :])  # c < l_j exactly for j >= bp
    last, first = _states(bp, n_left)
    rows = (k[None, :] < n_right[:, None])[..., None]
    tp = np.maximum(upto_in - c_in[:, None, :], 0)
    fp = np.maximum(upto_out - c_out[:, None, :], 0)
    best = _best(flat, n, tp, fp, last & rows)
    return np.maximum(best, _best(flat, n, upto_in, upto_out, first[..., None] & rows))  # j = 0: l at its lowest


def epsilons(unlearned: np.ndarray, retrained: np.ndarray, delta: float = DELTA,
             chunk: int = 2_000_000) -> tuple[np.ndarray, np.ndarray]:
    """ε per forget example, and the rule that decided it (an index into RULES): `_get_epsilons` on the pools
    as `compute_forget_score_from_confs` orders them. `unlearned`, `retrained`: (models, examples) confidences."""
    u, r = np.asarray(unlearned, dtype=np.float64), np.asarray(retrained, dtype=np.float64)
    n = u.shape[0]
    if r.shape[0] != n:
        raise ResidueError(f"Pools of unequal size ({n} unlearned, {r.shape[0]} retrained models).")
    retrain_pos = np.median(r, axis=0) > np.median(u, axis=0)  # positive: the pool with the larger median
    pos, neg = np.where(retrain_pos, r, u).T, np.where(retrain_pos, u, r).T  # (E, n)
    pos_diff, neg_diff = pos.max(1) - pos.min(1), neg.max(1) - neg.min(1)
    largest = np.where(pos_diff > neg_diff, pos_diff, neg_diff)
    smallest = np.where(pos_diff > neg_diff, neg_diff, pos_diff)
    with np.errstate(invalid="ignore", divide="ignore"):
        peaky = smallest / largest < 0.01  # 0/0 (both constant) is NaN: not peaky, as in the released code
    swap = (pos_diff >= neg_diff)[:, None]  # the interval family calls the narrower pool positive
    narrow = np.where(swap, neg, pos)
    # both pools of an example in one ascending order: breakpoints then come sorted, no sort per grid row
    both = np.concatenate([pos, neg], 1)
    order = np.argsort(both, axis=1, kind="stable")
    vals = np.take_along_axis(both, order, 1)
    c_neg = np.cumsum(order >= n, axis=1, dtype=np.int32)
    c_pos = np.arange(1, 2 * n + 1, dtype=np.int32) - c_neg
    c_in, c_out = np.where(swap, c_neg, c_pos), np.where(swap, c_pos, c_neg)
    flat = np.append(np.nan_to_num(epsilon_table(n, n, delta), nan=-np.inf, posinf=np.inf), -np.inf)
    best = _single_best(vals, c_pos, c_neg, flat, n).astype(np.float32)
    # the intervals can only raise ε where a single threshold has not already separated the pools (ε = ∞) and
    # the 1% rule has not decided it: the costly family runs on those examples alone
    todo = np.nonzero(~peaky & ~np.isposinf(best))[0]
    step = max(1, chunk // (2 * n * (int(2 * BUFFER * NUM_THRESHOLDS_PER_UNIT) + 2)))  # bounded memory
    for i in range(0, len(todo), step):
        s = todo[i:i + step]
        best[s] = np.maximum(best[s], _interval_best(vals[s], c_in[s], c_out[s], narrow[s], flat, n))
    none = np.isneginf(best)  # every threshold discarded: the released code's assertion; here ε = 0, counted
    rule = np.where(peaky, 1, np.where(none, 3, np.where(np.isinf(best), 2, 0)))
    eps = np.where(peaky, EPSILON_CAP, np.where(none, 0.0, best))
    return np.clip(eps.astype(np.float64), 0, EPSILON_CAP), rule


def forget_score(unlearned: np.ndarray, retrained: np.ndarray) -> float:
    """F alone: `compute_forget_score_from_confs` (mean over the forget set of 2^-bin(ε))."""
    eps, _ = epsilons(unlearned, retrained)
    return float(points(eps, len(unlearned)).sum() / eps.shape[0])


# -- the score with its error bar, from raw arrays ------------------------------------------------------
@dataclass
class Score:
    """Forgetting quality of one pool of models against a pool of retrains, with what a figure needs.

    `f` is the competition's F; `final` = F · (RA_u / RA_r) · (TA_u / TA_r) (`main.py`: mean retain and test
    accuracies of each pool) when accuracies were given. Error bars: the delete-d jackknife with d = N/2
    (Shao & Wu 1989), drawn as random partitions of each pool into two disjoint halves; every half is scored
    against a half of the other pool (with N's bins, so halves score on the same scale) and
    se² = mean over halves of (F_half − mean)² (the m/d factor is 1 at m = d = N/2). Why not the bootstrap:
    resampling with replacement puts copies of one model into a pool, which narrows its range and creates ties
    that the scorer's peakiness and discarded-threshold rules react to, and ε is a maximum over thresholds —
    a non-smooth statistic for which the bootstrap is biased; the delete-d jackknife with d ∝ N stays
    consistent for such statistics (the delete-1 jackknife does not) and keeps every pool free of duplicates."""

    f: float
    f_se: float
    n: int  # models per pool: F is comparable only at equal N (its ceiling grows with N)
    epsilons: np.ndarray  # (E,) per forget example, in [0, EPSILON_CAP]
    rules: np.ndarray  # (E,) index into RULES: how that ε was decided
    half_f: np.ndarray  # F of each half-sample
    final: float | None = None
    final_se: float | None = None
    half_final: np.ndarray | None = None
    utility: dict[str, float] = field(default_factory=dict)  # retain_u, retain_r, test_u, test_r (pool means)

    @property
    def points(self) -> np.ndarray:
        return points(self.epsilons, self.n)

    def rule_counts(self) -> dict[str, int]:
        return {name: int((self.rules == i).sum()) for i, name in enumerate(RULES)}

    def to_dict(self) -> dict[str, Any]:
        from ..results import _clean

        return _clean({
            "f": self.f, "f_se": self.f_se, "final": self.final, "final_se": self.final_se, "n": self.n,
            "n_examples": int(len(self.epsilons)), "bins": n_bins(self.n), "delta": DELTA,
            "epsilons": self.epsilons.tolist(), "points": self.points.tolist(),
            "rules": [RULES[i] for i in self.rules], "rule_counts": self.rule_counts(),
            "half_f": self.half_f.tolist(), "half_final": None if self.half_final is None else self.half_final.tolist(),
            "utility": self.utility, "error_bars": f"delete-d jackknife, d = N/2, {len(self.half_f)} halves"})


def _check_pool(name: str, conf: Any) -> np.ndarray:
    try:
        a = np.asarray(conf, dtype=np.float64)
    except (TypeError, ValueError):
        raise ResidueError(f"{name} must be a numeric array (models × forget examples).") from None
    if a.ndim != 2:
        raise ResidueError(f"{name} must be a 2-D array (models × forget examples), got shape {a.shape}.")
    bad = np.nonzero(~np.isfinite(a).all(1))[0]
    if len(bad):
        rows = ", ".join(map(str, bad[:5])) + ("..." if len(bad) > 5 else "")
        raise ResidueError(f"{name}: {len(bad)} of {len(a)} models have NaN/inf confidences (rows {rows}), as a "
                           "diverged run leaves; drop them (and as many from the other pool) and score again.")
    return a


def _check_acc(name: str, acc: Any, n: int) -> dict[str, np.ndarray]:
    if not isinstance(acc, dict) or set(acc) != {"retain", "test"}:
        raise ResidueError(f"{name} must be a dict with 'retain' and 'test': each model's accuracy.")
    out = {}
    for k, v in acc.items():
        a = np.asarray(v, dtype=np.float64).reshape(-1)
        if a.shape != (n,) or not np.isfinite(a).all() or (a < 0).any() or (a > 1).any():
            raise ResidueError(f"{name}['{k}'] must hold one finite accuracy in [0, 1] per model ({n} models), "
                               f"got {a.shape[0]} values.")
        out[k] = a
    return out


def check_halves(halves: Any) -> int:
    if isinstance(halves, bool) or not isinstance(halves, (int, np.integer)) or not 0 <= int(halves) <= 4096:
        raise ResidueError(f"halves (half-samples for the error bar) must be a whole number in [0, 4096], "
                           f"got {halves!r}.")
    return int(halves)


def forgetting_quality(unlearned_conf: Any, retrained_conf: Any, unlearned_acc: dict | None = None,
                       retrained_acc: dict | None = None, halves: int = 8, seed: int = 0) -> Score:
    """The competition's forgetting quality of any two pools a user trained, from their confidences.

    `unlearned_conf`, `retrained_conf`: (N, E) logit-scaled confidences of the true label of each forget example
    under each model (see `logit_scaled_confidence`); equal N >= 4, E >= 2, all finite. `unlearned_acc`,
    `retrained_acc`: optional {"retain": (N,), "test": (N,)} per-model accuracies, for the final score.
    `halves`: half-samples for the error bar (0: none); `seed` fixes which."""
    u, r = _check_pool("unlearned_conf", unlearned_conf), _check_pool("retrained_conf", retrained_conf)
    if u.shape[1] != r.shape[1]:
        raise ResidueError(f"The pools score different forget sets: {u.shape[1]} examples in unlearned_conf, "
                           f"{r.shape[1]} in retrained_conf.")
    if len(u) != len(r):
        raise ResidueError(f"Pools of unequal size ({len(u)} unlearned, {len(r)} retrained models): F is only "
                           "comparable at equal N; score equal pools (e.g. the first "
                           f"{min(len(u), len(r))} of each).")
    n = len(u)
    if n < MIN_MODELS:
        raise ResidueError(f"N = {n} models per pool is too few: the score needs at least {MIN_MODELS} "
                           "(the competition used 512).")
    if u.shape[1] < 2:
        raise ResidueError("A forget set of one example: F is a mean over the forget set and needs at least 2.")
    if (unlearned_acc is None) != (retrained_acc is None):
        raise ResidueError("Give the accuracies of both pools (or of neither) for the final score.")
    acc_u = _check_acc("unlearned_acc", unlearned_acc, n) if unlearned_acc is not None else None
    acc_r = _check_acc("retrained_acc", retrained_acc, n) if retrained_acc is not None else None
    if acc_r is not None and (acc_r["retain"].mean() <= 0 or acc_r["test"].mean() <= 0):
        raise ResidueError("The retrained pool's mean retain or test accuracy is 0: the final score divides by it.")
    halves = check_halves(halves)

    def utility(iu: np.ndarray, ir: np.ndarray) -> dict[str, float]:
        if acc_u is None:
            return {}
        return {"retain_u": float(acc_u["retain"][iu].mean()), "retain_r": float(acc_r["retain"][ir].mean()),
                "test_u": float(acc_u["test"][iu].mean()), "test_r": float(acc_r["test"][ir].mean())}

    def final(f: float, ut: dict[str, float]) -> float | None:
        return f * (ut["retain_u"] / ut["retain_r"]) * (ut["test_u"] / ut["test_r"]) if ut else None

    eps, rules = epsilons(u, r)
    f = float(points(eps, n).sum() / len(eps))
    everyone = np.arange(n)
    ut = utility(everyone, everyone)
    rng = np.random.default_rng(seed)
    m = n // 2
    picks = []  # (unlearned rows, retrained rows) of each half: both halves of a random partition of each pool
    for _ in range(int(halves) // 2):
        pu, pr = rng.permutation(n), rng.permutation(n)
        picks += [(pu[:m], pr[:m]), (pu[m:2 * m], pr[m:2 * m])]
    half_f, half_final = [], []
    if picks:  # every half at once: its examples side by side as columns of one call
        e, _ = epsilons(np.concatenate([u[iu] for iu, _ in picks], 1), np.concatenate([r[ir] for _, ir in picks], 1))
        half_f = points(e, n).reshape(len(picks), -1).mean(1).tolist()
        half_final = [final(f_h, utility(iu, ir)) for f_h, (iu, ir) in zip(half_f, picks)]

    def se(values: list) -> float:
        v = np.asarray(values, dtype=np.float64)
        return float(np.sqrt(m / (n - m) * np.mean((v - v.mean()) ** 2))) if len(v) >= 2 else math.nan

    return Score(f, se(half_f), n, eps, rules, np.asarray(half_f), final(f, ut),
                 se(half_final) if ut else None, np.asarray(half_final) if ut else None, ut)
