"""Residue dashboard: `streamlit run dashboard/app.py` (or `make run`).

The sidebar holds the experiment form and the one "Run everything" button; each page is one view of
the finished run. Data flows one way: form -> config -> engine (in a background job) -> Run -> pages.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `streamlit run` puts dashboard/ on the path, not the repository root
    sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402

st.set_page_config(page_title="Residue — what unlearning leaves behind", page_icon=str(ROOT / "assets" / "icon.svg"),
                   layout="wide", initial_sidebar_state="expanded")

from dashboard import form, state, ui  # noqa: E402
from dashboard.figures import curves as curve_figs  # noqa: E402

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
    st.toggle("Presentation mode (large fonts)", key="big", help="For a projector: bigger text and figures.")
    run_area = st.container()
    f = form.render()
    st.divider()
    form.config_io(f)

ui.apply_css()

bar = None
with run_area:
    j = state.job()
    key = (state.run_key(f.config, f.data_fp, f.checkpoint[1] if f.checkpoint else None)
           if f.config is not None else None)
    st.session_state["form_key"] = key
    if f.error:
        st.error(f.error)
    if j is None:
        clicked = st.button("Run everything", type="primary", icon=":material/play_arrow:", width="stretch",
                            disabled=f.config is None, key="run",
                            help="Train θ_o and θ_r (or take them from the cache), unlearn with every chosen "
                                 "method, then compute every view.")
        autorun = ("autorun_done" not in st.session_state and f.config is not None
                   and os.environ.get("RESIDUE_AUTORUN", "1") != "0")
        st.session_state["autorun_done"] = True
        if clicked or autorun:
            j = state.start(f.config, dataset=f.dataset, data_label=f.data_label, data_fp=f.data_fp,
                            checkpoint=f.checkpoint)
    if j is not None:
        bar = st.empty()
        frac, text = j.status()
        bar.progress(frac, text=text)
        st.button("Stop", icon=":material/stop:", on_click=j.cancel, width="stretch", key="stop",
                  help="Stop after the current step; nothing half-done is kept.")
    err = state.last_error()
    if err and j is None:
        st.error(err)

if st.session_state.get("pick.open") and f.loaded is not None:
    @st.dialog("Pick samples to forget", width="large",
               on_dismiss=lambda: st.session_state.update({"pick.open": False}))
    def _pick():
        form.picker(f.loaded)

    _pick()

nav.run()


def _live(job: state.Job) -> None:
    slot = st.session_state.get("_live")
    if slot is not None and job.curves:
        with slot.container():
            st.plotly_chart(curve_figs.unlearning_curves(dict(job.curves), ui.big()), width="stretch",
                               key=f"live.{sum(len(v) for v in job.curves.values())}.{id(job)}",
                               config=ui.PLOTLY_CONFIG)


if state.job() is not None and bar is not None:
    state.wait(bar, live=_live)
