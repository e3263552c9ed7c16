"""User data: `.npz`, `.csv` and MNIST-format IDX files. Parsed, never unpickled.

Each loader takes either a path inside the data directory or the raw bytes of an upload. The data directory
is a folder of its own (`$RESIDUE_DATA`, default `residue` in the user's data folder, e.g.
`~/.local/share/residue`), never the server's working directory with its code, `.git` and virtual environment.
A message about a file named by a path never quotes what the file holds: it names columns only once the file
has parsed as a numeric table.

Every parser's failure, whatever it raises (its own errors, deep recursion, memory), ends as one
`ResidueError` line. Large files are parsed in blocks (CSV) or read exactly as far as their header declares
(IDX, gzip included), so memory stays near the size of the data itself.
"""
from __future__ import annotations

import contextlib
import csv as csvtext
import gzip
import io
import math
import os
import re
import sys
import zipfile
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np

from ..errors import ResidueError
from ..params import shown
from .base import MAX_FEATURES, MAX_FILE_BYTES, MAX_SAMPLES, MAX_VALUES, Dataset, datasets, example

MAX_UNPACKED_BYTES = 8 * MAX_VALUES + 2**16  # a compressed file may unpack to this much (the largest float64 data)
CSV_BLOCK_BYTES = 2**20  # pyarrow parses this much CSV text at a time (more only for a longer row)
MAX_LINE_BYTES = 4 * 2**20  # a CSV line: 65,536 values (or column names) of 60 characters
IDX_CHUNK_BYTES = 2**20  # an IDX body is read, and a gzip stream unpacked, this much at a time
MNIST_FILES = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]


def default_data_root() -> Path:
    """Residue's folder in the user's data directory: `$XDG_DATA_HOME/residue` when set, else the platform's
    usual place (`~/.local/share`, `~/Library/Application Support`, `%LOCALAPPDATA%`)."""
    xdg = os.environ.get("XDG_DATA_HOME", "")
    if os.path.isabs(xdg):
        return Path(xdg) / "residue"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "residue"
    if os.name == "nt":
        return Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local") / "residue"
    return Path.home() / ".local" / "share" / "residue"


def data_root() -> Path:
    """The data directory, the only place a path option may read: `$RESIDUE_DATA` or `default_data_root()`,
    created on first use."""
    root = Path(os.environ.get("RESIDUE_DATA") or default_data_root()).expanduser()
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ResidueError(f"Cannot create the data directory {root} ({e.strerror or type(e).__name__}); "
                           f"set RESIDUE_DATA to a folder you can write.") from None
    return root.resolve()


def resolve_user_path(path: str | os.PathLike) -> Path:
    """A user path, refused if it escapes the data directory (symbolic links are followed) or does not exist."""
    if not isinstance(path, (str, os.PathLike)) or not str(path).strip():
        raise ResidueError(f"A file path must be non-empty text, got {shown(path)}.")
    root = data_root()
    p = Path(path)
    p = (p if p.is_absolute() else root / p).resolve()
    if not p.is_relative_to(root):
        raise ResidueError(f"Path '{path}' is outside the data directory {root}.")
    if not p.exists():
        raise ResidueError(f"File or folder '{path}' does not exist.")
    return p


def _source(path: str | None, data: bytes | None, what: str) -> tuple[bytes | Path, str]:
    """What to parse: an upload's bytes, or a file inside the data directory within the size limit (not read)."""
    if (path is None) == (data is None):
        raise ResidueError(f"{what}: give exactly one of a path or uploaded bytes.")
    if data is not None:
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise ResidueError(f"{what}: uploaded data must be bytes, got {type(data).__name__}.")
        if len(data) > MAX_FILE_BYTES:
            raise ResidueError(f"{what}: upload is over the {MAX_FILE_BYTES // 2**20} MB limit.")
        return bytes(data), "upload"
    p = resolve_user_path(path)
    if not p.is_file():
        raise ResidueError(f"{what}: '{path}' is not a file.")
    check_size(p, what)
    return p, p.name


def check_size(p: Path, what: str) -> None:
    """One line for a file over the size limit, before any of it is read."""
    if p.stat().st_size > MAX_FILE_BYTES:
        raise ResidueError(f"{what}: '{p.name}' is over the {MAX_FILE_BYTES // 2**20} MB limit.")


def _open(src: bytes | Path, what: str, name: str) -> BinaryIO:
    try:
        return io.BytesIO(src) if isinstance(src, bytes) else open(src, "rb")  # BytesIO shares the bytes
    except OSError as e:
        raise ResidueError(f"{what}: cannot read '{name}' ({e.strerror or type(e).__name__}).") from None


def _flag(value: object, what: str, name: str) -> bool:
    if not isinstance(value, bool):
        raise ResidueError(f"{what}: {name} must be true or false, got {shown(value)}.")
    return value


def _image_kind(X: np.ndarray) -> tuple[np.ndarray, str]:
    """(N, H, W) arrays become single-channel images; 2-column features are drawable 2-D data."""
    if X.ndim == 3:
        X = X[:, None]
    if X.ndim == 4:
        return X, "image"
    return X, "2d" if X.ndim == 2 and X.shape[1] == 2 else "tabular"


# -- writers: the formats written, for the loaders' examples (`core.data.base.example`) and the tests ----------
def example_pixels(n: int, channels: int = 3, size: int = 32, seed: int = 0) -> np.ndarray:
    """(n, channels, size, size) random uint8 pixels, the same for the same seed."""
    return np.random.default_rng(seed).integers(0, 256, (n, channels, size, size), dtype=np.uint8)


def npz_bytes(**arrays: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def idx_bytes(a: np.ndarray) -> bytes:
    """`a` as an IDX file of unsigned bytes (type 0x08), the MNIST format `parse_idx` reads."""
    a = np.asarray(a)
    return bytes([0, 0, 0x08, a.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in a.shape) + \
        a.astype(np.uint8).tobytes()


def write_mnist(folder: Path, n_train: int = 40, n_test: int = 20, gz: bool = False) -> np.ndarray:
    """MNIST's four IDX files (gzipped where `gz`) of random 28x28 images labelled 0-9 in turn; returns the images."""
    folder.mkdir(parents=True, exist_ok=True)
    X = example_pixels(n_train + n_test, channels=1, size=28)[:, 0]
    y = (np.arange(n_train + n_test) % 10).astype(np.uint8)
    for name, a in zip(MNIST_FILES, [X[:n_train], y[:n_train], X[n_train:], y[n_train:]]):
        data = idx_bytes(a)
        (folder / (name + ".gz" if gz else name)).write_bytes(gzip.compress(data, mtime=0) if gz else data)
    return X


def _tabular_example(n: int = 30, features: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Three classes of points around three centres: a table a model can learn."""
    y = np.arange(n) % 3
    return np.random.default_rng(0).normal(size=(n, features)).round(3) + y[:, None], y


def write_npz_example(folder: Path) -> None:
    X, y = _tabular_example()
    (folder / "example.npz").write_bytes(npz_bytes(X=X, y=y))


def write_csv_example(folder: Path) -> None:
    X, y = _tabular_example()
    rows = [",".join([*(f"{v:.3f}" for v in x), str(c)]) for x, c in zip(X, y)]
    (folder / "example.csv").write_text("\n".join(["x0,x1,x2,label", *rows]) + "\n")


@datasets.register("npz")
@example(write_npz_example, path="example.npz")
def npz(path: str | None = None, data: bytes | None = None, x_key: str = "X", y_key: str = "y",
        standardize: bool = True) -> Dataset:
    """A NumPy archive holding arrays `X` and `y`; pickled objects are refused. Tabular features are
    standardised with the training split's statistics unless `standardize = false`; images keep their scale."""
    standardize = _flag(standardize, "npz", "standardize")
    src, name = _source(path, data, "npz")
    with _open(src, "npz", name) as f:
        if f.read(2) != b"PK":
            raise ResidueError(f"npz: '{name}' is not a NumPy .npz archive (it is not a zip file).")
        try:
            _check_unpacked(zipfile.ZipFile(f), name)
            f.seek(0)
            with np.load(f, allow_pickle=False) as z:
                keys = list(z.keys())
                if x_key not in keys or y_key not in keys:
                    raise ResidueError(f"npz: '{name}' must hold arrays '{x_key}' and '{y_key}'; found {shown(keys)}.")
                X, y = z[x_key], z[y_key]
        except ResidueError:
            raise
        except ValueError as e:
            if "pickle" in str(e).lower():
                raise ResidueError(f"npz: '{name}' holds pickled objects, which are refused for safety.") from None
            raise ResidueError(f"npz: '{name}' could not be read ({shown(str(e), 120)}).") from None
        except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as e:
            raise ResidueError(f"npz: '{name}' is damaged ({shown(str(e), 120)}).") from None
        except Exception as e:  # noqa: BLE001 - encrypted members, odd compression, deep headers, memory...
            raise ResidueError(f"npz: '{name}' could not be read as a NumPy archive ({type(e).__name__}).") from None
    X, kind = _image_kind(X)
    return Dataset(f"npz:{name}", X, y, 0, kind=kind, standardize=standardize and kind != "image")


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
@example(write_csv_example, path="example.csv")
def csv(path: str | None = None, data: bytes | None = None, label_column: str = "label",
        standardize: bool = True) -> Dataset:
    """A CSV table with a header row; `label_column` names the integer label column, the rest are numeric
    features, standardised with the training split's statistics unless `standardize = false`."""
    standardize = _flag(standardize, "csv", "standardize")
    src, name = _source(path, data, "csv")
    with _open(src, "csv", name) as f:
        header = _csv_header(f, name)
        if len(header) > MAX_FEATURES + 1:
            raise ResidueError(f"csv: '{name}' has {len(header)} columns, over the limit of {MAX_FEATURES} features.")
        if header == [label_column]:
            raise ResidueError("csv: no feature columns besides the label.")
        li = header.index(label_column) if label_column in header else None
        X, y = _csv_table(f, name, header, li, named=data is not None)
    # it parsed as a numeric table: from here on, naming its columns quotes no stray file content
    dup = sorted({h for h in header if header.count(h) > 1})
    if dup:
        raise ResidueError(f"csv: column '{dup[0]}' appears twice in the header.")
    if li is None:
        raise ResidueError(f"csv: no column named '{label_column}' in the header ({', '.join(header[:10])}"
                           f"{', ...' if len(header) > 10 else ''}).")
    X, kind = _image_kind(X)
    return Dataset(f"csv:{name}", X, y, 0, kind=kind, standardize=standardize)


def _csv_header(f: BinaryIO, name: str) -> list[str]:
    """The first non-blank line's column names, read here so pyarrow can be told every column is a number;
    leaves `f` just after that line (ended by \\n, \\r\\n or a lone \\r)."""
    if b"\x00" in f.read(4096):
        raise ResidueError(f"csv: '{name}' is binary, not a CSV text file.")
    f.seek(0)
    line = b""
    while not line.strip():
        start = f.tell()
        line = f.readline(MAX_LINE_BYTES + 1)
        if not line:
            raise ResidueError(f"csv: '{name}' needs a header row and at least one data row.")
        end = min(i for i in (line.find(b"\r"), line.find(b"\n"), len(line)) if i >= 0)
        if end > MAX_LINE_BYTES:
            raise ResidueError(_long_line(name))
        f.seek(start + end + 1)
        line = line[:end]
    try:
        return [h.strip().strip('"\'').strip() for h in next(csvtext.reader([line.decode("utf-8-sig")]))]
    except UnicodeDecodeError:
        raise ResidueError(f"csv: '{name}' is not UTF-8 text.") from None
    except csvtext.Error:
        raise ResidueError(f"csv: '{name}' has a malformed header line.") from None


def _csv_table(f: BinaryIO, name: str, header: list[str], label: int | None,
               named: bool) -> tuple[np.ndarray, np.ndarray]:
    """The rows after the header as float32 features and float64 labels (exact: 2.0000001 is no label 2).

    pyarrow parses the text a block at a time (cut at a line end) straight into one array sized by a first
    pass counting line feeds, so memory stays near the table's own float32 size; the row and value limits stop a
    huge file at the block that crosses them. `named`: an upload, whose columns a message may name."""
    import pyarrow as pa
    from pyarrow import csv as pacsv

    cols = [f"c{i}" for i in range(len(header))]
    n_features = len(cols) - (label is not None)
    start = f.tell()
    lines = 1
    while block := f.read(CSV_BLOCK_BYTES):
        lines += block.count(b"\n")
    f.seek(start)
    X = np.empty((min(lines, MAX_SAMPLES, MAX_VALUES // n_features), n_features), np.float32)
    y = np.empty(len(X))
    read = pacsv.ReadOptions(column_names=cols)
    convert = pacsv.ConvertOptions(column_types={c: pa.float64() for c in cols}, null_values=[""],
                                   strings_can_be_null=False, quoted_strings_can_be_null=False)
    rows, rest = 0, b""
    try:
        while True:
            block = f.read(CSV_BLOCK_BYTES)
            text = rest + block
            cut = max(text.rfind(b"\n"), text.rfind(b"\r")) + 1 if block else len(text)  # at the end: all of it
            rest = text[cut:]
            if len(rest) > MAX_LINE_BYTES:
                raise ResidueError(_long_line(name))
            if not text[:cut].strip():
                if block:
                    continue
                break
            table = pacsv.read_csv(pa.py_buffer(memoryview(text)[:cut]), read_options=read, convert_options=convert)
            n = table.num_rows
            if rows + n > MAX_SAMPLES:
                raise ResidueError(f"csv: '{name}' has more than {MAX_SAMPLES:,} rows, over the limit of "
                                   f"{MAX_SAMPLES} samples.")
            if (rows + n) * n_features > MAX_VALUES:
                raise ResidueError(f"csv: '{name}' has more than {MAX_VALUES:,} values ({n_features} features a "
                                   f"row), over the limit of {MAX_VALUES} values.")
            if rows + n > len(X):  # more rows than line feeds counted (lines ended by a lone \r)
                X, y = _grown(X, rows + n), _grown(y, rows + n)
            features = iter(range(n_features))
            for i, column in enumerate(table.columns):
                if column.null_count:
                    raise ResidueError(f"csv: '{name}' has an empty value in {_column(header, i, named)}.")
                target = y if i == label else X[:, next(features)]
                target[rows: rows + n] = column.to_numpy()
            rows += n
            if not block:
                break
    except ResidueError:
        raise
    except Exception as e:  # noqa: BLE001 - pyarrow's parse errors and anything else: one line, no file content
        raise ResidueError(f"csv: '{name}' {_csv_problem(e, header, named)}.") from None
    if rows == 0:
        raise ResidueError(f"csv: '{name}' needs a header row and at least one data row.")
    return X[:rows], (y[:rows] if label is not None else np.zeros(rows))


def _grown(a: np.ndarray, n: int) -> np.ndarray:
    out = np.empty((max(n, 2 * len(a)), *a.shape[1:]), a.dtype)
    out[:len(a)] = a
    return out


def _long_line(name: str) -> str:
    return f"csv: '{name}' has a line over {MAX_LINE_BYTES // 2**20} MB; it is not a CSV table."


def _column(header: list[str], i: int, named: bool) -> str:
    return f"column '{header[i]}'" if named else f"column {i + 1}"


def _csv_problem(e: Exception, header: list[str], named: bool) -> str:
    """What pyarrow's error says, without the row text it quotes."""
    text = str(e)
    if text.startswith("Empty CSV file"):
        return "needs a header row and at least one data row"
    ragged = re.search(r"Expected (\d+) columns, got (\d+)", text)
    if ragged:
        return (f"has a ragged row: {ragged.group(2)} value(s) where the header names "
                f"{ragged.group(1)} columns")
    bad = re.search(r"column #(\d+)", text)
    if bad and "conversion" in text:
        return f"has a non-numeric value in {_column(header, int(bad.group(1)), named)}"
    if isinstance(e, MemoryError):
        return "is too large to parse in the memory available"
    return f"could not be parsed as a numeric CSV table ({type(e).__name__})"


_IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def parse_idx(raw: bytes | BinaryIO, name: str = "idx") -> np.ndarray:
    """Parse one IDX file (as used by MNIST), gzip or plain, from bytes or an open binary file.

    The header's declared size is checked (in Python integers: 2**31 x 3 does not wrap around) before the
    body is read, and the body is read exactly that far: a file, or a gzip stream, holding more is refused
    as soon as it does, never unpacked whole."""
    f = io.BytesIO(raw) if isinstance(raw, (bytes, bytearray, memoryview)) else raw
    gz = f.read(2) == b"\x1f\x8b"
    f.seek(0)
    try:
        with gzip.GzipFile(fileobj=f) if gz else contextlib.nullcontext(f) as stream:
            return _idx_body(stream, name, gz)
    except ResidueError:
        raise
    except (OSError, EOFError, zlib.error) as e:
        what = "a damaged gzip file" if gz else "unreadable"
        raise ResidueError(f"idx: '{name}' is {what} ({shown(str(e), 120)}).") from None
    except Exception as e:  # noqa: BLE001 - whatever else: one line
        raise ResidueError(f"idx: '{name}' could not be read as an IDX file ({type(e).__name__}).") from None


def _idx_body(f: BinaryIO, name: str, gz: bool) -> np.ndarray:
    head = f.read(4)
    if len(head) < 4 or head[0] or head[1] or head[2] not in _IDX_TYPES:
        raise ResidueError(f"idx: '{name}' is not an IDX file (bad magic number).")
    ndim = head[3]
    raw_dims = f.read(4 * ndim)
    if not 1 <= ndim <= 4 or len(raw_dims) < 4 * ndim:
        raise ResidueError(f"idx: '{name}' has a bad header.")
    dims = [int.from_bytes(raw_dims[4 * i: 4 * i + 4], "big") for i in range(ndim)]
    dtype = np.dtype(_IDX_TYPES[head[2]])
    count = math.prod(dims)
    if count > MAX_VALUES:
        raise ResidueError(f"idx: '{name}' declares {' x '.join(map(str, dims))} = {count:,} values "
                           f"({count * dtype.itemsize / 2**20:,.0f} MB), over the limit of {MAX_VALUES:,} values.")
    body = bytearray(count * dtype.itemsize)
    view, got = memoryview(body), 0
    while got < len(body):
        n = f.readinto(view[got: got + IDX_CHUNK_BYTES])
        if not n:
            raise ResidueError(f"idx: '{name}' is truncated ({got} bytes of data, header says {len(body)}).")
        got += n
    if f.read(1):
        how = "unpacks to" if gz else "holds"
        raise ResidueError(f"idx: '{name}' {how} more than the {len(body)} bytes of data its header declares "
                           f"(refused without reading further).")
    return np.frombuffer(body, dtype=dtype).reshape(dims)


def _parse_idx_file(p: Path) -> np.ndarray:
    try:
        f = open(p, "rb")
    except OSError as e:
        raise ResidueError(f"idx: cannot read '{p.name}' ({e.strerror or type(e).__name__}).") from None
    with f:
        return parse_idx(f, p.name)


@datasets.register("idx")
@example(write_mnist, folder=".")
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
            check_size(p, "idx")
        X, y = (_parse_idx_file(p) for p in (img, lab))
        if X.ndim != 3 or y.ndim != 1:
            raise ResidueError(f"idx: '{img.name}' must be (N, H, W) images and '{lab.name}' (N,) labels.")
        Xs.append(X)
        ys.append(y)
    if len({x.shape[1:] for x in Xs}) > 1:
        raise ResidueError("idx: image files have different image sizes.")
    X = np.concatenate(Xs).astype(np.float32)
    scale = 255.0 if X.max() > 1.0 else 1.0
    return Dataset(f"idx:{root.name}", X[:, None] / scale, np.concatenate(ys), 0, kind="image")
