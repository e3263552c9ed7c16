"""Datasets that work offline: scikit-learn's bundled digits and 2-D synthetic sets."""
from __future__ import annotations

import numpy as np

from ..errors import ResidueError
from ..params import shown
from .base import Dataset, datasets


@datasets.register("digits")
def digits() -> Dataset:
    """scikit-learn's bundled 8x8 digits (1,797 images), scaled to [0, 1], shape (N, 1, 8, 8).

    Read straight from the file scikit-learn ships (what `load_digits` parses): importing
    `sklearn.datasets` costs over a second, most of a cached run's time."""
    raw = _bundled_digits()
    X = (raw[:, :64].reshape(-1, 8, 8) / 16.0).astype(np.float32)[:, None, :, :]
    return Dataset("digits", X, raw[:, 64].astype(np.int64), 10, kind="image")


def _bundled_digits() -> np.ndarray:
    """(1797, 65) array: 64 pixel values 0..16, then the label."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.find_spec("sklearn")  # locates the package without importing it
    path = Path(spec.origin).parent / "datasets" / "data" / "digits.csv.gz" if spec and spec.origin else None
    if path is None or not path.is_file():
        from sklearn.datasets import load_digits

        d = load_digits()
        return np.c_[d.data, d.target]
    return np.loadtxt(path, delimiter=",")


def _number(name: str, value, low: float, high: float, whole: bool = False) -> float:
    """One synthetic-data option, checked for type and range before it reaches scikit-learn."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        raise ResidueError(f"{name} must be a number, got {shown(value)}.")
    if whole and value != int(value):
        raise ResidueError(f"{name} must be a whole number, got {shown(value)}.")
    if not low <= value <= high:
        raise ResidueError(f"{name} must be in [{low:g}, {high:g}], got {value}.")
    return int(value) if whole else float(value)


def _seed(seed) -> int:
    return _number("seed", seed, 0, 2**32 - 1, whole=True)


def _check_n(n_samples, noise) -> tuple[int, float]:
    return _number("n_samples", n_samples, 100, 20_000, whole=True), _number("noise", noise, 0.0, 1.0)


@datasets.register("moons")
def moons(n_samples: int = 1200, noise: float = 0.2, seed: int = 0) -> Dataset:
    """Two interleaving half-moons: decision regions and neighbourhoods can be drawn in input space."""
    from sklearn.datasets import make_moons

    n_samples, noise = _check_n(n_samples, noise)
    X, y = make_moons(n_samples=n_samples, noise=noise, random_state=_seed(seed))
    return Dataset("moons", X, y, 2, kind="2d")


@datasets.register("blobs")
def blobs(n_samples: int = 1200, centers: int = 4, noise: float = 0.25, seed: int = 0) -> Dataset:
    """Gaussian blobs in 2-D (noise is the cluster spread relative to the unit box)."""
    from sklearn.datasets import make_blobs

    n_samples, noise = _check_n(n_samples, noise)
    centers = _number("centers", centers, 2, 10, whole=True)
    X, y = make_blobs(n_samples=n_samples, centers=centers, cluster_std=1.0 + 4 * noise,
                      random_state=_seed(seed), center_box=(-8, 8))
    X = (X - X.mean(0)) / X.std(0)
    return Dataset("blobs", X, y, int(centers), kind="2d")
