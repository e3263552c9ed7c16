"""Residual probes (science.md §3): what an unlearned model still carries, read beside θ_o and θ_r.

Every measure is a registered probe (`core.probes.base`: one class, declared hyperparameters, one metadata
record, one verb `measure(ctx, models) -> Readings`), so the verdict, the heatmap and the report read the
same definitions:

    from core.probes import ProbeContext, get_probe, infos
    ctx = ProbeContext.from_experiment(exp)
    get_probe("decodability").measure(ctx, exp.models)      # per hidden layer, per model
    [i.label for i in infos(family="functional")]

Registered (in this order): outputs (forget / retain / test accuracy, true-label probability, MIA-efficacy,
JS to θ_r), decodability (and its AUC), relearning speed, depth (patching) and the per-layer patching ratio
and drop, loss barriers to θ_o and θ_r, bounce-back and gradient norm, weight distances, CKA, attribution.

Other pieces, each returning a plain dataclass with `to_dict()`:
    layer_probes(models, data)                   -> LayerReport   (every per-layer measure, the depth score)
    landscape.landscape(original, unlearned, retrain, data)-> Landscape (1-D curve, model plane, random plane)
    stability.stability(model, data)             -> Stability     (grad norm, bounce-back curve)
    class_accuracy(models, split) / prediction_matrices(...)
    embed(models, data)                          -> Embedding     (shared UMAP; warm_up() at start-up)
    trust.trust(exp)                             -> TrustReport   (control hit rates over >= 5 seeds)
    core.verdict.verdicts(exp, ...)              -> VerdictReport (yardstick, verdicts, this run's controls)
(the modules landscape, patching, stability and trust are exported as modules, not shadowed by their
functions of the same name).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from ..progress import Progress, as_progress
from .base import ProbeContext, ProbeInfo, Readings, auc, get_probe, info, infos, probes
from .classes import ClassAccuracy, PredictionMatrix, class_accuracy, prediction_matrices, prediction_matrix
from .common import ProbeData, layer_outputs
from . import outputs, decodability, relearning, patching, barriers, stability, layers  # noqa: F401 (registers)
from .embedding import Embedding, embed, is_warm, warm_up
from . import landscape, trust  # modules: landscape.landscape(), trust.trust(), ...
from .landscape import Curve, Landscape, Plane, model_plane, path_curve, random_plane
from .layers import LayerReport, layer_probes, linear_cka
from .measures import measure, measure_all
from .patching import PatchingResult, depth_score
from .stability import Stability
from .trust import TrustReport


@dataclass
class ResidualReport:
    """Everything the residual views draw, for the methods of one experiment."""

    layers: LayerReport
    stability: dict[str, Stability]
    landscapes: dict[str, Landscape]
    classes: ClassAccuracy
    predictions: dict[str, PredictionMatrix]
    verdict: Any = None  # core.verdict.VerdictReport
    trust: TrustReport | None = None
    embedding: Embedding | None = None
    seconds: dict[str, float] = field(default_factory=dict)

    def sections(self) -> dict[str, Any]:
        """JSON-able sections for `core.results.Results.sections`."""
        out = {"residuals": {"layers": self.layers.to_dict(),
                             "stability": {k: v.to_dict() for k, v in self.stability.items()},
                             "landscapes": {k: v.to_dict() for k, v in self.landscapes.items()},
                             "seconds": self.seconds},
               "classes": {"accuracy": self.classes.to_dict(),
                           "predictions": {k: v.to_dict() for k, v in self.predictions.items()}}}
        if self.verdict is not None:
            out["verdict"] = self.verdict.to_dict()
        if self.trust is not None:
            out["trust"] = self.trust.to_dict()
        if self.embedding is not None:
            out["embedding"] = self.embedding.to_dict()
        return out

    def to_dict(self) -> dict[str, Any]:
        return self.sections()


def residuals(exp, names: list[str] | None = None, landscapes: bool = True, with_random_plane: bool = True,
              n_grid: int = 31, verdict: bool = True, with_trust: bool = False, n_trust_seeds: int = 5,
              with_embedding: bool = False, progress: Progress | None = None) -> ResidualReport:
    """Run the residual probes on an experiment that has run (`exp.models` filled).

    `names`: the unlearned models to probe (default: every model but θ_o and θ_r). The verdict trains a
    few extra retrains and its controls (cached); trust repeats the verdict's controls over several seeds
    and is off by default."""
    from ..verdict import verdicts

    progress = as_progress(progress)
    secs: dict[str, float] = {}
    ctx = ProbeContext.from_experiment(exp)
    data = ctx.data
    names = names or [n for n in exp.models if n not in ("original", "retrain")]
    models = {k: exp.models[k] for k in ["original", "retrain", *names]}
    t = time.perf_counter()
    lr = layer_probes(models, ctx, progress=progress.scoped("layers"))
    secs["layers"] = time.perf_counter() - t
    t = time.perf_counter()
    stab = {k: stability.stability(m, data, k, seed=exp.config.seed) for k, m in models.items()}
    secs["stability"] = time.perf_counter() - t
    t = time.perf_counter()
    lands = {}
    if landscapes:
        for i, n in enumerate(names):
            lands[n] = landscape.landscape(models["original"], models[n], models["retrain"], data, n, n_grid,
                                           with_random_plane, exp.config.seed)
            progress("landscape", i + 1, len(names))
    secs["landscape"] = time.perf_counter() - t
    split = exp.prepare()
    t = time.perf_counter()
    classes = class_accuracy(models, split)
    preds = prediction_matrices(models, split, ["retrain", *names])
    secs["classes"] = time.perf_counter() - t
    tr = None
    if with_trust:
        t = time.perf_counter()
        tr = trust.trust(exp, n_trust_seeds, progress=progress.scoped("trust"))
        lr.trust = {k: e.to_dict() for k, e in tr.entries.items()}
        secs["trust"] = time.perf_counter() - t
    vr = None
    if verdict:
        t = time.perf_counter()
        vr = verdicts(exp, ["retrain", *names], trust=tr, ctx=ctx, progress=progress.scoped("verdict"))
        secs["verdict"] = time.perf_counter() - t
    emb = None
    if with_embedding:
        t = time.perf_counter()
        emb = embed(models, data, seed=exp.config.seed)
        secs["embedding"] = time.perf_counter() - t
    return ResidualReport(lr, stab, lands, classes, preds, vr, tr, emb, secs)


__all__ = [
    "ClassAccuracy", "Curve", "Embedding", "Landscape", "LayerReport", "PatchingResult", "Plane",
    "PredictionMatrix", "ProbeContext", "ProbeData", "ProbeInfo", "Readings", "ResidualReport", "Stability",
    "TrustReport", "auc", "class_accuracy", "depth_score", "embed", "get_probe", "info", "infos", "is_warm",
    "landscape", "layer_outputs", "layer_probes", "linear_cka", "measure", "measure_all", "model_plane",
    "path_curve", "patching", "prediction_matrices", "prediction_matrix", "probes", "random_plane", "residuals",
    "stability", "trust", "warm_up",
]
