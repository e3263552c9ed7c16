from __future__ import annotations

import math

from torch import nn

from .base import Classifier, models, whole_numbers


@models.register("mlp")
class MLP(Classifier):
    """Fully connected ReLU network. Layers: block1..blockK (Linear+ReLU), head (Linear)."""

    @classmethod
    def check_options(cls, hidden=(128, 128, 128, 128)) -> dict:
        return {"hidden": whole_numbers("mlp: hidden widths", hidden, 1, 4096, (1, 8))}

    def __init__(self, input_shape: tuple[int, ...], n_classes: int, hidden: list[int] | tuple[int, ...] = (128, 128, 128, 128)):
        super().__init__()
        hidden = self.check_options(hidden)["hidden"]
        blocks: dict[str, nn.Module] = {}
        width = math.prod(input_shape)
        for i, h in enumerate(hidden, start=1):
            layers = [nn.Flatten()] if i == 1 else []
            blocks[f"block{i}"] = nn.Sequential(*layers, nn.Linear(width, h), nn.ReLU())
            width = h
        blocks["head"] = nn.Linear(width, n_classes)
        self.blocks = nn.ModuleDict(blocks)
