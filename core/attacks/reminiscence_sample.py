"""Sample-wise Reminiscence attack (ReA, the official code's sample-wise form): reminisce, then LiRA.

Residuals let forgotten samples come back when the unlearned model is benignly fine-tuned. The attacker
fine-tunes θ_u briefly on the retain set D_r (official: 3 epochs at lr₁, then 3 at lr₂, one optimiser),
then runs LiRA on the reminisced model; the baseline is the same LiRA (same shadows, same queries) on θ_u
itself. Members = forget samples, non-members = test samples (official: up to 500 each).

Results: "rea_sample" (online LiRA on the reminisced model), "lira_online" (online LiRA on θ_u), and
"rea_sample_offline" (offline LiRA on the reminisced model).
"""
from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from .. import metrics
from ..params import Param
from ..progress import Progress, as_progress
from ..training import epoch_batches, make_optimizer
from .base import Attack, AttackContext, AttackResult, register
from .lira import LIRA_PARAMS, run_lira


def reminisce(model: nn.Module, X: torch.Tensor, y: torch.Tensor, epochs1: int = 3, lr1: float = 1e-3,
              epochs2: int = 3, lr2: float = 1e-4, optimizer: str = "adam", batch_size: int = 128,
              seed: int = 0, progress: Progress | None = None) -> nn.Module:
    """A fine-tuned copy of `model`: `epochs1` passes over (X, y) at lr1, then `epochs2` at lr2 (one optimiser,
    its learning rate lowered between the phases). `model` itself is left untouched."""
    progress = as_progress(progress)
    m = copy.deepcopy(model).train()
    opt = make_optimizer(m.parameters(), optimizer, lr1)
    g = torch.Generator().manual_seed(int(seed))
    total = epochs1 + epochs2
    for epoch in range(total):
        lr = lr1 if epoch < epochs1 else lr2
        for group in opt.param_groups:
            group["lr"] = lr
        for idx in epoch_batches(len(y), batch_size, g, X.device):
            loss = F.cross_entropy(m(X[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        progress("reminisce", epoch + 1, total)
    return m.eval()


@register
class SampleReminiscence(Attack):
    name = "rea_sample"
    title = "Reminiscence attack, sample-wise (fine-tune on D_r, then LiRA)"
    summary = ("Briefly fine-tune the unlearned model on the retain set, which brings residual memories of "
               "forgotten samples back, then run LiRA on it; compare with LiRA on the unlearned model itself.")
    reference = "Reminiscence Attack on Residuals (ReA), 2025, official code's sample-wise attack; Carlini et al. 2022."
    params = LIRA_PARAMS + (
        Param("epochs1", 3, 0, 50, "reminiscence epochs at lr1 (official: 3)"),
        Param("lr1", 1e-3, 1e-6, 1.0, "first learning rate", log=True),
        Param("epochs2", 3, 0, 50, "then epochs at lr2 (official: 3)"),
        Param("lr2", 1e-4, 1e-7, 1.0, "second learning rate", log=True),
        Param("optimizer", "adam", help="optimiser of the reminiscence fine-tuning", choices=("adam", "sgd")),
        Param("batch_size", 128, 8, 4096, "mini-batch size of the reminiscence fine-tuning"),
    )

    def run(self, ctx: AttackContext, target: str, progress: Progress | None = None) -> list[AttackResult]:
        progress = as_progress(progress)
        hp = self.hp
        split = ctx.split
        model = ctx.models[target]
        rX, ry = split.tensors("retain")
        fX, fy = split.tensors("forget")
        reminisced = reminisce(model, rX, ry, hp["epochs1"], hp["lr1"], hp["epochs2"], hp["lr2"], hp["optimizer"],
                               hp["batch_size"], seed=ctx.seed * 1000 + 31, progress=progress)
        info = {"forget_acc_before": metrics.accuracy(model, fX, fy),
                "forget_acc_after": metrics.accuracy(reminisced, fX, fy),
                "retain_acc_after": metrics.accuracy(reminisced, rX, ry),
                "reminisce": {k: hp[k] for k in ("epochs1", "lr1", "epochs2", "lr2", "optimizer", "batch_size")}}
        out = run_lira(ctx, reminisced, hp, target, {"online": "rea_sample", "offline": "rea_sample_offline"},
                       progress, info)
        base = run_lira(ctx, model, hp, target, {"online": "lira_online"}, progress,
                        {"baseline_of": "rea_sample"})
        ra, rb = out[0].roc(), base[0].roc()
        for r in out + base:
            r.extra["rea_auc"], r.extra["lira_auc"] = ra.auc, rb.auc
        progress("reminiscence (sample-wise)", 1, 1)
        return out + base
