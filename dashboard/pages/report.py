"""Report & export: one self-contained HTML report, the results as JSON, the config that reproduces them."""
import streamlit as st

from dashboard import report, ui
from dashboard.views import in_report, view_status

ui.header("report",
          "Everything in one file for stakeholders: the verdict, the numbers and every figure (interactive, "
          "works offline), with the settings and seed that reproduce it.")
run = ui.need_run()
if run is not None:
    name = f"residue-report-{run.config.hash()[:8]}-seed{run.seed}"
    c1, c2, c3 = st.columns(3)
    with c1:
        if st.button("Build the HTML report", type="primary", icon=":material/description:", key="report.build",
                     width="stretch"):
            with ui.computing("the report"):
                st.session_state["report.html"] = (run.key, report.build(run))
        built = st.session_state.get("report.html")
        if built and built[0] == run.key:
            st.download_button("Download report (.html)", built[1], file_name=f"{name}.html", mime="text/html",
                               on_click="ignore", icon=":material/download:", key="report.dl", width="stretch")
            st.caption(f"{len(built[1]) / 2**20:.1f} MB, plotly.js included once; opens offline.")
    c2.download_button("Results (.json)", run.results.to_json, file_name=f"{name}.json",
                       mime="application/json", on_click="ignore", icon=":material/data_object:", key="report.json",
                       width="stretch")
    c3.download_button("Config (.toml)", run.toml, file_name=f"{name}.toml", mime="application/toml",
                       on_click="ignore", icon=":material/settings:", key="report.toml", width="stretch")
    st.subheader("Settings that reproduce this run")
    st.caption("Load this file in the sidebar (\"Load a config\") or run `python -m core run --config it.toml`: "
               "same seed, same split, same models.")
    st.code(run.toml, language="toml")
    st.subheader("What the report holds")
    st.markdown("The verdict, the table of numbers, then every view below with its figures and captions:")
    for view in in_report():
        waits = view_status(view.name)
        st.markdown(f"- {':material/schedule:' if waits else ':material/check:'} {view.title}"
                    + (f" — *waits for {waits}, not in this checkout yet*" if waits else ""))
