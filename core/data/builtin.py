"""Datasets that work offline: scikit-learn's bundled digits and 2-D synthetic sets."""
from __future__ import annotations

import numpy as np

from ..errors import ResidueError
from .base import Dataset, datasets


@datasets.register("digits")
def digits() -> Dataset:
    """scikit-learn's bundled 8x8 digits (1,797 images), scaled to [0, 1], shape (N, 1, 8, 8)."""
    from sklearn.datasets import load_digits

    d = load_digits()
    X = (d.images / 16.0).astype(np.float32)[:, None, :, :]
    return Dataset("digits", X, d.target, 10, kind="image")


def _check_n(n_samples: int, noise: float) -> None:
    if not 100 <= int(n_samples) <= 20_000:
        raise ResidueError(f"n_samples must be in [100, 20000], got {n_samples}.")
    if not 0.0 <= float(noise) <= 1.0:
        raise ResidueError(f"noise must be in [0, 1], got {noise}.")


@datasets.register("moons")
def moons(n_samples: int = 1200, noise: float = 0.2, seed: int = 0) -> Dataset:
    """Two interleaving half-moons: decision regions and neighbourhoods can be drawn in input space."""
    from sklearn.datasets import make_moons

    _check_n(n_samples, noise)
    X, y = make_moons(n_samples=int(n_samples), noise=float(noise), random_state=seed)
    return Dataset("moons", X, y, 2, kind="2d")


@datasets.register("blobs")
def blobs(n_samples: int = 1200, centers: int = 4, noise: float = 0.25, seed: int = 0) -> Dataset:
    """Gaussian blobs in 2-D (noise is the cluster spread relative to the unit box)."""
    from sklearn.datasets import make_blobs

    _check_n(n_samples, noise)
    if not 2 <= int(centers) <= 10:
        raise ResidueError(f"centers must be in [2, 10], got {centers}.")
    X, y = make_blobs(n_samples=int(n_samples), centers=int(centers), cluster_std=1.0 + 4 * float(noise),
                      random_state=seed, center_box=(-8, 8))
    X = (X - X.mean(0)) / X.std(0)
    return Dataset("blobs", X, y, int(centers), kind="2d")
