"""Datasets, validation, deterministic splits and forget-set selection."""
from __future__ import annotations

import copy
import inspect
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..errors import ResidueError
from ..params import check_fields
from ..registry import Registry

MAX_FILE_BYTES = 200 * 1024 * 1024  # user files above this are refused before parsing
MAX_SAMPLES = 200_000
MAX_FEATURES = 65_536  # a 256x256 image
MAX_VALUES = 50_000_000  # 200 MB as float32
MAX_IMAGE_VALUES = 200_000_000  # images: CIFAR-10 whole (60,000 x 3 x 32 x 32) is 184 million values, 737 MB
MAX_CLASSES = 1000


@dataclass
class Dataset:
    """Features and labels in memory. X is float32 of shape (N, *input_shape); y is int64 in [0, n_classes)."""

    name: str
    X: np.ndarray
    y: np.ndarray
    n_classes: int
    kind: str = "tabular"  # "image" (X is (N, C, H, W)), "tabular" or "2d"
    class_names: list[str] = field(default_factory=list)
    standardize: bool = False  # `make_split` scales each feature with the training split's mean and deviation
    # images: `make_split` normalises each channel, with the training split's mean and deviation (True) or with
    # fixed (mean, std) lists, one value per channel; `norm_stats` then records the (mean, std) it applied
    channel_norm: bool | tuple = False
    norm_stats: tuple | None = None

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
    """Refuse what would train into silent nonsense: NaN/inf, bad labels, mismatched lengths, odd shapes."""
    try:
        X = np.asarray(X)
        y = np.asarray(y)
    except Exception as e:  # ragged lists and the like
        raise ResidueError(f"{name}: features/labels are not rectangular arrays ({e}).") from None
    if X.dtype == object or np.iscomplexobj(X) or not (np.issubdtype(X.dtype, np.number) or X.dtype == bool):
        raise ResidueError(f"{name}: features must be real numbers, got dtype {X.dtype}.")
    if not 2 <= X.ndim <= 4:
        raise ResidueError(f"{name}: features must have shape (samples, features) or (samples, [channels,] "
                           f"height, width), got {X.shape}.")
    if y.ndim != 1:
        raise ResidueError(f"{name}: labels must be one value per sample, got shape {y.shape}.")
    if len(X) != len(y):
        raise ResidueError(f"{name}: {len(X)} feature rows but {len(y)} labels.")
    if len(y) < 10:
        raise ResidueError(f"{name}: only {len(y)} samples; at least 10 are needed.")
    if len(y) > MAX_SAMPLES:
        raise ResidueError(f"{name}: {len(y)} samples is over the limit of {MAX_SAMPLES}.")
    n_features = int(np.prod(X.shape[1:]))
    if n_features == 0:
        raise ResidueError(f"{name}: samples have no features (shape {X.shape}).")
    most = MAX_IMAGE_VALUES if X.ndim == 4 else MAX_VALUES
    if n_features > MAX_FEATURES or X.size > most:
        raise ResidueError(f"{name}: {n_features} features per sample x {len(y)} samples is over the limit "
                           f"({MAX_FEATURES} features, {most} values in all).")
    with np.errstate(over="ignore", invalid="ignore"):
        X = X.astype(np.float32, copy=False)  # float32 already (a parsed CSV): no second copy of a large table
    flat = X.reshape(len(X), -1)
    step = max(1, 2**22 // flat.shape[1])  # rows at a time: a mask of 4 MB, never one as large as X
    rows = np.concatenate([i + np.nonzero(~np.isfinite(flat[i: i + step]).all(axis=1))[0]
                           for i in range(0, len(flat), step)])
    if len(rows):
        raise ResidueError(f"{name}: {len(rows)} sample(s) have NaN or infinite features (or beyond float32) "
                           f"(first row {rows[0]}).")
    return X, _labels(y, name)


def _labels(y: np.ndarray, name: str) -> np.ndarray:
    """Integer labels 0..K-1 with every class present, checked before any cast can wrap them around."""
    if y.dtype == bool or y.dtype == object or np.iscomplexobj(y) or not np.issubdtype(y.dtype, np.number):
        raise ResidueError(f"{name}: labels must be integers 0..K-1, got dtype {y.dtype}.")
    if not np.issubdtype(y.dtype, np.integer):
        if not np.all(np.isfinite(y)) or not np.all(y == np.round(y)):
            raise ResidueError(f"{name}: labels must be integers 0..K-1; found non-integer values.")
    if y.min() < 0:
        raise ResidueError(f"{name}: labels must be integers 0..K-1; found {y.min():.6g}.")
    if y.max() >= MAX_CLASSES:
        raise ResidueError(f"{name}: label {y.max():.6g} is out of range (at most {MAX_CLASSES} classes).")
    y = y.astype(np.int64)
    present = np.unique(y)
    if len(present) < 2:
        raise ResidueError(f"{name}: labels hold a single class; at least two are needed.")
    if len(present) != int(y.max()) + 1:
        missing = np.setdiff1d(np.arange(int(y.max()) + 1), present)
        raise ResidueError(f"{name}: labels must be 0..K-1 with every class present; no sample has label "
                           f"{', '.join(map(str, missing[:5]))}{'...' if len(missing) > 5 else ''} (relabel them).")
    return y


datasets: Registry = Registry("dataset")


def check_dataset_options(name: str, options: dict) -> None:
    """Refuse an option the loader does not take, naming the ones it does (also at config time)."""
    known = list(inspect.signature(datasets.get(name)).parameters)
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise ResidueError(f"dataset '{name}': unknown option {unknown[0]!r}; known: {known or 'none'}.")


def example(writer: Callable[[Path], object], **options: str) -> Callable:
    """Declares that a loader reads files, and how to make a tiny valid example of them: `writer(folder)` writes
    the files into `folder`, and `options` (paths relative to that folder, "." for the folder itself) load them.

    The conformance suite loads every file-reading loader through its example (one without fails the suite),
    and `python -m core example-data NAME DIR` shows a user the layout the loader expects."""
    def mark(loader: Callable) -> Callable:
        loader.example = (writer, options)
        return loader

    return mark


def reads_files(name: str) -> bool:
    """Whether the dataset `name` declared an example of the files it reads (`example`)."""
    return hasattr(datasets.get(name), "example")


def write_example(name: str, folder: str | Path) -> dict[str, str]:
    """Write the example files of dataset `name` into `folder` (created; an empty one, so no file of the user's is
    overwritten) and return the options that load them: absolute paths, so they load wherever `folder` lies
    inside the data directory."""
    if not reads_files(name):
        raise ResidueError(f"dataset '{name}' reads no files, so it has no example to write.")
    writer, options = datasets.get(name).example
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        if any(folder.iterdir()):
            raise ResidueError(f"'{folder}' is not empty; give a new or empty folder for the {name} example "
                               f"(nothing is overwritten).")
        writer(folder)
    except OSError as e:
        raise ResidueError(f"Cannot write the {name} example into '{folder}' ({e.strerror or type(e).__name__}).") \
            from None
    return {k: str((folder / v).resolve()) for k, v in options.items()}


def load_dataset(name: str, **options) -> Dataset:
    loader = datasets.get(name)
    check_dataset_options(name, options)
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

    def validate(self) -> "ForgetSpec":
        """The checks that need no data, so a config is refused before anything is loaded or trained."""
        check_fields(self, "data.forget")
        if self.kind not in FORGET_KINDS:
            raise ResidueError(f"Unknown forget kind '{self.kind}'. Known: {', '.join(FORGET_KINDS)}.")
        listed = {"class": (self.classes, "class"), "indices": (self.indices, "sample")}.get(self.kind)
        if listed is not None:
            values, what = listed
            if not values:
                raise ResidueError(f"Forget set is empty: choose at least one {what}.")
            if min(values) < 0:
                raise ResidueError(f"Forget {what} numbers must be >= 0, got {min(values)}.")
        elif self.count is not None:
            if self.count <= 0:
                raise ResidueError("Forget set is empty: ask for at least one sample.")
        elif self.fraction is not None:
            if not 0 < self.fraction <= 1:
                raise ResidueError(f"Forget fraction must be in (0, 1], got {self.fraction}.")
        else:
            raise ResidueError("Random forget set needs a count or a fraction.")
        return self


FORGET_KINDS = ("class", "random", "indices")


def check_fractions(test_fraction: float, shadow_fraction: float) -> None:
    """The split's shares: enough test data to measure, enough train data to learn."""
    if not 0.05 <= test_fraction <= 0.5:
        raise ResidueError(f"test_fraction must be in [0.05, 0.5], got {test_fraction}.")
    if not 0.0 <= shadow_fraction <= 0.6 or test_fraction + shadow_fraction > 0.8:
        raise ResidueError(f"shadow_fraction must be in [0, 0.6] with test + shadow <= 0.8, got {shadow_fraction}.")


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
    """Deterministic stratified split (same seed, same indices) and the forget set inside train.

    A split that leaves a part empty or without a class it needs is refused with the counts (`check_parts`,
    `select_forget`). A dataset that asks for it (`standardize`) is standardised here, where the training
    split is known (`standardized`)."""
    check_fractions(test_fraction, shadow_fraction)
    rng = np.random.default_rng(seed)
    train_fraction = 1.0 - test_fraction - shadow_fraction
    train, test, shadow = _stratified_parts(dataset.y, [train_fraction, test_fraction, shadow_fraction], rng)
    check_parts(dataset, train, test, shadow, shadow_fraction)
    forget_idx = select_forget(dataset, train, forget, seed)
    if dataset.standardize:
        dataset = standardized(dataset, train)
    elif dataset.channel_norm:
        dataset = channel_normalized(dataset, train)
    return Split(dataset, train, test, shadow, forget_idx, torch.device(device))


def check_parts(dataset: Dataset, train: np.ndarray, test: np.ndarray, shadow: np.ndarray,
                shadow_fraction: float) -> None:
    """Refuse a split whose measurements would be silent nonsense, naming the counts.

    - train holds every class: θ_o learns every class the data declares (the forget set is drawn from train,
      so a class missing there could be neither kept nor forgotten);
    - test holds at least two classes: an accuracy over no sample is NaN, over one class it says nothing of
      the classifier. It need not hold every class: a class of one sample lives in train only, legitimately;
    - shadow, the attacks' population pool, is empty only when `shadow_fraction` is 0 (no pool asked for: the
      attacks that need one say so when run); it needs no class coverage, each attack checks its own needs.
    The retain set's coverage depends on the forget set: `select_forget` checks it."""
    y = dataset.y
    counts = np.bincount(y)
    sizes = (f"train {len(train)}, test {len(test)}, shadow {len(shadow)} of {len(y)} samples in "
             f"{np.count_nonzero(counts)} classes, the smallest with {counts[counts > 0].min()}")
    missing = np.setdiff1d(np.unique(y), y[train])
    if len(missing):
        c = int(missing[0])
        others = f" and {len(missing) - 1} other class(es)" if len(missing) > 1 else ""
        raise ResidueError(f"The split leaves class {c} ({counts[c]} sample(s)){others} out of the training set "
                           f"({sizes}); every class needs training data: add samples or lower the test and "
                           f"shadow fractions.")
    if len(np.unique(y[test])) < 2:
        what = "empty" if len(test) == 0 else "with a single class"
        raise ResidueError(f"The split leaves the test set {what} ({sizes}); use more samples per class or a "
                           f"larger test_fraction.")
    if shadow_fraction > 0 and len(shadow) == 0:
        raise ResidueError(f"The split leaves the shadow pool empty ({sizes}); use more samples per class, a "
                           f"larger shadow_fraction, or shadow_fraction = 0 for no pool.")


def standardized(dataset: Dataset, rows: np.ndarray) -> Dataset:
    """A copy of `dataset` whose features have zero mean and unit variance over `rows`, the training split.

    Training-split statistics, not the whole table's: the test and shadow samples never shape the input
    scale, so test accuracy and the attacks' population stay honest. θ_o, θ_r and every θ_u share this one
    input space, fixed with the split; like a model owner's own scaler it includes the forget set (each mean
    moves by at most |D_f|/|train| of that set's spread). A feature constant on the training rows is only
    centred (scale 1), never divided by zero."""
    X = dataset.X.reshape(len(dataset), -1)
    step = max(1, 2**20 // X.shape[1])  # rows at a time: float64 work arrays of ~8 MB, whatever the table's size
    chunks = [rows[i: i + step] for i in range(0, len(rows), step)]
    mean = sum(X[c].sum(axis=0, dtype=np.float64) for c in chunks) / len(rows)
    std = np.sqrt(sum(((X[c] - mean) ** 2).sum(axis=0) for c in chunks) / len(rows))
    std[std <= 1e-12 * np.abs(mean)] = 1.0  # constant (up to float rounding of the mean itself)
    out = np.empty_like(X)
    for i in range(0, len(X), step):
        out[i: i + step] = (X[i: i + step] - mean) / std
    if not np.isfinite(out).all():
        f = int(np.nonzero(~np.isfinite(out).all(axis=0))[0][0])
        raise ResidueError(f"{dataset.name}: feature {f} cannot be standardised (it varies by less than float32 "
                           f"resolves); set the dataset option standardize = false.")
    scaled = copy.copy(dataset)
    scaled.X, scaled.standardize = out.reshape(dataset.X.shape), False
    return scaled


def channel_normalized(dataset: Dataset, rows: np.ndarray) -> Dataset:
    """A copy of an image dataset with each channel at zero mean and unit deviation: over `rows`, the training
    split (as `standardized` does for tabular features, and for the same reasons), or with the fixed (mean, std)
    the dataset declares (the statistics a checkpoint was trained with). `norm_stats` records what was applied."""
    X = dataset.X
    if dataset.channel_norm is True:
        step = max(1, 2**22 // max(1, X[0].size))  # rows at a time: float64 sums without a full-size temporary
        chunks = [rows[i: i + step] for i in range(0, len(rows), step)]
        count = len(rows) * X[0, 0].size
        mean = sum(X[c].sum(axis=(0, 2, 3), dtype=np.float64) for c in chunks) / count
        var = sum(((X[c] - mean[:, None, None]) ** 2).sum(axis=(0, 2, 3), dtype=np.float64) for c in chunks) / count
        std = np.sqrt(var)
        std[std <= 1e-6] = 1.0  # a constant channel is only centred
    else:
        mean, std = (np.asarray(v, dtype=np.float64) for v in dataset.channel_norm)
    out = np.empty_like(X)
    m32, s32 = mean.astype(np.float32)[:, None, None], std.astype(np.float32)[:, None, None]
    for i in range(0, len(X), 4096):
        np.divide(X[i: i + 4096] - m32, s32, out=out[i: i + 4096])
    scaled = copy.copy(dataset)
    scaled.X, scaled.channel_norm = out, False
    scaled.norm_stats = ([float(v) for v in mean], [float(v) for v in std])
    return scaled


def display_pixels(dataset: Dataset, X: np.ndarray | torch.Tensor) -> np.ndarray:
    """Images as a person sees them: model inputs (..., C, H, W) of `dataset` back in [0, 1] pixels.

    The per-channel normalisation the split applied (`norm_stats`) is undone, so a CIFAR image shows its own
    colours rather than each channel's z-scores; images never normalised that lie outside [0, 1] (an npz of
    0-255 values) are scaled by the dataset's range. Clipped to [0, 1]: a perturbed copy may step past the data."""
    x = np.asarray(X.detach().cpu() if isinstance(X, torch.Tensor) else X, dtype=np.float32)
    if dataset.norm_stats is not None:
        mean, std = (np.asarray(v, dtype=np.float32)[:, None, None] for v in dataset.norm_stats)
        x = x * std + mean
    else:
        lo, hi = float(dataset.X.min()), float(dataset.X.max())
        if lo < 0.0 or hi > 1.0:
            x = (x - lo) / max(hi - lo, 1e-12)
    return np.clip(x, 0.0, 1.0)


def select_forget(dataset: Dataset, train: np.ndarray, spec: ForgetSpec, seed: int) -> np.ndarray:
    spec.validate()
    y_train = dataset.y[train]
    if spec.kind == "class":
        classes = [int(c) for c in spec.classes]
        missing = [c for c in classes if not np.any(y_train == c)]
        if missing:
            raise ResidueError(
                f"Class {missing[0]} is not present in the training data (classes: 0..{dataset.n_classes - 1})."
            )
        chosen = train[np.isin(y_train, classes)]
    elif spec.kind == "random":
        n = int(spec.count) if spec.count is not None else int(round(spec.fraction * len(train)))
        if n <= 0:
            raise ResidueError("Forget set is empty: ask for at least one sample.")
        if n > len(train):
            raise ResidueError(f"Forget set of {n} samples is larger than the training set ({len(train)}).")
        chosen = np.random.default_rng(seed + 7919).choice(train, size=n, replace=False)
    else:
        idx = np.unique(np.asarray(spec.indices, dtype=np.int64))
        outside = idx[~np.isin(idx, train)]
        if len(outside):
            raise ResidueError(f"Sample {int(outside[0])} is not in the training split, so it cannot be forgotten.")
        chosen = idx
    chosen = np.sort(chosen.astype(np.int64))
    if len(chosen) >= len(train):
        raise ResidueError("Forget set is the whole training set: nothing would remain to retrain on.")
    retain = np.setdiff1d(train, chosen)
    remaining = np.unique(dataset.y[retain])
    if len(remaining) < 2:
        raise ResidueError("The retain set would hold a single class; forget fewer classes.")
    # every class not forgotten by name keeps a training sample, or θ_r could not learn it
    lost = np.setdiff1d(np.unique(y_train), remaining)
    lost = lost[~np.isin(lost, spec.classes if spec.kind == "class" else [])]
    if len(lost):
        c = int(lost[0])
        raise ResidueError(f"The forget set takes all {int(np.sum(y_train == c))} training sample(s) of class {c} "
                           f"(forget {len(chosen)}, retain {len(retain)}): θ_r could not learn it. Forget fewer "
                           f"samples, or forget the class by name (kind = \"class\").")
    return chosen
