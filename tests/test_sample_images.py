"""Sample images as a person sees them: the engine hands over pixels with the split's normalisation undone, and
the figures draw three channels in true colour (go.Image, 0-255 RGB) and one channel in grey (a heatmap)."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import plotly.graph_objects as go
import torch

from core.attacks.residual import sample_neighbourhood
from core.data import Dataset, ForgetSpec, display_pixels, load_dataset, make_split
from core.models import build_model
from dashboard.figures.neighbourhood import perturbed_strip_figure
from dashboard.figures.samples import image_trace, picture, picture_bytes, thumbnail_figure
from test_image_data import root, write_cifar10  # noqa: F401  (root: the RESIDUE_DATA fixture)


def _cifar_split(folder):
    raw = write_cifar10(folder / "cifar-10-batches-bin", per_file=20)[0]
    return make_split(load_dataset("cifar10"), ForgetSpec(classes=[3]), 0.2, 0.2, seed=0), raw


def test_display_pixels_undo_the_normalisation(root):  # noqa: F811
    split, raw = _cifar_split(root)
    X = split.dataset.X
    assert abs(float(X.mean())) < 0.1 and X.min() < 0  # the model sees z-scores...
    shown = display_pixels(split.dataset, torch.as_tensor(X[:5]))
    assert shown.shape == (5, 3, 32, 32) and shown.dtype == np.float32
    assert np.allclose(shown * 255, raw[:5], atol=1e-3)  # ...a person the bytes of the file
    one = display_pixels(split.dataset, X[7])  # one image (C, H, W) alike
    assert np.allclose(one * 255, raw[7], atol=1e-3)
    far = display_pixels(split.dataset, X[:1] + 100.0)  # a perturbed copy past the data's range is clipped
    assert far.max() == 1.0


def test_display_pixels_of_data_never_normalised():
    digits = load_dataset("digits")
    assert digits.norm_stats is None and np.array_equal(display_pixels(digits, digits.X[:3]), digits.X[:3])
    rng = np.random.default_rng(0)
    bytes_ = rng.integers(0, 256, (20, 1, 4, 4)).astype(np.float32)  # an npz of 0-255 values: the dataset's range
    ds = Dataset("npz:bytes", bytes_, np.arange(20) % 2, 2, kind="image")
    shown = display_pixels(ds, bytes_)
    lo, hi = bytes_.min(), bytes_.max()
    assert np.allclose(shown, (bytes_ - lo) / (hi - lo)) and shown.min() == 0.0 and shown.max() == 1.0


def test_colour_is_an_rgb_image_and_one_channel_a_grey_heatmap():
    rgb = np.random.default_rng(1).random((3, 32, 32)).astype(np.float32)
    pic = picture(rgb)
    assert pic.shape == (32, 32, 3) and pic.dtype == np.uint8
    assert np.array_equal(pic[5, 9], np.rint(rgb[:, 5, 9] * 255).astype(np.uint8))  # row 5, column 9: (R, G, B)
    trace = image_trace(rgb)
    assert isinstance(trace, go.Image) and np.asarray(trace.z).shape == (32, 32, 3)
    assert np.asarray(trace.z).dtype == np.uint8
    grey = image_trace(np.full((1, 8, 8), 0.25))
    assert isinstance(grey, go.Heatmap) and np.asarray(grey.z).shape == (8, 8)
    def light(colour: str) -> int:
        return sum(int(v) for v in colour[4:-1].split(","))

    assert (grey.zmin, grey.zmax) == (0, 1)
    assert light(grey.colorscale[0][1]) > 700 and light(grey.colorscale[-1][1]) < 100  # 0 white paper, 1 dark ink
    assert np.array_equal(picture_bytes(rgb), pic)  # the gallery's pictures: the same colours...
    assert np.array_equal(picture_bytes(np.array([[[0.0, 1.0]]])), [[255, 0]])  # ...and grey as ink on paper
    thumb = thumbnail_figure(rgb)
    assert [type(t) for t in thumb.data] == [go.Image] and thumb.layout.yaxis.autorange == "reversed"


def test_neighbourhood_copies_of_a_colour_image_in_true_colour(root):  # noqa: F811
    split, raw = _cifar_split(root)
    shape = split.dataset.input_shape
    models = {n: build_model("cnn", shape, 10, seed=s) for s, n in enumerate(("original", "u", "retrain"))}
    sid = int(split.forget[0])
    ex = sample_neighbourhood(SimpleNamespace(split=split, models=models), "u", sid, n_random=2)
    images = np.asarray(ex.images)
    assert ex.kinds == ["clean", "random", "random", "pgd:u", "pgd:retrain"] and images.shape == (5, 3, 32, 32)
    assert images.min() >= 0.0 and images.max() <= 1.0
    assert np.allclose(images[0] * 255, raw[sid], atol=1e-3)  # the clean copy is the file's picture
    fig = perturbed_strip_figure(ex)
    assert [type(t) for t in fig.data] == [go.Image] * 5
    assert all(np.asarray(t.z).shape == (32, 32, 3) and np.asarray(t.z).dtype == np.uint8 for t in fig.data)
    assert np.array_equal(fig.data[0].z, picture(images[0]))
    for i in range(1, 6):  # every subplot keeps square pixels against its own x axis
        assert fig.layout[f"yaxis{'' if i == 1 else i}"].scaleanchor == f"x{'' if i == 1 else i}"


def test_neighbourhood_copies_of_a_digit_stay_grey():
    ds = load_dataset("digits")
    split = make_split(ds, ForgetSpec(classes=[7]), 0.2, 0.2, seed=0)
    models = {n: build_model("mlp", (1, 8, 8), 10, seed=s, hidden=[8]) for s, n in enumerate(("original", "retrain"))}
    sid = int(split.forget[0])
    ex = sample_neighbourhood(SimpleNamespace(split=split, models=models), "retrain", sid, n_random=1)
    assert np.allclose(np.asarray(ex.images[0]), ds.X[sid])
    fig = perturbed_strip_figure(ex)
    assert [type(t) for t in fig.data] == [go.Heatmap] * 3 and np.asarray(fig.data[0].z).shape == (8, 8)
