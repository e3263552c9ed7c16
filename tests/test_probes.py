"""Residual probes, trust AUCs and the verdict (science.md §3) on the classroom experiment."""
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
from core.probes import (ProbeData, class_accuracy, embed, layer_probes, linear_cka, linear_probe_accuracy,  # noqa: E402
                         model_plane, path_curve, prediction_matrices, random_plane, residuals)
from core.probes.patching import patching  # noqa: E402
from core.probes.common import layer_outputs  # noqa: E402
from core.probes.embedding import project  # noqa: E402
from core.probes.measures import finetuned, scratch_models  # noqa: E402
from core.probes.patching import depth_score  # noqa: E402
from core.probes.trust import auc, oriented_auc, strength, trust_from_values  # noqa: E402
from core.verdict import CLEAN, Yardstick  # noqa: E402


@pytest.fixture(scope="module")
def exp(tmp_path_factory):
    e = Experiment(ExperimentConfig(), store=ModelStore(tmp_path_factory.mktemp("probes-store")), device="cpu")
    e.run()
    return e


@pytest.fixture(scope="module")
def data(exp):
    return ProbeData.from_experiment(exp, retain_sample=256)


@pytest.fixture(scope="module")
def yardstick(exp, data):
    return Yardstick.build(exp, n_order=2, n_init=2, data=data)


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
    # layers below the threshold are ignored; ratios clip to [0, 1]
    s, used = depth_score([1.0, 2.0, 0.01], [0.5, 4.0, 5.0], threshold=0.05)
    assert used == [True, True, False]
    assert s == pytest.approx((1.0 * 0.5 + 2.0 * 1.0) / 3.0)
    assert np.isnan(depth_score([0.0, 0.01], [1.0, 1.0])[0])
    assert depth_score([1.0], [-3.0])[0] == 0.0


# -- layer probes ----------------------------------------------------------------------------------
def test_layer_report_shapes_and_references(exp, data):
    rep = layer_probes(exp.models, data)
    assert rep.columns[:2] == ["original", "retrain"]
    o, r = rep.models["original"], rep.models["retrain"]
    assert o.weight_dist_o == [0.0] * len(rep.layers) and r.weight_dist_r == [0.0] * len(rep.layers)
    assert all(v == pytest.approx(1.0) for v in o.cka_o)
    assert r.depth == pytest.approx(1.0) and o.depth == pytest.approx(0.0)
    m = rep.matrix("probe_acc")
    assert len(m) == len(rep.layers) and len(m[0]) == len(rep.columns)
    assert all(0.0 <= v <= 1.0 for row in m for v in row)
    json.dumps(rep.to_dict())


def test_linear_probe_reads_separable_labels():
    g = torch.Generator().manual_seed(0)
    centres = torch.randn(3, 10, generator=g) * 5
    y = torch.arange(300) % 3
    X = centres[y] + torch.randn(300, 10, generator=g)
    assert linear_probe_accuracy(X[:200], y[:200], X[200:], y[200:], 3) > 0.95
    assert linear_probe_accuracy(X[:200], y[:200], X[200:], y[200:], 3, kind="logistic") > 0.95


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


# -- verdict ---------------------------------------------------------------------------------------
def test_yardstick_models_share_the_experiment_cache(exp, yardstick):
    s = exp.config.seed
    again = exp.train_model("retain", s + 1, s + 1)  # an init-variant yardstick retrain
    assert again.cached
    got = dict(again.model.named_parameters())
    for k, v in yardstick.models[2].named_parameters():
        assert torch.equal(v, got[k])
    assert exp.train_model("retain", s, s).cached  # θ_r itself
    assert scratch_models(exp, [("retain", s, s)])[0].state_dict()["blocks.head.bias"].equal(
        exp.models["retrain"].state_dict()["blocks.head.bias"])


def test_retrain_of_another_seed_is_clean(exp, yardstick):
    s = exp.config.seed
    other = scratch_models(exp, [("retain", s + 11, s + 11)])[0]
    verdict, values = yardstick.judge("retrain seed +11", other)
    assert verdict.label == CLEAN, verdict.reasons
    v_r, _ = yardstick.judge("retrain", exp.models["retrain"])
    assert v_r.label == CLEAN, v_r.reasons
    spreads = yardstick.spreads["js_to_retrain"]
    assert spreads.order and spreads.init  # both spreads reported


def test_original_finetuned_one_epoch_is_not_clean(exp, yardstick):
    ft = finetuned(exp, exp.models["original"], epochs=1)
    assert metrics.accuracy(ft, *exp.prepare().tensors("forget")) > 0.5  # still recognises the class
    verdict, _ = yardstick.judge("θ_o + 1 epoch FT", ft)
    assert verdict.label != CLEAN
    assert verdict.decided_by
    context = {e.measure for e in verdict.evidence if e.family == "context"}
    assert {"weight_dist_o", "cka_o"} <= context and not context & set(verdict.decided_by)


def test_extra_evidence_can_make_pseudo_converged(exp, yardstick):
    other = scratch_models(exp, [("retain", exp.config.seed + 11, exp.config.seed + 11)])[0]
    extra = [{"measure": "rea_steps", "label": "ReA steps to 90%", "value": 3.0, "retrain_values": [30.0, 40.0],
              "direction": -1, "source": "reminiscence"}]
    verdict, _ = yardstick.judge("retrain +11 with a relearning attack result", other, extra=extra)
    assert verdict.label == "pseudo-converged" and verdict.decided_by == ["rea_steps"]


# -- trust -----------------------------------------------------------------------------------------
def test_trust_auc_of_random_numbers_is_near_half():
    rng = np.random.default_rng(0)
    a = auc(rng.normal(size=2000), rng.normal(size=2000))
    assert abs(a - 0.5) < 0.03 and strength(a) == "weak"
    entries = trust_from_values({"noise": rng.normal(size=1000).tolist(), "probe_acc": [1.0, 0.9, 0.95]},
                                {"noise": rng.normal(size=1000).tolist(), "probe_acc": [0.5, 0.6, 0.4]},
                                {"noise": +1})
    assert abs(entries["noise"].auc - 0.5) < 0.05 and entries["noise"].strength == "weak"
    assert entries["probe_acc"].auc == 1.0 and entries["probe_acc"].strength == "strong"
    assert oriented_auc([0.0], [1.0], -1) == 1.0 and oriented_auc([0.0, 0.0], [1.0, 1.0], 0) == 1.0


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


# -- everything together ---------------------------------------------------------------------------
def test_residual_report_is_json(exp):
    rep = residuals(exp, n_grid=5, verdict=False)
    assert set(rep.landscapes) == {"finetune", "gradient_ascent"}
    text = json.dumps(rep.sections())
    assert "NaN" not in text
