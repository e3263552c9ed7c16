"""Forgetting quality (issue 23): the vectorised scorer against a direct port of the released grid search, the
pools engine on the default preset (few epochs, small N), bad input and the CLI."""
from __future__ import annotations

import contextlib
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


@contextlib.contextmanager
def one_thread():
    """The reference's large torch tensors on one thread: a shared machine's descheduled OpenMP threads would
    otherwise slow it several-fold (its numbers do not depend on it: sums of 0/1 values are exact)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def ref_score(unlearned_confs, retrained_confs):
    """`compute_forget_score_from_confs`, returning (score, epsilons)."""
    _, forget_set_size = retrained_confs.shape
    retrain_is_positive = np.median(retrained_confs, axis=0) > np.median(unlearned_confs, axis=0)
    pos_confs = np.where(retrain_is_positive, retrained_confs, unlearned_confs)
    neg_confs = np.where(retrain_is_positive, unlearned_confs, retrained_confs)
    with one_thread():
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


@pytest.mark.parametrize("kind,n,e", [("separated", 8, 3), ("identical", 8, 5), ("overlapping", 8, 6),
                                      ("overlapping", 5, 6), ("ties", 6, 6), ("peaky", 6, 6), ("saturated", 8, 4),
                                      ("identical", 16, 3)])
def test_scorer_matches_the_released_grid_search(kind, n, e):
    u, r = populations(kind, n, e, seed=n)
    want_f, want_eps = ref_score(u, r)
    eps, _ = epsilons(u, r)
    np.testing.assert_array_equal(eps, want_eps)
    assert forget_score(u, r) == want_f


def test_both_pools_one_constant_where_the_released_code_asserts():
    """Every threshold is discarded: the released scorer fails its assertion; here ε = 0, counted as such."""
    u = np.full((6, 3), -4.0)
    r = u.copy()
    with pytest.raises(AssertionError):
        ref_score(u, r)
    eps, rules = epsilons(u, r)
    assert eps.tolist() == [0.0] * 3 and rules.tolist() == [3] * 3
    apart = r + 1.0, r  # two different constants: perfectly separated
    want_f, want_eps = ref_score(*apart)
    np.testing.assert_array_equal(epsilons(*apart)[0], want_eps)
    assert forget_score(*apart) == want_f


def test_logit_scaled_confidence_is_the_released_transform():
    rng = np.random.default_rng(3)
    logits = (rng.normal(0, 30, (3, 40, 10))).astype(np.float32)  # large logits: float32 exp underflows to 0
    y = rng.integers(0, 10, 40)
    got = logit_scaled_confidence(logits, y)
    for m in range(3):
        np.testing.assert_array_equal(got[m], ref_confidence(logits[m].copy(), y))
    assert got.min() < -100  # saturated: log(1e-45) − log(1)


def test_points_and_bins_follow_the_released_buckets():
    # N = 32: max ε = ceil(log 31) = 4, bins [0, .5) .. [3.5, 4) worth 1 .. 1/128, nothing from 4 on
    eps = np.array([0.0, 0.49, 0.5, 1.99, 3.5, 3.999, 4.0, 50.0])
    np.testing.assert_array_equal(points(eps, 32), [1, 1, 0.5, 1 / 8, 1 / 128, 1 / 128, 0, 0])
    e = np.array([0.2, 1.2, 2.7, 6.4, 6.9])
    for n in (4, 5, 8, 32, 512):  # max ε 2, 2, 2, 4, 7
        max_eps = np.ceil(np.log(n - 1))
        expected = [2.0 ** -int(x // 0.5) if x < max_eps else 0.0 for x in e]
        np.testing.assert_array_equal(points(e, n), expected)


def test_score_error_bars_and_final_score():
    u, r = populations("overlapping", 16, 10, seed=4)
    acc_u = {"retain": np.full(16, 0.9), "test": np.full(16, 0.8)}
    acc_r = {"retain": np.full(16, 0.95), "test": np.full(16, 0.85)}
    s = forgetting_quality(u, r, acc_u, acc_r, halves=8, seed=1)
    assert s.n == 16 and len(s.epsilons) == 10 and len(s.half_f) == 8
    assert s.f == forget_score(u, r)
    assert s.final == pytest.approx(s.f * (0.9 / 0.95) * (0.8 / 0.85))
    assert np.isfinite(s.f_se) and s.f_se > 0  # halves of an overlapping population do not all agree
    assert s.f_se == pytest.approx(np.sqrt(np.mean((s.half_f - s.half_f.mean()) ** 2)))  # m = d = N/2
    again = forgetting_quality(u, r, acc_u, acc_r, halves=8, seed=1)
    np.testing.assert_array_equal(again.half_f, s.half_f)  # the seed fixes the halves
    d = s.to_dict()
    json.dumps(d)
    assert d["n"] == 16 and d["rule_counts"]["threshold"] + d["rule_counts"]["separated"] == 10
    assert np.isnan(forgetting_quality(u, r, halves=0).f_se)
    # each half is the released scorer on those models (with N's bins): one half recomputed by hand
    rng = np.random.default_rng(1)
    pu, pr = rng.permutation(16), rng.permutation(16)
    e = ref_score(u[pu[:8]], r[pr[:8]])[1]
    assert s.half_f[0] == pytest.approx(points(e, 16).mean())


RAW_BAD = [
    ("N below 4", lambda u, r: (u[:3], r[:3]), {}, "N = 3 models per pool is too few"),
    ("unequal pools", lambda u, r: (u, r[:5]), {}, "Pools of unequal size (6 unlearned, 5 retrained"),
    ("one example", lambda u, r: (u[:, :1], r[:, :1]), {}, "A forget set of one example"),
    ("NaN from a diverged run", lambda u, r: (np.where(np.arange(6)[:, None] == 2, np.nan, u), r), {},
     "unlearned_conf: 1 of 6 models have NaN/inf confidences (rows 2)"),
    ("inf", lambda u, r: (u, np.where(np.arange(6)[:, None] == 0, np.inf, r)), {}, "retrained_conf: 1 of 6"),
    ("1-D", lambda u, r: (u[0], r[0]), {}, "must be a 2-D array"),
    ("text", lambda u, r: ([["a"] * 4] * 6, r), {}, "must be a numeric array"),
    ("other forget set", lambda u, r: (u, r[:, :3]), {}, "different forget sets"),
    ("one side's accuracies", lambda u, r: (u, r), {"unlearned_acc": {"retain": np.ones(6), "test": np.ones(6)}},
     "accuracies of both pools"),
    ("accuracies too short", lambda u, r: (u, r), {"unlearned_acc": {"retain": np.ones(5), "test": np.ones(6)},
                                                  "retrained_acc": {"retain": np.ones(6), "test": np.ones(6)}},
     "one finite accuracy in [0, 1] per model (6 models), got 5"),
    ("halves", lambda u, r: (u, r), {"halves": -1}, "halves (half-samples for the error bar)"),
]


@pytest.mark.parametrize("case,make,kw,text", RAW_BAD, ids=[c[0] for c in RAW_BAD])
def test_raw_bad_input_is_one_clear_line(case, make, kw, text):
    u, r = populations("overlapping", 6, 4)
    with pytest.raises(ResidueError) as err:
        forgetting_quality(*make(u, r), **kw)
    assert text in str(err.value) and "\n" not in str(err.value)


# -- pools on the default preset (few epochs, small N) ------------------------------------------------------
N = 6


@pytest.fixture(scope="module")
def exp(tmp_path_factory):
    from core import Experiment
    from core.cache import ModelStore
    from core.config import MethodConfig, load_config
    from core.training import Recipe

    cfg = load_config("assets/presets/forget_digit_7.toml")
    cfg.recipe = Recipe(**{**cfg.recipe.to_dict(), "epochs": 6})
    cfg.methods = [MethodConfig("finetune", {"epochs": 1}), MethodConfig("ssd")]
    return Experiment(cfg, store=ModelStore(tmp_path_factory.mktemp("quality-store")), device="cpu")


@pytest.fixture(scope="module")
def report_a(exp):
    from core.quality import quality

    return quality(exp, n=N, protocol="A")


def test_report_holds_the_methods_between_their_anchors(exp, report_a):
    split = exp.prepare()
    r = report_a
    assert r.n == N and r.protocol == "A" and list(r.methods) == ["finetune", "ssd"]
    assert r.forget_indices.tolist() == split.forget.tolist()
    for s in [r.ceiling, r.floor] + [m.score for m in r.methods.values()]:
        assert s is not None and s.n == N and len(s.epsilons) == len(split.forget) and len(s.half_f) == 8
        assert 0 <= s.f <= 1 and s.final is not None
    assert r.ceiling.f > r.floor.f  # retrains against retrains beat θ_o's seeds against retrains
    assert r.floor.f == 0.0  # θ_o still predicts the 7s: every example separated
    pools = r.pools
    assert [p.n for p in pools.values()] == [N, N, N] and not any(p.failed for p in pools.values())
    assert pools["retrain"].forget_acc.max() == 0 and pools["originals"].forget_acc.min() > 0.75  # 6 epochs: most 7s
    d = r.to_dict()
    text = json.dumps(d)
    assert d["n"] == N and "protocol_note" in d and "SSD" in d["protocol_note"] and "NaN" not in text
    assert d["methods"]["ssd"]["score"]["n"] == N and len(d["forget_indices"]) == len(split.forget)
    rows = r.rows()
    assert [x["model"] for x in rows] == ["ceiling (retrains)", "finetune", "ssd", "floor (θ_o's seeds)"]


def test_real_pools_match_the_released_grid_search(report_a):
    """The engine's ε on real pools (first examples, to keep the reference fast) equal the direct port's."""
    r = report_a
    retrain = r.pools["retrain"].conf
    cases = [("ceiling", r.pools["ceiling"].conf, r.ceiling), ("floor", r.pools["originals"].conf, r.floor),
             ("ssd", r.methods["ssd"].pool.conf, r.methods["ssd"].score)]
    cols = slice(0, 10)
    seen = set()
    for name, pool, score in cases:
        _, want = ref_score(pool[:, cols], retrain[:, cols])
        np.testing.assert_array_equal(score.epsilons[cols], want, err_msg=name)
        seen |= set(score.rules[cols].tolist())
    assert 0 in seen  # at least some ε came from the thresholds, not only from the special rules


def test_runs_are_cached_like_experiment_unlearn(exp, report_a):
    from core.quality import quality

    tr = exp.unlearn("finetune", {"epochs": 1})  # run 0 of protocol A is the experiment's own θ_u
    assert tr.cached
    again = quality(exp, n=N, protocol="A")  # the report itself comes back from the result cache
    assert again.methods["ssd"].score.f == report_a.methods["ssd"].score.f
    np.testing.assert_array_equal(again.ceiling.epsilons, report_a.ceiling.epsilons)


def test_protocol_b_starts_each_run_from_its_own_original(exp, report_a):
    from core.quality import quality

    b = quality(exp, n=N, protocol="B", methods=[exp.config.methods[1]], halves=0)
    ssd_a, ssd_b = report_a.methods["ssd"].pool, b.methods["ssd"].pool
    np.testing.assert_array_equal(ssd_b.conf[0], ssd_a.conf[0])  # run 0 starts from θ_o in both
    s = exp.config.seed
    assert exp.unlearn("ssd", {}, seed=s + 3, original_seed=s + 3).cached  # run 3 of B: from θ_o of seed 3
    # under A every SSD run dampens the same θ_o (only the importance passes' batch order differs): narrower
    assert ssd_a.median_range < ssd_b.median_range
    np.testing.assert_array_equal(b.ceiling.epsilons, report_a.ceiling.epsilons)  # anchors: protocol-free
    assert b.to_dict()["protocol"] == "B"


def test_exact_retrain_method_is_its_own_pool(exp, report_a):
    """`retrain` as a method: batched retrains that share no model with the pool they are scored against."""
    from core.config import MethodConfig
    from core.quality import quality

    r = quality(exp, n=N, methods=[MethodConfig("retrain")], halves=0)
    m = r.methods["retrain"]
    assert m.pool.n == N and m.pool.forget_acc.max() == 0
    assert not any(np.array_equal(row, ref) for row in m.pool.conf for ref in r.pools["retrain"].conf)
    assert m.score.f > report_a.floor.f  # indistinguishable from retrains on some examples, unlike θ_o's seeds


def test_failed_runs_are_excluded_and_counted(exp, monkeypatch):
    """A run that raises, one that diverges and one with NaN confidences: left out, counted, never scored."""
    import copy

    from core.experiment import Trained
    from core.quality import quality

    real = exp.unlearn
    s = exp.config.seed

    def flaky(name, params, progress=None, seed=None, original_seed=None):
        tr = real(name, params, progress, seed=seed, original_seed=original_seed)
        if seed == s + 1:
            raise RuntimeError("out of memory on this seed")
        if seed == s + 2:
            return Trained(tr.model, tr.seconds, "diverged", "loss became nan at step 3; stopped.")
        if seed == s + 3:
            broken = copy.deepcopy(tr.model)
            with torch.no_grad():
                next(broken.parameters()).fill_(float("nan"))
            return Trained(broken, tr.seconds)
        return tr

    monkeypatch.setattr(exp, "unlearn", flaky)
    from core.config import MethodConfig

    r = quality(exp, n=8, methods=[MethodConfig("finetune", {"epochs": 1}, label="flaky")], halves=2)
    m = r.methods["flaky"]
    assert m.pool.n == 5 and m.pool.errors == 1 and len(m.pool.failed) == 3
    text = " | ".join(m.pool.failed)
    assert "out of memory" in text and "diverged" in text and "NaN/inf confidences" in text
    assert m.score.n == 5 and "scored at N = 5: flaky kept 5 of 8 models" in m.note and r.ceiling.n == 8
    assert s + 1 not in m.pool.seeds and s + 2 not in m.pool.seeds and s + 3 not in m.pool.seeds
    # a pool with a run that raised is not stored: the next call retries that run
    calls = []
    monkeypatch.setattr(exp, "unlearn", lambda *a, **k: calls.append(k["seed"]) or real(*a, **k))
    r2 = quality(exp, n=8, methods=[MethodConfig("finetune", {"epochs": 1}, label="flaky")], halves=2)
    assert len(calls) == 8 and r2.methods["flaky"].pool.n == 8 and r2.methods["flaky"].note == ""


def test_too_few_successful_runs_is_said_not_scored(exp, monkeypatch):
    from core.config import MethodConfig
    from core.quality import quality

    def broken(*a, **k):
        raise RuntimeError("no")

    monkeypatch.setattr(exp, "unlearn", broken)
    r = quality(exp, n=4, methods=[MethodConfig("ssd", label="broken")], halves=0)
    m = r.methods["broken"]
    assert m.score is None and "not scored: broken kept 0 of 4 models" in m.note
    assert m.pool.failed[0] == "seed 0: failed: RuntimeError: no"
    json.dumps(r.to_dict())


@pytest.mark.parametrize("kw,text", [({"n": 3}, "N = 3 models per pool is out of range"),
                                     ({"n": 2.5}, "N must be a whole number"),
                                     ({"protocol": "C"}, "Unknown protocol 'C'"),
                                     ({"halves": 3.0}, "halves (half-samples")])
def test_engine_bad_input_before_any_training(exp, kw, text, monkeypatch):
    from core.quality import pools, quality

    monkeypatch.setattr(pools, "_scratch_pools", lambda *a: pytest.fail("trained before refusing"))
    with pytest.raises(ResidueError, match=None) as err:
        quality(exp, **kw)
    assert text in str(err.value) and "\n" not in str(err.value)


def test_forget_set_of_one_example_is_refused(tmp_path):
    from core import Experiment, ExperimentConfig
    from core.cache import ModelStore
    from core.data import ForgetSpec
    from core.quality import quality

    e = Experiment(ExperimentConfig(), store=ModelStore(tmp_path), device="cpu")
    e.config.data.forget = ForgetSpec(kind="indices", indices=[int(e.prepare().train[0])])
    e.split = None
    with pytest.raises(ResidueError, match="at least 2 examples"):
        quality(e, n=4)


def test_cancel_stops_and_stores_nothing(exp):
    from core.config import MethodConfig
    from core.quality import quality

    p = Progress()
    events = []

    def on_event(e):
        events.append(e.stage)
        if len(events) == 3:
            p.cancel()

    p.callback = on_event
    with pytest.raises(Cancelled):
        quality(exp, n=5, methods=[MethodConfig("finetune", {"epochs": 2})], halves=0, progress=p)
    assert any(s.startswith("quality") for s in events)
    done = quality(exp, n=5, methods=[MethodConfig("finetune", {"epochs": 2})], halves=0)  # then runs to the end
    assert done.methods["finetune"].score is not None


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "core", *args], capture_output=True, text=True)


def test_cli_quality_writes_the_section(tmp_path):
    cfg = tmp_path / "c.toml"  # small and quick: 2-D moons, a small MLP
    cfg.write_text("[data]\nname = 'moons'\n[data.options]\nn_samples = 300\n[data.forget]\nkind = 'random'\n"
                   "count = 12\n[model]\nname = 'mlp'\nhidden = [16]\n[recipe]\nepochs = 5\n"
                   "[[methods]]\nname = 'finetune'\nepochs = 1\n")
    out = tmp_path / "out"
    p = _cli("quality", "--config", str(cfg), "--methods", "ssd", "--n", "4", "--halves", "2", "--out", str(out),
             "--cache", str(tmp_path / "cache"), "--quiet")
    assert p.returncode == 0, p.stderr
    data = json.loads((out / "results.json").read_text())
    q = data["sections"]["quality"]
    assert q["n"] == 4 and q["protocol"] == "A" and list(q["methods"]) == ["ssd"]
    assert q["ceiling"]["n"] == 4 and len(q["methods"]["ssd"]["score"]["epsilons"]) == len(data["forget_indices"])
    assert "forgetting quality: protocol A, N = 4" in p.stdout and "floor (θ_o's seeds)" in p.stdout
    one = tmp_path / "one.toml"
    one.write_text(cfg.read_text().replace("count = 12", "count = 1"))
    for bad, text in [(["--n", "3"], "N = 3 models per pool"), (["--protocol", "Z"], "Unknown protocol"),
                      (["--n", "x"], "invalid int value"), (["--config", str(one)], "at least 2 examples")]:
        p = _cli("quality", "--config", str(cfg), *bad, "--out", str(tmp_path / "o2"), "--quiet",
                 "--cache", str(tmp_path / "cache-bad"))
        assert p.returncode == 2 and text in p.stderr and p.stderr.strip().count("\n") == 0, p.stderr
    assert not (tmp_path / "cache-bad").exists()  # refused before anything was trained
