"""User data: `.npz`, `.csv` and MNIST-format IDX files. Parsed, never unpickled.

Each loader takes either a path (which must lie inside the data directory, `RESIDUE_DATA_DIR`,
default the working directory) or the raw bytes of an upload.
"""
from __future__ import annotations

import gzip
import io
import math
import os
import zipfile
from pathlib import Path

import numpy as np

from ..errors import ResidueError
from .base import MAX_FILE_BYTES, MAX_VALUES, Dataset, datasets

MAX_UNPACKED_BYTES = 8 * MAX_VALUES + 2**16  # a compressed file may unpack to this much (the largest float64 data)


def data_root() -> Path:
    return Path(os.environ.get("RESIDUE_DATA_DIR", os.getcwd())).resolve()


def resolve_user_path(path: str | os.PathLike) -> Path:
    """A user path, refused if it escapes the data directory (symbolic links are followed) or does not exist."""
    if not isinstance(path, (str, os.PathLike)) or not str(path).strip():
        raise ResidueError(f"A file path must be non-empty text, got {path!r}.")
    root = data_root()
    p = Path(path)
    p = (p if p.is_absolute() else root / p).resolve()
    if not p.is_relative_to(root):
        raise ResidueError(f"Path '{path}' is outside the data directory {root}.")
    if not p.exists():
        raise ResidueError(f"File or folder '{path}' does not exist.")
    return p


def _read(path: str | None, data: bytes | None, what: str) -> tuple[bytes, str]:
    if (path is None) == (data is None):
        raise ResidueError(f"{what}: give exactly one of a path or uploaded bytes.")
    if data is not None and not isinstance(data, (bytes, bytearray, memoryview)):
        raise ResidueError(f"{what}: uploaded data must be bytes, got {type(data).__name__}.")
    if data is None:
        p = resolve_user_path(path)
        if not p.is_file():
            raise ResidueError(f"{what}: '{path}' is not a file.")
        if p.stat().st_size > MAX_FILE_BYTES:
            raise ResidueError(f"{what}: '{p.name}' is over the {MAX_FILE_BYTES // 2**20} MB limit.")
        return p.read_bytes(), p.name
    if len(data) > MAX_FILE_BYTES:
        raise ResidueError(f"{what}: upload is over the {MAX_FILE_BYTES // 2**20} MB limit.")
    return bytes(data), "upload"


def _image_kind(X: np.ndarray) -> tuple[np.ndarray, str]:
    """(N, H, W) arrays become single-channel images; 2-column features are drawable 2-D data."""
    if X.ndim == 3:
        X = X[:, None]
    if X.ndim == 4:
        return X, "image"
    return X, "2d" if X.ndim == 2 and X.shape[1] == 2 else "tabular"


@datasets.register("npz")
def npz(path: str | None = None, data: bytes | None = None, x_key: str = "X", y_key: str = "y") -> Dataset:
    """A NumPy archive holding arrays `X` and `y`; pickled objects are refused."""
    raw, name = _read(path, data, "npz")
    if not raw.startswith(b"PK"):
        raise ResidueError(f"npz: '{name}' is not a NumPy .npz archive (it is not a zip file).")
    try:
        _check_unpacked(zipfile.ZipFile(io.BytesIO(raw)), name)
        with np.load(io.BytesIO(raw), allow_pickle=False) as z:
            keys = list(z.keys())
            if x_key not in keys or y_key not in keys:
                raise ResidueError(f"npz: '{name}' must hold arrays '{x_key}' and '{y_key}'; found {keys}.")
            X, y = z[x_key], z[y_key]
    except ResidueError:
        raise
    except ValueError as e:
        if "pickle" in str(e).lower():
            raise ResidueError(f"npz: '{name}' holds pickled objects, which are refused for safety.") from None
        raise ResidueError(f"npz: '{name}' could not be read ({e}).") from None
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        raise ResidueError(f"npz: '{name}' is damaged ({e}).") from None
    X, kind = _image_kind(X)
    return Dataset(f"npz:{name}", X, y, 0, kind=kind)


def _check_unpacked(archive: zipfile.ZipFile, name: str) -> None:
    """Refuse, before anything is unpacked, a zip whose members unpack to more than any valid dataset (a zip
    bomb) or whose array headers claim more (numpy would allocate that much before reading a byte)."""
    total = 0
    for m in archive.infolist():
        size = m.file_size
        if m.filename.endswith(".npy"):
            with archive.open(m) as f:
                version = np.lib.format.read_magic(f)
                read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
                shape, _, dtype = read(f)
            size = max(size, math.prod(shape) * dtype.itemsize)
        total += size
        if total > MAX_UNPACKED_BYTES:
            raise ResidueError(f"npz: '{name}' unpacks to {total // 2**20} MB, over the "
                               f"{MAX_UNPACKED_BYTES // 2**20} MB limit.")


@datasets.register("csv")
def csv(path: str | None = None, data: bytes | None = None, label_column: str = "label") -> Dataset:
    """A CSV table with a header row; `label_column` names the integer label column, the rest are features."""
    raw, name = _read(path, data, "csv")
    if b"\x00" in raw[:4096]:
        raise ResidueError(f"csv: '{name}' is binary, not a CSV text file.")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ResidueError(f"csv: '{name}' is not UTF-8 text.") from None
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if len(lines) < 2:
        raise ResidueError(f"csv: '{name}' needs a header row and at least one data row.")
    header = [h.strip().strip('"\'').strip() for h in lines[0].split(",")]
    dup = sorted({h for h in header if header.count(h) > 1})
    if dup:
        raise ResidueError(f"csv: column '{dup[0]}' appears twice in the header.")
    if label_column not in header:
        raise ResidueError(f"csv: no column named '{label_column}' in the header ({', '.join(header[:10])}).")
    try:
        table = np.loadtxt(io.StringIO("\n".join(lines[1:])), delimiter=",", dtype=np.float64, ndmin=2)
    except ValueError as e:
        why = str(e).split(";")[0].strip().rstrip(".")
        raise ResidueError(f"csv: '{name}' has a non-numeric or ragged row ({why}).") from None
    if table.shape[1] != len(header):
        raise ResidueError(f"csv: rows have {table.shape[1]} values but the header names {len(header)} columns.")
    li = header.index(label_column)
    X = np.delete(table, li, axis=1)
    if X.shape[1] == 0:
        raise ResidueError("csv: no feature columns besides the label.")
    X, kind = _image_kind(X)
    return Dataset(f"csv:{name}", X, table[:, li], 0, kind=kind)


_IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def parse_idx(raw: bytes, name: str = "idx") -> np.ndarray:
    """Parse one IDX file (as used by MNIST), gzip or plain."""
    if raw[:2] == b"\x1f\x8b":
        try:
            with gzip.GzipFile(fileobj=io.BytesIO(raw)) as f:
                raw = f.read(MAX_UNPACKED_BYTES + 1)  # bounded: a small gzip can unpack to gigabytes
        except (OSError, EOFError) as e:
            raise ResidueError(f"idx: '{name}' is a damaged gzip file ({e}).") from None
    if len(raw) > MAX_UNPACKED_BYTES:
        raise ResidueError(f"idx: '{name}' unpacks to over the {MAX_UNPACKED_BYTES // 2**20} MB limit.")
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES:
        raise ResidueError(f"idx: '{name}' is not an IDX file (bad magic number).")
    ndim = raw[3]
    if not 1 <= ndim <= 4 or len(raw) < 4 + 4 * ndim:
        raise ResidueError(f"idx: '{name}' has a bad header.")
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    dtype = np.dtype(_IDX_TYPES[raw[2]])
    expected = int(np.prod(dims)) * dtype.itemsize
    body = raw[4 + 4 * ndim:]
    if len(body) != expected:
        raise ResidueError(f"idx: '{name}' is truncated or too long ({len(body)} bytes, header says {expected}).")
    return np.frombuffer(body, dtype=dtype).reshape(dims)


@datasets.register("idx")
def idx(folder: str | None = None) -> Dataset:
    """A folder of MNIST-format IDX files: every `*images*` file paired with its `*labels*` file."""
    if folder is None:
        raise ResidueError("idx: give the folder holding the IDX files (inside the data directory).")
    root = resolve_user_path(folder)
    if not root.is_dir():
        raise ResidueError(f"idx: '{folder}' is not a folder.")
    images = sorted(p for p in root.iterdir() if "images" in p.name and p.is_file())
    if not images:
        raise ResidueError(f"idx: no '*images*' IDX files in '{folder}'.")
    Xs, ys = [], []
    for img in images:
        lab = root / img.name.replace("images", "labels").replace("idx3", "idx1")
        if not lab.exists():
            raise ResidueError(f"idx: no labels file '{lab.name}' for '{img.name}'.")
        for p in (img, lab):
            resolve_user_path(p)  # a link inside the folder may not point outside the data directory
            if p.stat().st_size > MAX_FILE_BYTES:
                raise ResidueError(f"idx: '{p.name}' is over the {MAX_FILE_BYTES // 2**20} MB limit.")
        X, y = parse_idx(img.read_bytes(), img.name), parse_idx(lab.read_bytes(), lab.name)
        if X.ndim != 3 or y.ndim != 1:
            raise ResidueError(f"idx: '{img.name}' must be (N, H, W) images and '{lab.name}' (N,) labels.")
        Xs.append(X)
        ys.append(y)
    if len({x.shape[1:] for x in Xs}) > 1:
        raise ResidueError("idx: image files have different image sizes.")
    X = np.concatenate(Xs).astype(np.float32)
    scale = 255.0 if X.max() > 1.0 else 1.0
    return Dataset(f"idx:{root.name}", X[:, None] / scale, np.concatenate(ys), 0, kind="image")
