from __future__ import annotations

from ..training import train
from .base import Method, register


@register
class Retrain(Method):
    """Exact unlearning: train from θ_o's initialisation on D_r alone with the original recipe.

    The gold standard every approximate method is compared with (and timed against)."""

    name = "retrain"
    title = "Retrain from scratch"
    summary = "Exact unlearning: the original recipe on the retain set only (the yardstick)."
    reference = "The definition of exact unlearning (e.g. Bourtoule et al., 2021)."
    exact = True

    def _run(self, model, task, loop):
        fresh = task.fresh_model().to(task.retain_X.device)
        train(fresh, task.retain_X, task.retain_y, task.recipe, seed=task.seed, progress=loop.progress,
              stage="retrain")
        return fresh
