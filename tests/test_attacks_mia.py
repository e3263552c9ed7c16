"""Membership attacks: ROC utilities, signals, LiRA, the sample-wise reminiscence attack, the privacy
score, batched shadow training, and the attack figures."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score, roc_curve

from core.attacks import AttackContext, get_attack
from core.attacks.lira import augmented_queries, lira_scores, shift_image
from core.attacks.mia import best_threshold, signals
from core.attacks.privacy import (comparator_privacy, comparator_signals, epsilons, privacy_score,
                                  worst_case_privacy)
from core.attacks.roc import summarize, tpr_at_fpr
from core.attacks.shadow import balanced_keep, clear_memo, shadow_models, train_models
from core.batched import (_generic_loss_grad_fn, forward_many, init_many, linear_chain, loss_grad_fn, stack,
                          train_many)
from core.cache import ModelStore
from core.data import load_dataset, make_split
from core.data.base import Dataset, ForgetSpec
from core.models import build_model
from core.training import Recipe, train


# -- a small, deliberately over-fitted setting ------------------------------------------------------------

@pytest.fixture(scope="module")
def overfit_ctx():
    """600 digits with 20% of the labels randomised, 330 training images, an MLP trained 100 epochs:
    it memorises its training set (train accuracy ~0.9, test ~0.74), so membership leaks. The forget set
    is 100 random training samples, so θ_r never saw them (a clean null for the attacks)."""
    d = load_dataset("digits")
    rng = np.random.default_rng(0)
    sel = np.sort(rng.choice(len(d.y), 600, replace=False))
    y = d.y[sel].copy()
    flip = rng.random(len(y)) < 0.2
    y[flip] = rng.integers(0, 10, flip.sum())
    ds = Dataset("digits-noisy", d.X[sel], y, 10, kind="image")
    split = make_split(ds, ForgetSpec(kind="random", count=100), 0.2, 0.25, seed=0)
    recipe = Recipe(epochs=100)

    def fresh(seed: int = 0):
        return build_model("mlp", ds.input_shape, 10, seed=seed, hidden=[256])

    models = {}
    for name, part in (("original", "train"), ("retrain", "retain")):
        m = fresh(0)
        train(m, *split.tensors(part), recipe, seed=0)
        models[name] = m.eval()
    return AttackContext(split=split, models=models, fresh_model=fresh, recipe=recipe, seed=0, methods={})


# -- ROC utilities ----------------------------------------------------------------------------------------

def test_roc_matches_sklearn():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 400)
    s = np.round(rng.normal(y * 0.8, 1.0), 1)  # rounded: many ties
    roc = summarize(s, y)
    assert roc.auc == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    fpr, tpr, _ = roc_curve(y, s, drop_intermediate=False)
    for target in (0.01, 0.05, 0.1, 0.3):
        expect = tpr[fpr <= target].max()
        assert tpr_at_fpr(np.asarray(roc.fpr), np.asarray(roc.tpr), target) == pytest.approx(expect)
    assert roc.tpr_at_1pct == pytest.approx(tpr[fpr <= 0.01].max())


def test_best_threshold_is_best_balanced_accuracy():
    s = np.array([0.1, 0.2, 0.35, 0.5, 0.8, 0.9])
    y = np.array([0, 1, 0, 0, 1, 1])
    t, acc = best_threshold(s, y)
    assert t == 0.8 and acc == pytest.approx(0.5 * (2 / 3 + 1))


# -- signals and queries ----------------------------------------------------------------------------------

def test_signals_match_their_definitions():
    torch.manual_seed(0)
    z = torch.randn(50, 6) * 3
    y = torch.randint(0, 6, (50,))
    s = signals(z, y)
    p = z.double().softmax(-1)
    py = p[torch.arange(50), y]
    assert torch.allclose(s["loss"], -torch.nn.functional.cross_entropy(z.double(), y, reduction="none"))
    assert torch.allclose(s["confidence"], py)
    assert torch.allclose(s["phi"], py.log() - (1 - py).log())
    assert torch.allclose(s["entropy"], (p * p.log()).sum(-1))
    mentr = -(1 - py) * py.log()
    for j in range(6):
        other = y != j
        mentr = mentr - torch.where(other, p[:, j] * (1 - p[:, j]).log(), torch.zeros(()).double())
    assert torch.allclose(s["modified_entropy"], -mentr)


def test_augmented_queries_are_one_pixel_shifts():
    X = torch.as_tensor(load_dataset("digits").X[:20])
    views = augmented_queries(X, augment=True)
    assert len(views) == 5 and torch.equal(views[0], X)
    expected = set()
    for dy, dx in ((1, 0), (-1, 0), (0, 1), (0, -1)):
        rolled = torch.roll(X, shifts=(dy, dx), dims=(-2, -1))
        if dy == 1:
            rolled[..., 0, :] = 0
        if dy == -1:
            rolled[..., -1, :] = 0
        if dx == 1:
            rolled[..., :, 0] = 0
        if dx == -1:
            rolled[..., :, -1] = 0
        assert torch.equal(shift_image(X, dy, dx), rolled)
        expected.add(rolled.numpy().tobytes())
    assert {v.numpy().tobytes() for v in views[1:]} == expected
    flips = {torch.flip(X, dims=(-1,)).numpy().tobytes(), torch.flip(X, dims=(-2,)).numpy().tobytes()}
    assert not flips & {v.numpy().tobytes() for v in views}
    assert len(augmented_queries(X, augment=False)) == 1
    assert len(augmented_queries(torch.randn(10, 2), augment=True)) == 1  # non-image data: identity only


def test_balanced_keep_puts_every_sample_in_and_out():
    keep = balanced_keep(16, 300, 0.5, np.random.default_rng(0))
    assert (keep.sum(0) == 8).all()
    keep = balanced_keep(8, 300, 0.75, np.random.default_rng(0))  # the ReA code: 6 of 8 IN
    assert (keep.sum(0) == 6).all()
    keep = balanced_keep(4, 50, 0.99, np.random.default_rng(0))
    assert (keep.sum(0) == 3).all()  # always OUT for at least one


def test_lira_scores_rank_a_planted_member_first():
    rng = np.random.default_rng(0)
    M, N = 16, 40
    keep = balanced_keep(M, N, 0.5, rng)
    base = rng.normal(0, 3, N)
    phis = (base[None] + 2.0 * keep + rng.normal(0, 0.3, (M, N)))[..., None]
    target = base.copy()
    target[:20] += 2.0  # the first 20 were trained on
    sc = lira_scores(target[:, None], phis, keep)
    labels = np.r_[np.ones(20), np.zeros(20)]
    assert summarize(sc["online"], labels).auc > 0.95
    assert summarize(sc["offline"], labels).auc > 0.9


# -- batched shadow training ------------------------------------------------------------------------------

def _digits_bits():
    d = load_dataset("digits")
    X, y = torch.as_tensor(d.X), torch.as_tensor(d.y)
    rng = np.random.default_rng(3)
    subsets = [np.sort(rng.choice(len(y), n, replace=False)) for n in (150, 200, 170)]
    return d, X, y, subsets


def trained_one_by_one(make, X, y, subsets, recipe, seeds) -> dict:
    """What `train_many` must equal: model `make(s)` trained alone on its subset with seed s, the weights stacked."""
    alone = []
    for s, sub in zip(seeds, subsets):
        m = make(s)
        train(m, X[sub], y[sub], recipe, seed=s)
        alone.append(m)
    return stack(alone)


@pytest.mark.parametrize("kind", ["sgd", "adam"])
def test_batched_training_equals_one_by_one(kind):
    d, X, y, subsets = _digits_bits()
    recipe = Recipe(epochs=4, batch_size=32, lr=0.05 if kind == "sgd" else 2e-3, optimizer=kind, momentum=0.9)
    make = lambda s: build_model("mlp", d.input_shape, 10, seed=int(s), hidden=[64, 32])  # noqa: E731
    seeds = [11, 12, 13]
    batched = train_many(make(0), init_many(make, seeds), X, y, subsets, recipe, seeds)
    ref = trained_one_by_one(make, X, y, subsets, recipe, seeds)
    if kind == "sgd":
        for k in ref:
            assert torch.allclose(batched[k], ref[k], atol=1e-5), k
    else:  # Adam divides by sqrt(v): rounding differences grow, but the models agree
        out_b = forward_many(make(0), batched, X)
        out_r = forward_many(make(0), ref, X)
        assert (out_b.argmax(-1) == out_r.argmax(-1)).float().mean() > 0.995
        assert (out_b.softmax(-1) - out_r.softmax(-1)).abs().max() < 0.05


def test_mlp_fast_path_matches_autograd_and_cnn_takes_the_generic_path():
    d, X, y, _ = _digits_bits()
    make = lambda s: build_model("mlp", d.input_shape, 10, seed=int(s), hidden=[64, 32])  # noqa: E731
    tpl = make(0)
    assert linear_chain(tpl) is not None
    assert linear_chain(build_model("cnn", d.input_shape, 10, seed=0)) is None
    assert linear_chain(torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Tanh(), torch.nn.Linear(3, 2))) is None
    params = init_many(make, [1, 2, 3])
    from core.batched import Flat
    flat = Flat(tpl).flatten(params)
    idx = torch.randint(0, len(y), (3, 40), generator=torch.Generator().manual_seed(0))
    w = torch.ones(3, 40)
    w[1, 30:] = 0  # a padded, shorter batch
    g1, l1 = loss_grad_fn(tpl)(flat, X[idx], y[idx], w)
    g2, l2 = _generic_loss_grad_fn(tpl)(flat, X[idx], y[idx], w)
    assert torch.allclose(g1, g2, atol=1e-6) and torch.allclose(l1, l2, atol=1e-6)
    out = forward_many(tpl, params, X[:100])
    for i, m in enumerate([make(s) for s in (1, 2, 3)]):
        assert torch.allclose(out[i], m(X[:100]), atol=1e-5)
    # a CNN still trains batched, through vmap
    cnn = lambda s: build_model("cnn", d.input_shape, 10, seed=int(s), channels=(4, 4), hidden=8)  # noqa: E731
    p = train_many(cnn(0), init_many(cnn, [0, 1]), X, y, [np.arange(64), np.arange(64, 128)],
                   Recipe(epochs=1, batch_size=32), [0, 1])
    assert p["blocks.head.weight"].shape[0] == 2


def test_shadow_models_are_cached(overfit_ctx, tmp_path):
    ctx = AttackContext(**{**overfit_ctx.__dict__, "store": ModelStore(tmp_path)})
    ctx.recipe = Recipe(epochs=2)
    clear_memo()
    ids = np.r_[ctx.split.forget[:10], ctx.split.test[:10]]
    a = shadow_models(ctx, ids, n_shadows=4)
    assert a.cached == 0 and a.keep.shape == (4, len(a.pool))
    assert a.member_mask(ids).any(0).all() and (~a.member_mask(ids)).any(0).all()
    b = shadow_models(ctx, ids, n_shadows=4)  # in-process memo
    assert b.cached == 4 and b.seconds == 0.0
    clear_memo()
    c = shadow_models(ctx, ids, n_shadows=4)  # from the disk store
    assert c.cached == 4
    for k in a.params:
        assert torch.equal(a.params[k], c.params[k])
    subs = train_models(ctx, [ctx.split.shadow[:50]], seeds=[5])
    assert subs.n_models == 1 and len(subs.modules()) == 1


# -- attacks on real models -------------------------------------------------------------------------------

def test_lira_beats_loss_attack_on_an_overfitted_model(overfit_ctx):
    res = {r.attack: r for r in get_attack("lira").run(overfit_ctx, "original")}
    res.update({r.attack: r for r in get_attack("mia_threshold").run(overfit_ctx, "original")})
    lira, loss = res["lira_online"].roc(), res["mia:loss"].roc()
    assert loss.auc > 0.56, loss.auc
    assert lira.auc > 0.65, lira.auc
    assert lira.tpr_at_1pct >= loss.tpr_at_1pct
    assert lira.tpr_at_1pct >= 0.05  # 100 members: at least 5 found at 1% FPR
    assert res["lira_offline"].roc().auc > 0.6


def test_attacks_on_a_model_that_never_saw_the_targets_are_chance(overfit_ctx):
    # θ_r never trained on D_f (100 members) nor on the test set (120 non-members): under the null the
    # AUC's standard deviation is sqrt((n1+n2+1)/(12·n1·n2)) ≈ 0.04, so ±0.12 is a 3σ band
    n1, n2 = len(overfit_ctx.split.forget), len(overfit_ctx.split.test)
    tol = 3 * np.sqrt((n1 + n2 + 1) / (12 * n1 * n2))
    assert 0.1 < tol < 0.13
    results = get_attack("lira").run(overfit_ctx, "retrain") + get_attack("mia_threshold").run(overfit_ctx, "retrain")
    for r in results:
        assert abs(r.roc().auc - 0.5) < tol, (r.attack, r.roc().auc)


def test_every_result_can_be_sliced_and_serialised(overfit_ctx):
    results = []
    for name in ("mia_threshold", "mia_shadow", "mia_efficacy", "privacy_score"):
        results += get_attack(name).run(overfit_ctx, "original")
    results += get_attack("privacy_score", thresholds="comparator").run(overfit_ctx, "original")
    assert results[-1].extra["privacy"]["thresholds"] == "comparator"
    for r in results:
        n = len(r.scores)
        assert len(r.labels) == n and len(r.sample_ids) == n
        assert set(r.groups) >= {"class", "correct"} and all(len(v) == n for v in r.groups.values())
        assert r.sliced("class") and r.sliced("correct")
        json.dumps(r.to_dict())
    eff = {t: get_attack("mia_efficacy").run(overfit_ctx, t)[0].extra["efficacy"] for t in ("original", "retrain")}
    assert eff["retrain"] > eff["original"]  # D_f looks less like members to a model that never saw it


def test_sample_wise_reminiscence_reports_beside_lira(overfit_ctx):
    out = get_attack("rea_sample", epochs1=1, epochs2=1).run(overfit_ctx, "original")
    names = [r.attack for r in out]
    assert names == ["rea_sample", "rea_sample_offline", "lira_online"]
    lira = get_attack("lira").run(overfit_ctx, "original")[0]
    assert np.allclose(out[2].scores, lira.scores)  # the baseline is plain LiRA on θ_u, same shadows
    assert out[0].extra["forget_acc_after"] >= 0 and out[0].extra["rea_auc"] == pytest.approx(out[0].roc().auc)


# -- privacy score ----------------------------------------------------------------------------------------

def test_privacy_score_extremes():
    rng = np.random.default_rng(0)
    s = {"entropy": rng.random(100), "confidence": rng.normal(size=100)}
    same = worst_case_privacy(s, {k: v.copy() for k, v in s.items()})
    assert same.score == 1.0 and same.epsilon == 0.0
    apart = worst_case_privacy({"entropy": rng.random(100) + 2, "confidence": rng.normal(size=100)},
                               {"entropy": rng.random(100), "confidence": rng.normal(size=100)})
    assert apart.score == pytest.approx(0.0, abs=1e-9) and apart.signal == "entropy"
    assert apart.direction == "unlearned_above" and not np.isfinite(apart.epsilon)
    flipped = worst_case_privacy({"entropy": rng.random(100)}, {"entropy": rng.random(100) + 2})
    assert flipped.score == pytest.approx(0.0, abs=1e-9) and flipped.direction == "unlearned_below"
    # one error each way: ε = log(0.99 − δ) − log(0.01)
    eps = epsilons(np.array([0.01]), np.array([0.01]))[0]
    assert eps == pytest.approx(np.log(1 - 1e-5 - 0.01) - np.log(0.01))
    assert epsilons(np.array([0.5]), np.array([0.5]))[0] == 0.0


def _comparator_reference(u: np.ndarray, r: np.ndarray, low: float, high: float) -> float:
    """The Comparator's published arithmetic for one signal, threshold by threshold as it is written
    (gnueaj/Machine-Unlearning-Comparator, backend/app/utils/attack.py, calculate_scores): the best attack score."""
    delta, eps_clip, best = 1e-5, 1e-10, 0.0
    u, r = np.clip(np.round(u, 2), low, high), np.clip(np.round(r, 2), low, high)
    for thr in np.linspace(low, high, 51):
        for pos, neg in ((u, r), (r, u)):
            fpr, fnr = np.mean(neg >= thr), 1.0 - np.mean(pos >= thr)
            if fpr == 0 and fnr == 0:
                fq = 0.0
            elif fpr >= 1 - delta or fnr >= 1 - delta:
                fq = 1.0
            else:
                sfp, sfn = np.clip(fpr, eps_clip, 1 - delta - eps_clip), np.clip(fnr, eps_clip, 1 - delta - eps_clip)
                fq = 2 ** -max(0, min(np.log(1 - delta - sfp) - np.log(sfn), np.log(1 - delta - sfn) - np.log(sfp)))
            best = max(best, round(1 - fq, 3))
    return best


def test_comparator_thresholds_follow_its_published_arithmetic():
    """SSD's case (issue 24): θ_u's confidences at −10.1, below the Comparator's range [−2.5, 10]. Every observed
    value as a threshold tells the models apart perfectly; the Comparator clips −10.1 to −2.5 and its best
    threshold (−2.25) calls 3 of θ_r's 4 outputs right and none of θ_u's wrong: ε = log((1 − δ − 1e-10)/0.25)."""
    u = {"entropy": np.full(4, 0.5), "confidence": np.full(4, -10.1)}
    r = {"entropy": np.full(4, 0.5), "confidence": np.array([-3.0, 0.0, 1.0, 2.0])}
    assert worst_case_privacy(u, r).score == 0.0
    ps = comparator_privacy(u, r)
    eps = np.log((1 - 1e-5 - 1e-10) / 0.25)
    assert ps.score == round(1 - round(1 - 2 ** -eps, 3), 3) == 0.383
    assert ps.epsilon == pytest.approx(eps) and ps.signal == "confidence" and ps.direction == "unlearned_below"
    assert ps.threshold == pytest.approx(-2.25) and (ps.fpr, ps.fnr) == (0.25, 0.0) and ps.thresholds == "comparator"
    assert ps.per_signal == {"entropy": 1.0, "confidence": 0.383}
    rng = np.random.default_rng(3)
    for shift in (0.0, 0.3, 1.0, 4.0):  # fixed arrays from indistinguishable to far apart, with ties and clipping
        u = {"entropy": rng.gamma(2, 0.4, 60), "confidence": rng.normal(3 + shift, 4, 60)}
        r = {"entropy": rng.gamma(2, 0.4 + shift / 4, 60), "confidence": rng.normal(3, 4, 60)}
        ref = max(_comparator_reference(u["entropy"], r["entropy"], 0.0, 2.5),
                  _comparator_reference(u["confidence"], r["confidence"], -2.5, 10.0))
        assert comparator_privacy(u, r).score == round(1 - ref, 3)


def test_comparator_signals():
    """Entropy of softmax(z/2) in nats and the top class's log p − log(1 − p), as the Comparator computes them."""
    from scipy.stats import entropy

    z = torch.tensor([[2.0, 0.5, -1.0], [0.1, 3.0, 0.2], [0.0, 0.0, 0.0]])
    s = comparator_signals(torch.nn.Identity(), z)
    p2, p1 = torch.softmax(z / 2, -1).numpy(), torch.softmax(z, -1).numpy().max(1)
    assert np.allclose(s["entropy"], entropy(p2.T)) and np.allclose(s["confidence"], np.log(p1) - np.log(1 - p1))


def test_privacy_score_of_models(overfit_ctx):
    X, y = overfit_ctx.split.tensors("forget")
    m = overfit_ctx.models
    assert privacy_score(m["retrain"], m["retrain"], X, y).score == 1.0
    ps = privacy_score(m["original"], m["retrain"], X, y)
    assert 0.0 <= ps.score < 1.0 and set(ps.per_signal) == {"entropy", "confidence"}
    json.dumps(ps.to_dict())
    cmp = privacy_score(m["original"], m["retrain"], X, y, thresholds="comparator")
    assert cmp.thresholds == "comparator" and 0.0 <= cmp.score <= 1.0


# -- figures ----------------------------------------------------------------------------------------------

def test_attack_figures():
    from dashboard.figures.attacks import auc_bars, privacy_figure, roc_figure, score_histogram
    from dashboard.figures.palette import colour

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    roc = summarize(rng.normal(y, 1.0), y)
    fig = roc_figure([("lira_online on original", "original", roc), ("mia:loss on finetune", "finetune", roc)])
    names = [t.name for t in fig.data]
    assert "random guess" in names and any("AUC" in n and "TPR@1%FPR" in n for n in names)
    assert fig.data[0].line.color == colour("original") and fig.data[1].line.color == colour("finetune")
    log = roc_figure([("x", "retrain", roc.to_dict())], log_scale=True)
    assert log.layout.xaxis.type == "log" and log.layout.yaxis.type == "log"
    assert min(log.data[0].x) > 0 and min(log.data[0].y) > 0
    ps = worst_case_privacy({"entropy": rng.random(50)}, {"entropy": rng.random(50)})
    bar = privacy_figure({"finetune": ps, "retrain": 1.0})
    assert list(bar.data[0].y)[1] == 1.0
    score_histogram(rng.normal(size=300), y)
    auc_bars([("lira", "original", 0.7), ("lira", "retrain", 0.5)])
    import dashboard.figures.attacks as mod
    assert "streamlit" not in open(mod.__file__, encoding="utf-8").read()
