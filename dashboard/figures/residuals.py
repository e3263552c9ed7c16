"""Residual figures: the layer-wise heatmap, the depth score, patching per layer, the measures' control hit
rates, and the verdict's retrain bands.

Pure functions: probe results (the dataclasses of `core.probes` / `core.verdict` or their `to_dict()` form,
as stored in `Results.sections`) in, plotly figures out. Labels, captions and reading directions come from the
probes' own metadata (`ProbeInfo`, carried in the reports), never from a list kept here. No streamlit here.
"""
from __future__ import annotations

import math
from typing import Any

import plotly.graph_objects as go

from core.report import VERDICT_COLOURS  # noqa: F401  (one set of verdict colours, shared with the HTML report)

from . import palette

ROW_PX = 44  # each heatmap row at least this tall (a projector at 720 lines still shows every row's label)


def _d(x: Any) -> dict:
    return x.to_dict() if hasattr(x, "to_dict") else dict(x)


def _num(v) -> float | None:
    return float(v) if v is not None and isinstance(v, (int, float)) and math.isfinite(v) else None


def _fmt(v: Any) -> str:
    v = _num(v)
    return "–" if v is None else f"{v:.3g}"


def measure_label(measures: dict, key: str) -> str:
    """'decodability of the forgotten class at block2' for an evidence key 'decodability@block2'."""
    probe, _, layer = key.partition("@")
    label = (measures.get(probe) or {}).get("label", probe)
    return f"{label} at {layer}" if layer else label


def trust_text(entry: dict | None) -> str:
    """One measure's control hit rates, in words (or that the five-seed controls have not run)."""
    if not entry:
        return "five-seed controls: not run"
    return f"{'passed' if entry.get('passed') else 'FAILED'} its five-seed controls ({entry.get('text', '')})"


def layer_heatmap(layers: Any, metric: str = "decodability", trust: dict | None = None,
                  columns: list[str] | None = None, big: bool = False) -> go.Figure:
    """Rows = layers, columns = models (θ_o and θ_r as reference columns first), colour = `metric`.

    `trust`: evidence key -> control hit rates (`TrustReport.for_key`), shown in each cell's hover. Hover shows
    the value, θ_o's and θ_r's values in that layer, and the raw-input baseline when the measure has one."""
    rep = _d(layers)
    info = rep["measures"].get(metric, {})
    label = info.get("label", metric)
    names = [n for n in (columns or rep["columns"]) if n in rep["values"][metric]]
    vals = rep["values"][metric]
    rows = [l for i, l in enumerate(rep["layers"]) if any(_num(vals[n][i]) is not None for n in names)]
    idx = [rep["layers"].index(l) for l in rows]
    z = [[_num(vals[n][i]) for n in names] for i in idx]
    base = _num((rep.get("baselines") or {}).get(metric))
    xs = [palette.label(n) for n in names]
    custom = []
    for i, l in zip(idx, rows):
        t = (trust or {}).get(f"{metric}@{l}")
        custom.append([[palette.label(n), _fmt(vals.get("original", [None] * (i + 1))[i]),
                        _fmt(vals.get("retrain", [None] * (i + 1))[i]), trust_text(t)] for n in names])
    text = [["" if v is None else f"{v:.2f}" for v in row] for row in z]
    colorscale = "Viridis" if info.get("direction", 1) > 0 else "Viridis_r"  # bright = like θ_o, always
    hover = ("<b>%{customdata[0]}</b> · layer %{y}<br>" + label + ": %{customdata[4]}"
             "<br>θ_o: %{customdata[1]} · θ_r: %{customdata[2]}"
             + (f"<br>raw-input baseline: {base:.3g}" if base is not None else "")
             + "<br>%{customdata[3]}<extra></extra>")
    fig = go.Figure(go.Heatmap(
        z=z, x=xs, y=rows, text=text, texttemplate="%{text}", colorscale=colorscale, hoverinfo="skip",
        textfont=dict(size=18 if big else 12),
        colorbar=dict(title=dict(text=info.get("unit") or "", side="right"), thickness=14)))
    # plotly cannot select heatmap cells: an invisible square marker on each filled cell carries the hover and
    # makes a click a point selection (the page turns it into "this layer in detail")
    cells = [(i, j) for i in range(len(rows)) for j in range(len(names)) if z[i][j] is not None]
    fig.add_trace(go.Scatter(
        x=[xs[j] for _, j in cells], y=[rows[i] for i, _ in cells], mode="markers", showlegend=False,
        marker=dict(symbol="square", size=34, opacity=0), hovertemplate=hover, name="cells",
        hoverlabel=dict(bgcolor="#333", font_color="white"),
        customdata=[custom[i][j] + [f"{z[i][j]:.4g}"] for i, j in cells]))
    title = label + (f" — raw input: {base:.2f}" if base is not None else "")
    row_px = ROW_PX * (1.5 if big else 1)
    palette.style(fig, title=title, height=int(max(300, 200 * (1.5 if big else 1) + row_px * len(rows))), big=big,
                  r=110)  # the colour bar
    fig.update_layout(yaxis=dict(autorange="reversed", title="layer (input → output)", type="category"),
                      xaxis=dict(side="bottom", type="category"))
    return fig


def depth_bars(layers: Any, big: bool = False) -> go.Figure:
    """Unlearning depth score per model (activation patching): 1 = erased like a retrain, 0 = intact, above 1 =
    destroyed more than a retrain (not clipped)."""
    rep = _d(layers)
    names = [n for n in rep["columns"] if n in rep["depth"]]
    vals = [_num(rep["depth"][n]) for n in names]
    top = max([1.2] + [v * 1.15 for v in vals if v is not None])
    fig = go.Figure(go.Bar(
        x=[palette.label(n) for n in names], y=[v if v is not None else 0 for v in vals],
        marker_color=[palette.colour(n) for n in names],
        text=["n/a" if v is None else f"{v:.2f}" for v in vals], textposition="outside", cliponaxis=False,
        hovertemplate="<b>%{x}</b><br>depth score %{y:.3f}<extra></extra>"))
    for y, txt in ((0.0, "intact (θ_o)"), (1.0, "erased like θ_r")):
        fig.add_hline(y=y, line=dict(color="#888", dash="dot"), annotation_text=txt, annotation_position="top left")
    palette.style(fig, title="Unlearning depth score (activation patching)", height=420 if big else 380, big=big)
    fig.update_layout(yaxis=dict(title="depth score", range=[-0.05, top]), showlegend=False)
    return fig


def patching_profile(layers: Any, model: str, big: bool = False) -> go.Figure:
    """Per layer: drop of θ_o's true-label log-prob when patched with θ_r's (Δ¹) and the model's (Δ²) activations."""
    rep = _d(layers)
    p = (rep.get("patching") or {}).get(model) or {}
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
                  height=400 if big else 360, big=big)
    fig.update_layout(barmode="group", yaxis=dict(title="drop of true-label log-prob (nats)"),
                      xaxis=dict(title="patched layer", type="category"))
    return fig


def trust_bars(trust: Any, big: bool = False) -> go.Figure:
    """Each deciding measure's hit rates on the five-seed controls: the constructed pseudo-converged model
    flagged (functional measures) or θ_o flagged (outputs), and the held-out retrains left alone."""
    rep = _d(trust)
    entries = [e for e in rep["entries"].values() if e.get("family") in ("output", "functional")]
    ys = [e["key"].replace("@", " @ ") for e in entries]
    detect = [_num((e.get("rates") or {}).get("pseudo" if e.get("family") == "functional" else "original")) or 0
              for e in entries]
    clean = [_num((e.get("rates") or {}).get("retrains_clean")) or 0 for e in entries]
    fig = go.Figure()
    fig.add_trace(go.Bar(y=ys, x=detect, orientation="h", name="flags the model that holds D_f",
                         marker_color=palette.colour("original"),
                         hovertemplate="<b>%{y}</b><br>flagged in %{x:.0%} of the seeds<extra></extra>"))
    fig.add_trace(go.Bar(y=ys, x=clean, orientation="h", name="leaves held-out retrains alone",
                         marker_color=palette.colour("retrain"),
                         hovertemplate="<b>%{y}</b><br>clean in %{x:.0%} of the retrains<extra></extra>"))
    fig.add_vline(x=0.8, line=dict(color="#444", dash="dot"), annotation_text="needed")
    n = len(rep.get("seeds", []))
    palette.style(fig, title=f"Control hit rates of each measure over {n} seeds", big=big,
                  height=max(340, 130 + (34 if big else 24) * len(entries)), l=230 if big else 170)
    fig.update_layout(barmode="group", xaxis=dict(title="share of controls passed", range=[0, 1.05],
                                                  tickformat=".0%"), yaxis=dict(autorange="reversed"))
    return fig


def _evidence_of(v: dict, key: str) -> dict | None:
    return next((e for e in v.get("evidence", []) if e["key"] == key), None)


def band_figure(verdict: Any, key: str, big: bool = False) -> go.Figure:
    """One measure (or one layer of it): the yardstick retrains, the band, each judged model and each control."""
    rep = _d(verdict)
    band = rep["bands"][key]
    label = measure_label(rep.get("measures", {}), key)
    fig = go.Figure()
    if _num(band.get("low")) is not None and _num(band.get("high")) is not None:
        fig.add_vrect(x0=band["low"], x1=band["high"], fillcolor=palette.colour("retrain"), opacity=0.12,
                      line_width=0, annotation_text="retrain band", annotation_position="top left")
    same_only = band.get("coordinates") == "theta_o"
    for values, name, symbol in ((band.get("order", []), "retrain, θ_o's init, other data order", "circle-open"),
                                 (band.get("init", []), "retrain, other init" + (" (not in this band)" if same_only
                                                                                 else ""), "diamond-open")):
        fig.add_trace(go.Scatter(x=values, y=["yardstick"] * len(values), mode="markers", name=name,
                                 marker=dict(symbol=symbol, size=13, color=palette.colour("retrain")),
                                 hovertemplate=name + ": %{x:.4g}<extra></extra>"))
    rows = list(rep["verdicts"].items()) + list((rep.get("control_verdicts") or {}).items())
    for n, v in rows:
        ev = _evidence_of(v, key)
        if ev is None or _num(ev.get("value")) is None:
            continue
        counted = bool(ev.get("counts") and ev.get("decides"))
        fig.add_trace(go.Scatter(
            x=[ev["value"]], y=[palette.label(n)], mode="markers", name=palette.label(n),
            marker=dict(size=15, color=palette.colour(n), symbol="square" if n.startswith("control") else "circle",
                        line=dict(color="#222", width=2.5 if counted else 0)),
            hovertemplate=f"<b>{palette.label(n)}</b><br>{label}: %{{x:.4g}}<br>{ev['side']} the band"
                          f"<br>{ev.get('status', '')}<br>verdict: {v.get('badge', v['label'])}<extra></extra>"))
    palette.style(fig, title=label, height=max(300, 150 + (46 if big else 34) * (len(rows) + 1)), big=big,
                  l=230 if big else 190)
    fig.update_layout(xaxis=dict(title=label), yaxis=dict(autorange="reversed", type="category"))
    return fig


def verdict_rows(verdict: Any) -> list[dict[str, Any]]:
    """One row per judged model and control: verdict, what decided it (measure, value, band) and why in words."""
    rep = _d(verdict)
    rows = []
    for n, v in list(rep["verdicts"].items()) + list((rep.get("control_verdicts") or {}).items()):
        decided = [_evidence_of(v, k) for k in v["decided_by"]]
        rows.append({"model": palette.label(n), "verdict": v.get("badge", v["label"]),
                     "decided by": "; ".join(f"{measure_label(rep.get('measures', {}), e['key'])} {_fmt(e['value'])} "
                                             f"(band {_fmt(e['low'])}–{_fmt(e['high'])})" for e in decided if e) or "–",
                     "why": " ".join(v["reasons"])})
    return rows


def layer_rows(layers: Any, layer: str, trust: Any = None) -> list[dict[str, Any]]:
    """The per-layer detail table: one row per measure, one column per model (and its control hit rates)."""
    rep = _d(layers)
    i = rep["layers"].index(layer)
    tr = _d(trust) if trust is not None else None
    rows = []
    for metric, vals in rep["values"].items():
        if all(_num(v[i]) is None for v in vals.values()):
            continue
        row: dict[str, Any] = {"measure": rep["measures"].get(metric, {}).get("label", metric),
                               "family": rep["measures"].get(metric, {}).get("family", "")}
        for n in rep["columns"]:
            row[palette.label(n)] = _num(vals[n][i])
        if tr is not None:
            row["five-seed controls"] = trust_text((tr.get("entries") or {}).get(f"{metric}@{layer}"))
        rows.append(row)
    return rows


def evidence_rows(verdict_of_model: Any, trust: Any = None) -> list[dict[str, Any]]:
    """One model's verdict evidence: each measure, its value, the retrain band, what it may conclude and, when a
    trust report is given, the measure's five-seed control hit rates beside it."""
    v = _d(verdict_of_model)
    entries = (_d(trust).get("entries") or {}) if trust is not None else None
    rows = []
    for e in v["evidence"]:
        row = {"measure": e["label"] + (f" @ {e['layer']}" if e.get("layer") else ""), "family": e["family"],
               "value": _num(e["value"]), "band low": _num(e["low"]), "band high": _num(e["high"]),
               "side": e["side"], "towards": e.get("toward") or "–",
               "counts": bool(e.get("counts") and e.get("decides")), "status": e.get("status", "")}
        if entries is not None:
            row["five-seed controls"] = trust_text(entries.get(e["key"])) if e["family"] != "context" else "–"
        rows.append(row)
    return rows
