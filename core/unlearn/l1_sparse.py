from __future__ import annotations

import torch
import torch.nn.functional as F

from .base import Method, Param, fine_tune_params, register


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
    ) + fine_tune_params(forget=False)

    def _run(self, model, task, loop):
        s = self._schedule(model.parameters(), task, loop)
        for i in range(s.steps):
            X, y = next(s.retain)
            gamma = self.hp["gamma"] * (1 - i / s.steps)
            retain_loss = F.cross_entropy(model(X), y)
            l1 = l1_norm(model)
            loop.step(retain_loss + gamma * l1, s.optimizer, retain_loss=retain_loss.detach(), l1=l1.detach(),
                      gamma=gamma)
