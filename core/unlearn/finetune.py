from __future__ import annotations

import torch.nn.functional as F

from .base import Method, fine_tune_params, register


@register
class Finetune(Method):
    """Fine-tune θ_o on the retain set only, relying on catastrophic forgetting of D_f.

    Known to forget slowly: it never sees D_f, so whole-class knowledge fades only through drift."""

    name = "finetune"
    title = "Fine-tune (FT)"
    summary = "Keep training on the retain set only; the forget set fades by catastrophic forgetting."
    reference = "Warnecke et al. 2023; Golatkar et al. 2020 (the FT baseline)."
    uses_forget = False
    params = fine_tune_params(forget=False)

    def _run(self, model, task, loop):
        s = self._schedule(model.parameters(), task, loop)
        for _ in range(s.steps):
            X, y = next(s.retain)
            loss = F.cross_entropy(model(X), y)
            loop.step(loss, s.optimizer, retain_loss=loss.detach())
