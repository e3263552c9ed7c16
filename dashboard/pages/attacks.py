"""Attacks: What an attacker can tell: membership-inference and unlearning-leak attacks as ROC curves, with AUC and true-positive rate at low false-positive rates."""
from dashboard import ui, views

ui.header("Attacks", "What an attacker can tell: membership-inference and unlearning-leak attacks as ROC curves, with AUC and true-positive rate at low false-positive rates.")
run = ui.need_run()
if run is not None:
    for panel in ui.engine(lambda: views.attacks(run, ui.big())) or []:
        ui.show(panel, run)
