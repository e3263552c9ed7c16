"""Embedding: The penultimate-layer features of forget, retain and test samples under each model, in one shared 2-D projection."""
from dashboard import ui, views

ui.header("Embedding", "The penultimate-layer features of forget, retain and test samples under each model, in one shared 2-D projection.")
run = ui.need_run()
if run is not None:
    for panel in ui.engine(lambda: views.embedding(run, ui.big())) or []:
        ui.show(panel, run)
