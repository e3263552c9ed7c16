"""Reminiscence (relearning) view: probe accuracy vs fine-tuning step, per learning rate.

Input: the class-wise ReA result's `extra` (`AttackResult.extra` of `rea_class`, or a
`core.attacks.reminiscence_class.Relearning` / its `to_dict()`): runs with role ("target"/"reference"),
model, lr, draw, curve (probe accuracy at steps 0..max_steps) and steps (to the threshold).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from . import palette


def _d(obj: Any) -> dict:
    if hasattr(obj, "extra") and isinstance(obj.extra, dict):
        return obj.extra
    return obj.to_dict() if hasattr(obj, "to_dict") else dict(obj)


def _rgba(hex_colour: str, alpha: float) -> str:
    h = hex_colour.lstrip("#")
    r, g, b = (int(h[i:i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r},{g},{b},{alpha})"


def relearning_figure(rea, big: bool = False) -> go.Figure:
    """One panel per learning rate: thin lines = single probe draws, thick = their mean, for the attacked model
    and the never-trained reference; the threshold dashed; the mean steps-to-threshold in each panel's title."""
    e = _d(rea)
    runs, lrs, thr, cap = e["runs"], e["lrs"], e["threshold"], e["max_steps"]
    titles = []
    for lr in lrs:
        parts = []
        for role in ("target", "reference"):
            st = [r["steps"] for r in runs if r["role"] == role and r["lr"] == lr]
            if st:
                name = next(r["model"] for r in runs if r["role"] == role)
                parts.append(f"{name} {np.mean(st):.1f}")
        # projector fonts: three titles side by side must fit their panels, so the big version says less
        titles.append(f"lr {lr:.2g}" + (f": {' vs '.join(p.split()[-1] for p in parts)} steps" if big else
                                         f" · steps to {thr:.0%}: " + ", ".join(parts)))
    fig = make_subplots(rows=1, cols=len(lrs), subplot_titles=titles, shared_yaxes=True, horizontal_spacing=0.04)
    shown = set()
    for j, lr in enumerate(lrs, start=1):
        for role in ("reference", "target"):
            sel = [r for r in runs if r["role"] == role and r["lr"] == lr]
            if not sel:
                continue
            name = sel[0]["model"]
            colour = palette.colour(name)
            steps = list(range(len(sel[0]["curve"])))
            xs, ys, about = [], [], []  # every draw in one trace, broken by gaps: one trace draws far faster
            for r in sel:
                xs += [*steps, None]
                ys += [*r["curve"], None]
                about += [[r["draw"], r["cls"], r["steps"]]] * len(steps) + [[None] * 3]
            fig.add_trace(go.Scatter(
                x=xs, y=ys, customdata=about, mode="lines", line=dict(color=_rgba(colour, 0.35), width=1),
                legendgroup=name, showlegend=False, connectgaps=False,
                hovertemplate=(f"<b>{palette.label(name)}</b> draw %{{customdata[0]}}, class %{{customdata[1]}}<br>"
                               f"step %{{x}}: probe accuracy %{{y:.0%}}<br>steps to {thr:.0%}: %{{customdata[2]}}"
                               "<extra></extra>")), row=1, col=j)
            mean = np.mean([r["curve"] for r in sel], axis=0)
            fig.add_trace(go.Scatter(
                x=steps, y=mean.tolist(), mode="lines", line=dict(color=colour, width=3),
                name=f"{palette.label(name)} ({'attacked' if role == 'target' else 'never-trained reference'})",
                legendgroup=name, showlegend=name not in shown,
                hovertemplate=f"<b>{palette.label(name)}</b> mean<br>step %{{x}}: %{{y:.0%}}<extra></extra>"),
                row=1, col=j)
            shown.add(name)
            # each run's steps-to-threshold on the threshold line
            st = [r["steps"] for r in sel if r["steps"] < cap]
            if st:
                fig.add_trace(go.Scatter(
                    x=st, y=[thr] * len(st), mode="markers", legendgroup=name, showlegend=False,
                    marker=dict(color=colour, size=9, symbol="line-ns-open", line=dict(width=2, color=colour)),
                    hovertemplate=f"<b>{palette.label(name)}</b> reached {thr:.0%} at step %{{x}}<extra></extra>"),
                    row=1, col=j)
        fig.add_hline(y=thr, line=dict(color="#888", dash="dash", width=1), row=1, col=j)
    palette.style(fig, height=440 if big else 380, big=big)
    fig.update_xaxes(range=[0, cap])
    fig.update_xaxes(title_text="fine-tuning step (one probe image + a retain batch each)", row=1,
                     col=(len(lrs) + 1) // 2)
    fig.update_yaxes(title_text="probe accuracy", tickformat=".0%", range=[-0.03, 1.03], col=1)
    fig.update_annotations(font_size=15 if big else 12)
    fig.update_layout(margin=dict(t=100), legend=dict(y=1.14))
    return fig


def steps_figure(rea, big: bool = False) -> go.Figure:
    """Steps to the threshold per learning rate: the attacked model's runs vs the reference's (a strip plot).
    Runs that never reached it sit at the cap."""
    e = _d(rea)
    runs, lrs, cap = e["runs"], e["lrs"], e["max_steps"]
    fig = go.Figure()
    for role in ("target", "reference"):
        sel = [r for r in runs if r["role"] == role]
        if not sel:
            continue
        name = sel[0]["model"]
        fig.add_trace(go.Box(
            x=[f"lr {r['lr']:.2g}" for r in sel], y=[r["steps"] for r in sel], name=palette.label(name),
            marker_color=palette.colour(name), boxpoints="all", jitter=0.4, pointpos=0, fillcolor="rgba(0,0,0,0)",
            customdata=[[r["draw"], r["cls"]] for r in sel],
            hovertemplate="%{x}, draw %{customdata[0]}, class %{customdata[1]}: %{y} steps<extra></extra>"))
    fig.add_hline(y=cap, line=dict(color="#888", dash="dot"), annotation_text=f"cap ({cap}: never reached)",
                  annotation_position="top left")
    palette.style(fig, height=380 if big else 330, big=big)
    fig.update_layout(boxmode="group")
    fig.update_yaxes(title_text=f"steps to {e['threshold']:.0%} probe accuracy", rangemode="tozero")
    fig.update_xaxes(categoryorder="array", categoryarray=[f"lr {lr:.2g}" for lr in lrs])
    return fig
