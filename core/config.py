"""Experiment configuration: dataclasses, strict TOML/dict loading, a stable hash.

Unknown keys and out-of-range values are refused with one line naming them, so a typo never
silently runs a different experiment.
"""
from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass, field, fields
from os import PathLike
from pathlib import Path
from typing import Any

from .cache import stable_hash
from .data.base import ForgetSpec
from .errors import ResidueError
from .params import check_fields, shown
from .training import Recipe, named_recipe

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


@dataclass
class DataConfig:
    name: str = "digits"
    options: dict[str, Any] = field(default_factory=dict)  # loader options (path, label_column, noise...)
    test_fraction: float = 0.2
    shadow_fraction: float = 0.25
    forget: ForgetSpec = field(default_factory=ForgetSpec)


@dataclass
class ModelConfig:
    name: str = "mlp"
    params: dict[str, Any] = field(default_factory=dict)  # e.g. hidden = [128, 128, 128, 128]


@dataclass
class MethodConfig:
    name: str
    params: dict[str, Any] = field(default_factory=dict)
    label: str = ""  # how the model is named in results; defaults to `name`

    @property
    def key(self) -> str:
        return self.label or self.name


@dataclass
class ExperimentConfig:
    seed: int = 0
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    recipe: Recipe = field(default_factory=Recipe)
    methods: list[MethodConfig] = field(
        default_factory=lambda: [MethodConfig("finetune"), MethodConfig("gradient_ascent")])

    def to_dict(self) -> dict[str, Any]:
        """The TOML-shaped dict: `from_dict(to_dict())` gives back an equal config."""
        d = asdict(self)
        d["recipe"] = self.recipe.to_dict()
        d["model"] = {"name": self.model.name, **self.model.params}
        d["methods"] = [{"name": m.name, **({"label": m.label} if m.label else {}), **m.params}
                        for m in self.methods]
        return d

    def hash(self) -> str:
        return stable_hash(self.to_dict())

    def validate(self) -> "ExperimentConfig":
        """Check types, names and hyperparameters against the registries (no data is loaded). Every field is
        checked, so a config built in Python is refused with the line its TOML twin would get."""
        from .data.base import check_dataset_options, check_fractions
        from .models import check_model_options
        from .unlearn import get_method

        check_fields(self)
        for part, where in ((self.data, "data"), (self.model, "model"), *((m, "methods") for m in self.methods)):
            check_fields(part, where)
        self.data.forget.validate()
        check_dataset_options(self.data.name, self.data.options)
        check_fractions(self.data.test_fraction, self.data.shadow_fraction)
        check_model_options(self.model.name, self.model.params)
        if not self.methods:
            raise ResidueError("config: choose at least one unlearning method.")
        labels = [m.key for m in self.methods]
        dup = {k for k in labels if labels.count(k) > 1}
        if dup:
            raise ResidueError(f"config: method label {sorted(dup)[0]!r} used twice; give each a distinct label.")
        for m in self.methods:
            try:
                get_method(m.name, **m.params)
            except ResidueError as e:
                raise ResidueError(f"config: method '{m.key}': {e}") from None
        if not -2**31 <= self.seed < 2**31:
            raise ResidueError(f"config: seed must be a 32-bit integer, got {self.seed}.")
        return self


def _take(d: dict, allowed: set[str], where: str) -> dict:
    if not isinstance(d, dict):
        raise ResidueError(f"config: [{where}] must be a table, got {type(d).__name__}.")
    unknown = set(d) - allowed
    if unknown:
        raise ResidueError(f"config: unknown key '{sorted(unknown)[0]}' in [{where}]; allowed: {sorted(allowed)}.")
    return d


def _names(cls) -> set[str]:
    return {f.name for f in fields(cls)}


def from_dict(d: dict[str, Any]) -> ExperimentConfig:
    """Build and validate a config from a TOML-shaped dict (types are checked by `validate`)."""
    if not isinstance(d, dict):
        raise ResidueError("config: expected a table of settings.")
    d = _take(dict(d), _names(ExperimentConfig), "top level")
    data = dict(_take(d.get("data", {}), _names(DataConfig), "data"))
    forget = dict(_take(data.pop("forget", {}), _names(ForgetSpec), "data.forget"))
    model = dict(_take(d.get("model", {}), set(d.get("model", {}) or {}) if isinstance(d.get("model", {}), dict)
                       else set(), "model"))
    name = model.pop("name", "mlp")
    recipe = dict(_take(d.get("recipe", {}), _names(Recipe) | {"name"}, "recipe"))
    base = recipe.pop("name", None)  # a registered recipe (core.training.recipes), the other keys replacing its own
    methods = d.get("methods", None)
    if methods is not None and not isinstance(methods, list):
        raise ResidueError("config: methods must be a list of tables ([[methods]] in TOML) or of names.")
    try:
        cfg = ExperimentConfig(
            seed=d.get("seed", 0),
            data=DataConfig(forget=ForgetSpec(**forget), **data),
            model=ModelConfig(name=name, params=model),
            recipe=Recipe(**recipe) if base is None else named_recipe(base, **recipe),
            **({} if methods is None else {"methods": [_method(m) for m in methods]}),
        )
    except ResidueError:
        raise
    except (TypeError, ValueError) as e:
        raise ResidueError(f"config: {e}") from None
    return cfg.validate()


def _method(m: Any) -> MethodConfig:
    if isinstance(m, str):
        return MethodConfig(m)
    if not isinstance(m, dict) or "name" not in m:
        raise ResidueError("config: each method needs a name (e.g. [[methods]] name = \"finetune\").")
    m = dict(m)
    name, label = m.pop("name"), m.pop("label", "")
    if not isinstance(name, str) or not isinstance(label, str):
        raise ResidueError(f"config: method name and label must be text, got {shown(name)}.")
    return MethodConfig(name, label=label, params=m)


MAX_CONFIG_CHARS = 1_000_000  # a config is a few hundred bytes; anything this large is not one


def loads(text: str) -> ExperimentConfig:
    if not isinstance(text, str):
        raise ResidueError(f"config: expected TOML text, got {type(text).__name__}.")
    if len(text) > MAX_CONFIG_CHARS:
        raise ResidueError(f"config: {len(text)} characters is over the {MAX_CONFIG_CHARS} limit for a config file.")
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ResidueError(f"config: not valid TOML ({e}).") from None
    except RecursionError:  # tomllib recurses once per nesting level: a few thousand '[' exhaust the stack
        raise ResidueError("config: not valid TOML (arrays or tables nested too deeply to read).") from None
    except Exception as e:  # noqa: BLE001 - whatever else the parser raises on hostile text is still one line
        raise ResidueError(f"config: the TOML parser failed on this text ({type(e).__name__}).") from None
    return from_dict(raw)


def load_config(path: str | Path) -> ExperimentConfig:
    if not isinstance(path, (str, PathLike)) or not str(path).strip():
        raise ResidueError(f"config: give the path of a TOML file, got {shown(path)}.")
    p = Path(path)
    if not p.is_file():
        raise ResidueError(f"config: file '{path}' not found.")
    if p.stat().st_size > MAX_CONFIG_CHARS:
        raise ResidueError(f"config: '{path}' is over the {MAX_CONFIG_CHARS // 1000} kB limit for a config file.")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ResidueError(f"config: '{path}' is not UTF-8 text.") from None
    except OSError as e:
        raise ResidueError(f"config: cannot read '{path}' ({e.strerror or type(e).__name__}).") from None
    return loads(text)


def dumps(cfg: ExperimentConfig) -> str:
    """Serialise to TOML (a small writer: the config only holds scalars, lists and tables)."""
    d = cfg.to_dict()
    out: list[str] = [f"seed = {_toml(d['seed'])}", ""]

    def table(name: str, t: dict) -> None:
        out.append(f"[{name}]")
        subs = []
        for k, v in t.items():
            if isinstance(v, dict):
                subs.append((k, v))
            elif v is not None:
                out.append(f"{k} = {_toml(v)}")
        out.append("")
        for k, v in subs:
            if v or k == "forget":
                table(f"{name}.{k}", v)

    table("data", d["data"])
    table("model", d["model"])
    table("recipe", d["recipe"])
    for m in d["methods"]:
        out.append("[[methods]]")
        out.extend(f"{k} = {_toml(v)}" for k, v in m.items())
        out.append("")
    return "\n".join(out)


def _toml(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):  # JSON's escapes are TOML's, bar DEL, which TOML also wants escaped
        return json.dumps(v, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml(x) for x in v) + "]"
    raise ResidueError(f"config: cannot write {type(v).__name__} value {v!r} to TOML.")
