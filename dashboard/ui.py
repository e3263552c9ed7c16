"""Shared page furniture: headers, the "no run yet" guard, figure display with caption and export,
and the one place that turns engine errors into readable messages."""
from __future__ import annotations

import re
from contextlib import contextmanager
from typing import Callable, TypeVar

import streamlit as st

from core.errors import ResidueError

from . import state
from .views import Panel

T = TypeVar("T")

PLOTLY_CONFIG = {"displaylogo": False, "modeBarButtonsToRemove": ["select2d", "lasso2d"],
                 "toImageButtonOptions": {"format": "png", "scale": 2}}


def big() -> bool:
    """Presentation mode: large fonts for a projector."""
    return bool(st.session_state.get("big", False))


def header(title: str, lead: str) -> None:
    st.title(title)
    st.markdown(f"<p class='residue-lead'>{lead}</p>", unsafe_allow_html=True)


def need_run() -> state.Run | None:
    """The session's finished run, or None after saying why there is none yet."""
    run = state.current()
    j = state.job()
    if run is None:
        if j is not None:
            st.info("Running the experiment… the figures appear here as soon as it finishes "
                    "(progress in the sidebar).", icon=":material/hourglass_top:")
        elif state.evicted():
            st.info("This run was dropped from memory to make room for others. Press **Run everything**: "
                    "the models come back from the disk cache in seconds.", icon=":material/refresh:")
        elif state.last_error():
            pass  # the sidebar shows it
        else:
            st.info("Press **Run everything** in the sidebar to train the models and compute every view.",
                    icon=":material/play_arrow:")
        return None
    if j is not None:
        st.caption("A new run is in progress; this page shows the previous one until it finishes.")
    elif st.session_state.get("form_key") not in (None, run.key):
        st.caption(":material/info: The sidebar settings differ from this run's; press **Run everything** to "
                   "update the views.")
    return run


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60] or "figure"


def show(panel: Panel, run: state.Run) -> None:
    """A figure with its two-sentence caption and export buttons carrying the run's settings."""
    from . import export

    fig = panel.fig
    if big():
        fig.update_layout(font=dict(size=20), title_font=dict(size=24), legend_font=dict(size=18))
    if panel.title:
        st.subheader(panel.title)
    st.plotly_chart(fig, key=f"fig.{panel.key}", config=PLOTLY_CONFIG, width="stretch", theme=None)
    st.markdown(f"<div class='residue-caption'><b>What you are looking at.</b> {panel.caption}</div>",
                unsafe_allow_html=True)
    name = f"residue-{slug(panel.key)}-seed{run.seed}"
    toml, seed, title = run.toml, run.seed, panel.title or panel.key
    c1, c2, _ = st.columns([1, 1, 3])
    c1.download_button("PNG", lambda: export.to_png(fig, toml, seed, title), file_name=f"{name}.png",
                       mime="image/png", key=f"png.{panel.key}", on_click="ignore", icon=":material/image:",
                       help="The figure as a PNG; the config TOML and seed are in its metadata.")
    c2.download_button("HTML", lambda: export.to_html(fig, toml, seed, title, panel.caption),
                       file_name=f"{name}.html", mime="text/html", key=f"html.{panel.key}", on_click="ignore",
                       icon=":material/code:", help="A standalone interactive page with the settings inside.")


def engine(fn: Callable[[], T]) -> T | None:
    """Call into the engine; a missing engine module becomes an info box, a user error a red line."""
    try:
        return fn()
    except state.EngineMissing as e:
        st.info(str(e), icon=":material/construction:")
    except ResidueError as e:
        st.error(str(e))
    return None


@contextmanager
def computing(what: str):
    with st.spinner(f"Computing {what}…", show_time=True):
        yield


CSS = """
<style>
.residue-lead {font-size: 1.1rem; color: #3b3b3b; margin-top: -0.6rem;}
.residue-caption {font-size: 0.98rem; color: #333; background: #f6f6f2; border-left: 4px solid #0072B2;
                  padding: 0.5rem 0.8rem; margin: -0.4rem 0 0.4rem 0; border-radius: 2px;}
.residue-badge {display: inline-block; padding: 0.15rem 0.6rem; border-radius: 1rem; font-weight: 600;
                color: white; margin-right: 0.3rem;}
</style>
"""

BIG_CSS = """
<style>
[data-testid="stMain"] [data-testid="stMarkdownContainer"] p,
[data-testid="stMain"] [data-testid="stMarkdownContainer"] li {font-size: 1.45rem; line-height: 1.5;}
[data-testid="stMain"] h1 {font-size: 3.4rem !important;}
[data-testid="stMain"] h2 {font-size: 2.6rem !important;}
[data-testid="stMain"] h3 {font-size: 2rem !important;}
[data-testid="stMain"] [data-testid="stMetricValue"], [data-testid="stMain"] [data-testid="stMetricValue"] p {font-size: 3.2rem !important; line-height: 1.2;}
[data-testid="stMain"] [data-testid="stMetricLabel"] p {font-size: 1.3rem !important;}
[data-testid="stMain"] button p {font-size: 1.3rem;}
.residue-lead {font-size: 1.6rem !important;} .residue-caption {font-size: 1.4rem !important;}
</style>
"""


def apply_css() -> None:
    st.html(CSS + (BIG_CSS if big() else ""))


VERDICT_COLOURS = {"clean": "#009E73", "pseudo-converged": "#D55E00", "under-unlearned": "#882255"}


def verdict_badges(run: state.Run) -> None:
    """One badge per method: clean / pseudo-converged / under-unlearned (from core.verdict)."""
    engine(lambda: state.analysis(run, "verdict"))
