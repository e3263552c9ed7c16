"""Loss landscape: The loss on the forget and retain data along the path original → unlearned → retrained and on the plane through the three: does the unlearned model sit in the retrained model's valley or still in the original's?"""
from dashboard import ui, views

ui.header("Loss landscape", "The loss on the forget and retain data along the path original → unlearned → retrained and on the plane through the three: does the unlearned model sit in the retrained model's valley or still in the original's?")
run = ui.need_run()
if run is not None:
    for panel in ui.engine(lambda: views.landscape(run, ui.big())) or []:
        ui.show(panel, run)
