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
from dashboard import report, sidebar, story, ui, views  # noqa: E402,F401  (report, story: declare their pages)
from dashboard.analyses import warm_up_umap  # noqa: E402

warm_up_umap()  # numba compiles UMAP in a background thread, so no page ever waits for it

nav = st.navigation({section: [st.Page(v.file, title=v.link, icon=v.icon, default=v.default) for v in pages]
                     for section, pages in views.sections().items()})

st.logo(str(ROOT / "assets" / "logo.svg"), size="large")
st.session_state.pop("_live", None)

with st.sidebar:
    f, bar = sidebar.render()

ui.apply_css()
sidebar.picker(f)

nav.run()


sidebar.finish(bar)  # waits on a running job, drawing its progress and live curves
