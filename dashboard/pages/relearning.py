"""Reminiscence (relearning): fine-tune briefly on a few forgotten images; knowledge that comes back much faster
than for data never seen was never really gone (class-wise ReA)."""
import streamlit as st

from dashboard import form, ui, views
from dashboard.analyses import methods

ui.header("relearning", "Fine-tune briefly on a few forgotten images: knowledge that comes back much "
                        "faster than for data never seen was never really gone.")
run = ui.need_run()
if run is not None and not run.results.forget_classes:
    st.info("The class-wise reminiscence attack re-learns a forgotten *class*; this run forgets individual samples. "
            "See the sample-wise reminiscence attack on the Attacks page.", icon=":material/info:")
elif run is not None and methods(run):
    from core.attacks import attacks as registry

    cls = registry.get("rea_class")
    model = st.selectbox("Unlearned model θ_u", methods(run), key="rea.model")
    with st.expander("Relearning settings", icon=":material/tune:"):
        st.caption(cls.summary + " The decision rule and the ROC are **our reading** of the paper (its code leaves "
                   f"them open). Ref.: {cls.reference}")
        with st.form("rea.form", border=False):
            hp = form.param_widgets(cls.params, "rea.hp")
            st.form_submit_button("Apply", type="primary", icon=":material/play_arrow:")
    panels = views.relearning(run, ui.big(), ui.getter(run), model, hp)
    if panels:
        ui.show(panels[0], run)
        r = next(r for r in ui.analysis(run, "attack:rea_class", **hp).results if r.target == model)
        st.caption("Mean steps to the threshold per learning rate (fewer = faster relearning), and the ROC of telling "
                   "the unlearned model's runs from θ_r's by relearning speed (our reading).")
        steps = r.extra["mean_steps"]
        st.dataframe([{"learning rate": f"{float(lr):.3g}", f"{model} (θ_u)": steps["target"][lr], "θ_r (never saw it)":
                       steps["reference"][lr]} for lr in steps["target"]], hide_index=True, width="stretch")
        a, b = st.columns(2)
        a.metric("AUC (our reading)", f"{r.roc().auc:.2f}", help="0.5: relearning speed does not tell them apart")
        b.metric("Mean area under the relearning curve", f"{r.extra['mean_area']['target']:.2f}",
                 delta=f"{r.extra['mean_area']['target'] - r.extra['mean_area']['reference']:+.2f} vs θ_r",
                 delta_color="inverse")
        for panel in panels[1:]:
            ui.show(panel, run)
