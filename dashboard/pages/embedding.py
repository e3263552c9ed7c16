"""Embedding: penultimate-layer features of forget, retain and test samples under each model, one shared UMAP."""
import streamlit as st

from dashboard import ui, views
from dashboard.analyses import default, umap_ready
from dashboard.figures.embedding import point_ids

ui.header("embedding", "The penultimate-layer features of forget, retain and test samples under each model, in one "
                       "shared 2-D projection.")
run = ui.need_run()
if run is not None:
    a, b = st.columns([3, 1])
    ui.widget_default("emb.models", run.model_names, views.default_embedding_models(run))
    models = a.multiselect("Models, side by side", run.model_names, key="emb.models",
                           format_func=lambda n: {"original": "θ_o", "retrain": "θ_r"}.get(n, n))
    n_neighbors = b.select_slider("UMAP neighbours", [5, 10, 15, 30, 50],
                                  value=default("embedding", "n_neighbors"), key="emb.k",
                                  help="Smaller: local structure; larger: the global layout.")
    settings = {"n_neighbors": n_neighbors}
    if not umap_ready(run, **settings):
        st.info("UMAP is compiling its code in the background (once per installation, up to a minute on 2 cores); "
                "this view appears as soon as it is ready.", icon=":material/hourglass_top:")
        st.button("Check again", key="emb.again", icon=":material/refresh:")
    else:
        sel = ui.new_selection("embedding")
        if sel:
            forget = set(run.results.forget_indices)  # a lasso also catches retain and test points: not followed
            picked = [i for i in point_ids(views.embedding(run, False, ui.getter(run), models or None,
                                                           ui.followed_sample(run), **settings)[0].fig, sel)
                      if i in forget]
            if picked:
                ui.follow(picked[0])
        sid = ui.followed_sample(run)
        for panel in views.embedding(run, ui.big(), ui.getter(run), models or None, sid, **settings):
            ui.show(panel, run, select=True)
        st.subheader("The followed sample")
        st.caption("Click a forget-set point (large, outlined) to follow that sample in every view, or take the lasso "
                   "from the figure's toolbar and circle a group: its first forget sample is followed.")
        ui.sample_card(run, "embedding")
