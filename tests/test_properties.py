"""Property-based tests (hypothesis): loaders and the config parser either return something valid or
raise one readable ResidueError, whatever bytes or values they are given."""
import gzip

import numpy as np
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from core import ResidueError, from_dict, loads
from core.config import dumps
from core.data import load_dataset, validate_arrays
from core.data.files import npz_bytes, parse_idx

DIGITS = load_dataset("digits")

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _fails_cleanly(fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except ResidueError as e:
        assert str(e) and "\n" not in str(e)
        return None


@FAST
@given(st.binary(max_size=400))
def test_npz_loader_never_crashes_on_bytes(raw):
    d = _fails_cleanly(load_dataset, "npz", data=raw)
    assert d is None or np.isfinite(d.X).all()


@FAST
@given(st.binary(max_size=400))
def test_csv_loader_never_crashes_on_bytes(raw):
    _fails_cleanly(load_dataset, "csv", data=raw)


@FAST
@given(st.text(alphabet="0123456789,.-e \nabcnaN", max_size=300))
def test_csv_loader_on_csv_like_text(body):
    d = _fails_cleanly(load_dataset, "csv", data=("label,a,b\n" + body).encode())
    if d is not None:
        assert len(d.X) == len(d.y) and np.isfinite(d.X).all() and d.y.min() >= 0


@FAST
@given(st.binary(max_size=200))
def test_idx_parser_never_crashes(raw):
    _fails_cleanly(parse_idx, raw)


@FAST
@given(
    n=st.integers(0, 40),
    d=st.integers(1, 5),
    labels=st.sampled_from(["int", "float", "neg", "big", "nan"]),
    poison=st.booleans(),
)
def test_npz_arrays_are_validated(n, d, labels, poison):
    rng = np.random.default_rng(n * 7 + d)
    X = rng.normal(size=(n, d))
    if poison and n:
        X[rng.integers(n), 0] = np.inf
    y = {"int": rng.integers(0, 3, n), "float": rng.integers(0, 3, n) + 0.25, "neg": -rng.integers(1, 3, n),
         "big": rng.integers(0, 3, n) * 10**6, "nan": np.full(n, np.nan)}[labels]
    ds = _fails_cleanly(load_dataset, "npz", data=npz_bytes(X=X, y=y))
    if ds is not None:
        assert labels == "int" and not poison and n >= 10


scalars = st.one_of(st.integers(-5, 10**6), st.floats(allow_nan=True), st.text(max_size=8), st.booleans(),
                    st.lists(st.integers(-2, 12), max_size=4))


@FAST
@given(st.dictionaries(st.sampled_from(["seed", "data", "model", "recipe", "methods", "extra"]),
                       st.one_of(scalars, st.dictionaries(
                           st.sampled_from(["name", "epochs", "lr", "batch_size", "hidden", "forget", "classes",
                                            "kind", "test_fraction", "optimizer"]), scalars, max_size=4)),
                       max_size=4))
def test_config_parser_refuses_or_accepts_cleanly(d):
    cfg = _fails_cleanly(from_dict, d)
    if cfg is not None:
        assert from_dict(cfg.to_dict()).hash() == cfg.hash()


@FAST
@given(st.text(max_size=200))
def test_toml_text_never_crashes(text):
    _fails_cleanly(loads, text)


# -- round trips: what a loader reads back is what was written -------------------------------------
@FAST
@given(n=st.integers(10, 40), d=st.integers(1, 4), k=st.integers(2, 5), seed=st.integers(0, 2**16))
def test_csv_round_trip(n, d, k, seed):
    rng = np.random.default_rng(seed)
    X = rng.normal(scale=1e3, size=(n, d)).astype(np.float32)
    y = np.arange(n) % k
    label_at = int(rng.integers(0, d + 1))
    cols = [f"f{j}" for j in range(d)]
    cols.insert(label_at, "target")
    table = np.insert(X.astype(np.float64), label_at, y, axis=1)
    text = ",".join(cols) + "\n" + "\n".join(",".join(repr(float(v)) for v in row) for row in table)
    ds = load_dataset("csv", data=text.encode(), label_column="target")
    assert np.array_equal(ds.X.reshape(n, d), X) and np.array_equal(ds.y, y) and ds.n_classes == k


@FAST
@given(n=st.integers(10, 30), shape=st.sampled_from([(3,), (2, 5), (1, 4, 4), (3, 4, 4)]), k=st.integers(2, 4),
       dtype=st.sampled_from([np.float32, np.float64, np.int16, np.uint8]))
def test_npz_round_trip(n, shape, k, dtype):
    X = (np.arange(n * int(np.prod(shape))) % 97).reshape(n, *shape).astype(dtype)
    y = np.arange(n) % k
    ds = load_dataset("npz", data=npz_bytes(X=X, y=y))
    expected = X[:, None] if len(shape) == 2 else X  # (N, H, W) is read as single-channel images
    assert np.array_equal(ds.X, expected.astype(np.float32)) and np.array_equal(ds.y, y)
    assert ds.kind == ("image" if len(shape) >= 2 else "tabular")


@FAST
@given(st.lists(st.integers(1, 6), min_size=1, max_size=3), st.booleans(), st.integers(0, 2**16))
def test_idx_round_trip(dims, zipped, seed):
    arr = np.random.default_rng(seed).integers(0, 256, size=dims, dtype=np.uint8)
    raw = bytes([0, 0, 0x08, arr.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in arr.shape) + arr.tobytes()
    assert np.array_equal(parse_idx(gzip.compress(raw) if zipped else raw), arr)


# -- arrays of any dtype and shape: a valid Dataset or one line ------------------------------------
@FAST
@given(shape=st.lists(st.integers(0, 6), min_size=0, max_size=5), n=st.integers(0, 30),
       xdtype=st.sampled_from(["f4", "f8", "i8", "u1", "?", "c8", "U2"]),
       labels=st.lists(st.one_of(st.integers(-3, 1200), st.floats(allow_nan=True, allow_infinity=True)),
                       min_size=0, max_size=30))
def test_validate_arrays_gives_a_clean_dataset_or_one_line(shape, n, xdtype, labels):
    X = np.ones((n, *shape), dtype=xdtype)
    ds = _fails_cleanly(validate_arrays, X, np.asarray(labels), "t")
    if ds is not None:
        X2, y2 = ds
        assert X2.dtype == np.float32 and np.isfinite(X2).all() and 2 <= X2.ndim <= 4 and X2[0].size > 0
        assert y2.dtype == np.int64 and set(np.unique(y2)) == set(range(int(y2.max()) + 1))


# -- the data directory: whatever path a user types, nothing outside it is opened -----------------
@FAST
@given(st.lists(st.sampled_from(["..", ".", "data", "sub", "..sub", "/", "~", "link", "x.csv"]),
                min_size=1, max_size=6))
def test_no_user_path_escapes_the_data_directory(tmp_path_factory, parts):
    import os
    from pathlib import Path

    from core.data.files import resolve_user_path

    base = tmp_path_factory.mktemp("root")
    root = base / "data"
    (root / "sub").mkdir(parents=True)
    (root / "x.csv").write_text("label,a\n")
    (base / "x.csv").write_text("secret")
    (root / "link").symlink_to(base)
    old = os.environ.get("RESIDUE_DATA")
    os.environ["RESIDUE_DATA"] = str(root)
    try:
        p = _fails_cleanly(resolve_user_path, "/".join(parts))
    finally:
        os.environ.pop("RESIDUE_DATA") if old is None else os.environ.update(RESIDUE_DATA=old)
    assert p is None or Path(p).resolve().is_relative_to(root.resolve())


# -- forget specs: refused, or a proper subset of train that leaves two classes --------------------
@FAST
@given(kind=st.sampled_from(["class", "random", "indices", "other"]),
       classes=st.lists(st.integers(-1, 11), max_size=10), count=st.one_of(st.none(), st.integers(-2, 2000)),
       fraction=st.one_of(st.none(), st.floats(-0.5, 1.5)), indices=st.lists(st.integers(-5, 1900), max_size=5))
def test_forget_spec_gives_a_valid_forget_set_or_one_line(kind, classes, count, fraction, indices):
    from core.data import ForgetSpec, make_split

    spec = ForgetSpec(kind=kind, classes=classes, count=count, fraction=fraction, indices=indices)
    split = _fails_cleanly(make_split, DIGITS, spec, seed=1)
    if split is not None:
        assert 0 < len(split.forget) < len(split.train) and set(split.forget) <= set(split.train)
        assert len(np.unique(DIGITS.y[split.retain])) >= 2


# -- valid configs survive the TOML writer ---------------------------------------------------------
@FAST
@given(seed=st.integers(-2**31, 2**31 - 1), name=st.sampled_from(["digits", "moons", "blobs"]),
       hidden=st.lists(st.integers(1, 64), min_size=1, max_size=3), epochs=st.integers(1, 50),
       lr=st.floats(1e-5, 0.1), label=st.text(max_size=6), forget=st.sampled_from(
           [{"classes": [1]}, {"kind": "random", "count": 5}, {"kind": "random", "fraction": 0.1},
            {"kind": "indices", "indices": [3, 1]}]))
def test_valid_configs_round_trip_through_toml(seed, name, hidden, epochs, lr, label, forget):
    assume(label != "retrain")  # a label used twice is refused, rightly
    cfg = _fails_cleanly(from_dict, {
        "seed": seed, "data": {"name": name, "forget": forget}, "model": {"hidden": hidden},
        "recipe": {"epochs": epochs}, "methods": [{"name": "finetune", "lr": lr, "label": label}, "retrain"]})
    assert cfg is not None  # every value drawn here is valid
    again = loads(dumps(cfg))
    assert again.to_dict() == cfg.to_dict() and again.hash() == cfg.hash()
