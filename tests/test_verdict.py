"""The verdict (science.md §3.1): its rule on constructed evidence, and its controls on the default preset.

The controls are the point: a rule earns the right to decide only when models that hold the forget set by
construction are flagged and retrains it never saw are not. Over seeds 0-4 of the default preset (the classroom's
"Forget the digit 7"): θ_o with only its last layer retrained on D_r is called pseudo-converged in at least 4 of
5, the held-out retrains clean in at least 9 of 10, θ_o under-unlearned in 5 of 5.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from core import Experiment, load_config
from core.cache import ModelStore
from core.probes.base import Readings
from core.trust import trust
from core.verdict import (CLEAN, NO_VERDICT, OTHER_INIT, OVER, PSEUDO, RETRAIN, UNDER, Yardstick, verdicts)

PRESET = Path(__file__).resolve().parents[1] / "assets" / "presets" / "forget_digit_7.toml"
YARD = ["r1", "r2", "r3", "r4"]


def _yardstick(values: dict[str, dict[str, float]], class_wise: bool = True, resolution: float = 0.0) -> Yardstick:
    """A yardstick from hand-made readings: probe -> model -> value (r1, r2 share θ_o's init; r3, r4 do not)."""
    readings = {p: Readings(p, {n: [float(v)] for n, v in vals.items()}, None, resolution) for p, vals in values.items()}
    return Yardstick(SimpleNamespace(class_wise=class_wise), readings, YARD[:2], YARD[2:],
                     {"order": YARD[:2], "init": YARD[2:]})


def _values(**models: dict[str, float]) -> dict[str, dict[str, float]]:
    """probe -> model -> value, with a retrain-like yardstick and θ_o filled in for every probe used."""
    base = {"forget_acc": (0.0, 1.0), "retain_acc": (1.0, 1.0), "test_acc": (0.86, 0.96), "mia_efficacy": (1.0, 0.0),
            "relearning": (0.55, 1.0), "depth": (1.0, 0.0)}  # (retrains, θ_o)
    jitter = {"r1": -0.01, "r2": 0.01, "r3": 0.0, "r4": 0.005}
    out: dict[str, dict[str, float]] = {}
    for p, (ret, orig) in base.items():
        lo, hi = {"forget_acc": (0.0, 1.0), "retain_acc": (0.0, 1.0), "mia_efficacy": (0.0, 1.0)}.get(p, (-9, 9))
        out[p] = {n: float(np.clip(ret + j, lo, hi)) for n, j in jitter.items()}
        out[p]["original"] = orig
        for name, vals in models.items():
            out[p][name] = vals.get(p, ret)
    return out


def test_retrain_like_model_is_clean():
    y = _yardstick(_values(m={}))
    assert y.judge("m").label == CLEAN


def test_outputs_towards_theta_o_make_under_unlearned():
    y = _yardstick(_values(m={"forget_acc": 0.9}))
    v = y.judge("m")
    assert v.label == UNDER and v.decided_by == ["forget_acc"]


def test_forgetting_as_completely_as_theta_r_is_never_under_unlearned():
    # confident on the test set like θ_o, but every forget sample gone: not under-unlearned
    v = _yardstick(_values(m={"test_acc": 0.96})).judge("m")
    assert v.label != UNDER


def test_outputs_away_from_theta_o_make_over_unlearned_with_residuals_beside_it():
    v = _yardstick(_values(m={"retain_acc": 0.7, "relearning": 0.9})).judge("m")
    assert v.label == OVER and v.still_decodable and v.badge == "over-unlearned, still decodable"
    assert _yardstick(_values(m={"retain_acc": 0.7})).judge("m").badge == OVER


def test_better_utility_than_retrains_is_not_a_fault():
    v = _yardstick(_values(m={"test_acc": 0.99, "forget_acc": 0.0})).judge("m")  # θ_o's test acc is 0.96
    assert v.label == CLEAN  # above the band on θ_o's side, but it forgot the class: never under-unlearned
    ys = _values(m={"retain_acc": 1.0})
    for n in ys["retain_acc"]:
        ys["retain_acc"][n] = 0.9 if n != "m" else 0.99
    ys["retain_acc"]["original"] = 0.9
    assert _yardstick(ys).judge("m").label == CLEAN


def test_functional_residual_with_retrain_like_outputs_is_pseudo_converged():
    v = _yardstick(_values(m={"relearning": 0.85})).judge("m")
    assert v.label == PSEUDO and v.decided_by == ["relearning"]
    text = " ".join(v.reasons)
    assert "relearning" in text and "0.85" in text  # names the measure and its value


def test_theta_o_coordinate_measures_do_not_apply_to_another_initialisation():
    y = _yardstick(_values(m={"depth": 0.3}))
    assert y.judge("m").label == PSEUDO
    v = y.judge("m", lineage=OTHER_INIT)
    assert v.label == CLEAN
    ev = next(e for e in v.evidence if e.probe == "depth")
    assert not ev.decides and "another initialisation" in ev.status
    assert y.bands["depth"].init == [1.0, 1.005] and y.bands["depth"].lo == pytest.approx(0.99)  # same-init band


def test_theta_r_is_not_judged_on_the_measures_it_is_the_reference_of():
    """θ_r's depth is 1 by definition (patching with its own activations): read against retrains whose unclipped
    depth runs above 1, it would look 'below the band' — a definition, not a reading."""
    vals = _values(m={"depth": 1.0})
    for n, d in zip(YARD, (1.1, 1.2, 1.15, 1.3)):
        vals["depth"][n] = d
    y = _yardstick(vals)
    assert y.judge("m").label == PSEUDO  # a model from θ_o with that depth would count
    v = y.judge("m", lineage=RETRAIN)
    ev = next(e for e in v.evidence if e.probe == "depth")
    assert v.label == CLEAN and not ev.decides and "reference" in ev.status


def test_a_band_that_reaches_the_limit_cannot_decide():
    vals = _values(m={"relearning": 1.0})
    for n in YARD:
        vals["relearning"][n] = 0.995  # every retrain relearns at once: the band touches 1
    v = _yardstick(vals).judge("m")
    ev = next(e for e in v.evidence if e.probe == "relearning")
    assert not ev.decides and "limit" in ev.status and v.label == CLEAN


def test_a_measure_that_does_not_see_theta_o_cannot_decide():
    vals = _values(m={"relearning": 0.9})
    vals["relearning"]["original"] = 0.56
    ev = next(e for e in _yardstick(vals).judge("m").evidence if e.probe == "relearning")
    assert not ev.decides and "θ_o itself" in ev.status


def test_resolution_above_tolerance_cannot_decide():
    y = _yardstick(_values(m={"relearning": 0.9}), resolution=0.0)
    assert y.bands["relearning"].tol >= 0.02
    coarse = _yardstick(_values(m={"relearning": 0.9}), resolution=0.5)
    assert coarse.bands["relearning"].tol >= 1.0  # the tolerance grows to twice the resolution...
    assert coarse.bands["relearning"].high <= 1.0  # ...and the band stays clipped to the range


# -- on the real preset --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return ModelStore(tmp_path_factory.mktemp("verdict-store"))


@pytest.fixture(scope="module")
def controls(store):
    exp = Experiment(load_config(PRESET), store=store, device="cpu")
    return trust(exp, n_seeds=5)


def test_controls_over_five_seeds_of_the_default_preset(controls):
    rates = controls.verdict_rates()
    hit, n = rates["control: head-only"]
    assert n == 5 and hit >= 4, controls.verdicts["control: head-only"]
    clean = [rates["control: retrain, other order"], rates["control: retrain, other init"]]
    assert sum(h for h, _ in clean) >= 9 and sum(n for _, n in clean) == 10, controls.verdicts
    assert rates["control: θ_o"] == (5, 5), controls.verdicts["control: θ_o"]


def test_trust_figures_say_which_measures_earned_the_right_to_decide(controls):
    e = controls.entries
    assert e["relearning"].passed and sum(e["relearning"].pseudo) >= 4
    deep = [k for k in e if k.startswith("decodability@")]
    assert deep and all(e[k].rates["retrains_clean"] >= 0.9 for k in deep)
    assert not e["bounce"].pseudo or not any(e["bounce"].pseudo)  # benign fine-tuning brings nothing back here
    assert e["forget_acc"].rates["original"] == 1.0


def test_default_preset_story_models(store):
    exp = Experiment(load_config(PRESET), store=store, device="cpu")
    exp.run()
    rep = verdicts(exp)
    assert rep.controls_passed() == (len(rep.controls), len(rep.controls))
    assert rep.label("finetune") == UNDER  # it kept most of the 7s
    assert rep.label("ssd") == PSEUDO  # forget accuracy 0, θ_o inside
    assert rep.label("retrain") == CLEAN


def test_no_verdict_on_a_theta_o_that_learned_nothing(store):
    cfg = load_config(PRESET)
    cfg = replace(cfg, recipe=replace(cfg.recipe, lr=10.0, epochs=3))
    exp = Experiment(cfg, store=store, device="cpu")
    res = exp.run()
    assert res.warnings and "most frequent class" in res.warnings[0]
    assert res.model("original").status == "degenerate"
    rep = verdicts(exp, controls=False)
    assert rep.warning and all(v.label == NO_VERDICT for v in rep.verdicts.values())
