"""Class views: class-wise accuracy of every model, and where θ_u's predictions go beside θ_r's."""
import streamlit as st

from dashboard import ui, views
from dashboard.analyses import methods

ui.header("classes", "Accuracy class by class for every model, and where the unlearned model's predictions go "
                     "compared with the retrained model's.")
run = ui.need_run()
if run is not None:
    names = methods(run)
    model = st.selectbox("Unlearned model for the prediction matrix", names, key="classes.model") if names else None
    for panel in views.classes(run, ui.big(), ui.getter(run), model):
        ui.show(panel, run)
    st.subheader("The followed sample: each model's answer")
    ui.sample_card(run, "classes", attacks=False)
