"""Loss-landscape figures: 1-D curves along θ_o → θ_u → θ_r, 2-D contour and 3-D surface of a plane with
the models marked. Pure functions of `core.probes.landscape` results (dataclasses or their dicts)."""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from . import palette

WHICH = {"forget_loss": "forget loss (D_f)", "retain_loss": "retain loss (D_r)",
         "forget_acc": "forget accuracy", "retain_acc": "retain accuracy"}


def _d(x: Any) -> dict:
    return x.to_dict() if hasattr(x, "to_dict") else dict(x)


def _arr(v) -> np.ndarray:
    return np.asarray([[np.nan if x is None else x for x in row] for row in v] if v and isinstance(v[0], list)
                      else [np.nan if x is None else x for x in v], dtype=float)


def curve_figure(curve: Any, big: bool = False, log: bool = False) -> go.Figure:
    """Forget and retain loss along θ_o (s=0) → θ_u (s=1) → θ_r (s=2), a little beyond each end; barrier
    heights in the hover of each model marker."""
    c = _d(curve)
    s = c["s"]
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_trace(go.Scatter(x=s, y=c["forget_loss"], name="forget loss (D_f)", mode="lines",
                             line=dict(color="#D55E00", width=3),
                             hovertemplate="s=%{x:.2f}<br>forget loss %{y:.4g}<extra></extra>"))
    fig.add_trace(go.Scatter(x=s, y=c["retain_loss"], name="retain loss (D_r)", mode="lines",
                             line=dict(color="#0072B2", width=3, dash="dash"),
                             hovertemplate="s=%{x:.2f}<br>retain loss %{y:.4g}<extra></extra>"))
    fig.add_trace(go.Scatter(x=s, y=c["forget_acc"], name="forget accuracy", mode="lines",
                             line=dict(color="#D55E00", width=1.5, dash="dot"), opacity=0.7,
                             hovertemplate="s=%{x:.2f}<br>forget acc %{y:.1%}<extra></extra>"), secondary_y=True)
    bars = c.get("barriers", {})
    btxt = "<br>".join(f"barrier {k}: forget {v.get('forget', float('nan')):.3g}, retain {v.get('retain', float('nan')):.3g}"
                       for k, v in bars.items() if v)
    for name, pos in c["marks"].items():
        fig.add_vline(x=pos, line=dict(color=palette.colour(name), width=2), annotation_text=palette.label(name),
                      annotation_position="top")
        i = int(np.argmin(np.abs(np.asarray(s) - pos)))
        fig.add_trace(go.Scatter(x=[pos], y=[c["forget_loss"][i]], mode="markers", showlegend=False,
                                 marker=dict(size=12, color=palette.colour(name), line=dict(color="white", width=1)),
                                 hovertemplate=f"<b>{palette.label(name)}</b><br>forget loss %{{y:.4g}}<br>{btxt}"
                                               "<extra></extra>"))
    title = f"Loss along θ_o → {palette.label(c['model'])} → θ_r"
    if "original-unlearned" in bars and bars["original-unlearned"]:
        title += f" · forget barrier θ_u→θ_r {bars.get('unlearned-retrain', {}).get('forget', float('nan')):.2g}"
    plot_h = 300 if big else 240  # px of plot area; the legend goes under the axis title, the model labels on top
    below = 150 if big else 110
    palette.style(fig, title=title, height=plot_h + below + (100 if big else 70), big=big)
    fig.update_yaxes(title_text="cross-entropy", type="log" if log else "linear", secondary_y=False)
    fig.update_yaxes(title_text="accuracy", tickformat=".0%", range=[0, 1.05], dtick=0.25, secondary_y=True,
                     showgrid=False)
    fig.update_xaxes(title_text="path position s (0 = θ_o, 1 = θ_u, 2 = θ_r)")
    fig.update_layout(legend=dict(y=-(below - 45) / plot_h, yanchor="top"),
                      margin=dict(t=100 if big else 70, b=below))
    return fig


def _z(plane: dict, which: str, log: bool) -> np.ndarray:
    Z = _arr(plane[which])
    return np.log10(np.maximum(Z, 1e-12)) if log and which.endswith("loss") else Z


def _marks(plane: dict, which: str, log: bool):
    out = []
    for name, (x, y) in plane["coords"].items():
        v = (plane.get("model_losses") or {}).get(name, {}).get(which.replace("_loss", ""))
        if v is None:
            v = (plane.get("model_losses") or {}).get(name, {}).get(which)
        if v is not None and log and which.endswith("loss"):
            v = math.log10(max(v, 1e-12))
        out.append((name, x, y, v))
    return out


TEXT_AT = {"original": "bottom left", "retrain": "top center"}  # θ_u (top right) often sits close to θ_o


def _surface(plane: Any, which: str, log: bool) -> tuple[dict, np.ndarray, str]:
    """The plane as a dict, the grid to draw (log10 of losses when asked) and its axis label."""
    p = _d(plane)
    return p, _z(p, which, log), WHICH.get(which, which) + (" (log10)" if log and which.endswith("loss") else "")


def plane_contour(plane: Any, which: str = "forget_loss", log: bool = True, big: bool = False) -> go.Figure:
    """Contour of a loss (or accuracy) on the plane, with θ_o, θ_u, θ_r (and any others) marked."""
    p, Z, label = _surface(plane, which, log)
    fig = go.Figure(go.Contour(x=p["x"], y=p["y"], z=Z, colorscale="Viridis", ncontours=24,
                               colorbar=dict(title=label),
                               hovertemplate="(%{x:.3g}, %{y:.3g})<br>" + label + " %{z:.4g}<extra></extra>"))
    for name, x, y, v in _marks(p, which, log):
        fig.add_trace(go.Scatter(
            x=[x], y=[y], mode="markers+text", text=[palette.label(name)], textposition=TEXT_AT.get(name, "top right"),
            name=palette.label(name), marker=dict(size=14, color=palette.colour(name), line=dict(color="white", width=2)),
            hovertemplate=f"<b>{palette.label(name)}</b><br>({x:.3g}, {y:.3g})"
                          + ("" if v is None else f"<br>{label} {v:.4g}") + "<extra></extra>"))
    kind = "plane through θ_o, θ_u, θ_r" if p.get("kind") == "models" else "filter-normalised random plane around θ_u"
    palette.style(fig, title=f"{WHICH.get(which, which)} on the {kind}", height=520, big=big, r=230)  # colour bar
    axis = "distance in parameter space" if p.get("kind") == "models" else "filter-normalised units"
    fig.update_layout(xaxis=dict(title=f"axis 1 ({axis})"),
                      yaxis=dict(title=f"axis 2 ({axis})", scaleanchor="x", scaleratio=1))
    return fig


def plane_surface(plane: Any, which: str = "forget_loss", log: bool = True, big: bool = False) -> go.Figure:
    """The same plane as a 3-D surface; the models float at their exact losses."""
    p, Z, label = _surface(plane, which, log)
    fig = go.Figure(go.Surface(x=p["x"], y=p["y"], z=Z, colorscale="Viridis", opacity=0.92,
                               colorbar=dict(title=label),
                               hovertemplate="(%{x:.3g}, %{y:.3g})<br>" + label + " %{z:.4g}<extra></extra>"))
    for name, x, y, v in _marks(p, which, log):
        if v is None:
            continue
        fig.add_trace(go.Scatter3d(x=[x], y=[y], z=[v], mode="markers+text", text=[palette.label(name)],
                                   name=palette.label(name),
                                   marker=dict(size=7, color=palette.colour(name), line=dict(color="white", width=2)),
                                   hovertemplate=f"<b>{palette.label(name)}</b><br>{label} %{{z:.4g}}<extra></extra>"))
    palette.style(fig, title=f"{WHICH.get(which, which)} — surface", height=600, big=big)
    fig.update_layout(scene=dict(xaxis_title="axis 1", yaxis_title="axis 2", zaxis_title=label))
    return fig


BARRIER_LINES = {"original-unlearned": "θ_o → θ_u", "unlearned-retrain": "θ_u → θ_r", "original-retrain": "θ_o → θ_r"}


def barrier_rows(curve: Any) -> list[dict[str, Any]]:
    """Barrier heights on the three straight lines (how far the loss rises above the line between its ends)."""
    c = _d(curve)
    return [{"line": BARRIER_LINES.get(k, k), "forget-loss barrier": v.get("forget"),
             "retain-loss barrier": v.get("retain")} for k, v in c.get("barriers", {}).items() if v]
