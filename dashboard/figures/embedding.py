"""Embedding view: one shared UMAP projection of penultimate features, one panel per model, forget samples
highlighted and the followed sample starred. Pure function of `core.probes.Embedding` (or its dict).

Every point carries its dataset index as customdata, so a click (Streamlit selection event) names a sample."""
from __future__ import annotations

from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from . import palette

_PART = {"forget": "forget set D_f", "retain": "retain sample D_r", "test": "test set D_t"}


def _d(x: Any) -> dict:
    return x.to_dict() if hasattr(x, "to_dict") else dict(x)


def embedding_figure(emb: Any, models: list[str] | None = None, selected: int | None = None,
                     big: bool = False) -> go.Figure:
    """Side-by-side scatter per model with shared axes; colour = class, forget samples large and outlined."""
    e = _d(emb)
    models = [m for m in (models or e["models"]) if m in e["coords"]]
    fig = make_subplots(rows=1, cols=len(models), subplot_titles=[palette.label(m) for m in models],
                        shared_xaxes=True, shared_yaxes=True, horizontal_spacing=0.03)
    parts, labels, ids = e["part"], e["label"], e["sample_id"]
    for j, m in enumerate(models, start=1):
        pts = e["coords"][m]
        for part, size, outline, opacity in (("retain", 5, 0, 0.45), ("test", 5, 0, 0.45), ("forget", 10, 1.5, 0.95)):
            idx = [i for i, p in enumerate(parts) if p == part]
            if not idx:
                continue
            fig.add_trace(go.Scatter(
                x=[pts[i][0] for i in idx], y=[pts[i][1] for i in idx], mode="markers",
                name=_PART[part], legendgroup=part, showlegend=j == 1,
                customdata=[[ids[i], labels[i]] for i in idx],
                marker=dict(size=size, color=[palette.class_colour(labels[i]) for i in idx], opacity=opacity,
                            symbol="circle" if part != "test" else "diamond",
                            line=dict(color="#222", width=outline)),
                # only forget samples (the ones a click follows) take the hover, hence the click: plotly gives it to
                # the smallest marker under the cursor, so a test point beneath a forget point would take it
                hoverinfo=None if part == "forget" else "skip",
                hovertemplate=(f"<b>{_PART[part]}</b> · sample #%{{customdata[0]}}<br>class %{{customdata[1]}}"
                               f"<extra>{palette.label(m)}</extra>") if part == "forget" else None), row=1, col=j)
        if selected is not None and selected in ids:
            i = ids.index(selected)
            fig.add_trace(go.Scatter(
                x=[pts[i][0]], y=[pts[i][1]], mode="markers", name=f"followed sample #{selected}",
                legendgroup="selected", showlegend=j == 1, customdata=[[ids[i], labels[i]]],
                marker=dict(symbol="star", size=22, color="#F0E442", line=dict(color="#222", width=2)),
                hovertemplate=f"<b>followed sample #{selected}</b><br>class {labels[i]}<extra>{palette.label(m)}</extra>"),
                row=1, col=j)
    palette.style(fig, height=520 if big else 460, big=big)
    fig.update_xaxes(showticklabels=False, title_text=None)
    fig.update_yaxes(showticklabels=False)
    # a click selects the point only outside lasso/box mode (Streamlit makes a lasso-mode click a bare event, which
    # selects nothing): zoom by default, the lasso one toolbar button away
    fig.update_layout(dragmode="zoom", clickmode="event+select", margin=dict(t=40, b=60),
                      legend=dict(y=-0.02, yanchor="top"))
    return fig


def point_ids(fig: go.Figure, selection: dict | None) -> list[int]:
    """Dataset indices of the points in a Streamlit plotly selection event (first = the clicked one)."""
    out = []
    for p in (selection or {}).get("points", []):
        cd = p.get("customdata")
        if cd is None:
            trace = fig.data[p["curve_number"]]
            cd = trace.customdata[p["point_index"]] if trace.customdata is not None else None
        if cd is not None:
            out.append(int(cd[0]))
    return list(dict.fromkeys(out))
