"""Overview & verdict: what every model looks like from the outside, and the verdict per method."""
import streamlit as st

from dashboard import ui, views
from dashboard.analyses import computed_trust, protocol_text
from dashboard.figures import overview as figs
from dashboard.figures.embedding import point_ids
from dashboard.figures.residuals import evidence_rows, measure_label, verdict_rows

ui.header("overview",
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
        "Let the five-seed controls silence the measures that failed them", key="ov.trust",
        help="Run on the Residual heatmap page: a measure that flagged held-out retrains, or missed the model that "
             "holds D_f by construction, no longer decides.")
    verdict = ui.analysis(run, "verdict", with_trust=with_trust)
    if verdict is not None:
        ui.verdict_badges(run, verdict)
    if verdict is not None and not verdict.warning:
        st.dataframe(verdict_rows(verdict), hide_index=True, width="stretch")
        st.caption("Clean: outputs and functional residuals within the band of retrains with other seeds. "
                   "Pseudo-converged: outputs within it, a functional residual beyond it towards θ_o. Under-unlearned: "
                   "outputs beyond it towards θ_o. Over-unlearned: outputs beyond it away from θ_o (\"still decodable\" "
                   "when residuals are beyond it too). Weight distance, CKA and attribution never decide (they only "
                   "say where a model sits).")
        keys = list(verdict.bands)
        ui.widget_default("ov.measure", keys, views.default_yardstick(verdict))  # options change with the run
        key = st.selectbox("Yardstick of one measure", keys, key="ov.measure",
                           format_func=lambda k: measure_label(verdict.measures, k))
        for panel in views.verdict(run, ui.big(), ui.getter(run), [key], with_trust=with_trust):
            ui.show(panel, run)
        with ui.section("Every measure of every model against the retrain band", "ov.every") as shown:
            judged = {**verdict.verdicts, **verdict.control_verdicts}
            for name, x in judged.items() if shown else ():
                st.markdown(f"**{name}** — {x.badge}: {' '.join(x.reasons)}")
                st.dataframe(evidence_rows(x, trust), hide_index=True, width="stretch", key=f"ov.ev.{name}")
            if shown and trust is not None:
                st.caption(f"Five-seed controls: {trust.settings.get('source', 'computed for this run')}.")
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
    st.subheader("Forgetting quality (NeurIPS 2023 competition score)")
    st.caption("F asks, for every forget example, how well an attacker who sees one model's confidence on it can tell "
               "N runs of a method from N retrains, and averages the points each example's ε earns (1 = no attacker "
               "can tell). Its ceiling grows with N — even a second pool of retrains scores well below 1 at small "
               "N — so F is compared only at equal N, against this run's own ceiling and floor.")
    if r.warnings:
        st.warning("No forgetting quality for this run: " + " ".join(r.warnings), icon=":material/warning:")
    else:
        quality = ui.analysis(run, "quality")
        if quality is not None:
            st.dataframe(quality.rows(), hide_index=True, width="stretch", key="ov.quality.table", column_config={
                "F": st.column_config.NumberColumn(format="%.3f"), "±": st.column_config.NumberColumn(format="%.3f"),
                "final": st.column_config.NumberColumn(format="%.3f"),
                "forget acc": st.column_config.NumberColumn(format="percent")})
            names = list(quality.methods)
            if names:
                ui.widget_default("ov.quality.model", names, names[0])  # options change with the run
            model = st.selectbox("Method whose forget examples are shown", names, key="ov.quality.model",
                                 help="Its ε on every forget example, beside the ceiling's and the floor's.") \
                if names else None
            sid, sel = ui.followed_sample(run), ui.new_selection("quality-examples")
            panels = views.quality(run, ui.big(), ui.getter(run), model, sid)
            picked = point_ids(panels[-1].fig, sel) if sel and panels else []
            if picked and picked[0] != sid:  # a click on an example: follow it here and in every other view
                ui.follow(picked[0])
                panels = views.quality(run, ui.big(), ui.getter(run), model, ui.followed_sample(run))
            for panel in panels:
                ui.show(panel, run, select=panel.key == "quality-examples")
            line, note = protocol_text(quality)
            st.caption(line)
            with ui.section("Protocols A and B: why a deterministic method can score 0 under A", "ov.quality.note") \
                    as opened:
                if opened:
                    st.markdown(note)
