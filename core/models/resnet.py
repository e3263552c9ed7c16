"""ResNet-18 with torchvision's module names, in its two stems: ImageNet's and the CIFAR one.

Module for module the network of torchvision's `torchvision/models/resnet.py` (`ResNet(BasicBlock, [2, 2, 2, 2])`,
repository pytorch/vision): the same submodules under the same names (`conv1`, `bn1`, `layer1.0.conv1`,
`layer2.0.downsample.0`, …, `fc`), so a torchvision `resnet18()` state dict loads unchanged, with the same
initialisation (Kaiming-normal convolutions, fan-out; batch norm at 1 and 0; the head at PyTorch's default).

Written here rather than imported: the `torchvision==0.28.0` wheel on PyPI is the CUDA build and its operator
library cannot load beside the CPU build of torch 2.13.0 that Residue's environment holds (`import torchvision`
fails with "operator torchvision::nms does not exist"), and a network this small needs nothing else from it.

* `resnet18`: torchvision's stem (7x7 convolution, stride 2, then a 3x3 max-pool).
* `resnet18_cifar`: the stem CIFAR-10 unlearning papers and the Machine Unlearning Comparator use (a 3x3
  convolution, stride 1, and no max-pool: `model.conv1 = Conv2d(3, 64, 3, 1, 1, bias=False)`,
  `model.maxpool = Identity()` on a torchvision resnet18), whose checkpoints load unchanged too.

`width` scales every stage's channels (64, 128, 256, 512) so tests and CPU classrooms run a narrow ResNet in seconds;
at width 1 the state dict is torchvision's. Images may have any number of channels (`conv1` takes them).
Probe-able layers: `stem`, `layer1` … `layer4` (the residual stages), `pool` (the pooled, flattened features)
and `head`.
"""
from __future__ import annotations

import torch
from torch import nn

from ..errors import ResidueError
from .base import Classifier, check_width, default_init, models

STAGES = (64, 128, 256, 512)


class BasicBlock(nn.Module):
    """torchvision's `BasicBlock`: two 3x3 convolutions with batch norm, and the shortcut (`downsample` when the
    shape changes). ReLU is not in place, so a hook or a functional transform sees every output intact."""

    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + identity)


def make_stage(inplanes: int, planes: int, stride: int, blocks: int = 2) -> nn.Sequential:
    """torchvision's `_make_layer` for BasicBlock: a 1x1 convolution and batch norm on the shortcut when the
    stride or the width changes."""
    downsample = None
    if stride != 1 or inplanes != planes:
        downsample = nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))
    layers = [BasicBlock(inplanes, planes, stride, downsample)]
    layers += [BasicBlock(planes, planes) for _ in range(1, blocks)]
    return nn.Sequential(*layers)


def image_shape(name: str, input_shape: tuple[int, ...]) -> tuple[int, int, int]:
    if len(input_shape) != 3:
        raise ResidueError(f"{name} needs image data (C, H, W); this dataset has input shape {input_shape}. Use mlp.")
    return tuple(int(v) for v in input_shape)  # type: ignore[return-value]


def torchvision_init(model: nn.Module, g: torch.Generator, linear: str = "default") -> None:
    """torchvision's initialisation, drawn from `g`: Kaiming-normal convolutions (fan-out, ReLU gain, bias 0),
    batch norm at weight 1 and bias 0; Linear layers at PyTorch's default (ResNet) or N(0, 0.01) with bias 0
    (VGG: `linear="normal"`)."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu", generator=g)
                if m.bias is not None:
                    m.bias.zero_()
            elif isinstance(m, nn.BatchNorm2d):
                m.reset_parameters()
            elif isinstance(m, nn.Linear):
                if linear == "normal":
                    m.weight.normal_(0.0, 0.01, generator=g)
                    m.bias.zero_()
                else:
                    default_init(m, g)


@models.register("resnet18")
class ResNet18(Classifier):
    """ResNet-18 as torchvision builds it (ImageNet stem: 7x7 convolution, stride 2, 3x3 max-pool).
    Layers: stem, layer1..layer4, pool, head."""

    stem = "imagenet"
    registered = "resnet18"

    @classmethod
    def check_options(cls, width=1.0) -> dict:
        return {"width": check_width(f"{cls.registered}: width", width)}

    def __init__(self, input_shape: tuple[int, ...], n_classes: int, width: float = 1.0):
        super().__init__()
        width = self.check_options(width)["width"]
        c, _, _ = image_shape(self.registered, input_shape)
        planes = [max(1, round(p * width)) for p in STAGES]
        if self.stem == "cifar":
            self.conv1 = nn.Conv2d(c, planes[0], 3, 1, 1, bias=False)
        else:
            self.conv1 = nn.Conv2d(c, planes[0], 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(planes[0])
        self.relu = nn.ReLU()
        self.maxpool = nn.Identity() if self.stem == "cifar" else nn.MaxPool2d(3, 2, 1)
        self.layer1 = make_stage(planes[0], planes[0], 1)
        self.layer2 = make_stage(planes[0], planes[1], 2)
        self.layer3 = make_stage(planes[1], planes[2], 2)
        self.layer4 = make_stage(planes[2], planes[3], 2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(planes[3], n_classes)
        self.view_blocks({
            "stem": nn.Sequential(self.conv1, self.bn1, self.relu, self.maxpool),
            "layer1": self.layer1, "layer2": self.layer2, "layer3": self.layer3, "layer4": self.layer4,
            "pool": nn.Sequential(self.avgpool, nn.Flatten()),
            "head": self.fc,
        })

    def initialise(self, g: torch.Generator) -> None:
        torchvision_init(self, g)


@models.register("resnet18_cifar")
class ResNet18Cifar(ResNet18):
    """ResNet-18 with the CIFAR stem (3x3 convolution, stride 1, no max-pool), as CIFAR-10 unlearning papers and
    the Machine Unlearning Comparator build it. Layers: stem, layer1..layer4, pool, head."""

    stem = "cifar"
    registered = "resnet18_cifar"
