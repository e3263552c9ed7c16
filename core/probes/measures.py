"""One number per residual measure for any model, against fixed references θ_o and θ_r.

The verdict (seed-variance yardstick) and the trust AUCs (models that hold D_f vs models that never
saw it) both need the *same* measures on many models; they are defined once here, each with its
family and the direction in which it points to "still holds D_f":

* output:      what "looks converged" (forget / retain / test accuracy, JS divergence to θ_r on D_f);
               two-sided for accuracies (forgetting *more* than a retrain also differs),
* functional:  residual evidence that may decide a verdict (linear-probe decodability, bounce-back
               under benign fine-tuning, quick relearning, loss barriers),
* context:     where the model sits (weight distance, CKA), attribution mass and the patching depth:
               shown with their trust AUC, never deciding a verdict.

`scratch_models` trains many from-scratch models at once (`core.batched.train_many`, which matches
`core.training.train` exactly) and stores each under the key `Experiment.train_model` uses, so a
yardstick retrain trained here is the same cached model everywhere.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from torch import nn

from .. import metrics
from ..progress import Progress, as_progress
from .common import ProbeData
from .landscape import Evaluator, flat_params, barrier
from .layers import LayerProber
from .stability import bounce_back, grad_norm, relearn


@dataclass(frozen=True)
class Measure:
    name: str
    label: str
    family: str  # "output" | "functional" | "context"
    direction: int  # +1: higher = holds D_f; -1: lower = holds D_f; 0: two-sided (outputs)
    unit: str = ""
    abs_tol: float = 0.0  # added to the yardstick spread before calling a value "beyond" it


MEASURES: dict[str, Measure] = {m.name: m for m in [
    Measure("forget_acc", "forget accuracy", "output", 0, "", 0.02),
    Measure("retain_acc", "retain accuracy", "output", 0, "", 0.02),
    Measure("test_acc", "test accuracy", "output", 0, "", 0.02),
    Measure("js_to_retrain", "JS divergence to θ_r on D_f", "output", +1, "nats", 0.02),
    Measure("probe_acc", "linear-probe accuracy on D_f (best hidden layer)", "functional", +1, "", 0.01),
    Measure("bounce_acc", "forget accuracy after benign fine-tuning on D_r", "functional", +1, "", 0.02),
    Measure("relearn_acc", "forget accuracy after few-shot relearning", "functional", +1, "", 0.02),
    Measure("barrier_o_forget", "forget-loss barrier to θ_o", "functional", -1, "nats", 0.05),
    Measure("barrier_r_forget", "forget-loss barrier to θ_r", "functional", +1, "nats", 0.05),
    Measure("grad_norm", "gradient norm on D_r", "context", +1, "", 0.0),
    Measure("weight_dist_o", "relative weight distance to θ_o", "context", -1, "", 0.0),
    Measure("weight_dist_r", "relative weight distance to θ_r", "context", +1, "", 0.0),
    Measure("cka_o", "linear CKA to θ_o on D_f (mean over hidden layers)", "context", +1, "", 0.0),
    Measure("attribution", "attribution mass on D_f (mean over hidden layers)", "context", +1, "", 0.0),
    Measure("depth", "unlearning depth score (patching)", "context", -1, "", 0.0),
]}


class MeasureSet:
    """Computes every measure of `MEASURES` for models compared with fixed θ_o, θ_r on fixed data."""

    def __init__(self, original: nn.Module, retrain: nn.Module, data: ProbeData, bounce_steps: int = 30,
                 relearn_shots: int = 5, relearn_steps: int = 10, line_points: int = 11, seed: int = 0,
                 **layer_options):
        self.original, self.retrain, self.data = original.eval(), retrain.eval(), data
        self.prober = LayerProber(original, retrain, data, **layer_options)
        self.p_retrain = metrics.probs(retrain, data.forget[0])
        self.bounce_steps, self.relearn_shots, self.relearn_steps = bounce_steps, relearn_shots, relearn_steps
        self.line_points, self.seed = line_points, seed
        self.evaluator = Evaluator(original, {"forget": data.forget, "retain": data.retain_sample})
        self.flat_o, self.flat_r = flat_params(original), flat_params(retrain)
        self.seconds: dict[str, float] = {}

    def _timed(self, key: str, fn: Callable):
        t = time.perf_counter()
        out = fn()
        self.seconds[key] = self.seconds.get(key, 0.0) + time.perf_counter() - t
        return out

    def outputs(self, model: nn.Module) -> dict[str, float]:
        d = self.data
        p = metrics.probs(model, d.forget[0])
        return {"forget_acc": metrics.accuracy(model, *d.forget), "retain_acc": metrics.accuracy(model, *d.retain),
                "test_acc": metrics.accuracy(model, *d.test), "js_to_retrain": metrics.js_divergence(self.p_retrain, p)}

    def barriers(self, model: nn.Module) -> dict[str, float]:
        f = flat_params(model)
        t = np.linspace(0, 1, self.line_points)
        out = {}
        for ref, flat_ref in (("o", self.flat_o), ("r", self.flat_r)):
            res = self.evaluator.evaluate(f, (flat_ref - f)[None], torch.as_tensor(t[:, None]))
            out[f"barrier_{ref}_forget"] = barrier(res["forget"], t)
        return out

    def stability(self, model: nn.Module) -> dict[str, float]:
        out = {"grad_norm": grad_norm(model, *self.data.retain)}
        _, f_acc, _ = bounce_back(model, self.data, self.bounce_steps, seed=self.seed)
        out["bounce_acc"] = f_acc[-1]
        _, acc = relearn(model, self.data, self.relearn_shots, self.relearn_steps, seed=self.seed)
        out["relearn_acc"] = acc[-1] if acc else float("nan")
        return out

    def layers(self, model: nn.Module, name: str = "model"):
        return self.prober.probe(name, model)

    def __call__(self, model: nn.Module, name: str = "model", layer_probe=None) -> dict[str, float]:
        """Every measure of `model`; pass an already computed `LayerProbe` to reuse it."""
        model.eval()
        out = self._timed("outputs", lambda: self.outputs(model))
        lp = layer_probe if layer_probe is not None else self._timed("layers", lambda: self.layers(model, name))
        out.update(lp.summary())
        out.update(self._timed("landscape", lambda: self.barriers(model)))
        out.update(self._timed("stability", lambda: self.stability(model)))
        return {k: float(out[k]) for k in MEASURES}


# -- many from-scratch models at once, cached like Experiment.train_model --------------------------
def scratch_models(exp, specs: list[tuple[str, int, int]], progress: Progress | None = None,
                   stage: str = "yardstick models") -> list[nn.Module]:
    """Models trained from scratch on `part` ('train' or 'retain') with (init seed, order seed), as
    `exp.train_model` would train them, batched over the ones not yet in the cache."""
    from ..batched import init_many, train_many, unstack
    from ..cache import stable_hash
    from ..experiment import _idx_hash

    progress = as_progress(progress)
    split = exp.prepare()
    base = exp._base_key()
    out: list[nn.Module | None] = [None] * len(specs)
    todo: dict[str, list[int]] = {}
    keys = []
    for i, (part, init, order) in enumerate(specs):
        parts = {**base, "kind": "scratch", "on": _idx_hash(getattr(split, part)), "init": int(init),
                 "order": int(order)}
        keys.append(stable_hash(parts))
        found = exp.store.load(keys[-1], exp.fresh_model(init))
        if found is not None:
            out[i] = found[0].to(exp.device).eval()
        else:
            todo.setdefault(part, []).append(i)
    for part, idx in todo.items():
        X, y = split.tensors(part)
        template = exp.fresh_model(specs[idx[0]][1])
        init = init_many(exp.fresh_model, [specs[i][1] for i in idx])
        start = time.perf_counter()
        params = train_many(template, init, X, y, [np.arange(len(y))] * len(idx), exp.config.recipe,
                            [specs[i][2] for i in idx], progress, f"{stage} ({len(idx)} on {part})")
        seconds = (time.perf_counter() - start) / len(idx)
        for i, m in zip(idx, unstack(params, template)):
            m = m.to(exp.device).eval()
            exp.store.save(keys[i], m, {"seconds": seconds, "batched": True})
            out[i] = m
    return out  # type: ignore[return-value]


def finetuned(exp, model: nn.Module, epochs: int = 1, lr: float = 1e-3) -> nn.Module:
    """θ fine-tuned briefly on D_r (the registered `finetune` method): a model that still holds D_f."""
    from ..unlearn import get_method

    return get_method("finetune", epochs=epochs, lr=lr).unlearn(model, exp.task()).model.eval()
