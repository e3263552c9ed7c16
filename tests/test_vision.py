"""Vision models (torchvision's ResNet-18 in both stems, VGG-11-BN): names, shapes, init, and every consumer of
named layers and stacked models on a narrow ResNet; batch norm in the batched trainer."""
from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from core import Experiment, ExperimentConfig, ResidueError
from core.batched import (
    forward_many,
    init_many,
    loss_grad_fn,
    models_per_call,
    stack,
    train_many,
)
from core.cache import ModelStore
from core.config import DataConfig, MethodConfig, ModelConfig
from core.data import Dataset
from core.models import build_model
from core.training import Recipe, augment_draws, augmented, train
from test_attacks_mia import trained_one_by_one

TINY = {"width": 1 / 16}


def tiny(name: str = "resnet18_cifar", shape=(3, 16, 16), classes: int = 3, seed: int = 0):
    return build_model(name, shape, classes, seed=seed, **TINY)


def colour_dataset(n_per_class: int = 40, size: int = 16, classes: int = 3, seed: int = 0) -> Dataset:
    """Colour images whose class is a coloured quadrant, with noise: a ResNet learns it in an epoch or two."""
    rng = np.random.default_rng(seed)
    X = rng.normal(0.0, 0.3, (classes * n_per_class, 3, size, size)).astype(np.float32)
    y = np.repeat(np.arange(classes), n_per_class)
    h = size // 2
    for i, c in enumerate(y):
        X[i, c % 3, (c // 2) * h:(c // 2 + 1) * h, (c % 2) * h:(c % 2 + 1) * h] += 1.5
    return Dataset("colour", X, y, classes, kind="image")


# -- architectures: torchvision's names and shapes ------------------------------------------------------------
def test_resnet18_and_vgg11_bn_have_torchvision_parameter_counts_and_names():
    # torchvision's published sizes: resnet18 11,689,512 parameters, vgg11_bn 132,868,840 (1000 classes)
    r = build_model("resnet18", (3, 224, 224), 1000)
    assert sum(p.numel() for p in r.parameters()) == 11_689_512
    sd = r.state_dict()
    assert len(sd) == 122 and not any(k.startswith("blocks.") for k in sd)
    assert sd["conv1.weight"].shape == (64, 3, 7, 7) and sd["fc.weight"].shape == (1000, 512)
    assert sd["layer2.0.downsample.0.weight"].shape == (128, 64, 1, 1)
    assert sd["layer4.1.bn2.running_var"].shape == (512,) and "layer1.0.downsample.0.weight" not in sd
    v = build_model("vgg11_bn", (3, 32, 32), 1000)
    assert sum(p.numel() for p in v.parameters()) == 132_868_840
    vsd = v.state_dict()
    assert vsd["features.0.weight"].shape == (64, 3, 3, 3) and vsd["features.1.running_mean"].shape == (64,)
    assert vsd["features.26.weight"].shape == (512,) and vsd["classifier.0.weight"].shape == (4096, 512 * 49)
    assert {k.split(".")[1] for k in vsd if k.startswith("classifier")} == {"0", "3", "6"}


def test_cifar_stem_is_the_comparators_resnet18():
    # the Comparator: torchvision resnet18, conv1 = Conv2d(3, 64, 3, 1, 1, bias=False), maxpool = Identity()
    m = build_model("resnet18_cifar", (3, 32, 32), 10)
    assert m.conv1.kernel_size == (3, 3) and m.conv1.stride == (1, 1) and isinstance(m.maxpool, torch.nn.Identity)
    imagenet = build_model("resnet18", (3, 32, 32), 10).state_dict()
    cifar = m.state_dict()
    assert list(cifar) == list(imagenet)
    assert [k for k in cifar if cifar[k].shape != imagenet[k].shape] == ["conv1.weight"]
    assert m.blocks["layer4"](m.blocks["layer3"](torch.zeros(1, 128, 16, 16))).shape == (1, 512, 4, 4)


def test_width_multiplier_layers_and_deterministic_torchvision_init():
    m = tiny()
    assert m.layer_names == ["stem", "layer1", "layer2", "layer3", "layer4", "pool", "head"]
    assert m.hidden_layer_names == m.layer_names[:-1]
    assert [m.layer1[0].conv1.out_channels, m.layer4[0].conv1.out_channels, m.fc.in_features] == [4, 32, 32]
    assert tiny(seed=0).state_dict()["conv1.weight"].equal(m.state_dict()["conv1.weight"])
    assert not tiny(seed=1).state_dict()["conv1.weight"].equal(m.state_dict()["conv1.weight"])
    # Kaiming-normal, fan-out: std sqrt(2 / (out_channels * 9)); batch norm at 1 and 0
    w = build_model("resnet18_cifar", (3, 32, 32), 10).layer3[0].conv2.weight
    assert float(w.detach().std()) == pytest.approx((2 / (256 * 9)) ** 0.5, rel=0.05)
    assert m.bn1.weight.eq(1).all() and m.bn1.bias.eq(0).all()
    v = build_model("vgg11_bn", (3, 32, 32), 10, width=0.125)
    assert v.layer_names == ["block1", "block2", "block3", "block4", "block5", "pool", "fc1", "fc2", "head"]
    assert float(v.classifier[0].weight.detach().std()) == pytest.approx(0.01, rel=0.05) and v.classifier[0].bias.eq(0).all()
    x = torch.randn(2, 3, 32, 32)
    assert v.eval()(x).shape == (2, 10) and v.features(x).shape == (2, 512)  # Classifier.features, not VGG's
    for name, value, message in (("resnet18", 0, "width must be a number"), ("vgg11_bn", "1", "width must be"),
                                 ("resnet18_cifar", 8, "width must be")):
        with pytest.raises(ResidueError, match=message):
            build_model(name, (3, 32, 32), 10, width=value)
    with pytest.raises(ResidueError, match="needs image data"):
        build_model("resnet18", (64,), 10)
    with pytest.raises(ResidueError, match="at least 32x32"):
        build_model("vgg11_bn", (3, 16, 16), 10)


def test_named_layers_are_a_view_that_runs_and_hooks():
    m = tiny().eval()
    x = torch.randn(5, 3, 16, 16)
    h = x
    seen = {}
    hooks = [m.blocks[n].register_forward_hook(lambda _m, _i, o, n=n: seen.__setitem__(n, o.shape))
             for n in m.layer_names]
    out = m(x)
    for n in m.layer_names:
        h = m.blocks[n](h)
    for k in hooks:
        k.remove()
    assert torch.equal(out, h) and list(seen) == m.layer_names and seen["pool"] == (5, 32)
    copy = __import__("copy").deepcopy(m)
    assert copy.blocks["layer2"] is copy.layer2 and copy.blocks["stem"][0] is copy.conv1


# -- every consumer of named layers, on a narrow ResNet -------------------------------------------------------
def colour_experiment(tmp_path_factory, model: ModelConfig, recipe: Recipe, methods: list[MethodConfig],
                      store: str) -> Experiment:
    """A finished run on `colour_dataset` forgetting class 1, in its own model store (the vision fixtures' base)."""
    cfg = ExperimentConfig(seed=0, data=DataConfig(name="npz", test_fraction=0.2, shadow_fraction=0.2),
                           model=model, recipe=recipe, methods=methods)
    cfg.data.forget.classes = [1]
    exp = Experiment(cfg, store=ModelStore(tmp_path_factory.mktemp(store)), device="cpu", dataset=colour_dataset())
    exp.run()
    return exp


@pytest.fixture(scope="module")
def resnet_exp(tmp_path_factory):
    return colour_experiment(
        tmp_path_factory, ModelConfig("resnet18_cifar", dict(TINY)), Recipe(epochs=3, batch_size=32, lr=3e-3),
        [MethodConfig("finetune", {"epochs": 1}), MethodConfig("orthogonal_replay", {"epochs1": 1, "batch_size": 16})],
        "vision-store")


def test_probes_patching_landscape_and_embedding_run_on_a_resnet(resnet_exp):
    from core.probes import ProbeData, layer_probes, model_plane
    from core.probes.common import layer_outputs, run_from
    from core.probes.embedding import features
    from core.probes.patching import patching

    exp = resnet_exp
    o, r, u = exp.models["original"], exp.models["retrain"], exp.models["finetune"]
    assert exp.results.models[0].test_acc > 0.6  # θ_o learned the quadrants
    data = ProbeData.from_experiment(exp, retain_sample=32)
    X, y = data.forget
    acts = layer_outputs(o, X)
    assert list(acts) == o.layer_names and acts["layer3"].shape[1:] == (16, 4, 4)
    for layer in o.hidden_layer_names:  # patching a model's own activations changes nothing
        assert torch.allclose(run_from(o, layer, acts[layer]), acts["head"], atol=1e-5), layer
    res = patching(o, r, u, X, y)
    assert res.layers == o.hidden_layer_names and np.isfinite(res.drop_retrain).all()
    rep = layer_probes({"original": o, "retrain": r, "finetune": u}, data)
    assert rep.layers == o.layer_names and rep.values["cka_o"]["original"][0] == pytest.approx(1.0)
    plane = model_plane(o, u, r, data, "finetune", n=3)
    assert np.isfinite(plane.forget_loss).all()
    assert features(o, X).shape == (len(y), 32)
    assert exp.trained["orthogonal_replay"].status == "ok"


def test_stacked_batch_norm_models_keep_their_own_statistics(resnet_exp):
    models = [resnet_exp.models[k] for k in ("original", "retrain", "finetune")]
    X = resnet_exp.prepare().tensors("test")[0]
    stacked = stack(models)
    assert stacked["bn1.running_mean"].shape == (3, 4)
    out = forward_many(models[0], stacked, X)
    for i, m in enumerate(models):
        assert torch.allclose(out[i], m.eval()(X), atol=1e-4)
    params_only = {k: v for k, v in stacked.items() if "running" not in k and "num_batches" not in k}
    with pytest.raises(ValueError, match="need their buffers"):
        forward_many(models[0], params_only, X)
    from core.batched import Flat
    with pytest.raises(ValueError, match="own running statistics"):
        loss_grad_fn(models[0])(Flat(models[0]).flatten(stacked), X[None].expand(3, *X.shape), torch.zeros(3, len(X),
                                dtype=torch.long), torch.ones(3, len(X)))


def test_stability_and_relearning_run_batched_on_a_resnet(resnet_exp):
    from core.probes import ProbeData
    from core.probes.stability import bounce_back, bounced_many

    exp = resnet_exp
    data = ProbeData.from_experiment(exp, retain_sample=32)
    ms = [exp.models[k] for k in ("original", "finetune")]
    loop = [bounce_back(m, data, 3, record=(), seed=1)[1][-1] for m in ms]
    assert bounced_many(ms, data, 3, seed=1) == pytest.approx(loop, abs=0.05)
    # the reminiscence attack's batched relearning runs (each run with its own batch-norm statistics)
    from core.probes import ProbeContext, measure
    ctx = ProbeContext(exp.models["original"], exp.models["retrain"], data, exp.config.seed, exp.prepare(),
                       exp.fresh_model)
    speed = measure(ctx, "relearning", {"finetune": exp.models["finetune"], "retrain": exp.models["retrain"]})
    assert all(np.isfinite(speed.value(k)) for k in ("finetune", "retrain"))


# -- batch norm in the batched trainer ------------------------------------------------------------------------
def _bits():
    d = colour_dataset(n_per_class=30)
    X, y = torch.as_tensor(d.X), torch.as_tensor(d.y)
    subsets = [np.arange(0, 33), np.arange(20, 60), np.arange(40, 90)]  # 33 % 16 == 1: a batch of one, dropped
    return X, y, subsets


def test_batched_batch_norm_training_equals_one_by_one(monkeypatch):
    X, y, subsets = _bits()
    recipe = Recipe(epochs=1, batch_size=16, lr=0.02, optimizer="sgd", augment="crop_flip")
    seeds = [4, 5, 6]
    batched = train_many(tiny(), init_many(lambda s: tiny(seed=s), seeds), X, y, subsets, recipe, seeds)
    ref = trained_one_by_one(lambda s: tiny(seed=s), X, y, subsets, recipe, seeds)
    assert set(batched) == set(ref)
    for k in ref:  # running statistics included: each model trained its own
        assert torch.allclose(batched[k].float(), ref[k].float(), atol=2e-3), k
    assert torch.equal(batched["bn1.num_batches_tracked"], torch.tensor([2, 3, 4]))  # 16+16 (+1 dropped), 16+16+8, …
    # within a (fake) memory budget the models train in chunks, to the same weights
    monkeypatch.setenv("RESIDUE_MEMORY_BUDGET", "1")
    assert models_per_call(tiny(), 16, True, "cpu") == 1
    chunked = train_many(tiny(), init_many(lambda s: tiny(seed=s), seeds), X, y, subsets, recipe, seeds)
    for k in ref:
        assert torch.allclose(chunked[k].float(), batched[k].float(), atol=2e-3), k


def test_memory_budget_chunks_forward_and_is_off_on_the_cpu(monkeypatch):
    X, _, _ = _bits()
    models = [tiny(seed=s).eval() for s in range(3)]
    whole = forward_many(models[0], stack(models), X)
    monkeypatch.delenv("RESIDUE_MEMORY_BUDGET", raising=False)
    assert models_per_call(models[0], 64, False, "cpu") >= 2**31 - 1
    from core.batched import model_bytes
    one = model_bytes(models[0], 64, training=False)
    monkeypatch.setenv("RESIDUE_MEMORY_BUDGET", str(int(one * 2.5)))
    assert models_per_call(models[0], 64, False, "cpu") == 2
    assert torch.equal(forward_many(models[0], stack(models), X, chunk=64), whole)
    monkeypatch.setenv("RESIDUE_MEMORY_BUDGET", "lots")
    with pytest.raises(ResidueError, match="RESIDUE_MEMORY_BUDGET"):
        models_per_call(models[0], 64, False, "cpu")


def test_crop_flip_augmentation_is_a_seeded_shift_and_mirror():
    x = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).view(2, 3, 8, 8)
    offsets, flips = torch.tensor([[4, 4], [0, 8]]), torch.tensor([False, True])
    out = augmented(x, offsets, flips)
    assert torch.equal(out[0], x[0])  # offset (pad, pad), no flip: the image itself
    shifted = torch.zeros(3, 8, 8)
    shifted[:, 4:, :4] = x[1, :, :4, 4:]  # 4 rows down, 4 columns left, then mirrored
    assert torch.equal(out[1], shifted.flip(-1))
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    a, b = augment_draws(g1, 10), augment_draws(g2, 10)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) and a[0].max() <= 8
    with pytest.raises(ResidueError, match="augment must be one of"):
        Recipe(augment="mixup")
    with pytest.raises(ResidueError, match="for images"):
        train(build_model("mlp", (4,), 2), torch.zeros(10, 4), torch.zeros(10, dtype=torch.long),
              Recipe(epochs=1, augment="crop_flip"))


def test_recipe_without_augmentation_keeps_its_hash():
    assert "augment" not in Recipe().to_dict() and Recipe(augment="crop_flip").to_dict()["augment"] == "crop_flip"
    assert "augment" not in ExperimentConfig().to_dict()["recipe"]
    assert os.environ.get("RESIDUE_MEMORY_BUDGET") is None


def test_on_the_cpu_training_is_the_plain_loop_bit_for_bit():
    """The CUDA path (autocast, channels-last, compile) leaves the CPU's arithmetic alone: `train` gives the weights
    of the plain loop it was before, exactly, for a conv net and a batch-norm ResNet."""
    import torch.nn.functional as F

    from core.training import epoch_batches, make_optimizer

    d = colour_dataset(n_per_class=20)
    X, y = torch.as_tensor(d.X), torch.as_tensor(d.y)
    recipe = Recipe(epochs=2, batch_size=16, lr=1e-3)
    for make in (lambda: build_model("cnn", (3, 16, 16), 3, seed=5, channels=(4, 4), hidden=8), lambda: tiny(seed=5)):
        ours, plain = make(), make()
        train(ours, X, y, recipe, seed=7)
        g = torch.Generator().manual_seed(7)
        opt = make_optimizer(plain.parameters(), "adam", recipe.lr)
        plain.train()
        for _ in range(recipe.epochs):
            for idx in epoch_batches(len(y), recipe.batch_size, g):
                loss = F.cross_entropy(plain(X[idx]), y[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
        for (k, a), b in zip(ours.state_dict().items(), plain.state_dict().values()):
            assert torch.equal(a, b), k
