"""Unlearning curves: the objective and the forget/retain terms per optimisation step of each method.

Input is `{model name: history rows}` where a row is `{"step": n, "loss": ..., "retain_loss": ...}`
(`ModelReport.history`, or the live rows the dashboard collects from progress events while a run goes).
"""
from __future__ import annotations

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from . import palette

# how each logged term is drawn in the second panel
_DASH = {"retain_loss": "solid", "forget_loss": "dash", "retain_kl": "dot", "forget_kl": "dashdot",
         "ce_loss": "solid", "orth_loss": "dash", "l1": "dot"}


def histories(results) -> dict[str, list[dict]]:
    return {m.name: m.history for m in results.models if m.history}


def _is_loss(term: str) -> bool:
    return term.endswith(("_loss", "_kl"))


def unlearning_curves(hist: dict[str, list[dict]], big: bool = False, smooth: int = 1) -> go.Figure:
    """Two panels sharing the step axis: the method's objective, and its logged loss terms (forget, retain...).

    Other logged numbers (SSD's count of dampened weights, an L1 norm) are left to the hover of the
    objective, so they never squash the loss scale."""
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.1,
                        subplot_titles=("objective the method minimises", "loss on forget / retain data"))
    shown_terms: set[str] = set()
    for name, rows in hist.items():
        if not rows:
            continue
        steps = [r.get("step", i + 1) for i, r in enumerate(rows)]
        colour = palette.colour(name)
        mode = "lines+markers" if len(rows) <= 3 else "lines"
        others = [k for k in rows[-1] if k not in ("step", "loss") and not _is_loss(k)]
        extra = "".join(f"<br>{k} %{{customdata[{i}]:.4g}}" for i, k in enumerate(others))
        fig.add_trace(go.Scatter(
            x=steps, y=_smooth([r.get("loss") for r in rows], smooth), mode=mode, name=palette.label(name),
            legendgroup=name, line=dict(color=colour, width=2.5), marker=dict(size=9),
            customdata=[[r.get(k) for k in others] for r in rows] if others else None,
            hovertemplate=f"<b>{name}</b> step %{{x}}<br>objective %{{y:.4g}}{extra}<extra></extra>"), row=1, col=1)
        for t in [k for k in rows[-1] if _is_loss(k)]:
            shown_terms.add(t)
            fig.add_trace(go.Scatter(
                x=steps, y=_smooth([r.get(t) for r in rows], smooth), mode=mode, name=f"{name}: {t}",
                legendgroup=name, showlegend=False, line=dict(color=colour, width=2, dash=_DASH.get(t, "dot")),
                marker=dict(size=8), hovertemplate=f"<b>{name}</b> step %{{x}}<br>{t} %{{y:.4g}}<extra></extra>"),
                row=2, col=1)
    palette.style(fig, height=640 if big else 560, big=big)
    fig.update_layout(margin=dict(t=90, b=80))
    fig.update_xaxes(title_text="optimisation step", row=2, col=1)
    fig.update_yaxes(title_text="objective", row=1, col=1)
    fig.update_yaxes(title_text="loss", row=2, col=1)
    if shown_terms:
        key = " · ".join(f"{t}: {_DASH.get(t, 'dot')}" for t in sorted(shown_terms))
        fig.add_annotation(text=f"line style: {key}", xref="paper", yref="paper", x=0, y=-0.16, showarrow=False,
                           font=dict(size=12, color="#555"), xanchor="left")
    return fig


def _smooth(ys: list, k: int) -> list:
    if k <= 1:
        return ys
    out, acc = [], []
    for y in ys:
        acc.append(y if y is not None else float("nan"))
        window = acc[-k:]
        out.append(sum(window) / len(window))
    return out
