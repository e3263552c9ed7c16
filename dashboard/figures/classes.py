"""Class views: class-wise accuracy of every model, and the prediction matrix of θ_u beside θ_r.

Pure functions of `core.probes.ClassAccuracy` / `PredictionMatrix` (or their `to_dict()`)."""
from __future__ import annotations

from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from . import palette


def _d(x: Any) -> dict:
    return x.to_dict() if hasattr(x, "to_dict") else dict(x)


def _names(d: dict) -> list[str]:
    return [str(c) for c in (d.get("class_names") or d["classes"])]


def class_accuracy_figure(acc: Any, part: str = "test", models: list[str] | None = None,
                          big: bool = False) -> go.Figure:
    """Grouped bars: accuracy per class (x) for each model (colour); forgotten classes shaded."""
    a = _d(acc)
    names = _names(a)
    per = a[part]
    fig = go.Figure()
    for m in models or list(per):
        ys = [None if v is None else v for v in per[m]]
        fig.add_trace(go.Bar(x=names, y=ys, name=palette.label(m), marker_color=palette.colour(m),
                             hovertemplate=f"<b>{palette.label(m)}</b><br>class %{{x}}: %{{y:.1%}}<extra></extra>"))
    for c in a.get("forget_classes") or []:
        fig.add_vrect(x0=c - 0.5, x1=c + 0.5, fillcolor="#D55E00", opacity=0.10, line_width=0,
                      annotation_text="forgotten", annotation_position="top left")
    counts = (a.get("counts") or {}).get(part)
    palette.style(fig, height=440 if big else 380, big=big)
    fig.update_layout(barmode="group", bargap=0.2,
                      yaxis=dict(title=f"accuracy on {part}", tickformat=".0%", range=[0, 1.05]),
                      xaxis=dict(title="class" + (f" ({sum(counts)} samples)" if counts else ""), type="category"))
    return fig


def prediction_matrix_figure(matrices: list[Any], big: bool = False) -> go.Figure:
    """One panel per model: true class (rows) × predicted class (columns); bubble size = share of the true
    class, colour = mean confidence of those predictions (one shared scale)."""
    ms = [_d(m) for m in matrices]
    fig = make_subplots(rows=1, cols=len(ms), subplot_titles=[palette.label(m["model"]) for m in ms],
                        horizontal_spacing=0.08)
    for j, m in enumerate(ms, start=1):
        n = len(m["classes"])
        xs, ys, share, conf, text = [], [], [], [], []
        for t in range(n):
            for p in range(n):
                s = m["share"][t][p]
                if not s:
                    continue
                c = m["confidence"][t][p]
                xs.append(str(p))
                ys.append(str(t))
                share.append(s)
                conf.append(c if c is not None else 0.0)
                text.append(f"{m['counts'][t]} samples of class {t}")
        fig.add_trace(go.Scatter(
            x=xs, y=ys, mode="markers", showlegend=False, customdata=list(zip(share, conf, text)),
            marker=dict(size=[6 + 34 * s ** 0.5 for s in share], color=conf, cmin=0, cmax=1, colorscale="Viridis",
                        line=dict(color="#444", width=0.5), showscale=j == len(ms),
                        colorbar=dict(title="mean<br>confidence", tickformat=".0%")),
            hovertemplate=("true %{y} → predicted %{x}<br>share %{customdata[0]:.1%} of %{customdata[2]}"
                           "<br>mean confidence %{customdata[1]:.1%}<extra></extra>")), row=1, col=j)
        order = [str(c) for c in range(n)]
        fig.update_xaxes(title_text="predicted class", categoryorder="array", categoryarray=order, row=1, col=j)
        fig.update_yaxes(title_text="true class" if j == 1 else None, categoryorder="array", categoryarray=order,
                         autorange="reversed", row=1, col=j)
    part = ms[0].get("part", "") if ms else ""
    palette.style(fig, height=500 if big else 440, big=big, r=140)  # the colour bar
    fig.update_layout(title=dict(text=f"Where the predictions go ({part})", x=0.01), margin=dict(t=80))
    return fig
