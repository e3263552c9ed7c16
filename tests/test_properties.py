"""Property-based tests (hypothesis): loaders and the config parser either return something valid or
raise one readable ResidueError, whatever bytes or values they are given."""
import io

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core import ResidueError, from_dict, loads
from core.data import load_dataset
from core.data.files import parse_idx

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
    buf = io.BytesIO()
    np.savez(buf, X=X, y=y)
    ds = _fails_cleanly(load_dataset, "npz", data=buf.getvalue())
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
