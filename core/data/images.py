"""Image datasets read from disk, never downloaded: CIFAR-10 and CIFAR-100 (their binary version), the MNIST
family (MNIST, Fashion-MNIST, KMNIST: IDX files), and any folder-per-class tree of image files (torchvision's
`ImageFolder` convention: one sub-folder per class, classes in sorted order).

Every folder is found through the data directory rules of `core.data.files` (`resolve_user_path`,
`$RESIDUE_DATA`); without `folder` a loader looks for its usual folder name there. Pixels are scaled to [0, 1]
and, by default, normalised per channel (`normalize`): with the training split's mean and deviation, or with the
`mean` and `std` given (e.g. those a checkpoint was trained with). `limit` keeps the first N images, for a CPU
classroom. Pickled formats (the CIFAR "python version") are refused, naming the binary version to use instead.

The file formats (from the datasets' own pages):
* CIFAR-10 binary: data_batch_1.bin … data_batch_5.bin and test_batch.bin, each a run of 3073-byte records: one
  label byte (0-9), then 1024 red, 1024 green and 1024 blue bytes of a 32x32 image in row-major order;
  batches.meta.txt names the classes, one a line.
* CIFAR-100 binary: train.bin and test.bin, 3074-byte records: the coarse label byte (0-19), the fine label byte
  (0-99), then the 3072 pixel bytes as above; fine_label_names.txt / coarse_label_names.txt name the classes.
* MNIST, Fashion-MNIST, KMNIST: train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte and
  t10k-labels-idx1-ubyte, each optionally gzipped (.gz), read by `core.data.files.parse_idx`.
"""
from __future__ import annotations

import numbers
from pathlib import Path

import numpy as np

from ..errors import ResidueError
from ..params import shown
from .base import MAX_FEATURES, MAX_SAMPLES, Dataset, datasets, example
from .files import (MNIST_FILES, _parse_idx_file, check_size, data_root, example_pixels, resolve_user_path,
                    write_mnist)

CIFAR10_FILES = [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]
CIFAR100_FILES = ["train.bin", "test.bin"]
CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
MNIST_CLASSES = {
    "mnist": [str(d) for d in range(10)],
    "fashion_mnist": ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                      "Ankle boot"],
    "kmnist": ["o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"],
}
DEFAULT_FOLDERS = {"cifar10": "cifar-10-batches-bin", "cifar100": "cifar-100-binary", "mnist": "mnist",
                   "fashion_mnist": "fashion_mnist", "kmnist": "kmnist", "image_folder": "images"}
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")  # torchvision's
GREY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"}
PICKLED_CIFAR = {"data_batch_1", "test_batch", "batches.meta", "train", "test", "meta"}


# -- writers: the formats written, for the loaders' examples (`core.data.base.example`) and the tests ----------
def write_cifar10(folder: Path, per_file: int = 10, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Six binary batches of `per_file` records (label byte, then R, G, B planes, row-major) labelled 0-9 in turn,
    and class names in batches.meta.txt; returns the images and labels."""
    folder.mkdir(parents=True, exist_ok=True)
    X = example_pixels(6 * per_file, seed=seed)
    y = np.arange(6 * per_file) % 10
    for i, name in enumerate(CIFAR10_FILES):
        part = slice(i * per_file, (i + 1) * per_file)
        rec = np.concatenate([y[part, None].astype(np.uint8), X[part].reshape(per_file, -1)], axis=1)
        (folder / name).write_bytes(rec.tobytes())
    (folder / "batches.meta.txt").write_text("\n".join(f"class{c}" for c in range(10)) + "\n\n")
    return X, y


def write_cifar100(folder: Path, n: int = 100) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """train.bin (the first 3/4) and test.bin of `n` records (coarse label byte, fine label byte, pixels), fine labels
    0-99 and coarse 0-19 in turn; returns the images, fine and coarse labels."""
    folder.mkdir(parents=True, exist_ok=True)
    X = example_pixels(n)
    fine, coarse = np.arange(n) % 100, np.arange(n) % 20
    cut = 3 * n // 4
    for name, part in (("train.bin", slice(0, cut)), ("test.bin", slice(cut, n))):
        rec = np.concatenate([coarse[part, None], fine[part, None], X[part].reshape(-1, 3072)], axis=1)
        (folder / name).write_bytes(rec.astype(np.uint8).tobytes())
    return X, fine, coarse


EXAMPLE_TREE = {c: [(f"{i}.png", ("RGB", 8)) for i in range(6)] for c in ("cats", "dogs")}


def write_folder(root: Path, spec: dict[str, list[tuple[str, tuple[str, int]]]] = EXAMPLE_TREE) -> None:
    """A folder per class of random square images: `spec` maps each class to its (file name, (Pillow mode, side))
    pairs; the file name's extension picks the format."""
    from PIL import Image

    rng = np.random.default_rng(1)
    for cls, files in spec.items():
        (root / cls).mkdir(parents=True, exist_ok=True)
        for name, (mode, size) in files:
            shape = (size, size) if mode == "L" else (size, size, 3)
            Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode).save(root / cls / name)


# -- options shared by every image loader ---------------------------------------------------------------------
def _limit(name: str, limit) -> int | None:
    if limit is None:
        return None
    if isinstance(limit, bool) or not isinstance(limit, numbers.Integral) or not 10 <= limit <= MAX_SAMPLES:
        raise ResidueError(f"{name}: limit must be a whole number of images in [10, {MAX_SAMPLES}], got {shown(limit)}.")
    return int(limit)


def _norm(name: str, normalize, mean, std, channels: int) -> bool | tuple[list[float], list[float]]:
    """What `make_split` does to the pixels: False (keep [0, 1]), True (the training split's per-channel mean and
    deviation), or fixed (mean, std) lists, one value per channel."""
    if not isinstance(normalize, bool):
        raise ResidueError(f"{name}: normalize must be true or false, got {shown(normalize)}.")
    if (mean is None) != (std is None):
        raise ResidueError(f"{name}: give both mean and std (one value per channel), or neither.")
    if mean is None:
        return normalize
    values = []
    for what, v in (("mean", mean), ("std", std)):
        items = list(v) if isinstance(v, (list, tuple)) else None
        if (items is None or len(items) != channels
                or not all(isinstance(x, numbers.Real) and not isinstance(x, bool) and np.isfinite(x) for x in items)):
            raise ResidueError(f"{name}: {what} must be {channels} number(s), one per channel, got {shown(v)}.")
        values.append([float(x) for x in items])
    if min(values[1]) <= 0:
        raise ResidueError(f"{name}: std must be positive, got {values[1]}.")
    return (values[0], values[1]) if normalize else False


def _folder(name: str, folder: str | None) -> Path:
    """The dataset's folder inside the data directory (its usual name when `folder` is not given)."""
    if folder is None:
        default = data_root() / DEFAULT_FOLDERS[name]
        if not default.is_dir():
            raise ResidueError(f"{name}: no folder '{DEFAULT_FOLDERS[name]}' in the data directory {data_root()}; put "
                               f"the files there or give folder = \"...\" (Residue never downloads data).")
        return default
    root = resolve_user_path(folder)
    if not root.is_dir():
        raise ResidueError(f"{name}: '{folder}' is not a folder.")
    return root


def _listing(root: Path, name: str) -> list[Path]:
    try:
        return sorted(root.iterdir())
    except OSError as e:
        raise ResidueError(f"{name}: cannot read the folder '{root.name}' ({e.strerror or type(e).__name__}).") from None


def _find(name: str, root: Path, expected: list[str], gz: bool = False) -> list[Path]:
    """The expected files in `root` (or in the one sub-folder that holds them, as an archive unpacks), each
    found under its name or, where `gz`, its name with .gz; else one line naming the missing ones."""
    def lookup(folder: Path) -> dict[str, Path]:
        names = {p.name: p for p in _listing(folder, name) if p.is_file()}
        return {e: names.get(e) or (names.get(e + ".gz") if gz else None) for e in expected}

    found = lookup(root)
    if not all(found.values()):
        for sub in (p for p in _listing(root, name) if p.is_dir()):
            inner = lookup(sub)
            if all(inner.values()):
                found = inner
                break
    missing = [e for e, p in found.items() if p is None]
    if missing:
        present = {p.name for p in _listing(root, name)}
        if name.startswith("cifar") and present & PICKLED_CIFAR:
            archive = "cifar-10-binary.tar.gz" if name == "cifar10" else "cifar-100-binary.tar.gz"
            raise ResidueError(f"{name}: '{root.name}' holds the CIFAR 'python version' (pickled batches), which "
                               f"Residue never unpickles (a pickle can run code); use the binary version ({archive}: "
                               f"{', '.join(expected)}).")
        raise ResidueError(f"{name}: '{root.name}' is missing {', '.join(missing)} (expected {', '.join(expected)}"
                           f"{', each optionally gzipped' if gz else ''}).")
    for p in found.values():
        resolve_user_path(p)  # a link inside the folder may not point outside the data directory
        check_size(p, name)
    return list(found.values())  # type: ignore[arg-type]


def _names_file(folder: Path, file: str, n: int) -> list[str] | None:
    """Class names from a text file beside the data (one a line), if it is there and names n classes."""
    p = folder / file
    try:
        lines = [s.strip() for s in p.read_text(encoding="utf-8", errors="replace").splitlines() if s.strip()]
    except OSError:
        return None
    return lines if len(lines) == n else None


def _pixels(raw: np.ndarray) -> np.ndarray:
    """uint8 pixels as float32 in [0, 1], in place of a second full-size temporary."""
    X = raw.astype(np.float32)
    X /= 255.0
    return X


# -- CIFAR ----------------------------------------------------------------------------------------------------
def _records(name: str, files: list[Path], size: int, limit: int | None) -> np.ndarray:
    """The fixed-size records of CIFAR binary files, (N, size) uint8, reading no further than `limit` records."""
    parts, total = [], 0
    for p in files:
        n_bytes = p.stat().st_size
        if n_bytes == 0 or n_bytes % size:
            raise ResidueError(f"{name}: '{p.name}' is cut short or is not a CIFAR binary file ({n_bytes} bytes is not "
                               f"a whole number of {size}-byte records).")
        count = n_bytes // size if limit is None else min(n_bytes // size, limit - total)
        try:
            parts.append(np.fromfile(p, dtype=np.uint8, count=count * size).reshape(count, size))
        except OSError as e:
            raise ResidueError(f"{name}: cannot read '{p.name}' ({e.strerror or type(e).__name__}).") from None
        total += count
        if limit is not None and total >= limit:
            break
    return np.concatenate(parts)


def _cifar(name: str, rec: np.ndarray, label_col: int, n_classes: int, classes: list[str],
           normalize) -> Dataset:
    y = rec[:, label_col].astype(np.int64)
    if y.max() >= n_classes:
        raise ResidueError(f"{name}: label {int(y.max())} is out of range 0..{n_classes - 1}: the files are not "
                           f"{name} binary files.")
    X = _pixels(rec[:, -3072:]).reshape(-1, 3, 32, 32)
    return Dataset(name, X, y, n_classes, kind="image", class_names=classes, channel_norm=normalize)


@datasets.register("cifar10")
@example(write_cifar10, folder=".")
def cifar10(folder: str | None = None, normalize: bool = True, mean: list[float] | None = None,
            std: list[float] | None = None, limit: int | None = None) -> Dataset:
    """CIFAR-10, binary version (data_batch_1.bin … data_batch_5.bin, test_batch.bin): 60,000 32x32 colour images
    of 10 classes, training batches first."""
    norm, limit = _norm("cifar10", normalize, mean, std, 3), _limit("cifar10", limit)
    files = _find("cifar10", _folder("cifar10", folder), CIFAR10_FILES)
    rec = _records("cifar10", files, 3073, limit)
    classes = _names_file(files[0].parent, "batches.meta.txt", 10) or CIFAR10_CLASSES
    return _cifar("cifar10", rec, 0, 10, classes, norm)


@datasets.register("cifar100")
@example(write_cifar100, folder=".")
def cifar100(folder: str | None = None, labels: str = "fine", normalize: bool = True,
             mean: list[float] | None = None, std: list[float] | None = None, limit: int | None = None) -> Dataset:
    """CIFAR-100, binary version (train.bin, test.bin): 60,000 32x32 colour images of 100 fine classes (or their 20
    coarse super-classes: labels = "coarse")."""
    if labels not in ("fine", "coarse"):
        raise ResidueError(f"cifar100: labels must be 'fine' or 'coarse', got {shown(labels)}.")
    norm, limit = _norm("cifar100", normalize, mean, std, 3), _limit("cifar100", limit)
    files = _find("cifar100", _folder("cifar100", folder), CIFAR100_FILES)
    rec = _records("cifar100", files, 3074, limit)
    n = 100 if labels == "fine" else 20
    classes = _names_file(files[0].parent, f"{labels}_label_names.txt", n) or [str(c) for c in range(n)]
    return _cifar("cifar100", rec, 1 if labels == "fine" else 0, n, classes, norm)


# -- the MNIST family -----------------------------------------------------------------------------------------
def _mnist_family(name: str, folder: str | None, normalize, mean, std, limit) -> Dataset:
    norm, limit = _norm(name, normalize, mean, std, 1), _limit(name, limit)
    train_x, train_y, test_x, test_y = _find(name, _folder(name, folder), MNIST_FILES, gz=True)
    Xs, ys = [], []
    for img, lab in ((train_x, train_y), (test_x, test_y)):
        X, y = _parse_idx_file(img), _parse_idx_file(lab)
        if X.ndim != 3 or y.ndim != 1 or len(X) != len(y) or X.dtype != np.uint8:
            raise ResidueError(f"{name}: '{img.name}' must hold (N, H, W) bytes and '{lab.name}' N labels; found "
                               f"{X.shape} and {y.shape}.")
        Xs.append(X)
        ys.append(y)
    if Xs[0].shape[1:] != Xs[1].shape[1:]:
        raise ResidueError(f"{name}: the training and test images differ in size ({Xs[0].shape[1:]} and "
                           f"{Xs[1].shape[1:]}).")
    X, y = np.concatenate(Xs), np.concatenate(ys)
    if limit is not None:
        X, y = X[:limit], y[:limit]
    return Dataset(name, _pixels(X)[:, None], y, 10, kind="image", class_names=MNIST_CLASSES[name], channel_norm=norm)


@datasets.register("mnist")
@example(write_mnist, folder=".")
def mnist(folder: str | None = None, normalize: bool = True, mean: list[float] | None = None,
          std: list[float] | None = None, limit: int | None = None) -> Dataset:
    """MNIST in its IDX files (train-images-idx3-ubyte … t10k-labels-idx1-ubyte, gzipped or not): 70,000 28x28
    handwritten digits, training images first."""
    return _mnist_family("mnist", folder, normalize, mean, std, limit)


@datasets.register("fashion_mnist")
@example(write_mnist, folder=".")
def fashion_mnist(folder: str | None = None, normalize: bool = True, mean: list[float] | None = None,
                  std: list[float] | None = None, limit: int | None = None) -> Dataset:
    """Fashion-MNIST in MNIST's IDX files: 70,000 28x28 images of 10 kinds of clothing."""
    return _mnist_family("fashion_mnist", folder, normalize, mean, std, limit)


@datasets.register("kmnist")
@example(write_mnist, folder=".")
def kmnist(folder: str | None = None, normalize: bool = True, mean: list[float] | None = None,
           std: list[float] | None = None, limit: int | None = None) -> Dataset:
    """Kuzushiji-MNIST in MNIST's IDX files: 70,000 28x28 cursive Japanese characters, 10 classes."""
    return _mnist_family("kmnist", folder, normalize, mean, std, limit)


# -- a folder per class ---------------------------------------------------------------------------------------
@datasets.register("image_folder")
@example(write_folder, folder=".")
def image_folder(folder: str | None = None, normalize: bool = True, mean: list[float] | None = None,
                 std: list[float] | None = None, limit: int | None = None) -> Dataset:
    """Images in one sub-folder per class (torchvision's ImageFolder: classes in sorted order, files in sorted
    order, extensions .jpg .jpeg .png .ppm .bmp .pgm .tif .tiff .webp), decoded with Pillow. Every image must have
    the same size, and all be greyscale or all colour."""
    limit = _limit("image_folder", limit)
    root = _folder("image_folder", folder)
    classes = [p for p in _listing(root, "image_folder") if p.is_dir() and not p.name.startswith(".")]
    if len(classes) < 2:
        raise ResidueError(f"image_folder: '{root.name}' needs one sub-folder per class, at least two; found "
                           f"{len(classes)}.")
    files: list[tuple[Path, int]] = []
    for c, d in enumerate(classes):
        own = [p for p in _listing(d, "image_folder") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS]
        if not own:
            raise ResidueError(f"image_folder: class folder '{d.name}' holds no image files "
                               f"({', '.join(IMAGE_EXTENSIONS)}).")
        files += [(p, c) for p in own]
    if len(files) > MAX_SAMPLES:
        raise ResidueError(f"image_folder: {len(files)} images is over the limit of {MAX_SAMPLES}.")
    if limit is not None:
        files = files[:limit]
    images = [_decode(p) for p, _ in files]
    sizes = {}
    for (p, _), (arr, grey) in zip(files, images):
        sizes.setdefault(("grey" if grey else "colour", arr.shape[-2:]), p)
    kinds = {k for k, _ in sizes}
    if len(kinds) > 1:
        g, c = (next(p for (k, _), p in sizes.items() if k == kind) for kind in ("grey", "colour"))
        raise ResidueError(f"image_folder: greyscale and colour images are mixed ('{_rel(g, root)}' is greyscale, "
                           f"'{_rel(c, root)}' colour); convert them to one kind.")
    shapes = {s for _, s in sizes}
    if len(shapes) > 1:
        (s1, p1), (s2, p2) = [(s, p) for (_, s), p in sizes.items()][:2]
        raise ResidueError(f"image_folder: images differ in size ('{_rel(p1, root)}' is {s1[1]}x{s1[0]}, "
                           f"'{_rel(p2, root)}' {s2[1]}x{s2[0]}); resize them to one size.")
    channels = 1 if "grey" in kinds else 3
    norm = _norm("image_folder", normalize, mean, std, channels)
    X = np.stack([a if a.ndim == 3 else a[None] for a, _ in images])
    y = np.asarray([c for _, c in files], dtype=np.int64)
    return Dataset(f"image_folder:{root.name}", X, y, len(classes), kind="image",
                   class_names=[d.name for d in classes], channel_norm=norm)


def _rel(p: Path, root: Path) -> str:
    return str(p.relative_to(root))


def _decode(p: Path) -> tuple[np.ndarray, bool]:
    """One image file as float32 pixels in [0, 1], (H, W) greyscale or (3, H, W) colour; size checked from the
    header before anything is decoded."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(p) as im:
            w, h = im.size
            grey = im.mode in GREY_MODES
            if w * h * (1 if grey else 3) > MAX_FEATURES:
                raise ResidueError(f"image_folder: '{p.name}' is {w}x{h} pixels, over the limit of {MAX_FEATURES} "
                                   f"values an image; resize the images.")
            arr = np.asarray(im.convert("L" if grey else "RGB"), dtype=np.float32) / 255.0
    except ResidueError:
        raise
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise ResidueError(f"image_folder: '{p.parent.name}/{p.name}' could not be read as an image "
                           f"({type(e).__name__}).") from None
    return (arr if grey else arr.transpose(2, 0, 1)), grey

