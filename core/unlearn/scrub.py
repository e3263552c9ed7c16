from __future__ import annotations

import copy

import torch
import torch.nn.functional as F

from ..training import make_optimizer
from .base import Method, Param, register


def distill_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor, T: float) -> torch.Tensor:
    """KL(teacher ‖ student) on temperature-softened posteriors, scaled by T² (Hinton et al.'s KD loss)."""
    return F.kl_div(F.log_softmax(student_logits / T, -1), F.log_softmax(teacher_logits / T, -1),
                    reduction="batchmean", log_target=True) * T * T


@register
class Scrub(Method):
    """SCRUB (Kurmanji et al. 2023, "Towards Unbounded Machine Unlearning"): a student initialised at θ_o
    is trained against the frozen teacher θ_o, alternating *max-steps* that raise KL(teacher ‖ student) on
    D_f and *min-steps* that lower α·KL(teacher ‖ student) + γ·CE on D_r.

    Why: the teacher pins down everything the model should keep, so the student can be pushed away from
    the teacher on D_f only (max) while staying close to it on D_r (min); max-steps stop after
    `max_epochs` and the last epochs are min-only, which repairs retain performance (the paper's
    "unbounded" student-teacher game). Defaults are the SCRUB authors' own (KD temperature 4, α = 0.001,
    γ = 0.99, 3 epochs with max-steps in the first 2, lr 5e-4, batches of 128 retain / 32 forget), except
    that we use Adam where their notebook uses SGD (as the ReA paper's code does; plain SGD at 5e-4
    barely moves a small model). The ReA code's variant (α = 0.1, γ = 1) is one click away.

    Our reading (`reading = True`): the paper runs each epoch's max pass *before* its min pass. With a
    model that has no stochastic layers (dropout/batch-norm), a student equal to its teacher is an exact
    stationary point of the KL (its gradient is zero at its minimum), so the first max pass would not
    move at all. We therefore run each epoch's min pass first, then its max pass; every epoch after
    `max_epochs` is a min pass alone, as in the paper."""

    name = "scrub"
    title = "SCRUB"
    summary = "Student-teacher game: move away from θ_o on the forget set, stay close to it on the retain set."
    reference = ("Kurmanji, Triantafillou, Hayes, Triantafillou. Towards Unbounded Machine Unlearning. "
                 "NeurIPS 2023.")
    reading = True
    params = (
        Param("epochs", 3, 1, 100, "epochs; each runs a min pass over the retain set"),
        Param("max_epochs", 2, 0, 100, "the first epochs that also run a max pass over the forget set"),
        Param("alpha", 0.001, 0.0, 100.0, "weight of the KL to the teacher in min-steps"),
        Param("gamma", 0.99, 0.0, 100.0, "weight of the retain cross-entropy in min-steps"),
        Param("temperature", 4.0, 0.1, 100.0, "distillation temperature T"),
        Param("lr", 5e-4, 1e-6, 1e-1, "Adam learning rate", log=True),
        Param("batch_size", 128, 8, 4096, "retain mini-batch size"),
        Param("forget_batch_size", 32, 1, 4096, "forget mini-batch size"),
    )

    def _run(self, model, task, loop):
        hp = self.hp
        T = hp["temperature"]
        teacher = copy.deepcopy(model).eval()
        for p in teacher.parameters():
            p.requires_grad_(False)
        opt = make_optimizer(model.parameters(), "adam", hp["lr"])
        n_min = task.steps_per_epoch("retain", hp["batch_size"])
        n_max = task.steps_per_epoch("forget", hp["forget_batch_size"])
        loop.phase("scrub", hp["epochs"] * n_min + min(hp["max_epochs"], hp["epochs"]) * n_max)
        retain = task.batches("retain", hp["batch_size"], salt=1)
        forget = task.batches("forget", hp["forget_batch_size"], salt=2)
        for epoch in range(hp["epochs"]):
            for _ in range(n_min):
                X, y = next(retain)
                out = model(X)
                with torch.no_grad():
                    t_out = teacher(X)
                kl = distill_kl(out, t_out, T)
                ce = F.cross_entropy(out, y)
                loop.step(hp["alpha"] * kl + hp["gamma"] * ce, opt, retain_loss=ce.detach(), retain_kl=kl.detach())
            if epoch < hp["max_epochs"]:
                for _ in range(n_max):
                    X, _y = next(forget)
                    with torch.no_grad():
                        t_out = teacher(X)
                    kl = distill_kl(model(X), t_out, T)
                    loop.step(-kl, opt, forget_kl=kl.detach())
