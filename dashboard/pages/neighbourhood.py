"""Perturbation neighbourhood: Nudge each forgotten sample a little: does the unlearned model still recognise it where the retrained model does not?"""
from dashboard import ui, views

ui.header("Perturbation neighbourhood", "Nudge each forgotten sample a little: does the unlearned model still recognise it where the retrained model does not?")
run = ui.need_run()
if run is not None:
    for panel in ui.engine(lambda: views.neighbourhood(run, ui.big())) or []:
        ui.show(panel, run)
