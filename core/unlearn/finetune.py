from __future__ import annotations

import torch.nn.functional as F

from ..training import make_optimizer
from .base import Method, Param, register


@register
class Finetune(Method):
    """Fine-tune θ_o on the retain set only, relying on catastrophic forgetting of D_f.

    Known to forget slowly: it never sees D_f, so whole-class knowledge fades only through drift."""

    name = "finetune"
    title = "Fine-tune (FT)"
    summary = "Keep training on the retain set only; the forget set fades by catastrophic forgetting."
    reference = "Warnecke et al. 2023; Golatkar et al. 2020 (the FT baseline)."
    uses_forget = False
    params = (
        Param("epochs", 5, 1, 100, "passes over the retain set"),
        Param("lr", 1e-3, 1e-5, 1e-1, "Adam learning rate", log=True),
        Param("batch_size", 128, 8, 4096, "mini-batch size"),
    )

    def _run(self, model, task, loop):
        hp = self.hp
        opt = make_optimizer(model.parameters(), "adam", hp["lr"])
        steps = hp["epochs"] * task.steps_per_epoch("retain", hp["batch_size"])
        loop.phase("finetune", steps)
        retain = task.batches("retain", hp["batch_size"], salt=1)
        for _ in range(steps):
            X, y = next(retain)
            loss = F.cross_entropy(model(X), y)
            loop.step(loss, opt, retain_loss=loss.detach())
