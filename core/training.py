"""Training: one `Recipe` holds everything that determines the weights besides data and seeds.

Mini-batches are drawn from a private generator, so the same (init seed, order seed) gives the same
weights on CPU whatever else runs in the process.
"""
from __future__ import annotations

import contextlib
import math
import numbers
import os
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .errors import ResidueError
from .params import check_fields, shown
from .progress import Progress, as_progress
from .registry import Registry

TRAINER_VERSION = 2  # bump when training code changes what weights a recipe produces (2: fused Adam)


@dataclass(frozen=True)
class Recipe:
    """How a model is trained. Large mini-batches keep the 2-core CPU busy (see bench/run.py).

    `nesterov`, `label_smoothing` and `schedule` came with the airbench recipe (`recipes`, core/models/airbench.py);
    at their defaults (off, 0, constant) they leave a recipe's hash and its weights exactly as they were.
    `schedule` is a piecewise-linear learning-rate factor over the whole run: [fraction of the steps, factor]
    pairs from 0 to 1, e.g. [[0, 0.2], [0.23, 1], [1, 0.07]] (a triangle); () keeps `lr` constant."""

    epochs: int = 40
    batch_size: int = 128
    lr: float = 2e-3
    optimizer: str = "adam"  # "adam" | "sgd"
    momentum: float = 0.9
    weight_decay: float = 0.0
    augment: str = "none"  # see AUGMENTS
    nesterov: bool = False  # SGD only
    label_smoothing: float = 0.0
    schedule: tuple = ()  # ((fraction, factor), ...), fractions 0 ... 1 of the run's steps

    def __post_init__(self) -> None:
        object.__setattr__(self, "schedule", _schedule(self.schedule))
        check_fields(self, "recipe")  # Recipe(epochs="3") or Recipe(epochs=2.5): the line a config file gets
        checks = [
            (1 <= self.epochs <= 1000, f"epochs must be in [1, 1000], got {self.epochs}"),
            (1 <= self.batch_size <= 65536, f"batch_size must be in [1, 65536], got {self.batch_size}"),
            (0 < self.lr <= 10, f"lr must be in (0, 10], got {self.lr}"),
            (self.optimizer in ("adam", "sgd"), f"optimizer must be 'adam' or 'sgd', got '{self.optimizer}'"),
            (0 <= self.momentum < 1, f"momentum must be in [0, 1), got {self.momentum}"),
            (0 <= self.weight_decay <= 1, f"weight_decay must be in [0, 1], got {self.weight_decay}"),
            (self.augment in AUGMENTS, f"augment must be one of {list(AUGMENTS)}, got {self.augment!r}"),
            (not self.nesterov or (self.optimizer == "sgd" and self.momentum > 0),
             "nesterov needs optimizer = \"sgd\" with momentum > 0"),
            (0 <= self.label_smoothing < 1, f"label_smoothing must be in [0, 1), got {self.label_smoothing}"),
        ]
        for ok, msg in checks:
            if not ok:
                raise ResidueError(f"recipe: {msg}.")

    def to_dict(self) -> dict:
        """The recipe's fields; those added since (augment, nesterov, label smoothing, schedule) only when they are
        on, so a recipe without them keeps the hash (and the cached models) it had before they existed."""
        d = asdict(self)
        for k, off in (("augment", "none"), ("nesterov", False), ("label_smoothing", 0.0), ("schedule", ())):
            if d[k] == off:
                del d[k]
        if "schedule" in d:
            d["schedule"] = [list(p) for p in d["schedule"]]
        return d

    def lr_at(self, step: int, total: int) -> float:
        """The learning rate of step `step` (from 0) of `total`: `lr` times the schedule's factor there."""
        if not self.schedule:
            return self.lr
        xs, ys = zip(*self.schedule)
        return self.lr * float(np.interp(step / max(total, 1), xs, ys))


SCHEDULE_HELP = ("schedule must be [fraction, factor] pairs, fractions rising from 0 to 1 and factors in [0, 10], "
                 "e.g. [[0, 0.2], [0.23, 1], [1, 0.07]]; [] for a constant learning rate")


def _schedule(value) -> tuple:
    """A schedule as a tuple of (fraction, factor) float pairs, or one readable error."""
    pairs = value if isinstance(value, (list, tuple)) else None
    ok = pairs is not None and all(isinstance(p, (list, tuple)) and len(p) == 2 and all(
        isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v) for v in p) for p in pairs)
    if ok and pairs:
        xs, ys = [float(p[0]) for p in pairs], [float(p[1]) for p in pairs]
        ok = (len(pairs) >= 2 and xs[0] == 0 and xs[-1] == 1 and all(a < b for a, b in zip(xs, xs[1:]))
              and all(0 <= v <= 10 for v in ys))
    if not ok:
        raise ResidueError(f"recipe: {SCHEDULE_HELP}, got {shown(value)}.")
    return tuple((float(a), float(b)) for a, b in pairs)


# name -> (padding in pixels, how the border is filled): random shifts of up to `pad` pixels and horizontal flips
AUGMENT_PADDING = {"crop_flip": (4, "constant"),  # the CIFAR recipe: RandomCrop(32, padding=4), RandomHorizontalFlip()
                   "shift2_flip": (2, "reflect")}  # airbench: 2-pixel translations of a reflect-padded image, flips
AUGMENTS = ("none", *AUGMENT_PADDING)
CROP_PAD = AUGMENT_PADDING["crop_flip"][0]  # the default of `augment_draws` and `augmented`


def augment_generator(recipe: Recipe, seed: int, X: torch.Tensor) -> torch.Generator | None:
    """The private generator of a model's augmentation draws (None: no augmentation). Seeded from the data-order
    seed, so `train` and `core.batched.train_many` draw the same crops and flips for the same model."""
    if recipe.augment == "none":
        return None
    if X.dim() != 4:
        raise ResidueError(f"recipe: augment = {recipe.augment!r} is for images (C, H, W); this data has input shape "
                           f"{tuple(X.shape[1:])}. Set augment = \"none\".")
    return torch.Generator().manual_seed((int(seed) * 1_000_003 + 0xA06) % 2**63)


def augment_draws(g: torch.Generator, n: int, pad: int = CROP_PAD) -> tuple[torch.Tensor, torch.Tensor]:
    """For n images: (n, 2) crop offsets in [0, 2·pad] and (n,) horizontal-flip flags, drawn on the CPU."""
    return torch.randint(0, 2 * pad + 1, (n, 2), generator=g), torch.rand(n, generator=g) < 0.5


def augmented(x: torch.Tensor, offsets: torch.Tensor, flips: torch.Tensor, pad: int = CROP_PAD,
              mode: str = "constant") -> torch.Tensor:
    """Images x (n, C, H, W) padded by `pad` pixels (zeros, or `mode="reflect"`), cropped back to H x W at
    `offsets`, and mirrored where `flips`, on whatever device x is. Zero is the mean colour of normalised inputs."""
    n, _, h, w = x.shape
    offsets, flips = offsets.to(x.device), flips.to(x.device)
    padded = F.pad(x, (pad, pad, pad, pad), mode=mode)
    rows = (offsets[:, 0, None] + torch.arange(h, device=x.device))[:, None, :, None]
    cols = offsets[:, 1, None] + torch.arange(w, device=x.device)
    cols = torch.where(flips[:, None], cols.flip(1), cols)[:, None, None, :]
    return padded[torch.arange(n, device=x.device)[:, None, None, None], torch.arange(x.shape[1], device=x.device)[
        None, :, None, None], rows, cols]


def augment_batch(recipe: Recipe, g: torch.Generator, x: torch.Tensor) -> torch.Tensor:
    """One mini-batch through the recipe's augmentation, with the next draws of `g`."""
    pad, mode = AUGMENT_PADDING[recipe.augment]
    return augmented(x, *augment_draws(g, len(x), pad), pad, mode)


recipes: Registry = Registry("recipe")  # named recipes a config selects with [recipe] name = "..."
recipes.register("default")(Recipe())
# airbench94's recipe (Keller Jordan, 2024; KellerJordan/cifar10-airbench, airbench94.py) for the `airbench` network
# (core/models/airbench.py, which says what of airbench is left out). Its hyperparameters are "decoupled": lr 11.5
# and weight decay 0.0153 per 1024 examples of a summed loss with Nesterov momentum 0.85. For the mean loss `train`
# takes, that is lr = 11.5 / (1 + 1 / (1 - 0.85)) = 1.5 at batch 1024 (scale it with the batch size: 0.375 at 256)
# and a coupled weight decay of 0.0153 / 11.5 (the same decay per step, whatever the batch); label smoothing 0.2;
# the learning rate rises from 0.2x to 1x over the first 23% of the steps and falls to 0.07x at the end (its
# `triangle`); 10 epochs for its 9.9; 2-pixel translations of reflect-padded images and horizontal flips.
recipes.register("airbench")(Recipe(epochs=10, batch_size=1024, lr=1.5, optimizer="sgd", momentum=0.85, nesterov=True,
                                    weight_decay=0.0153 / 11.5, augment="shift2_flip", label_smoothing=0.2,
                                    schedule=((0.0, 0.2), (0.23, 1.0), (1.0, 0.07))))


def named_recipe(name, **overrides) -> Recipe:
    """A registered recipe, with some fields replaced (`[recipe] name = "airbench"` and `epochs = 20`)."""
    if not isinstance(name, str):
        raise ResidueError(f"recipe: name must be the name of a recipe ({', '.join(recipes.names())}), got "
                           f"{shown(name)}.")
    return replace(recipes.get(name), **overrides)


def fit_to_data(model: nn.Module, X: torch.Tensor) -> None:
    """An architecture's initialisation from its training data (airbench's whitening layer), before the first
    step: so θ_r's comes from the retain set and each shadow model's from its own subset. A no-op for most
    architectures, and for a model already fitted (fine-tuning never refits)."""
    fit = getattr(model, "fit_to_data", None)
    if callable(fit):
        fit(X)


def has_batch_norm(model: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


def drops_single(model: nn.Module) -> bool:
    """Batch norm cannot train on a mini-batch of one sample (no batch statistics): such a model skips an epoch's
    last batch when it holds a single sample, as `DataLoader(drop_last=True)` would, in `train` and `train_many`
    alike."""
    return has_batch_norm(model)


def training_context(X: torch.Tensor):
    """Mixed precision where it helps: on CUDA, bfloat16 autocast (no loss scaling needed) when the device supports
    it. On the CPU nothing changes: arithmetic stays float32, bit for bit as before."""
    if X.device.type == "cuda" and torch.cuda.is_bf16_supported() and os.environ.get("RESIDUE_AMP", "1") != "0":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def device_layout(model: nn.Module, X: torch.Tensor) -> bool:
    """Channels-last memory for a convolutional model on CUDA (tensor cores read NHWC); returns whether the
    inputs should be converted too. RESIDUE_CHANNELS_LAST=0 (and RESIDUE_AMP=0) turn the CUDA path off, for the
    plain fp32 eager baseline bench/vision.py compares with. Not on the CPU, though oneDNN trains the width-1/4
    CIFAR ResNet-18 1.2-1.3x faster channels-last there (bench/vision.py, measured): torch 2.13's CPU backward of a
    channels-last 1x1 stride-2 convolution (ResNet's shortcut) corrupts the heap for odd batch sizes (3, 5, 7:
    "double free or corruption", then an abort), and a retain set's last batch is often odd."""
    if (X.device.type != "cuda" or X.dim() != 4 or os.environ.get("RESIDUE_CHANNELS_LAST", "1") == "0"
            or not any(isinstance(m, nn.Conv2d) for m in model.modules())):
        return False
    model.to(memory_format=torch.channels_last)
    return True


def make_optimizer(params, name: str, lr: float, momentum: float = 0.9, weight_decay: float = 0.0,
                   nesterov: bool = False):
    """Adam and AdamW run fused (one kernel per step instead of a dozen per parameter tensor): for small
    models the optimiser's per-tensor overhead is a quarter of a training step. The same kernel trains
    many models at once in `core.batched`."""
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, fused=True)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, fused=True)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=nesterov)
    raise ResidueError(f"Unknown optimizer '{name}'.")


def steps_per_epoch(n: int, batch_size: int, single: bool) -> int:
    """Optimiser steps of one epoch over n samples (`drops_single`: a last batch of one is skipped)."""
    return math.ceil(n / batch_size) - (1 if single and n % batch_size == 1 else 0)


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


def compiled(model: nn.Module, X: torch.Tensor):
    """`torch.compile(model)` where asked for (RESIDUE_COMPILE=1) on CUDA, else the model itself. Off by default:
    compiling pays only when its minutes of tracing are spent on many epochs of one shape, which
    bench/vision.py measures before anyone turns it on."""
    if X.device.type == "cuda" and os.environ.get("RESIDUE_COMPILE") == "1":
        return torch.compile(model)
    return model


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
    """Train `model` in place with cross-entropy; `seed` fixes the data order (and the augmentation's draws).

    On CUDA a convolutional model trains channels-last under bfloat16 autocast (`device_layout`,
    `training_context`); on the CPU the arithmetic is unchanged."""
    if len(y) == 0:
        raise ResidueError("Cannot train on an empty set.")
    progress = as_progress(progress)
    g = torch.Generator().manual_seed(int(seed))
    aug = augment_generator(recipe, seed, X)
    single = drops_single(model)
    nhwc = device_layout(model, X)
    step = compiled(model, X)
    opt = make_optimizer(model.parameters(), recipe.optimizer, recipe.lr, recipe.momentum, recipe.weight_decay,
                         recipe.nesterov)
    total_steps = recipe.epochs * steps_per_epoch(len(y), recipe.batch_size, single)
    log = TrainLog()
    start = time.perf_counter()
    fit_to_data(model, X)
    model.train()
    for epoch in range(recipe.epochs):
        total = torch.zeros((), device=X.device)
        for idx in epoch_batches(len(y), recipe.batch_size, g, X.device):
            if single and len(idx) < 2:
                continue
            xb = X[idx] if aug is None else augment_batch(recipe, aug, X[idx])
            if nhwc:
                xb = xb.contiguous(memory_format=torch.channels_last)
            if recipe.schedule:
                for group in opt.param_groups:
                    group["lr"] = recipe.lr_at(log.steps, total_steps)
            with training_context(X):
                loss = F.cross_entropy(step(xb).float(), y[idx], label_smoothing=recipe.label_smoothing)
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
    if nhwc:
        model.to(memory_format=torch.contiguous_format)  # the stored weights keep the usual layout
    log.seconds = time.perf_counter() - start
    log.samples = recipe.epochs * len(y)
    return log
