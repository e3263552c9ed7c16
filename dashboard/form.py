"""The sidebar experiment form. Every widget is drawn from a declaration the engine already has:
method hyperparameters from their `Param`s, dataset and model options from their loader/constructor
signatures, the recipe from its dataclass fields. The form's state lives in `st.session_state` under
keys starting with ``f.``; a preset or an uploaded config is loaded by writing those keys.

`render()` returns a `Form`: the validated `ExperimentConfig` (or the one-line error that stops it),
plus the session's uploaded dataset and checkpoint, which never leave this session.
"""
from __future__ import annotations

import dataclasses
import inspect
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import streamlit as st

from core.analysis import settings_text
from core.cache import bytes_fingerprint
from core.config import ExperimentConfig, from_dict, loads
from core.data import Dataset, ForgetSpec, datasets, load_dataset, make_split
from core.data.files import data_root
from core.data.images import DEFAULT_FOLDERS
from core.errors import ResidueError
from core.models import build_model, models
from core.params import Param
from core.training import AUGMENTS, Recipe, recipes
from core.unlearn import methods

from . import state, ui

ROOT = Path(__file__).resolve().parent.parent
PRESETS_DIR = ROOT / "assets" / "presets"  # $RESIDUE_PRESETS_DIR overrides it (the tests use tiny presets)
DEFAULT_PRESET = "forget_digit_7"
MAX_UPLOAD_MB = 50  # also server.maxUploadSize in .streamlit/config.toml; the engine refuses > 200 MB
UPLOADS = ("npz", "csv")  # datasets that take uploaded bytes
BUTTONS = ("f.pick",)  # form keys of buttons: Streamlit refuses a value written to them

# Loader options whose widget needs more than the option's name: (label, help)
OPTION_TEXT = {
    "standardize": ("Standardise features",
                    "Shift and scale each feature to mean 0 and variance 1, with the training split's statistics "
                    "(tabular data only: images keep their scale). Off: the features as uploaded, e.g. for a "
                    "checkpoint trained on raw features. Recorded in the config as data.options.standardize."),
    "folder": ("folder", "a folder inside the data directory ($RESIDUE_DATA)"),
    "normalize": ("Normalise each channel",
                  "Shift and scale each colour channel to mean 0 and deviation 1, with the training split's "
                  "statistics, or with the mean and std below (e.g. those your checkpoint was trained with)."),
    "mean": ("mean", "per-channel means, comma-separated (with std); empty: the training split's"),
    "std": ("std", "per-channel deviations, comma-separated (with mean); empty: the training split's"),
    "limit": ("limit", "keep the first N images (e.g. 2000 for a CPU classroom); empty: all of them"),
    "width": ("width", "channel multiplier: 1 is the reference network, 0.25 or 0.125 a narrow one that trains "
                       "on a CPU in minutes"),
}
IMAGE_DATA = ("cifar10", "cifar100", "mnist", "fashion_mnist", "kmnist", "image_folder")
VISION_MODELS = ("resnet18", "resnet18_cifar", "vgg11_bn", "airbench")

# The recipe has no Param declarations of its own: these mirror `Recipe.__post_init__`'s ranges so the
# widgets show them; Recipe itself stays the judge.
RECIPE_PARAMS = {
    "epochs": Param("epochs", 40, 1, 1000, "passes over the training set"),
    "batch_size": Param("batch_size", 128, 1, 65536, "mini-batch size"),
    "lr": Param("lr", 2e-3, 1e-6, 10.0, "learning rate", log=True),
    "optimizer": Param("optimizer", "adam", choices=("adam", "sgd"), help="optimizer"),
    "momentum": Param("momentum", 0.9, 0.0, 0.999, "SGD momentum"),
    "weight_decay": Param("weight_decay", 0.0, 0.0, 1.0, "weight decay"),
    "augment": Param("augment", "none", choices=AUGMENTS,
                     help="images: crop_flip = random 4-pixel shifts and horizontal flips (the CIFAR recipe), "
                          "shift2_flip = 2-pixel shifts of reflect-padded images and flips (airbench's), seeded"),
}
# Recipe fields without a widget (they come with a registered recipe, e.g. airbench's); the form carries them
HIDDEN_RECIPE = tuple(f.name for f in dataclasses.fields(Recipe) if f.name not in RECIPE_PARAMS)


# ---------------------------------------------------------------------------------------------
# presets
# ---------------------------------------------------------------------------------------------
@dataclass
class Preset:
    slug: str
    title: str
    about: str
    text: str


def presets() -> dict[str, Preset]:
    """Presets in assets/presets/*.toml; '# title:' and '# about:' comment lines name them."""
    out = {}
    for p in sorted(Path(os.environ.get("RESIDUE_PRESETS_DIR", PRESETS_DIR)).glob("*.toml")):
        text = p.read_text(encoding="utf-8")
        title = re.search(r"^# title:\s*(.+)$", text, re.M)
        about = re.search(r"^# about:\s*(.+)$", text, re.M)
        out[p.stem] = Preset(p.stem, title.group(1).strip() if title else p.stem.replace("_", " "),
                             about.group(1).strip() if about else "", text)
    if DEFAULT_PRESET in out:  # the default first
        out = {DEFAULT_PRESET: out.pop(DEFAULT_PRESET), **out}
    return out


# ---------------------------------------------------------------------------------------------
# state <-> config
# ---------------------------------------------------------------------------------------------
def _option_params(fn, skip=("self", "input_shape", "n_classes", "data")) -> list[inspect.Parameter]:
    return [p for p in inspect.signature(fn).parameters.values()
            if p.name not in skip and p.kind is p.POSITIONAL_OR_KEYWORD]


def _to_text(v: Any) -> Any:
    """Lists/tuples are edited as comma-separated text."""
    if isinstance(v, (list, tuple)):
        return ", ".join(str(x) for x in v)
    return v


def load_into_state(cfg: ExperimentConfig) -> None:
    """Write a config into the form's widget keys (used by presets, config upload, first visit)."""
    ss = st.session_state
    for k in [k for k in ss if isinstance(k, str) and k.startswith(("f.", "pick."))]:
        del ss[k]
    d = cfg.data
    ss["f.dataset"] = d.name
    for p in _option_params(datasets.get(d.name)):
        value = d.options.get(p.name, p.default)
        if p.name == "path":
            value = value or ""
        value = _to_text(value) if value not in (inspect.Parameter.empty, None) else ""
        ss[f"f.dopt.{d.name}.{p.name}"] = str(value) if p.default is None else value  # a text field: limit = 40
    ss["f.test_fraction"] = float(d.test_fraction)
    ss["f.shadow_fraction"] = float(d.shadow_fraction)
    ss["f.model"] = cfg.model.name
    for p in _option_params(models.get(cfg.model.name).__init__):
        ss[f"f.mopt.{cfg.model.name}.{p.name}"] = _to_text(cfg.model.params.get(p.name, p.default))
    for f in dataclasses.fields(Recipe):
        ss[f"f.recipe.{f.name}"] = getattr(cfg.recipe, f.name)
    ss["f.recipe.name"] = recipe_name(cfg.recipe)
    fs = d.forget
    ss["f.forget.kind"] = fs.kind
    ss["f.forget.classes"] = [int(c) for c in fs.classes]
    ss["f.forget.by"] = "fraction" if fs.fraction is not None and fs.count is None else "count"
    ss["f.forget.count"] = int(fs.count) if fs.count is not None else 50
    ss["f.forget.fraction"] = float(fs.fraction) if fs.fraction is not None else 0.1
    ss["f.forget.indices"] = ", ".join(str(i) for i in fs.indices)
    ss["f.method_names"] = {m.key: m.name for m in cfg.methods}
    ss["f.methods"] = [m.key for m in cfg.methods]
    for m in cfg.methods:
        hp = methods.get(m.name)(**m.params).hp
        for k, v in hp.items():
            ss[f"f.m.{m.key}.{k}"] = v
    ss["f.seed"] = int(cfg.seed)


def _ensure(key: str, default: Any) -> None:
    if key not in st.session_state:
        st.session_state[key] = default


def _keep_values() -> None:
    """Write every form value back as plain session state before any widget is drawn. Streamlit forgets the
    value of a widget it does not draw, and a closed section (`ui.section`) draws none of its widgets."""
    ss = st.session_state
    for k in [k for k in ss if isinstance(k, str) and k.startswith("f.") and k not in BUTTONS]:
        ss[k] = ss[k]


def _parse_value(text: Any, default: Any, name: str) -> Any:
    """Turn a text field back into the type of its declared default (lists of ints, numbers...). An option whose
    default is None (a folder, a limit, per-channel statistics) is None when empty, else a number, a list of
    numbers (comma-separated) or the text itself."""
    if default is None:
        text = str(text or "").strip()
        if not text:
            return None
        try:
            numbers = [float(x) for x in text.replace(";", ",").split(",") if x.strip()]
        except ValueError:
            return text
        if "," in text or ";" in text:
            return numbers
        return int(numbers[0]) if numbers[0] == int(numbers[0]) and "." not in text else numbers[0]
    if isinstance(default, (list, tuple)):
        try:
            return [int(x) for x in str(text).replace(";", ",").split(",") if x.strip()]
        except ValueError:
            raise ResidueError(f"{name}: write whole numbers separated by commas, got '{text}'.") from None
    return text


# ---------------------------------------------------------------------------------------------
# widgets
# ---------------------------------------------------------------------------------------------
def param_widget(p: Param, key: str, label: str | None = None, draw: bool = True) -> Any:
    """One widget for one declared hyperparameter; its range and help come from the declaration.
    `draw=False` (a closed section): no widget, the value it holds."""
    label = label or p.name
    _ensure(key, p.default)
    if not draw:
        return st.session_state[key]
    rng = f" (range {p.low:g} to {p.high:g})" if p.low is not None and p.high is not None else ""
    helptext = (p.help or p.name) + rng
    if p.choices is not None:
        return st.selectbox(label, list(p.choices), key=key, help=helptext)
    if isinstance(p.default, bool):
        return st.checkbox(label, key=key, help=helptext)
    if isinstance(p.default, int):
        return st.number_input(label, key=key, step=1, help=helptext,
                               min_value=int(p.low) if p.low is not None else None,
                               max_value=int(p.high) if p.high is not None else None)
    if isinstance(p.default, float):
        small = p.log or (p.default != 0 and abs(p.default) < 1e-2)
        step = abs(p.default) / 10 if small and p.default else (0.01 if (p.high or 1) <= 1 else 0.1)
        return st.number_input(label, key=key, help=helptext, step=step, format="%.2e" if small else "%.3f",
                               min_value=float(p.low) if p.low is not None else None,
                               max_value=float(p.high) if p.high is not None else None)
    return st.text_input(label, key=key, help=helptext)


def param_widgets(params, prefix: str, n_cols: int = 3) -> dict:
    """Widgets for declared engine parameters (an attack's or a method's), in columns; name -> value."""
    cols = st.columns(n_cols)
    out = {}
    for i, p in enumerate(params):
        with cols[i % n_cols]:
            out[p.name] = param_widget(p, f"{prefix}.{p.name}")
    return out


def _signature_widgets(fn, prefix: str, skip=("self", "input_shape", "n_classes", "data", "path")) -> dict:
    """Widgets for a loader's or model's keyword options, typed by their defaults."""
    out = {}
    for p in _option_params(fn, skip):
        key = f"{prefix}.{p.name}"
        default = "" if p.default is inspect.Parameter.empty else p.default
        if isinstance(default, (list, tuple)):
            _ensure(key, _to_text(default))
            out[p.name] = (st.text_input(p.name, key=key, help=f"comma-separated, e.g. {_to_text(default)}"),
                           default)  # parsed below, once every widget is drawn
        elif isinstance(default, (bool, int, float)) and not isinstance(default, str):
            label, hint = OPTION_TEXT.get(p.name, (p.name, ""))
            out[p.name] = param_widget(Param(p.name, default, help=hint), key, label)
        else:
            _ensure(key, "" if default is None else default)
            label, hint = OPTION_TEXT.get(p.name, (p.name, p.name))
            text = st.text_input(label, key=key, help=hint)
            out[p.name] = (text, None) if default is None else text
    return {k: _parse_value(*v, k) if isinstance(v, tuple) else v for k, v in out.items()}


def _builtin_dataset(name: str, options_key: str, options: dict) -> Dataset:
    """The dataset the form describes, loaded once per data directory and options. Kept as a shared resource, not
    copied on every rerun: a CIFAR-size dataset is 737 MB (nothing mutates it: splits normalise copies)."""
    return _loaded(name, options_key, str(data_root()), options)


@st.cache_resource(max_entries=4, show_spinner="Reading the data…")
def _loaded(name: str, options_key: str, root: str, _options: dict) -> Dataset:
    return load_dataset(name, **_options)


@dataclass
class Form:
    config: ExperimentConfig | None = None
    error: str | None = None
    dataset: Dataset | None = None  # an uploaded dataset (this session only)
    data_label: str = ""
    data_fp: str | None = None
    checkpoint: tuple[dict, str] | None = None
    loaded: Dataset | None = None  # the dataset the form describes (for class names and the picker)


def _dataset_section(form: Form) -> tuple[str, dict, Dataset | None]:
    """Dataset choice and options; returns (name, config options, loaded dataset or None)."""
    names = datasets.names()
    _ensure("f.dataset", "digits")
    name = st.selectbox("Dataset", names, key="f.dataset",
                        help="digits: 1,797 8x8 images; moons/blobs: 2-D points you can see; "
                             "npz/csv: upload your own; idx: MNIST-format files in a folder; cifar10/cifar100 "
                             "(binary version), mnist/fashion_mnist/kmnist (IDX) and image_folder (a folder per "
                             "class): images read from the data directory, never downloaded.")
    doc = (datasets.get(name).__doc__ or "").strip().splitlines()
    if doc:
        st.caption(" ".join(line.strip() for line in doc[:3] if line.strip()))
    opts = _signature_widgets(datasets.get(name), f"f.dopt.{name}")
    ds: Dataset | None = None
    if name in UPLOADS:
        up = st.file_uploader(f"Upload .{name} (max {MAX_UPLOAD_MB} MB)", type=[name], key=f"up.data.{name}",
                              max_upload_size=MAX_UPLOAD_MB,
                              help="Parsed, never unpickled. npz: arrays X and y. csv: header row, a label "
                                   "column, numeric features.")
        path_key = f"f.dopt.{name}.path"
        _ensure(path_key, "")
        path = st.text_input("…or a file path inside the data directory", key=path_key,
                             help=f"relative to the data directory, {data_root()} (set by $RESIDUE_DATA)")
        if up is not None:
            raw = up.getvalue()
            fp = bytes_fingerprint(raw)
            cached = st.session_state.get("upload_ds")
            if cached is None or cached[0] != (fp, tuple(sorted(opts.items()))):
                try:
                    ds = load_dataset(name, data=raw, **opts)
                except ResidueError as e:
                    st.session_state.pop("upload_ds", None)
                    raise ResidueError(f"Upload '{up.name}': {e}") from None
                st.session_state["upload_ds"] = ((fp, tuple(sorted(opts.items()))), ds)
            ds = st.session_state["upload_ds"][1]
            form.dataset, form.data_fp = ds, fp
            form.data_label = f"uploaded {up.name} (sha256 {fp})"
            opts["path"] = up.name
        elif path:
            opts["path"] = path
            ds = _builtin_dataset(name, repr(sorted(opts.items())), opts)
        else:
            raise ResidueError(f"Upload a .{name} file or give a path to one to use the {name} dataset.")
    elif name == "idx":
        if not opts.get("folder"):
            raise ResidueError("Give the folder holding the IDX files (inside the data directory).")
        ds = _builtin_dataset(name, repr(sorted(opts.items())), opts)
    else:
        ds = _builtin_dataset(name, repr(sorted(opts.items())), opts)
    return name, opts, ds


def recipe_name(recipe: Recipe) -> str:
    """The registered recipe a recipe is, or starts from (the same fields without a widget), else "default"."""
    named = {n: recipes.get(n) for n in recipes.names()}
    same = [n for n, r in named.items() if r == recipe]
    close = [n for n, r in named.items() if all(getattr(r, k) == getattr(recipe, k) for k in HIDDEN_RECIPE)]
    return (same or close or ["default"])[0]


def _apply_recipe() -> None:
    """The recipe picker's choice fills every recipe field, those with a widget and those without."""
    ss = st.session_state
    for f in dataclasses.fields(Recipe):
        ss[f"f.recipe.{f.name}"] = getattr(recipes.get(ss["f.recipe.name"]), f.name)


def _recipe_section(draw: bool) -> dict:
    """A registered recipe to start from (the `recipes` registry), then one widget per field it shares with every
    recipe; the fields without a widget (Nesterov, label smoothing, a schedule) come with it, said in a caption."""
    ss = st.session_state
    _ensure("f.recipe.name", "default")
    if draw:
        st.selectbox("Recipe", recipes.names(), key="f.recipe.name", on_change=_apply_recipe,
                     help="A registered training recipe fills every field below; change any of them after. "
                          "airbench: Jordan's (2024) fast CIFAR-10 recipe for the airbench network.")
    recipe = {k: param_widget(p, f"f.recipe.{k}", draw=draw) for k, p in RECIPE_PARAMS.items()}
    for k in HIDDEN_RECIPE:
        _ensure(f"f.recipe.{k}", getattr(Recipe(), k))
        recipe[k] = ss[f"f.recipe.{k}"]
    extra = [k for k in HIDDEN_RECIPE if recipe[k] != getattr(Recipe(), k)]
    if draw and extra:
        st.caption("Also in this recipe: " + "; ".join(f"{k} = {_to_text(recipe[k])}" for k in extra) + ".")
    return recipe


def _model_section(ds: Dataset | None) -> tuple[str, dict]:
    names = models.names()
    _ensure("f.model", "mlp")
    name = st.selectbox("Model", names, key="f.model",
                        help="mlp: fully connected layers; cnn: small convolutional net for images; resnet18 "
                             "(torchvision's, ImageNet stem), resnet18_cifar (the CIFAR stem the papers and the "
                             "Unlearning Comparator use) and vgg11_bn: torchvision's networks, whose state dicts "
                             "load as checkpoints; airbench: Jordan's (2024) fast CIFAR-10 network, meant for the "
                             "recipe of the same name.")
    params = _signature_widgets(models.get(name).__init__, f"f.mopt.{name}")
    if name in VISION_MODELS:
        st.caption(cost_note(name, params.get("width", 1.0), ds))
    return name, params


def cost_note(model: str, width: Any, ds: Dataset | None) -> str:
    """What a run of a torchvision network or airbench costs here, said before the button is pressed."""
    import torch

    gpu = torch.cuda.is_available()
    where = "this machine's GPU" if gpu else "this machine's CPU (no GPU found)"
    n = len(ds) if ds is not None else 0
    try:
        w = float(width)
    except (TypeError, ValueError):
        w = 1.0
    if model == "airbench":
        scale = (f"airbench with its recipe (Recipe: airbench) on {n:,} images: seconds per model on a GPU, minutes "
                 f"on a CPU (width {w:g}; 0.25 for a CPU classroom)")
    elif w >= 0.5:
        scale = f"a full-width {model} on {n:,} images: minutes per model on a GPU, hours on a CPU"
    else:
        scale = f"a width-{w:g} {model}: a CPU trains it on a few thousand small images in minutes"
    return (f":material/timer: Runs on {where}. Cost: {scale}; every analysis trains more models (θ_r, the "
            f"yardstick retrains, 16 shadow models for LiRA).")


def _forget_section(ds: Dataset | None) -> dict:
    _ensure("f.forget.kind", "class")
    kind = st.radio("Forget", ["class", "random", "indices"], key="f.forget.kind", horizontal=True,
                    format_func={"class": "whole class(es)", "random": "random samples",
                                 "indices": "hand-picked"}.get,
                    help="What the model must forget: every training sample of some classes, a random "
                         "share of the training set, or samples you pick.")
    spec: dict = {"kind": kind}
    if kind == "class":
        n = ds.n_classes if ds is not None else 10
        names = ds.class_names if ds is not None else [str(i) for i in range(n)]
        _ensure("f.forget.classes", [min(7, n - 1)])
        now = st.session_state["f.forget.classes"]
        valid = [c for c in now if 0 <= c < n]
        if now and not valid:  # another dataset: none of the chosen classes exist there
            valid = [min(7, n - 1)]
        st.session_state["f.forget.classes"] = valid
        spec["classes"] = st.multiselect("Classes to forget", list(range(n)), key="f.forget.classes",
                                         format_func=lambda c: names[c] if c < len(names) else str(c))
    elif kind == "random":
        _ensure("f.forget.by", "fraction")
        by = st.radio("Size by", ["fraction", "count"], key="f.forget.by", horizontal=True)
        if by == "count":
            spec["count"] = int(param_widget(Param("count", 50, 1, 200_000, "number of training samples"),
                                             "f.forget.count", "samples"))
        else:
            spec["fraction"] = float(param_widget(Param("fraction", 0.1, 0.001, 0.9, "share of the training set"),
                                                  "f.forget.fraction", "fraction of train"))
    else:
        _ensure("f.forget.indices", "")
        text = st.text_input("Dataset indices", key="f.forget.indices",
                             help="comma-separated dataset indices from the training split; or pick them below.")
        try:
            spec["indices"] = [int(x) for x in re.split(r"[,\s;]+", text) if x.strip()]
        except ValueError:
            raise ResidueError(f"Forget indices must be whole numbers separated by commas, got '{text}'.") from None
        if ds is not None and ds.kind in ("image", "2d"):
            if st.button("Pick samples…", key="f.pick", width="stretch"):
                st.session_state["pick.open"] = True
    return spec


def _methods_section() -> list[dict]:
    _ensure("f.method_names", {})
    names: dict = st.session_state["f.method_names"]
    options = list(methods.names()) + [k for k in names if k not in methods]
    _ensure("f.methods", ["finetune"])

    def title(key: str) -> str:
        cls = methods.get(names.get(key, key))
        return cls.title or key if key in methods else f"{key} ({cls.title or cls.name})"

    chosen = st.multiselect("Unlearning methods", options, key="f.methods", format_func=title,
                            help="Each becomes one unlearned model θ_u, compared with θ_o and the retrained θ_r.")
    out = []
    for key in chosen:
        name = names.get(key, key)
        cls = methods.get(name)
        with ui.section(title(key), f"open.m.{key}") as shown:
            if shown:
                st.caption(cls.summary + (" *(our reading of an unpublished detail)*" if cls.reading else ""))
                if cls.reference:
                    st.caption(f"Ref.: {cls.reference}")
            hp = {p.name: param_widget(p, f"f.m.{key}.{p.name}", draw=shown) for p in cls.params}
        out.append({"name": name, **({"label": key} if key != name else {}), **hp})
    return out


def _checkpoint_section(form: Form) -> None:
    up = st.file_uploader("Original model checkpoint (.pt)", type=["pt", "pth"], key="up.ckpt",
                          max_upload_size=MAX_UPLOAD_MB,
                          help="A state dict for the chosen model and dataset; loaded with weights_only=True "
                               "and shape-checked. It replaces training θ_o.")
    if up is None or form.config is None:
        return
    raw = up.getvalue()
    fp = bytes_fingerprint(raw)
    cached = st.session_state.get("ckpt_state")
    key = (fp, form.config.model.name, repr(form.config.model.params), form.data_fp or form.config.data.name)
    if cached is None or cached[0] != key:
        ds = form.dataset or _builtin_dataset(form.config.data.name, repr(sorted(form.config.data.options.items())),
                                              form.config.data.options)
        template = build_model(form.config.model.name, ds.input_shape, ds.n_classes, **form.config.model.params)
        try:
            st.session_state["ckpt_state"] = (key, state.load_checkpoint(raw, template))
        except ResidueError as e:
            st.session_state.pop("ckpt_state", None)
            raise ResidueError(f"Checkpoint '{up.name}': {e}") from None
    form.checkpoint = (st.session_state["ckpt_state"][1], fp)
    form.data_label = (form.data_label or form.config.data.name) + f"; θ_o from checkpoint {up.name} (sha256 {fp})"


# ---------------------------------------------------------------------------------------------
# the form
# ---------------------------------------------------------------------------------------------
def _apply_preset() -> None:
    p = presets().get(st.session_state.get("preset_pick"))
    if p is not None:
        load_into_state(loads(p.text))
        st.session_state["preset"] = p.slug


def _apply_uploaded_config() -> None:
    up = st.session_state.get("cfg_upload")
    if up is None:
        return
    try:
        cfg = loads(up.getvalue().decode("utf-8", errors="replace"))
    except ResidueError as e:
        st.session_state["cfg_error"] = f"Config '{up.name}' refused: {e}"
        return
    load_into_state(cfg)
    st.session_state.pop("cfg_error", None)
    st.session_state["preset"] = None


def init_session() -> None:
    """First script run of a session: load the default preset into the form."""
    if "preset" not in st.session_state:
        ps = presets()
        slug = DEFAULT_PRESET if DEFAULT_PRESET in ps else next(iter(ps))
        load_into_state(loads(ps[slug].text))
        st.session_state["preset"] = slug
        st.session_state["preset_pick"] = slug


def _own_data() -> str | None:
    """The user's own data the form reads, named (an upload, or a file or folder in the data directory), or None.
    Read from session state, so the sidebar can say it above the widgets that hold it."""
    ss = st.session_state
    name = ss.get("f.dataset")
    up = ss.get(f"up.data.{name}") if name in UPLOADS else None
    if up is not None:
        return f"Uploaded data in use: **{up.name}**"
    where = (ss.get(f"f.dopt.{name}.path") if name in UPLOADS
             else ss.get(f"f.dopt.{name}.folder") or DEFAULT_FOLDERS.get(name)
             if name == "idx" or name in IMAGE_DATA else None)
    return f"Your data in use: **{where}** ({name}, from the data directory)" if where else None


def render() -> Form:
    """Draw the form in the current container (the sidebar) and return what it describes."""
    init_session()
    _keep_values()
    form = Form()
    ps = presets()
    own = _own_data()
    if own is not None:  # no preset describes an experiment on the user's own data: the box claims none
        st.session_state["preset_pick"] = None
    st.selectbox("Preset", list(ps), key="preset_pick", format_func=lambda s: ps[s].title, placeholder="Your own data",
                 on_change=_apply_preset, help="Ready-made experiments for the classroom; each loads every "
                                               "setting below.")
    pick = st.session_state.get("preset_pick")
    if own is not None:
        st.caption(f":material/upload_file: {own}. A preset replaces it, with every setting below.")
    elif pick in ps and ps[pick].about:
        st.caption(ps[pick].about)
    errors: list[str] = []

    def guard(fn, *args, fallback=None, **kwargs):
        """Run one section; a user error is kept for later so every other widget still renders."""
        try:
            return fn(*args, **kwargs)
        except ResidueError as e:
            errors.append(str(e))
            return fallback

    with st.expander("Data & model", expanded=False):
        name, opts, ds = guard(_dataset_section, form,
                               fallback=(st.session_state.get("f.dataset", "digits"), {}, None))
        form.loaded = ds
        mname, mparams = guard(_model_section, ds, fallback=(st.session_state.get("f.model", "mlp"), {}))
    with ui.section("Splits & training recipe", "open.recipe") as shown:
        test_fraction = param_widget(Param("test_fraction", 0.2, 0.05, 0.5, "share held out for testing"),
                                     "f.test_fraction", draw=shown)
        shadow_fraction = param_widget(Param("shadow_fraction", 0.25, 0.0, 0.6,
                                             "share kept apart as the attacks' population pool"),
                                       "f.shadow_fraction", draw=shown)
        recipe = _recipe_section(shown)
    forget = guard(_forget_section, ds, fallback={})
    method_list = _methods_section()
    _ensure("f.seed", 0)
    seed = st.number_input("Seed", key="f.seed", step=1, min_value=-2**31, max_value=2**31 - 1,
                           help="Fixes the split, the forget set, every initialisation and data order.")
    if not errors:
        d = {"seed": int(seed),
             "data": {"name": name, "options": opts, "test_fraction": test_fraction,
                      "shadow_fraction": shadow_fraction, "forget": forget},
             "model": {"name": mname, **mparams}, "recipe": recipe, "methods": method_list}
        form.config = guard(from_dict, d)
    if form.config is not None and ds is not None:  # a model or forget set that cannot be: say so now
        c = form.config
        if (guard(build_model, c.model.name, ds.input_shape, ds.n_classes, **c.model.params) is None
                or guard(make_split, ds, c.data.forget, c.data.test_fraction, c.data.shadow_fraction, c.seed)
                is None):
            form.config = None
    with st.expander("Bring your own checkpoint", expanded=False):
        guard(_checkpoint_section, form)
    if errors:
        form.config, form.error = None, errors[0]
    form.data_label = form.data_label or name
    return form


def config_io(form: Form) -> None:
    """Download the current config; upload one to load it into the form."""
    if form.config is not None:
        st.download_button("Download config (.toml)", settings_text(form.config, form.data_label),
                           file_name=f"residue-{form.config.hash()[:8]}.toml", mime="application/toml",
                           on_click="ignore", width="stretch", icon=":material/download:")
    st.file_uploader("Load a config (.toml)", type=["toml"], key="cfg_upload", on_change=_apply_uploaded_config,
                     max_upload_size=1)
    if st.session_state.get("cfg_error"):
        st.error(st.session_state["cfg_error"])


# ---------------------------------------------------------------------------------------------
# hand-picking forget samples
# ---------------------------------------------------------------------------------------------
def _train_indices(ds: Dataset, cfg_seed: int) -> np.ndarray:
    split = make_split(ds, ForgetSpec("random", count=1), float(st.session_state.get("f.test_fraction", 0.2)),
                       float(st.session_state.get("f.shadow_fraction", 0.25)), int(cfg_seed))
    return split.train


def _use_picked() -> None:
    sel = sorted(st.session_state.get("pick.sel", set()))
    st.session_state["f.forget.indices"] = ", ".join(str(i) for i in sel)
    st.session_state["pick.open"] = False


def picker(ds: Dataset) -> None:
    """Pick forget samples by eye: a gallery for images, a clickable scatter for 2-D data."""
    import plotly.graph_objects as go

    from core.data import display_pixels

    from .figures import palette
    from .figures.samples import picture_bytes

    train = _train_indices(ds, int(st.session_state.get("f.seed", 0)))
    if "pick.sel" not in st.session_state:
        now = str(st.session_state.get("f.forget.indices", ""))
        st.session_state["pick.sel"] = {int(x) for x in re.split(r"[,\s;]+", now) if x.strip().isdigit()}
    sel: set = st.session_state["pick.sel"]
    if ds.kind == "2d":
        st.caption("Drag a lasso (or switch to box select in the toolbar) around training points to add them "
                   "to the forget set; each new selection adds to the ones before. Ringed points are chosen.")
        fig = go.Figure()
        for c in range(ds.n_classes):
            idx = train[ds.y[train] == c]
            fig.add_trace(go.Scatter(x=ds.X[idx, 0], y=ds.X[idx, 1], mode="markers", name=f"class {c}",
                                       customdata=idx, marker=dict(size=7, color=palette.class_colour(c),
                                                                   opacity=0.7),
                                       hovertemplate="sample %{customdata}<extra></extra>"))
        chosen = sorted(sel)
        if chosen:
            fig.add_trace(go.Scatter(x=ds.X[chosen, 0], y=ds.X[chosen, 1], mode="markers", name="to forget",
                                     marker=dict(size=13, color="rgba(0,0,0,0)", line=dict(width=2.5, color="#D55E00")),
                                     hoverinfo="skip"))
        palette.style(fig, height=460)
        fig.update_layout(dragmode="lasso", xaxis_title="x₁", yaxis_title="x₂")
        ev = st.plotly_chart(fig, key="pick.scatter", on_select="rerun", selection_mode=("points", "box", "lasso"))
        pts = (ev.selection or {}).get("points", []) if ev else []
        picked = {int(p["customdata"]) for p in pts if p.get("customdata") is not None}
        if picked and picked != st.session_state.get("pick.last"):
            st.session_state["pick.last"] = picked
            sel |= picked
            st.rerun(scope="fragment")
    else:
        classes = list(range(ds.n_classes))
        c = st.selectbox("Class", classes, key="pick.class", format_func=lambda k: ds.class_names[k])
        idx = train[ds.y[train] == c]
        per_page = 32
        pages = max(1, -(-len(idx) // per_page))
        page = st.number_input("Page", 1, pages, 1, key="pick.page") if pages > 1 else 1
        shown = idx[(page - 1) * per_page: page * per_page]
        cols = st.columns(8)
        pixels = display_pixels(ds, ds.X[shown])  # one pass over the data's range for the page, not one a picture
        for i, s in enumerate(shown):
            with cols[i % 8]:
                img = picture_bytes(pixels[i])  # colour as RGB, one channel as ink dark on white
                scale = max(1, 64 // max(img.shape[:2]))
                block = np.ones((scale, scale) + ((1,) if img.ndim == 3 else ()), dtype=np.uint8)
                st.image(np.kron(img, block), width=56)
                on = st.checkbox(str(int(s)), value=int(s) in sel, key=f"pick.cb.{int(s)}")
                (sel.add if on else sel.discard)(int(s))
    st.write(f"**{len(sel)}** sample(s) selected" + (f": {', '.join(map(str, sorted(sel)[:20]))}"
                                                      + ("…" if len(sel) > 20 else "") if sel else ""))
    a, b = st.columns(2)
    if a.button("Use these samples", type="primary", on_click=_use_picked, disabled=not sel, width="stretch"):
        st.rerun()
    if b.button("Clear selection", width="stretch"):
        sel.clear()
        st.session_state.pop("pick.last", None)
        st.rerun(scope="fragment")
