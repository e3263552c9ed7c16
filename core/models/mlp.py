from __future__ import annotations

import math

from torch import nn

from ..errors import ResidueError
from .base import Classifier, models


@models.register("mlp")
class MLP(Classifier):
    """Fully connected ReLU network. Layers: block1..blockK (Linear+ReLU), head (Linear)."""

    def __init__(self, input_shape: tuple[int, ...], n_classes: int, hidden: list[int] | tuple[int, ...] = (256, 256)):
        super().__init__()
        hidden = [int(h) for h in hidden]
        if not hidden or any(not 1 <= h <= 4096 for h in hidden) or len(hidden) > 8:
            raise ResidueError(f"mlp: hidden widths must be 1 to 8 layers of 1..4096 units, got {hidden}.")
        blocks: dict[str, nn.Module] = {}
        width = math.prod(input_shape)
        for i, h in enumerate(hidden, start=1):
            layers = [nn.Flatten()] if i == 1 else []
            blocks[f"block{i}"] = nn.Sequential(*layers, nn.Linear(width, h), nn.ReLU())
            width = h
        blocks["head"] = nn.Linear(width, n_classes)
        self.blocks = nn.ModuleDict(blocks)
