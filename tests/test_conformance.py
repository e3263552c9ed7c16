"""Conformance suites over every registry, in the style of scikit-learn's `parametrize_with_checks`.

Every registered unlearning method, attack, probe, model and dataset is picked up from its registry at collection
time and run through the checks of its kind: determinism under a seed, θ_o (and every model handed over) left
bit-identical, cancellation through the progress callback, declared parameter ranges accepted at their ends and
refused outside them with a line naming the parameter, output shapes and types, and a round trip through JSON and
the result cache. A plug-in registered tomorrow is checked without anyone editing a list here; the last tests
register deliberately broken plug-ins and prove the checks catch them.

Everything runs on one tiny world (400 digits, a 32-unit MLP, class 7 forgotten) trained once per session, and
each entry runs at the low ends of its declared whole-number ranges (fewest epochs, shadows, draws...): that both
keeps the suite fast and checks that the declared ranges are honoured, not merely validated. A dataset loader that
reads files is loaded from the tiny example of its files it declares (`core.data.base.example`); one that declares
none and cannot load without files fails, so no loader is skipped for want of data.
"""
from __future__ import annotations

import copy
import inspect
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import pytest
import torch
from torch import nn

from core import Experiment, ExperimentConfig
from core.attacks import AttackContext, AttackResult, attacks, clear_memos
from core.cache import ModelStore
from core.config import DataConfig, MethodConfig, ModelConfig
from core.data import Dataset, ForgetSpec, datasets, load_dataset
from core.data.base import check_dataset_options, reads_files, write_example
from core.errors import Cancelled, ResidueError
from core.models import build_model, check_model_options, models
from core.params import Param
from core.probes import ProbeContext, ProbeData
from core.probes.base import Readings, probes
from core.probes.common import layer_outputs
from core.progress import Event, Progress
from core.results import Results
from core.training import Recipe, train
from core.unlearn import Method, UnlearnResult, methods, register


# -- the tiny world every check runs on ------------------------------------------------------------------------

@dataclass
class World:
    exp: Experiment
    store: ModelStore
    results: Results
    data: Path  # a data directory the datasets' example files are written into

    @property
    def original(self) -> nn.Module:
        return self.exp.models["original"]


@pytest.fixture(scope="session")
def world(tmp_path_factory) -> World:
    """θ_o and θ_r of a 32-unit MLP on 400 digits (forget class 7), trained once for the session."""
    d = load_dataset("digits")
    keep = np.random.default_rng(0).permutation(len(d.y))[:400]
    ds = Dataset("digits-400", d.X[keep], d.y[keep], 10, kind="image")
    cfg = ExperimentConfig(data=DataConfig(forget=ForgetSpec(kind="class", classes=[7])),
                           model=ModelConfig("mlp", {"hidden": [32]}), recipe=Recipe(epochs=15),
                           methods=[MethodConfig("finetune", {"epochs": 1})])
    store = ModelStore(tmp_path_factory.mktemp("conformance-store"))
    exp = Experiment(cfg, store=store, device="cpu", dataset=ds)
    results = exp.run()
    return World(exp, store, results, tmp_path_factory.mktemp("conformance-data"))


def cheapest(params: tuple[Param, ...]) -> dict[str, Any]:
    """Every whole-number hyperparameter at the low end of its declared range (fewest epochs, shadows, draws...),
    the rest at their defaults: the cheapest run the entry declares valid."""
    return {p.name: p.low for p in params if p.choices is None and type(p.default) is int and p.low is not None}


def state(model: nn.Module) -> dict[str, torch.Tensor]:
    """Parameters and buffers, copied: what "left untouched" and "identical" compare."""
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def assert_same_state(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], what: str) -> None:
    assert a.keys() == b.keys(), f"{what}: the parameter and buffer names changed"
    changed = [k for k in a if not torch.equal(a[k], b[k])]
    assert not changed, f"{what}: {changed[:3]} changed"


class CancelAtFirst:
    """A progress callback that stops the work at its first event and notes every event after it."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def __call__(self, e: Event) -> None:
        self.events.append(e)
        raise Cancelled("stopped by the conformance check")


def assert_cancels(work: Callable[[Progress], Any], where: str) -> None:
    """`work(progress)` must report progress, and a callback raising `Cancelled` must end it at once."""
    stop = CancelAtFirst()
    with pytest.raises(Cancelled):
        work(Progress(stop))
    assert len(stop.events) == 1, f"{where}: went on after Cancelled ({len(stop.events)} events)"


def assert_one_line_naming(err: pytest.ExceptionInfo, name: str, where: str) -> None:
    text = str(err.value)
    assert name in text, f"{where}: the error does not name '{name}': {text}"
    assert "\n" not in text, f"{where}: the error is not one line: {text!r}"


def jsonable(x: Any) -> Any:
    """`x` through JSON and back (raises where `x` is not plain JSON)."""
    return json.loads(json.dumps(x, allow_nan=False))


def no_temporary_files(store: ModelStore) -> list[str]:
    return [str(p) for p in store.root.rglob(".tmp-*")]


# -- declared parameters, the same checks for methods, attacks and probes --------------------------------------

def outside(p: Param) -> list[Any]:
    """Values a declared parameter must refuse."""
    if p.choices is not None:
        return ["no such choice"]
    if isinstance(p.default, bool):
        return ["yes", 1]
    if isinstance(p.default, (int, float)):
        step = 1 if isinstance(p.default, int) else max(abs(p.low or 0), abs(p.high or 0), 1.0) * 1e-3
        return (["many", float("nan")] + ([p.low - step] if p.low is not None else [])
                + ([p.high + step] if p.high is not None else []) + ([0.5] if isinstance(p.default, int) else []))
    if isinstance(p.default, str):
        return [5]
    return []


def inside(p: Param) -> list[Any]:
    """Values a declared parameter must accept: its default, its ends and every choice."""
    if p.choices is not None:
        return list(p.choices)
    return [p.default] + [v for v in (p.low, p.high) if v is not None and isinstance(p.default, (int, float))
                          and not isinstance(p.default, bool)]


def check_params_declared(cls: type) -> None:
    """The constructor takes every value in a declared range and refuses each one outside it (and an unknown
    name) with one line naming the parameter."""
    where = f"{cls.__name__} ({cls.name})"
    for p in cls.params:
        for v in inside(p):
            assert cls(**{p.name: v}).hp[p.name] == v, f"{where}: {p.name}={v!r} not kept"
        for v in outside(p):
            with pytest.raises(ResidueError) as err:
                cls(**{p.name: v})
            assert_one_line_naming(err, p.name, f"{where} {p.name}={v!r}")
    with pytest.raises(ResidueError) as err:
        cls(no_such_parameter=1)
    assert_one_line_naming(err, "no_such_parameter", where)


# -- unlearning methods -----------------------------------------------------------------------------------------

def run_method(world: World, name: str, progress: Progress | None = None, seed: int = 0) -> UnlearnResult:
    cls = methods.get(name)
    return cls(**cheapest(cls.params)).unlearn(world.original, world.exp.task(seed), progress)


def check_method_deterministic(world: World, name: str) -> None:
    a, b = run_method(world, name), run_method(world, name)
    assert_same_state(state(a.model), state(b.model), f"{name} twice with seed 0")
    assert a.status == b.status and a.history == b.history


def check_method_leaves_original(world: World, name: str) -> None:
    before = state(world.original)
    run_method(world, name)
    assert_same_state(before, state(world.original), f"θ_o after {name}")


def check_method_output(world: World, name: str) -> None:
    r = run_method(world, name)
    assert isinstance(r, UnlearnResult) and isinstance(r.model, nn.Module)
    assert not r.model.training, f"{name}: θ_u returned in training mode"
    assert {k: v.shape for k, v in r.model.state_dict().items()} == \
        {k: v.shape for k, v in world.original.state_dict().items()}, f"{name}: θ_u is not θ_o's architecture"
    assert all(torch.isfinite(v).all() for v in r.model.state_dict().values() if v.is_floating_point())
    assert r.status in ("ok", "diverged") and r.seconds >= 0
    assert all(isinstance(row, dict) and all(isinstance(v, float) for v in row.values()) for row in r.history)
    assert jsonable(r.history) == r.history


def check_method_cancels(world: World, name: str) -> None:
    """Cancelled at its first progress event through the experiment, which caches θ_u: nothing is stored."""
    cls = methods.get(name)
    hp = cheapest(cls.params)
    assert_cancels(lambda p: world.exp.unlearn(name, hp, p, seed=12345), name)
    assert not no_temporary_files(world.store)
    # nothing half-done was stored: the same request now builds (a miss), it is not served
    assert not world.exp.unlearn(name, hp, seed=12345).cached


def check_method_round_trip(world: World, name: str) -> None:
    """θ_u through the model cache comes back bit-identical."""
    cls = methods.get(name)
    hp = cheapest(cls.params)
    built = world.exp.unlearn(name, hp, seed=7)
    served = world.exp.unlearn(name, hp, seed=7)
    assert served.cached
    assert_same_state(state(built.model), state(served.model), f"{name} through the cache")
    assert (built.status, built.message, built.history) == (served.status, served.message, served.history)


def check_method_params(world: World, name: str) -> None:
    check_params_declared(methods.get(name))


METHOD_CHECKS = [check_method_params, check_method_output, check_method_deterministic, check_method_leaves_original,
                 check_method_cancels, check_method_round_trip]


# -- attacks -----------------------------------------------------------------------------------------------------

def attack_context(world: World, store: ModelStore | None = None) -> AttackContext:
    """The world's θ_o, θ_r and the finetuned model, every in-process memo of the attacks emptied: each run
    computes afresh (shadow models, relearning runs), as a new process would."""
    clear_memos()
    ctx = AttackContext.from_experiment(world.exp)
    ctx.store = store
    return ctx


def run_attack(world: World, name: str, progress: Progress | None = None, store: ModelStore | None = None
               ) -> tuple[AttackContext, list[AttackResult]]:
    cls = attacks.get(name)
    ctx = attack_context(world, store)
    reason = cls.not_applicable(ctx.split)
    if reason:
        pytest.skip(f"{name}: not applicable to class-wise forgetting ({reason})")
    return ctx, cls(**cheapest(cls.params)).run(ctx, "finetune", progress)


def scores_of(results: list[AttackResult]) -> list[tuple]:
    return [(r.attack, r.target, r.scores.tolist(), r.labels.tolist()) for r in results]


def check_attack_deterministic(world: World, name: str) -> None:
    """Two runs, each training its own shadow models (fresh memo, no store), score every sample alike."""
    a, b = run_attack(world, name)[1], run_attack(world, name)[1]
    assert json.dumps(scores_of(a)) == json.dumps(scores_of(b)), f"{name}: scores differ between two runs"


def check_attack_leaves_models(world: World, name: str) -> None:
    before = {k: state(m) for k, m in world.exp.models.items()}
    ctx, _ = run_attack(world, name)
    for k, m in world.exp.models.items():
        assert_same_state(before[k], state(m), f"{k} after {name}")


def check_attack_output(world: World, name: str) -> None:
    _, results = run_attack(world, name)
    assert results and all(isinstance(r, AttackResult) for r in results)
    for r in results:
        n = len(r.scores)
        assert n > 0 and r.scores.shape == (n,) and r.labels.shape == (n,), f"{r.attack}: scores/labels shapes"
        assert set(np.unique(r.labels)) <= {0, 1}, f"{r.attack}: labels other than 0/1"
        assert r.sample_ids is None or len(r.sample_ids) == n
        assert all(len(v) == n for v in r.groups.values()), f"{r.attack}: a group tag per sample"
        assert r.target == "finetune"
        d = r.to_dict()
        assert jsonable(json.loads(json.dumps(d, default=str))) is not None
        json.dumps(d, allow_nan=True)


def check_attack_cancels(world: World, name: str) -> None:
    store = ModelStore(world.store.root / f"cancel-{name}")
    assert_cancels(lambda p: run_attack(world, name, p, store), name)
    assert not no_temporary_files(store)


def check_attack_round_trip(world: World, name: str) -> None:
    """Results through the result cache come back equal, and their JSON form is plain JSON."""
    _, results = run_attack(world, name)
    key = f"conformance-attack-{name}"
    assert world.store.save_result(key, results), f"{name}: results the result cache refuses"
    back = world.store.load_result(key)
    assert [r.to_dict() for r in back] == [r.to_dict() for r in results]


def check_attack_params(world: World, name: str) -> None:
    check_params_declared(attacks.get(name))


ATTACK_CHECKS = [check_attack_params, check_attack_output, check_attack_deterministic, check_attack_leaves_models,
                 check_attack_cancels, check_attack_round_trip]


# -- probes -----------------------------------------------------------------------------------------------------

def measure(world: World, name: str) -> Readings:
    """One probe on θ_o, θ_r and the finetuned model, with a context of its own and no memo of an earlier run."""
    clear_memos()
    exp = world.exp
    ctx = ProbeContext.from_experiment(exp, ProbeData.from_experiment(exp, retain_sample=128))
    cls = probes.get(name)
    if not cls.info().applies(ctx.class_wise):
        pytest.skip(f"{name}: applies to {cls.forgetting}-wise forgetting only")
    return cls(**cheapest(cls.params)).measure(ctx, {k: exp.models[k] for k in ("original", "retrain", "finetune")})


def check_probe_deterministic(world: World, name: str) -> None:
    a, b = measure(world, name), measure(world, name)
    assert json.dumps(a.to_dict()) == json.dumps(b.to_dict()), f"{name}: readings differ between two runs"


def check_probe_leaves_models(world: World, name: str) -> None:
    before = {k: state(m) for k, m in world.exp.models.items()}
    measure(world, name)
    for k, m in world.exp.models.items():
        assert_same_state(before[k], state(m), f"{k} after {name}")


def check_probe_output(world: World, name: str) -> None:
    """One value per model (one per layer for per-layer probes), inside the declared range, and a `ProbeInfo`
    the verdict can read."""
    r = measure(world, name)
    info = probes.get(name).info()
    assert isinstance(r, Readings) and r.probe == name
    assert set(r.values) == {"original", "retrain", "finetune"}
    width = len(r.layers) if info.per_layer else 1
    assert not info.per_layer or r.layers, f"{name}: per-layer probe without layers"
    for model, v in r.values.items():
        assert len(v) == width, f"{name}: {len(v)} values for {model}, expected {width}"
        finite = [x for x in v if np.isfinite(x)]
        assert all(info.lo - 1e-9 <= x <= info.hi + 1e-9 for x in finite), \
            f"{name}: {model} reads {v}, outside the declared [{info.lo}, {info.hi}]"
    assert r.resolution >= 0 and info.direction in (-1, 1) and info.label and info.caption


def check_probe_round_trip(world: World, name: str) -> None:
    r = measure(world, name)
    assert jsonable(r.to_dict()) == r.to_dict()
    key = f"conformance-probe-{name}"
    assert world.store.save_result(key, r), f"{name}: readings the result cache refuses"
    assert world.store.load_result(key).to_dict() == r.to_dict()


def check_probe_params(world: World, name: str) -> None:
    check_params_declared(probes.get(name))


PROBE_CHECKS = [check_probe_params, check_probe_output, check_probe_deterministic, check_probe_leaves_models,
                check_probe_round_trip]


# -- models ------------------------------------------------------------------------------------------------------

def model_options(name: str) -> dict[str, Any]:
    """The narrowest width an architecture declares, where it has one (a CPU-sized ResNet or VGG)."""
    return {"width": 1 / 16} if "width" in inspect.signature(models.get(name)).parameters else {}


SHAPE, CLASSES = (3, 32, 32), 5


def build(name: str, seed: int = 0) -> nn.Module:
    return build_model(name, SHAPE, CLASSES, seed=seed, **model_options(name)).eval()


def check_model_deterministic(world: World, name: str) -> None:
    assert_same_state(state(build(name, 3)), state(build(name, 3)), f"{name} built twice with seed 3")
    assert any(not torch.equal(a, b) for a, b in zip(state(build(name, 3)).values(), state(build(name, 4)).values()))


def check_model_output(world: World, name: str) -> None:
    """Logits of shape (N, classes), probe-able layers ending in the head, whose output is the logits."""
    model = build(name)
    X = torch.randn(4, *SHAPE, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        logits = model(X)
        acts = layer_outputs(model, X)
    assert logits.shape == (4, CLASSES) and torch.isfinite(logits).all()
    assert list(acts) == model.layer_names and model.layer_names[-1] == "head"
    assert model.hidden_layer_names == model.layer_names[:-1]
    assert torch.allclose(acts["head"].reshape(4, -1), logits, atol=1e-5)
    assert model.features(X).shape[0] == 4


def check_model_cancels(world: World, name: str) -> None:
    model = build(name)
    X = torch.randn(16, *SHAPE, generator=torch.Generator().manual_seed(0))
    y = torch.arange(16) % CLASSES
    before = state(model)
    assert_cancels(lambda p: train(model, X, y, Recipe(epochs=2, batch_size=8), progress=p), name)
    assert all(torch.isfinite(v).all() for v in state(model).values() if v.is_floating_point())
    assert before.keys() == state(model).keys()


def check_model_round_trip(world: World, name: str) -> None:
    model = build(name)
    world.store.save(f"conformance-model-{name}", model, {"seconds": 1.0})
    back, meta = world.store.load(f"conformance-model-{name}", build(name, seed=99))
    assert_same_state(state(model), state(back), f"{name} through the model cache")
    assert meta == {"seconds": 1.0}


def check_model_params(world: World, name: str) -> None:
    """Unknown options and badly typed ones are refused with one line naming them."""
    with pytest.raises(ResidueError) as err:
        check_model_options(name, {"no_such_option": 1})
    assert_one_line_naming(err, "no_such_option", name)
    for option in model_options(name) or check_model_options(name, {}):
        with pytest.raises(ResidueError) as err:
            check_model_options(name, {option: "many"})
        assert_one_line_naming(err, option, f"{name} {option}")


MODEL_CHECKS = [check_model_params, check_model_output, check_model_deterministic, check_model_cancels,
                check_model_round_trip]


# -- datasets ----------------------------------------------------------------------------------------------------

def loaded(world: World, name: str) -> Dataset:
    """The dataset with its default options or, for a loader that reads files, from its declared example written
    afresh into a folder of the world's data directory. A loader that cannot load either way fails: one that reads
    files must declare an example, so it cannot slip through these checks for want of files."""
    with pytest.MonkeyPatch.context() as mp:  # this machine's own data directory plays no part
        mp.setenv("RESIDUE_DATA", str(world.data))
        if reads_files(name):
            return load_dataset(name, **write_example(name, tempfile.mkdtemp(prefix=f"{name}-", dir=world.data)))
        try:
            return load_dataset(name)
        except ResidueError as e:
            pytest.fail(f"dataset '{name}' does not load with its default options ({e}); if it reads files, declare "
                        f"a tiny example of them with core.data.base.example so the conformance suite can load it")


def check_dataset_deterministic(world: World, name: str) -> None:
    """Loaded twice (example files written twice), the same arrays."""
    a, b = loaded(world, name), loaded(world, name)
    assert np.array_equal(a.X, b.X) and np.array_equal(a.y, b.y), f"{name}: two loads differ"
    assert a.class_names == b.class_names and a.kind == b.kind


def check_dataset_output(world: World, name: str) -> None:
    d = loaded(world, name)
    assert d.X.dtype == np.float32 and d.y.dtype == np.int64 and len(d.X) == len(d.y)
    assert d.X.ndim in (2, 4) and sorted(set(d.y.tolist())) == list(range(d.n_classes))
    assert len(d.class_names) == d.n_classes
    assert d.kind in ("image", "tabular", "2d") and (d.kind == "image") == (d.X.ndim == 4)


def check_dataset_params(world: World, name: str) -> None:
    with pytest.raises(ResidueError) as err:
        check_dataset_options(name, {"no_such_option": 1})
    assert_one_line_naming(err, "no_such_option", name)


DATASET_CHECKS = [check_dataset_params, check_dataset_output, check_dataset_deterministic]


# -- parametrisation: every registered entry, every check of its kind ---------------------------------------------

SUITES = {"method": (methods, METHOD_CHECKS), "attack": (attacks, ATTACK_CHECKS), "probe": (probes, PROBE_CHECKS),
          "model": (models, MODEL_CHECKS), "dataset": (datasets, DATASET_CHECKS)}

# entries that break a rule for a reason that is no bug; each xfail is strict, so a fix shows up as a failure
KNOWN: dict[tuple[str, str], str] = {}


def cases() -> Iterator[Any]:
    for kind, (registry, checks) in SUITES.items():
        for name in registry.names():
            for check in checks:
                marks = [pytest.mark.xfail(strict=True, reason=KNOWN[name, check.__name__])] \
                    if (name, check.__name__) in KNOWN else []
                yield pytest.param(name, check, id=f"{kind}:{name}:{check.__name__.split('_', 2)[2]}", marks=marks)


@pytest.mark.parametrize("name, check", list(cases()))
def test_conformance(world: World, name: str, check: Callable[[World, str], None]) -> None:
    check(world, name)


# -- a plug-in that breaks a rule fails without anyone editing a test list ----------------------------------------

class Broken(Method):
    """A method that forgets by editing θ_o in place and draws its noise from the global generator."""

    name = "conformance_broken"
    params = (Param("epochs", 1, 1, 3, "passes"),)

    def unlearn(self, model, task, progress=None):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn(p.shape) * 1e-3)
        return UnlearnResult(copy.deepcopy(model).eval(), 0.0)


class Unstoppable(Method):
    """A method that never reports progress, so Stop cannot reach it, and takes any epochs at all."""

    name = "conformance_unstoppable"
    params = (Param("epochs", 1, 1, 3, "passes"),)

    def __init__(self, **hyper):
        self.hp = {"epochs": hyper.get("epochs", 1)}

    def _run(self, model, task, loop):
        return None


@pytest.fixture
def broken_plugins():
    names = []
    for cls in (Broken, Unstoppable):
        register(cls)
        names.append(cls.name)
    yield names
    for n in names:
        methods.unregister(n)


def test_broken_plugins_are_collected_and_caught(world, broken_plugins):
    collected = {p.values[0] for p in cases()}
    assert set(broken_plugins) <= collected  # picked up from the registry, no list edited
    original = state(world.original)
    try:
        with pytest.raises(AssertionError, match="changed"):
            check_method_leaves_original(world, "conformance_broken")
        with pytest.raises(AssertionError, match="changed"):
            check_method_deterministic(world, "conformance_broken")
    finally:
        world.original.load_state_dict(original)  # the broken method did edit the shared θ_o
    with pytest.raises(pytest.fail.Exception):  # "DID NOT RAISE Cancelled"
        check_method_cancels(world, "conformance_unstoppable")
    with pytest.raises(pytest.fail.Exception):  # epochs=0 and an unknown name are taken
        check_method_params(world, "conformance_unstoppable")
    check_method_output(world, "conformance_unstoppable")  # the checks are not simply failing everything


def test_registry_unregister_is_public_and_refuses_unknown_names():
    with pytest.raises(ResidueError, match="no_such"):
        methods.unregister("no_such")


# -- a dataset loader that reads files but declares no example fails, it is not skipped -------------------------

@pytest.fixture
def file_loader_without_example():
    from core.data.files import resolve_user_path

    @datasets.register("conformance_files")
    def conformance_files(folder: str | None = None) -> Dataset:
        """Reads a folder of the user's, and declares no example of it."""
        root = resolve_user_path(folder or "conformance-files")
        return Dataset("conformance_files", np.load(root / "X.npy"), np.load(root / "y.npy"), 0)

    yield "conformance_files"
    datasets.unregister("conformance_files")


def test_a_file_loader_without_an_example_fails_the_suite(world, file_loader_without_example):
    name = file_loader_without_example
    assert name in {p.values[0] for p in cases()}  # picked up from the registry, no list edited
    for check in (check_dataset_output, check_dataset_deterministic):
        with pytest.raises(pytest.fail.Exception, match="declare a tiny example"):
            check(world, name)
