"""Reminiscence (relearning): Fine-tune briefly on a few forgotten images: knowledge that comes back much faster than for data never seen was never really gone."""
from dashboard import ui, views

ui.header("Reminiscence (relearning)", "Fine-tune briefly on a few forgotten images: knowledge that comes back much faster than for data never seen was never really gone.")
run = ui.need_run()
if run is not None:
    for panel in ui.engine(lambda: views.relearning(run, ui.big())) or []:
        ui.show(panel, run)
