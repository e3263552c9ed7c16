"""Residual probes (science.md §3) on the classroom experiment; the verdict has its own file (test_verdict.py)."""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pytest
import torch

# numba's compiled umap code (not models) is kept between test runs: a cold compile costs ~30 s on 2 cores
os.environ.setdefault("NUMBA_CACHE_DIR", str(Path(__file__).resolve().parents[1] / ".pytest_cache" / "numba"))

from core import Experiment, ExperimentConfig, metrics  # noqa: E402
from core.cache import ModelStore  # noqa: E402
from core.probes import (ProbeContext, ProbeData, auc, class_accuracy, embed, infos,  # noqa: E402
                         layer_probes, linear_cka, model_plane, path_curve, prediction_matrices, random_plane)
from core.probes.common import layer_outputs  # noqa: E402
from core.probes.decodability import choose_c  # noqa: E402
from core.probes.embedding import project  # noqa: E402
from core.probes.measures import head_only, measure, scratch_models  # noqa: E402
from core.probes.patching import depth_score, patching  # noqa: E402
from core.probes.stability import bounce_back, bounced_many  # noqa: E402


@pytest.fixture(scope="module")
def exp(tmp_path_factory):
    e = Experiment(ExperimentConfig(), store=ModelStore(tmp_path_factory.mktemp("probes-store")), device="cpu")
    e.run()
    return e


@pytest.fixture(scope="module")
def data(exp):
    return ProbeData.from_experiment(exp, retain_sample=256)


@pytest.fixture(scope="module")
def ctx(exp, data):
    return ProbeContext(exp.models["original"], exp.models["retrain"], data, exp.config.seed, exp.prepare(),
                        exp.fresh_model)


# -- CKA -------------------------------------------------------------------------------------------
def test_cka_self_is_one_and_orthogonal_invariant(exp, data):
    acts = layer_outputs(exp.models["original"], data.forget[0])
    g = torch.Generator().manual_seed(0)
    for name, A in acts.items():
        A = A.flatten(1)
        assert linear_cka(A, A) == pytest.approx(1.0, abs=1e-9)
        Q, _ = torch.linalg.qr(torch.randn(A.shape[1], A.shape[1], generator=g, dtype=torch.float64))
        assert linear_cka(A, A.double() @ Q) == pytest.approx(1.0, abs=1e-6), name
        assert linear_cka(A, 3.0 * A) == pytest.approx(1.0, abs=1e-9)
    # more features than samples takes the Gram route: same answer
    X = torch.randn(20, 50, generator=g, dtype=torch.float64)
    Y = torch.randn(20, 5, generator=g, dtype=torch.float64)
    Xc, Yc = X - X.mean(0), Y - Y.mean(0)
    direct = float((Yc.T @ Xc).norm() ** 2 / ((Xc.T @ Xc).norm() * (Yc.T @ Yc).norm()))
    assert linear_cka(X, Y) == pytest.approx(direct, rel=1e-9)


# -- patching --------------------------------------------------------------------------------------
def test_patching_with_own_activations_changes_nothing(exp, data):
    o, r = exp.models["original"], exp.models["retrain"]
    res = patching(o, r, o, *data.forget)
    assert np.allclose(res.drop_model, 0.0, atol=1e-9)
    assert res.depth == pytest.approx(0.0, abs=1e-9)
    assert all(d > 0.05 for d in res.drop_retrain)  # θ_r's activations do hurt θ_o on the forgotten class


def test_depth_of_retrain_against_itself_is_one(exp, data):
    o, r = exp.models["original"], exp.models["retrain"]
    assert patching(o, r, r, *data.forget).depth == pytest.approx(1.0, abs=1e-12)


def test_depth_score_formula():
    # layers below the threshold are ignored; ratios are clipped at 0 only: destroying more than θ_r is above 1
    s, used = depth_score([1.0, 2.0, 0.01], [0.5, 4.0, 5.0], threshold=0.05)
    assert used == [True, True, False]
    assert s == pytest.approx((1.0 * 0.5 + 2.0 * 2.0) / 3.0)
    assert s > 1.0
    assert np.isnan(depth_score([0.0, 0.01], [1.0, 1.0])[0])
    assert depth_score([1.0], [-3.0])[0] == 0.0


# -- the probe registry ---------------------------------------------------------------------------
def test_every_probe_declares_its_metadata_and_measures_every_model(ctx, exp):
    models = {k: exp.models[k] for k in ("original", "retrain", "finetune")}
    for i in infos():
        assert i.family in ("output", "functional", "context") and i.direction in (-1, 1) and i.label and i.caption
        if not i.applies(ctx.class_wise):
            continue
        r = measure(ctx, i.name, models)
        assert set(r.values) == set(models), i.name
        n = len(r.layers) if r.layers else 1
        assert all(len(v) == n for v in r.values.values()), i.name
        for v in r.values.values():
            assert all(not np.isfinite(x) or i.lo - 1e-9 <= x <= i.hi + 1e-9 for x in v), (i.name, v)


def test_measure_reuses_a_models_value_within_a_context(ctx, exp):
    first = measure(ctx, "decodability", {"original": exp.models["original"]})
    both = measure(ctx, "decodability", {"retrain": exp.models["retrain"], "original": exp.models["original"]})
    assert both.values["original"] == first.values["original"]
    assert both.layers == exp.models["original"].hidden_layer_names


def test_readout_penalty_is_chosen_on_held_out_inputs_half_way():
    rng = np.random.default_rng(0)
    t = (rng.random(600) < 0.1).astype(int)
    X = rng.normal(size=(600, 20)) + 1.5 * t[:, None]
    c = choose_c(X, t)
    from sklearn.linear_model import LogisticRegression

    p = {C: LogisticRegression(C=C, max_iter=1000).fit(X, t).predict_proba(X)[t == 1, 1].mean() for C in (c,)}
    assert 0.2 < p[c] < 0.8  # neither blind nor saturated


def test_decodability_sees_the_class_in_theta_o_and_not_in_theta_r(ctx, exp):
    r = measure(ctx, "decodability", {"original": exp.models["original"], "retrain": exp.models["retrain"]})
    deep = r.layers[-1]
    assert r.value("original", deep) > r.value("retrain", deep) + 0.1
    assert r.baseline is not None and 0.2 < r.baseline[0] < 0.8  # the input read-out sits half-way by construction


def test_head_only_control_keeps_theta_o_hidden_layers_and_forgets_at_the_output(exp):
    h = head_only(exp)
    o = exp.models["original"]
    for name in o.hidden_layer_names:
        for a, b in zip(o.blocks[name].parameters(), h.blocks[name].parameters()):
            assert torch.equal(a, b)
    split = exp.prepare()
    assert metrics.accuracy(h, *split.tensors("forget")) < 0.05
    assert metrics.accuracy(h, *split.tensors("retain")) > 0.95
    assert head_only(exp).state_dict()["blocks.head.bias"].equal(h.state_dict()["blocks.head.bias"])  # cached


def test_batched_bounce_back_equals_the_loop(exp, data):
    ms = [exp.models[k] for k in ("original", "retrain", "finetune")]
    loop = [bounce_back(m, data, 12, record=(), seed=3)[1][-1] for m in ms]
    assert bounced_many(ms, data, 12, seed=3) == pytest.approx(loop, abs=1e-9)


def test_relearning_runs_are_shared_between_the_probe_and_the_attack(ctx, exp):
    from core.attacks import AttackContext, get_attack

    r = measure(ctx, "relearning", {"finetune": exp.models["finetune"], "retrain": exp.models["retrain"]})
    t = time.perf_counter()
    res = get_attack("rea_class").run(AttackContext.from_experiment(exp), "finetune")[0]
    assert time.perf_counter() - t < 2.0  # found the runs of the verdict's probe
    target = [run["area"] for run in res.extra["runs"] if run["role"] == "target"]
    assert np.mean(target) == pytest.approx(r.value("finetune"), abs=1e-12)
    assert r.value("finetune") > r.value("retrain")  # finetune still knows the class


# -- layer probes ----------------------------------------------------------------------------------
def test_layer_report_shapes_and_references(exp, data):
    rep = layer_probes(exp.models, data)
    assert rep.columns[:2] == ["original", "retrain"]
    v = rep.values
    assert v["weight_dist_o"]["original"] == [0.0] * len(rep.layers)
    assert v["weight_dist_r"]["retrain"] == [0.0] * len(rep.layers)
    assert all(x == pytest.approx(1.0) for x in v["cka_o"]["original"])
    assert rep.depth["retrain"] == pytest.approx(1.0) and rep.depth["original"] == pytest.approx(0.0)
    m = rep.matrix("decodability")
    assert len(m) == len(rep.layers) and len(m[0]) == len(rep.columns)
    assert all(0.0 <= x <= 1.0 for row in m[:-1] for x in row) and all(np.isnan(x) for x in m[-1])  # no head row
    assert "decodability" in rep.baselines and rep.measures["decodability"]["family"] == "functional"
    json.dumps(rep.to_dict())


# -- landscape -------------------------------------------------------------------------------------
def test_landscape_at_unlearned_coordinates_is_its_loss(exp, data):
    o, u, r = exp.models["original"], exp.models["finetune"], exp.models["retrain"]
    plane = model_plane(o, u, r, data, "finetune", n=5)
    exact = plane.model_losses["finetune"]
    assert exact["forget"] == pytest.approx(metrics.mean_loss(u, *data.forget), abs=1e-5)
    assert exact["retain"] == pytest.approx(metrics.mean_loss(u, *data.retain_sample), abs=1e-5)
    assert plane.model_losses["retrain"]["forget"] == pytest.approx(metrics.mean_loss(r, *data.forget), abs=1e-4)
    curve = path_curve(o, u, r, data, "finetune", n=6)
    s = np.asarray(curve.s)
    for name, pos, model in (("original", 0.0, o), ("finetune", 1.0, u), ("retrain", 2.0, r)):
        i = int(np.argmin(np.abs(s - pos)))
        assert curve.forget_loss[i] == pytest.approx(metrics.mean_loss(model, *data.forget), abs=1e-4), name
        assert curve.retain_loss[i] == pytest.approx(metrics.mean_loss(model, *data.retain), abs=1e-4), name
    assert min(s) < 0 and max(s) > 2
    assert all(v >= -1e-9 for b in curve.barriers.values() for v in b.values())


@pytest.mark.parametrize("batch_below", [0, 10**12])  # point by point, and stacked into batched matmuls
def test_batched_landscape_equals_per_point_loop(exp, data, monkeypatch, batch_below):
    import core.probes.landscape as L

    monkeypatch.setattr(L, "BATCH_BELOW", batch_below)
    o, u, r = exp.models["original"], exp.models["finetune"], exp.models["retrain"]
    assert L.Evaluator(o, {"forget": data.forget}).batches() == bool(batch_below)
    a = model_plane(o, u, r, data, "finetune", n=6, batched=True, chunk=7)
    b = model_plane(o, u, r, data, "finetune", n=6, batched=False)
    for k in ("forget_loss", "retain_loss", "forget_acc", "retain_acc"):
        assert np.abs(np.asarray(getattr(a, k)) - np.asarray(getattr(b, k))).max() < 1e-5, k
    ra = random_plane(u, data, "finetune", n=5, batched=True)
    rb = random_plane(u, data, "finetune", n=5, batched=False)
    assert np.abs(np.asarray(ra.forget_loss) - np.asarray(rb.forget_loss)).max() < 1e-5
    assert ra.model_losses["finetune"]["forget"] == pytest.approx(metrics.mean_loss(u, *data.forget), abs=1e-5)


@pytest.mark.parametrize("name", ["cnn", "mlp"])
def test_point_by_point_landscape_equals_the_reference_for_cnn_and_mlp(name, monkeypatch):
    """The per-point pass runs Linear and Conv2d layers itself: same numbers as functional_call on the model."""
    import core.probes.landscape as L
    from core.models import build_model

    monkeypatch.setattr(L, "BATCH_BELOW", 0)
    g = torch.Generator().manual_seed(0)
    model = build_model(name, (1, 8, 8), 4, seed=0, **({"channels": (3, 5), "hidden": 6} if name == "cnn" else {}))
    sets = {"a": (torch.randn(20, 1, 8, 8, generator=g), torch.randint(0, 4, (20,), generator=g)),
            "b": (torch.randn(9, 1, 8, 8, generator=g), torch.randint(0, 4, (9,), generator=g))}
    ev = L.Evaluator(model, sets)
    center = L.flat_params(model)
    dirs = torch.randn(2, center.numel(), generator=g) * 0.1
    coords = torch.rand(7, 2, generator=g)
    assert not ev.batches()
    fast, ref = ev.evaluate(center, dirs, coords), ev.evaluate_loop(center, dirs, coords)
    for k in ref:
        assert np.abs(fast[k] - ref[k]).max() < 1e-5, k


# -- yardstick models ------------------------------------------------------------------------------
def test_yardstick_models_share_the_experiment_cache(exp):
    s = exp.config.seed
    trained = scratch_models(exp, [("retain", s + 1, s + 1)])[0]
    again = exp.train_model("retain", s + 1, s + 1)  # the same model through the experiment's own path
    assert again.cached
    got = dict(again.model.named_parameters())
    for k, v in trained.named_parameters():
        assert torch.equal(v, got[k])
    assert exp.train_model("retain", s, s).cached  # θ_r itself
    assert scratch_models(exp, [("retain", s, s)])[0].state_dict()["blocks.head.bias"].equal(
        exp.models["retrain"].state_dict()["blocks.head.bias"])


def test_auc_of_random_numbers_is_near_half():
    rng = np.random.default_rng(0)
    assert abs(auc(rng.normal(size=2000), rng.normal(size=2000)) - 0.5) < 0.03
    assert auc([1.0, 2.0], [0.0]) == 1.0 and auc([0.0], [0.0]) == 0.5 and np.isnan(auc([], [1.0]))


# -- classes and embedding -------------------------------------------------------------------------
def test_class_views(exp):
    split = exp.prepare()
    ca = class_accuracy(exp.models, split)
    f = ca.forget_classes[0]
    assert ca.train["retrain"][f] == 0.0 and ca.train["original"][f] > 0.9
    pm = prediction_matrices(exp.models, split, ["retrain", "finetune"])
    share = np.asarray(pm["retrain"].share)
    assert np.allclose(share.sum(1), 1.0) and share[f, f] == 0.0
    json.dumps({k: v.to_dict() for k, v in pm.items()})


def test_umap_is_cached_and_deterministic(exp, data, tmp_path):
    models = {k: exp.models[k] for k in ("original", "finetune", "retrain")}
    kw = dict(n_retain=60, n_test=60, n_epochs=60, root=tmp_path)
    first = embed(models, data, **kw)
    t = time.perf_counter()
    second = embed(models, data, **kw)
    assert second.cached and not first.cached
    assert time.perf_counter() - t < 1.0
    assert second.coords == first.coords and second.key == first.key
    assert set(first.coords) == set(models) and sum(first.forget) == len(data.forget[1])
    feats = np.random.default_rng(1).normal(size=(80, 6)).astype(np.float32)
    a, _, _ = project(feats, seed=3, n_epochs=30, cache=False)
    b, _, _ = project(feats, seed=3, n_epochs=30, cache=False)
    assert np.array_equal(a, b)
    json.dumps(first.to_dict())
