"""The attack interface every attack shares.

An attack is a class with declared hyperparameters (`core.params.Param`) and one verb:
`run(ctx, target, progress) -> list[AttackResult]`. A result holds per-sample scores (higher = "was a
member / was deleted") and true labels, so every attack gets the same ROC treatment, the same
slicing by class or correctness, and the same figures.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from ..params import Param, check_params
from ..progress import Progress
from ..registry import Registry
from .roc import Roc, summarize

attacks: Registry = Registry("attack")


@dataclass
class AttackResult:
    attack: str  # e.g. "lira_online", "leak:sorted_diff"
    target: str  # the model name attacked (e.g. "finetune")
    scores: np.ndarray  # per sample, higher = more likely member / deleted
    labels: np.ndarray  # 1 = member / deleted, 0 = not
    sample_ids: np.ndarray | None = None  # dataset indices of the samples, where they are samples
    groups: dict[str, np.ndarray] = field(default_factory=dict)  # per-sample tags: "class", "correct"
    extra: dict[str, Any] = field(default_factory=dict)  # attack-specific numbers (JSON-able)
    reading: bool = False  # the decision rule is our reading of the paper (say so in the UI)

    def roc(self) -> Roc:
        return summarize(self.scores, self.labels)

    def sliced(self, group: str) -> dict[str, Roc]:
        """ROC per value of a tag (e.g. per class, or correct vs wrong predictions)."""
        out = {}
        tags = self.groups[group]
        for v in np.unique(tags):
            m = tags == v
            if len(np.unique(self.labels[m])) == 2:
                out[str(v)] = summarize(self.scores[m], self.labels[m])
        return out

    def to_dict(self) -> dict[str, Any]:
        roc = self.roc()
        return {"attack": self.attack, "target": self.target, "roc": roc.to_dict(),
                "scores": np.asarray(self.scores, dtype=float).tolist(),
                "labels": np.asarray(self.labels, dtype=int).tolist(),
                "sample_ids": None if self.sample_ids is None else np.asarray(self.sample_ids).tolist(),
                "groups": {k: np.asarray(v).tolist() for k, v in self.groups.items()},
                "extra": self.extra, "reading": self.reading}


@dataclass
class AttackContext:
    """What attacks may use from one experiment (built by `AttackContext.from_experiment`)."""

    split: Any  # core.data.Split
    models: dict[str, nn.Module]  # "original", "retrain", and each unlearned model by name
    fresh_model: Any  # seed -> untrained model of the experiment's architecture (same init as θ_o for seed=config.seed)
    recipe: Any  # core.training.Recipe used for θ_o
    seed: int
    methods: dict[str, tuple[str, dict]]  # unlearned model name -> (method name, hyperparameters)
    store: Any = None  # core.cache.ModelStore, for attacks that cache shadow models

    @classmethod
    def from_experiment(cls, exp) -> "AttackContext":
        return cls(split=exp.prepare(), models=dict(exp.models), fresh_model=exp.fresh_model,
                   recipe=exp.config.recipe, seed=exp.config.seed,
                   methods={m.key: (m.name, dict(m.params)) for m in exp.config.methods}, store=exp.store)

    @property
    def device(self) -> torch.device:
        return self.split.device


class Attack:
    name: ClassVar[str] = ""
    title: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    reference: ClassVar[str] = ""
    reading: ClassVar[bool] = False
    params: ClassVar[tuple[Param, ...]] = ()

    def __init__(self, **hyper: Any):
        self.hp = check_params(self.name, self.params, hyper)

    @classmethod
    def not_applicable(cls, split: Any) -> str | None:
        """Why this attack cannot run on an experiment with this split, in a few words ("needs class-wise
        forgetting"), or None when it can. A property of the run, not a failure: pages list such an attack as
        not applicable instead of running it into an error."""
        return None

    def run(self, ctx: AttackContext, target: str, progress: Progress | None = None) -> list[AttackResult]:
        raise NotImplementedError


def register(cls: type[Attack]) -> type[Attack]:
    return attacks.register(cls.name)(cls)


def get_attack(name: str, **hyper: Any) -> Attack:
    return attacks.get(name)(**hyper)
