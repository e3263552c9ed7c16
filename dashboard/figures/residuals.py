"""Residual figures: the layer-wise heatmap, the depth score, patching per layer, trust AUCs, and the
verdict's seed-variance spreads.

Pure functions: probe results (the dataclasses of `core.probes` or their `to_dict()` form, as stored in
`Results.sections`) in, plotly figures out. No streamlit here.
"""
from __future__ import annotations

import math
import textwrap
from typing import Any

import plotly.graph_objects as go

from . import palette

METRIC_LABELS = {
    "weight_dist_r": "relative weight distance to θ_r",
    "weight_dist_o": "relative weight distance to θ_o",
    "cka_o": "linear CKA to θ_o on D_f",
    "cka_r": "linear CKA to θ_r on D_f",
    "probe_acc": "linear-probe accuracy on D_f",
    "attribution": "attribution mass on D_f (LayerConductance)",
    "patch_recovery": "patching: share of θ_r's drop reproduced",
    "patch_drop": "patching: drop of θ_o's true-label log-prob",
}
# reading direction: is a high value "like θ_o" (holds D_f)?
HIGH_HOLDS = {"weight_dist_r": True, "weight_dist_o": False, "cka_o": True, "cka_r": False, "probe_acc": True,
              "attribution": True, "patch_recovery": False, "patch_drop": False}


def _d(x: Any) -> dict:
    return x.to_dict() if hasattr(x, "to_dict") else dict(x)


def _num(v) -> float | None:
    return float(v) if v is not None and isinstance(v, (int, float)) and math.isfinite(v) else None


def _trust_text(t: dict | None) -> str:
    if not t or _num(t.get("auc")) is None:
        return "trust AUC: not computed"
    return f"trust AUC {t['auc']:.2f} ({t.get('strength', '')})"


def _per_layer(model: dict, metric: str, layers: list[str]) -> list[float | None]:
    if metric in model:
        vals = model[metric]
    elif metric == "patch_drop":
        p = model.get("patching") or {}
        vals = [None] * len(layers)
        for l, d2 in zip(p.get("layers", []), p.get("drop_model", [])):
            vals[layers.index(l)] = d2
    else:
        vals = [None] * len(layers)
    return [_num(v) for v in vals]


def layer_heatmap(layers: Any, metric: str = "probe_acc", trust: dict | None = None, columns: list[str] | None = None,
                  big: bool = False) -> go.Figure:
    """Rows = layers, columns = models (θ_o and θ_r as reference columns first), colour = `metric`.

    `trust`: {"auc", "strength", "per_layer"} (e.g. `TrustReport.for_heatmap(metric)`); defaults to the
    report's own `trust[metric]` when present. Hover shows the value, the layer's trust AUC and the θ_o / θ_r
    reference values of that layer."""
    rep = _d(layers)
    names = columns or list(rep["models"])
    rows = list(rep["layers"])
    trust = trust or (rep.get("trust") or {}).get(metric)
    z = [[None] * len(names) for _ in rows]
    for j, n in enumerate(names):
        for i, v in enumerate(_per_layer(rep["models"][n], metric, rows)):
            z[i][j] = v
    ref = {n: _per_layer(rep["models"][n], metric, rows) for n in ("original", "retrain") if n in rep["models"]}
    per_layer = (trust or {}).get("per_layer") or []
    custom = []
    for i, l in enumerate(rows):
        row = []
        for n in names:
            o = ref.get("original", [None] * len(rows))[i]
            r = ref.get("retrain", [None] * len(rows))[i]
            a = _num(per_layer[i]) if i < len(per_layer) else None
            row.append([palette.label(n), "–" if o is None else f"{o:.3g}", "–" if r is None else f"{r:.3g}",
                        "–" if a is None else f"{a:.2f}"])
        custom.append(row)
    text = [["" if v is None else f"{v:.2f}" for v in row] for row in z]
    colorscale = "Viridis" if HIGH_HOLDS.get(metric, True) else "Viridis_r"
    label = METRIC_LABELS.get(metric, metric)
    xs = [palette.label(n) for n in names]
    hover = ("<b>%{customdata[0]}</b> · layer %{y}<br>" + label + ": %{customdata[4]}"
             "<br>θ_o: %{customdata[1]} · θ_r: %{customdata[2]}<br>trust AUC of this layer: %{customdata[3]}<extra></extra>")
    fig = go.Figure(go.Heatmap(
        z=z, x=xs, y=rows, text=text, texttemplate="%{text}", colorscale=colorscale, hoverinfo="skip",
        colorbar=dict(title=dict(text="<br>".join(textwrap.wrap(label, 14)), side="top"))))  # trust: in the title
    # plotly cannot select heatmap cells: an invisible square marker on each filled cell carries the hover and
    # makes a click a point selection (the page turns it into "this layer in detail")
    cells = [(i, j) for i in range(len(rows)) for j in range(len(names)) if z[i][j] is not None]
    fig.add_trace(go.Scatter(
        x=[xs[j] for _, j in cells], y=[rows[i] for i, _ in cells], mode="markers", showlegend=False,
        marker=dict(symbol="square", size=34, opacity=0), hovertemplate=hover, name="cells",
        hoverlabel=dict(bgcolor="#333", font_color="white"),
        customdata=[custom[i][j] + [f"{z[i][j]:.4g}"] for i, j in cells]))
    palette.style(fig, title=f"{label} — {_trust_text(trust)}", height=max(260, 110 + 70 * len(rows)), big=big,
                 r=160)  # the colour bar
    fig.update_layout(yaxis=dict(autorange="reversed", title="layer (input → output)"), xaxis=dict(side="bottom"))
    return fig


def depth_bars(layers: Any, trust: dict | None = None, big: bool = False) -> go.Figure:
    """Unlearning depth score per model (activation patching): 1 = erased like a retrain, 0 = intact."""
    rep = _d(layers)
    names = list(rep["models"])
    vals = [_num(rep["models"][n].get("depth")) for n in names]
    fig = go.Figure(go.Bar(
        x=[palette.label(n) for n in names], y=[v if v is not None else 0 for v in vals],
        marker_color=[palette.colour(n) for n in names],
        text=["n/a" if v is None else f"{v:.2f}" for v in vals], textposition="outside", cliponaxis=False,
        hovertemplate="<b>%{x}</b><br>depth score %{y:.3f}<extra></extra>"))
    for y, txt in ((0.0, "intact (θ_o)"), (1.0, "erased like θ_r")):
        fig.add_hline(y=y, line=dict(color="#888", dash="dot"), annotation_text=txt, annotation_position="top left")
    palette.style(fig, title=f"Unlearning depth score (activation patching) — {_trust_text(trust)}", height=380,
                  big=big)
    fig.update_layout(yaxis=dict(title="depth score", range=[-0.05, 1.2]), showlegend=False)
    return fig


def patching_profile(layers: Any, model: str, big: bool = False) -> go.Figure:
    """Per layer: drop of θ_o's true-label log-prob when patched with θ_r's (Δ¹) and the model's (Δ²) activations."""
    rep = _d(layers)
    p = rep["models"][model].get("patching") or {}
    ls = p.get("layers", [])
    fig = go.Figure()
    fig.add_trace(go.Bar(x=ls, y=p.get("drop_retrain", []), name="Δ¹ with θ_r's activations",
                         marker_color=palette.colour("retrain"),
                         hovertemplate="layer %{x}<br>Δ¹ %{y:.3f} nats<extra></extra>"))
    fig.add_trace(go.Bar(x=ls, y=p.get("drop_model", []), name=f"Δ² with {palette.label(model)}'s",
                         marker_color=palette.colour(model),
                         hovertemplate="layer %{x}<br>Δ² %{y:.3f} nats<extra></extra>"))
    thr = _num(p.get("threshold"))
    if thr is not None:
        fig.add_hline(y=thr, line=dict(color="#888", dash="dot"), annotation_text="threshold (layers below ignored)")
    d = _num(p.get("depth"))
    palette.style(fig, title=f"Activation patching into θ_o on D_f — depth {'n/a' if d is None else f'{d:.2f}'}",
                  height=360, big=big)
    fig.update_layout(barmode="group", yaxis=dict(title="drop of true-label log-prob (nats)"),
                      xaxis=dict(title="patched layer"))
    return fig


def trust_bars(trust: Any, big: bool = False) -> go.Figure:
    """Trust AUC of every measure: how well it separates models that hold D_f from models that never saw it."""
    rep = _d(trust)
    entries = sorted(rep["entries"].values(), key=lambda e: -(_num(e.get("auc")) or 0))
    colours = {"strong": "#009E73", "moderate": "#E69F00", "weak": "#999999", "n/a": "#DDDDDD"}
    fig = go.Figure(go.Bar(
        y=[e.get("label", e["measure"]) for e in entries], x=[_num(e.get("auc")) or 0 for e in entries],
        orientation="h", marker_color=[colours.get(e.get("strength"), "#999") for e in entries],
        text=[f"{_num(e.get('auc')) or 0:.2f} {e.get('strength', '')}" for e in entries], textposition="auto",
        customdata=[[e.get("family", ""), len(e.get("holds", [])), len(e.get("never", []))] for e in entries],
        hovertemplate="<b>%{y}</b><br>AUC %{x:.3f} (%{customdata[0]})<br>%{customdata[1]} models hold D_f, "
                      "%{customdata[2]} never saw it<extra></extra>"))
    fig.add_vline(x=0.5, line=dict(color="#444", dash="dot"), annotation_text="coin")
    fig.add_vline(x=0.85, line=dict(color="#009E73", dash="dot"), annotation_text="strong")
    palette.style(fig, title=f"Trust of each measure over {len(rep.get('seeds', []))} seeds", big=big,
                  height=max(300, 80 + 28 * len(entries)))
    fig.update_layout(xaxis=dict(title="AUC (holds D_f vs never saw it)", range=[0, 1.05]),
                      yaxis=dict(autorange="reversed"), showlegend=False)
    return fig


VERDICT_COLOURS = {"clean": "#009E73", "pseudo-converged": "#D55E00", "under-unlearned": "#882255"}  # as core.report


def verdict_rows(verdict: Any) -> list[dict[str, Any]]:
    """One row per model: verdict, the measures that decided it, and the reason in words."""
    rep = _d(verdict)
    return [{"model": palette.label(n), "verdict": v["label"], "decided by": ", ".join(v["decided_by"]) or "–",
             "why": " ".join(v["reasons"])} for n, v in rep["verdicts"].items()]


def spread_figure(verdict: Any, measure: str, big: bool = False) -> go.Figure:
    """One measure: the yardstick retrains (data order only / other init), the spread band, and each model."""
    rep = _d(verdict)
    sp = rep["spreads"][measure]
    fig = go.Figure()
    if _num(sp.get("low")) is not None and _num(sp.get("high")) is not None:
        fig.add_vrect(x0=sp["low"], x1=sp["high"], fillcolor=palette.colour("retrain"), opacity=0.12, line_width=0,
                      annotation_text="retrain spread", annotation_position="top left")
    fig.add_trace(go.Scatter(x=sp.get("order", []), y=["yardstick"] * len(sp.get("order", [])), mode="markers",
                             name="retrain, other data order", marker=dict(symbol="circle-open", size=12,
                                                                           color=palette.colour("retrain")),
                             hovertemplate="other data order: %{x:.4g}<extra></extra>"))
    fig.add_trace(go.Scatter(x=sp.get("init", []), y=["yardstick"] * len(sp.get("init", [])), mode="markers",
                             name="retrain, other initialisation", marker=dict(symbol="diamond-open", size=12,
                                                                               color=palette.colour("retrain")),
                             hovertemplate="other initialisation: %{x:.4g}<extra></extra>"))
    label = measure
    for n, v in rep["verdicts"].items():
        ev = next((e for e in v["evidence"] if e["measure"] == measure), None)
        if ev is None:
            continue
        label = ev.get("label", measure)
        fig.add_trace(go.Scatter(
            x=[ev["value"]], y=[palette.label(n)], mode="markers", name=palette.label(n),
            marker=dict(size=14, color=palette.colour(n), line=dict(color="#222", width=1.5 if ev["beyond"] else 0)),
            hovertemplate=f"<b>{palette.label(n)}</b><br>{label}: %{{x:.4g}}<br>{ev['side']} the spread"
                          f"<br>verdict: {v['label']}<extra></extra>"))
    palette.style(fig, title=label, height=max(260, 120 + 36 * len(rep["verdicts"])), big=big)
    fig.update_layout(xaxis=dict(title=label), yaxis=dict(autorange="reversed"))
    return fig


def layer_rows(layers: Any, layer: str, trust: Any = None) -> list[dict[str, Any]]:
    """The per-layer detail table: one row per measure, one column per model (and the layer's trust AUC)."""
    rep = _d(layers)
    i = rep["layers"].index(layer)
    tr = _d(trust) if trust is not None else None
    rows = []
    for metric, label in METRIC_LABELS.items():
        row: dict[str, Any] = {"measure": label}
        for n, m in rep["models"].items():
            row[palette.label(n)] = _per_layer(m, metric, rep["layers"])[i]
        if tr is not None:
            from core.probes.trust import HEATMAP_TRUST  # the measure behind each heatmap metric

            per = (tr.get("per_layer") or {}).get(metric) or []
            row["trust AUC (this layer)"] = _num(per[i]) if i < len(per) else None
            entry = (tr.get("entries") or {}).get(HEATMAP_TRUST.get(metric, metric)) or {}
            row["trust"] = entry.get("strength", "n/a")
        rows.append(row)
    return rows


def evidence_rows(verdict_of_model: Any) -> list[dict[str, Any]]:
    """One model's verdict evidence: each measure, its value, the retrain spread and whether it decided."""
    v = _d(verdict_of_model)
    return [{"measure": e["label"], "family": e["family"], "value": _num(e["value"]),
             "spread low": _num(e["low"]), "spread high": _num(e["high"]), "side": e["side"],
             "beyond (towards holding D_f)": e["beyond"], "may decide": e["decides"],
             "trust AUC": _num(e.get("trust_auc")), "note": e.get("note", "")} for e in v["evidence"]]
