from __future__ import annotations

import torch.nn.functional as F

from ..training import make_optimizer
from .base import Method, Param, register


@register
class GradientAscent(Method):
    """Gradient ascent on the forget set (NegGrad): maximise cross-entropy on D_f.

    Unbounded by nature: the loss grows without limit, so the divergence guard stops it at a
    NaN/inf loss or exploding weights and the result is labelled 'diverged'."""

    name = "gradient_ascent"
    title = "Gradient ascent (NegGrad)"
    summary = "Ascend the loss on the forget set; fast, but diverges if pushed (stopped and reported)."
    reference = "Golatkar et al. 2020; Thudi et al. 2022 (NegGrad)."
    params = (
        Param("epochs", 5, 1, 100, "passes over the forget set"),
        Param("lr", 1e-4, 1e-6, 1.0, "SGD learning rate", log=True),
        Param("batch_size", 32, 1, 4096, "mini-batch size"),
    )

    def _run(self, model, task, loop):
        hp = self.hp
        opt = make_optimizer(model.parameters(), "sgd", hp["lr"], momentum=0.9)
        steps = hp["epochs"] * task.steps_per_epoch("forget", hp["batch_size"])
        loop.phase("gradient_ascent", steps)
        forget = task.batches("forget", hp["batch_size"], salt=2)
        for _ in range(steps):
            X, y = next(forget)
            forget_loss = F.cross_entropy(model(X), y)
            loop.step(-forget_loss, opt, forget_loss=forget_loss.detach())
