"""Unlearning leak (Chen et al.), class-wise reminiscence attack, residual knowledge (RURK), their figures.

Uses the session's default digits experiment (forget class 7; temporary model store, see conftest)."""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import pytest
import torch

from core import ResidueError
from core.attacks import AttackContext, get_attack
from core.attacks import leak as leak_mod
from core.attacks.roc import auc_standard_error
from core.attacks.leak import FEATURES, features, publish
from core.attacks.residual import (decision_regions, perturbed_examples, residual_knowledge, sample_neighbourhood,
                                   sweep, torch_threads)
from core.models import build_model


@pytest.fixture(scope="module")
def exp(digits_experiment):
    return digits_experiment


@pytest.fixture(scope="module")
def ctx(exp):
    return AttackContext.from_experiment(exp)


# -- unlearning leak ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def leak_retrain(ctx):
    return get_attack("leak", n_shadow=8, n_deletions=4).run(ctx, "retrain")


def test_leak_scores_deleted_samples_against_held_out_samples_of_their_class(leak_retrain, ctx):
    """Class-wise deletion: the negatives are held-out images of the forgotten class, never the mixed test set.

    Against the mixed test set this attack scored AUC 0.83-0.93 on θ_r, but that measured the class (θ_r never
    learned 7s), not the deletion: with matched negatives only θ_o's own membership signal is left, and on
    digits, where θ_o generalises to unseen 7s, it is weak. Single deletions in the shadows, as in Chen et al."""
    from core.attacks.mia import matched_nonmembers

    split = ctx.split
    non = matched_nonmembers(split)
    assert len(non) and set(split.dataset.y[non]) == set(split.forget_classes)
    assert not set(non) & set(split.train)
    by = {r.attack: r for r in leak_retrain}
    assert set(by) == {f"leak:{f}" for f in FEATURES}
    for r in leak_retrain:
        assert r.labels.sum() == len(split.forget) and (1 - r.labels).sum() == len(non)
        assert set(r.sample_ids[r.labels == 0]) == set(non)
        assert r.extra["n_shadow_models"] == 8 + 8 * 4 and r.extra["exact_shadows"]
        assert 0.0 <= r.scores.min() and r.scores.max() <= 1.0
        assert 0.25 < r.roc().auc < 0.85  # no class confound left to exploit
        if r.attack != "leak:basic_mia":
            assert 0.0 <= r.extra["deg_count"] <= 1.0 and -1.0 <= r.extra["deg_rate"] <= 1.0
        r.to_dict()  # JSON-able


def test_mitigations_change_the_published_posteriors():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(50, 10)) * 3
    p = publish(z)
    assert np.allclose(p.sum(1), 1.0)
    lab = publish(z, label_only=True)
    assert set(np.unique(lab)) == {0.0, 1.0} and (lab.sum(1) == 1).all() and (lab.argmax(1) == z.argmax(1)).all()
    top = publish(z, top_k=3)
    assert np.allclose(top.sum(1), 1.0)
    assert all(len(np.unique(np.round(row, 12))) <= 4 for row in top)  # 3 kept values + one shared rest value
    assert np.allclose(np.sort(top, 1)[:, -3:], np.sort(p, 1)[:, -3:])
    hot = publish(z, temperature=1000.0)
    assert np.abs(hot - 0.1).max() < 0.01
    # label only: the difference features can only say "prediction changed or not"
    lab_u = publish(z + rng.normal(size=z.shape) * 3, label_only=True)
    d = features(lab, lab_u, "direct_diff")
    assert set(np.unique(d)) <= {-1.0, 0.0, 1.0}
    l2 = features(lab, lab_u, "l2_distance")[:, 0]
    assert set(np.round(np.unique(l2), 6)) <= {0.0, round(np.sqrt(2), 6)}
    assert np.array_equal(l2 > 0, lab.argmax(1) != lab_u.argmax(1))
    s = features(p, publish(z * 0.5), "sorted_concat")
    assert s.shape == (50, 20) and (np.diff(s[:, :10], axis=1) >= 0).all()  # p_o half sorted (ascending)


def test_leak_label_only_run_and_determinism(ctx):
    from core.attacks import shadow

    bare = AttackContext(**{**ctx.__dict__, "store": None})  # no disk cache: the shadows are really retrained
    leak_mod._CACHE.clear()
    shadow.clear_memo()
    a = get_attack("leak", n_shadow=2, n_deletions=2, label_only=True).run(bare, "retrain")
    leak_mod._CACHE.clear()
    shadow.clear_memo()
    b = get_attack("leak", n_shadow=2, n_deletions=2, label_only=True).run(bare, "retrain")
    for ra, rb in zip(a, b):
        assert np.array_equal(ra.scores, rb.scores)
        assert ra.extra["mitigation"] == {"temperature": 1.0, "top_k": 0, "label_only": True}
    # from the cache: same scores, no retraining
    c = get_attack("leak", n_shadow=2, n_deletions=2, label_only=True).run(bare, "retrain")
    assert c[0].extra["seconds"].get("cached") is True and np.array_equal(c[0].scores, a[0].scores)


def test_leak_needs_a_shadow_pool(ctx):
    from core.attacks import attacks
    from core.data import ForgetSpec, make_split

    split = make_split(ctx.split.dataset, ForgetSpec(kind="class", classes=[7]), 0.2, 0.005, seed=0)
    assert 0 < len(split.shadow) < 20 and attacks.get("leak").not_applicable(ctx.split) is None
    assert "shadow pool of at least 20" in attacks.get("leak").not_applicable(split)
    with pytest.raises(ResidueError, match="shadow pool of at least 20"):
        get_attack("leak").run(AttackContext(**{**ctx.__dict__, "split": split}), "retrain")


def test_leak_refuses_the_original(ctx):
    with pytest.raises(ResidueError, match="not 'original'"):
        get_attack("leak").run(ctx, "original")
    with pytest.raises(ResidueError, match="No model named"):
        get_attack("leak").run(ctx, "nope")


# -- class-wise reminiscence attack ---------------------------------------------------------------------------
def test_rea_tells_a_model_that_knows_the_class_from_one_that_never_saw_it(ctx):
    r, = get_attack("rea_class").run(ctx, "original")
    assert r.reading and r.roc().auc >= 0.95, r.roc().auc
    e = r.extra
    assert len(e["runs"]) == 2 * 5 * 3 == len(r.scores)
    assert all(len(run["curve"]) == e["max_steps"] + 1 for run in e["runs"])
    assert e["mean_steps"]["target"][f"{e['lrs'][0]:g}"] < e["mean_steps"]["reference"][f"{e['lrs'][0]:g}"]
    assert [run["role"] for run in e["runs"]] == ["target" if lab else "reference" for lab in r.labels]
    r.to_dict()


def test_rea_does_not_tell_two_retrains_apart(exp, ctx):
    """An instrument check: two retrained models (different init and data order) are both 'never saw the
    class'; over 5 draws x 3 learning rates the AUC stays within three standard errors of 0.5. (On the
    two-layer MLP it stayed within 0.48-0.55; on the four-layer default, initialisations relearn at visibly
    different speeds — 0.70 for seed 0 — which is why the verdict reads relearning against a band of retrains
    with other initialisations rather than against θ_r alone.)"""
    seed = exp.config.seed
    with torch_threads(1):  # a small model: one thread is faster on a busy 2-core machine
        other = exp.train_model("retain", init_seed=seed + 1, order_seed=seed + 1).model
    c2 = AttackContext(**{**ctx.__dict__, "models": {**ctx.models, "retrain_b": other}})
    r, = get_attack("rea_class").run(c2, "retrain_b")
    roc = r.roc()
    assert abs(roc.auc - 0.5) <= 3 * auc_standard_error(roc.auc, roc.n_pos, roc.n_neg), roc.auc


def test_rea_is_deterministic(ctx):
    a, = get_attack("rea_class", draws=2, n_lrs=2, max_steps=20).run(ctx, "finetune")
    b, = get_attack("rea_class", draws=2, n_lrs=2, max_steps=20).run(ctx, "finetune")
    assert np.array_equal(a.scores, b.scores) and a.extra["runs"] == b.extra["runs"]
    c, = get_attack("rea_class", draws=2, n_lrs=2, max_steps=20, seed=1).run(ctx, "finetune")
    assert a.extra["runs"] != c.extra["runs"]  # another probe draw


def test_rea_needs_class_wise_forgetting(ctx):
    from core.attacks import attacks
    from core.data import ForgetSpec, make_split

    split = make_split(ctx.split.dataset, ForgetSpec(kind="random", count=20), seed=0)
    c2 = AttackContext(**{**ctx.__dict__, "split": split})
    # said before running (pages list it as not applicable), and by `run` all the same
    assert "class-wise forgetting" in attacks.get("rea_class").not_applicable(split)
    assert attacks.get("rea_class").not_applicable(ctx.split) is None
    assert [n for n in attacks.names() if attacks.get(n).not_applicable(split)] == ["rea_class"]
    with pytest.raises(ResidueError, match="class-wise forgetting"):
        get_attack("rea_class").run(c2, "finetune")
    with pytest.raises(ResidueError, match="both are 'retrain'"):
        get_attack("rea_class").run(ctx, "retrain")


# -- residual knowledge ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def residual(ctx):
    return residual_knowledge(ctx, "finetune")


def test_radius_zero_is_the_clean_accuracy(residual):
    for s in residual.sweeps:
        assert s.radii[0] == 0.0 and len(s.radii) == 8
        for n in s.models:
            assert s.random_rate[n][0] == s.clean[n]
            assert s.pgd_rate[n][0] == s.clean[n]


def test_pgd_finds_at_least_as_much_as_random_noise(residual):
    for s in residual.sweeps:
        for n in s.models:
            assert all(p >= r for p, r in zip(s.pgd_rate[n], s.random_rate[n])), (s.norm, n)
        assert len(s.r_random) == len(s.r_pgd) == len(s.u_not_r_random) == 8
    residual.to_dict()


def test_residual_sweep_is_deterministic_and_measures_residuals():
    torch.manual_seed(0)
    X = torch.rand(30, 1, 4, 4)
    y = torch.randint(0, 3, (30,))
    ms = {n: build_model("mlp", (1, 4, 4), 3, seed=s, hidden=[16]) for n, s in (("original", 0), ("u", 1),
                                                                                    ("retrain", 2))}
    a = sweep(ms, X, y, [0.0, 0.5, 1.0], "linf", target="u", n_random=4, bounds=(0.0, 1.0), seed=3)
    b = sweep(ms, X, y, [0.0, 0.5, 1.0], "linf", target="u", n_random=4, bounds=(0.0, 1.0), seed=3)
    assert a.random_rate == b.random_rate and a.pgd_rate == b.pgd_rate and a.r_random == b.r_random
    # the same model as target and reference: r_τ = 1 wherever it recognises anything, and no residual share
    c = sweep({"original": ms["original"], "retrain": ms["retrain"]}, X, y, [0.0, 0.5], "l2", target="retrain")
    assert all(v == 1.0 for v, f in zip(c.r_random, c.r_random_floored) if not f)
    assert c.u_not_r_random == [0.0, 0.0] and c.u_not_r_pgd == [0.0, 0.0]


def test_neighbourhood_views():
    ms = {n: build_model("mlp", (2,), 2, seed=s, hidden=[8]) for n, s in (("original", 0), ("u", 1), ("retrain", 2))}
    reg = decision_regions(ms, torch.tensor([0.5, -0.2]), 1, radius=0.3, resolution=21)
    assert len(reg.xs) == len(reg.ys) == 21 and set(reg.predictions) == set(ms)
    assert np.asarray(reg.predictions["u"]).shape == (21, 21)
    with pytest.raises(ResidueError, match="2-D"):
        decision_regions(ms, torch.zeros(3), 0, radius=0.1)
    img = {n: build_model("mlp", (1, 4, 4), 3, seed=s, hidden=[8]) for n, s in (("original", 0), ("retrain", 2))}
    ex = perturbed_examples(img, torch.rand(1, 4, 4), 2, radius=0.5, n_random=3, pgd_for=["retrain"],
                            bounds=(0.0, 1.0))
    assert ex.kinds == ["clean", "random", "random", "random", "pgd:retrain"]
    assert len(ex.predictions["original"]) == 5 and np.asarray(ex.images).shape == (5, 1, 4, 4)
    assert np.asarray(ex.images).min() >= 0.0 and np.asarray(ex.images).max() <= 1.0


# -- figures ------------------------------------------------------------------------------------------------
def test_figures_build(residual, ctx):
    from dashboard.figures import neighbourhood as nb
    from dashboard.figures import relearning as rl

    s = residual.sweeps[0]
    for fig in (nb.recognition_figure(s), nb.recognition_figure(s.to_dict(), big=True), nb.ratio_figure(s)):
        assert isinstance(fig, go.Figure) and len(fig.data) >= 2
    ms = {n: build_model("mlp", (2,), 2, seed=i, hidden=[8]) for i, n in enumerate(("original", "u", "retrain"))}
    fig = nb.decision_regions_figure(decision_regions(ms, torch.zeros(2), 0, radius=0.2, resolution=11))
    assert sum(isinstance(t, go.Heatmap) for t in fig.data) == 3
    ex = sample_neighbourhood(ctx, "finetune", int(ctx.split.forget[0]), n_random=2)
    assert ex.kinds == ["clean", "random", "random", "pgd:finetune", "pgd:retrain"] and ex.label == 7
    assert sum(isinstance(t, go.Heatmap) for t in nb.perturbed_strip_figure(ex).data) == 5
    r, = get_attack("rea_class", draws=2, n_lrs=2, max_steps=15).run(ctx, "finetune")
    for fig in (rl.relearning_figure(r), rl.relearning_figure(r.extra, big=True), rl.steps_figure(r.extra)):
        assert isinstance(fig, go.Figure) and len(fig.data) >= 2
        fig.to_json()
