"""Shared page furniture: headers, the "no run yet" guard, figure display with caption and export,
and the one place that turns engine errors into readable messages."""
from __future__ import annotations

import html
import re
from contextlib import contextmanager
from typing import Any, Callable, TypeVar

import streamlit as st

from core.errors import ResidueError

from . import analyses, state
from .views import REGISTRY, Panel

T = TypeVar("T")

PLOTLY_CONFIG = {"displaylogo": False, "modeBarButtonsToRemove": ["select2d", "lasso2d"],
                 "toImageButtonOptions": {"format": "png", "scale": 2}}


def big() -> bool:
    """Presentation mode: large fonts for a projector."""
    return bool(st.session_state.get("big", False))


def md_inline(text: str) -> str:
    """Plain text with **bold** as safe inline HTML (for text set inside our own styled paragraphs)."""
    return re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", html.escape(text, quote=False))


def header(page: str, lead: str) -> None:
    """The page's title, as its view declares it (`views.View.title`), and its lead sentence."""
    st.title(REGISTRY[page].title)
    st.markdown(f"<p class='residue-lead'>{lead}</p>", unsafe_allow_html=True)


def need_run() -> analyses.Run | None:
    """The session's finished run, or None after saying why there is none yet."""
    run = state.current()
    j = state.job()
    if run is None:
        if j is not None:
            st.info("Running the experiment… the figures appear here as soon as it finishes "
                    "(progress in the sidebar).", icon=":material/hourglass_top:")
        elif state.evicted():
            st.info("This run was dropped from memory to make room for others. Press **Run everything**: "
                    "the models come back from the disk cache in seconds.", icon=":material/refresh:")
        elif state.last_error():
            pass  # the sidebar shows it
        else:
            st.info("Press **Run everything** in the sidebar to train the models and compute every view.",
                    icon=":material/play_arrow:")
        return None
    if j is not None and j.key == run.key:
        st.caption(":material/hourglass_top: The models are ready; the remaining views are being computed in the "
                   "background (progress in the sidebar) and appear as they finish.")
    elif j is not None:
        st.caption("A new run is in progress; this page shows the previous one until it finishes.")
    elif st.session_state.get("form_key") not in (None, run.key):
        st.caption(":material/info: The sidebar settings differ from this run's; press **Run everything** to "
                   "update the views.")
    return run


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60] or "figure"


def show(panel: Panel, run: analyses.Run, select: bool = False) -> None:
    """A figure with its two-sentence caption and export buttons carrying the run's settings.

    `select`: clicks and lasso selections rerun the page; read them with `new_selection(panel)`."""
    from . import export

    fig = panel.fig  # shared by every session (views.memoised): drawn and exported, never changed here
    if panel.title:
        st.subheader(panel.title)
    if select:  # a click selects a point; the toolbar keeps the lasso for a group
        st.plotly_chart(fig, key=f"fig.{panel.key}", width="stretch", theme=None,
                        config={**PLOTLY_CONFIG, "modeBarButtonsToRemove": ["select2d"]},
                        on_select="rerun", selection_mode=("points", "lasso"))
    else:
        st.plotly_chart(fig, key=f"fig.{panel.key}", config=PLOTLY_CONFIG, width="stretch", theme=None)
    st.markdown(f"<div class='residue-caption'><b>What you are looking at.</b> {panel.caption}</div>",
                unsafe_allow_html=True)
    name = f"residue-{slug(panel.key)}-seed{run.seed}"
    toml, seed, title = run.toml, run.seed, panel.title or panel.key
    c1, c2, _ = st.columns([1, 1, 3])
    c1.download_button("PNG", lambda: export.to_png(fig, toml, seed, title), file_name=f"{name}.png",
                       mime="image/png", key=f"png.{panel.key}", on_click="ignore", icon=":material/image:",
                       help="The figure as a PNG; the config TOML and seed are in its metadata.")
    c2.download_button("HTML", lambda: export.to_html(fig, toml, seed, title, panel.caption),
                       file_name=f"{name}.html", mime="text/html", key=f"html.{panel.key}", on_click="ignore",
                       icon=":material/code:", help="A standalone interactive page with the settings inside.")


def fresh(key: str, value: Any) -> bool:
    """True the first time `value` is seen under `key` (then remembered). A chart or table selection stays in
    its widget state across reruns: acting on it only when it changes lets other widgets change things after."""
    sig = repr(value)
    if st.session_state.get(f"seen.{key}") == sig:
        return False
    st.session_state[f"seen.{key}"] = sig
    return True


def new_selection(key: str) -> dict | None:
    """The selection of chart `fig.<key>` if it changed since the page last acted on it, else None."""
    event = st.session_state.get(f"fig.{key}")
    sel = dict(event.get("selection") or {}) if event else {}
    points = sel.get("points") or []
    if not fresh(f"fig.{key}", [(p.get("curve_number"), p.get("point_index")) for p in points]) or not points:
        return None
    return sel


def widget_default(key: str, options: list, default: Any) -> None:
    """Give widget `key` its default through session state, the widget's one source of truth: never also as
    `default=`/`value=`, which Streamlit warns about once session state holds a value too (as it does after it drops
    a choice that a new run's options no longer hold). Until the user changes it the widget follows the default
    (which grows as a run's results arrive, and changes with the run); a choice with nothing left in `options` goes
    back to it. So the widget always shows what the page draws."""
    ss = st.session_state
    v, given = ss.get(key), ss.get(f"default.{key}")
    fits = set(v) & set(options) if isinstance(v, list) else v in options
    if (v == given or not fits) and v != default:
        ss[key] = default
    ss[f"default.{key}"] = default


def engine(fn: Callable[[], T]) -> T | None:
    """Call into the engine; a missing engine module becomes an info box, a user error a red line."""
    try:
        return fn()
    except analyses.EngineMissing as e:
        st.info(str(e), icon=":material/construction:")
    except ResidueError as e:
        st.error(str(e))
    return None


def analysis(run: analyses.Run, name: str, **settings):
    """An analysis of the run for a page: from memory, or computed now (with a spinner), or, while the
    background job is still on it, an info line; None whenever there is nothing to draw yet."""
    a = analyses.ANALYSES[name]
    defaults = analyses.is_default(run, name, settings)
    if defaults and name in run.failed:
        st.error(run.failed[name])
        return None
    if defaults and analyses.pending(run, name) and analyses.cached_analysis(run, name) is None:
        st.info(f"{a.title}: computing in the background… it appears here as soon as it is done.",
                icon=":material/hourglass_top:")
        return None
    with computing(a.title.lower()):
        return engine(lambda: analyses.analysis(run, name, **settings))


@contextmanager
def section(label: str, key: str):
    """An expander that draws its content only while it is open, and yields whether it is. Closed, its
    widgets and tables cost the browser nothing on a page switch (the sidebar's closed sections were two
    thirds of its DOM). Streamlit forgets an undrawn widget's value: keep it in session state."""
    box = st.expander(label, key=key, on_change="rerun")
    with box:
        yield bool(box.open)


@contextmanager
def computing(what: str):
    with st.spinner(f"Computing {what}…", show_time=True):
        yield


CSS = """
<style>
.residue-lead {font-size: 1.1rem; color: #3b3b3b; margin-top: -0.6rem;}
.residue-caption {font-size: 0.98rem; color: #333; background: #f6f6f2; border-left: 4px solid #0072B2;
                  padding: 0.5rem 0.8rem; margin: -0.4rem 0 0.4rem 0; border-radius: 2px;}
.residue-badge {display: inline-block; padding: 0.15rem 0.6rem; border-radius: 1rem; font-weight: 600;
                color: white; margin-right: 0.3rem;}
</style>
"""

BIG_CSS = """
<style>
[data-testid="stMain"] [data-testid="stMarkdownContainer"] p,
[data-testid="stMain"] [data-testid="stMarkdownContainer"] li {font-size: 1.45rem; line-height: 1.5;}
[data-testid="stMain"] h1 {font-size: 3.4rem !important;}
[data-testid="stMain"] h2 {font-size: 2.6rem !important;}
[data-testid="stMain"] h3 {font-size: 2rem !important;}
[data-testid="stMain"] [data-testid="stMetricValue"], [data-testid="stMain"] [data-testid="stMetricValue"] p {font-size: 3.2rem !important; line-height: 1.2;}
[data-testid="stMain"] [data-testid="stMetricLabel"] p {font-size: 1.3rem !important;}
[data-testid="stMain"] button p {font-size: 1.3rem;}
.residue-lead {font-size: 1.6rem !important;} .residue-caption {font-size: 1.4rem !important;}
</style>
"""


def apply_css() -> None:
    st.html(CSS + (BIG_CSS if big() else ""))


def getter(run: analyses.Run) -> Callable:
    """The `get` that views take on a page: cached results, a spinner, or an info line while pending."""
    return lambda name, **settings: analysis(run, name, **settings)


def verdict_badges(run: analyses.Run, v=None, controls: bool = True) -> None:
    """One badge per model — clean, pseudo-converged, under- or over-unlearned (", still decodable") — naming the
    measure that decided it, its value and its band; then this run's controls, so a reader sees the rule pass
    them. A θ_o that learned nothing gets a warning and no badge at all."""
    from .figures import palette
    from .figures.residuals import VERDICT_COLOURS, measure_label

    v = v if v is not None else analysis(run, "verdict")
    if v is None:
        return
    if v.warning:
        st.warning(v.warning, icon=":material/warning:")
        return

    def line(name: str, x, extra: str = "") -> str:
        colour = VERDICT_COLOURS.get(x.label, "#555")
        decided = [e for e in x.evidence if e.key in x.decided_by][:2]
        why = "; ".join(f"{measure_label(v.measures, e.key)} {e.value:.3g} (retrain band {e.low:.3g}–{e.high:.3g})"
                        for e in decided) or "every output and functional measure within the retrain band"
        more = len(x.decided_by) - len(decided)
        why += f" and {more} more" if more > 0 else ""
        return (f"<div style='margin:0.25rem 0'><span class='residue-badge' style='background:{colour}'>"
                f"{html.escape(x.badge)}</span> <b>{html.escape(palette.label(name))}</b>{extra} "
                f"<span style='color:#555'>· {html.escape(why)}</span></div>")

    lines = [line(n, x) for n, x in v.verdicts.items()]
    if controls and v.controls:
        passed, total = v.controls_passed()
        lines.append(f"<div style='margin:0.7rem 0 0.2rem;font-weight:600'>This run's controls, judged with the same "
                     f"rule: {passed} of {total} passed</div>")
        for c in v.controls:
            mark = "✓" if c.passed else f"✗ expected {c.expected}"
            lines.append(line(c.name, v.control_verdicts[c.name], f" <span title='{html.escape(c.description)}'>"
                                                                   f"({html.escape(mark)})</span>"))
    st.html("".join(lines))


# ---------------------------------------------------------------------------------------------
# one forget sample followed across views: st.session_state["sample.id"] is the only place it lives
# ---------------------------------------------------------------------------------------------
SAMPLE = "sample.id"


def followed_sample(run: analyses.Run) -> int | None:
    """The followed sample of this run (the first forget sample until someone picks another)."""
    ids = run.results.forget_indices
    sid = st.session_state.get(SAMPLE)
    if sid is None or (st.session_state.get("sample.run") != run.key and sid not in ids):
        sid = int(ids[0]) if ids else None
    st.session_state[SAMPLE], st.session_state["sample.run"] = sid, run.key
    return sid


def follow(sample_id: int) -> None:
    st.session_state[SAMPLE] = int(sample_id)


def sample_picker(run: analyses.Run, where: str) -> int | None:
    """A selectbox over the forget set bound to the followed sample (every page's picker shows the same one)."""
    sid = followed_sample(run)
    if sid is None:
        return None
    ids = [int(i) for i in run.results.forget_indices]
    if sid not in ids:
        ids = [sid, *ids]
    key = f"sample.pick.{where}"
    st.session_state[key] = sid
    st.selectbox("Followed sample (dataset index)", ids, key=key, format_func=lambda i: f"#{i}",
                 on_change=lambda: follow(st.session_state[key]),
                 help="One sample followed across the views: starred in the embedding, its neighbourhood, its attack "
                      "scores and each model's prediction. Pick it here, in a table or by clicking the embedding.")
    return sid


def _thumbnail(run: state.Run, p, where: str) -> None:
    """The sample as a person sees it (colour or grey, the normalisation undone), or its first features."""
    import numpy as np

    from core.data import display_pixels

    from .figures.samples import thumbnail_figure

    ds = run.exp.prepare().dataset
    x = np.asarray(p.x, dtype=np.float32)
    if ds.kind == "image":
        st.plotly_chart(thumbnail_figure(display_pixels(ds, x.reshape(p.shape))), key=f"sample.image.{where}",
                        config={"displayModeBar": False}, width="stretch", theme=None)
    else:
        st.markdown(f"**x** = ({', '.join(f'{v:.3g}' for v in x[:6])}{', …' if len(x) > 6 else ''})")


def attack_rows(run: analyses.Run, sample_id: int) -> list[dict]:
    """Per-sample scores of the attacks already computed with default settings (nothing is computed here)."""
    import numpy as np

    rows = []
    for name in analyses.ANALYSES:
        found = analyses.cached_analysis(run, name) if name.startswith("attack:") else None
        for r in getattr(found, "results", []):
            if r.sample_ids is None:
                continue
            hit = np.flatnonzero(np.asarray(r.sample_ids) == sample_id)
            if not len(hit):
                continue
            i = int(hit[0])
            neg = np.asarray(r.scores)[np.asarray(r.labels) == 0]
            rows.append({"attack": r.attack, "model": r.target, "score": float(r.scores[i]),
                         "member (forget)": bool(r.labels[i]),
                         "above % of non-members": float((neg < r.scores[i]).mean()) if len(neg) else None})
    return rows


def sample_card(run: analyses.Run, where: str, attacks: bool = True) -> int | None:
    """The followed sample: picker, the sample itself, each model's prediction and its attack scores."""
    sid = sample_picker(run, where)
    if sid is None:
        return None
    p = analysis(run, "sample_predictions", sample_id=sid)
    if p is None:
        return sid
    a, b = st.columns([1, 4])
    with a:
        _thumbnail(run, p, where)
        st.caption(f"#{sid} · label {p.label} · {p.part}")
    with b:
        st.dataframe([{**r, "model": r["model"], "right?": "✓" if r["predicts"] == p.label else "✗"} for r in p.rows],
                     hide_index=True, width="stretch", key=f"sample.preds.{where}", column_config={
                         "p(predicted)": st.column_config.NumberColumn(format="%.3f"),
                         "p(true label)": st.column_config.NumberColumn(format="%.3f")})
    if attacks:
        rows = attack_rows(run, sid)
        if rows:
            st.caption("Per-sample attack scores (attacks computed with their default settings): the higher a "
                       "forget sample scores above the non-members, the more it gives itself away.")
            st.dataframe(rows, hide_index=True, width="stretch", key=f"sample.attacks.{where}", column_config={
                "score": st.column_config.NumberColumn(format="%.3f"),
                "above % of non-members": st.column_config.NumberColumn(format="percent")})
    return sid
