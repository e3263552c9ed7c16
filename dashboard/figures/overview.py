"""Overview figures: what every model looks like from the outside (accuracy, time, output distance).

Pure functions of `core.results.Results`; colours come from `palette`, so θ_o, θ_r and each method keep
theirs across every view.
"""
from __future__ import annotations

import math

import plotly.graph_objects as go

from . import palette

PARTS = (("forget_acc", "forget set D_f"), ("retain_acc", "retain set D_r"), ("test_acc", "test set D_t"))


def _finite(x) -> bool:
    return x is not None and isinstance(x, (int, float)) and math.isfinite(x)


def accuracy_bars(results, big: bool = False) -> go.Figure:
    """Grouped bars: accuracy on forget / retain / test for original, retrained and each method."""
    fig = go.Figure()
    for m in results.models:
        ys = [getattr(m, attr) for attr, _ in PARTS]
        fig.add_trace(go.Bar(
            x=[label for _, label in PARTS], y=ys, name=palette.label(m.name), marker_color=palette.colour(m.name),
            text=[f"{y:.0%}" if _finite(y) else "" for y in ys], textposition="outside", cliponaxis=False,
            hovertemplate=f"<b>{palette.label(m.name)}</b><br>%{{x}}: %{{y:.1%}}<extra></extra>"))
    palette.style(fig, height=460 if big else 400, big=big)
    fig.update_layout(barmode="group", bargap=0.25, yaxis=dict(title="accuracy", tickformat=".0%", range=[0, 1.12]),
                      uniformtext=dict(minsize=9, mode="hide"))
    return fig


def time_ticks(lo: float, hi: float) -> list[float]:
    """Tick values in seconds between 10**lo and 10**hi: 1-2-5 in each decade (only the powers of ten past four
    decades), so a log axis reads as times instead of plotly's bare minor-tick digits."""
    steps = (1, 2, 5) if hi - lo <= 4 else (1,)
    return [m * 10.0 ** k for k in range(math.floor(lo), math.ceil(hi) + 1) for m in steps
            if lo <= math.log10(m * 10.0 ** k) <= hi]


def time_bars(results, big: bool = False) -> go.Figure:
    """Wall time of each model, with its ratio to retraining from scratch."""
    rows = [m for m in results.models]
    secs = [max(m.seconds, 1e-3) for m in rows]
    # bars start at the left end of a log axis: half a decade below the shortest leaves it a visible length; the
    # right third stays free for the labels, drawn past each bar's end where no bar can hide or crop them
    lo, top = math.log10(min(secs)) - 0.5, math.log10(max(secs))
    hi = lo + (top - lo) / 0.65
    ticks = time_ticks(lo, top + 0.35)  # none far out over the labels
    fig = go.Figure(go.Bar(
        y=[palette.label(m.name) for m in rows], x=secs, orientation="h",
        marker_color=[palette.colour(m.name) for m in rows],
        text=[("from cache · " if m.cached else "") + (f"{m.ratio_to_retrain:.2f}× retrain"
                                                      if _finite(m.ratio_to_retrain) else f"{m.seconds:.2f} s")
              for m in rows],
        textposition="outside", cliponaxis=False,
        hovertemplate="<b>%{y}</b><br>%{x:.2f} s<extra></extra>"))
    # rows tall enough for every model's name: plotly skips the category labels that would overlap
    palette.style(fig, height=max(240, 60 + (66 if big else 44) * len(rows)), big=big)
    fig.update_layout(xaxis=dict(title="wall time (log scale)", type="log", range=[lo, hi], tickvals=ticks,
                                 ticktext=[f"{t:g} s" for t in ticks]),
                      yaxis=dict(autorange="reversed"), showlegend=False)
    return fig


def distance_bars(results, big: bool = False) -> go.Figure:
    """Mean KL and JS divergence of each model's posteriors on D_f from the retrained model's."""
    rows = [m for m in results.models if m.role != "retrained"]
    fig = go.Figure()
    for what, attr, pattern in (("KL(θ_r ‖ model)", "kl_to_retrain", ""), ("JS", "js_to_retrain", "/")):
        vals = [getattr(m, attr) if _finite(getattr(m, attr)) else None for m in rows]
        fig.add_trace(go.Bar(
            x=[palette.label(m.name) for m in rows], y=vals, name=what,
            marker=dict(color=[palette.colour(m.name) for m in rows], pattern_shape=pattern,
                        line=dict(color="#444", width=0.5)),
            text=[f"{v:.3f}" if v is not None else "" for v in vals], textposition="outside", cliponaxis=False,
            hovertemplate=f"<b>%{{x}}</b><br>{what}: %{{y:.4f}}<extra></extra>"))
    palette.style(fig, height=380, big=big)
    fig.update_layout(barmode="group", yaxis=dict(title="divergence on D_f (0 = same outputs as θ_r)"))
    return fig


def metrics_rows(results) -> list[dict]:
    """The table a person reads first: one row per model."""
    out = []
    for m in results.models:
        out.append({
            "model": palette.label(m.name), "role": m.role,
            "forget acc": m.forget_acc, "retain acc": m.retain_acc, "test acc": m.test_acc,
            "UA (1 − forget)": m.unlearning_accuracy,
            "seconds": m.seconds, "× retrain": m.ratio_to_retrain if _finite(m.ratio_to_retrain) else None,
            "KL to θ_r": m.kl_to_retrain if _finite(m.kl_to_retrain) else None,
            "JS to θ_r": m.js_to_retrain if _finite(m.js_to_retrain) else None,
            "status": m.status + (" (cached)" if m.cached else ""),
        })
    return out
