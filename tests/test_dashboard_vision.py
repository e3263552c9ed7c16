"""The sidebar's "Data & model" section offers the image datasets read from disk and torchvision's networks, with
their options drawn from the loaders' and constructors' signatures and a cost note before the button is pressed;
a run on 32x32 colour images draws its samples in true colour."""
from __future__ import annotations

import json

import pytest

pytest.importorskip("streamlit")

from test_dashboard_pages import (  # noqa: E402,F401
    _run_disabled,
    app,
    environment,
    errors,
    form_app,
    no_exception,
    open_section,
    run_preset,
)
from test_image_data import write_cifar10  # noqa: E402


def test_cifar10_and_a_narrow_resnet_make_a_config(tmp_path, monkeypatch):
    monkeypatch.setenv("RESIDUE_DATA", str(tmp_path))
    write_cifar10(tmp_path / "cifar-10-batches-bin")
    at = form_app()
    at.selectbox(key="f.dataset").set_value("cifar10").run()
    no_exception(at)
    assert at.checkbox(key="f.dopt.cifar10.normalize").value is True
    at.text_input(key="f.dopt.cifar10.limit").set_value("40").run()
    at.multiselect(key="f.forget.classes").set_value([3]).run()
    at.selectbox(key="f.model").set_value("resnet18_cifar").run()
    at.number_input(key="f.mopt.resnet18_cifar.width").set_value(0.0625).run()
    open_section(at, "open.recipe")
    at.selectbox(key="f.recipe.augment").set_value("crop_flip").run()
    no_exception(at)
    assert not errors(at), errors(at)
    assert not _run_disabled(at)
    captions = " ".join(c.value for c in at.caption)
    assert "Runs on this machine's CPU (no GPU found)" in captions and "width-0.0625 resnet18_cifar" in captions
    assert "Your data in use: **cifar-10-batches-bin** (cifar10" in captions
    from dashboard import form
    cfg = form.from_dict({"data": {"name": "cifar10", "options": {"limit": 40}}, "model": {"name": "resnet18_cifar",
                                                                                          "width": 0.0625}})
    assert cfg.data.options == {"limit": 40}
    key = at.session_state["form_key"]
    assert key and at.session_state["f.dopt.cifar10.folder"] == ""


def test_per_channel_statistics_and_a_missing_folder_are_said_in_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("RESIDUE_DATA", str(tmp_path))
    at = form_app()
    at.selectbox(key="f.dataset").set_value("cifar10").run()
    no_exception(at)
    assert any("no folder 'cifar-10-batches-bin' in the data directory" in e for e in errors(at)), errors(at)
    assert _run_disabled(at)
    write_cifar10(tmp_path / "cifar-10-batches-bin")
    at.text_input(key="f.dopt.cifar10.mean").set_value("0.49, 0.48, 0.45").run()
    no_exception(at)
    assert any("give both mean and std" in e for e in errors(at)), errors(at)
    at.text_input(key="f.dopt.cifar10.std").set_value("0.25, 0.24, 0.26").run()
    no_exception(at)
    assert not errors(at), errors(at)


def test_a_vgg_on_digits_is_refused_readably():
    at = form_app()
    at.selectbox(key="f.model").set_value("vgg11_bn").run()
    no_exception(at)
    assert any("vgg11_bn needs images of at least 32x32 pixels" in e for e in errors(at)), errors(at)


CIFAR = """# title: Tiny CIFAR
seed = 0

[data]
name = "cifar10"

[data.forget]
kind = "class"
classes = [3]

[model]
name = "cnn"
channels = [4, 8]
hidden = 16

[recipe]
epochs = 2
batch_size = 64

[[methods]]
name = "finetune"
epochs = 1
"""


def _colour_images(at) -> list[list[dict]]:
    """Per plotly chart of the page that draws samples in true colour: its go.Image traces (as sent)."""
    charts = [json.loads(c.proto.spec)["data"] for c in at.get("plotly_chart")]
    return [[t for t in data if t["type"] == "image"] for data in charts if any(t["type"] == "image" for t in data)]


def test_neighbourhood_and_embedding_draw_32x32_colour_samples(tmp_path, monkeypatch):
    """A CIFAR-format run: the perturbed copies and the followed sample's thumbnail are RGB images (go.Image of
    32x32x3), not one channel's z-scores in grey."""
    import os
    from pathlib import Path

    from core.analysis import base
    from dashboard import warmup

    monkeypatch.setenv("RESIDUE_DATA", str(tmp_path))
    for a in base.ANALYSES.values():  # the two pages' analyses only: the rest take minutes on 32x32 colour
        monkeypatch.setattr(a, "in_run_everything", a.name in ("neighbourhood", "embedding"))
    monkeypatch.setattr(warmup, "warm", lambda run: None)  # (it draws every page's views, computing theirs)
    write_cifar10(tmp_path / "cifar-10-batches-bin", per_file=20)
    (Path(os.environ["RESIDUE_PRESETS_DIR"]) / "tiny_cifar.toml").write_text(CIFAR)
    run = run_preset("tiny_cifar")
    at = app(autorun=False)
    at.session_state["run_key"] = run.key
    at.switch_page("pages/neighbourhood.py").run()
    no_exception(at)
    assert not errors(at), errors(at)
    charts = _colour_images(at)
    assert len(charts) == 2, len(charts)  # the strip of copies and the followed sample's thumbnail
    assert sorted(len(c) for c in charts) == [1, 7]  # the clean sample, 4 random copies and PGD's for θ_u and θ_r
    assert all(t["z"]["dtype"] == "u1" and t["z"]["shape"] == "32, 32, 3" for c in charts for t in c)
    at.switch_page("pages/embedding.py").run()
    no_exception(at)
    assert not errors(at), errors(at)
    assert any("followed sample" in c.proto.spec for c in at.get("plotly_chart"))  # the embedding itself
    assert [len(c) for c in _colour_images(at)] == [1]  # and the followed sample beside its predictions, in colour


def test_the_recipe_picker_selects_a_registered_recipe(tmp_path, monkeypatch):
    """The picker's choices are the `recipes` registry; picking airbench fills every field (those without a widget
    too, said in a caption), and gives the very config a file naming `[recipe] name = "airbench"` gives."""
    from core.training import recipes

    monkeypatch.setenv("RESIDUE_DATA", str(tmp_path))
    write_cifar10(tmp_path / "cifar-10-batches-bin")
    text = ('[data]\nname = "cifar10"\n[data.options]\nlimit = 40\n[data.forget]\nkind = "class"\nclasses = [3]\n'
            '[model]\nname = "airbench"\nwidth = 0.0625\n[recipe]\nname = "airbench"\nepochs = 2\n'
            '[[methods]]\nname = "finetune"\n')
    at = form_app()
    at.file_uploader(key="cfg_upload").set_value(("airbench.toml", text.encode(), "application/toml")).run()
    no_exception(at)
    assert not errors(at), errors(at)
    ss = at.session_state
    assert (ss["f.recipe.name"], ss["f.recipe.epochs"], ss["f.recipe.nesterov"]) == ("airbench", 2, True)
    from_file = ss["form_key"]
    open_section(at, "open.recipe")
    picker = at.selectbox(key="f.recipe.name")
    assert picker.options == recipes.names()
    captions = " ".join(c.value for c in at.caption)
    assert "nesterov = True" in captions and "label_smoothing = 0.2" in captions and "Recipe: airbench" in captions
    picker.set_value("default").run()
    no_exception(at)
    assert (ss["f.recipe.epochs"], ss["f.recipe.optimizer"], ss["f.recipe.nesterov"], ss["f.recipe.schedule"]) == (
        40, "adam", False, ())
    assert ss["form_key"] != from_file and "nesterov" not in " ".join(c.value for c in at.caption)
    at.selectbox(key="f.recipe.name").set_value("airbench").run()
    air = recipes.get("airbench")
    assert (at.number_input(key="f.recipe.batch_size").value, at.selectbox(key="f.recipe.augment").value) == (
        air.batch_size, air.augment)
    at.number_input(key="f.recipe.epochs").set_value(2).run()
    no_exception(at)
    assert not errors(at) and ss["form_key"] == from_file  # the picker and the file make the same run
