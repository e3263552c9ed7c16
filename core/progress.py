"""One progress type for the whole engine.

Trainers, unlearning methods, attacks and probes all report through `Progress`, so the CLI bar,
the dashboard bar and the live curves read the same events, and cancellation is checked in one place.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Callable

from .errors import Cancelled


@dataclass(frozen=True)
class Event:
    stage: str
    step: int
    total: int
    metrics: dict[str, float] = field(default_factory=dict)

    @property
    def fraction(self) -> float:
        return min(1.0, self.step / self.total) if self.total else 0.0


Callback = Callable[[Event], None]


class Progress:
    """Forwards events to a callback and raises `Cancelled` once `cancel()` was called."""

    def __init__(self, callback: Callback | None = None, cancel_event: threading.Event | None = None):
        self.callback = callback
        self._cancel = cancel_event or threading.Event()

    def __call__(self, stage: str, step: int, total: int, **metrics: float) -> None:
        self.check()
        if self.callback is not None:
            self.callback(Event(stage, step, total, {k: float(v) for k, v in metrics.items()}))

    def check(self) -> None:
        if self._cancel.is_set():
            raise Cancelled("cancelled by the user")

    def cancel(self) -> None:
        self._cancel.set()

    def scoped(self, prefix: str) -> "Progress":
        """Same cancel flag, stage names prefixed (e.g. 'finetune: unlearn')."""
        parent = self

        def forward(e: Event) -> None:
            if parent.callback is not None:
                parent.callback(Event(f"{prefix}: {e.stage}", e.step, e.total, e.metrics))

        return Progress(forward, self._cancel)

    def silent(self) -> "Progress":
        """Same cancel flag, no events: for inner loops (e.g. one of many repeated runs) whose steps would
        flood a bar or a live curve."""
        return Progress(None, self._cancel)


def as_progress(progress: Progress | Callback | None) -> Progress:
    if isinstance(progress, Progress):
        return progress
    return Progress(progress)
