from __future__ import annotations

import torch
import torch.nn.functional as F

from .base import Loop, Method, Schedule, UnlearnTask, fine_tune_params, register


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
    params = fine_tune_params()

    def _run(self, model, task, loop):
        random_label_steps(model, task, loop, self._schedule(model.parameters(), task, loop))


def random_label_steps(model: torch.nn.Module, task: UnlearnTask, loop: Loop, s: Schedule) -> None:
    """The RL steps: one forget batch towards fresh wrong labels plus one retain batch, per step (SalUn runs
    the same steps on its masked weights)."""
    g = task.generator(3)
    for _ in range(s.steps):
        Xr, yr = next(s.retain)
        Xf, yf = next(s.forget)
        out = model(torch.cat([Xf, Xr]))
        forget_loss = F.cross_entropy(out[: len(yf)], wrong_labels(yf, task.n_classes, g))
        retain_loss = F.cross_entropy(out[len(yf):], yr)
        loop.step(forget_loss + retain_loss, s.optimizer, forget_loss=forget_loss.detach(),
                  retain_loss=retain_loss.detach())
