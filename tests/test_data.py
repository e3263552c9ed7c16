import gzip
import io

import numpy as np
import pytest

from core.data import ForgetSpec, load_dataset, make_split
from core.data.files import parse_idx
from core.errors import ResidueError


def test_digits_shape_and_range():
    d = load_dataset("digits")
    assert d.X.shape == (1797, 1, 8, 8) and d.kind == "image" and d.n_classes == 10
    assert 0.0 <= d.X.min() and d.X.max() <= 1.0


def test_digits_equal_scikit_learns_loader():
    from sklearn.datasets import load_digits

    ref = load_digits()
    d = load_dataset("digits")
    assert np.array_equal(d.X[:, 0], (ref.images / 16.0).astype(np.float32)) and np.array_equal(d.y, ref.target)


def test_split_is_deterministic_disjoint_and_stratified():
    d = load_dataset("digits")
    a = make_split(d, ForgetSpec(kind="class", classes=[7]), seed=3)
    b = make_split(d, ForgetSpec(kind="class", classes=[7]), seed=3)
    c = make_split(d, ForgetSpec(kind="class", classes=[7]), seed=4)
    for part in ("train", "test", "shadow", "forget"):
        np.testing.assert_array_equal(getattr(a, part), getattr(b, part))
    assert not np.array_equal(a.train, c.train)
    assert not set(a.train) & set(a.test) and not set(a.train) & set(a.shadow) and not set(a.test) & set(a.shadow)
    assert len(a.train) + len(a.test) + len(a.shadow) == len(d)
    assert set(a.forget) <= set(a.train) and (d.y[a.forget] == 7).all()
    assert (d.y[a.retain] != 7).all() and a.forget_classes == [7]
    # every class keeps roughly its share in each part
    for c_ in range(10):
        share = np.mean(d.y[a.test] == c_)
        assert abs(share - np.mean(d.y == c_)) < 0.02


def test_forget_random_count_fraction_and_indices():
    d = load_dataset("digits")
    s = make_split(d, ForgetSpec(kind="random", count=25), seed=0)
    assert len(s.forget) == 25 and s.forget_classes == []
    s = make_split(d, ForgetSpec(kind="random", fraction=0.1), seed=0)
    assert len(s.forget) == round(0.1 * len(s.train))
    picked = s.train[:3].tolist()
    s2 = make_split(d, ForgetSpec(kind="indices", indices=picked), seed=0)
    assert s2.forget.tolist() == sorted(picked)


@pytest.mark.parametrize("spec, message", [
    (ForgetSpec(kind="class", classes=[]), "empty"),
    (ForgetSpec(kind="class", classes=[12]), "not present"),
    (ForgetSpec(kind="random", count=0), "empty"),
    (ForgetSpec(kind="random", count=10**6), "larger than the training set"),
    (ForgetSpec(kind="random", fraction=1.0), "whole training set"),
    (ForgetSpec(kind="class", classes=list(range(10))), "whole training set"),
    (ForgetSpec(kind="class", classes=list(range(9))), "single class"),
    (ForgetSpec(kind="indices", indices=[]), "empty"),
    (ForgetSpec(kind="wrong"), "Unknown forget kind"),
])
def test_bad_forget_sets(spec, message):
    with pytest.raises(ResidueError, match=message):
        make_split(load_dataset("digits"), spec, seed=0)


def test_indices_outside_train_refused():
    d = load_dataset("digits")
    s = make_split(d, ForgetSpec(), seed=0)
    with pytest.raises(ResidueError, match="not in the training split"):
        make_split(d, ForgetSpec(kind="indices", indices=[int(s.test[0])]), seed=0)


def test_synthetic_2d():
    d = load_dataset("moons", n_samples=300, noise=0.1)
    assert d.X.shape == (300, 2) and d.kind == "2d"
    with pytest.raises(ResidueError, match="n_samples"):
        load_dataset("moons", n_samples=5)


def _npz(**arrays) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def test_npz_upload_roundtrip():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(50, 4)), rng.integers(0, 3, 50)
    d = load_dataset("npz", data=_npz(X=X, y=y))
    assert d.X.shape == (50, 4) and d.n_classes == 3 and d.kind == "tabular"


@pytest.mark.parametrize("arrays, message", [
    (dict(X=np.full((20, 3), np.nan), y=np.arange(20) % 2), "NaN or infinite"),
    (dict(X=np.ones((20, 3)), y=np.arange(20) % 2 + 0.5), "non-integer"),
    (dict(X=np.ones((20, 3)), y=-(np.arange(20) % 2)), "0..K-1"),
    (dict(X=np.ones((20, 3)), y=np.arange(19) % 2), "19 labels"),
    (dict(X=np.ones((20, 3)), y=np.zeros(20, int)), "single class"),
    (dict(A=np.ones((20, 3)), y=np.arange(20) % 2), "must hold arrays"),
    (dict(X=np.array([{"a": 1}] * 20, dtype=object), y=np.arange(20) % 2), "pickled"),
])
def test_npz_bad_contents(arrays, message):
    with pytest.raises(ResidueError, match=message):
        load_dataset("npz", data=_npz(**arrays))


def test_file_that_is_not_what_its_extension_says(tmp_path, monkeypatch):
    monkeypatch.setenv("RESIDUE_DATA_DIR", str(tmp_path))
    (tmp_path / "fake.npz").write_text("label,x\n1,2\n")
    with pytest.raises(ResidueError, match="not a NumPy .npz"):
        load_dataset("npz", path="fake.npz")
    (tmp_path / "fake.csv").write_bytes(_npz(X=np.ones((20, 2)), y=np.arange(20) % 2))
    with pytest.raises(ResidueError, match="binary|not UTF-8"):
        load_dataset("csv", path="fake.csv")


def test_size_limit(monkeypatch):
    monkeypatch.setattr("core.data.files.MAX_FILE_BYTES", 100)
    with pytest.raises(ResidueError, match="over the"):
        load_dataset("npz", data=b"PK" + b"0" * 200)


def test_path_outside_data_dir_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("RESIDUE_DATA_DIR", str(tmp_path / "data"))
    (tmp_path / "data").mkdir()
    (tmp_path / "secret.csv").write_text("label,x\n0,1\n")
    with pytest.raises(ResidueError, match="outside the data directory"):
        load_dataset("csv", path="../secret.csv")


def test_csv(tmp_path, monkeypatch):
    monkeypatch.setenv("RESIDUE_DATA_DIR", str(tmp_path))
    rows = ["f1,target,f2"] + [f"{i * 0.1},{i % 3},{i}" for i in range(30)]
    (tmp_path / "t.csv").write_text("\n".join(rows))
    d = load_dataset("csv", path="t.csv", label_column="target")
    assert d.X.shape == (30, 2) and d.kind == "2d" and d.n_classes == 3
    with pytest.raises(ResidueError, match="no column named 'label'"):
        load_dataset("csv", path="t.csv")
    (tmp_path / "bad.csv").write_text("label,x\n0,1\n1,abc\n" + "0,1\n" * 20)
    with pytest.raises(ResidueError, match="non-numeric"):
        load_dataset("csv", path="bad.csv")


def _idx_bytes(arr: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, arr.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in arr.shape)
    return header + arr.astype(np.uint8).tobytes()


def test_idx_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("RESIDUE_DATA_DIR", str(tmp_path))
    rng = np.random.default_rng(0)
    folder = tmp_path / "mnist"
    folder.mkdir()
    imgs = rng.integers(0, 256, size=(40, 6, 6))
    labels = np.arange(40) % 4
    (folder / "train-images-idx3-ubyte").write_bytes(_idx_bytes(imgs))
    (folder / "train-labels-idx1-ubyte").write_bytes(_idx_bytes(labels))
    (folder / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(_idx_bytes(imgs[:12])))
    (folder / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(_idx_bytes(labels[:12])))
    d = load_dataset("idx", folder="mnist")
    assert d.X.shape == (52, 1, 6, 6) and d.kind == "image" and d.n_classes == 4
    np.testing.assert_allclose(d.X[0, 0], imgs[0] / 255.0, rtol=1e-6)


@pytest.mark.parametrize("raw, message", [
    (b"\x00\x00\x08\x01\x00\x00\x00\x05\x01\x02", "truncated"),
    (b"GIF89a....", "bad magic"),
    (b"\x1f\x8b\x00\x00broken", "damaged gzip"),
])
def test_idx_bad_files(raw, message):
    with pytest.raises(ResidueError, match=message):
        parse_idx(raw)


def test_unknown_dataset():
    with pytest.raises(ResidueError, match="Unknown dataset 'cifar'"):
        load_dataset("cifar")
