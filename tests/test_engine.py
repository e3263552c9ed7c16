"""Models, training, cache, config, experiment runner, first methods."""
import os
import stat

import pytest
import torch

from core import Experiment, ResidueError, from_dict, loads
from core.cache import ModelStore, stable_hash
from core.config import dumps
from core.models import build_model, check_state_dict
from core.progress import Progress
from core.training import Recipe, train
from core.unlearn import get_method, methods


# -- models ---------------------------------------------------------------------------------------
def test_models_have_stable_layer_names_and_deterministic_init():
    mlp = build_model("mlp", (1, 8, 8), 10, seed=1, hidden=[32, 16])
    assert mlp.layer_names == ["block1", "block2", "head"] and mlp.hidden_layer_names == ["block1", "block2"]
    again = build_model("mlp", (1, 8, 8), 10, seed=1, hidden=[32, 16])
    other = build_model("mlp", (1, 8, 8), 10, seed=2, hidden=[32, 16])
    for (k, a), b, c in zip(mlp.state_dict().items(), again.state_dict().values(), other.state_dict().values()):
        assert torch.equal(a, b) and not torch.equal(a, c), k
    cnn = build_model("cnn", (1, 8, 8), 10, seed=0)
    assert cnn.layer_names == ["conv1", "conv2", "fc", "head"]
    assert cnn(torch.zeros(3, 1, 8, 8)).shape == (3, 10) and cnn.features(torch.zeros(3, 1, 8, 8)).shape == (3, 64)


def test_model_errors():
    with pytest.raises(ResidueError, match="Unknown model 'resnet'"):
        build_model("resnet", (2,), 2)
    with pytest.raises(ResidueError, match="needs image data"):
        build_model("cnn", (2,), 2)
    with pytest.raises(ResidueError, match="hidden widths"):
        build_model("mlp", (2,), 2, hidden=[0])


def test_checkpoint_shape_check():
    a = build_model("mlp", (1, 8, 8), 10, hidden=[32])
    b = build_model("mlp", (1, 8, 8), 10, hidden=[16])
    check_state_dict(a, a.state_dict())
    with pytest.raises(ResidueError, match="has shape"):
        check_state_dict(a, b.state_dict())
    with pytest.raises(ResidueError, match="does not match"):
        check_state_dict(a, {"x": torch.zeros(1)})


# -- training -------------------------------------------------------------------------------------
def test_training_is_reproducible_and_learns():
    from core.data import ForgetSpec, load_dataset, make_split

    s = make_split(load_dataset("digits"), ForgetSpec(), seed=0)
    X, y = s.tensors("train")
    recipe = Recipe(epochs=10)
    models = []
    for _ in range(2):
        m = build_model("mlp", (1, 8, 8), 10, seed=0, hidden=[64])
        log = train(m, X, y, recipe, seed=0)
        models.append(m)
    for a, b in zip(models[0].state_dict().values(), models[1].state_dict().values()):
        assert torch.equal(a, b)
    assert log.loss[-1] < log.loss[0] / 3, log.loss


def test_recipe_validation():
    with pytest.raises(ResidueError, match="epochs"):
        Recipe(epochs=0)
    with pytest.raises(ResidueError, match="optimizer"):
        Recipe(optimizer="lbfgs")


# -- cache ----------------------------------------------------------------------------------------
def _small():
    return build_model("mlp", (4,), 2, seed=0, hidden=[8])


def test_cache_hit_and_corruption_rebuilds(tmp_path):
    store = ModelStore(tmp_path)
    calls = []

    def build():
        calls.append(1)
        m = _small()
        with torch.no_grad():
            m.blocks["head"].bias.fill_(3.0)
        return m, {"seconds": 1.5}

    m1, meta, hit = store.get_or_build({"k": 1}, _small, build)
    assert not hit and meta["seconds"] == 1.5
    m2, meta2, hit2 = store.get_or_build({"k": 1}, _small, build)
    assert hit2 and meta2["seconds"] == 1.5 and torch.equal(m2.blocks["head"].bias, m1.blocks["head"].bias)
    assert len(calls) == 1
    # truncate the file on disk: detected, rebuilt, never served
    (path,) = list(tmp_path.rglob("*.pt"))
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    m3, _, hit3 = store.get_or_build({"k": 1}, _small, build)
    assert not hit3 and len(calls) == 2 and any("corrupt" in n for n in store.notes)
    # flip a byte in the payload: checksum catches it
    raw = bytearray(path.read_bytes())
    raw[-10] ^= 0xFF
    path.write_bytes(bytes(raw))
    _, _, hit4 = store.get_or_build({"k": 1}, _small, build)
    assert not hit4 and len(calls) == 3
    assert not list(tmp_path.rglob(".tmp-*"))  # no half-written entries left behind


def test_cache_read_only_falls_back_to_memory(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(stat.S_IRUSR | stat.S_IXUSR)
    if os.access(ro, os.W_OK):  # running as root: permissions do not bind; simulate with a file
        ro.chmod(0o700)
        ro = tmp_path / "file-not-dir"
        ro.write_text("x")
    store = ModelStore(ro)
    with pytest.warns(RuntimeWarning, match="not writable"):
        store.get_or_build({"a": 1}, _small, lambda: (_small(), {}))
    assert store.in_memory
    _, _, hit = store.get_or_build({"a": 1}, _small, lambda: (_small(), {}))
    assert hit


def test_stable_hash_ignores_dict_order():
    assert stable_hash({"a": 1, "b": [1, 2]}) == stable_hash({"b": [1, 2], "a": 1})
    assert stable_hash({"a": 1}) != stable_hash({"a": 2})


# -- config ---------------------------------------------------------------------------------------
def test_config_toml_roundtrip_and_hash():
    cfg = loads(open("examples/classroom.toml").read())
    assert cfg.data.forget.classes == [7] and [m.name for m in cfg.methods] == ["finetune", "gradient_ascent"]
    again = loads(dumps(cfg))
    assert again.to_dict() == cfg.to_dict() and again.hash() == cfg.hash()
    cfg.seed = 1
    assert cfg.hash() != again.hash()


@pytest.mark.parametrize("text, message", [
    ("sede = 1", "unknown key 'sede'"),
    ("[data]\nname = 'imagenet'", "Unknown dataset 'imagenet'"),
    ("[model]\nname = 'vit'", "Unknown model 'vit'"),
    ("[[methods]]\nname = 'magic'", "Unknown unlearning method 'magic'"),
    ("[[methods]]\nname = 'finetune'\nlr = 50.0", r"lr must be in \[1e-06, 0.1\]"),
    ("[[methods]]\nname = 'finetune'\nlrr = 0.1", "unknown hyperparameter"),
    ("[recipe]\nepochs = -1", "epochs must be"),
    ("[data.forget]\nkind = 'class'\ncolour = 1", "unknown key 'colour'"),
    ("seed = [", "not valid TOML"),
    ("methods = []", "at least one unlearning method"),
])
def test_bad_configs(text, message):
    with pytest.raises(ResidueError, match=message):
        loads(text)


# -- experiment -----------------------------------------------------------------------------------
def test_experiment_results(digits_experiment):
    r = digits_experiment.results
    assert [m.name for m in r.models] == ["original", "retrain", "finetune", "gradient_ascent"]
    o, rt = r.model("original"), r.model("retrain")
    assert o.test_acc >= 0.93 and o.forget_acc > 0.95
    assert rt.forget_acc < 0.05 and rt.kl_to_retrain == 0.0  # a retrain never sees the class
    for m in r.unlearned:
        assert m.ratio_to_retrain is not None and m.ratio_to_retrain > 0 and m.kl_to_retrain >= 0
    back = type(r).from_json(r.to_json())
    assert back.to_dict() == r.to_dict()
    assert r.split["forget"] == len(r.forget_indices) and r.forget_classes == [7]


def test_experiment_second_run_is_cached_and_identical(digits_experiment):
    exp2 = Experiment(digits_experiment.config, store=digits_experiment.store, device="cpu")
    r2 = exp2.run()
    assert all(m.cached for m in r2.models)
    for a, b in zip(digits_experiment.results.models, r2.models):
        assert (a.forget_acc, a.retain_acc, a.test_acc) == (b.forget_acc, b.retain_acc, b.test_acc)


def test_progress_events_and_cancel(tmp_path):
    events = []
    cfg = from_dict({"recipe": {"epochs": 3}, "methods": ["finetune"]})
    Experiment(cfg, store=ModelStore(tmp_path), device="cpu").run(events.append)
    stages = [e.stage for e in events]
    assert "train original" in stages and "retrain" in stages and any(s.startswith("finetune") for s in stages)
    p = Progress()
    p.cancel()
    from core.errors import Cancelled

    with pytest.raises(Cancelled):
        Experiment(cfg, store=ModelStore(tmp_path / "b"), device="cpu").run(p)
    assert not list((tmp_path / "b").rglob("*.pt"))  # nothing half-done was cached


def test_gradient_ascent_divergence_is_caught(digits_experiment):
    exp = digits_experiment
    res = get_method("gradient_ascent", lr=1.0, epochs=50).unlearn(exp.models["original"], exp.task())
    assert res.status == "diverged" and "stopped" in res.message
    assert all(torch.isfinite(p).all() for p in res.model.parameters())


def test_method_registry_declares_params():
    for name in methods:
        cls = methods.get(name)
        assert cls.summary and cls.__doc__, name
        for p in cls.params:
            assert p.help, (name, p.name)
            cls(**{p.name: p.default})  # defaults pass their own range
    with pytest.raises(ResidueError, match="epochs must be in"):
        get_method("finetune", epochs=0)


def test_metrics_same_seed_same_numbers_across_processes(tmp_path):
    import subprocess
    import sys

    code = ("from core import from_dict, Experiment; from core.cache import ModelStore;"
            "import sys; r = Experiment(from_dict({'recipe': {'epochs': 4}, 'methods': ['finetune']}),"
            " store=ModelStore(sys.argv[1]), device='cpu').run();"
            "print([(m.forget_acc, m.retain_acc, m.test_acc, m.kl_to_retrain) for m in r.models])")
    outs = [subprocess.run([sys.executable, "-c", code, str(tmp_path / f"s{i}")], capture_output=True, text=True,
                           check=True).stdout for i in range(2)]
    assert outs[0] == outs[1] and outs[0].strip()
