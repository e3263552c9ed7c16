"""airbench (Jordan 2024) as a registered model and recipe: the network, its whitening layer fitted from each model's
own training data, the recipe's new fields (Nesterov, label smoothing, a schedule, reflect-padded shifts) in `train`
and `train_many` alike, and every existing recipe's hash and weights left exactly as they were."""
from __future__ import annotations

import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from core import Experiment, ExperimentConfig, ResidueError
from core.batched import init_many, train_many
from core.cache import ModelStore
from core.config import MethodConfig, ModelConfig, from_dict, loads
from core.models import build_model
from core.models.airbench import Whitening
from core.training import (Recipe, augment_draws, augmented, epoch_batches, make_optimizer, named_recipe, recipes,
                           train)
from test_attacks_mia import trained_one_by_one
from test_vision import _bits, colour_dataset, colour_experiment

NARROW = {"width": 1 / 16}


def narrow(seed: int = 0, shape=(3, 16, 16), classes: int = 3):
    return build_model("airbench", shape, classes, seed=seed, **NARROW)


def small_recipe(**changes) -> Recipe:
    """airbench's recipe for a few dozen images: batch 16, the learning rate scaled with it (1.5 per 1024)."""
    return named_recipe("airbench", **{"epochs": 2, "batch_size": 16, "lr": 1.5 * 16 / 1024, **changes})


# -- the network ----------------------------------------------------------------------------------------------
def test_airbench_is_airbench94s_network():
    m = build_model("airbench", (3, 32, 32), 10)
    assert m.layer_names == ["whiten", "block1", "block2", "block3", "pool", "head"]
    # airbench94's trainable parameters: 1,971,352 (its frozen whitening weight and batch-norm scales are not)
    assert sum(p.numel() for p in m.parameters()) == 1_971_352
    assert m.whitening.weight.shape == (24, 3, 2, 2) and "blocks.whiten.0.weight" in dict(m.named_buffers())
    convs = [m.blocks[b][i] for b in ("block1", "block2", "block3") for i in (0, 4)]
    assert [c.out_channels for c in convs] == [64, 64, 256, 256, 256, 256]
    for c in convs:  # Dirac init of the first in_channels filters: conv2 of each group starts as the identity
        ident = torch.zeros_like(c.weight[:c.in_channels])
        torch.nn.init.dirac_(ident)
        assert torch.equal(c.weight[:c.in_channels].detach(), ident)
    x = torch.randn(4, 3, 32, 32)
    h = m.eval().blocks["whiten"](x)
    for name in ("block1", "block2", "block3"):
        h = m.blocks[name](h)
    assert h.shape == (4, 256, 3, 3) and torch.equal(m.blocks["pool"](h), h.amax((2, 3)))  # MaxPool2d(3) on 3x3
    assert m.features(x).shape == (4, 256) and m(x).shape == (4, 10)
    assert not narrow(0).state_dict()["blocks.block2.0.weight"].equal(narrow(1).state_dict()["blocks.block2.0.weight"])
    assert build_model("airbench", (1, 28, 28), 10, width=0.25).whitening.weight.shape == (8, 1, 2, 2)  # MNIST
    with pytest.raises(ResidueError, match="at least 9x9 pixels"):
        build_model("airbench", (1, 8, 8), 10)
    with pytest.raises(ResidueError, match="airbench: width must be"):
        build_model("airbench", (3, 32, 32), 10, width=0)


def test_whitening_is_fitted_from_data_once():
    g = torch.Generator().manual_seed(0)
    mix = torch.tensor([[1.0, 0.0, 0.0], [0.8, 0.6, 0.0], [0.5, 0.5, 0.7]])  # correlated colour channels
    X = torch.einsum("dc,nchw->ndhw", mix, torch.randn(60, 3, 12, 12, generator=g))
    w = Whitening(3)
    w.fit(X)
    out = F.conv2d(X, w.weight[:12]).permute(0, 2, 3, 1).reshape(-1, 12).double()
    assert torch.allclose(out.T @ out / len(out), torch.eye(12, dtype=torch.float64), atol=1e-2)  # white patches
    assert torch.equal(w.weight[12:], -w.weight[:12])
    m = narrow()
    y = torch.arange(60) % 3
    assert not m.whitening.fitted and not m.whitening.weight.any()
    train(m, X, y, small_recipe(epochs=1), seed=0)
    fitted = m.whitening.weight.clone()
    assert m.whitening.fitted and not torch.equal(fitted, torch.zeros_like(fitted))
    train(m, X[:20] * 3, y[:20], small_recipe(epochs=1), seed=1)  # fine-tuning on other data: not refitted
    assert torch.equal(m.whitening.weight, fitted)


# -- the recipe -----------------------------------------------------------------------------------------------
def test_the_airbench_recipe_is_registered_and_selected_by_name():
    r = recipes.get("airbench")
    assert (r.batch_size, r.optimizer, r.momentum, r.nesterov, r.label_smoothing, r.augment) == (
        1024, "sgd", 0.85, True, 0.2, "shift2_flip")
    assert r.lr == pytest.approx(11.5 / (1 + 1 / 0.15)) and r.lr * r.weight_decay == pytest.approx(0.0153 * 1024 / (
        1024 * (1 + 1 / 0.15)))  # airbench's decoupled lr and weight decay, per step
    assert r.lr_at(0, 100) == pytest.approx(0.2 * r.lr) and r.lr_at(23, 100) == pytest.approx(r.lr)
    assert r.lr_at(100, 100) == pytest.approx(0.07 * r.lr) and r.lr_at(50, 100) < r.lr
    cfg = loads('[model]\nname = "airbench"\n[recipe]\nname = "airbench"\nepochs = 3\n')
    assert cfg.recipe == named_recipe("airbench", epochs=3) and "name" not in cfg.to_dict()["recipe"]
    assert from_dict(cfg.to_dict()).hash() == cfg.hash()  # the recipe is written out in full, hashed by content
    assert loads('[recipe]\nname = "default"\n').hash() == ExperimentConfig().hash()
    for text, message in (('name = "fast"', "Unknown recipe 'fast'. Known: airbench, default"),
                          ("name = 3", "recipe: name must be the name of a recipe"),
                          ("schedule = [[0, 1], [0.5, 2]]", "fractions rising from 0 to 1"),
                          ('schedule = "triangle"', "schedule must be [fraction, factor] pairs"),
                          ("nesterov = true", "nesterov needs optimizer = \"sgd\""),
                          ("label_smoothing = 1", "label_smoothing must be in [0, 1)"),
                          ('augment = "mixup"', "augment must be one of ['none', 'crop_flip', 'shift2_flip']")):
        with pytest.raises(ResidueError, match=re.escape(message)):
            loads(f"[recipe]\n{text}\n")


def test_existing_configs_keep_their_hashes():
    """The hashes main had before the recipe grew nesterov, label_smoothing and schedule: every cached model of an
    existing config is still found."""
    from pathlib import Path

    from core.config import load_config

    root = Path(__file__).resolve().parents[1] / "assets"
    assert ExperimentConfig().hash() == "b60d17e296cf52e260864cdd0c21903f"
    for path, digest in (("presets/forget_digit_7.toml", "92200ebdf94fb695bcb30afd219ac0ef"),
                         ("presets/moons_neighbourhood.toml", "c9d542d7134efad5e9ec78edb8a7a618"),
                         ("papers/cifar10_forget_class.toml", "3762b2c3d0e3e0685e51f4c888566453")):
        assert load_config(root / path).hash() == digest, path
    assert set(Recipe(optimizer="sgd", augment="crop_flip").to_dict()) == {
        "epochs", "batch_size", "lr", "optimizer", "momentum", "weight_decay", "augment"}


def test_an_existing_sgd_crop_flip_recipe_trains_bit_for_bit_as_before():
    """`train` with a recipe of the old fields is the loop it was before the schedule, label smoothing, Nesterov and
    data-fitted initialisation came in: written out here as it was, compared weight for weight (SGD with weight
    decay and crop+flip on a batch-norm ResNet; Adam on an MLP)."""
    d = colour_dataset(n_per_class=20)
    X, y = torch.as_tensor(d.X), torch.as_tensor(d.y)
    cases = [(lambda: build_model("resnet18_cifar", (3, 16, 16), 3, seed=5, width=1 / 16),
              Recipe(epochs=2, batch_size=16, lr=0.05, optimizer="sgd", weight_decay=5e-4, augment="crop_flip")),
             (lambda: build_model("mlp", (3, 16, 16), 3, seed=5, hidden=[16]), Recipe(epochs=2, batch_size=16))]
    for make, recipe in cases:
        ours, plain = make(), make()
        train(ours, X, y, recipe, seed=7)
        g, aug = torch.Generator().manual_seed(7), torch.Generator().manual_seed((7 * 1_000_003 + 0xA06) % 2**63)
        opt = make_optimizer(plain.parameters(), recipe.optimizer, recipe.lr, recipe.momentum, recipe.weight_decay)
        plain.train()
        for _ in range(recipe.epochs):
            for idx in epoch_batches(len(y), recipe.batch_size, g):
                xb = X[idx] if recipe.augment == "none" else augmented(X[idx], *augment_draws(aug, len(idx)))
                loss = F.cross_entropy(plain(xb), y[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
        for (k, a), b in zip(ours.state_dict().items(), plain.state_dict().values()):
            assert torch.equal(a, b), k


def test_shift2_flip_pads_by_reflection():
    x = torch.arange(2 * 1 * 6 * 6, dtype=torch.float32).view(2, 1, 6, 6)
    out = augmented(x, torch.tensor([[0, 0], [2, 4]]), torch.tensor([False, True]), pad=2, mode="reflect")
    padded = F.pad(x, (2, 2, 2, 2), mode="reflect")
    assert torch.equal(out[0], padded[0, :, :6, :6])  # shifted 2 down and 2 right, the border reflected
    assert torch.equal(out[1], padded[1, :, 2:8, 4:10].flip(-1))  # 2 left, then mirrored
    assert augment_draws(torch.Generator().manual_seed(0), 500, pad=2)[0].max() == 4


def test_airbench_trains_the_same_alone_and_batched():
    """The whole recipe (Nesterov, label smoothing, the schedule over each model's own steps, shifts of reflected
    images) and each model's whitening from its own subset: `train_many` gives `train`'s weights."""
    X, y, subsets = _bits()  # a subset of 33 % 16 == 1: a batch of one, dropped
    seeds = [4, 5, 6]
    recipe = small_recipe()
    batched = train_many(narrow(), init_many(narrow, seeds), X, y, subsets, recipe, seeds)
    ref = trained_one_by_one(narrow, X, y, subsets, recipe, seeds)
    assert set(batched) == set(ref)
    for k in ref:
        assert torch.allclose(batched[k].float(), ref[k].float(), atol=1e-4), k
    assert not torch.equal(ref["blocks.whiten.0.weight"][0], ref["blocks.whiten.0.weight"][2])  # own subsets
    # a schedule at zero: nothing but the batch-norm statistics moves, alone and batched
    frozen = small_recipe(schedule=[[0, 0], [1, 0]])
    m = narrow(4)
    before = {k: v.clone() for k, v in m.named_parameters()}
    train(m, X, y, frozen, seed=4)
    assert all(torch.equal(v, before[k]) for k, v in m.named_parameters())
    p = train_many(narrow(), init_many(narrow, [4]), X, y, [np.arange(len(y))], frozen, [4])
    assert all(torch.equal(p[k][0], before[k]) for k in before)


def test_label_smoothing_in_the_batched_mlp_path():
    """Plain MLPs train batched through a hand-written backward: label smoothing there matches autograd's."""
    rng = np.random.default_rng(0)
    X = torch.as_tensor(rng.normal(size=(50, 6)).astype(np.float32))
    y = torch.as_tensor(np.arange(50) % 4)
    recipe = Recipe(epochs=3, batch_size=16, lr=0.05, optimizer="sgd", nesterov=True, label_smoothing=0.3,
                    schedule=[[0, 1], [1, 0.1]])
    make = lambda s: build_model("mlp", (6,), 4, seed=s, hidden=[8])  # noqa: E731
    subsets = [np.arange(0, 50), np.arange(10, 43)]
    batched = train_many(make(0), init_many(make, [1, 2]), X, y, subsets, recipe, [3, 4])
    for i, (s, o, sub) in enumerate(zip([1, 2], [3, 4], subsets)):
        m = make(s)
        train(m, X[sub], y[sub], recipe, seed=o)
        for k, v in m.named_parameters():
            assert torch.allclose(batched[k][i], v.detach(), atol=1e-5), k


# -- in an experiment ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def airbench_exp(tmp_path_factory):
    return colour_experiment(tmp_path_factory, ModelConfig("airbench", dict(NARROW)), small_recipe(epochs=4),
                             [MethodConfig("finetune", {"epochs": 1})], "airbench-store")


def test_an_experiment_whitens_each_model_from_its_own_training_set(airbench_exp):
    exp = airbench_exp
    assert exp.results.model("original").test_acc > 0.6  # θ_o learned the quadrants
    split = exp.prepare()
    w = {k: exp.models[k].whitening.weight for k in ("original", "retrain", "finetune")}
    for part, name in (("train", "original"), ("retain", "retrain")):
        ref = Whitening(3)
        ref.fit(split.tensors(part)[0])
        assert torch.allclose(w[name], ref.weight, atol=1e-5), name  # θ_r never saw the forget set, even here
    assert torch.equal(w["finetune"], w["original"])  # unlearning starts from θ_o's filters and keeps them


def test_probes_and_patching_run_on_airbench(airbench_exp):
    from core.probes import ProbeData, layer_probes
    from core.probes.common import layer_outputs, run_from
    from core.probes.patching import patching

    exp = airbench_exp
    o, r, u = exp.models["original"], exp.models["retrain"], exp.models["finetune"]
    data = ProbeData.from_experiment(exp, retain_sample=32)
    X, y = data.forget
    acts = layer_outputs(o, X)
    assert list(acts) == o.layer_names and acts["pool"].shape[1:] == (16,)
    for layer in o.hidden_layer_names:
        assert torch.allclose(run_from(o, layer, acts[layer]), acts["head"], atol=1e-5), layer
    assert np.isfinite(patching(o, r, u, X, y).drop_retrain).all()
    rep = layer_probes({"original": o, "retrain": r, "finetune": u}, data)
    assert rep.layers == o.layer_names


def test_an_analysis_on_cifar_files_runs_unchanged_on_airbench(tmp_path, monkeypatch):
    """CIFAR-10's binary format on disk, `[recipe] name = "airbench"` in the config, two methods (one hooking the
    layers: orthogonal replay), then the probes the layer probes above do not cover (stability, the landscape's
    plane, the embedding's features, patching): all finite, the layers' shapes airbench's, θ_o left as trained."""
    from test_image_data import write_cifar10

    from core.probes import ProbeData, model_plane
    from core.probes.common import layer_outputs
    from core.probes.embedding import features
    from core.probes.patching import patching
    from core.probes.stability import stability

    monkeypatch.setenv("RESIDUE_DATA", str(tmp_path))
    write_cifar10(tmp_path / "cifar-10-batches-bin", per_file=10)
    cfg = from_dict({"data": {"name": "cifar10", "test_fraction": 0.2, "shadow_fraction": 0.1,
                              "forget": {"kind": "class", "classes": [3]}},
                     "model": {"name": "airbench", **NARROW},
                     "recipe": {"name": "airbench", "epochs": 2, "batch_size": 16, "lr": 1.5 * 16 / 1024},
                     "methods": [{"name": "finetune", "epochs": 1},
                                 {"name": "orthogonal_replay", "epochs1": 1, "batch_size": 16}]})
    assert cfg.recipe.nesterov and cfg.recipe.schedule == recipes.get("airbench").schedule
    exp = Experiment(cfg, store=ModelStore(tmp_path / "store"), device="cpu")
    exp.reference_models()
    o, r = exp.models["original"], exp.models["retrain"]
    trained = {k: v.clone() for k, v in o.state_dict().items()}
    res = exp.run()
    assert [m.name for m in res.models] == ["original", "retrain", "finetune", "orthogonal_replay"]
    assert exp.trained["orthogonal_replay"].status == "ok"
    u = exp.models["orthogonal_replay"]
    data = ProbeData.from_experiment(exp)
    X, y = data.forget
    shapes = {k: tuple(v.shape[1:]) for k, v in layer_outputs(o, X).items()}
    assert shapes == {"whiten": (24, 31, 31), "block1": (4, 15, 15), "block2": (16, 7, 7), "block3": (16, 3, 3),
                      "pool": (16,), "head": (10,)}
    assert np.isfinite(patching(o, r, u, X, y).drop_retrain).all()
    st = stability(u, data, "orthogonal_replay", k=3)
    assert np.isfinite([st.grad_norm_retain, *st.forget_acc, *st.retain_acc]).all()
    assert np.isfinite(model_plane(o, u, r, data, "orthogonal_replay", n=3).forget_loss).all()
    assert features(u, X).shape == (len(y), 16)  # what the embedding projects: the pooled features
    assert all(torch.equal(v, trained[k]) for k, v in o.state_dict().items())  # θ_o untouched by methods and probes
