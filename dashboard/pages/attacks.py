"""Attacks: what an attacker can tell from the models, as ROC curves, AUC and the privacy score."""
import streamlit as st

from dashboard import analyses, form, ui, views
from dashboard.analyses import RUN_EVERYTHING_ATTACKS, attack_title, not_applicable

ui.header("attacks",
          "What an attacker can tell: membership-inference and unlearning attacks as ROC curves (linear and "
          "log-log), with AUC and true-positive rate at low false-positive rates, for every model.")
run = ui.need_run()
if run is not None:
    from core.attacks import attacks as registry

    names = registry.names()
    # What was last applied lives here, not in the widgets: the settings form (a widget per hyperparameter of
    # every attack, heavy for the browser) is drawn only while it is open, and Streamlit forgets the state of
    # widgets it does not draw.
    applied = st.session_state.setdefault(
        "atk.applied", {"chosen": [n for n in RUN_EVERYTHING_ATTACKS if n in names], "hp": {}})
    if st.toggle("Choose attacks and their settings", key="atk.edit",
                 help="Each attack runs against every model: θ_o, θ_r and each unlearned model."):
        st.session_state.setdefault("atk.chosen", applied["chosen"])
        for name, values in applied["hp"].items():
            for k, v in values.items():
                st.session_state.setdefault(f"atk.{name}.{k}", v)
        with st.form("atk.form"):
            chosen = st.multiselect("Attacks", names, key="atk.chosen", format_func=attack_title,
                                    help="Those not computed by Run everything run when you apply.")
            tabs = st.tabs([attack_title(n) for n in names])
            hp = {}
            for name, tab in zip(names, tabs):
                cls = registry.get(name)
                with tab:
                    st.caption(cls.summary + (" **(our reading** of a step the paper leaves open.)" if cls.reading
                                              else ""))
                    if cls.reference:
                        st.caption(f"Ref.: {cls.reference}")
                    hp[name] = form.param_widgets(cls.params, f"atk.{name}")
            if st.form_submit_button("Apply", type="primary", icon=":material/play_arrow:"):
                applied.update(chosen=list(chosen), hp=hp)

    def get(name, **settings):
        return ui.analysis(run, name, **settings)

    # an attack this run cannot support (class-wise ReA on sample-wise forgetting) is a fact, not a failure
    inapplicable = {n: why for n in applied["chosen"] if (why := not_applicable(run, n)) is not None}
    for name, why in inapplicable.items():
        st.caption(f":material/block: **{attack_title(name)}** (`{name}`) — not applicable: {why}.")
    chosen = [n for n in applied["chosen"] if n not in inapplicable]
    results = views.attack_results(run, get, chosen, {n: applied["hp"].get(n, {}) for n in chosen})
    if results:
        labels_all = list(dict.fromkeys(r.attack for r in results))
        default = views.default_roc_labels(labels_all)
        c1, c2 = st.columns([3, 1])
        ui.widget_default("atk.labels", labels_all, default)
        labels = c1.multiselect("Curves to draw", labels_all, key="atk.labels",
                                help="Attack results shown in the ROC figure (each for every model).")
        axes = c2.segmented_control("ROC axes", ["linear", "log-log"], default=views.setting("attacks", "scale"),
                                    key="atk.scale",
                                    help="Log-log axes show the low false-positive regime that decides privacy.")
        if any(r.reading for r in results):
            st.caption(":material/info: Some attacks follow **our reading** of a step their paper leaves open; "
                       "each attack's notes are under its settings above.")
        st.dataframe([{
            "attack": r.attack, "model": r.target, "AUC": roc.auc, "TPR @ 1% FPR": roc.tpr_at_1pct,
            "TPR @ 0.1% FPR": roc.tpr_at_01pct, "best accuracy": roc.accuracy,
            "members": roc.n_pos, "non-members": roc.n_neg,
            "note": f"MIA-efficacy {r.extra['efficacy']:.3f}" if "efficacy" in r.extra else "",
        } for r, roc in ((r, r.roc()) for r in results)], hide_index=True, width="stretch", column_config={
            k: st.column_config.NumberColumn(format="%.3f")
            for k in ("AUC", "TPR @ 1% FPR", "TPR @ 0.1% FPR", "best accuracy")})
        for panel in views.attacks(run, ui.big(), labels=labels or None, results=results,
                                   scale="log" if axes == "log-log" else "linear"):
            ui.show(panel, run)

        st.subheader("Score distributions")
        a, b = st.columns(2)
        which = a.selectbox("Attack result", labels_all, key="atk.hist.attack")
        model = b.selectbox("Model", run.model_names, key="atk.hist.model")
        for panel in views.score_histogram(run, ui.big(), results, which, model):
            ui.show(panel, run)
    elif not any(analyses.pending(run, f"attack:{n}") for n in chosen):
        st.info(f"Choose at least one attack {'that applies to this run ' if inapplicable else ''}above.")
    st.subheader("One sample, every attack")
    ui.sample_card(run, "attacks")
