"""VGG-11 with batch norm, with torchvision's module names.

Module for module the network of torchvision's `torchvision/models/vgg.py` (`vgg11_bn`: configuration "A" with
batch norm; repository pytorch/vision): `features.<i>` (convolution, batch norm, ReLU; max-pools between the five
stages), `avgpool` (adaptive, to 7x7) and `classifier.0/3/6` (4096, 4096, classes), so a torchvision
`vgg11_bn()` state dict loads unchanged, with torchvision's initialisation (Kaiming-normal convolutions, fan-out;
Linear layers N(0, 0.01); biases 0). Written here for the reason `resnet.py` gives.

One difference, which no state dict sees: the classifier's two Dropout layers (no parameters, positions 2 and 5)
are identities. Residue's training is reproducible because every random draw comes from a seeded private
generator; dropout draws from the global one (and `vmap`, which trains many models at once, refuses it).

`width` scales the convolution channels (64 … 512) and the classifier's hidden width (4096). Five 2x2 max-pools
need images of at least 32x32 pixels. Layers: block1 … block5 (the stages, each ending in its max-pool), pool (the
7x7 pooled, flattened features), fc1, fc2, head.
"""
from __future__ import annotations

import torch
from torch import nn

from ..errors import ResidueError
from .base import Classifier, check_width, models
from .resnet import image_shape, torchvision_init

CONFIG_A = (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M")


@models.register("vgg11_bn")
class VGG11BN(Classifier):
    """VGG-11 with batch norm as torchvision builds it. Layers: block1..block5, pool, fc1, fc2, head."""

    @classmethod
    def check_options(cls, width=1.0) -> dict:
        return {"width": check_width("vgg11_bn: width", width)}

    def __init__(self, input_shape: tuple[int, ...], n_classes: int, width: float = 1.0):
        super().__init__()
        width = self.check_options(width)["width"]
        c, h, w = image_shape("vgg11_bn", input_shape)
        if min(h, w) < 32:
            raise ResidueError(f"vgg11_bn needs images of at least 32x32 pixels (five 2x2 max-pools), got {h}x{w}; "
                               f"use resnet18_cifar or cnn.")
        layers: list[nn.Module] = []
        ends = []
        for v in CONFIG_A:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
                ends.append(len(layers))
            else:
                out = max(1, round(int(v) * width))
                layers += [nn.Conv2d(c, out, 3, padding=1), nn.BatchNorm2d(out), nn.ReLU()]
                c = out
        hidden = max(1, round(4096 * width))
        self.features = nn.Sequential(*layers)  # torchvision's name; `self.features` stays Classifier.features()
        features = self._modules["features"]
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(nn.Linear(c * 49, hidden), nn.ReLU(), nn.Identity(),
                                        nn.Linear(hidden, hidden), nn.ReLU(), nn.Identity(),
                                        nn.Linear(hidden, n_classes))
        starts = [0] + ends[:-1]
        blocks: dict[str, nn.Module] = {f"block{i + 1}": features[a:b] for i, (a, b) in enumerate(zip(starts, ends))}
        blocks.update({"pool": nn.Sequential(self.avgpool, nn.Flatten()), "fc1": self.classifier[0:3],
                       "fc2": self.classifier[3:6], "head": self.classifier[6]})
        self.view_blocks(blocks)

    def initialise(self, g: torch.Generator) -> None:
        torchvision_init(self, g, linear="normal")
