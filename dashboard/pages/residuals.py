"""Residual heatmap: layer by layer, what the unlearned models still carry inside, beside θ_o and θ_r."""
import streamlit as st

from dashboard import ui, views
from dashboard.analyses import computed_trust, methods
from dashboard.figures.residuals import METRIC_LABELS, layer_rows

ui.header("Residual heatmap", "Layer by layer, how much of the forgotten data the unlearned model still carries "
                              "inside, next to the retrained and original models.")
run = ui.need_run()
if run is not None:
    trust = computed_trust(run)

    def label(m: str) -> str:
        if trust is None:
            return METRIC_LABELS[m]
        t = trust.for_heatmap(m)
        return f"{METRIC_LABELS[m]} · trust AUC {t['auc']:.2f} ({t['strength']})"

    a, b, c = st.columns([2, 2, 1])
    metric = a.selectbox("Measure", list(METRIC_LABELS), format_func=label, key="res.metric",
                         index=list(METRIC_LABELS).index(views.DEFAULT_METRIC),
                         help="Linear-probe accuracy and activation patching are functional measures; weight distance "
                              "and CKA only say where a model sits.")
    ui.widget_default("res.columns", run.model_names, run.model_names)
    columns = b.multiselect("Columns", run.model_names, key="res.columns",
                            format_func=lambda n: {"original": "θ_o", "retrain": "θ_r"}.get(n, n))
    model = c.selectbox("Method in detail", methods(run), key="res.model")
    if trust is not None and trust.for_heatmap(metric)["strength"] == "weak":
        st.warning(f"**Weak measure.** Over {len(trust.seeds)} seeds, {METRIC_LABELS[metric]} separates models that "
                   f"hold the forget set from retrains with AUC {trust.for_heatmap(metric)['auc']:.2f} only (0.5 is a "
                   "coin): do not read this heatmap as evidence.", icon=":material/warning:")
    elif trust is None:
        t1, t2 = st.columns([3, 1])
        t1.caption("Each measure's trust AUC (how well it tells models that hold D_f from retrains, over 5 seeds) is "
                   "not computed yet: it trains 15 extra models, about a minute on a laptop.")
        if t2.button("Compute trust AUCs", icon=":material/verified:", key="res.trust", width="stretch"):
            if ui.analysis(run, "trust") is not None:
                st.rerun()
    panels = views.residuals(run, ui.big(), ui.getter(run), metric, columns or None, model)
    if panels:
        ui.show(panels[0], run, select=True)
        rep = ui.analysis(run, "residuals")
        sel = ui.new_selection(panels[0].key)
        if sel and sel["points"][0].get("y") in rep.layers:
            st.session_state["res.layer"] = sel["points"][0]["y"]
        st.subheader("One layer in detail")
        layer = st.selectbox("Layer (or click a cell of the heatmap)", rep.layers, key="res.layer")
        st.dataframe(layer_rows(rep, layer, trust), hide_index=True, width="stretch")
        for panel in panels[1:]:
            ui.show(panel, run)
