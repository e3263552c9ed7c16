"""Relearning speed (the class-wise Reminiscence attack's signal) as a measure with a band (science.md §3.1).

Residuals let a forgotten class be re-learned much faster than a class a model never saw. Every model —
θ_o, θ_r, each unlearned model, every yardstick retrain and every control — is fine-tuned with the *same*
protocol as the class-wise reminiscence attack (`core.attacks.reminiscence_class`: one probe image of the
forgotten class per SGD step, mixed with a retain batch, over several probe draws and learning rates; all runs
of all models in one batch), so relearning speed gets a retrain band like any other measure. The value is the
area under the probe-accuracy curve (mean accuracy over steps 0..max_steps): continuous, unlike the end-point
accuracy, which a retrain also reaches. The attack then reuses these runs for its own ROC.
"""
from __future__ import annotations

import numpy as np

from ..attacks.reminiscence_class import RELEARN_PARAMS, relearn, relearn_protocol
from .base import Probe, ProbeContext, Readings, register


@register
class RelearningSpeed(Probe):
    name = "relearning"
    label = "relearning speed (ReA area)"
    family = "functional"
    direction = +1
    forgetting = "class"
    abs_tol = 0.02
    reading = True
    caption = ("How fast the forgotten class comes back when the model is fine-tuned on a few of its images, one per "
               "step with a retain batch (the class-wise reminiscence attack's protocol): the mean probe accuracy over "
               "the steps. θ_r never saw the class and re-learns it slowly; residuals make it come back fast.")
    params = RELEARN_PARAMS

    def measure(self, ctx: ProbeContext, models: dict) -> Readings:
        rel = relearn(models, ctx.template_factory(ctx.seed), ctx.split, list(ctx.data.forget_classes),
                      **relearn_protocol(ctx.seed, self.hp))
        area = {n: [float(np.mean([r.area for r in rel.runs if r.model == n]))] for n in models}
        steps = {n: float(np.mean([r.steps for r in rel.runs if r.model == n])) for n in models}
        k = max(rel.probe_size.values()) if rel.probe_size else 1
        runs = max(1, len(rel.runs) // max(1, len(models)))
        return self._readings(area, None, 1.0 / (k * (rel.max_steps + 1) * runs),
                              extra={"mean_steps": steps, "max_steps": rel.max_steps, "threshold": rel.threshold,
                                     "notes": rel.notes})
