from __future__ import annotations

import torch
import torch.nn.functional as F

from ..training import make_optimizer
from .base import Method, Param, register


def l1_norm(model: torch.nn.Module) -> torch.Tensor:
    """‖θ‖₁ over every parameter (weights and biases), differentiable."""
    return sum(p.abs().sum() for p in model.parameters())


@register
class L1Sparse(Method):
    """ℓ1-sparse fine-tuning: FT on D_r with γ_t·‖θ‖₁ added, γ_t decaying linearly from γ to 0 over the run
    (Jia et al. 2023, "Model Sparsity Can Simplify Machine Unlearning").

    Why: their analysis shows approximate unlearning closes more of the gap to retraining on a sparse
    model; the early strong ℓ1 pull prunes weights that only D_f needed, and the decay lets the last
    steps recover retain accuracy. Same optimiser, batches and schedule as `finetune`, so the two
    differ only in the penalty."""

    name = "l1_sparse"
    title = "ℓ1-sparse fine-tune"
    summary = "Fine-tune on the retain set with a decaying L1 penalty that sparsifies the weights."
    reference = ("Jia, Liu, Ram, Yao, Liu, Liu, Sharma, Liu. Model Sparsity Can Simplify Machine Unlearning. "
                 "NeurIPS 2023.")
    uses_forget = False
    params = (
        Param("gamma", 5e-5, 0.0, 1e-2, "initial L1 weight γ; decays linearly to 0", log=True),
        Param("epochs", 5, 1, 100, "passes over the retain set"),
        Param("lr", 1e-3, 1e-5, 1e-1, "Adam learning rate", log=True),
        Param("batch_size", 128, 8, 4096, "mini-batch size"),
    )

    def _run(self, model, task, loop):
        hp = self.hp
        opt = make_optimizer(model.parameters(), "adam", hp["lr"])
        steps = hp["epochs"] * task.steps_per_epoch("retain", hp["batch_size"])
        loop.phase("l1_sparse", steps)
        retain = task.batches("retain", hp["batch_size"], salt=1)
        for i in range(steps):
            X, y = next(retain)
            gamma = hp["gamma"] * (1 - i / steps)
            retain_loss = F.cross_entropy(model(X), y)
            l1 = l1_norm(model)
            loop.step(retain_loss + gamma * l1, opt, retain_loss=retain_loss.detach(), l1=l1.detach(),
                      gamma=gamma)
