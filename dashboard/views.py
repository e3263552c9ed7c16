"""Each view as a list of Panels (figure + title + two-sentence caption), built from a Run.

Pages draw these panels with their widgets around them; the story walks through them; the report
collects them with default settings. So a figure is defined once and looks the same everywhere.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import plotly.graph_objects as go


VIEWS = [("overview", "Overview & verdict"), ("curves", "Unlearning curves"), ("classes", "Class views"),
         ("residuals", "Residual heatmap"), ("landscape", "Loss landscape"),
         ("neighbourhood", "Perturbation neighbourhood"), ("attacks", "Attacks"),
         ("relearning", "Reminiscence (relearning)"), ("embedding", "Embedding")]


@dataclass
class Panel:
    key: str  # stable id (widget keys, export file names)
    title: str
    caption: str  # two sentences: what you see, and how to read it
    fig: go.Figure
    section: str = ""  # the view it belongs to (report headings)


def overview(run, big: bool = False) -> list[Panel]:
    from .figures import overview as f

    r = run.results
    return [
        Panel("overview-accuracy", "Accuracy on forget, retain and test data",
              "Each group of bars is one part of the data, each colour one model: the original θ_o, the "
              "retrained θ_r (the gold standard that never saw the forget set) and every unlearning method. "
              "A method that looks forgotten has its forget-set bar as low as θ_r's while keeping retain and "
              "test accuracy — the other views check whether that is only skin-deep.",
              f.accuracy_bars(r, big), "Overview"),
        Panel("overview-distance", "How far each model's outputs are from the retrained model's",
              "Bars show the mean divergence of each model's predicted probabilities on the forget set from "
              "θ_r's (KL solid, Jensen-Shannon hatched). Near zero means the model answers like the retrained "
              "one from the outside — the first half of pseudo-convergence.",
              f.distance_bars(r, big), "Overview"),
        Panel("overview-time", "Time, against retraining from scratch",
              "Each bar is the wall time to obtain that model, labelled with its ratio to retraining θ_r on the "
              "same machine (log scale). Unlearning is worth it only well below 1×; models taken from the disk "
              "cache show the time of their first run.",
              f.time_bars(r, big), "Overview"),
    ]


def curves(run_or_hist: Any, big: bool = False, smooth: int = 1) -> list[Panel]:
    from .figures import curves as f

    hist = run_or_hist if isinstance(run_or_hist, dict) else f.histories(run_or_hist.results)
    return [Panel("curves", "Objective and forget / retain losses, step by step",
                  "The top panel is the objective each method minimises at every optimisation step; the bottom "
                  "one shows the terms it logs — loss on the retain set (solid) and on the forget set "
                  "(dashed), or the distillation terms of SCRUB. Methods without training steps (SSD) show a "
                  "single point; a curve that shoots up and stops is a divergence the engine caught.",
                  f.unlearning_curves(hist, big, smooth), "Unlearning curves")]


def _engine_panels(run, name: str, **settings) -> list[Panel]:
    """Placeholder until the view's engine and figure functions land: raises EngineMissing."""
    from . import state

    state.analysis(run, name, **settings)
    return []


def classes(run, big: bool = False, **settings) -> list[Panel]:
    return _engine_panels(run, "classes", **settings)


def residuals(run, big: bool = False, **settings) -> list[Panel]:
    return _engine_panels(run, "residuals", **settings)


def landscape(run, big: bool = False, **settings) -> list[Panel]:
    return _engine_panels(run, "landscape", **settings)


def neighbourhood(run, big: bool = False, **settings) -> list[Panel]:
    return _engine_panels(run, "neighbourhood", **settings)


def attacks(run, big: bool = False, **settings) -> list[Panel]:
    return _engine_panels(run, "attacks", **settings)


def relearning(run, big: bool = False, **settings) -> list[Panel]:
    return _engine_panels(run, "relearning", **settings)


def embedding(run, big: bool = False, **settings) -> list[Panel]:
    return _engine_panels(run, "embedding", **settings)
