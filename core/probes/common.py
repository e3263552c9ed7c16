"""What every residual probe shares: the data it looks at and the per-layer activations.

Probes address layers by the model's `layer_names` (`Classifier.blocks`), so a heatmap row, a hook
and a patched layer mean the same thing for the MLP and the CNN. Activations are read by running
the blocks one after another (no hooks needed), which also gives activation patching for free.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ResidueError

Pair = tuple[torch.Tensor, torch.Tensor]


@dataclass
class ProbeData:
    """The sets a probe reads. `heldout` (test + shadow pool) never trained any model: linear probes
    are fitted there and evaluated on D_f. `retain_sample` is a fixed, class-stratified sample of D_r
    for the costlier probes (landscape grids, embeddings)."""

    forget: Pair
    retain: Pair
    test: Pair
    heldout: Pair
    retain_sample: Pair
    n_classes: int
    forget_classes: list[int]
    forget_ids: np.ndarray | None = None  # dataset indices, to follow one sample across views
    retain_sample_ids: np.ndarray | None = None
    test_ids: np.ndarray | None = None
    train: Pair | None = None

    @classmethod
    def from_split(cls, split, retain_sample: int = 512, seed: int = 0) -> "ProbeData":
        """Build from a `core.data.Split`; the retain sample is drawn with `seed`, per class."""
        rng = np.random.default_rng(seed)
        ret = np.asarray(split.retain)
        if len(ret) > retain_sample:
            y = split.dataset.y[ret]
            take = []
            for c in np.unique(y):
                idx = ret[y == c]
                k = max(1, int(round(retain_sample * len(idx) / len(ret))))
                take.append(rng.choice(idx, size=min(k, len(idx)), replace=False))
            sample = np.sort(np.concatenate(take))
        else:
            sample = ret
        held = np.sort(np.concatenate([split.test, split.shadow]))
        if len(np.unique(split.dataset.y[held])) < 2:
            held = np.sort(np.concatenate([held, ret]))
        return cls(
            forget=split.tensors("forget"), retain=split.tensors("retain"), test=split.tensors("test"),
            heldout=split.tensors(held), retain_sample=split.tensors(sample),
            n_classes=int(split.dataset.n_classes), forget_classes=list(split.forget_classes),
            forget_ids=np.asarray(split.forget), retain_sample_ids=sample, test_ids=np.asarray(split.test),
            train=split.tensors("train"),
        )

    @classmethod
    def from_experiment(cls, exp, retain_sample: int = 512) -> "ProbeData":
        return cls.from_split(exp.prepare(), retain_sample, exp.config.seed)


def check_classifier(model: nn.Module) -> None:
    if not hasattr(model, "blocks") or not hasattr(model, "layer_names"):
        raise ResidueError("Residual probes need a Residue model (a Classifier with named blocks).")


@torch.no_grad()
def layer_outputs(model: nn.Module, X: torch.Tensor, batch_size: int = 4096) -> dict[str, torch.Tensor]:
    """Output of every named block on X (in order; the last is the logits), batched over rows."""
    check_classifier(model)
    model.eval()
    outs: dict[str, list[torch.Tensor]] = {n: [] for n in model.layer_names}
    for i in range(0, len(X), batch_size):
        h = X[i:i + batch_size]
        for name, block in model.blocks.items():
            h = block(h)
            outs[name].append(h)
    return {n: torch.cat(v) if v else torch.empty(0) for n, v in outs.items()}


@torch.no_grad()
def run_from(model: nn.Module, layer: str, h: torch.Tensor) -> torch.Tensor:
    """Logits of `model` when layer `layer`'s output is replaced by `h` (the blocks after it run as usual)."""
    names = model.layer_names
    if layer not in names:
        raise ResidueError(f"Unknown layer '{layer}'; the model has {names}.")
    for name in names[names.index(layer) + 1:]:
        h = model.blocks[name](h)
    return h


def true_logprob(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-sample log-probability of the true label."""
    return F.log_softmax(logits.double(), dim=-1).gather(1, y.view(-1, 1)).squeeze(1)


def layer_params(model: nn.Module) -> dict[str, list[torch.Tensor]]:
    """The parameters of each named block (weights and biases)."""
    check_classifier(model)
    return {n: [p.detach() for p in model.blocks[n].parameters()] for n in model.layer_names}


def finite(x: float) -> float | None:
    x = float(x)
    return x if np.isfinite(x) else None
