"""The analyses as the dashboard's views and pages see them: `core.analysis` (the registry, the memo on the run,
the result cache) and its standard analyses, plus what the session knows about them (the background job may
still be computing one).

Layer: views -> analyses -> state. Importing this module registers the standard analyses (`core.analysis.standard`);
the app imports it explicitly at start.
"""
from __future__ import annotations

from typing import Any

import core.analysis.standard  # noqa: F401  (registers the analyses "Run everything" runs)
from core.analysis import (ANALYSES, EngineMissing, Run, analysis, available, cached_analysis, is_default, methods,
                           resolved)
from core.analysis.standard import (RUN_EVERYTHING_ATTACKS, attack_title, computed_trust, not_applicable,
                                    protocol_text, theta_o_learned, umap_ready, warm_up_umap)

__all__ = ["ANALYSES", "EngineMissing", "Run", "analysis", "available", "cached_analysis", "is_default", "methods",
           "resolved", "RUN_EVERYTHING_ATTACKS", "attack_title", "computed_trust", "not_applicable", "protocol_text",
           "theta_o_learned", "umap_ready", "warm_up_umap", "default", "pending"]


def default(name: str, setting: str) -> Any:
    """The default of one setting of an analysis, declared once at its registration (pages and warm-up read it)."""
    return ANALYSES[name].defaults[setting]


def pending(run: Run, name: str) -> bool:
    """True while the session's job is still to compute analysis `name` (default settings) for `run`."""
    from . import state  # here, not at import: the report (and the command line) need no Streamlit session

    j = state.job()
    return j is not None and j.running and j.key == run.key and name in j.pending
