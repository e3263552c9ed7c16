"""Unlearning methods: properties that can fail (issue 11).

One shared experiment (digits, MLP, forget class 7). Tolerances, stated once:
- "forgets": accuracy on the forgotten class at most FORGET_MAX_SHARE of θ_o's;
- "keeps": retain accuracy at most RETAIN_TOL (absolute) below θ_o's.
"""
from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from core import metrics
from core.errors import Cancelled, ResidueError
from core.progress import Progress
from core.unlearn import get_method, methods

FORGET_MAX_SHARE = 0.5
RETAIN_TOL = 0.10

NEW = ["neggrad_plus", "random_label", "l1_sparse", "salun", "scrub", "ssd", "orthogonal_replay", "rurk"]
ACTS_ON_FORGET = ["neggrad_plus", "random_label", "salun", "scrub", "ssd", "orthogonal_replay", "rurk"]


@pytest.fixture(scope="module")
def exp(tmp_path_factory):
    from core import Experiment, ExperimentConfig
    from core.cache import ModelStore
    from core.config import MethodConfig

    e = Experiment(ExperimentConfig(methods=[MethodConfig("finetune")]),
                   store=ModelStore(tmp_path_factory.mktemp("methods-store")), device="cpu")
    e.run()
    return e


@pytest.fixture(scope="module")
def task(exp):
    return exp.task()


@pytest.fixture(scope="module")
def original(exp):
    return exp.models["original"]


@pytest.fixture(scope="module")
def runs(original, task):
    """Each method at its defaults, run once and shared by the tests below."""
    cache: dict = {}

    def get(name, **hp):
        key = (name, tuple(sorted(hp.items())))
        if key not in cache:
            cache[key] = get_method(name, **hp).unlearn(original, task)
        return cache[key]

    return get


def forgotten_class_acc(model, task):
    return metrics.accuracy(model, task.forget_X, task.forget_y)


def retain_acc(model, task):
    return metrics.accuracy(model, task.retain_X, task.retain_y)


# -- declarations -------------------------------------------------------------------------------

@pytest.mark.parametrize("name", NEW)
def test_declared(name):
    cls = methods.get(name)
    assert cls.summary and "\n" not in cls.summary
    assert cls.reference and cls.__doc__ and len(cls.__doc__) > 200
    for p in cls.params:
        assert p.help, f"{name}.{p.name} has no help"
        assert p.check(p.default) == p.default
    assert cls.uses_forget == (name != "l1_sparse")


@pytest.mark.parametrize("name", NEW)
def test_out_of_range_refused_with_name_and_range(name):
    p = next(p for p in methods.get(name).params if p.high is not None)
    with pytest.raises(ResidueError) as e:
        get_method(name, **{p.name: p.high * 10 + 1})
    msg = str(e.value)
    assert p.name in msg and f"[{p.low}, {p.high}]" in msg


def test_unknown_hyperparameter_and_bad_choice_refused():
    with pytest.raises(ResidueError, match="unknown hyperparameter"):
        get_method("salun", lr_typo=1e-3)
    with pytest.raises(ResidueError, match="mode"):
        get_method("orthogonal_replay", mode="both")


# -- forgetting and keeping ---------------------------------------------------------------------

# Measured on the four-layer default classroom model (reported, not tuned): SCRUB's defaults forget the 7s but
# take the retain accuracy down to 0.66, and orthogonal_replay's class-wise defaults keep 0.89 of the 7s; on the
# earlier two-layer MLP both passed.
DEEP_MODEL_FINDINGS = {
    "scrub": "SCRUB's defaults drop retain accuracy to 0.66 on the four-layer default model: reported, not tuned",
    "orthogonal_replay": "orthogonal_replay's class-wise defaults keep 0.89 of the forgotten class on the four-layer "
                         "default model: reported, not tuned",
}


@pytest.mark.parametrize("name,hp", [
    pytest.param(n, {}, marks=pytest.mark.xfail(strict=True, reason=DEEP_MODEL_FINDINGS[n]))
    if n in DEEP_MODEL_FINDINGS else (n, {}) for n in ACTS_ON_FORGET] + [
    ("orthogonal_replay", {"mode": "sample"}),
    pytest.param("gradient_ascent", {}, marks=pytest.mark.xfail(
        strict=True, reason="GA's defaults (SGD lr 1e-4, 5 epochs) barely move θ_o on digits: reported, not tuned")),
])
def test_forgets_the_class_and_keeps_the_rest(name, hp, runs, original, task):
    r = runs(name, **hp)
    assert r.status == "ok", r.message
    f0, r0 = forgotten_class_acc(original, task), retain_acc(original, task)
    f, rr = forgotten_class_acc(r.model, task), retain_acc(r.model, task)
    assert f <= FORGET_MAX_SHARE * f0, f"{name}: forget accuracy {f:.3f} vs θ_o {f0:.3f}"
    assert rr >= r0 - RETAIN_TOL, f"{name}: retain accuracy {rr:.3f} vs θ_o {r0:.3f}"


@pytest.mark.parametrize("name", NEW)
def test_deterministic_and_original_untouched(name, runs, original, task):
    before = {k: v.clone() for k, v in original.state_dict().items()}
    a = runs(name).model.state_dict()
    b = get_method(name).unlearn(original, task).model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert all(torch.equal(before[k], v) for k, v in original.state_dict().items())
    assert any(not torch.equal(before[k], a[k]) for k in a), f"{name} changed nothing"


# -- method-specific properties -----------------------------------------------------------------

def test_salun_leaves_unmasked_weights_bit_identical(runs, original, task):
    from core.unlearn.salun import saliency_mask

    hp = get_method("salun").hp
    masks = saliency_mask(copy.deepcopy(original), task.forget_X, task.forget_y, hp["threshold"])
    total = sum(m.numel() for m in masks.values())
    assert abs(sum(int(m.sum()) for m in masks.values()) - hp["threshold"] * total) <= 1
    new = dict(runs("salun").model.named_parameters())
    moved = 0
    for n, p in original.named_parameters():
        keep = ~masks[n]
        assert torch.equal(new[n].detach()[keep], p.detach()[keep]), f"unmasked weights of {n} changed"
        moved += int((new[n].detach()[masks[n]] != p.detach()[masks[n]]).sum())
    assert moved > 0


def test_ssd_dampens_only_selected_weights_without_an_optimizer(original, task, monkeypatch):
    def no_step(*a, **k):
        raise AssertionError("SSD must not run an optimizer step")

    monkeypatch.setattr(torch.optim.Optimizer, "step", no_step)
    m = get_method("ssd")
    r = m.unlearn(original, task)
    assert r.status == "ok"
    imp_f, imp_d = m.importances(copy.deepcopy(original), task)
    new = dict(r.model.named_parameters())
    selected = 0
    for n, p in original.named_parameters():
        sel = imp_f[n] > m.hp["alpha"] * imp_d[n]
        selected += int(sel.sum())
        assert torch.equal(new[n].detach()[~sel], p.detach()[~sel]), f"unselected weights of {n} changed"
        assert (new[n].detach()[sel].abs() <= p.detach()[sel].abs()).all()  # dampened, never grown
    assert selected > 0
    assert r.history and r.history[-1]["dampened"] == selected


def test_scrub_max_steps_raise_forget_kl_to_teacher(original, task):
    from core.unlearn.scrub import distill_kl

    def forget_kl(model):
        with torch.no_grad():
            return float(distill_kl(model(task.forget_X), original(task.forget_X), 1.0))

    # the same min pass in both runs; only the second is followed by a max pass over D_f
    without = get_method("scrub", epochs=1, max_epochs=0).unlearn(original, task)
    with_max = get_method("scrub", epochs=1, max_epochs=1).unlearn(original, task)
    assert forget_kl(with_max.model) > 2 * forget_kl(without.model)
    kls = [row["forget_kl"] for row in with_max.history if "forget_kl" in row]
    assert len(kls) >= 2 and kls[-1] > kls[0]


def test_l1_sparse_ends_sparser_than_finetune(runs, task):
    from core.unlearn.l1_sparse import l1_norm

    assert get_method("l1_sparse").hp["epochs"] == get_method("finetune").hp["epochs"]
    sparse, ft = runs("l1_sparse").model, runs("finetune").model
    with torch.no_grad():
        assert float(l1_norm(sparse)) < float(l1_norm(ft))


def _offdiag_cos2(H):
    H = F.normalize(H.flatten(1), dim=1)
    g = H @ H.T
    off = ~torch.eye(len(H), dtype=torch.bool)
    return float((g[off] ** 2).mean())


def test_orthogonal_phase_decorrelates_forget_features_and_reports_both_phases(original, task, runs):
    from core.unlearn.orthogonal_replay import capture, resolve_layers

    layers = resolve_layers(original, "")
    assert layers == original.hidden_layer_names[-2:]

    def mean_cos2(model):
        with torch.no_grad(), capture(model, layers) as feats:
            model(task.forget_X)
            return sum(_offdiag_cos2(feats[n]) for n in layers) / len(layers)

    phase1 = get_method("orthogonal_replay", replay=False).unlearn(original, task).model
    assert mean_cos2(phase1) < mean_cos2(original)

    events = []
    r = get_method("orthogonal_replay").unlearn(original, task, Progress(events.append))
    stages = [e.stage for e in events]
    assert "orthogonal" in stages and "replay" in stages
    assert stages.index("orthogonal") < stages.index("replay")
    assert {"orth_loss", "ce_loss"} <= set(next(e for e in events if e.stage == "orthogonal").metrics)
    assert "retain_loss" in next(e for e in events if e.stage == "replay").metrics
    last = [e for e in events if e.stage == "replay"][-1]
    assert last.step == last.total
    assert retain_acc(r.model, task) >= retain_acc(original, task) - RETAIN_TOL


def test_orthogonal_mode_auto_and_layer_check(task, original):
    m = get_method("orthogonal_replay")
    assert m.mode_for(task) == "class"
    mixed = copy.copy(task)
    mixed.retain_y = torch.cat([task.retain_y, task.forget_y[:1]])
    assert m.mode_for(mixed) == "sample"
    with pytest.raises(ResidueError, match="layers"):
        get_method("orthogonal_replay", layers="nope").unlearn(original, task)


def test_rurk_suppresses_recognition_of_perturbed_forget_samples(runs, task):
    from core.unlearn.rurk import random_in_ball

    rk, ft = get_method("rurk").hp, get_method("finetune").hp
    assert (rk["epochs"], rk["lr"], rk["batch_size"]) == (ft["epochs"], ft["lr"], ft["batch_size"])
    n = 8
    X = task.forget_X.repeat(n, 1, 1, 1)
    X = X + random_in_ball(len(X), tuple(task.forget_X.shape[1:]), rk["tau"], torch.Generator().manual_seed(123))
    y = task.forget_y.repeat(n)
    rate_rurk = metrics.accuracy(runs("rurk").model, X, y)
    rate_ft = metrics.accuracy(runs("finetune").model, X, y)
    assert rate_rurk < rate_ft - 0.3, (rate_rurk, rate_ft)


def test_random_in_ball_stays_in_ball():
    from core.unlearn.rurk import random_in_ball

    d = random_in_ball(500, (1, 8, 8), 0.7, torch.Generator().manual_seed(0))
    norms = d.flatten(1).norm(dim=1)
    assert float(norms.max()) <= 0.7 + 1e-5 and float(norms.min()) >= 0


# -- the shared loop: cancellation and divergence -----------------------------------------------

@pytest.mark.parametrize("name", NEW)
def test_cancel_between_steps(name, original, task):
    progress = Progress()
    seen = []

    def cb(e):
        seen.append(e)
        if len(seen) == 2:
            progress.cancel()

    progress.callback = cb
    with pytest.raises(Cancelled):
        get_method(name).unlearn(original, task, progress)
    assert len(seen) == 2


def test_divergence_is_stopped_and_reported(original, task):
    r = get_method("gradient_ascent", lr=1.0, epochs=50).unlearn(original, task)
    assert r.status == "diverged" and r.message
    assert all(torch.isfinite(p).all() for p in r.model.parameters())
    r2 = get_method("neggrad_plus", alpha=0.0, lr=0.1, epochs=20).unlearn(original, task)
    assert all(torch.isfinite(p).all() for p in r2.model.parameters())


def test_rurk_with_adversarial_perturbations_runs(original, task):
    """pgd_steps > 0 adds one PGD-found perturbation per forget sample (it used to crash with a NameError)."""
    r = get_method("rurk", epochs=1, pgd_steps=2).unlearn(original, task)
    assert r.status == "ok", r.message
    assert forgotten_class_acc(r.model, task) <= forgotten_class_acc(original, task)
