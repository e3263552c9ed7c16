"""Analyses the dashboard runs on a finished experiment, registered with the service layer.

Each is `compute(run, progress, **settings)`; its engine modules are imported lazily, so a view whose
engine has not landed yet says what it waits for instead of failing. "Run everything" computes every
analysis here with its default settings; pages ask again with their own settings (memoised per run).
"""
from __future__ import annotations

from .state import analysis_def


# Views whose engine is still being written: declared so their pages can say what they wait for.
for _name, _title, _mods, _with in [
    ("verdict", "Verdict", ("core.verdict",), "core/verdict.py (the seed-variance yardstick)"),
    ("classes", "Class views", ("core.probes.classes",), "the class-view probe (core/probes)"),
    ("residuals", "Residual heatmap", ("core.probes.layers",), "core/probes/layers.py"),
    ("landscape", "Loss landscape", ("core.probes.landscape",), "core/probes/landscape.py"),
    ("neighbourhood", "Perturbation neighbourhood", ("core.probes.neighbourhood",),
     "the residual-knowledge probe (core/probes)"),
    ("attacks", "Attacks", ("core.attacks.mia",), "the attacks (core/attacks)"),
    ("relearning", "Reminiscence", ("core.attacks.reminiscence",), "core/attacks/reminiscence.py"),
    ("embedding", "Embedding", ("core.probes.embedding",), "core/probes/embedding.py"),
]:
    analysis_def(_name, _title, _mods, _with)(None)
