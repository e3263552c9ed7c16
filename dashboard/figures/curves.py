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


def unlearning_curves(hist: dict[str, list[dict]], big: bool = False, smooth: int = 1) -> go.Figure:
    """Two panels sharing the step axis: the method's objective, and each logged term (forget, retain...)."""
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08,
                        subplot_titles=("objective the method minimises", "forget / retain terms"))
    shown_terms: set[str] = set()
    for name, rows in hist.items():
        if not rows:
            continue
        steps = [r.get("step", i + 1) for i, r in enumerate(rows)]
        colour = palette.colour(name)
        fig.add_trace(go.Scatter(x=steps, y=_smooth([r.get("loss") for r in rows], smooth), mode="lines",
                                 name=palette.label(name), legendgroup=name, line=dict(color=colour, width=2.5),
                                 hovertemplate=f"<b>{name}</b> step %{{x}}<br>loss %{{y:.4g}}<extra></extra>"),
                      row=1, col=1)
        terms = [k for k in rows[-1] if k not in ("step", "loss")]
        for t in terms:
            shown_terms.add(t)
            fig.add_trace(go.Scatter(
                x=steps, y=_smooth([r.get(t) for r in rows], smooth), mode="lines", name=f"{name}: {t}",
                legendgroup=name, showlegend=False, line=dict(color=colour, width=2, dash=_DASH.get(t, "dot")),
                hovertemplate=f"<b>{name}</b> step %{{x}}<br>{t} %{{y:.4g}}<extra></extra>"), row=2, col=1)
    palette.style(fig, height=620 if big else 540, big=big)
    fig.update_xaxes(title_text="optimisation step", row=2, col=1)
    fig.update_yaxes(title_text="loss", row=1, col=1)
    fig.update_yaxes(title_text="value", row=2, col=1)
    if shown_terms:
        key = " · ".join(f"{t}: {_DASH.get(t, 'dot')}" for t in sorted(shown_terms))
        fig.add_annotation(text=f"line style: {key}", xref="paper", yref="paper", x=0, y=-0.14, showarrow=False,
                           font=dict(size=11, color="#555"), xanchor="left")
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
