from __future__ import annotations

import torch.nn.functional as F

from .base import Method, Param, fine_tune_params, register


@register
class NegGradPlus(Method):
    """NegGrad+: minimise α·CE(D_r) − (1−α)·CE(D_f) (Kurmanji et al. 2023, "Towards Unbounded Machine
    Unlearning", the strengthened NegGrad baseline).

    Why: plain gradient ascent on D_f has nothing holding the rest of the model in place, so it wrecks
    retain accuracy before (or while) it forgets. Pairing every ascent step on a forget batch with a
    descent step on a retain batch keeps what must stay; α sets the balance. The ascent term is still
    unbounded, so the divergence guard watches it like it watches plain NegGrad."""

    name = "neggrad_plus"
    title = "NegGrad+"
    summary = "Descend on the retain set while ascending on the forget set (weighted by alpha)."
    reference = "Kurmanji, Triantafillou, Hayes, Triantafillou. Towards Unbounded Machine Unlearning. NeurIPS 2023."
    params = (
        Param("alpha", 0.95, 0.0, 1.0, "weight of the retain loss; 1 − alpha weighs the ascent on the forget set"),
    ) + fine_tune_params()

    def _run(self, model, task, loop):
        hp = self.hp
        a = hp["alpha"]
        s = self._schedule(model.parameters(), task, loop)
        for _ in range(s.steps):
            Xr, yr = next(s.retain)
            Xf, yf = next(s.forget)
            retain_loss = F.cross_entropy(model(Xr), yr)
            forget_loss = F.cross_entropy(model(Xf), yf)
            loss = a * retain_loss - (1 - a) * forget_loss
            loop.step(loss, s.optimizer, forget_loss=forget_loss.detach(), retain_loss=retain_loss.detach())
