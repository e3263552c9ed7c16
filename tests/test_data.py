import gzip
import os
import re
import sys
from pathlib import Path

import numpy as np
import pytest

from core.data import Dataset, ForgetSpec, load_dataset, make_split
from core.data.files import idx_bytes, npz_bytes, parse_idx
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


def test_npz_upload_roundtrip():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(50, 4)), rng.integers(0, 3, 50)
    d = load_dataset("npz", data=npz_bytes(X=X, y=y))
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
        load_dataset("npz", data=npz_bytes(**arrays))


def test_file_that_is_not_what_its_extension_says(tmp_path, monkeypatch):
    monkeypatch.setenv("RESIDUE_DATA", str(tmp_path))
    (tmp_path / "fake.npz").write_text("label,x\n1,2\n")
    with pytest.raises(ResidueError, match="not a NumPy .npz"):
        load_dataset("npz", path="fake.npz")
    (tmp_path / "fake.csv").write_bytes(npz_bytes(X=np.ones((20, 2)), y=np.arange(20) % 2))
    with pytest.raises(ResidueError, match="binary|not UTF-8"):
        load_dataset("csv", path="fake.csv")


def test_size_limit(monkeypatch):
    monkeypatch.setattr("core.data.files.MAX_FILE_BYTES", 100)
    with pytest.raises(ResidueError, match="over the"):
        load_dataset("npz", data=b"PK" + b"0" * 200)


def test_path_outside_data_dir_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("RESIDUE_DATA", str(tmp_path / "data"))
    (tmp_path / "data").mkdir()
    (tmp_path / "secret.csv").write_text("label,x\n0,1\n")
    with pytest.raises(ResidueError, match="outside the data directory"):
        load_dataset("csv", path="../secret.csv")


def test_csv(tmp_path, monkeypatch):
    monkeypatch.setenv("RESIDUE_DATA", str(tmp_path))
    rows = ["f1,target,f2"] + [f"{i * 0.1},{i % 3},{i}" for i in range(30)]
    (tmp_path / "t.csv").write_text("\n".join(rows))
    d = load_dataset("csv", path="t.csv", label_column="target")
    assert d.X.shape == (30, 2) and d.kind == "2d" and d.n_classes == 3
    with pytest.raises(ResidueError, match="no column named 'label'"):
        load_dataset("csv", path="t.csv")
    (tmp_path / "bad.csv").write_text("label,x\n0,1\n1,abc\n" + "0,1\n" * 20)
    with pytest.raises(ResidueError, match="non-numeric"):
        load_dataset("csv", path="bad.csv")


def test_idx_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("RESIDUE_DATA", str(tmp_path))
    rng = np.random.default_rng(0)
    folder = tmp_path / "mnist"
    folder.mkdir()
    imgs = rng.integers(0, 256, size=(40, 6, 6))
    labels = np.arange(40) % 4
    (folder / "train-images-idx3-ubyte").write_bytes(idx_bytes(imgs))
    (folder / "train-labels-idx1-ubyte").write_bytes(idx_bytes(labels))
    (folder / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(idx_bytes(imgs[:12])))
    (folder / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(labels[:12])))
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


# -- the data directory -----------------------------------------------------------------------------
def test_data_directory_is_a_dedicated_folder_created_on_first_use(tmp_path, monkeypatch):
    from core.data.files import data_root

    monkeypatch.delenv("RESIDUE_DATA", raising=False)
    monkeypatch.chdir(tmp_path)  # the working directory is never the data directory
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert data_root() == (tmp_path / "xdg" / "residue").resolve() and data_root().is_dir()
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    expected = {"darwin": "Library/Application Support/residue"}.get(sys.platform, ".local/share/residue")
    if os.name != "nt":
        assert data_root() == (tmp_path / "home" / expected).resolve() and data_root().is_dir()
    monkeypatch.setenv("RESIDUE_DATA", str(tmp_path / "mine"))
    assert data_root() == (tmp_path / "mine").resolve() and data_root().is_dir()
    with pytest.raises(ResidueError, match="outside the data directory"):
        load_dataset("csv", path=str(tmp_path / "elsewhere.csv"))


def test_messages_about_a_path_never_quote_the_file(tmp_path, monkeypatch):
    """A path can name any file in the data directory: until it parses as a numeric table, a message names
    neither its header nor its values. An upload (the user's own bytes) may have its columns named."""
    monkeypatch.setenv("RESIDUE_DATA", str(tmp_path))
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "config").write_text("[core]\n\trepositoryformatversion = 0\n\tbare = false\n")
    (tmp_path / "secret.txt").write_text("password=hunter2,token\nsk-12345,abc\n")
    for path in (".git/config", "secret.txt"):
        with pytest.raises(ResidueError) as info:
            load_dataset("csv", path=path)
        message = str(info.value)
        for content in ("[core]", "repositoryformatversion", "password", "hunter2", "sk-12345", "abc", "token"):
            assert content not in message, message
        assert "non-numeric value in column 1" in message or "ragged" in message, message
    with pytest.raises(ResidueError, match="non-numeric value in column 'password=hunter2'"):
        load_dataset("csv", data=(tmp_path / "secret.txt").read_bytes())
    (tmp_path / "table.csv").write_text("a,b\n" + "1,0\n2,1\n" * 10)  # a table: its columns may be named
    with pytest.raises(ResidueError, match=r"no column named 'label' in the header \(a, b\)"):
        load_dataset("csv", path="table.csv")


# -- CSV: parsed by pyarrow in blocks, same semantics -------------------------------------------------
@pytest.mark.parametrize("text, shape", [
    ("\ufeffx,label\r\n" + "1.5,0\r\n2,1\r\n" * 6, (12, 1)),  # byte-order mark, CRLF
    ("x,label\r" + "1.5,0\r2,1\r" * 6, (12, 1)),  # lone CR line ends
    ("\n\nx , label\n\n" + " 1.5 , 0\n\n2,1\n" * 6 + "3,0", (13, 1)),  # blank lines, spaces, no final newline
    ('"x","label"\n' + '"1.5","0"\n2,1\n' * 6, (12, 1)),  # quoted names and values
])
def test_csv_layouts_that_parse(text, shape):
    assert load_dataset("csv", data=text.encode(), standardize=False).X.shape == shape


@pytest.mark.parametrize("text, message", [
    ("x,label\n1,0\n,1\n" + "2,1\n" * 10, "empty value in column 'x'"),
    ("x,label\n1,0\n2,1.0000001\n" + "2,1\n" * 10, "non-integer"),  # labels parsed exactly, not as float32
    ("x,label\n" + "1" * (5 * 2**20) + ",0\n", "line over 4 MB"),
    ("x,label\n1,0\n2,1,3\n" + "2,1\n" * 10, "ragged row: 3 value(s) where the header names 2 columns"),
])
def test_csv_refusals(text, message):
    with pytest.raises(ResidueError, match=re.escape(message)):
        load_dataset("csv", data=text.encode())


def test_csv_larger_than_a_block_and_the_row_limit(monkeypatch):
    """Rows spanning many parse blocks come out whole and in order; the row limit stops the parse."""
    monkeypatch.setattr("core.data.files.CSV_BLOCK_BYTES", 256)
    rows = "".join(f"{i * 0.5},{i % 3},{'7,' * 30}{i}\n" for i in range(3000))
    ds = load_dataset("csv", data=("a,label," + ",".join(f"c{j}" for j in range(31)) + "\n" + rows).encode(),
                      standardize=False)
    assert ds.X.shape == (3000, 32) and np.array_equal(ds.X[:, 0], np.arange(3000) * 0.5)
    assert np.array_equal(ds.y, np.arange(3000) % 3) and np.array_equal(ds.X[:, -1], np.arange(3000))
    monkeypatch.setattr("core.data.files.MAX_SAMPLES", 2000)
    with pytest.raises(ResidueError, match="more than 2,000 rows, over the limit of 2000 samples"):
        load_dataset("csv", data=("a,label\n" + "1,0\n2,1\n" * 1500).encode())


# -- IDX: sizes checked in Python integers, before the body; gzip read no further than declared ------
def _idx_header(*dims: int) -> bytes:
    return bytes([0, 0, 0x08, len(dims)]) + b"".join(n.to_bytes(4, "big") for n in dims)


def _peak_bytes(fn) -> int:
    import tracemalloc

    tracemalloc.start()
    try:
        fn()
    except ResidueError:
        pass
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


def test_idx_declared_size_refused_before_reading():
    small = _idx_header(2**31, 3) + bytes(100)  # 2^31 x 3 overflows 32 bits: it must not wrap to a small size
    with pytest.raises(ResidueError, match=r"declares 2147483648 x 3 = 6,442,450,944 values \(6,144 MB\), over"):
        parse_idx(small)
    assert _peak_bytes(lambda: parse_idx(small)) < 2**20  # nothing near the declared size was allocated


def test_idx_limit_is_the_data_limit(monkeypatch):
    monkeypatch.setattr("core.data.files.MAX_VALUES", 1000)
    with pytest.raises(ResidueError, match="over the limit of 1,000 values"):
        parse_idx(_idx_header(41, 5, 5) + bytes(1025))
    assert parse_idx(_idx_header(40, 5, 5)[:-4] + (4).to_bytes(4, "big") + bytes(800)).shape == (40, 5, 4)


def test_gzip_bomb_refused_without_unpacking_it():
    """A 10 kB gzip stream that unpacks to 16 MB after a header declaring 100 bytes: refused at byte 101."""
    bomb = gzip.compress(_idx_header(100) + bytes(16 * 2**20))
    assert len(bomb) < 20_000
    with pytest.raises(ResidueError, match="unpacks to more than the 100 bytes of data its header declares"):
        parse_idx(bomb)
    assert _peak_bytes(lambda: parse_idx(bomb)) < 2 * 2**20  # the old reader unpacked all 16 MB first
    with pytest.raises(ResidueError, match="holds more than the 100 bytes"):
        parse_idx(_idx_header(100) + bytes(101))


# -- split coverage ---------------------------------------------------------------------------------
def _ds(y, X=None):
    y = np.asarray(y)
    return Dataset("t", np.random.default_rng(0).normal(size=(len(y), 3)) if X is None else X, y, 0)


def test_a_csv_of_1000_classes_x_3_rows_is_refused_with_the_counts():
    text = "label,x\n" + "".join(f"{c},{i}\n" for c in range(1000) for i in range(3))
    ds = load_dataset("csv", data=text.encode())
    with pytest.raises(ResidueError, match=r"leaves the test set empty \(train 2000, test 0, shadow 1000 of 3000 "
                                           r"samples in 1000 classes, the smallest with 3\)"):
        make_split(ds, ForgetSpec(kind="random", count=10), seed=0)


def test_split_parts_and_their_classes():
    y = np.r_[np.arange(40) % 2, 2]  # class 2: one sample
    split = make_split(_ds(y), ForgetSpec(kind="class", classes=[2]), seed=0)
    assert 2 not in y[split.test] and 2 in y[split.train]  # test need not hold every class
    with pytest.raises(ResidueError, match=r"leaves class 2 \(1 sample\(s\)\) out of the training set"):
        make_split(_ds(y), ForgetSpec(kind="class", classes=[0]), test_fraction=0.5, shadow_fraction=0.3)
    with pytest.raises(ResidueError, match="test set with a single class"):
        make_split(_ds(np.r_[np.zeros(30, int), 1, 1]), ForgetSpec(kind="random", count=1), test_fraction=0.05,
                   shadow_fraction=0.0)
    with pytest.raises(ResidueError, match="leaves the shadow pool empty"):
        make_split(_ds(np.arange(40) % 2), ForgetSpec(kind="random", count=1), shadow_fraction=0.01)
    none = make_split(_ds(np.arange(40) % 2), ForgetSpec(kind="random", count=1), shadow_fraction=0.0)
    assert len(none.shadow) == 0  # no pool asked for: an empty one is right
    with pytest.raises(ResidueError, match="takes all 1 training sample"):
        make_split(_ds(y), ForgetSpec(kind="indices", indices=[40]), seed=0)


# -- standardisation --------------------------------------------------------------------------------
def _wine_csv(constant: bool = False) -> bytes:
    from sklearn.datasets import load_wine

    w = load_wine()
    X = np.c_[w.data, np.full(len(w.data), 3.25)] if constant else w.data
    rows = ["label," + ",".join(f"f{i}" for i in range(X.shape[1]))]
    rows += [f"{t}," + ",".join(repr(float(v)) for v in x) for x, t in zip(X, w.target)]
    return "\n".join(rows).encode()


def test_standardisation_uses_the_training_split_only():
    raw = load_dataset("csv", data=_wine_csv(constant=True))
    assert raw.standardize and raw.X.max() > 100  # the loader keeps the values; the split scales them
    split = make_split(raw, ForgetSpec(kind="random", count=5), seed=0)
    X = split.dataset.X
    np.testing.assert_allclose(X[split.train, :-1].mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(X[split.train, :-1].std(0), 1, atol=1e-4)
    assert np.all(X[:, -1] == 0) and np.isfinite(X).all()  # a constant feature is centred, not divided by 0
    assert np.abs(X[split.test, :-1].mean(0)).max() > 1e-3  # test samples did not shape the statistics
    mean, std = raw.X[split.train].mean(0, dtype=np.float64), raw.X[split.train].std(0, dtype=np.float64)
    np.testing.assert_allclose(X[split.test, :-1], ((raw.X[split.test] - mean) / np.where(std > 0, std, 1))[:, :-1],
                               rtol=1e-5, atol=1e-5)
    assert not split.dataset.standardize and make_split(split.dataset, ForgetSpec(kind="random", count=5),
                                                        seed=0).dataset.X is split.dataset.X  # never twice
    off = make_split(load_dataset("csv", data=_wine_csv(), standardize=False), ForgetSpec(kind="random", count=5))
    assert np.array_equal(off.dataset.X, load_dataset("csv", data=_wine_csv()).X)
    images = load_dataset("npz", data=npz_bytes(X=np.random.default_rng(0).random((30, 4, 4)), y=np.arange(30) % 2))
    assert images.kind == "image" and not images.standardize  # images keep their own scale
    with pytest.raises(ResidueError, match="standardize must be true or false"):
        load_dataset("csv", data=_wine_csv(), standardize="yes")


def test_standardised_wine_learns_and_the_option_is_recorded(tmp_path):
    """Scikit-learn's wine table (features from 0.1 to 1,680): unstandardised, the default recipe learns
    little of it; standardised, θ_o is far better than the majority class."""
    from core import Experiment, from_dict
    from core.cache import ModelStore

    (Path(os.environ["RESIDUE_DATA"]) / "wine.csv").write_bytes(_wine_csv())
    acc = {}
    for on in (True, False):
        cfg = from_dict({"data": {"name": "csv", "options": {"path": "wine.csv", "standardize": on},
                                  "forget": {"kind": "class", "classes": [0]}},
                         "methods": [{"name": "finetune", "epochs": 1}]})
        r = Experiment(cfg, store=ModelStore(tmp_path / str(on)), device="cpu").run()
        assert r.config["data"]["options"]["standardize"] is on
        acc[on] = r.model("original")
    majority = 71 / 178  # class 1 of wine
    assert acc[True].test_acc > majority + 0.4 and acc[True].retain_acc > 0.95
    assert acc[True].retain_acc > acc[False].retain_acc + 0.2
