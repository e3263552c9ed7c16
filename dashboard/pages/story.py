"""The classroom story: five short steps over the views, one figure each, told from this run's numbers."""
import streamlit as st

from dashboard import story, ui

ui.header("story",
          "Five short steps, one picture each, told from this run. Pick a preset in the sidebar (the default one runs "
          "by itself when the app opens) and walk through.")
run = ui.need_run()
steps = story.story(run, ui.big(), ui.getter(run)) if run is not None else []
titles = [s.title for s in steps] or [t for t in ("1 · It looks forgotten", "2 · But inside, it remembers",
                                                   "3 · It sits in the old valley", "4 · Nudge it and it recognises",
                                                   "5 · An attacker can tell")]
step = st.segmented_control("Step", list(range(len(titles))), format_func=lambda i: titles[i], key="story.step",
                            default=0, required=True, label_visibility="collapsed")
step = 0 if step is None else int(step)
if steps:
    s = steps[step]
    st.header(s.title)
    st.markdown(f"<p class='residue-lead'>{ui.md_inline(s.text)}</p>", unsafe_allow_html=True)
    if s.metrics:
        for col, (label, value, delta) in zip(st.columns(len(s.metrics)), s.metrics):
            col.metric(label, value, delta=delta, delta_color="off")
    if s.panel is not None:
        ui.show(s.panel, run)
    if step == len(steps) - 1:
        ui.verdict_badges(run)
prev, nxt, link = st.columns([1, 1, 2])
if step > 0:
    prev.button("← Previous", key="story.prev", width="stretch",
                on_click=lambda: st.session_state.update({"story.step": step - 1}))
if step < len(titles) - 1:
    nxt.button("Next →", key="story.next", type="primary", width="stretch",
               on_click=lambda: st.session_state.update({"story.step": step + 1}))
if steps:
    link.page_link(f"pages/{steps[step].view}.py", label=f"Open the full view: {steps[step].title.split('· ')[1]}",
                   icon=":material/open_in_new:")
