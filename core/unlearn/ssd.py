from __future__ import annotations

import torch
import torch.nn.functional as F

from ..training import epoch_batches
from .base import Diverged, Method, Param, register


def importance(model: torch.nn.Module, X: torch.Tensor, y: torch.Tensor, batch_size: int,
               generator: torch.Generator, tick=None) -> dict[str, torch.Tensor]:
    """SSD's diagonal-Fisher importance: the squared gradient of the mini-batch CE, averaged over one
    shuffled pass of mini-batches (as the official code computes it). `tick()` is called after each batch.

    Gradients are taken with `torch.autograd.grad`, so no optimiser and no `.grad` field is touched."""
    params = dict(model.named_parameters())
    imp = {n: torch.zeros_like(p) for n, p in params.items()}
    count = 0
    for idx in epoch_batches(len(y), batch_size, generator, X.device):
        loss = F.cross_entropy(model(X[idx]), y[idx])
        for n, g in zip(params, torch.autograd.grad(loss, list(params.values()))):
            imp[n] += g.detach() ** 2
        count += 1
        if tick is not None:
            tick()
    return {n: v / max(count, 1) for n, v in imp.items()}


@register
class SSD(Method):
    """Selective Synaptic Dampening (Foster, Schoepf, Brintrup 2024, AAAI): no training at all.

    Why: a weight that matters far more for D_f than for the data as a whole is where D_f is stored. With
    diagonal-Fisher importances I_f on the forget set and I_D on the whole training set (D_f ∪ D_r),
    every weight with I_f > α·I_D is multiplied by β = min(λ·I_D / I_f, 1); every other weight is left
    exactly as it is. Two gradient passes and one multiplication, no optimiser step: the cheapest method
    here. Importances follow the official code: squared mini-batch gradients averaged over batches (so
    they depend on `batch_size`; we shuffle the training-set batches so each mixes forget and retain
    samples, deterministically from the seed). With per-sample squared gradients instead, I_f / I_D could
    never exceed |D| / |D_f| (about 10 for a forgotten class out of ten), and the paper's α = 10 would
    select nothing."""

    name = "ssd"
    title = "Selective Synaptic Dampening (SSD)"
    summary = "No training: shrink the weights far more important to the forget set than to the training set."
    reference = ("Foster, Schoepf, Brintrup. Fast Machine Unlearning Without Retraining Through Selective "
                 "Synaptic Dampening. AAAI 2024.")
    params = (
        Param("alpha", 10.0, 1.0, 1e4, "selection: dampen where forget importance > alpha × training-set importance",
              log=True),
        Param("lam", 1.0, 0.0, 100.0, "dampening constant λ: β = min(λ · train imp. / forget imp., 1)"),
        Param("batch_size", 64, 1, 4096, "mini-batch size of the importance passes"),
    )

    def importances(self, model: torch.nn.Module, task, tick=None) -> tuple[dict, dict]:
        """(forget-set importances I_f, whole-training-set importances I_D) at the model's current weights."""
        bs = self.hp["batch_size"]
        imp_f = importance(model, task.forget_X, task.forget_y, bs, task.generator(4), tick)
        X = torch.cat([task.forget_X, task.retain_X])
        y = torch.cat([task.forget_y, task.retain_y])
        imp_d = importance(model, X, y, bs, task.generator(5), tick)
        return imp_f, imp_d

    def _run(self, model, task, loop):
        hp = self.hp
        bs = hp["batch_size"]
        n_f = len(task.forget_y)
        total = -(-n_f // bs) + -(-(n_f + len(task.retain_y)) // bs)
        done = [0]

        def tick():
            done[0] += 1
            loop.progress("ssd: importances", done[0], total)

        imp_f, imp_d = self.importances(model, task, tick)
        bad = [n for n in imp_f if not (torch.isfinite(imp_f[n]).all() and torch.isfinite(imp_d[n]).all())]
        if bad:  # a NaN importance selects nothing: SSD would return θ_o unchanged and call it unlearned
            raise Diverged(f"ssd: the importances of {', '.join(bad[:3])}{'...' if len(bad) > 3 else ''} are "
                           "NaN/inf (the model's loss is not finite on this data); nothing was dampened.",
                           {k: v.detach().clone() for k, v in model.state_dict().items()})
        loop.phase("ssd: dampen", 1)
        changed = 0
        with torch.no_grad():
            for n, p in model.named_parameters():
                select = imp_f[n] > hp["alpha"] * imp_d[n]
                beta = (hp["lam"] * imp_d[n] / imp_f[n].clamp_min(1e-30)).clamp(max=1.0)
                p.copy_(torch.where(select, p * beta, p))
                changed += int(select.sum())
        loop.step(torch.zeros(()), None, dampened=changed)
