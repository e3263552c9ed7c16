"""Attack figures: ROC curves (linear or log-log, as Carlini et al. 2022 report them), attack-score
distributions, and the worst-case privacy score against retraining.

Pure functions: data in, plotly Figure out (no Streamlit). Curves are `(label, model name, Roc)` triples,
where `Roc` is `core.attacks.roc.Roc` (or its `to_dict()`); the model name picks the colour, so θ_o,
θ_r and each method keep their colour, and different attacks on one model differ by line style.
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import plotly.graph_objects as go

from . import palette

_DASHES = ["solid", "dash", "dot", "dashdot", "longdash", "longdashdot"]


def _get(roc: Any, key: str):
    return roc[key] if isinstance(roc, Mapping) else getattr(roc, key)


def roc_legend(label: str, roc: Any, short: bool = False) -> str:
    """A curve's legend entry; `short` (projector fonts) keeps the AUC and drops the TPR at 1% FPR."""
    if short:
        return f"{label} · AUC {_get(roc, 'auc'):.2f}"
    return f"{label} · AUC {_get(roc, 'auc'):.3f} · TPR@1%FPR {_get(roc, 'tpr_at_1pct'):.3f}"


def roc_figure(curves: Sequence[tuple[str, str, Any]], log_scale: bool = False, title: str | None = None,
               big: bool = False, height: int | None = None) -> go.Figure:
    """ROC curves with the random-guess diagonal; AUC and TPR at 1% FPR in each legend entry.

    `curves`: (label, model name, Roc). `log_scale` draws both axes logarithmic (the low-FPR regime
    that matters for privacy); points at 0 are placed at the smallest visible rate, 1/(2·n_neg)."""
    fig = go.Figure()
    dash_of: dict[str, str] = {}
    floor = 1.0
    for label, model, roc in curves:
        fpr = np.asarray(_get(roc, "fpr"), dtype=float)
        tpr = np.asarray(_get(roc, "tpr"), dtype=float)
        attack = label.split(" on ")[0]
        dash = dash_of.setdefault(attack, _DASHES[len(dash_of) % len(_DASHES)])
        if log_scale:
            lo_x = 0.5 / max(int(_get(roc, "n_neg")), 1)
            lo_y = 0.5 / max(int(_get(roc, "n_pos")), 1)
            floor = min(floor, lo_x, lo_y)
            fpr, tpr = np.maximum(fpr, lo_x), np.maximum(tpr, lo_y)
        fig.add_trace(go.Scatter(
            x=fpr, y=tpr, mode="lines", name=roc_legend(label, roc, short=big), legendgroup=model,
            line=dict(color=palette.colour(model), width=2.5, dash=dash, shape="hv"),
            hovertemplate=f"<b>{label}</b><br>FPR %{{x:.4f}}<br>TPR %{{y:.4f}}<extra></extra>"))
    lo = floor if log_scale else 0.0
    fig.add_trace(go.Scatter(x=[lo, 1], y=[lo, 1], mode="lines", name="random guess",
                             line=dict(color="#999999", width=1.5, dash="dot"), hoverinfo="skip"))
    names = [t.name or "" for t in fig.data]
    axis = dict(type="log", range=[np.log10(lo), 0]) if log_scale else dict(range=[0, 1])
    fig.update_xaxes(title_text="false positive rate" + (" (log)" if log_scale else ""), **axis)
    fig.update_yaxes(title_text="true positive rate" + (" (log)" if log_scale else ""), **axis)
    if big:  # projector fonts: a legend beside the curves would leave them a sliver; it goes under the plot
        below = 100 + 30 * len(names)  # px under the plot: the axis title, then one legend row per curve
        palette.style(fig, title, height=height or 165 + 480 + below, big=big, b=round(below / 1.5))
        fig.update_layout(legend=dict(orientation="v", yanchor="top", y=-90 / 480, xanchor="left", x=0,
                                      tracegroupgap=0, bgcolor="rgba(255,255,255,0.8)"))
    else:  # beside the curves, never over them: room for its longest entry
        palette.style(fig, title, height=height or 520, big=big, r=50 + 7 * max(map(len, names)))
        fig.update_layout(legend=dict(orientation="v", yanchor="bottom", y=0.0, xanchor="left", x=1.02,
                                      bgcolor="rgba(255,255,255,0.8)"))
    if not log_scale:  # a square plot: the axes keep [0, 1] and the plot area narrows (not the range widens)
        fig.update_yaxes(scaleanchor="x", scaleratio=1)
        fig.update_xaxes(constrain="domain")
    return fig


def curves_from_results(results: Iterable[Any]) -> list[tuple[str, str, Any]]:
    """(label, model, Roc) for AttackResult objects (or their dicts): label "attack on model"."""
    out = []
    for r in results:
        if isinstance(r, Mapping):
            out.append((f"{r['attack']} on {r['target']}", r["target"], r["roc"]))
        else:
            out.append((f"{r.attack} on {r.target}", r.target, r.roc()))
    return out


def score_histogram(scores: Sequence[float], labels: Sequence[int], title: str | None = None,
                    model: str = "original", member_name: str = "members", nonmember_name: str = "non-members",
                    big: bool = False) -> go.Figure:
    """Overlaid histograms of one attack's scores for members and non-members."""
    s = np.asarray(scores, dtype=float)
    y = np.asarray(labels).astype(bool)
    s = np.where(np.isfinite(s), s, np.nan)
    fig = go.Figure()
    fig.add_trace(go.Histogram(x=s[y], name=member_name, marker_color=palette.colour(model), opacity=0.65,
                               histnorm="probability"))
    fig.add_trace(go.Histogram(x=s[~y], name=nonmember_name, marker_color="#AAAAAA", opacity=0.65,
                               histnorm="probability"))
    palette.style(fig, title, height=420, big=big)
    fig.update_layout(barmode="overlay")
    fig.update_xaxes(title_text="attack score (higher = more likely member)")
    fig.update_yaxes(title_text="share of samples")
    return fig


_THRESHOLDS = {"exact": "thresholds: every observed value (the exact worst case)",
               "comparator": "thresholds: the Machine Unlearning Comparator's 51 in fixed ranges"}


def privacy_figure(scores: Mapping[str, Any], title: str | None = None, big: bool = False) -> go.Figure:
    """Bars of the worst-case privacy score per model (1 = indistinguishable from retraining).

    `scores`: model name -> PrivacyScore (core.attacks.privacy), its `to_dict()`, or a float."""
    names, values, hover = [], [], []
    for name, ps in scores.items():
        names.append(palette.label(name))
        if isinstance(ps, (int, float)):
            values.append(float(ps))
            hover.append("")
            continue
        d = ps if isinstance(ps, Mapping) else ps.to_dict()
        eps = d.get("epsilon")
        eps_txt = "∞" if eps is None or not np.isfinite(eps) else f"{eps:.3f}"
        per = ", ".join(f"{k} {v:.3f}" for k, v in d.get("per_signal", {}).items())
        direction = "above" if d.get("direction") == "unlearned_above" else "below"
        values.append(float(d["score"]))
        hover.append(f"worst signal: {d.get('signal')} (θ_u called where {direction} {d.get('threshold', 0):.4g})"
                     f"<br>FPR {d.get('fpr', 0):.3f} · FNR {d.get('fnr', 0):.3f} · ε {eps_txt}"
                     f"<br>per signal: {per}<br>{_THRESHOLDS.get(d.get('thresholds', 'exact'), '')}")
    fig = go.Figure(go.Bar(
        x=names, y=values, marker_color=[palette.colour(n) for n in scores], text=[f"{v:.3f}" for v in values],
        textposition="outside", customdata=hover,
        hovertemplate="<b>%{x}</b><br>privacy score %{y:.3f}<br>%{customdata}<extra></extra>"))
    palette.style(fig, title, height=440, big=big)
    fig.update_yaxes(title_text="privacy score (1 = like retraining)", range=[0, 1.12])
    fig.update_layout(showlegend=False)
    return fig


def auc_bars(rows: Sequence[tuple[str, str, float]], title: str | None = None, big: bool = False) -> go.Figure:
    """Grouped bars of AUC: rows (attack, model, auc); one group per attack, one colour per model."""
    models = list(dict.fromkeys(m for _, m, _ in rows))
    attacks = list(dict.fromkeys(a for a, _, _ in rows))
    val = {(a, m): v for a, m, v in rows}
    fig = go.Figure()
    for m in models:
        fig.add_trace(go.Bar(x=attacks, y=[val.get((a, m)) for a in attacks], name=palette.label(m),
                             marker_color=palette.colour(m),
                             hovertemplate=f"<b>{m}</b> %{{x}}<br>AUC %{{y:.3f}}<extra></extra>"))
    fig.add_hline(y=0.5, line=dict(color="#999999", dash="dot"), annotation_text="random guess")
    palette.style(fig, title, height=440, big=big, b=110)  # the attack names below turn sideways
    fig.update_layout(barmode="group")
    fig.update_yaxes(title_text="AUC", range=[0, 1])
    return fig
