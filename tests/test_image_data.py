"""Image data from disk, in each format the test writes itself: CIFAR-10/100 binary, the MNIST family's IDX files
(plain and gzipped) and folder-per-class trees; normalisation; and one clear line for every bad folder."""
from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from core import ResidueError
from core.config import from_dict
from core.data import ForgetSpec, load_dataset, make_split
from core.data.images import write_cifar10, write_cifar100, write_folder, write_mnist


@pytest.fixture()
def root(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("RESIDUE_DATA", str(tmp_path))
    return tmp_path


# -- CIFAR ----------------------------------------------------------------------------------------------------
def test_cifar10_binary_reads_the_records_in_order(root):
    X, y = write_cifar10(root / "cifar-10-batches-bin")
    d = load_dataset("cifar10", normalize=False)
    assert d.X.shape == (60, 3, 32, 32) and d.kind == "image" and d.class_names[3] == "class3"
    assert np.array_equal(d.y, y) and np.allclose(d.X * 255, X)
    assert d.X[7, 1, 2, 5] * 255 == pytest.approx(X[7, 1, 2, 5])  # channel-major planes, row-major pixels
    assert len(load_dataset("cifar10", normalize=False, limit=25).y) == 25
    # the folder the archive unpacks to may sit one level down
    write_cifar10(root / "mine" / "cifar-10-batches-bin")
    assert len(load_dataset("cifar10", folder="mine").y) == 60


def test_cifar100_fine_and_coarse_labels(root):
    X, fine, coarse = write_cifar100(root / "cifar-100-binary", 40)
    d = load_dataset("cifar100", normalize=False)
    assert d.n_classes == 100 and np.array_equal(d.y, fine)
    assert np.allclose(d.X * 255, X)
    c = load_dataset("cifar100", labels="coarse")
    assert c.n_classes == 20 and np.array_equal(c.y, coarse)


def test_normalisation_uses_the_training_split_or_the_given_statistics(root):
    write_cifar10(root / "cifar-10-batches-bin")
    forget = ForgetSpec(classes=[3])
    d = load_dataset("cifar10")
    s = make_split(d, forget, 0.2, 0.2, seed=0)
    Xt = s.dataset.X[s.train]
    assert np.allclose(Xt.mean(axis=(0, 2, 3)), 0, atol=1e-5) and np.allclose(Xt.std(axis=(0, 2, 3)), 1, atol=1e-4)
    assert len(s.dataset.norm_stats[0]) == 3
    fixed = make_split(load_dataset("cifar10", mean=[0.5, 0.5, 0.5], std=[0.25, 0.25, 0.25]), forget, 0.2, 0.2, 0)
    assert np.allclose(fixed.dataset.X, (d.X - 0.5) / 0.25, atol=1e-6)
    assert fixed.dataset.norm_stats == ([0.5] * 3, [0.25] * 3)
    raw = make_split(load_dataset("cifar10", normalize=False), forget, 0.2, 0.2, 0)
    assert raw.dataset.X.min() >= 0 and raw.dataset.X.max() <= 1 and raw.dataset.norm_stats is None


# -- the MNIST family -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("name,gz", [("mnist", False), ("fashion_mnist", True), ("kmnist", True)])
def test_mnist_family_reads_idx_files(root, name, gz):
    X = write_mnist(root / name, gz=gz)
    d = load_dataset(name, normalize=False)
    assert d.X.shape == (60, 1, 28, 28) and np.allclose(d.X[:, 0] * 255, X) and len(d.class_names) == 10
    assert d.class_names[9] == {"mnist": "9", "fashion_mnist": "Ankle boot", "kmnist": "wo"}[name]


# -- a folder per class ---------------------------------------------------------------------------------------
def test_image_folder_reads_one_class_per_sub_folder(root):
    write_folder(root / "images", {"cats": [(f"{i}.png", ("RGB", 16)) for i in range(6)],
                                   "dogs": [(f"{i}.bmp", ("RGB", 16)) for i in range(5)]})
    (root / "images" / "dogs" / "notes.txt").write_text("not an image")
    d = load_dataset("image_folder", normalize=False)
    assert d.class_names == ["cats", "dogs"] and d.X.shape == (11, 3, 16, 16) and list(np.bincount(d.y)) == [6, 5]
    from PIL import Image
    first = np.asarray(Image.open(root / "images" / "cats" / "0.png"), dtype=np.float32) / 255
    assert np.allclose(d.X[0], first.transpose(2, 0, 1))
    write_folder(root / "grey", {"a": [(f"{i}.png", ("L", 8)) for i in range(6)],
                                 "b": [(f"{i}.pgm", ("L", 8)) for i in range(6)]})
    g = load_dataset("image_folder", folder="grey", normalize=False)
    assert g.X.shape == (12, 1, 8, 8)


def test_an_experiment_trains_a_resnet_on_cifar_files_with_augmentation(root, tmp_path):
    from core import Experiment
    from core.cache import ModelStore

    write_cifar10(root / "cifar-10-batches-bin", per_file=10)
    cfg = from_dict({"data": {"name": "cifar10", "test_fraction": 0.2, "shadow_fraction": 0.1,
                              "forget": {"kind": "random", "count": 5}},
                     "model": {"name": "resnet18_cifar", "width": 0.0625},
                     "recipe": {"epochs": 1, "batch_size": 16, "augment": "crop_flip"},
                     "methods": [{"name": "finetune", "epochs": 1}]})
    res = Experiment(cfg, store=ModelStore(tmp_path / "store"), device="cpu").run()
    assert [m.name for m in res.models] == ["original", "retrain", "finetune"]
    assert "augment" in cfg.to_dict()["recipe"]


# -- bad folders: one line each, naming what was expected -----------------------------------------------------
def _pickled_cifar(root: Path) -> None:
    folder = root / "cifar-10-batches-py"
    folder.mkdir()
    for name in ("data_batch_1", "batches.meta", "test_batch"):
        (folder / name).write_bytes(pickle.dumps({"data": [1, 2, 3]}))


def _cut_short(root: Path) -> None:
    write_cifar10(root / "cifar-10-batches-bin")
    p = root / "cifar-10-batches-bin" / "data_batch_3.bin"
    p.write_bytes(p.read_bytes()[:-100])


def _incomplete(root: Path) -> None:
    write_cifar10(root / "cifar-10-batches-bin")
    (root / "cifar-10-batches-bin" / "data_batch_4.bin").unlink()
    (root / "cifar-10-batches-bin" / "test_batch.bin").unlink()


def _bad_label(root: Path) -> None:
    folder = root / "cifar-10-batches-bin"
    write_cifar10(folder)
    raw = bytearray((folder / "test_batch.bin").read_bytes())
    raw[0] = 42
    (folder / "test_batch.bin").write_bytes(bytes(raw))


def _mixed_sizes(root: Path) -> None:
    write_folder(root / "images", {"a": [("1.png", ("RGB", 16)), ("2.png", ("RGB", 16))], "b": [("3.png", ("RGB", 20))]})


def _mixed_kinds(root: Path) -> None:
    write_folder(root / "images", {"a": [("1.png", ("RGB", 16))], "b": [("2.png", ("L", 16))]})


def _empty_class(root: Path) -> None:
    write_folder(root / "images", {"a": [("1.png", ("RGB", 16))], "b": [("2.png", ("RGB", 16))]})
    (root / "images" / "c").mkdir()


def _broken_image(root: Path) -> None:
    write_folder(root / "images", {"a": [("1.png", ("RGB", 16))], "b": [("2.png", ("RGB", 16))]})
    (root / "images" / "b" / "2.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 20)


def _mnist_missing(root: Path) -> None:
    write_mnist(root / "mnist")
    (root / "mnist" / "t10k-labels-idx1-ubyte").unlink()


BAD = [
    ("pickled", _pickled_cifar, dict(name="cifar10", folder="cifar-10-batches-py"),
     "'python version' \\(pickled batches\\), which Residue never unpickles .*binary version \\(cifar-10-binary.tar.gz"),
    ("incomplete", _incomplete, dict(name="cifar10"), "is missing data_batch_4.bin, test_batch.bin \\(expected "
     "data_batch_1.bin, data_batch_2.bin"),
    ("no folder", lambda root: None, dict(name="cifar10"), "no folder 'cifar-10-batches-bin' in the data directory"),
    ("cut short", _cut_short, dict(name="cifar10"), "'data_batch_3.bin' is cut short .*3073-byte records"),
    ("bad label", _bad_label, dict(name="cifar10"), "label 42 is out of range 0..9"),
    ("mnist missing", _mnist_missing, dict(name="mnist"), "is missing t10k-labels-idx1-ubyte \\(expected "
     "train-images-idx3-ubyte, .* each optionally gzipped\\)"),
    ("mixed sizes", _mixed_sizes, dict(name="image_folder"), "images differ in size \\('a/1.png' is 16x16, 'b/3.png' "
     "20x20\\)"),
    ("mixed kinds", _mixed_kinds, dict(name="image_folder"), "greyscale and colour images are mixed \\('b/2.png' is "
     "greyscale, 'a/1.png' colour\\)"),
    ("empty class", _empty_class, dict(name="image_folder"), "class folder 'c' holds no image files"),
    ("broken image", _broken_image, dict(name="image_folder"), "'b/2.png' could not be read as an image"),
    ("outside", lambda root: None, dict(name="cifar10", folder="/etc"), "outside the data directory"),
    ("limit", lambda root: write_cifar10(root / "cifar-10-batches-bin"), dict(name="cifar10", limit=3),
     "limit must be a whole number of images in \\[10, "),
    ("mean only", lambda root: None, dict(name="cifar10", mean=[0.5, 0.5, 0.5]), "give both mean and std"),
    ("std length", lambda root: None, dict(name="mnist", mean=[0.5, 0.5], std=[1, 1]), "mean must be 1 number"),
    ("labels", lambda root: None, dict(name="cifar100", labels="medium"), "labels must be 'fine' or 'coarse'"),
]


@pytest.mark.parametrize("what,make,kw,message", BAD, ids=[b[0] for b in BAD])
def test_bad_image_data_gets_one_clear_line(root, what, make, kw, message):
    make(root)
    kw = dict(kw)
    with pytest.raises(ResidueError, match=message) as e:
        load_dataset(kw.pop("name"), **kw)
    assert "\n" not in str(e.value)


def test_an_unreadable_data_folder_is_one_line(root, monkeypatch):
    write_cifar10(root / "cifar-10-batches-bin")

    def refuse(self):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "iterdir", refuse)  # as root, permissions do not bind: simulate them
    with pytest.raises(ResidueError, match="cannot read the folder 'cifar-10-batches-bin' \\(Permission denied\\)"):
        load_dataset("cifar10")
    assert os.environ["RESIDUE_DATA"] == str(root)


def test_image_options_are_checked_at_config_time():
    with pytest.raises(ResidueError, match="dataset 'cifar10': unknown option 'path'"):
        from_dict({"data": {"name": "cifar10", "options": {"path": "x"}}})
