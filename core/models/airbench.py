"""airbench's network: a fast CIFAR-10 model, so that retrains and shadow models are cheap at CIFAR scale.

The network of `airbench94.py` in Keller Jordan's repository KellerJordan/cifar10-airbench ("94% on CIFAR-10 in
3.29 seconds on a single GPU", 2024), written here as a Residue `Classifier` (its own code stays there):

* `whiten`: a 2x2 convolution (no padding) with 2·C·4 filters, then GELU. Its filters are computed from the
  training images, not learned: each eigenvector of the 2x2 patches' covariance scaled by 1/sqrt(eigenvalue + 5e-4),
  and its negative. `train` (and `train_many`, per model) computes them from the model's own training data before
  the first step (`fit_to_data`, `core.training.fit_to_data`): θ_r's from the retain set, each shadow model's
  from its subset. The weight is a buffer (frozen, outside every optimiser); zeros mark a model not yet fitted,
  so fine-tuning a trained model never refits it. Its bias trains.
* `block1` … `block3`: airbench's ConvGroup: 3x3 convolution, 2x2 max-pool, batch norm, GELU, 3x3 convolution,
  batch norm, GELU; 64, 256 and 256 channels at `width` 1. Convolutions have no bias and start as PyTorch's
  default plus airbench's identity (Dirac) initialisation of the first `in_channels` filters. Batch norm as
  airbench's: no learned scale (fixed at 1), eps 1e-12, running statistics with momentum 0.4 (its 0.6 the other
  way round), and the bias learning 64 times faster than the rest (its `bias_scaler`), here by parametrisation:
  the stored `shift` is bias / 8, so any optimiser's step on it moves the bias 64x as far under SGD, with the
  same weight decay per step as every other weight, which is what airbench's two parameter groups do.
* `pool`: the global max over the last feature map (airbench's MaxPool2d(3) on its 3x3 map at 32x32 input; the
  same there, and any size of at least 9x9 pixels works), flattened.
* `head`: a Linear layer without bias, its logits scaled by 1/9.

Its recipe is the registered recipe "airbench" (`core.training.recipes`; `[recipe] name = "airbench"`): Nesterov
SGD, label smoothing 0.2, batch 1024, a triangular learning-rate schedule, 10 epochs, 2-pixel translations and
flips. What is left out, and why:
* Lookahead/EMA of the weights (every 5 steps from epoch 3): a second, averaged copy of the weights copied
  back into the model is not a recipe of `train`'s kind (one optimiser step per mini-batch), and `train_many`
  would need it for every stacked model; airbench reports it as a small gain in accuracy, not in speed.
* Test-time augmentation (mirror and 1-pixel translations averaged): every probe, attack and accuracy in Residue
  reads the model's plain outputs; averaging six views would change what θ_o is, for every analysis.
* Freezing the whitening bias after 3 epochs: it trains throughout (a per-epoch change of what is trainable).
* Alternating flips (every image flipped on every other epoch): random flips instead, drawn per image from the
  model's seeded augmentation generator as for crop_flip; the same augmentation in distribution.
* Its own data loader and fp16 weights: Residue's loop keeps the data on the device already; on CUDA `train`
  runs bfloat16 autocast and channels-last (core.training), on the CPU float32.
* 9.9 epochs: Residue's recipes count whole epochs (10).
* Its summed loss over full batches only (drop_last): Residue's mean loss, with the learning rate converted
  (above), and every epoch's last, shorter batch trained on too, as for every other recipe.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ResidueError
from .base import Classifier, check_width, models
from .resnet import image_shape

WIDTHS = (64, 256, 256)  # block1, block2, block3 at width 1 (airbench's base_width 64, then 4x)
BIAS_SCALE = 8.0  # the stored batch-norm shift is bias / 8: SGD moves the bias 8² = 64x (airbench's bias_scaler)
WHITEN_EPS = 5e-4
WHITEN_IMAGES = 5000  # airbench whitens from the first 5,000 training images


class Whitening(nn.Module):
    """A k x k convolution whose weight is computed from data (`fit`), a buffer; only the bias trains."""

    def __init__(self, channels: int, k: int = 2):
        super().__init__()
        self.register_buffer("weight", torch.zeros(2 * channels * k * k, channels, k, k))
        self.bias = nn.Parameter(torch.zeros(2 * channels * k * k))

    @property
    def fitted(self) -> bool:
        return bool(self.weight.any())

    @torch.no_grad()
    def fit(self, X: torch.Tensor) -> None:
        """The patch-whitening filters of images X (N, C, H, W): ± each eigenvector of the k x k patches'
        (uncentred) covariance over 1/sqrt(eigenvalue + eps), largest eigenvalue first. The covariance is summed
        in float64, a chunk of images at a time (all patches of 5,000 images at once would be 230 MB)."""
        c, k = self.weight.shape[1], self.weight.shape[-1]
        cov = torch.zeros(c * k * k, c * k * k, dtype=torch.float64, device=X.device)
        n = 0
        for chunk in X[:WHITEN_IMAGES].split(500):
            patches = chunk.unfold(2, k, 1).unfold(3, k, 1).permute(0, 2, 3, 1, 4, 5).reshape(-1, c * k * k).double()
            cov += patches.T @ patches
            n += len(patches)
        values, vectors = torch.linalg.eigh(cov / max(n, 1))
        filters = (vectors.T / (values.clamp_min(0) + WHITEN_EPS).sqrt()[:, None]).flip(0).reshape(-1, c, k, k)
        self.weight.copy_(torch.cat([filters, -filters]).to(self.weight.dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight, self.bias)


class ShiftNorm(nn.BatchNorm2d):
    """airbench's batch norm: no learned scale, eps 1e-12, running-statistics momentum 0.4, and a learned shift
    stored as bias / BIAS_SCALE (see the module's docstring)."""

    def __init__(self, channels: int):
        super().__init__(channels, eps=1e-12, momentum=0.4, affine=False)
        self.shift = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x) + (self.shift * BIAS_SCALE)[:, None, None]


class ConvGroup(nn.Sequential):
    """airbench's ConvGroup: conv, max-pool, norm, GELU, conv, norm, GELU."""

    def __init__(self, channels_in: int, channels_out: int):
        super().__init__(nn.Conv2d(channels_in, channels_out, 3, padding=1, bias=False), nn.MaxPool2d(2),
                         ShiftNorm(channels_out), nn.GELU(),
                         nn.Conv2d(channels_out, channels_out, 3, padding=1, bias=False), ShiftNorm(channels_out),
                         nn.GELU())


class GlobalMaxPool(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.amax(dim=(-2, -1))


class Scale(nn.Module):
    def __init__(self, factor: float):
        super().__init__()
        self.factor = factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.factor


@models.register("airbench")
class Airbench(Classifier):
    """airbench94's network (see the module's docstring). Layers: whiten, block1, block2, block3, pool, head."""

    @classmethod
    def check_options(cls, width=1.0) -> dict:
        return {"width": check_width("airbench: width", width)}

    def __init__(self, input_shape: tuple[int, ...], n_classes: int, width: float = 1.0):
        super().__init__()
        width = self.check_options(width)["width"]
        c, h, w = image_shape("airbench", input_shape)
        if min(h, w) < 9:
            raise ResidueError(f"airbench needs images of at least 9x9 pixels (a 2x2 whitening convolution, then three "
                               f"2x2 max-pools), got {h}x{w}; use cnn or mlp.")
        w1, w2, w3 = (max(1, round(v * width)) for v in WIDTHS)
        whiten = Whitening(c)
        self.blocks = nn.ModuleDict({
            "whiten": nn.Sequential(whiten, nn.GELU()),
            "block1": ConvGroup(whiten.weight.shape[0], w1),
            "block2": ConvGroup(w1, w2),
            "block3": ConvGroup(w2, w3),
            "pool": GlobalMaxPool(),
            "head": nn.Sequential(nn.Linear(w3, n_classes, bias=False), Scale(1 / 9)),
        })

    @property
    def whitening(self) -> Whitening:
        return self.blocks["whiten"][0]

    def initialise(self, g: torch.Generator) -> None:
        """PyTorch's default init of every convolution and the head, then airbench's Dirac (identity) init of each
        convolution's first `in_channels` filters; the whitening filters wait for the data (zeros)."""
        super().initialise(g)
        with torch.no_grad():
            for m in self.modules():
                if isinstance(m, nn.Conv2d):
                    nn.init.dirac_(m.weight[:m.weight.shape[1]])
            self.whitening.weight.zero_()
            self.whitening.bias.zero_()

    def fit_to_data(self, X: torch.Tensor) -> None:
        """Compute the whitening filters from the training images X, once (a fitted model keeps its own)."""
        if not self.whitening.fitted:
            self.whitening.fit(X)
