"""Forgetting-quality figures (issue 23): the NeurIPS 2023 competition's score of each method between its two
anchors, and each forget example's ε. Pure functions of `core.quality.QualityReport` (or its `to_dict()`, as
results.json holds it).

F is only comparable at equal N (its ceiling grows with the number of models per pool), so every figure names
N and the protocol in its title. Every point of the per-example figure carries its dataset index as customdata,
so a click (a Streamlit selection event, read with `embedding.point_ids`) names a sample to follow.
"""
from __future__ import annotations

import math
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from . import palette

CEILING, FLOOR = "ceiling (retrains)", "floor (θ_o's seeds)"
ANCHORS = {CEILING: ("ceiling", "retrain"), FLOOR: ("floor", "original")}  # row -> (report key, colour of)
BIN = 0.5  # the competition's ε bucket width (core.quality.score.BUCKET)
BEYOND, CAP, END = 1.0, 2.5, 3.0  # past the last bin (in bins): where the two columns of 0 points sit, and the edge
SECTION = "Forgetting quality (NeurIPS 2023 competition score)"


def _d(x: Any) -> dict:
    return x.to_dict() if hasattr(x, "to_dict") else dict(x)


def _num(x: Any) -> float | None:
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) else None


def setting(report: Any) -> str:
    """What F is comparable across: N models per pool and the protocol (said on every figure)."""
    r = _d(report)
    return f"N = {r['n']} models per pool · protocol {r['protocol']} · {len(r['forget_indices'])} forget examples"


def rows(report: Any) -> list[tuple[str, str, dict | None, str]]:
    """(label, colour name, score dict or None, note) per row: the ceiling, each method, the floor."""
    r = _d(report)
    out = [(CEILING, "retrain", r.get("ceiling"), "")]
    out += [(k, k, m.get("score"), m.get("note", "")) for k, m in r["methods"].items()]
    return out + [(FLOOR, "original", r.get("floor"), "")]


def score_figure(report: Any, big: bool = False) -> go.Figure:
    """Each method's F (left) and final score (right) with their error bars, between the ceiling (a second pool
    of retrains) and the floor (θ_o's seeds), drawn as bands across every row."""
    r = _d(report)
    fig = make_subplots(rows=1, cols=2, shared_yaxes=True, horizontal_spacing=0.06,
                        subplot_titles=["forgetting quality F", "final score (F × RA/RA_r × TA/TA_r)"])
    table = rows(r)
    labels = [palette.label(label) for label, *_ in table]
    top = 0.0
    for col, (value, err) in enumerate((("f", "f_se"), ("final", "final_se")), start=1):
        for key, who in ANCHORS.values():  # the anchors' bands: value ± error bar, behind the rows
            s = r.get(key) or {}
            v, e = _num(s.get(value)), _num(s.get(err))
            if v is not None and e:
                fig.add_vrect(x0=max(v - e, 0.0), x1=v + e, fillcolor=palette.colour(who), opacity=0.13,
                              line_width=0, row=1, col=col, exclude_empty_subplots=False)
            if v is not None:
                fig.add_vline(x=v, line=dict(color=palette.colour(who), width=1.5, dash="dot"), row=1, col=col,
                              exclude_empty_subplots=False)
        for (label, who, s, note), shown in zip(table, labels):
            s = s or {}
            v, e = _num(s.get(value)), _num(s.get(err))
            if v is None:
                fig.add_annotation(x=0, y=shown, text="not scored" + (f": {note}" if note else ""), xanchor="left",
                                   showarrow=False, font=dict(color="#777"), row=1, col=col)
                continue
            top = max(top, v + (e or 0.0))
            other_n = s.get("n") != r["n"]
            fig.add_trace(go.Scatter(
                x=[v], y=[shown], mode="markers", name=shown, legendgroup=label, showlegend=False,
                error_x=dict(type="data", array=[e or 0.0], visible=e is not None, color=palette.colour(who),
                             thickness=2.5, width=8),
                marker=dict(size=16 if big else 13, color="white" if other_n else palette.colour(who),
                            symbol="diamond" if label in ANCHORS else "circle",
                            line=dict(color=palette.colour(who) if other_n else "#222", width=2)),
                hovertemplate=(f"<b>{shown}</b><br>{'F' if value == 'f' else 'final score'} %{{x:.3f}}"
                               + (f" ± {e:.3f}" if e is not None else "") + f"<br>N = {s.get('n')}"
                               + (f"<br>{note}" if note else "") + "<extra></extra>")), row=1, col=col)
    height = (260 if big else 170) + (70 if big else 42) * len(table)
    palette.style(fig, title=setting(r), height=height, big=big, l=170, t=80)
    for title in fig.layout.annotations[:2]:  # the subplot titles (make_subplots adds them first)
        title.font.size = 20 if big else 14
    hi = max(top * 1.15, 0.05)
    fig.update_xaxes(range=[-0.03 * hi, hi], zeroline=True)
    fig.update_xaxes(title_text="0 = every example told apart", row=1, col=1)
    fig.update_yaxes(autorange="reversed", type="category", categoryorder="array", categoryarray=labels)
    fig.update_layout(showlegend=False)
    return fig


def _display(eps: float, rule: str, top: float) -> float:
    """Where an example's ε is drawn: its value inside the bins that earn points, one column beyond them for a
    finite ε that earns nothing, and one for the cap (perfect separation, or a pool 100x narrower)."""
    if rule in ("separated", "peaky"):
        return top + CAP * BIN
    return eps if eps < top else top + BEYOND * BIN


def _jitter(i: int) -> float:
    """A deterministic spread within a row (golden-ratio sequence), so equal ε do not hide each other."""
    return ((i * 0.6180339887) % 1.0 - 0.5) * 0.62


def epsilon_figure(report: Any, model: str, selected: int | None = None, big: bool = False) -> go.Figure:
    """Each forget example's ε (x) for the ceiling, `model` and the floor (rows): shaded half-unit bins worth 1,
    ½, ¼ ... points, then the examples that earn nothing. The followed sample is starred in every row."""
    r = _d(report)
    ids = [int(i) for i in r["forget_indices"]]
    n_bins = next((int(s["bins"]) for _, _, s, _ in rows(r) if s and s.get("n") == r["n"]), 0)
    top = n_bins * BIN
    fig = go.Figure()
    for b in range(n_bins):  # the bins that earn points, worth 2^-b each
        fig.add_vrect(x0=b * BIN, x1=(b + 1) * BIN, fillcolor="#0072B2", opacity=0.10 * 0.72 ** b, line_width=0)
        fig.add_annotation(x=(b + 0.5) * BIN, y=1.0, yref="paper", yanchor="top", showarrow=False,
                           text="1" if b == 0 else f"2<sup>−{b}</sup>", font=dict(color="#0072B2"))
    fig.add_vrect(x0=top, x1=top + END * BIN, fillcolor="#999", opacity=0.08, line_width=0)
    fig.add_annotation(x=top + END / 2 * BIN, y=1.0, yref="paper", yanchor="top", showarrow=False,
                       text="0 points", font=dict(color="#555"))
    shown = [(label, who, s) for label, who, s, _ in rows(r) if s and label in (CEILING, model, FLOOR)]
    order = [palette.label(label) for label, _, _ in shown]
    ticktext = [f"{name}<br><span style='font-size:0.8em;color:#555'>F {s['f']:.3f} · {sum(p == 0 for p in s['points'])}"
                f" of {len(ids)} earn 0</span>" for name, (_, _, s) in zip(order, shown)]
    for row, (label, who, s) in enumerate(shown):  # rows are numbered, so each can be spread vertically
        name = order[row]
        xs = [_display(e, rule, top) for e, rule in zip(s["epsilons"], s["rules"])]
        ys = [row + _jitter(j) for j in range(len(xs))]
        fig.add_trace(go.Scatter(
            x=xs, y=ys, mode="markers", name=name, showlegend=False,
            customdata=[[i, e, p, rule] for i, e, p, rule in zip(ids, s["epsilons"], s["points"], s["rules"])],
            marker=dict(size=9 if big else 7, color=palette.colour(who), opacity=0.8,
                        line=dict(color="#222", width=0.5)),
            hovertemplate=(f"<b>{name}</b> · sample #%{{customdata[0]}}<br>ε = %{{customdata[1]:.3g}} "
                           "(%{customdata[3]})<br>points %{customdata[2]:.3g}<extra></extra>")))
        if selected is not None and selected in ids:
            i = ids.index(selected)
            fig.add_trace(go.Scatter(
                x=[xs[i]], y=[ys[i]], mode="markers", name=f"followed sample #{selected}",
                showlegend=row == 0, legendgroup="selected",
                customdata=[[selected, s["epsilons"][i], s["points"][i], s["rules"][i]]],
                marker=dict(symbol="star", size=22, color="#F0E442", line=dict(color="#222", width=2)),
                hovertemplate=(f"<b>followed sample #{selected}</b> · {name}<br>ε = %{{customdata[1]:.3g}} "
                               "(%{customdata[3]})<extra></extra>")))
    palette.style(fig, title=setting(r), height=max(300, 190 + (110 if big else 80) * len(shown)), big=big,
                  l=170)
    ticks = list(range(int(top) + 1))  # whole units: the bins' shading shows the halves
    fig.update_xaxes(range=[-0.1, top + END * BIN], title_text="ε per forget example (δ = 1e-5)", tickangle=0,
                     tickvals=ticks + [top + BEYOND * BIN, top + CAP * BIN],
                     ticktext=[f"{t:g}" for t in ticks] + ["beyond", "cap"])
    fig.update_yaxes(tickvals=list(range(len(order))), ticktext=ticktext, range=[len(order) - 0.5, -0.9],
                     zeroline=False, showgrid=False)
    fig.update_layout(clickmode="event+select", hovermode="closest")
    return fig

