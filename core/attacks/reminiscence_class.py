"""Class-wise Reminiscence attack (ReA): does the model re-learn the forgotten class suspiciously fast?

After the official code (github.com/orthogonalunlearning-replay/OUR, `rea.py`, `mia_mu_relearning`):
a forget probe is a small random subset (official: 3%) of the forgotten class's *training* images; a fresh
copy of the model is fine-tuned on one probe image per step, each step mixed with a small retain batch
(official: 14 images), plain SGD with momentum 0.9, at several learning rates (official: 0.001-0.012); after
every step the accuracy on the whole probe is recorded. Speed = the first step at which probe accuracy
reaches 90% (capped at 75 steps), and the area under the accuracy-vs-step curve.

**(reading)** Where the official code leaves the procedure open, this is our choice:
- the probe is cycled (one image per step, in a fixed order) until the step cap, rather than stopping after
  one pass; step 0 is the model before any fine-tuning (a model that still knows the class scores 0 steps);
- the reference is the same procedure, with the same probe, retain batches and learning rate, on a model that
  never trained on the class: θ_r by default (the official code uses a class left out of training);
- decision and ROC: positives are the attacked model's runs, negatives the reference's, over probe draws x
  learning rates x forgotten classes; the score is the relearning speed (`area` under the probe-accuracy
  curve by default, or `steps` = cap - steps-to-threshold). AUC and best balanced accuracy follow.

All runs (draws x learning rates x classes x {attacked, reference}) are one stacked batch: one vectorised
gradient step (`core.batched.loss_grad_fn`) and one SGD step with a per-run learning rate per fine-tuning step.
"""
from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import torch
from torch import nn

from ..batched import BatchedOptimizer, Flat, buffers_of, forward_many, loss_grad_fn, stack
from ..cache import digest, index_fingerprint, stable_hash
from ..errors import ResidueError
from ..params import Param
from ..progress import Progress, as_progress
from .base import Attack, AttackContext, AttackResult, register
from .residual import torch_threads


def learning_rates(lr_min: float, lr_max: float, n: int) -> list[float]:
    """n learning rates, geometrically spaced from lr_min to lr_max."""
    if n == 1:
        return [float(lr_min)]
    return [float(v) for v in np.geomspace(lr_min, lr_max, n)]


@dataclass
class RelearnRun:
    model: str  # the model's name
    role: str  # "target" or "reference"
    cls: int  # the forgotten class re-learned
    draw: int  # probe draw
    lr: float
    curve: list[float]  # probe accuracy at steps 0 (before fine-tuning) .. max_steps
    steps: int  # first step with probe accuracy >= threshold, max_steps if never
    area: float  # mean probe accuracy over steps 0..max_steps (area under the curve, normalised)


@dataclass
class Relearning:
    """Every relearning run of one comparison, with the settings that made them."""

    runs: list[RelearnRun]
    threshold: float
    max_steps: int
    probe_size: dict[int, int]  # class -> probe images
    retain_batch: int
    lrs: list[float]
    draws: int
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    diverged: list[str] = field(default_factory=list)  # models with a run whose weights became non-finite

    def to_dict(self) -> dict:
        d = asdict(self)
        d["probe_size"] = {str(k): v for k, v in self.probe_size.items()}
        return d


def relearn(models: dict[str, nn.Module], template: nn.Module, split, classes: list[int], *,
            probe_fraction: float = 0.03, min_probe: int = 5, draws: int = 5, lrs: list[float] | None = None,
            retain_batch: int = 14, max_steps: int = 75, threshold: float = 0.9, momentum: float = 0.9,
            seed: int = 0, roles: dict[str, str] | None = None, progress: Progress | None = None) -> Relearning:
    """Fine-tune copies of each model on probes of each class (see module docstring), all runs at once.

    models: name -> model (same architecture as `template`); every model gets the same probes, retain batches
    and learning rates, so runs are paired across models. A model's runs depend only on its weights and these
    settings, so they are kept (in memory, per model) and shared: the relearning-speed probe of the verdict
    runs every model of a run, and this attack then finds its target and reference already done. Runs
    single-threaded (tiny operations; see `core.attacks.residual.torch_threads`)."""
    lrs = list(lrs or [0.001, 0.005, 0.012])
    settings = dict(probe_fraction=probe_fraction, min_probe=min_probe, draws=draws, lrs=lrs,
                    retain_batch=retain_batch, max_steps=max_steps, threshold=threshold, momentum=momentum,
                    seed=seed)
    context = (stable_hash(settings), tuple(int(c) for c in classes), _ids_hash(split.forget), _ids_hash(split.retain),
               _ids_hash(np.asarray(split.dataset.y)))
    keys = {n: (weights_fingerprint(m), context) for n, m in models.items()}
    with _RUNS_LOCK:
        found = {n: _RUNS[k] for n, k in keys.items() if k in _RUNS}
    todo = {n: m for n, m in models.items() if n not in found}
    start = time.perf_counter()
    if todo:
        with torch_threads(1):
            fresh = _relearn(todo, template, split, classes, progress=progress, **settings)
        for n in todo:
            found[n] = ([r for r in fresh.runs if r.model == n], fresh.probe_size,
                        fresh.notes if n in fresh.diverged else [])
        with _RUNS_LOCK:
            for n in todo:
                _RUNS[keys[n]] = found[n]
            while len(_RUNS) > _RUNS_MAX:
                _RUNS.popitem(last=False)
    roles = roles or {}
    runs, notes, probe_size, diverged = [], [], {}, []
    for n in models:
        own, probe_size, own_notes = found[n]
        runs += [replace(r, model=n, role=roles.get(n, n)) for r in own]
        notes += [x for x in own_notes if x not in notes]
        diverged += [n] if own_notes else []
    return Relearning(runs, float(threshold), int(max_steps), dict(probe_size), int(retain_batch),
                      [float(v) for v in lrs], int(draws), time.perf_counter() - start, notes, diverged)


_RUNS: "OrderedDict[tuple, tuple[list[RelearnRun], dict, list[str]]]" = OrderedDict()  # per model: its runs
_RUNS_MAX = 512
_RUNS_LOCK = threading.Lock()


def weights_fingerprint(model: nn.Module) -> str:
    """Hash of a model's parameters and buffers: equal weights, equal relearning runs."""
    return digest(*(p for k, v in model.state_dict().items() for p in (k.encode(), v.detach().cpu().numpy())),
                  length=32)


def _ids_hash(ids) -> str:
    return index_fingerprint(ids, length=16)


def _relearn(models, template, split, classes, *, probe_fraction, min_probe, draws, lrs, retain_batch, max_steps,
             threshold, momentum, seed, progress) -> Relearning:
    progress = as_progress(progress)
    start = time.perf_counter()
    y_all = split.dataset.y
    rng = np.random.default_rng([int(seed), 4242])
    retain = np.asarray(split.retain)
    if len(retain) == 0:
        raise ResidueError("Reminiscence: the retain set is empty; nothing to mix into the fine-tuning steps.")
    names = list(models)
    # probes and retain streams: one per (class, draw), shared by every model and learning rate
    probes, streams, probe_size = {}, {}, {}
    for c in classes:
        pool = np.asarray(split.forget)[y_all[split.forget] == c]
        if len(pool) == 0:
            raise ResidueError(f"Reminiscence: no training images of class {c} in the forget set.")
        k = int(min(len(pool), max(min_probe, round(probe_fraction * len(pool)))))
        probe_size[int(c)] = k
        for d in range(draws):
            probes[c, d] = rng.choice(pool, size=k, replace=False)
            need = max_steps * retain_batch
            reps = max(1, -(-need // len(retain)))
            streams[c, d] = np.concatenate([rng.permutation(retain) for _ in range(reps)])[:need].reshape(
                max_steps, retain_batch)
    kmax = max(probe_size.values())
    keys = [(n, c, d, lr) for n in names for c in classes for d in range(draws) for lr in lrs]
    M = len(keys)
    # per run: step inputs (M, T, 1 + retain_batch) and probe (M, kmax) with a validity mask for short probes
    step_idx = np.zeros((M, max_steps, 1 + retain_batch), dtype=np.int64)
    probe_idx = np.zeros((M, kmax), dtype=np.int64)
    probe_w = np.zeros((M, kmax), dtype=np.float32)
    for r, (n, c, d, lr) in enumerate(keys):
        p = probes[c, d]
        step_idx[r, :, 0] = p[np.arange(max_steps) % len(p)]
        step_idx[r, :, 1:] = streams[c, d]
        probe_idx[r, :len(p)] = p
        probe_w[r, :len(p)] = 1.0
    X_all, _ = split.tensors(np.arange(len(y_all)))
    dev = X_all.device
    y_t = torch.as_tensor(y_all, device=dev)
    # the probe is labelled with its class (for every model, the reference included)
    step_idx_t = torch.as_tensor(step_idx, device=dev)
    probe_t = torch.as_tensor(probe_idx, device=dev)
    probe_w_t = torch.as_tensor(probe_w, device=dev)
    Xp, yp = X_all[probe_t], y_t[probe_t]

    spec = Flat(template)
    by_model = stack([models[n] for n in names])
    own = torch.as_tensor([names.index(n) for n, *_ in keys], device=dev)
    flat = spec.flatten({k: v[own] for k, v in by_model.items()}).detach().clone()
    bufs = {k: v[own].clone() for k, v in buffers_of(template, by_model).items()}  # batch norm: each run's own
    opt = BatchedOptimizer(flat, "sgd", torch.as_tensor([lr for *_, lr in keys], dtype=flat.dtype),
                           momentum=momentum)
    grad = loss_grad_fn(template)
    ones = torch.ones(M, 1 + retain_batch, device=dev)

    def probe_acc() -> torch.Tensor:
        logits = forward_many(template, {**spec.views(flat), **bufs}, Xp, per_model_inputs=True)
        hit = (logits.argmax(-1) == yp).float() * probe_w_t
        return hit.sum(1) / probe_w_t.sum(1)

    curves = torch.zeros(M, max_steps + 1)
    curves[:, 0] = probe_acc().cpu()
    for t in range(max_steps):
        idx = step_idx_t[:, t]
        g, _ = grad(flat, X_all[idx], y_t[idx], ones, bufs)
        opt.step(flat, g)
        curves[:, t + 1] = probe_acc().cpu()
        if (t + 1) % 5 == 0 or t + 1 == max_steps:
            progress("reminiscence: relearning", t + 1, max_steps)
    curves_np = curves.numpy()
    notes = []
    finite = torch.isfinite(flat).all(1).cpu().numpy()
    diverged = sorted({keys[r][0] for r in range(M) if not finite[r]})
    if diverged:
        notes.append("Some relearning runs diverged (non-finite weights) at the highest learning rates; their "
                     "probe accuracy is what the diverged model predicts.")
    runs = []
    for r, (n, c, d, lr) in enumerate(keys):
        cur = curves_np[r]
        hit = np.nonzero(cur >= threshold - 1e-9)[0]
        runs.append(RelearnRun(n, n, int(c), int(d), float(lr), [float(v) for v in cur],
                               int(hit[0]) if len(hit) else int(max_steps), float(cur.mean())))
    return Relearning(runs, float(threshold), int(max_steps), probe_size, int(retain_batch), [float(v) for v in lrs],
                      int(draws), time.perf_counter() - start, notes, diverged)


def scores_of(runs: list[RelearnRun], score: str, max_steps: int) -> np.ndarray:
    """Relearning speed per run (higher = faster = more likely the class was known)."""
    if score == "area":
        return np.array([r.area for r in runs])
    if score == "steps":
        return np.array([max_steps - r.steps for r in runs], dtype=float)
    raise ResidueError(f"Unknown reminiscence score '{score}'. Known: area, steps.")


# The relearning protocol, declared once: the attack and the verdict's relearning-speed probe run the same one.
RELEARN_PARAMS = (
    Param("probe_fraction", 0.03, 0.005, 1.0, "share of the forgotten class's training images in a probe"),
    Param("min_probe", 5, 1, 200, "at least this many probe images"),
    Param("draws", 5, 1, 100, "probe draws"),
    Param("n_lrs", 3, 1, 10, "learning rates, geometrically spaced from lr_min to lr_max"),
    Param("lr_min", 0.001, 1e-5, 1.0, "smallest SGD learning rate", log=True),
    Param("lr_max", 0.012, 1e-5, 1.0, "largest SGD learning rate", log=True),
    Param("retain_batch", 14, 0, 512, "retain images mixed into each fine-tuning step"),
    Param("max_steps", 75, 1, 1000, "fine-tuning steps (cap of steps-to-threshold)"),
    Param("threshold", 0.9, 0.1, 1.0, "probe accuracy that counts as re-learned"),
    Param("momentum", 0.9, 0.0, 0.99, "SGD momentum"),
    Param("seed", 0, 0, 2**31 - 1, "attack seed (probe draws, retain batches)"),
)


def relearn_protocol(ctx_seed: int, hp: dict) -> dict:
    """The keyword arguments of `relearn` that the declared hyperparameters `hp` (RELEARN_PARAMS) ask for."""
    if hp["lr_min"] > hp["lr_max"]:
        raise ResidueError(f"relearning: lr_min ({hp['lr_min']}) is above lr_max ({hp['lr_max']}).")
    return dict(probe_fraction=hp["probe_fraction"], min_probe=hp["min_probe"], draws=hp["draws"],
                lrs=learning_rates(hp["lr_min"], hp["lr_max"], hp["n_lrs"]), retain_batch=hp["retain_batch"],
                max_steps=hp["max_steps"], threshold=hp["threshold"], momentum=hp["momentum"],
                seed=int(ctx_seed) * 7919 + hp["seed"])


@register
class ReminiscenceClass(Attack):
    """Class-wise ReA: relearning speed of the attacked model vs a never-trained reference (θ_r) on probes of
    the forgotten class. **(reading)**: the decision rule and ROC are our reading of the paper (see the
    module docstring). Needs class-wise forgetting."""

    name = "rea_class"
    title = "Reminiscence attack, class-wise (relearning speed)"
    summary = "Fine-tune on a few images of the forgotten class: residuals make it come back much faster."
    reference = "Reminiscence Attack on Residuals (2025); official code orthogonalunlearning-replay/OUR."
    reading = True
    params = RELEARN_PARAMS + (
        Param("score", "area", help="relearning speed used for the ROC: area under the probe-accuracy curve, "
                                    "or max_steps - steps-to-threshold", choices=("area", "steps")),
        Param("reference", "retrain", help="the never-trained reference model (its name in the experiment)"),
    )

    @classmethod
    def not_applicable(cls, split: Any) -> str | None:
        return None if split.forget_classes else ("needs class-wise forgetting (a whole class in the forget set); "
                                                  "this run forgets individual samples: the sample-wise reminiscence "
                                                  "attack applies instead")

    def run(self, ctx: AttackContext, target: str, progress: Progress | None = None) -> list[AttackResult]:
        hp = self.hp
        classes = list(ctx.split.forget_classes)
        if (why := self.not_applicable(ctx.split)) is not None:
            raise ResidueError(f"The class-wise reminiscence attack {why}.")
        ref = str(hp["reference"])
        for name in (target, ref):
            if name not in ctx.models:
                raise ResidueError(f"No model named '{name}' in this experiment; known: {sorted(ctx.models)}.")
        if target == ref:
            raise ResidueError(f"The reminiscence attack compares the target with a reference; both are '{ref}'. "
                               "Pick another target or reference.")
        rel = relearn({target: ctx.models[target], ref: ctx.models[ref]}, ctx.fresh_model(int(ctx.seed)), ctx.split,
                      classes, roles={target: "target", ref: "reference"}, progress=progress,
                      **relearn_protocol(ctx.seed, hp))
        runs = [r for r in rel.runs if r.role == "target"] + [r for r in rel.runs if r.role == "reference"]
        scores = scores_of(runs, hp["score"], rel.max_steps)
        labels = np.array([1 if r.role == "target" else 0 for r in runs])
        mean_steps = {role: {f"{lr:g}": float(np.mean([r.steps for r in runs if r.role == role and r.lr == lr]))
                             for lr in rel.lrs} for role in ("target", "reference")}
        extra = dict(rel.to_dict(), score=hp["score"], reference=ref, mean_steps=mean_steps,
                     mean_area={role: float(np.mean([r.area for r in runs if r.role == role]))
                                for role in ("target", "reference")})
        extra["runs"] = [asdict(r) for r in runs]  # in the order of scores and labels
        return [AttackResult(
            attack="rea_class", target=target, scores=scores, labels=labels,
            groups={"lr": np.array([r.lr for r in runs]), "class": np.array([r.cls for r in runs]),
                    "draw": np.array([r.draw for r in runs])},
            extra=extra, reading=True)]
