"""Class views: Accuracy class by class for every model, and where the unlearned model's predictions go compared with the retrained model's."""
from dashboard import ui, views

ui.header("Class views", "Accuracy class by class for every model, and where the unlearned model's predictions go compared with the retrained model's.")
run = ui.need_run()
if run is not None:
    for panel in ui.engine(lambda: views.classes(run, ui.big())) or []:
        ui.show(panel, run)
