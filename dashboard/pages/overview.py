"""Overview & verdict: what every model looks like from the outside, and the verdict per method."""
import streamlit as st

from dashboard import ui, views
from dashboard.analyses import computed_trust
from dashboard.figures import overview as figs
from dashboard.figures.residuals import evidence_rows, verdict_rows

ui.header("Overview & verdict",
          "Is the data really gone? First, what the models look like from the outside: accuracy on the forget, "
          "retain and test data, distance to the retrained model, and cost.")
run = ui.need_run()
if run is not None:
    r = run.results
    s = r.split
    st.caption(f"Data: {run.data_label} · train {s['train']} · forget {s['forget']} · retain {s['retain']} · "
               f"test {s['test']} · shadow pool {s['shadow']} · device {r.device} · seed {run.seed} · "
               f"config {run.config.hash()[:10]} · {run.seconds:.1f} s")
    for note in r.notes:
        st.warning(note)
    for m in r.models:
        if m.status != "ok":
            st.warning(f"**{m.name}**: {m.message or m.status}")
    st.subheader("Verdict")
    trust = computed_trust(run)
    with_trust = trust is not None and st.toggle(
        "Let the trust AUCs silence weak measures", key="ov.trust",
        help="Computed on the Residual heatmap page: a functional measure whose trust AUC is weak no longer decides.")
    verdict = ui.analysis(run, "verdict", with_trust=with_trust)
    if verdict is not None:
        ui.verdict_badges(run, verdict)
        st.dataframe(verdict_rows(verdict), hide_index=True, width="stretch")
        st.caption("Clean: outputs and functional residuals within the spread of retrains with other seeds. "
                   "Pseudo-converged: outputs within it, residuals beyond it. Under-unlearned: outputs outside it. "
                   "Weight distance and CKA never decide (they only say where a model sits).")
        measures = list(verdict.spreads)
        measure = st.selectbox("Yardstick of one measure", measures, key="ov.measure",
                               index=measures.index(views.default_yardstick(verdict)) if measures else 0,
                               format_func=lambda m: next((e.label for x in verdict.verdicts.values()
                                                           for e in x.evidence if e.measure == m), m))
        for panel in views.verdict(run, ui.big(), ui.getter(run), [measure], with_trust=with_trust):
            ui.show(panel, run)
        with ui.section("Every measure of every model against the retrain spread", "ov.every") as shown:
            for name, x in verdict.verdicts.items() if shown else ():
                st.markdown(f"**{name}** — {x.label}: {' '.join(x.reasons)}")
                st.dataframe(evidence_rows(x), hide_index=True, width="stretch", key=f"ov.ev.{name}")
    st.subheader("From the outside")
    st.dataframe(figs.metrics_rows(r), hide_index=True, width="stretch", placeholder="—", column_config={
        "forget acc": st.column_config.NumberColumn(format="percent"),
        "retain acc": st.column_config.NumberColumn(format="percent"),
        "test acc": st.column_config.NumberColumn(format="percent"),
        "UA (1 − forget)": st.column_config.NumberColumn(format="percent"),
        "seconds": st.column_config.NumberColumn(format="%.2f"),
        "× retrain": st.column_config.NumberColumn(format="%.3f", help=(
            "Wall time as a share of retraining θ_r from scratch. — for θ_o: it is trained, not unlearned, so it has "
            "no unlearning cost to compare.")),
        "KL to θ_r": st.column_config.NumberColumn(format="%.4f"),
        "JS to θ_r": st.column_config.NumberColumn(format="%.4f"),
    })
    for panel in views.overview(run, ui.big()):
        ui.show(panel, run)
