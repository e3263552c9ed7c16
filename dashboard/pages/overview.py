"""Overview & verdict: what every model looks like from the outside, and the verdict per method."""
import streamlit as st

from dashboard import ui, views
from dashboard.figures import overview as figs

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
    ui.verdict_badges(run)
    st.dataframe(figs.metrics_rows(r), hide_index=True, width="stretch", column_config={
        "forget acc": st.column_config.NumberColumn(format="percent"),
        "retain acc": st.column_config.NumberColumn(format="percent"),
        "test acc": st.column_config.NumberColumn(format="percent"),
        "UA (1 − forget)": st.column_config.NumberColumn(format="percent"),
        "seconds": st.column_config.NumberColumn(format="%.2f"),
        "× retrain": st.column_config.NumberColumn(format="%.3f"),
        "KL to θ_r": st.column_config.NumberColumn(format="%.4f"),
        "JS to θ_r": st.column_config.NumberColumn(format="%.4f"),
    })
    for panel in views.overview(run, ui.big()):
        ui.show(panel, run)
