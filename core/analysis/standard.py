"""The analyses "Run everything" runs on a finished experiment (the dashboard and the command line alike),
registered with `core.analysis.base` when this module is imported.

Each is `compute(run, progress, **settings)`; its engine modules are imported lazily, so a view whose
engine is missing says what it waits for instead of failing. "Run everything" computes, in the
order registered here, every analysis marked for it with its default settings; pages ask again with
their own settings (memoised per run and settings, so only what a changed setting touches is redone).
The order puts the cheap output-level views first, so pages fill in quickly while the rest goes on.
Expensive extras (trust AUCs, the unlearning-leak attack) are not in "Run everything": pages offer them
behind an explicit button.
"""
from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ResidueError
from .base import Run, analysis, cached_analysis, methods, register

# Attacks computed by "Run everything" (the others run when chosen on the Attacks page). The shadow
# models of LiRA are shared by the threshold MIA and the sample-wise reminiscence attack; the class-wise
# reminiscence attack is the Reminiscence view (class forgetting only).
RUN_EVERYTHING_ATTACKS = ("privacy_score", "mia_efficacy", "lira", "mia_threshold", "rea_sample", "rea_class")
# modules that define each engine piece (an analysis is available once they import)
PROBES = ("core.probes",)


def _summary(obj: Any) -> Any:
    return obj.to_dict() if hasattr(obj, "to_dict") else obj


@dataclass
class PerModel:
    """One engine result per unlearned model (landscapes, residual-knowledge sweeps)."""

    by_model: dict[str, Any]
    settings: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"settings": self.settings, "by_model": {k: _summary(v) for k, v in self.by_model.items()}}


# ---------------------------------------------------------------------------------------------
# shared inputs (never in "Run everything": the analyses below ask for them)
# ---------------------------------------------------------------------------------------------
@register("probe_data", "Probe data", PROBES, "core/probes", in_run_everything=False, persist=False)
def _probe_data(run, progress):
    from ..probes import ProbeData

    return ProbeData.from_experiment(run.exp)


@register("probe_context", "Probe context", PROBES, "core/probes", in_run_everything=False, persist=False)
def _probe_context(run, progress):
    """θ_o, θ_r and the probe data, with the activations several measures share (heatmap and verdict alike)."""
    from ..probes import ProbeContext

    return ProbeContext.from_experiment(run.exp, analysis(run, "probe_data"))


@register("attack_context", "Attack context", ("core.attacks",), "core/attacks", in_run_everything=False,
              persist=False)
def _attack_context(run, progress):
    from ..attacks import AttackContext

    return AttackContext.from_experiment(run.exp)


# ---------------------------------------------------------------------------------------------
# output level: class views
# ---------------------------------------------------------------------------------------------
@dataclass
class ClassViews:
    accuracy: Any  # core.probes.ClassAccuracy
    predictions: dict[str, Any]  # model -> core.probes.PredictionMatrix (test + forget)

    def to_dict(self) -> dict[str, Any]:
        return {"accuracy": self.accuracy.to_dict(), "predictions": {k: v.to_dict() for k, v in self.predictions.items()}}


@register("classes", "Class views", PROBES, "core/probes/classes.py")
def _classes(run, progress):
    from ..probes import class_accuracy, prediction_matrices

    split = run.exp.prepare()
    models = dict(run.exp.models)
    return ClassViews(class_accuracy(models, split), prediction_matrices(models, split, list(models)))


# ---------------------------------------------------------------------------------------------
# residual level: verdict (with this run's controls), layer probes, five-seed controls
# ---------------------------------------------------------------------------------------------
@register("verdict", "Verdict and controls", ("core.verdict", *PROBES),
              "core/verdict.py (the seed-variance yardstick)",
              defaults={"with_trust": False, "n_order": 2, "n_init": 2})
def _verdict(run, progress, with_trust: bool, n_order: int, n_init: int):
    """Every probe on every model, the yardstick retrains (`n_order` with θ_o's initialisation and another data
    order, `n_init` with another initialisation; the science report's grid sets them) and this run's controls: the
    relearning runs it makes are then reused by the class-wise reminiscence attack."""
    from ..verdict import verdicts

    return verdicts(run.exp, ["retrain", *methods(run)], n_order=int(n_order), n_init=int(n_init),
                    trust=computed_trust(run) if with_trust else None, ctx=analysis(run, "probe_context"),
                    progress=progress)


@register("residuals", "Residual heatmap", PROBES, "core/probes/layers.py",
              defaults={"attribution": "conductance", "patch_threshold": 0.05})
def _residuals(run, progress, attribution: str, patch_threshold: float):
    from ..probes import layer_probes

    return layer_probes(dict(run.exp.models), analysis(run, "probe_context"), progress=progress,
                        attribution=attribution, patch_threshold=float(patch_threshold))


@register("trust", "Five-seed controls", PROBES, "core/trust.py", in_run_everything=False,
              defaults={"n_seeds": 5})
def _trust(run, progress, n_seeds: int):
    from .. import trust

    return trust.trust(run.exp, int(n_seeds), progress=progress)


# ---------------------------------------------------------------------------------------------
# loss landscape
# ---------------------------------------------------------------------------------------------
def first_method(run: Run, settings: dict) -> dict:
    """`model=None` means the first unlearned model, so a page that picks it explicitly hits the same memo."""
    if settings.get("model") is None:
        names = methods(run)
        settings = {**settings, "model": names[0] if names else "retrain"}
    return settings


@register("landscape", "Loss landscape", PROBES, "core/probes/landscape.py",
              defaults={"model": None, "n_grid": 31, "random_plane": False}, resolve=first_method)
def _landscape(run, progress, model: str, n_grid: int, random_plane: bool):
    """One method per analysis (the first by default): each costs two or three grids of n_grid² points."""
    from ..probes import landscape

    data, m = analysis(run, "probe_data"), run.exp.models
    land = landscape.landscape(m["original"], m[model], m["retrain"], data, model, int(n_grid), bool(random_plane),
                               run.seed)
    return PerModel({model: land}, {"n_grid": n_grid, "random_plane": random_plane})


# ---------------------------------------------------------------------------------------------
# perturbation neighbourhood (RURK residual knowledge) and one sample
# ---------------------------------------------------------------------------------------------
@register("neighbourhood", "Perturbation neighbourhood", ("core.attacks.residual",), "core/attacks/residual.py",
              defaults={"n_radii": 8, "n_random": 8, "pgd_steps": 10})
def _neighbourhood(run, progress, n_radii: int, n_random: int, pgd_steps: int):
    from ..attacks.residual import residual_knowledge

    ctx = analysis(run, "attack_context")
    out = {}
    for i, n in enumerate(methods(run)):
        progress(f"residual knowledge of {n}", i, len(methods(run)))
        out[n] = residual_knowledge(ctx, n, n_radii=int(n_radii), n_random=int(n_random), pgd_steps=int(pgd_steps),
                                    progress=progress)
    return PerModel(out, {"n_radii": n_radii, "n_random": n_random, "pgd_steps": pgd_steps})


@register("sample_neighbourhood", "Neighbourhood of one sample", ("core.attacks.residual",),
              "core/attacks/residual.py", in_run_everything=False)
def _sample_neighbourhood(run, progress, target: str, sample_id: int, norm: str = "l2", radius: float | None = None):
    from ..attacks.residual import sample_neighbourhood

    return sample_neighbourhood(analysis(run, "attack_context"), target, int(sample_id), norm=norm, radius=radius,
                                seed=run.seed)


@dataclass
class SamplePredictions:
    """Each model's answer on one sample: predicted class and its probability, the true label's probability."""

    sample_id: int
    label: int
    part: str
    rows: list[dict[str, Any]]
    x: list[float]  # the input, flattened
    shape: list[int]  # its shape (images: (C, H, W) or (H, W))


@register("sample_predictions", "Predictions on one sample", PROBES, "core/probes", in_run_everything=False)
def _sample_predictions(run, progress, sample_id: int):
    import numpy as np

    from .. import metrics

    split = run.exp.prepare()
    X, y = split.tensors(np.array([int(sample_id)]))
    rows = []
    for name, model in run.exp.models.items():
        p = metrics.probs(model, X)[0]
        rows.append({"model": name, "predicts": int(p.argmax()), "p(predicted)": float(p.max()),
                     "p(true label)": float(p[int(y[0])])})
    part = "forget" if int(sample_id) in set(np.asarray(split.forget).tolist()) else "other"
    return SamplePredictions(int(sample_id), int(y[0]), part, rows, X[0].flatten().cpu().tolist(), list(X[0].shape))


# ---------------------------------------------------------------------------------------------
# embedding
# ---------------------------------------------------------------------------------------------
@register("embedding", "Embedding", ("core.probes.embedding",), "core/probes/embedding.py",
              defaults={"n_neighbors": 15, "min_dist": 0.1})
def _embedding(run, progress, n_neighbors: int, min_dist: float):
    from ..probes import embed

    return embed(dict(run.exp.models), analysis(run, "probe_data"), seed=run.seed, n_neighbors=int(n_neighbors),
                 min_dist=float(min_dist))


# ---------------------------------------------------------------------------------------------
# attacks: one analysis per registered attack, its settings = the attack's declared hyperparameters
# ---------------------------------------------------------------------------------------------
@dataclass
class AttackSet:
    """One attack with one set of hyperparameters, run against every model of the experiment."""

    attack: str
    hp: dict
    results: list = field(default_factory=list)  # core.attacks.AttackResult, one or more per target
    skipped: dict = field(default_factory=dict)  # target -> why the attack does not apply to it
    not_applicable: str | None = None  # why the attack does not apply to this run at all (then no results)

    def to_dict(self) -> dict[str, Any]:
        return {"attack": self.attack, "hp": self.hp, "skipped": self.skipped, "not_applicable": self.not_applicable,
                "results": [{"attack": r.attack, "target": r.target, "roc": {k: v for k, v in r.roc().to_dict().items()
                                                                           if k not in ("fpr", "tpr")},
                             "extra": r.extra, "reading": r.reading} for r in self.results]}


def attack_title(name: str) -> str:
    from ..attacks import attacks

    cls = attacks.get(name)
    return cls.title or name


def not_applicable(run: Run, attack: str) -> str | None:
    """Why an attack does not apply to this run ("needs class-wise forgetting"), or None when it does."""
    from ..attacks import attacks

    return attacks.get(attack).not_applicable(run.exp.prepare())


def _attack_compute(attack: str):
    def compute(run, progress, **hp) -> AttackSet:
        from ..attacks import get_attack
        atk = get_attack(attack, **hp)
        out = AttackSet(attack, dict(atk.hp), not_applicable=not_applicable(run, attack))
        if out.not_applicable is not None:  # no results, and no error: every view simply has none to show
            return out
        ctx = analysis(run, "attack_context")
        targets = run.model_names
        for i, target in enumerate(targets):
            progress(f"{attack} on {target}", i, len(targets))
            try:
                out.results.extend(atk.run(ctx, target, progress))
            except ResidueError as e:  # e.g. the reminiscence attack against its own reference
                out.skipped[target] = str(e)
        if not out.results and out.skipped:
            raise ResidueError(next(iter(out.skipped.values())))
        return out

    return compute


def _register_attacks() -> None:
    try:
        from ..attacks import attacks
    except ImportError:  # pragma: no cover - the attack package is part of the engine
        return
    names = [n for n in RUN_EVERYTHING_ATTACKS if n in attacks] + [n for n in attacks.names()
                                                                     if n not in RUN_EVERYTHING_ATTACKS]
    for name in names:
        cls = attacks.get(name)
        register(f"attack:{name}", cls.title or name, ("core.attacks",), "core/attacks",
                     in_run_everything=name in RUN_EVERYTHING_ATTACKS,
                     defaults={p.name: p.default for p in cls.params},
                     applies=lambda run, name=name: not_applicable(run, name) is None)(_attack_compute(name))


_register_attacks()


def computed_trust(run: Run):
    """The five-seed control hit rates of this run's setting: computed here if someone pressed the button, else
    the science report's when it ran this very setting (`published_trust`); None otherwise (never computes)."""
    return cached_analysis(run, "trust") or published_trust(run)


SCIENCE = Path(__file__).resolve().parents[2] / "reports" / "science.json"


def _setting(config: dict) -> dict:
    """What decides a run's models apart from its seed and its methods: data, forget set, model, recipe."""
    return {k: config.get(k) for k in ("data", "model", "recipe")}


@functools.lru_cache(maxsize=4)
def _published(mtime: float) -> list[tuple[dict, Any]]:
    """(setting, TrustReport) per scenario of the committed science report (read once per file version)."""
    from ..config import loads
    from ..trust import from_outcomes

    data = json.loads(SCIENCE.read_text(encoding="utf-8"))
    meta, by = data.get("meta", {}), {}
    for r in data.get("results", []):
        if r.get("controls"):
            by.setdefault(r["scenario"], []).append(r)
    out = []
    for jobs in by.values():
        tr = from_outcomes([j["controls"] for j in jobs], [j["seed"] for j in jobs],
                           {"source": f"the science report ({meta.get('command', 'bench/science.py')}, commit "
                                      f"{meta.get('commit', '?')})"})
        out.append((_setting(loads(jobs[0]["config"]).to_dict()), tr))
    return out


def published_trust(run: Run):
    """The science report's control hit rates for this run's setting, when the report ran it (else None)."""
    try:
        reports = _published(SCIENCE.stat().st_mtime)
    except (OSError, ValueError, KeyError, ResidueError):
        return None
    mine = _setting(run.config.to_dict())
    return next((tr for setting, tr in reports if setting == mine), None)


def umap_ready(run: Run, **settings) -> bool:
    """Can the embedding be shown without waiting for numba? (already computed, or UMAP compiled)"""
    from ..probes import is_warm

    return cached_analysis(run, "embedding", **settings) is not None or is_warm()


def warm_up_umap() -> None:
    """Compile UMAP's numba code in a background thread, once per process (the app calls it at start-up)."""
    try:
        from ..probes import warm_up
    except ImportError:  # pragma: no cover - the probes are part of the engine
        return
    warm_up(background=True)


# ---------------------------------------------------------------------------------------------
# forgetting quality as the NeurIPS 2023 competition scores it: last in "Run everything" (it trains pools of N
# models each, the most expensive analysis there, so every other view appears before it starts)
# ---------------------------------------------------------------------------------------------
def theta_o_learned(run: Run) -> bool:
    """A θ_o no better than the majority class (`results.warnings`) gets no score: every comparison is void."""
    return not run.results.warnings


@register("quality", "Forgetting quality", ("core.quality",), "core/quality",
              defaults={"n": 32, "protocol": "A"}, applies=theta_o_learned)
def _quality(run, progress, n: int, protocol: str):
    """Each method's F and final score against N retrains, between the ceiling and the floor (`core.quality`)."""
    from ..quality import quality

    if not theta_o_learned(run):
        raise ResidueError("No forgetting quality: " + " ".join(run.results.warnings))
    return quality(run.exp, n=int(n), protocol=protocol, progress=progress)


def protocol_text(report) -> tuple[str, str]:
    """(the report's protocol in one line, why a method with little randomness scores differently under A and B)."""
    from ..quality import PROTOCOL_NOTE, PROTOCOLS

    return f"Protocol {report.protocol}: {PROTOCOLS[report.protocol]}.", PROTOCOL_NOTE
