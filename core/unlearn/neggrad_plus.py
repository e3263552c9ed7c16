from __future__ import annotations

import torch.nn.functional as F

from ..training import make_optimizer
from .base import Method, Param, register


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
        Param("epochs", 5, 1, 100, "passes over the retain set (each step also draws one forget batch)"),
        Param("lr", 1e-3, 1e-6, 1e-1, "Adam learning rate", log=True),
        Param("batch_size", 128, 8, 4096, "retain mini-batch size"),
        Param("forget_batch_size", 32, 1, 4096, "forget mini-batch size"),
    )

    def _run(self, model, task, loop):
        hp = self.hp
        a = hp["alpha"]
        opt = make_optimizer(model.parameters(), "adam", hp["lr"])
        steps = hp["epochs"] * task.steps_per_epoch("retain", hp["batch_size"])
        loop.phase("neggrad_plus", steps)
        retain = task.batches("retain", hp["batch_size"], salt=1)
        forget = task.batches("forget", hp["forget_batch_size"], salt=2)
        for _ in range(steps):
            Xr, yr = next(retain)
            Xf, yf = next(forget)
            retain_loss = F.cross_entropy(model(Xr), yr)
            forget_loss = F.cross_entropy(model(Xf), yf)
            loss = a * retain_loss - (1 - a) * forget_loss
            loop.step(loss, opt, forget_loss=forget_loss.detach(), retain_loss=retain_loss.detach())
