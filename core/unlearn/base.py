"""The unlearning interface every method shares.

A method is a class with declared hyperparameters (`Param`: name, default, range, help; the dashboard
builds its widgets from them), no work in the constructor, and one verb:
`unlearn(model, task, progress) -> UnlearnResult`. Subclasses implement `_run(model, task, loop)`,
where `loop.step(...)` applies one optimiser step with progress, cancellation and the divergence guard.
Adding a method is one file: subclass `Method` and decorate it with `@register`.
"""
from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar

import torch
from torch import nn

from ..errors import Cancelled
from ..params import Param, check_params
from ..progress import Progress, as_progress
from ..registry import Registry
from ..training import Recipe, endless_batches, make_optimizer

methods: Registry = Registry("unlearning method")


@dataclass
class UnlearnTask:
    """Everything a method may use. Tensors live on the model's device."""

    forget_X: torch.Tensor
    forget_y: torch.Tensor
    retain_X: torch.Tensor
    retain_y: torch.Tensor
    n_classes: int
    recipe: Recipe  # the recipe θ_o was trained with
    fresh_model: Callable[[], nn.Module]  # θ_o's initialisation, for methods that retrain
    seed: int = 0

    def generator(self, salt: int = 0) -> torch.Generator:
        return torch.Generator().manual_seed(int(self.seed) * 1000003 + salt)

    def batches(self, part: str, batch_size: int, salt: int = 0):
        """Endless shuffled mini-batches (X, y) of 'forget' or 'retain'."""
        X, y = (self.forget_X, self.forget_y) if part == "forget" else (self.retain_X, self.retain_y)
        for idx in endless_batches(len(y), batch_size, self.generator(salt), X.device):
            yield X[idx], y[idx]

    def steps_per_epoch(self, part: str, batch_size: int) -> int:
        n = len(self.forget_y if part == "forget" else self.retain_y)
        return max(1, -(-n // batch_size))


@dataclass
class UnlearnResult:
    model: nn.Module
    seconds: float
    status: str = "ok"  # "ok" | "diverged"
    message: str = ""
    history: list[dict[str, float]] = field(default_factory=list)  # one row per step


class Diverged(Exception):
    def __init__(self, message: str, last_good: dict[str, torch.Tensor]):
        super().__init__(message)
        self.last_good = last_good


class Loop:
    """Runs a method's optimisation steps: progress events, cancellation, and the divergence guard.

    The guard stops at a NaN/inf loss or when the weight norm grows past `max_growth` times its
    starting value; the model is then restored to its last finite state and the result is labelled.
    """

    def __init__(self, model: nn.Module, progress: Progress, stage: str, total: int, max_growth: float = 20.0):
        self.model, self.progress, self.stage, self.total = model, progress, stage, max(1, int(total))
        self.max_growth = max_growth
        self.count = 0
        self.history: list[dict[str, float]] = []
        self._norm0 = self._norm()
        self._good = self._snapshot()

    def _norm(self) -> float:
        return float(torch.sqrt(sum((p.detach().float() ** 2).sum() for p in self.model.parameters())))

    def _snapshot(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().clone() for k, v in self.model.state_dict().items()}

    def step(self, loss: torch.Tensor, optimizer: torch.optim.Optimizer | None, **metrics: float | torch.Tensor) -> None:
        """Backpropagate `loss` and step (optimizer=None: the caller already changed the weights)."""
        self.count += 1
        if not torch.isfinite(loss):
            raise Diverged(f"{self.stage}: loss became {float(loss.detach())} at step {self.count}; stopped.", self._good)
        if optimizer is not None:
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        norm = self._norm()
        if norm != norm or norm > self.max_growth * max(self._norm0, 1e-6):
            raise Diverged(
                f"{self.stage}: weights exploded (norm {norm:.3g}, {norm / max(self._norm0, 1e-6):.0f}x the start) "
                f"at step {self.count}; stopped.", self._good)
        self._good = self._snapshot()
        row = {"step": float(self.count), "loss": float(loss.detach())}
        row.update({k: float(v) for k, v in metrics.items()})
        self.history.append(row)
        self.progress(self.stage, min(self.count, self.total), self.total,
                      **{k: v for k, v in row.items() if k != "step"})

    def phase(self, stage: str, total: int) -> None:
        """Start a new named phase (e.g. a two-phase method's second phase)."""
        self.stage, self.total, self.count = stage, max(1, int(total)), 0


def fine_tune_params(epochs: int = 5, lr: float = 1e-3, forget: bool = True) -> tuple[Param, ...]:
    """The optimisation hyperparameters the fine-tuning methods share, declared once so that they mean the
    same thing (and have the same ranges) in every method's widgets. `forget`: the method also draws one
    forget batch per step."""
    per_step = " (each step also draws one forget batch)" if forget else ""
    shared = (Param("epochs", epochs, 1, 100, "passes over the retain set" + per_step),
              Param("lr", lr, 1e-6, 1e-1, "Adam learning rate", log=True),
              Param("batch_size", 128, 8, 4096, "retain mini-batch size" if forget else "mini-batch size"))
    return shared + ((Param("forget_batch_size", 32, 1, 4096, "forget mini-batch size"),) if forget else ())


@dataclass
class Schedule:
    """What a fine-tuning method iterates: its optimiser, step count and batch streams."""

    optimizer: torch.optim.Optimizer
    steps: int
    retain: Any  # endless (X, y) retain batches
    forget: Any  # endless (X, y) forget batches, or None


class Method:
    """Base class of every unlearning method (see module docstring)."""

    name: ClassVar[str] = ""
    title: ClassVar[str] = ""
    summary: ClassVar[str] = ""  # one line for the method picker
    reference: ClassVar[str] = ""
    reading: ClassVar[bool] = False  # True where the definition is our reading of an unpublished detail
    uses_forget: ClassVar[bool] = True  # False for retain-only fine-tunings
    exact: ClassVar[bool] = False  # True for retrain-from-scratch methods
    params: ClassVar[tuple[Param, ...]] = ()

    def __init__(self, **hyper: Any):
        self.hp = check_params(self.name, self.params, hyper)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.hp.items())})"

    def unlearn(self, model: nn.Module, task: UnlearnTask, progress: Progress | None = None) -> UnlearnResult:
        """Return an unlearned copy of `model` (the original is never modified)."""
        progress = as_progress(progress)
        work = copy.deepcopy(model)
        work.train()
        loop = Loop(work, progress, "unlearn", 1)
        start = time.perf_counter()
        status, message = "ok", ""
        try:
            out = self._run(work, task, loop)
            if out is not None:
                work = out
        except Diverged as d:
            work.load_state_dict(d.last_good)
            status, message = "diverged", str(d)
        except Cancelled:
            raise
        work.eval()
        return UnlearnResult(work, time.perf_counter() - start, status, message, loop.history)

    def _run(self, model: nn.Module, task: UnlearnTask, loop: Loop) -> nn.Module | None:
        raise NotImplementedError

    def _schedule(self, params, task: UnlearnTask, loop: Loop) -> Schedule:
        """Adam on `params` for `epochs` passes over the retain set, started as the loop's phase; the batch
        streams use fixed salts (retain 1, forget 2) so every method sees the same data order."""
        hp = self.hp
        steps = hp["epochs"] * task.steps_per_epoch("retain", hp["batch_size"])
        loop.phase(self.name, steps)
        forget = task.batches("forget", hp["forget_batch_size"], salt=2) if "forget_batch_size" in hp else None
        return Schedule(make_optimizer(params, "adam", hp["lr"]), steps,
                        task.batches("retain", hp["batch_size"], salt=1), forget)


def register(cls: type[Method]) -> type[Method]:
    """Class decorator: add a method to the registry under `cls.name`."""
    return methods.register(cls.name)(cls)


def get_method(name: str, **hyper: Any) -> Method:
    return methods.get(name)(**hyper)
