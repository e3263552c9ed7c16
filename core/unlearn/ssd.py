from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.func import functional_call, grad, vmap

from .base import Method, Param, register


def diagonal_fisher(model: torch.nn.Module, X: torch.Tensor, y: torch.Tensor, chunk: int = 256,
                    tick=None) -> dict[str, torch.Tensor]:
    """Empirical diagonal Fisher: the mean over samples of the squared per-sample gradient of CE,
    computed with `torch.func.vmap` in chunks. `tick()` is called after each chunk."""
    params = {n: p.detach() for n, p in model.named_parameters()}
    buffers = {n: b.detach() for n, b in model.named_buffers()}

    def loss(p, x, t):
        out = functional_call(model, (p, buffers), (x.unsqueeze(0),))
        return F.cross_entropy(out, t.unsqueeze(0))

    per_sample = vmap(grad(loss), in_dims=(None, 0, 0))
    fisher = {n: torch.zeros_like(p) for n, p in params.items()}
    for i in range(0, len(y), chunk):
        g = per_sample(params, X[i: i + chunk], y[i: i + chunk])
        for n in fisher:
            fisher[n] += (g[n] ** 2).sum(0)
        if tick is not None:
            tick()
    return {n: f / max(len(y), 1) for n, f in fisher.items()}


@register
class SSD(Method):
    """Selective Synaptic Dampening (Foster, Schoepf, Brintrup 2024, AAAI): no training at all.

    Why: a weight that matters far more for D_f than for the data as a whole is where D_f is stored. With
    diagonal Fisher importances []_D_f on the forget set and []_D on the whole training set (D_f ∪ D_r),
    every weight with []_D_f > α·[]_D is multiplied by β = min(λ·[]_D / []_D_f, 1); all other weights are
    left exactly as they are. Two gradient passes and one multiplication: the cheapest method here.
    The importance is the per-sample empirical Fisher (mean squared per-sample gradient); the official code
    squares mini-batch gradients instead, which mixes in the batch size."""

    name = "ssd"
    title = "Selective Synaptic Dampening (SSD)"
    summary = "No training: shrink the weights far more important to the forget set than to the training set."
    reference = ("Foster, Schoepf, Brintrup. Fast Machine Unlearning Without Retraining Through Selective "
                 "Synaptic Dampening. AAAI 2024.")
    params = (
        Param("alpha", 10.0, 1.0, 1e4, "selection: dampen where forget importance > alpha × train importance",
              log=True),
        Param("lam", 1.0, 0.0, 100.0, "dampening constant λ: β = min(λ · train imp. / forget imp., 1)"),
    )

    def importances(self, model: torch.nn.Module, task, tick=None) -> tuple[dict, dict]:
        """(forget importances, whole-train importances) at the model's current weights."""
        imp_f = diagonal_fisher(model, task.forget_X, task.forget_y, tick=tick)
        X = torch.cat([task.forget_X, task.retain_X])
        y = torch.cat([task.forget_y, task.retain_y])
        imp_d = diagonal_fisher(model, X, y, tick=tick)
        return imp_f, imp_d

    def _run(self, model, task, loop):
        hp = self.hp
        chunks = -(-len(task.forget_y) // 256) + -(-(len(task.forget_y) + len(task.retain_y)) // 256)
        done = [0]

        def tick():
            done[0] += 1
            loop.progress("ssd: importances", done[0], chunks)

        imp_f, imp_d = self.importances(model, task, tick)
        loop.phase("ssd", 1)
        changed = 0
        with torch.no_grad():
            for n, p in model.named_parameters():
                select = imp_f[n] > hp["alpha"] * imp_d[n]
                beta = (hp["lam"] * imp_d[n] / imp_f[n].clamp_min(1e-30)).clamp(max=1.0)
                p.copy_(torch.where(select, p * beta, p))
                changed += int(select.sum())
        loop.step(torch.zeros(()), None, dampened=changed)
