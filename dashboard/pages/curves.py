"""Unlearning curves: per-step objective and forget/retain terms of each method (live while a run goes)."""
import streamlit as st

from dashboard import state, ui, views

ui.header("curves",
          "How each method moved, step by step: the objective it minimises and the loss on the data it "
          "must forget and the data it must keep.")
j = state.job()
if j is not None:
    st.subheader("Live")
    st.caption("Steps of the methods of the run in progress, as they happen.")
    st.session_state["_live"] = st.empty()
run = ui.need_run()
if run is not None:
    smooth = st.slider("Smoothing (moving average over steps)", 1, 25, views.setting("curves", "smooth"),
                       key="curves.smooth")
    empty = [m.name for m in run.results.unlearned if not m.history]
    if empty:
        st.caption(f"No optimisation steps logged for: {', '.join(empty)} (taken from cache before histories "
                   "were stored, exact retraining, or a method without training).")
    for panel in views.curves(run, ui.big(), smooth):
        ui.show(panel, run)
