from __future__ import annotations

import torch
import torch.nn.functional as F

from ..training import make_optimizer
from .base import Method, Param, register


def wrong_labels(y: torch.Tensor, n_classes: int, generator: torch.Generator) -> torch.Tensor:
    """A label drawn uniformly from the classes other than each sample's own (deterministic in `generator`)."""
    shift = torch.randint(1, n_classes, (len(y),), generator=generator).to(y.device)
    return (y + shift) % n_classes


@register
class RandomLabel(Method):
    """Random labels (RL): fine-tune on D_f relabelled with random *wrong* classes, mixed with D_r batches
    (Golatkar et al. 2020's baseline; Graves et al. 2021's "amnesiac" relabelling).

    Why: ascending the loss is unbounded, but descending towards a wrong label is a bounded, ordinary
    training objective: the forget samples are pulled away from their class without blowing the model
    up, and the retain batches in every step keep the other classes intact. Each step trains on one
    forget batch (labels redrawn every time, never the true one) together with one retain batch."""

    name = "random_label"
    title = "Random labels (RL)"
    summary = "Train the forget set towards random wrong labels, mixed with retain batches."
    reference = ("Golatkar, Achille, Soatto. Eternal Sunshine of the Spotless Net. CVPR 2020; "
                 "Graves, Nagisetty, Ganesh. Amnesiac Machine Learning. AAAI 2021.")
    params = (
        Param("epochs", 5, 1, 100, "passes over the retain set (each step also draws one forget batch)"),
        Param("lr", 1e-3, 1e-6, 1e-1, "Adam learning rate", log=True),
        Param("batch_size", 128, 8, 4096, "retain mini-batch size"),
        Param("forget_batch_size", 32, 1, 4096, "forget mini-batch size"),
    )

    def _run(self, model, task, loop):
        hp = self.hp
        opt = make_optimizer(model.parameters(), "adam", hp["lr"])
        steps = hp["epochs"] * task.steps_per_epoch("retain", hp["batch_size"])
        loop.phase("random_label", steps)
        retain = task.batches("retain", hp["batch_size"], salt=1)
        forget = task.batches("forget", hp["forget_batch_size"], salt=2)
        g = task.generator(3)
        for _ in range(steps):
            Xr, yr = next(retain)
            Xf, yf = next(forget)
            out = model(torch.cat([Xf, Xr]))
            forget_loss = F.cross_entropy(out[: len(yf)], wrong_labels(yf, task.n_classes, g))
            retain_loss = F.cross_entropy(out[len(yf):], yr)
            loop.step(forget_loss + retain_loss, opt, forget_loss=forget_loss.detach(),
                      retain_loss=retain_loss.detach())
