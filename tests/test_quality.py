"""Forgetting quality (issue 23): the vectorised scorer against a direct port of the released grid search, the
pools engine on the default preset (few epochs, small N), bad input and the CLI."""
from __future__ import annotations

import json
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch

from core import Cancelled, Progress, ResidueError
from core.quality import epsilons, forget_score, forgetting_quality, logit_scaled_confidence, points


# -- the reference: google-deepmind/unlearning_evaluation metric.py, ported line by line --------------------------
# Changes: no `.cuda()`; the auxiliary lists kept only for plotting are dropped; `assert thr_eps` (which raises
# on any numpy array longer than one) is read as "at least one threshold survives".
REF_DELTA, REF_CAP, REF_PER_UNIT = 1e-05, 50, 100


def ref_confidence(logits, targets):
    count = logits.shape[0]
    logits = logits - np.max(logits, axis=1, keepdims=True)
    probs = np.array(np.exp(logits), dtype=np.float64)
    probs /= np.sum(probs, axis=1, keepdims=True)
    prob_correct = probs[np.arange(count), targets[:count]]
    probs[np.arange(count), targets[:count]] = 0
    prob_wrong = np.sum(probs, axis=1)
    return np.log(prob_correct + 1e-45) - np.log(prob_wrong + 1e-45)


def ref_double(pos_confs_, neg_confs_):
    pos_diff = pos_confs_.max() - pos_confs_.min()
    neg_diff = neg_confs_.max() - neg_confs_.min()
    smallest = neg_diff if pos_diff > neg_diff else pos_diff
    if pos_diff >= neg_diff:
        pos_confs_, neg_confs_ = neg_confs_, pos_confs_
    buffer = 2.0
    width = smallest
    min_ = (pos_confs_.min() + width - buffer).numpy()
    max_ = (pos_confs_.max() + buffer).numpy()
    num_right = int(np.ceil((max_ - min_) * REF_PER_UNIT))
    right = np.linspace(min_, max_, num=num_right)
    width = width.numpy()
    num_left = int(np.ceil(2 * buffer * REF_PER_UNIT))
    thr_left = np.concatenate([np.linspace(tr - width - buffer, tr - width + buffer, num=num_left) for tr in right])
    thr_right = np.tile(np.reshape(right, (-1, 1)), (1, num_left)).reshape((-1))
    total = len(thr_left)
    n = pos_confs_.shape[0]
    thr_right = torch.from_numpy(np.tile(np.expand_dims(thr_right, 0), (n, 1)))
    thr_left = torch.from_numpy(np.tile(np.expand_dims(thr_left, 0), (n, 1)))
    pos_confs_ = torch.tile(pos_confs_[:, None], (1, total))
    neg_confs_ = torch.tile(neg_confs_[:, None], (1, total))

    def is_pp(c):
        return torch.logical_and(torch.le(thr_left, c), torch.le(c, thr_right)).type(torch.float32)

    def is_pn(c):
        return torch.logical_not(is_pp(c)).type(torch.float32)

    return (torch.mean(is_pp(pos_confs_), 0), torch.mean(is_pn(pos_confs_), 0), torch.mean(is_pp(neg_confs_), 0),
            torch.mean(is_pn(neg_confs_), 0))


def ref_single(pos_confs_, neg_confs_):
    all_confs = torch.cat([pos_confs_, neg_confs_])
    min_val, max_val = all_confs.min(), all_confs.max()
    num = int(torch.ceil((max_val - min_val) * REF_PER_UNIT))
    thresholds_ = torch.linspace(min_val, max_val, num)
    n = pos_confs_.shape[0]
    thresholds_ = torch.tile(thresholds_[None, :], (n, 1))
    pos_confs_ = torch.tile(pos_confs_[:, None], (1, num))
    neg_confs_ = torch.tile(neg_confs_[:, None], (1, num))
    tpr = torch.mean((pos_confs_ >= thresholds_).type(torch.float32), 0)
    fpr = torch.mean((neg_confs_ >= thresholds_).type(torch.float32), 0)
    tnr = torch.mean((neg_confs_ < thresholds_).type(torch.float32), 0)
    fnr = torch.mean((pos_confs_ < thresholds_).type(torch.float32), 0)
    return tpr, fnr, fpr, tnr


def ref_epsilons(pos_confs, neg_confs, delta=REF_DELTA):
    epsilons = []
    for i in range(pos_confs.shape[1]):
        pos_confs_ = pos_confs[:, i].reshape(-1)
        neg_confs_ = neg_confs[:, i].reshape(-1)
        pos_diff = np.max(pos_confs_) - np.min(pos_confs_)
        neg_diff = np.max(neg_confs_) - np.min(neg_confs_)
        largest = pos_diff if pos_diff > neg_diff else neg_diff
        smallest = neg_diff if pos_diff > neg_diff else pos_diff
        with np.errstate(invalid="ignore", divide="ignore"):
            if smallest / largest < 0.01:
                epsilons.append(REF_CAP)
                continue
        pos_confs_ = torch.from_numpy(pos_confs_)
        neg_confs_ = torch.from_numpy(neg_confs_)
        tpr_d, fnr_d, fpr_d, tnr_d = ref_double(pos_confs_, neg_confs_)
        tpr_s, fnr_s, fpr_s, tnr_s = ref_single(pos_confs_, neg_confs_)
        tpr = torch.cat([tpr_d, tpr_s], 0)
        fnr = torch.cat([fnr_d, fnr_s], 0)
        fpr = torch.cat([fpr_d, fpr_s], 0)
        tnr = torch.cat([tnr_d, tnr_s], 0)
        total = tpr.shape[0]
        thr_eps = torch.zeros(total)
        fpr_fnr_both_zero = torch.eq(fpr + fnr, torch.zeros(total))
        tpr_tnr_both_ones = torch.eq(tpr + tnr, 2 * torch.ones(total))
        thr_eps = torch.where(fpr_fnr_both_zero * tpr_tnr_both_ones, torch.full(thr_eps.shape, np.inf), thr_eps)
        thr_eps_is_zero = torch.eq(thr_eps, torch.zeros_like(thr_eps))
        fpr_or_fnr_is_zero = torch.eq(fpr * fnr, torch.zeros_like(thr_eps))
        thr_eps = torch.where(thr_eps_is_zero * fpr_or_fnr_is_zero, torch.full(thr_eps.shape, np.nan), thr_eps)
        with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            thr_eps = torch.where(
                torch.eq(thr_eps, torch.zeros_like(thr_eps)),
                torch.from_numpy(np.clip(np.nanmax(
                    [np.log(1 - delta - fpr.numpy()) - np.log(fnr.numpy()),
                     np.log(1 - delta - fnr.numpy()) - np.log(fpr.numpy())], axis=0), 0, None)),
                thr_eps)
        thr_eps = thr_eps.numpy()
        thr_eps = thr_eps[~np.isnan(thr_eps)]
        assert len(thr_eps), "Something went wrong, all thresholds gave nan epsilon..."
        epsilons.append(np.nanmax(thr_eps))
    return np.clip(epsilons, 0, REF_CAP)


def ref_score(unlearned_confs, retrained_confs):
    """`compute_forget_score_from_confs`, returning (score, epsilons)."""
    _, forget_set_size = retrained_confs.shape
    retrain_is_positive = np.median(retrained_confs, axis=0) > np.median(unlearned_confs, axis=0)
    pos_confs = np.where(retrain_is_positive, retrained_confs, unlearned_confs)
    neg_confs = np.where(retrain_is_positive, unlearned_confs, retrained_confs)
    eps = ref_epsilons(pos_confs, neg_confs)
    max_epsilon = np.ceil(np.log(unlearned_confs.shape[0] - 1))
    start_idx, bucket_size, points_, bucket_points = 0, 0.5, 1, {}
    end_idx = start_idx + bucket_size
    while end_idx <= max_epsilon:
        bucket_points[start_idx] = points_
        points_ /= 2
        start_idx += bucket_size
        end_idx = start_idx + bucket_size
    forget_score_ = 0
    for e in eps:
        for start_idx, points_ in bucket_points.items():
            if e < start_idx + bucket_size:
                forget_score_ += points_
                break
    return forget_score_ / forget_set_size, eps


# -- synthetic populations --------------------------------------------------------------------------------
def populations(kind: str, n: int, e: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    r = rng.normal(-8.0, 2.0, (n, e))
    if kind == "separated":
        u = rng.normal(4.0, 1.0, (n, e))
    elif kind == "identical":
        u = rng.normal(-8.0, 2.0, (n, e))
    elif kind == "overlapping":  # shifted by 0..2 sd, some narrower: the interval attack matters
        u = rng.normal(-8.0 + np.linspace(0, 4, e), np.linspace(0.3, 2.0, e), (n, e))
    elif kind == "ties":  # confidences on a coarse lattice, shared by both pools: ties at thresholds
        r = np.round(rng.normal(-3.0, 1.0, (n, e)) * 4) / 4
        u = np.round(rng.normal(-2.5, 1.0, (n, e)) * 4) / 4
    elif kind == "peaky":  # one pool almost constant: the 1% rule
        u = -5.0 + 1e-4 * rng.normal(size=(n, e))
    elif kind == "saturated":  # float32 softmax underflow: many models at the same extreme value
        r = np.where(rng.random((n, e)) < 0.5, -103.27892990343185, rng.normal(-60, 10, (n, e)))
        u = np.where(rng.random((n, e)) < 0.3, -103.27892990343185, rng.normal(-50, 10, (n, e)))
    else:
        raise ValueError(kind)
    return u, r


@pytest.mark.parametrize("kind,n", [("separated", 8), ("identical", 8), ("overlapping", 8), ("overlapping", 5),
                                    ("ties", 6), ("peaky", 6), ("saturated", 8), ("identical", 16)])
def test_scorer_matches_the_released_grid_search(kind, n):
    u, r = populations(kind, n, 12, seed=n)
    want_f, want_eps = ref_score(u, r)
    eps, _ = epsilons(u, r)
    np.testing.assert_array_equal(eps, want_eps)
    assert forget_score(u, r) == want_f
