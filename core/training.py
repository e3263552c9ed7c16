"""Training: one `Recipe` holds everything that determines the weights besides data and seeds.

Mini-batches are drawn from a private generator, so the same (init seed, order seed) gives the same
weights on CPU whatever else runs in the process.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Iterator

import torch
import torch.nn.functional as F
from torch import nn

from .errors import ResidueError
from .params import check_fields
from .progress import Progress, as_progress

TRAINER_VERSION = 2  # bump when training code changes what weights a recipe produces (2: fused Adam)


@dataclass(frozen=True)
class Recipe:
    """How a model is trained. Large mini-batches keep the 2-core CPU busy (see bench/run.py)."""

    epochs: int = 40
    batch_size: int = 128
    lr: float = 2e-3
    optimizer: str = "adam"  # "adam" | "sgd"
    momentum: float = 0.9
    weight_decay: float = 0.0

    def __post_init__(self) -> None:
        check_fields(self, "recipe")  # Recipe(epochs="3") or Recipe(epochs=2.5): the line a config file gets
        checks = [
            (1 <= self.epochs <= 1000, f"epochs must be in [1, 1000], got {self.epochs}"),
            (1 <= self.batch_size <= 65536, f"batch_size must be in [1, 65536], got {self.batch_size}"),
            (0 < self.lr <= 10, f"lr must be in (0, 10], got {self.lr}"),
            (self.optimizer in ("adam", "sgd"), f"optimizer must be 'adam' or 'sgd', got '{self.optimizer}'"),
            (0 <= self.momentum < 1, f"momentum must be in [0, 1), got {self.momentum}"),
            (0 <= self.weight_decay <= 1, f"weight_decay must be in [0, 1], got {self.weight_decay}"),
        ]
        for ok, msg in checks:
            if not ok:
                raise ResidueError(f"recipe: {msg}.")

    def to_dict(self) -> dict:
        return asdict(self)


def make_optimizer(params, name: str, lr: float, momentum: float = 0.9, weight_decay: float = 0.0):
    """Adam and AdamW run fused (one kernel per step instead of a dozen per parameter tensor): for small
    models the optimiser's per-tensor overhead is a quarter of a training step. The same kernel trains
    many models at once in `core.batched`."""
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, fused=True)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, fused=True)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    raise ResidueError(f"Unknown optimizer '{name}'.")


def epoch_batches(n: int, batch_size: int, generator: torch.Generator, device=None) -> Iterator[torch.Tensor]:
    """One shuffled pass over n samples in mini-batches (the last one may be short)."""
    perm = torch.randperm(n, generator=generator)
    if device is not None:
        perm = perm.to(device)
    yield from perm.split(batch_size)


def endless_batches(n: int, batch_size: int, generator: torch.Generator, device=None) -> Iterator[torch.Tensor]:
    """Shuffled mini-batches forever: for methods that count steps, not epochs."""
    while True:
        yield from epoch_batches(n, batch_size, generator, device)


@dataclass
class TrainLog:
    seconds: float = 0.0
    steps: int = 0
    samples: int = 0
    loss: list[float] = field(default_factory=list)  # mean loss per epoch


def train(
    model: nn.Module,
    X: torch.Tensor,
    y: torch.Tensor,
    recipe: Recipe,
    seed: int = 0,
    progress: Progress | None = None,
    stage: str = "train",
) -> TrainLog:
    """Train `model` in place with cross-entropy; `seed` fixes the data order."""
    if len(y) == 0:
        raise ResidueError("Cannot train on an empty set.")
    progress = as_progress(progress)
    g = torch.Generator().manual_seed(int(seed))
    opt = make_optimizer(model.parameters(), recipe.optimizer, recipe.lr, recipe.momentum, recipe.weight_decay)
    log = TrainLog()
    model.train()
    start = time.perf_counter()
    for epoch in range(recipe.epochs):
        total = torch.zeros((), device=X.device)
        for idx in epoch_batches(len(y), recipe.batch_size, g, X.device):
            loss = F.cross_entropy(model(X[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.detach() * len(idx)
            log.steps += 1
        epoch_loss = float(total) / len(y)
        if not torch.isfinite(torch.tensor(epoch_loss)):
            raise ResidueError(f"{stage}: the loss became NaN/inf at epoch {epoch + 1}; lower the learning rate.")
        log.loss.append(epoch_loss)
        progress(stage, epoch + 1, recipe.epochs, loss=epoch_loss)
    model.eval()
    log.seconds = time.perf_counter() - start
    log.samples = recipe.epochs * len(y)
    return log
