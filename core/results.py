"""Results of one experiment: plain dataclasses that round-trip through JSON."""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any


@dataclass
class ModelReport:
    """One model's output-level measurements, always read beside original and retrained."""

    name: str
    role: str  # "original" | "retrained" | "unlearned"
    method: str
    params: dict[str, Any] = field(default_factory=dict)
    forget_acc: float = float("nan")
    retain_acc: float = float("nan")
    test_acc: float = float("nan")
    forget_loss: float = float("nan")
    seconds: float = 0.0
    ratio_to_retrain: float | None = None
    kl_to_retrain: float | None = None  # mean KL(p_retrain || p_model) on D_f
    js_to_retrain: float | None = None
    status: str = "ok"
    message: str = ""
    cached: bool = False
    history: list[dict[str, float]] = field(default_factory=list)

    @property
    def unlearning_accuracy(self) -> float:
        """UA = 1 - forget accuracy."""
        return 1.0 - self.forget_acc


@dataclass
class Results:
    config: dict[str, Any]
    config_hash: str
    split: dict[str, int]
    forget_indices: list[int]
    forget_classes: list[int]
    models: list[ModelReport]
    device: str = "cpu"
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # e.g. a θ_o no better than the majority class
    sections: dict[str, Any] = field(default_factory=dict)  # attacks, residuals, verdict... (JSON-able)
    analyses: dict[str, Any] = field(default_factory=dict)  # `core.analysis`: folder format, what failed

    def model(self, name: str) -> ModelReport:
        for m in self.models:
            if m.name == name:
                return m
        raise KeyError(name)

    @property
    def unlearned(self) -> list[ModelReport]:
        return [m for m in self.models if m.role == "unlearned"]

    def table(self) -> list[dict[str, Any]]:
        """One row per model, the numbers a person reads first."""
        return [{
            "model": m.name, "role": m.role, "forget acc": m.forget_acc, "retain acc": m.retain_acc,
            "test acc": m.test_acc, "UA": m.unlearning_accuracy, "seconds": m.seconds,
            "x retrain": m.ratio_to_retrain, "KL to retrain": m.kl_to_retrain, "status": m.status,
        } for m in self.models]

    def to_dict(self) -> dict[str, Any]:
        return _clean(asdict(self))

    def to_json(self, path: str | Path | None = None) -> str:
        text = json.dumps(self.to_dict(), indent=2)
        if path is not None:
            Path(path).write_text(text)
        return text

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Results":
        d = dict(d)
        d["models"] = [ModelReport(**_restore(m, ModelReport)) for m in d["models"]]
        return cls(**d)

    @classmethod
    def from_json(cls, text_or_path: str | Path) -> "Results":
        text = str(text_or_path)
        if not text.lstrip().startswith("{"):
            text = Path(text_or_path).read_text()
        return cls.from_dict(json.loads(text))


def _clean(x: Any) -> Any:
    """JSON has no NaN: write None, and turn numpy scalars into Python numbers."""
    if isinstance(x, dict):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    if hasattr(x, "item") and not isinstance(x, (str, bytes)):
        try:
            x = x.item()
        except (ValueError, AttributeError):
            x = x.tolist()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def _restore(d: dict, cls) -> dict:
    floats = {f.name for f in fields(cls) if f.type in ("float",)}
    return {k: (float("nan") if v is None and k in floats else v) for k, v in d.items()}
