"""Residue dashboard: `streamlit run dashboard/app.py` (or `make run`).

The sidebar holds the experiment form and the one "Run everything" button; each page is one view of
the finished run. Data flows one way: form -> config -> engine (in a background job) -> Run -> pages.
"""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `streamlit run` puts dashboard/ on the path, not the repository root
    sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402

st.set_page_config(page_title="Residue — what unlearning leaves behind", page_icon=str(ROOT / "assets" / "icon.svg"),
                   layout="wide", initial_sidebar_state="expanded")

import pandas  # noqa: E402,F401  (before any thread starts: plotly imports it lazily, umap/sklearn too, and two
#                                   threads importing it at once see a half-initialised module)
import streamlit.emojis  # noqa: E402,F401  (Streamlit imports it on the first label it checks for an emoji: 0.2 s
#                                            of regex compiling, which fell on the first visit to Neighbourhood)

import core.analysis.standard  # noqa: E402,F401  (registers the analyses "Run everything" runs)
from dashboard import sidebar, ui  # noqa: E402
from dashboard.analyses import warm_up_umap  # noqa: E402

warm_up_umap()  # numba compiles UMAP in a background thread, so no page ever waits for it

PAGES = ROOT / "dashboard" / "pages"


def page(file: str, title: str, icon: str, default: bool = False) -> st.Page:
    return st.Page(PAGES / file, title=title, icon=icon, default=default)


nav = st.navigation({
    "Classroom": [page("story.py", "The story in five steps", ":material/school:", default=True)],
    "Views": [
        page("overview.py", "Overview & verdict", ":material/dashboard:"),
        page("curves.py", "Unlearning curves", ":material/show_chart:"),
        page("classes.py", "Class views", ":material/grid_view:"),
        page("residuals.py", "Residual heatmap", ":material/layers:"),
        page("landscape.py", "Loss landscape", ":material/landscape:"),
        page("neighbourhood.py", "Neighbourhood", ":material/blur_on:"),
        page("attacks.py", "Attacks", ":material/security:"),
        page("relearning.py", "Reminiscence (relearning)", ":material/history:"),
        page("embedding.py", "Embedding", ":material/scatter_plot:"),
    ],
    "Export": [page("report.py", "Report & export", ":material/description:")],
})

st.logo(str(ROOT / "assets" / "logo.svg"), size="large")
st.session_state.pop("_live", None)

with st.sidebar:
    f, bar = sidebar.render()

ui.apply_css()
sidebar.picker(f)

nav.run()


sidebar.finish(bar)  # waits on a running job, drawing its progress and live curves
