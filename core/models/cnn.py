from __future__ import annotations

from torch import nn

from ..errors import ResidueError
from .base import Classifier, models, whole_numbers


@models.register("cnn")
class CNN(Classifier):
    """Small CNN for (C, H, W) images. Layers: conv1, conv2 (conv+ReLU, then 2x2 max-pool), fc, head."""

    @classmethod
    def check_options(cls, channels=(16, 32), hidden=64) -> dict:
        return {"channels": whole_numbers("cnn: channels", channels, 1, 256, (2, 2)),
                "hidden": whole_numbers("cnn: hidden", hidden, 1, 4096, (1, 1))[0]}

    def __init__(self, input_shape: tuple[int, ...], n_classes: int, channels: tuple[int, int] = (16, 32),
                 hidden: int = 64):
        super().__init__()
        channels, hidden = self.check_options(channels, hidden).values()
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
