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
(the modules landscape, patching and stability are exported as modules, not shadowed by their functions of the
same name). The probes sit below what reads them: `core.verdict` (yardstick, verdicts, this run's controls),
`core.trust` (control hit rates over >= 5 seeds) and `core.analysis` (everything a "Run everything" runs).
"""
from __future__ import annotations

from .base import ProbeContext, ProbeInfo, Readings, auc, get_probe, info, infos, probes
from .classes import ClassAccuracy, PredictionMatrix, class_accuracy, prediction_matrices, prediction_matrix
from .common import ProbeData, layer_outputs
from . import outputs, decodability, relearning, patching, barriers, stability, layers  # noqa: F401 (registers)
from .embedding import Embedding, embed, is_warm, warm_up
from . import landscape  # the module: landscape.landscape(), ...
from .landscape import Curve, Landscape, Plane, model_plane, path_curve, random_plane
from .layers import LayerReport, layer_probes, linear_cka
from .measures import measure, measure_all
from .patching import PatchingResult, depth_score
from .stability import Stability

__all__ = [
    "ClassAccuracy", "Curve", "Embedding", "Landscape", "LayerReport", "PatchingResult", "Plane",
    "PredictionMatrix", "ProbeContext", "ProbeData", "ProbeInfo", "Readings", "Stability",
    "auc", "class_accuracy", "depth_score", "embed", "get_probe", "info", "infos", "is_warm",
    "landscape", "layer_outputs", "layer_probes", "linear_cka", "measure", "measure_all", "model_plane",
    "path_curve", "patching", "prediction_matrices", "prediction_matrix", "probes", "random_plane",
    "stability", "warm_up",
]
