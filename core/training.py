"""Training: one `Recipe` holds everything that determines the weights besides data and seeds.

Mini-batches are drawn from a private generator, so the same (init seed, order seed) gives the same
weights on CPU whatever else runs in the process.
"""
from __future__ import annotations

import contextlib
import os
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
    augment: str = "none"  # "none" | "crop_flip" (images: random 4-pixel translation and horizontal flip, seeded)

    def __post_init__(self) -> None:
        check_fields(self, "recipe")  # Recipe(epochs="3") or Recipe(epochs=2.5): the line a config file gets
        checks = [
            (1 <= self.epochs <= 1000, f"epochs must be in [1, 1000], got {self.epochs}"),
            (1 <= self.batch_size <= 65536, f"batch_size must be in [1, 65536], got {self.batch_size}"),
            (0 < self.lr <= 10, f"lr must be in (0, 10], got {self.lr}"),
            (self.optimizer in ("adam", "sgd"), f"optimizer must be 'adam' or 'sgd', got '{self.optimizer}'"),
            (0 <= self.momentum < 1, f"momentum must be in [0, 1), got {self.momentum}"),
            (0 <= self.weight_decay <= 1, f"weight_decay must be in [0, 1], got {self.weight_decay}"),
            (self.augment in AUGMENTS, f"augment must be one of {list(AUGMENTS)}, got {self.augment!r}"),
        ]
        for ok, msg in checks:
            if not ok:
                raise ResidueError(f"recipe: {msg}.")

    def to_dict(self) -> dict:
        """The recipe's fields; `augment` only when it is on, so a recipe without it keeps the hash (and the cached
        models) it had before augmentation existed."""
        d = asdict(self)
        if d["augment"] == "none":
            del d["augment"]
        return d


AUGMENTS = ("none", "crop_flip")
CROP_PAD = 4  # the CIFAR recipe: RandomCrop(32, padding=4) and RandomHorizontalFlip()


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


def augmented(x: torch.Tensor, offsets: torch.Tensor, flips: torch.Tensor, pad: int = CROP_PAD) -> torch.Tensor:
    """Images x (n, C, H, W) padded with zeros by `pad` pixels, cropped back to H x W at `offsets`, and mirrored
    where `flips`: the CIFAR recipe, on whatever device x is. Zero is the mean colour of normalised inputs."""
    n, _, h, w = x.shape
    offsets, flips = offsets.to(x.device), flips.to(x.device)
    padded = F.pad(x, (pad, pad, pad, pad))
    rows = (offsets[:, 0, None] + torch.arange(h, device=x.device))[:, None, :, None]
    cols = offsets[:, 1, None] + torch.arange(w, device=x.device)
    cols = torch.where(flips[:, None], cols.flip(1), cols)[:, None, None, :]
    return padded[torch.arange(n, device=x.device)[:, None, None, None], torch.arange(x.shape[1], device=x.device)[
        None, :, None, None], rows, cols]


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
    inputs should be converted too. On the CPU: no change. RESIDUE_CHANNELS_LAST=0 (and RESIDUE_AMP=0) turn the
    CUDA path off, for the plain fp32 eager baseline bench/vision.py compares with."""
    if (X.device.type != "cuda" or X.dim() != 4 or os.environ.get("RESIDUE_CHANNELS_LAST", "1") == "0"
            or not any(isinstance(m, nn.Conv2d) for m in model.modules())):
        return False
    model.to(memory_format=torch.channels_last)
    return True


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
    opt = make_optimizer(model.parameters(), recipe.optimizer, recipe.lr, recipe.momentum, recipe.weight_decay)
    log = TrainLog()
    model.train()
    start = time.perf_counter()
    for epoch in range(recipe.epochs):
        total = torch.zeros((), device=X.device)
        for idx in epoch_batches(len(y), recipe.batch_size, g, X.device):
            if single and len(idx) < 2:
                continue
            xb = X[idx] if aug is None else augmented(X[idx], *augment_draws(aug, len(idx)))
            if nhwc:
                xb = xb.contiguous(memory_format=torch.channels_last)
            with training_context(X):
                loss = F.cross_entropy(step(xb).float(), y[idx])
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
