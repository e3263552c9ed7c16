"""The classroom story: five short steps over the views, one figure each, for a projector."""
import streamlit as st

from dashboard import ui, views

STEPS = [
    ("1 · It looks forgotten", "overview",
     "We trained a model on all the data (θ_o), then asked it to forget part of it. The honest way is to retrain "
     "from scratch without that part (θ_r) — slow. Unlearning methods are shortcuts. From the outside, a good "
     "shortcut looks just like θ_r: its accuracy on the forgotten data drops as low as θ_r's."),
    ("2 · But inside, it remembers", "residuals",
     "Now open the models up. Layer by layer, we ask: can the forgotten data still be read from the inside? "
     "Where the unlearned model's colour stays near the original's and far from the retrained one's, the "
     "knowledge is still there — only the last layers learned to hide it."),
    ("3 · It sits in the old valley", "landscape",
     "Training finds a valley in the loss landscape. Walk from θ_o to the unlearned model to θ_r and plot the "
     "loss on the forgotten data: the unlearned model often stays in the original's valley, on a thin ridge "
     "that hides the data — pseudo-convergence."),
    ("4 · Nudge it and it recognises", "neighbourhood",
     "Move each forgotten sample a tiny bit. The retrained model never saw it, so it is not fooled; a model that "
     "still remembers recognises the nudged copies far more often than θ_r does."),
    ("5 · An attacker can tell", "attacks",
     "Finally, play the attacker: can someone tell, from the models alone, which data was deleted? An ROC curve "
     "above the diagonal means yes. Together these steps give the verdict: clean, pseudo-converged, or "
     "under-unlearned."),
]

ui.header("What does machine unlearning leave behind?",
          "Five short steps, one picture each. Pick a preset in the sidebar (or keep the default), press "
          "<b>Run everything</b>, and walk through.")
step = st.segmented_control("Step", list(range(len(STEPS))), format_func=lambda i: STEPS[i][0], key="story.step",
                            default=0, required=True, label_visibility="collapsed")
step = 0 if step is None else int(step)
title, view, text = STEPS[step]
st.header(title)
st.markdown(f"<p class='residue-lead'>{text}</p>", unsafe_allow_html=True)
run = ui.need_run()
if run is not None:
    if step == 0:
        r = run.results
        rt = r.model("retrain")
        closest = min(r.unlearned, key=lambda m: abs(m.forget_acc - rt.forget_acc), default=None)
        if closest is not None:
            a, b, c = st.columns(3)
            a.metric("θ_r on the forget set", f"{rt.forget_acc:.0%}",
                     help="accuracy of the retrained model on the forgotten data")
            b.metric(f"{closest.name} on the forget set", f"{closest.forget_acc:.0%}",
                     delta=f"{(closest.forget_acc - rt.forget_acc) * 100:+.0f} pts vs θ_r", delta_color="off")
            c.metric(f"{closest.name}: time", f"{closest.seconds:.2f} s",
                     delta=f"{closest.ratio_to_retrain:.2f}× retrain" if closest.ratio_to_retrain else None,
                     delta_color="off")
    panels = getattr(views, view)(run, ui.big(), ui.getter(run))
    if panels:
        ui.show(panels[0], run)
    if step == len(STEPS) - 1:
        ui.verdict_badges(run)
prev, nxt, link = st.columns([1, 1, 2])
if step > 0:
    prev.button("← Previous", key="story.prev", width="stretch",
                on_click=lambda: st.session_state.update({"story.step": step - 1}))
if step < len(STEPS) - 1:
    nxt.button("Next →", key="story.next", type="primary", width="stretch",
               on_click=lambda: st.session_state.update({"story.step": step + 1}))
link.page_link(f"pages/{view}.py", label=f"Open the full view: {title.split('· ')[1]}", icon=":material/open_in_new:")
