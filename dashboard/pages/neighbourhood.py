"""Perturbation neighbourhood: nudge each forgotten sample; does θ_u still recognise it where θ_r does not?"""
import streamlit as st

from dashboard import ui, views
from dashboard.analyses import methods
from dashboard.figures.neighbourhood import sample_rows

ui.header("neighbourhood", "Nudge each forgotten sample a little: does the unlearned model still "
                           "recognise it where the retrained model does not?")
run = ui.need_run()
if run is not None and methods(run):
    a, b = st.columns(2)
    model = a.selectbox("Unlearned model θ_u", methods(run), key="nb.model")
    norm = b.segmented_control("Norm of the perturbation", ["l2", "linf"], key="nb.norm",
                               default=views.setting("neighbourhood", "norm"),
                               format_func={"l2": "L2 ball", "linf": "L∞ box"}.get) or "l2"
    get = ui.getter(run)
    out = get("neighbourhood")
    if out is not None:
        sweep = out.by_model[model].sweep(norm)
        ui.widget_default(f"nb.radius.{norm}", views.radii_shown(sweep), views.default_radius(sweep))
        radius = st.select_slider("Radius τ for the sample view and the table", views.radii_shown(sweep),
                                  key=f"nb.radius.{norm}", format_func=lambda r: f"{r:.3g}")
        panels = views.neighbourhood(run, ui.big(), get, model, norm, ui.followed_sample(run), radius)
        for panel in panels[:2]:
            ui.show(panel, run)
        st.subheader("One sample and its neighbourhood")
        ui.sample_card(run, "neighbourhood")
        for panel in panels[2:]:
            ui.show(panel, run)
        st.subheader("Forget samples, most residual first")
        st.caption(f"Share of random copies within τ = {radius:.3g} that each model still recognises, and whether the "
                   "adversary found a recognised copy. Select a row to follow that sample in every view.")
        rows = sample_rows(sweep, sweep.radii.index(radius))
        event = st.dataframe(rows, hide_index=True, width="stretch", key="nb.table", on_select="rerun",
                             selection_mode="single-row", column_config={
                                 k: st.column_config.NumberColumn(format="percent") for k in rows[0] if "random" in k})
        picked = list(event.selection.rows) if event is not None else []
        if ui.fresh("nb.table", picked) and picked:
            ui.follow(rows[picked[0]]["sample"])
            st.rerun()
