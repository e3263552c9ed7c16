"""Residual heatmap: Layer by layer, how much of the forgotten data the unlearned model still carries inside, next to the retrained and original models."""
from dashboard import ui, views

ui.header("Residual heatmap", "Layer by layer, how much of the forgotten data the unlearned model still carries inside, next to the retrained and original models.")
run = ui.need_run()
if run is not None:
    for panel in ui.engine(lambda: views.residuals(run, ui.big())) or []:
        ui.show(panel, run)
