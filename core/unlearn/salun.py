from __future__ import annotations

import torch
import torch.nn.functional as F

from .base import Method, Param, fine_tune_params, register
from .random_label import random_label_steps


def saliency_mask(model: torch.nn.Module, X: torch.Tensor, y: torch.Tensor, share: float) -> dict[str, torch.Tensor]:
    """Boolean mask per parameter: True for the `share` of all weights with the largest |∇θ CE(D_f)|.

    One global ranking over every parameter tensor (as in SalUn's hard-threshold mask); exactly
    round(share · #weights) entries are selected, ties broken by position."""
    params = dict(model.named_parameters())
    loss = F.cross_entropy(model(X), y)
    grads = torch.autograd.grad(loss, list(params.values()))
    flat = torch.cat([g.detach().abs().flatten() for g in grads])
    k = int(round(share * flat.numel()))
    chosen = torch.zeros(flat.numel(), dtype=torch.bool, device=flat.device)
    if k > 0:
        chosen[torch.topk(flat, k, sorted=False).indices] = True
    masks, at = {}, 0
    for (name, p) in params.items():
        masks[name] = chosen[at: at + p.numel()].view_as(p)
        at += p.numel()
    return masks


@register
class SalUn(Method):
    """SalUn: saliency-masked random labelling (Fan et al. 2024, "SalUn: Empowering Machine Unlearning via
    Gradient-based Weight Saliency", ICLR 2024).

    Why: only some weights carry D_f. The mask keeps the `threshold` share of weights with the largest
    forget-loss gradient magnitude at θ_o; random-label updates (wrong labels on D_f, mixed with D_r
    batches, as in `random_label`) then touch those weights alone, so the rest of the network, and what it
    knows about D_r, stays exactly as it was. Gradients of unmasked weights are zeroed before the Adam
    step (so their moments stay zero and the step is zero) and, as a guarantee, their values are written
    back after every step: unmasked weights end bit-identical to θ_o's."""

    name = "salun"
    title = "SalUn (saliency-masked RL)"
    summary = "Random-label unlearning restricted to the weights most salient for the forget set."
    reference = ("Fan, Liu, Zhang, Wei, Wong, Liu. SalUn: Empowering Machine Unlearning via Gradient-based "
                 "Weight Saliency in Both Image Classification and Generation. ICLR 2024.")
    params = (
        Param("threshold", 0.5, 0.0, 1.0, "share of weights (largest forget-gradient magnitude) allowed to change"),
    ) + fine_tune_params()

    def _run(self, model, task, loop):
        hp = self.hp
        masks = saliency_mask(model, task.forget_X, task.forget_y, hp["threshold"])
        params = dict(model.named_parameters())
        frozen = {n: p.detach().clone() for n, p in params.items()}
        hooks = [p.register_hook(lambda g, m=masks[n]: g * m) for n, p in params.items()]
        s = self._schedule(params.values(), task, loop)

        @torch.no_grad()
        def restore(*_):
            for n, p in params.items():
                p.copy_(torch.where(masks[n], p, frozen[n]))

        s.optimizer.register_step_post_hook(restore)
        try:
            random_label_steps(model, task, loop, s)
        finally:
            for h in hooks:
                h.remove()
