from __future__ import annotations

from torch import nn

from ..errors import ResidueError
from .base import Classifier, models


@models.register("cnn")
class CNN(Classifier):
    """Small CNN for (C, H, W) images. Layers: conv1, conv2 (conv+ReLU, then 2x2 max-pool), fc, head."""

    def __init__(self, input_shape: tuple[int, ...], n_classes: int, channels: tuple[int, int] = (16, 32),
                 hidden: int = 64):
        super().__init__()
        if len(input_shape) != 3:
            raise ResidueError(f"cnn needs image data (C, H, W); this dataset has input shape {input_shape}. Use mlp.")
        c, h, w = input_shape
        if h < 4 or w < 4:
            raise ResidueError(f"cnn needs images of at least 4x4 pixels, got {h}x{w}.")
        c1, c2 = (int(x) for x in channels)
        self.blocks = nn.ModuleDict({
            "conv1": nn.Sequential(nn.Conv2d(c, c1, 3, padding=1), nn.ReLU()),
            "conv2": nn.Sequential(nn.Conv2d(c1, c2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)),
            "fc": nn.Sequential(nn.Flatten(), nn.Linear(c2 * (h // 2) * (w // 2), int(hidden)), nn.ReLU()),
            "head": nn.Linear(int(hidden), n_classes),
        })
