"""Loss barriers on D_f between a model and the references (science.md §3, the landscape's residual evidence).

On the straight line from the model to θ_o (or θ_r), the forget loss rises above the chord by a barrier
height (`core.probes.landscape.barrier`). A model still in θ_o's valley has a low barrier to θ_o; one in θ_r's
has a low barrier to θ_r. A straight line between two networks only means something when they share
coordinates, so both are read in θ_o's coordinates: compared with retrains that share θ_o's initialisation.
"""
from __future__ import annotations

import numpy as np
import torch

from ..params import Param
from .base import Probe, ProbeContext, Readings, register
from .landscape import Evaluator, barrier, flat_params


class _Barrier(Probe):
    family, unit, lo, hi = "functional", "nats", 0.0, float("inf")
    coordinates = "theta_o"
    abs_tol = 0.05
    ref: str = ""
    params = (Param("points", 11, 3, 101, "points on the line (both ends included)"),)

    def measure(self, ctx: ProbeContext, models: dict) -> Readings:
        ev = ctx.shared("barrier_evaluator", lambda: Evaluator(ctx.original, {"forget": ctx.data.forget}))
        ref = flat_params(ctx.original if self.ref == "o" else ctx.retrain)
        t = np.linspace(0, 1, self.hp["points"])
        out = {}
        for n, m in models.items():
            f = flat_params(m)
            res = ev.evaluate(f, (ref - f)[None], torch.as_tensor(t[:, None]))
            out[n] = [barrier(res["forget"], t)]
        return self._readings(out)


@register
class BarrierToOriginal(_Barrier):
    name, ref, direction = "barrier_o", "o", -1
    label = "forget-loss barrier to θ_o"
    caption = ("Height of the forget-loss bump on the straight line from the model to θ_o: near zero when the model "
               "still sits in θ_o's valley.")


@register
class BarrierToRetrain(_Barrier):
    name, ref, direction, against_retrain = "barrier_r", "r", +1, True
    label = "forget-loss barrier to θ_r"
    caption = ("Height of the forget-loss bump on the straight line from the model to θ_r: a model that truly "
               "moved to θ_r's valley has none.")
