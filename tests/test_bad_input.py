"""Every class of bad input, at every engine entry point a user reaches, and the one line it earns (issue 9).

One table: each row is (input class, entry point, call, expected text). The call must raise `ResidueError`
whose message is one line containing the expected text: the UI shows it with `st.error`, the CLI prints it
and exits 2, neither shows a traceback. A second, shorter table lists edge cases that are *valid* (a forget
set of one sample, a class with a single sample...) and must run, not be refused.

Entry points: the config parser (`loads`, `from_dict`, `load_config`), the data loaders
(`load_dataset`, `parse_idx`), `Experiment` (data, split and forget set, before any training), checkpoint
loading (`core.models.load_checkpoint`, used by the dashboard's upload) and methods' hyperparameters
(`get_method`). A real malicious pickle (one that creates a file when unpickled) is fed to every place
that reads user bytes; the file must never appear.
"""
from __future__ import annotations

import gzip
import io
import os
import pickle
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import torch

from core import Experiment, ExperimentConfig, ResidueError, from_dict, loads
from core.cache import ModelStore
from core.config import DataConfig, MethodConfig, load_config
from core.data import ForgetSpec, load_dataset
from core.data.base import Dataset
from core.data.files import idx_bytes, npz_bytes, parse_idx
from core.models import build_model, load_checkpoint
from core.training import Recipe
from core.unlearn import get_method

DEEP = "x = " + "[" * 3000 + "]" * 3000  # 6 kB of TOML that exhausts a recursive parser's stack
MARKER = "PWNED"  # the file a malicious pickle would create in the data directory


class Evil:
    """Unpickling this creates a directory named MARKER in the working directory: code execution."""

    def __reduce__(self):
        return os.mkdir, (MARKER,)


# -- builders for the table ----------------------------------------------------------------------
def torch_bytes(obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def csv_bytes(header: str, rows: list[str]) -> bytes:
    return "\n".join([header, *rows]).encode()


GOOD_X, GOOD_Y = np.random.default_rng(0).normal(size=(30, 3)), np.arange(30) % 3
MLP = dict(name="mlp", input_shape=(1, 8, 8), n_classes=10, hidden=[16])


def mlp() -> torch.nn.Module:
    return build_model(**MLP)


def legacy_bytes(obj) -> bytes:
    """torch.save's format before PyTorch 1.6: pickles in a row, no zip archive."""
    buf = io.BytesIO()
    torch.save(obj, buf, _use_new_zipfile_serialization=False)
    return buf.getvalue()


def zip_of(compress: bool = False, **members: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


def state_with(**changes) -> dict:
    """The MLP's state dict with some tensors replaced (NaN weights, integer weights...)."""
    sd = {k: v.clone() for k, v in mlp().state_dict().items()}
    sd.update(changes)
    return sd


def evil_npz() -> bytes:
    buf = io.BytesIO()
    np.savez(buf, X=np.array([Evil()] * 20, dtype=object), y=np.arange(20) % 2)
    return buf.getvalue()


def npz_claiming(shape: tuple[int, ...]) -> bytes:
    """A tiny .npz whose X header claims `shape` (float64): numpy would allocate it all before reading."""
    buf, head = io.BytesIO(), io.BytesIO()
    np.lib.format.write_array_header_1_0(head, {"descr": "<f8", "fortran_order": False, "shape": shape})
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("X.npy", head.getvalue() + bytes(64))
        z.writestr("y.npy", bytes(8))
    return buf.getvalue()


def gzip_bomb() -> bytes:
    """A 10 kB gzipped IDX file whose header declares 10 values but that unpacks to 10 MB."""
    return gzip.compress(idx_bytes(np.zeros(10)) + bytes(10 * 2**20))


def idx_declaring(dims: tuple[int, ...]) -> bytes:
    """An IDX header declaring `dims` uint8 values, with no body."""
    return bytes([0, 0, 0x08, len(dims)]) + b"".join(int(n).to_bytes(4, "big") for n in dims)


def prepare(config: dict, dataset: Dataset | None = None) -> None:
    """Config -> Experiment -> data, split, forget set and an untrained model (no training)."""
    Experiment(from_dict(config), store=ModelStore(Path("store")), device="cpu", dataset=dataset).fresh_model()


def moons_exp(**forget) -> dict:
    """Moons (200 samples, classes 0 and 1), by default forgetting 10 random samples."""
    return {"data": {"name": "moons", "options": {"n_samples": 200},
                     "forget": forget or {"kind": "random", "count": 10}},
            "methods": ["finetune"]}


def two_d(y: np.ndarray) -> Dataset:
    return Dataset("t", np.random.default_rng(1).normal(size=(len(y), 2)), y, 0, kind="2d")


SINGLETON = np.r_[np.arange(59) % 2, 2]  # class 2 has one sample, which the stratified split puts in train


def singleton_in_train() -> list[int]:
    from core.data import make_split

    split = make_split(two_d(SINGLETON), ForgetSpec(kind="random", count=1), seed=0)
    return [int(i) for i in split.train if SINGLETON[i] == 2]


def data_dir(tmp: Path) -> Path:
    """Files the path cases read: a secret outside the data directory, links pointing to it, an IDX folder."""
    data = tmp / "data"
    (data / "mnist").mkdir(parents=True)
    (tmp / "secret.csv").write_text("label,x\n" + "0,1\n1,2\n" * 10)
    (data / "link.csv").symlink_to(tmp / "secret.csv")
    (data / "fake.npz").write_text("label,x\n0,1\n")
    (data / "fake.csv").write_bytes(npz_bytes(X=GOOD_X, y=GOOD_Y))
    (data / "empty").mkdir()
    imgs = np.random.default_rng(0).integers(0, 256, size=(20, 6, 6))
    (data / "mnist" / "train-images-idx3-ubyte").write_bytes(idx_bytes(imgs))
    (tmp / "labels-outside").write_bytes(idx_bytes(np.arange(20) % 2))
    (data / "mnist" / "train-labels-idx1-ubyte").symlink_to(tmp / "labels-outside")
    (data / "flat").mkdir()
    (data / "flat" / "a-images").write_bytes(idx_bytes(imgs.reshape(20, 36)))
    (data / "flat" / "a-labels").write_bytes(idx_bytes(np.arange(20) % 2))
    (data / "config.toml").write_bytes(b"\xff\xfe seed = 1")
    (data / "deep.toml").write_text(DEEP)
    (data / "classes.csv").write_text("label,x\n" + "".join(f"{c},{i}\n" for c in range(1000) for i in range(3)))
    return data


R = pytest.param
# (call, expected text); ids are "input class / entry point / what"
BAD: list = [
    # -- empty ------------------------------------------------------------------------------------
    R(lambda: loads("methods = []"), "at least one unlearning method", id="empty/config/no methods"),
    R(lambda: load_dataset("npz", data=b""), "not a NumPy .npz", id="empty/npz/zero bytes"),
    R(lambda: load_dataset("csv", data=b""), "needs a header row", id="empty/csv/zero bytes"),
    R(lambda: load_dataset("csv", data=b"label,a\n"), "at least one data row", id="empty/csv/header only"),
    R(lambda: parse_idx(b""), "not an IDX file", id="empty/idx/zero bytes"),
    R(lambda: load_dataset("npz", data=npz_bytes(X=np.zeros((0, 3)), y=np.zeros(0))), "only 0 samples",
      id="empty/npz/no samples"),
    R(lambda: load_dataset("idx", folder="empty"), "no '*images*' IDX files", id="empty/idx/folder"),
    R(lambda: load_dataset("npz", path=""), "non-empty text", id="empty/npz/path"),
    R(lambda: load_checkpoint(b"", mlp()), "Checkpoint file is empty", id="empty/checkpoint"),
    R(lambda: load_checkpoint(torch_bytes({}), mlp()), "must hold a state dict", id="empty/checkpoint/dict"),
    # -- huge -------------------------------------------------------------------------------------
    R(lambda: loads("seed = 1\n" + "#" * 1_000_001), "over the 1000000 limit", id="huge/config/text"),
    R(lambda: loads("seed = 4294967296"), "32-bit integer", id="huge/config/seed"),
    R(lambda: loads("[recipe]\nepochs = 1000000"), "epochs must be in [1, 1000]", id="huge/config/epochs"),
    R(lambda: loads(DEEP), "nested too deeply", id="huge/config/nested 3000 deep"),
    R(lambda: load_config("deep.toml"), "nested too deeply", id="huge/config file/nested 3000 deep"),
    R(lambda: loads("[model]\nhidden = " + "[" * 300 + "]" * 300), "hidden widths must be",
      id="huge/config/nested 300 deep in a value"),
    R(lambda: loads("[model]\nhidden = [1000000]"), "hidden widths must be", id="huge/config/mlp width"),
    R(lambda: loads("[model]\nname = 'cnn'\nchannels = [100000, 100000]"), "cnn: channels must be",
      id="huge/config/cnn channels"),
    R(lambda: load_dataset("npz", data=npz_bytes(X=np.zeros((12, 100_000), np.uint8), y=np.arange(12) % 2)),
      "features per sample", id="huge/npz/features"),
    R(lambda: load_dataset("csv", data=csv_bytes("label,a", ["0,1", "1,2"] * 100_001)), "over the limit of 200000",
      id="huge/csv/rows"),
    R(lambda: load_dataset("npz", data=npz_claiming((10**12,))), "unpacks to 7629394 MB, over the",
      id="huge/npz/header claims 8 TB"),
    R(lambda: parse_idx(gzip_bomb()), "unpacks to more than the 10 bytes of data its header declares",
      id="huge/idx/gzip bomb"),
    R(lambda: parse_idx(idx_declaring((2**31, 3))), "2147483648 x 3 = 6,442,450,944 values (6,144 MB), over the limit",
      id="huge/idx/header declares 2**31 x 3"),
    R(lambda: load_dataset("moons", n_samples=10**9), "n_samples must be in [100, 20000]", id="huge/moons/n"),
    R(lambda: load_checkpoint(torch_bytes(mlp().state_dict()), mlp(), max_bytes=1000), "over the",
      id="huge/checkpoint"),
    # -- wrong type -------------------------------------------------------------------------------
    R(lambda: loads("seed = 'one'"), "seed must be int", id="type/config/seed"),
    R(lambda: loads("[recipe]\nlr = 'fast'"), "recipe.lr must be a number", id="type/config/lr"),
    R(lambda: loads("[data]\noptions = 3"), "data.options must be dict", id="type/config/options"),
    R(lambda: loads("methods = 'finetune'"), "methods must be a list", id="type/config/methods"),
    R(lambda: loads("model = 'mlp'"), "[model] must be a table", id="type/config/model table"),
    R(lambda: loads("[model]\nhidden = 'wide'"), "hidden widths must be", id="type/config/hidden"),
    R(lambda: loads("[data.forget]\nclasses = '7'"), "list of whole numbers", id="type/config/classes"),
    R(lambda: loads("[[methods]]\nname = 'finetune'\nepochs = 'x'"), "epochs must be a number",
      id="type/config/method epochs"),
    R(lambda: loads("[[methods]]\nname = 'finetune'\nepochs = 1.5"), "whole number", id="type/config/epochs 1.5"),
    R(lambda: from_dict([1, 2]), "expected a table", id="type/from_dict/list"),
    R(lambda: load_config(None), "config: give the path of a TOML file, got None.", id="type/config file/None"),
    R(lambda: loads(None), "config: expected TOML text, got NoneType.", id="type/config/None"),
    R(lambda: Recipe(epochs=2.5), "config: recipe.epochs must be int, got 2.5.", id="type/Recipe/epochs 2.5"),
    R(lambda: Recipe(epochs="3"), "config: recipe.epochs must be int, got '3'.", id="type/Recipe/epochs text"),
    R(lambda: Recipe(lr=float("nan")), "config: recipe.lr must be a number, got nan.", id="nan/Recipe/lr"),
    R(lambda: Recipe(optimizer=None), "config: recipe.optimizer must be str, got None.", id="type/Recipe/optimizer"),
    R(lambda: ExperimentConfig(seed="3").validate(), "config: seed must be int, got '3'.",
      id="type/ExperimentConfig/seed"),
    R(lambda: ExperimentConfig(data=DataConfig(test_fraction="0.2")).validate(),
      "config: data.test_fraction must be a number, got '0.2'.", id="type/DataConfig/fraction"),
    R(lambda: ExperimentConfig(data=DataConfig(forget=ForgetSpec(classes=[1.5]))).validate(),
      "config: data.forget.classes must be a list of whole numbers, got [1.5].", id="type/ForgetSpec/classes"),
    R(lambda: ExperimentConfig(methods=["finetune"]).validate(), "config: methods must be a list of MethodConfig",
      id="type/ExperimentConfig/methods"),
    R(lambda: ExperimentConfig(methods=[MethodConfig("finetune", params=None)]).validate(),
      "config: methods.params must be dict, got None.", id="type/MethodConfig/params"),
    R(lambda: prepare(moons_exp(kind="random", count=2.5)), "config: data.forget.count must be int, got 2.5.",
      id="type/ForgetSpec/count"),
    R(lambda: load_dataset("npz", data=npz_bytes(X=np.array([["a", "b"]] * 20), y=np.arange(20) % 2)),
      "features must be real numbers", id="type/npz/text features"),
    R(lambda: load_dataset("npz", data=npz_bytes(X=GOOD_X * 1j, y=GOOD_Y)), "features must be real numbers",
      id="type/npz/complex features"),
    R(lambda: load_dataset("npz", data="X,y"), "must be bytes", id="type/npz/str upload"),
    R(lambda: load_dataset("csv", path=3), "non-empty text", id="type/csv/path int"),
    R(lambda: load_dataset("csv", data=csv_bytes("label,a", ["cat,1", "dog,2"] * 10)), "non-numeric",
      id="type/csv/text labels"),
    R(lambda: load_dataset("moons", noise="lots"), "noise must be a number", id="type/moons/noise"),
    R(lambda: load_config("config.toml"), "not UTF-8", id="type/config file/binary"),
    R(lambda: load_checkpoint(b"hello, not a checkpoint", mlp()), "a text file, not a PyTorch checkpoint",
      id="type/checkpoint/text"),
    R(lambda: load_checkpoint(np.random.default_rng(0).bytes(5000), mlp()),
      "not a PyTorch checkpoint (neither torch.save's zip archive nor a pickle)", id="type/checkpoint/random bytes"),
    R(lambda: load_checkpoint(zip_of(**{"a.txt": b"hello"}), mlp()), "a zip archive but not a PyTorch checkpoint",
      id="type/checkpoint/zip, not torch"),
    R(lambda: load_checkpoint(pickle.dumps({"w": [1.0, 2.0]}), mlp()), "a plain pickle, not a PyTorch checkpoint",
      id="type/checkpoint/plain pickle"),
    R(lambda: load_checkpoint(torch_bytes([1, 2]), mlp()), "must hold a state dict", id="type/checkpoint/list"),
    R(lambda: load_checkpoint(torch_bytes(state_with(**{"blocks.head.weight": torch.ones(10, 16).long()})), mlp()),
      "dtype torch.int64", id="type/checkpoint/int weights"),
    R(lambda: get_method("finetune", epochs="many"), "epochs must be a number", id="type/method/epochs"),
    R(lambda: get_method("finetune", lr=True), "lr must be a number", id="type/method/bool lr"),
    # -- NaN / inf --------------------------------------------------------------------------------
    R(lambda: loads("[recipe]\nlr = nan"), "recipe.lr must be a number", id="nan/config/recipe lr"),
    R(lambda: loads("[recipe]\nlr = inf"), "lr must be in (0, 10]", id="inf/config/recipe lr"),
    R(lambda: loads("[data]\ntest_fraction = nan"), "test_fraction must be a number", id="nan/config/fraction"),
    R(lambda: loads("[[methods]]\nname = 'finetune'\nlr = nan"), "lr must be in", id="nan/config/method lr"),
    R(lambda: loads("[model]\nhidden = [nan]"), "hidden widths must be", id="nan/config/mlp width"),
    R(lambda: load_dataset("npz", data=npz_bytes(X=np.where(GOOD_X > 1, np.nan, GOOD_X), y=GOOD_Y)),
      "NaN or infinite features", id="nan/npz/features"),
    R(lambda: load_dataset("npz", data=npz_bytes(X=np.full((30, 3), 1e300), y=GOOD_Y)), "NaN or infinite features",
      id="inf/npz/beyond float32"),
    R(lambda: load_dataset("csv", data=csv_bytes("label,a", ["0,inf", "1,2"] * 10)), "NaN or infinite",
      id="inf/csv/features"),
    R(lambda: load_dataset("npz", data=npz_bytes(X=GOOD_X, y=np.full(30, np.nan))), "non-integer", id="nan/npz/labels"),
    R(lambda: load_checkpoint(torch_bytes(state_with(**{"blocks.head.bias": torch.full((10,), float("nan"))})),
                              mlp()), "non-finite (NaN/inf)", id="nan/checkpoint/weights"),
    R(lambda: get_method("gradient_ascent", lr=float("inf")), "lr must be in", id="inf/method/lr"),
    # -- wrong shape ------------------------------------------------------------------------------
    R(lambda: load_dataset("npz", data=npz_bytes(X=np.zeros(30), y=GOOD_Y)), "features must have shape",
      id="shape/npz/1-D features"),
    R(lambda: load_dataset("npz", data=npz_bytes(X=np.zeros((30, 1, 2, 2, 2)), y=GOOD_Y)), "features must have shape",
      id="shape/npz/5-D features"),
    R(lambda: load_dataset("npz", data=npz_bytes(X=np.zeros((30, 0)), y=GOOD_Y)), "no features",
      id="shape/npz/zero features"),
    R(lambda: load_dataset("npz", data=npz_bytes(X=GOOD_X, y=np.zeros((30, 2)))), "one value per sample",
      id="shape/npz/2-D labels"),
    R(lambda: load_dataset("npz", data=npz_bytes(X=GOOD_X, y=GOOD_Y[:29])), "30 feature rows but 29 labels",
      id="shape/npz/length mismatch"),
    R(lambda: load_dataset("csv", data=csv_bytes("label,a,b", ["0,1", "1,2,3"] * 10)), "ragged",
      id="shape/csv/ragged"),
    R(lambda: load_dataset("idx", folder="flat"), "must be (N, H, W) images", id="shape/idx/flat images"),
    R(lambda: parse_idx(idx_bytes(np.zeros((4, 3)))[:-2]), "truncated", id="shape/idx/truncated"),
    R(lambda: prepare({**moons_exp(), "model": {"name": "cnn"}}),
      "cnn needs image data", id="shape/experiment/cnn on 2-D data"),
    R(lambda: load_checkpoint(torch_bytes(build_model("mlp", (1, 8, 8), 10, hidden=[32]).state_dict()), mlp()),
      "has shape (32, 64), the model expects (16, 64)", id="shape/checkpoint/other width"),
    # -- wrong labels -----------------------------------------------------------------------------
    R(lambda: load_dataset("npz", data=npz_bytes(X=GOOD_X, y=GOOD_Y + 0.5)), "non-integer", id="labels/npz/fractional"),
    R(lambda: load_dataset("npz", data=npz_bytes(X=GOOD_X, y=GOOD_Y - 1)), "found -1", id="labels/npz/negative"),
    R(lambda: load_dataset("npz", data=npz_bytes(X=GOOD_X, y=GOOD_Y * 10**6)), "out of range", id="labels/npz/huge"),
    R(lambda: load_dataset("npz", data=npz_bytes(X=GOOD_X, y=np.r_[np.zeros(29, np.uint64), np.uint64(2**63 + 5)])),
      "out of range", id="labels/npz/uint64 wrap-around"),
    R(lambda: load_dataset("npz", data=npz_bytes(X=GOOD_X, y=GOOD_Y * 5)), "every class present; no sample has label 1",
      id="labels/npz/gaps"),
    R(lambda: load_dataset("npz", data=npz_bytes(X=GOOD_X, y=np.zeros(30, int))), "single class",
      id="labels/npz/one class"),
    R(lambda: load_dataset("npz", data=npz_bytes(X=GOOD_X, y=GOOD_Y == 0)), "integers 0..K-1, got dtype bool",
      id="labels/npz/bool"),
    # -- unknown names ----------------------------------------------------------------------------
    R(lambda: loads("[data]\nname = 'cifar'"), "Unknown dataset 'cifar'", id="name/config/dataset"),
    R(lambda: loads("[model]\nname = 'vit'"), "Unknown model 'vit'", id="name/config/model"),
    R(lambda: loads("[[methods]]\nname = 'magic'"), "Unknown unlearning method 'magic'", id="name/config/method"),
    R(lambda: loads("[recipe]\noptimizer = 'lbfgs'"), "optimizer must be 'adam' or 'sgd'", id="name/config/optimizer"),
    R(lambda: loads("[data.forget]\nkind = 'some'"), "Unknown forget kind 'some'", id="name/config/forget kind"),
    R(lambda: load_dataset("npz", data=npz_bytes(A=GOOD_X, y=GOOD_Y)), "must hold arrays 'X' and 'y'",
      id="name/npz/keys"),
    R(lambda: load_dataset("csv", data=csv_bytes("target,a", ["0,1", "1,2"] * 10)), "no column named 'label'",
      id="name/csv/label column"),
    R(lambda: load_dataset("csv", data=csv_bytes("label,a,a", ["0,1,2", "1,2,3"] * 10)), "appears twice",
      id="name/csv/duplicate column"),
    R(lambda: load_dataset("imagenet"), "Unknown dataset 'imagenet'", id="name/loader/dataset"),
    R(lambda: get_method("finetune", lrr=0.1), "unknown hyperparameter", id="name/method/hyperparameter"),
    R(lambda: get_method("orthogonal_replay", mode="all"), "must be one of", id="name/method/choice"),
    # -- a config file with unknown keys ----------------------------------------------------------
    R(lambda: loads("sede = 1"), "unknown key 'sede' in [top level]", id="keys/config/top level"),
    R(lambda: loads("[data]\ncolour = 1"), "unknown key 'colour' in [data]", id="keys/config/data"),
    R(lambda: loads("[data.forget]\ncolour = 1"), "unknown key 'colour' in [data.forget]", id="keys/config/forget"),
    R(lambda: loads("[recipe]\nlearning_rate = 0.1"), "unknown key 'learning_rate' in [recipe]",
      id="keys/config/recipe"),
    R(lambda: loads("[model]\nhiddn = [64]"), "model 'mlp': unknown option 'hiddn'", id="keys/config/model option"),
    R(lambda: loads("[data]\nname = 'digits'\noptions = {size = 28}"), "dataset 'digits': unknown option 'size'",
      id="keys/config/dataset option"),
    R(lambda: loads("[[methods]]\nname = 'finetune'\nlrr = 0.1"), "unknown hyperparameter",
      id="keys/config/method hyperparameter"),
    R(lambda: load_dataset("npz", data=b"PK", colour=1), "unknown option 'colour'", id="keys/loader/option"),
    # -- out-of-range hyperparameters -------------------------------------------------------------
    R(lambda: loads("[[methods]]\nname = 'finetune'\nlr = 50.0"), "lr must be in", id="range/config/method lr"),
    R(lambda: loads("[recipe]\nbatch_size = 0"), "batch_size must be in", id="range/config/batch size"),
    R(lambda: loads("[data]\ntest_fraction = 0.9"), "test_fraction must be in [0.05, 0.5]",
      id="range/config/test fraction"),
    R(lambda: loads("[data]\nshadow_fraction = 0.7"), "shadow_fraction must be in", id="range/config/shadow"),
    R(lambda: loads("[data.forget]\nkind = 'random'\nfraction = 2.0"), "Forget fraction must be in (0, 1]",
      id="range/config/forget fraction"),
    R(lambda: loads("[data.forget]\nclasses = [-1]"), "must be >= 0", id="range/config/negative class"),
    R(lambda: get_method("finetune", epochs=0), "epochs must be in", id="range/method/epochs 0"),
    R(lambda: get_method("gradient_ascent", lr=5.0), "lr must be in", id="range/method/lr"),
    R(lambda: load_dataset("blobs", centers=40), "centers must be in [2, 10]", id="range/blobs/centers"),
    # -- forget set: empty / all / not there ------------------------------------------------------
    R(lambda: loads("[data.forget]\nclasses = []"), "Forget set is empty", id="forget/config/no class"),
    R(lambda: loads("[data.forget]\nkind = 'random'\ncount = 0"), "Forget set is empty", id="forget/config/count 0"),
    R(lambda: loads("[data.forget]\nkind = 'indices'\nindices = []"), "Forget set is empty",
      id="forget/config/no index"),
    R(lambda: prepare(moons_exp(kind="random", fraction=1.0)), "whole training set", id="forget/experiment/all"),
    R(lambda: prepare(moons_exp(kind="class", classes=[0, 1])), "whole training set",
      id="forget/experiment/all classes"),
    R(lambda: prepare(moons_exp(kind="random", count=10**6)), "larger than the training set",
      id="forget/experiment/too many"),
    R(lambda: prepare(moons_exp(kind="class", classes=[5])), "Class 5 is not present",
      id="forget/experiment/absent class"),
    R(lambda: prepare(moons_exp(kind="indices", indices=[10**6])), "not in the training split",
      id="forget/experiment/index outside"),
    R(lambda: prepare({"data": {"name": "csv", "options": {"path": "classes.csv"}}, "methods": ["finetune"]}),
      "The split leaves the test set empty (train 2000, test 0, shadow 1000 of 3000 samples in 1000 classes, the "
      "smallest with 3)", id="split/experiment/1000 classes x 3 rows"),
    R(lambda: prepare({**moons_exp(), "data": {**moons_exp()["data"], "shadow_fraction": 0.001}}),
      "leaves the shadow pool empty", id="split/experiment/shadow fraction rounds to nothing"),
    R(lambda: prepare({"data": {"name": "moons", "options": {"n_samples": 200}, "test_fraction": 0.5,
                                "shadow_fraction": 0.3}, "methods": ["finetune"]},
                      dataset=two_d(np.r_[np.arange(58) % 2, 2, 2])),
      "The split leaves class 2 (2 sample(s)) out of the training set", id="split/experiment/class not in train"),
    R(lambda: prepare(moons_exp(kind="indices", indices=singleton_in_train()), dataset=two_d(SINGLETON)),
      "takes all 1 training sample(s) of class 2", id="split/experiment/hand-picked forget set takes a whole class"),
    R(lambda: prepare({"data": {"name": "blobs", "options": {"n_samples": 200, "centers": 3},
                                "forget": {"classes": [0, 1]}}, "methods": ["finetune"]}),
      "retain set would hold a single class", id="forget/experiment/one class left"),
    # -- a checkpoint of another architecture -----------------------------------------------------
    R(lambda: load_checkpoint(torch_bytes(build_model("cnn", (1, 8, 8), 10).state_dict()), mlp()),
      "does not match the architecture", id="checkpoint/cnn into mlp"),
    R(lambda: load_checkpoint(torch_bytes(build_model("mlp", (1, 8, 8), 10, hidden=[16, 16]).state_dict()), mlp()),
      "does not match the architecture", id="checkpoint/deeper mlp"),
    R(lambda: load_checkpoint(torch_bytes(mlp().state_dict())[:300], mlp()), "damaged or truncated",
      id="checkpoint/truncated"),
    R(lambda: load_checkpoint(torch_bytes(mlp().state_dict())[:-100], mlp()), "damaged or truncated",
      id="checkpoint/end cut off"),
    R(lambda: load_checkpoint(legacy_bytes(mlp().state_dict())[:200], mlp()), "damaged or truncated",
      id="checkpoint/legacy format truncated"),
    R(lambda: load_checkpoint(zip_of(**{"archive/data.pkl": bytes(10**6)}, compress=True), mlp(), max_bytes=10**5),
      "unpacks to over the", id="checkpoint/zip bomb"),
    # -- a file that is not what its extension says -----------------------------------------------
    R(lambda: load_dataset("npz", path="fake.npz"), "not a NumPy .npz archive", id="kind/npz/is csv text"),
    R(lambda: load_dataset("csv", path="fake.csv"), "binary, not a CSV", id="kind/csv/is npz"),
    R(lambda: parse_idx(gzip.compress(b"GIF89a")), "bad magic number", id="kind/idx/gzipped gif"),
    R(lambda: load_config("missing.toml"), "not found", id="kind/config file/missing"),
    # -- a path escaping the data directory -------------------------------------------------------
    R(lambda: load_dataset("csv", path="../secret.csv"), "outside the data directory", id="path/csv/dot-dot"),
    R(lambda: load_dataset("csv", path=str(Path("../secret.csv").resolve())), "outside the data directory",
      id="path/csv/absolute"),
    R(lambda: load_dataset("csv", path="/etc/passwd"), "outside the data directory", id="path/csv/etc passwd"),
    R(lambda: load_dataset("csv", path="link.csv"), "outside the data directory", id="path/csv/symlink out"),
    R(lambda: load_dataset("idx", folder=".."), "outside the data directory", id="path/idx/parent folder"),
    R(lambda: load_dataset("idx", folder="mnist/../../"), "outside the data directory", id="path/idx/dot-dot"),
    R(lambda: load_dataset("idx", folder="mnist"), "outside the data directory", id="path/idx/linked labels file"),
    R(lambda: prepare({"data": {"name": "csv", "options": {"path": "../secret.csv"}}, "methods": ["finetune"]}),
      "outside the data directory", id="path/experiment/config path"),
    R(lambda: load_dataset("csv", path="nothing.csv"), "does not exist", id="path/csv/missing"),
    # -- a pickle that would run code -------------------------------------------------------------
    R(lambda: load_checkpoint(pickle.dumps(Evil()), mlp()), "mkdir; a pickle could run code)",
      id="pickle/checkpoint/raw pickle"),
    R(lambda: load_checkpoint(legacy_bytes({"state_dict": Evil()}), mlp()), "mkdir; a pickle could run code)",
      id="pickle/checkpoint/legacy torch.save"),
    R(lambda: load_checkpoint(torch_bytes({"state_dict": Evil()}), mlp()), "could run code",
      id="pickle/checkpoint/torch.save"),
    R(lambda: load_dataset("npz", data=evil_npz()), "pickled objects, which are refused", id="pickle/npz/object array"),
]


@pytest.fixture
def in_data_dir(tmp_path, monkeypatch) -> Path:
    """Run inside a fresh data directory ($RESIDUE_DATA) whose parent holds a 'secret' file."""
    data = data_dir(tmp_path)
    monkeypatch.setenv("RESIDUE_DATA", str(data))
    monkeypatch.chdir(data)
    return data


@pytest.mark.parametrize("call, expected", BAD)
def test_bad_input_is_refused_with_one_clear_line(call: Callable, expected: str, in_data_dir: Path):
    with pytest.raises(ResidueError) as info:
        call()
    message = str(info.value)
    assert expected in message, message
    assert "\n" not in message and "Traceback" not in message and len(message) < 400, message
    assert not (in_data_dir / MARKER).exists(), "a pickle ran code"


def test_the_malicious_pickle_is_real(tmp_path, monkeypatch):
    """The payload above does run code when unpickled unsafely, so refusing it is what keeps the file away."""
    monkeypatch.chdir(tmp_path)
    pickle.loads(pickle.dumps(Evil()))
    assert (tmp_path / MARKER).is_dir()


# -- valid edge cases: accepted, and they run ------------------------------------------------------
def tiny(forget: dict, dataset: Dataset | None = None, **data) -> Experiment:
    cfg = from_dict({"data": {"name": "moons", "options": {"n_samples": 200}, "forget": forget, **data},
                     "recipe": {"epochs": 2}, "methods": [{"name": "finetune", "epochs": 1}]})
    exp = Experiment(cfg, store=ModelStore(Path("store")), device="cpu", dataset=dataset)
    exp.run()
    return exp


def test_empty_config_means_the_default_experiment():
    assert loads("").hash() == ExperimentConfig().hash()


def test_forget_set_of_one_sample_runs(in_data_dir):
    one = int(Experiment(from_dict(moons_exp()), device="cpu").prepare().train[5])
    exp = tiny({"kind": "indices", "indices": [one]})
    r = exp.results
    assert r.split["forget"] == 1 and r.forget_indices == [one]
    assert all(m.forget_acc in (0.0, 1.0) and np.isfinite(m.kl_to_retrain) for m in r.models)


def test_a_class_with_a_single_sample_can_be_forgotten(in_data_dir):
    exp = tiny({"kind": "class", "classes": [2]}, dataset=two_d(SINGLETON))
    r = exp.results
    assert r.split["forget"] == 1 and r.forget_classes == [2]
    assert all(np.isfinite([m.test_acc, m.kl_to_retrain]).all() for m in r.models)


def test_a_class_with_a_single_sample_left_in_the_data_is_fine(in_data_dir):
    exp = tiny({"kind": "class", "classes": [0]}, dataset=two_d(SINGLETON))
    assert exp.results.split["forget"] > 1 and exp.results.model("original").test_acc >= 0.0


@pytest.mark.parametrize("raw", [
    csv_bytes('"label","a"', ["0,1", "1,2"] * 10),  # quoted header names
    npz_bytes(X=np.ones((30, 2), bool), y=GOOD_Y),  # boolean features
])
def test_valid_odd_files_are_accepted(raw):
    ds = load_dataset("csv" if raw[:1] == b'"' else "npz", data=raw)
    assert len(ds) in (20, 30) and ds.X.dtype == np.float32


def test_checkpoint_that_fits_is_loaded():
    good = mlp()
    loaded = load_checkpoint(torch_bytes({"state_dict": good.state_dict()}), mlp())
    assert all(torch.equal(loaded[k], v) for k, v in good.state_dict().items())


# -- the CLI shows the same line, exits 2, prints no traceback --------------------------------------
@pytest.mark.parametrize("toml, expected", [
    ("[model]\nhiddn = [64]\n", "unknown option 'hiddn'"),  # refused at parse time
    ("[data]\nname = 'csv'\noptions = {path = '../secret.csv'}\n", "outside the data directory"),  # at load time
    (DEEP, "nested too deeply"),  # the parser's own RecursionError
])
def test_cli_prints_one_line_and_exits_2(toml: str, expected: str, in_data_dir: Path):
    (in_data_dir / "bad.toml").write_text(toml)
    root = Path(__file__).resolve().parents[1]
    p = subprocess.run([sys.executable, "-m", "core", "run", "--config", "bad.toml", "--out", "out", "--cache",
                        "cache", "--quiet"], capture_output=True, text=True, cwd=in_data_dir,
                       env={**os.environ, "PYTHONPATH": str(root)})
    assert p.returncode == 2, p.stderr
    assert expected in p.stderr and "Traceback" not in p.stderr and p.stderr.strip().count("\n") == 0, p.stderr
    assert not (in_data_dir / "cache").exists() or not list((in_data_dir / "cache").rglob("*.pt"))


# -- safe by default: server settings and how user bytes are read ----------------------------------
def test_server_binds_to_localhost_and_limits_uploads():
    import tomllib

    root = Path(__file__).resolve().parents[1]
    cfg = tomllib.loads((root / ".streamlit" / "config.toml").read_text())
    assert cfg["server"]["address"] == "127.0.0.1"
    assert 0 < cfg["server"]["maxUploadSize"] <= 200  # MB; the engine refuses files over 200 MB as well
    assert cfg["server"]["enableXsrfProtection"] is True and cfg["client"]["showErrorDetails"] == "none"
    assert "--server.address 127.0.0.1" in (root / "Makefile").read_text()


def test_no_code_path_unpickles_user_bytes():
    """Every torch.load passes weights_only=True, no np.load allows pickles, nothing calls pickle.load(s)."""
    import re

    root = Path(__file__).resolve().parents[1]
    for path in [*root.glob("core/**/*.py"), *root.glob("dashboard/**/*.py")]:
        text = path.read_text()
        for start in (m.end() for m in re.finditer(r"torch\.load\(", text)):
            depth, end = 1, start
            while depth:  # to the call's closing parenthesis
                depth += {"(": 1, ")": -1}.get(text[end], 0)
                end += 1
            assert "weights_only=True" in text[start:end], (path, text[start:end])
        assert "allow_pickle=True" not in text and not re.search(r"\bpickle\.loads?\(", text), path


# -- the Python API refuses what a config file would, with the same line ----------------------------
@pytest.mark.parametrize("build, toml", [
    (lambda: Recipe(epochs=2.5), "[recipe]\nepochs = 2.5"),
    (lambda: Recipe(epochs="3"), "[recipe]\nepochs = '3'"),
    (lambda: Recipe(lr="fast"), "[recipe]\nlr = 'fast'"),
    (lambda: Recipe(lr=50.0), "[recipe]\nlr = 50.0"),
    (lambda: Recipe(batch_size=True), "[recipe]\nbatch_size = true"),
    (lambda: ExperimentConfig(seed="3").validate(), "seed = '3'"),
    (lambda: ExperimentConfig(data=DataConfig(test_fraction="x")).validate(), "[data]\ntest_fraction = 'x'"),
    (lambda: ExperimentConfig(data=DataConfig(options=[])).validate(), "[data]\noptions = []"),
    (lambda: ExperimentConfig(data=DataConfig(forget=ForgetSpec("random", count=2.5))).validate(),
     "[data.forget]\nkind = 'random'\ncount = 2.5"),
    (lambda: ExperimentConfig(data=DataConfig(forget=ForgetSpec(classes="7"))).validate(),
     "[data.forget]\nclasses = '7'"),
])
def test_python_api_and_config_file_give_the_same_line(build, toml):
    with pytest.raises(ResidueError) as api:
        build()
    with pytest.raises(ResidueError) as file:
        loads(toml)
    assert str(api.value) == str(file.value)


def test_numpy_numbers_are_accepted_and_normalised():
    """A config built from numpy scalars is the config built from Python numbers (same hash, same cache)."""
    cfg = ExperimentConfig(seed=np.int64(3), recipe=Recipe(epochs=np.int32(5), lr=np.float32(0.5)),
                           data=DataConfig(forget=ForgetSpec(classes=np.array([1, 2])))).validate()
    assert cfg.hash() == from_dict({"seed": 3, "recipe": {"epochs": 5, "lr": 0.5},
                                    "data": {"forget": {"classes": [1, 2]}}}).hash()
    assert type(cfg.seed) is int and type(cfg.recipe.lr) is float
