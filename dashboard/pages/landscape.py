"""Loss landscape: the loss along θ_o → θ_u → θ_r and on the plane through the three."""
import streamlit as st

from dashboard import ui, views
from dashboard.analyses import default, methods
from dashboard.figures.landscape import WHICH, barrier_rows

ui.header("landscape", "The loss on the forget and retain data along the path original → unlearned → retrained "
                       "and on the plane through the three: does the unlearned model sit in the retrained "
                       "model's valley or still in the original's?")
run = ui.need_run()
if run is not None and methods(run):
    a, b, c = st.columns(3)
    model = a.selectbox("Unlearned model θ_u", methods(run), key="land.model",
                        help="Run everything computes the first; another one is computed when you pick it.")
    which = b.selectbox("Surface", list(WHICH), list(WHICH).index(views.setting("landscape", "which")),
                         format_func=WHICH.get, key="land.which")
    n_grid = c.select_slider("Grid points per axis", [11, 21, 31, 41], value=default("landscape", "n_grid"),
                             key="land.grid")
    d, e, f = st.columns(3)
    log = d.toggle("Log scale (losses)", value=views.setting("landscape", "log"), key="land.log")
    surface = e.toggle("3-D surface", value=views.setting("landscape", "surface"), key="land.surface")
    rand = f.toggle("Random plane around θ_u", value=default("landscape", "random_plane"), key="land.random",
                    help="Two filter-normalised random directions (Li et al. 2018): one more grid to evaluate.")
    panels = views.landscape(run, ui.big(), ui.getter(run), model, which, log, surface, n_grid=n_grid,
                             random_plane=rand)
    if panels:
        ui.show(panels[0], run)
        land = ui.analysis(run, "landscape", model=model, n_grid=n_grid, random_plane=rand).by_model[model]
        st.caption("Barrier heights: the highest the loss climbs above the straight line between the two ends "
                   "(0 = the two models share a valley).")
        st.dataframe(barrier_rows(land.curve), hide_index=True, width="stretch", column_config={
            k: st.column_config.NumberColumn(format="%.3f") for k in ("forget-loss barrier", "retain-loss barrier")})
        for panel in panels[1:]:
            ui.show(panel, run)
        for note in land.plane.notes:
            st.caption(f":material/info: {note}")
