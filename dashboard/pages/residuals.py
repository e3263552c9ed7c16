"""Residual heatmap: layer by layer, what the unlearned models still carry inside, beside θ_o and θ_r."""
import streamlit as st

from dashboard import ui, views
from dashboard.analyses import computed_trust, methods
from dashboard.figures.residuals import layer_rows

ui.header("residuals", "Layer by layer, how much of the forgotten data the unlearned model still carries "
                       "inside, next to the retrained and original models.")
run = ui.need_run()
if run is not None:
    trust = computed_trust(run)
    rep = ui.analysis(run, "residuals")
    if rep is not None:
        metrics = views.heatmap_metrics(rep)
        a, b, c = st.columns([2, 2, 1])
        ui.widget_default("res.metric", metrics, views.default_metric(run))  # class-wise and sample-wise differ
        metric = a.selectbox("Measure", metrics, key="res.metric",
                             format_func=lambda m: f"{rep.measures[m]['label']} ({rep.measures[m]['family']})",
                             help="Functional measures (decodability, patching) may decide a verdict; context "
                                  "measures (weight distance, CKA, attribution) only say where a model sits.")
        ui.widget_default("res.columns", run.model_names, run.model_names)
        columns = b.multiselect("Columns", run.model_names, key="res.columns",
                                format_func=lambda n: {"original": "θ_o", "retrain": "θ_r"}.get(n, n))
        model = c.selectbox("Method in detail", methods(run), key="res.model")
        failed = [k for k, e in (trust.entries.items() if trust is not None else ()) if k.startswith(f"{metric}@")
                  and e.family != "context" and not e.passed]
        if failed:
            st.warning(f"**This measure failed its five-seed controls at {', '.join(k.split('@')[1] for k in failed)}**: "
                       "it flagged held-out retrains or missed the model that holds D_f by construction, so those rows "
                       "are not evidence.", icon=":material/warning:")
        elif trust is None:
            t1, t2 = st.columns([3, 1])
            t1.caption("This run's controls are judged with every verdict (Overview). The five-seed controls repeat "
                       "them on four more seeds of this configuration and give each measure its hit rates: about a "
                       "minute or two on a laptop.")
            if t2.button("Run the five-seed controls", icon=":material/verified:", key="res.trust", width="stretch"):
                if ui.analysis(run, "trust") is not None:
                    st.rerun()
        panels = views.residuals(run, ui.big(), ui.getter(run), metric, columns or None, model)
        if panels:
            ui.show(panels[0], run, select=True)
            sel = ui.new_selection(panels[0].key)
            if sel and sel["points"][0].get("y") in rep.layers:
                st.session_state["res.layer"] = sel["points"][0]["y"]
            st.subheader("One layer in detail")
            layer = st.selectbox("Layer (or click a cell of the heatmap)", rep.layers, key="res.layer")
            st.dataframe(layer_rows(rep, layer, trust), hide_index=True, width="stretch")
            for panel in panels[1:]:
                ui.show(panel, run)
