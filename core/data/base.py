"""Datasets, validation, deterministic splits and forget-set selection."""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import torch

from ..errors import ResidueError
from ..registry import Registry

MAX_FILE_BYTES = 200 * 1024 * 1024  # user files above this are refused before parsing
MAX_SAMPLES = 200_000


@dataclass
class Dataset:
    """Features and labels in memory. X is float32 of shape (N, *input_shape); y is int64 in [0, n_classes)."""

    name: str
    X: np.ndarray
    y: np.ndarray
    n_classes: int
    kind: str = "tabular"  # "image" (X is (N, C, H, W)), "tabular" or "2d"
    class_names: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.X, self.y = validate_arrays(self.X, self.y, self.name)
        self.n_classes = max(int(self.n_classes), int(self.y.max()) + 1)
        if not self.class_names:
            self.class_names = [str(c) for c in range(self.n_classes)]

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.X.shape[1:])

    def __len__(self) -> int:
        return len(self.y)


def validate_arrays(X, y, name: str = "data") -> tuple[np.ndarray, np.ndarray]:
    """Refuse what would train into silent nonsense: NaN/inf, bad labels, mismatched lengths."""
    try:
        X = np.asarray(X)
        y = np.asarray(y)
    except Exception as e:  # ragged lists and the like
        raise ResidueError(f"{name}: features/labels are not rectangular arrays ({e}).") from None
    if X.dtype == object or not (np.issubdtype(X.dtype, np.number) or X.dtype == bool):
        raise ResidueError(f"{name}: features must be numeric, got dtype {X.dtype}.")
    if X.ndim < 2:
        raise ResidueError(f"{name}: features must have shape (samples, features...), got {X.shape}.")
    if y.ndim != 1:
        raise ResidueError(f"{name}: labels must be one value per sample, got shape {y.shape}.")
    if len(X) != len(y):
        raise ResidueError(f"{name}: {len(X)} feature rows but {len(y)} labels.")
    if len(y) < 10:
        raise ResidueError(f"{name}: only {len(y)} samples; at least 10 are needed.")
    if len(y) > MAX_SAMPLES:
        raise ResidueError(f"{name}: {len(y)} samples is over the limit of {MAX_SAMPLES}.")
    X = X.astype(np.float32)
    bad = ~np.isfinite(X)
    if bad.any():
        rows = np.unique(np.nonzero(bad)[0])
        raise ResidueError(f"{name}: {len(rows)} sample(s) have NaN or infinite features (first row {rows[0]}).")
    if not np.issubdtype(y.dtype, np.integer):
        if y.dtype == object or not np.issubdtype(y.dtype, np.number):
            raise ResidueError(f"{name}: labels must be integers 0..K-1, got dtype {y.dtype}.")
        if not np.all(np.isfinite(y)) or not np.all(y == np.round(y)):
            raise ResidueError(f"{name}: labels must be integers 0..K-1; found non-integer values.")
    y = y.astype(np.int64)
    if y.min() < 0:
        raise ResidueError(f"{name}: labels must be integers 0..K-1; found {int(y.min())}.")
    if len(np.unique(y)) < 2:
        raise ResidueError(f"{name}: labels hold a single class; at least two are needed.")
    if y.max() >= 1000:
        raise ResidueError(f"{name}: label {int(y.max())} is out of range (at most 1000 classes).")
    return X, y


datasets: Registry = Registry("dataset")


def load_dataset(name: str, **options) -> Dataset:
    loader = datasets.get(name)
    try:
        return loader(**options)
    except ResidueError:
        raise
    except (TypeError, ValueError) as e:
        raise ResidueError(f"dataset '{name}': bad option ({e}).") from None


@dataclass
class ForgetSpec:
    """Which training samples to forget: whole classes, a random count/fraction, or explicit indices."""

    kind: str = "class"  # "class" | "random" | "indices"
    classes: list[int] = field(default_factory=lambda: [7])
    count: int | None = None
    fraction: float | None = None
    indices: list[int] = field(default_factory=list)  # dataset indices, must lie in the train split


@dataclass
class Split:
    """A dataset cut into train / test / shadow pool, with the forget set inside train.

    All index arrays are positions in `dataset`. `shadow` is disjoint from train and test: the
    attacks' population pool.
    """

    dataset: Dataset
    train: np.ndarray
    test: np.ndarray
    shadow: np.ndarray
    forget: np.ndarray
    device: torch.device = torch.device("cpu")

    @cached_property
    def retain(self) -> np.ndarray:
        return np.setdiff1d(self.train, self.forget, assume_unique=True)

    @cached_property
    def _X(self) -> torch.Tensor:
        return torch.as_tensor(self.dataset.X, device=self.device)

    @cached_property
    def _y(self) -> torch.Tensor:
        return torch.as_tensor(self.dataset.y, device=self.device)

    def tensors(self, part: str | np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """(X, y) tensors of a part ('train', 'test', 'shadow', 'forget', 'retain') or an index array."""
        idx = getattr(self, part) if isinstance(part, str) else np.asarray(part)
        t = torch.as_tensor(idx, device=self.device, dtype=torch.long)
        return self._X[t], self._y[t]

    @property
    def forget_classes(self) -> list[int]:
        """Classes wholly forgotten (class-wise unlearning), else []."""
        y = self.dataset.y
        fc = np.unique(y[self.forget])
        return [int(c) for c in fc if not np.isin(self.retain, np.nonzero(y == c)[0]).any()]

    def summary(self) -> dict[str, int]:
        return {p: int(len(getattr(self, p))) for p in ("train", "test", "shadow", "forget", "retain")}


def _stratified_parts(y: np.ndarray, fractions: list[float], rng: np.random.Generator) -> list[np.ndarray]:
    parts: list[list[int]] = [[] for _ in fractions]
    for c in np.unique(y):
        idx = rng.permutation(np.nonzero(y == c)[0])
        cuts = np.floor(np.cumsum(fractions)[:-1] * len(idx) + 0.5).astype(int)
        for i, chunk in enumerate(np.split(idx, cuts)):
            parts[i].extend(chunk.tolist())
    return [np.sort(np.asarray(p, dtype=np.int64)) for p in parts]


def make_split(
    dataset: Dataset,
    forget: ForgetSpec,
    test_fraction: float = 0.2,
    shadow_fraction: float = 0.25,
    seed: int = 0,
    device: torch.device | str = "cpu",
) -> Split:
    """Deterministic stratified split (same seed, same indices) and the forget set inside train."""
    if not 0.05 <= test_fraction <= 0.5:
        raise ResidueError(f"test_fraction must be in [0.05, 0.5], got {test_fraction}.")
    if not 0.0 <= shadow_fraction <= 0.6 or test_fraction + shadow_fraction > 0.8:
        raise ResidueError(f"shadow_fraction must be in [0, 0.6] with test + shadow <= 0.8, got {shadow_fraction}.")
    rng = np.random.default_rng(seed)
    train_fraction = 1.0 - test_fraction - shadow_fraction
    train, test, shadow = _stratified_parts(dataset.y, [train_fraction, test_fraction, shadow_fraction], rng)
    forget_idx = select_forget(dataset, train, forget, seed)
    return Split(dataset, train, test, shadow, forget_idx, torch.device(device))


def select_forget(dataset: Dataset, train: np.ndarray, spec: ForgetSpec, seed: int) -> np.ndarray:
    y_train = dataset.y[train]
    if spec.kind == "class":
        classes = [int(c) for c in spec.classes]
        if not classes:
            raise ResidueError("Forget set is empty: choose at least one class to forget.")
        missing = [c for c in classes if not np.any(y_train == c)]
        if missing:
            raise ResidueError(
                f"Class {missing[0]} is not present in the training data (classes: 0..{dataset.n_classes - 1})."
            )
        chosen = train[np.isin(y_train, classes)]
    elif spec.kind == "random":
        if spec.count is not None:
            n = int(spec.count)
        elif spec.fraction is not None:
            if not 0 < spec.fraction <= 1:
                raise ResidueError(f"Forget fraction must be in (0, 1], got {spec.fraction}.")
            n = int(round(spec.fraction * len(train)))
        else:
            raise ResidueError("Random forget set needs a count or a fraction.")
        if n <= 0:
            raise ResidueError("Forget set is empty: ask for at least one sample.")
        if n > len(train):
            raise ResidueError(f"Forget set of {n} samples is larger than the training set ({len(train)}).")
        chosen = np.random.default_rng(seed + 7919).choice(train, size=n, replace=False)
    elif spec.kind == "indices":
        idx = np.unique(np.asarray(spec.indices, dtype=np.int64))
        if len(idx) == 0:
            raise ResidueError("Forget set is empty: pick at least one sample.")
        outside = idx[~np.isin(idx, train)]
        if len(outside):
            raise ResidueError(f"Sample {int(outside[0])} is not in the training split, so it cannot be forgotten.")
        chosen = idx
    else:
        raise ResidueError(f"Unknown forget kind '{spec.kind}'. Known: class, random, indices.")
    chosen = np.sort(chosen.astype(np.int64))
    if len(chosen) >= len(train):
        raise ResidueError("Forget set is the whole training set: nothing would remain to retrain on.")
    remaining = np.unique(dataset.y[np.setdiff1d(train, chosen)])
    if len(remaining) < 2:
        raise ResidueError("The retain set would hold a single class; forget fewer classes.")
    return chosen
