"""The sidebar: presentation toggle, "Run everything" / Stop with the progress bar, the experiment form,
config download/upload. `render()` draws it in the current container and returns what the rest of the
script needs; `finish()` opens the sample picker if asked and waits on a running job."""
from __future__ import annotations

import os
from typing import Callable

import streamlit as st

from core.cache import run_key

from . import form, state, ui, warmup


def render() -> tuple[form.Form, object | None]:
    """Draw the sidebar; returns the form and the progress-bar slot (None when nothing runs)."""
    st.toggle("Presentation mode (large fonts)", key="big", help="For a projector: bigger text and figures.")
    run_area = st.container()
    f = form.render()
    st.divider()
    form.config_io(f)

    bar = None
    with run_area:
        j = state.job()
        st.session_state["form_key"] = (run_key(f.config, f.data_fp, f.checkpoint[1] if f.checkpoint else None)
                                        if f.config is not None else None)
        if f.error:
            st.error(f.error)
        if j is None:
            clicked = st.button("Run everything", type="primary", icon=":material/play_arrow:", width="stretch",
                                disabled=f.config is None, key="run",
                                help="Train θ_o and θ_r (or take them from the cache), unlearn with every chosen "
                                     "method, then compute every view.")
            # a fresh visitor sees a result without touching anything: the default preset runs at once
            autorun = ("autorun_done" not in st.session_state and f.config is not None
                       and os.environ.get("RESIDUE_AUTORUN", "1") != "0")
            st.session_state["autorun_done"] = True
            if clicked or autorun:
                j = state.start(f.config, dataset=f.dataset, data_label=f.data_label, data_fp=f.data_fp,
                                checkpoint=f.checkpoint, warm=warmup.warm)
        if j is not None:
            bar = st.empty()
            frac, text = j.status()
            bar.progress(frac, text=text)
            st.button("Stop", icon=":material/stop:", on_click=j.cancel, width="stretch", key="stop",
                      help="Stop after the current step; nothing half-done is kept.")
        err = state.last_error()
        if err and j is None:
            st.error(err)
    return f, bar


def picker(f: form.Form) -> None:
    """The hand-picking dialog, while the form asked for it."""
    if st.session_state.get("pick.open") and f.loaded is not None:
        @st.dialog("Pick samples to forget", width="large",
                   on_dismiss=lambda: st.session_state.update({"pick.open": False}))
        def _pick():
            form.picker(f.loaded)

        _pick()


def live_curves(job: state.Job) -> None:
    """Draw the running job's unlearning curves where the page left a slot for them."""
    from .figures.curves import unlearning_curves

    slot = st.session_state.get("_live")
    if slot is not None and job.curves:
        with slot.container():
            st.plotly_chart(unlearning_curves(dict(job.curves), ui.big()), width="stretch", config=ui.PLOTLY_CONFIG,
                            key=f"live.{sum(len(v) for v in job.curves.values())}")


def finish(bar, live: Callable[[state.Job], None] | None = live_curves) -> None:
    """Block on the session's running job (drawing progress) and rerun when it is done."""
    if state.job() is not None and bar is not None:
        state.wait(bar, live=live)
