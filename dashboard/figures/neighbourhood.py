"""Perturbation neighbourhood (RURK residual knowledge): pure functions data -> plotly Figure.

Inputs are the dataclasses of `core.attacks.residual` or their `to_dict()` (what Results keep):
`ResidualSweep` -> `recognition_figure`, `ratio_figure`; `DecisionRegions` -> `decision_regions_figure`;
`PerturbedExamples` -> `perturbed_strip_figure`.
"""
from __future__ import annotations

import math
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from . import palette, samples

_KIND_DASH = {"random": "solid", "pgd": "dash"}
_KIND_LABEL = {"random": "random", "pgd": "adversarial (PGD)"}
_CLASS_COLOURS = ["#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7", "#999999",
                  "#882255", "#44AA99", "#117733", "#DDCC77"]


def _d(obj: Any) -> dict:
    return obj.to_dict() if hasattr(obj, "to_dict") else dict(obj)


def _norm_label(norm: str) -> str:
    return {"l2": "L2", "linf": "L∞"}.get(norm, norm)


def recognition_figure(sweep, big: bool = False, kinds: tuple[str, ...] = ("random", "pgd")) -> go.Figure:
    """Recognition rate on perturbed forget samples vs radius τ: one colour per model, random solid, PGD dashed."""
    s = _d(sweep)
    fig = go.Figure()
    for kind in kinds:
        rates = s["random_rate"] if kind == "random" else s["pgd_rate"]
        for name in s["models"]:
            fig.add_trace(go.Scatter(
                x=s["radii"], y=rates[name], mode="lines+markers", name=f"{palette.label(name)} · {_KIND_LABEL[kind]}",
                legendgroup=name, line=dict(color=palette.colour(name), width=2.5, dash=_KIND_DASH[kind]),
                marker=dict(size=6 if kind == "random" else 7, symbol="circle" if kind == "random" else "diamond"),
                hovertemplate=(f"<b>{palette.label(name)}</b> ({_KIND_LABEL[kind]})<br>τ = %{{x:.3g}}"
                               "<br>recognised %{y:.1%}<extra></extra>")))
    palette.style(fig, height=460 if big else 400, big=big, t=80)  # two legend rows
    fig.update_xaxes(title_text=f"perturbation radius τ ({_norm_label(s['norm'])})")
    fig.update_yaxes(title_text="forget samples recognised", tickformat=".0%", range=[-0.03, 1.03])
    return fig


def ratio_figure(sweep, big: bool = False) -> go.Figure:
    """r_τ = rate(θ_u) / rate(θ_r) vs τ (log axis), random solid and PGD dashed; 1 = no residual knowledge.

    Where θ_r recognised nothing the ratio uses a one-count floor: drawn as an open marker ("at least")."""
    s = _d(sweep)
    fig = go.Figure()
    colour = palette.colour(s["target"])
    for kind, key in (("random", "r_random"), ("pgd", "r_pgd")):
        ys, floored = s[key], s[f"{key}_floored"]
        fig.add_trace(go.Scatter(
            x=s["radii"], y=ys, mode="lines+markers", name=f"r_τ · {_KIND_LABEL[kind]}",
            line=dict(color=colour, width=2.5, dash=_KIND_DASH[kind]),
            marker=dict(size=8, symbol=["circle-open" if f else "circle" for f in floored]),
            customdata=["≥ (θ_r recognised none; one-count floor)" if f else "" for f in floored],
            hovertemplate="τ = %{x:.3g}<br>r_τ = %{y:.3g} %{customdata}<extra></extra>"))
    fig.add_hline(y=1.0, line=dict(color="#888", dash="dot"), annotation_text="no residual knowledge (r_τ = 1)",
                  annotation_position="bottom right")
    palette.style(fig, height=380 if big else 320, big=big)
    fig.update_xaxes(title_text=f"perturbation radius τ ({_norm_label(s['norm'])})")
    fig.update_yaxes(title_text=f"r_τ = rate({s['target']}) / rate(θ_r)", type="log")
    return fig


def _ball(center: list[float], radius: float, norm: str) -> tuple[list[float], list[float]]:
    cx, cy = center
    if norm == "linf":
        return ([cx - radius, cx + radius, cx + radius, cx - radius, cx - radius],
                [cy - radius, cy - radius, cy + radius, cy + radius, cy - radius])
    t = [2 * math.pi * i / 96 for i in range(97)]
    return [cx + radius * math.cos(a) for a in t], [cy + radius * math.sin(a) for a in t]


def decision_regions_figure(regions, big: bool = False) -> go.Figure:
    """Each model's predicted class around one 2-D forget sample (one panel per model), the sample as a star and
    its τ-ball outlined."""
    r = _d(regions)
    names = list(r["predictions"])
    n_classes = 1 + max(max(max(row) for row in r["predictions"][n]) for n in names)
    n_classes = max(n_classes, r["label"] + 1, len(r.get("class_names") or []))
    class_names = r.get("class_names") or [str(c) for c in range(n_classes)]
    fig = make_subplots(rows=1, cols=len(names), subplot_titles=[palette.label(n) for n in names],
                        horizontal_spacing=0.05)
    # a discrete colour scale: class c -> its colour over [c, c+1) / n_classes
    scale = []
    for c in range(n_classes):
        col = _CLASS_COLOURS[c % len(_CLASS_COLOURS)]
        scale += [[c / n_classes, col], [(c + 1) / n_classes, col]]
    bx, by = _ball(r["center"], r["radius"], r["norm"])
    for i, name in enumerate(names, start=1):
        z = r["predictions"][name]
        conf = r["confidence"][name]
        fig.add_trace(go.Heatmap(
            x=r["xs"], y=r["ys"], z=z, zmin=-0.5, zmax=n_classes - 0.5, colorscale=scale, showscale=False, opacity=0.8,
            customdata=conf, text=[[class_names[v] if v < len(class_names) else str(v) for v in row] for row in z],
            hovertemplate=("x=%{x:.3g}, y=%{y:.3g}<br>predicts %{text}<br>"
                           f"p(label {class_names[r['label']]}) = %{{customdata:.2f}}<extra>{palette.label(name)}</extra>")),
            row=1, col=i)
        fig.add_trace(go.Scatter(x=bx, y=by, mode="lines", line=dict(color="#222", width=2, dash="dot"),
                                 showlegend=i == 1, name=f"τ-ball ({_norm_label(r['norm'])}, τ = {r['radius']:.3g})",
                                 hoverinfo="skip"), row=1, col=i)
        fig.add_trace(go.Scatter(x=[r["center"][0]], y=[r["center"][1]], mode="markers",
                                 marker=dict(symbol="star", size=16, color="white", line=dict(color="#222", width=2)),
                                 showlegend=i == 1, name=f"forget sample (label {class_names[r['label']]})",
                                 hovertemplate="the forget sample<extra></extra>"), row=1, col=i)
    palette.style(fig, height=440 if big else 380, big=big)
    fig.update_layout(legend=dict(y=-0.12, yanchor="top"), margin=dict(b=80))
    fig.update_xaxes(constrain="domain", showgrid=False)
    fig.update_yaxes(showgrid=False)
    for i in range(1, len(names) + 1):  # equal scales, so the L2 ball is a circle in every panel
        fig.layout[f"yaxis{'' if i == 1 else i}"].scaleanchor = f"x{'' if i == 1 else i}"
    return fig


def perturbed_strip_figure(examples, big: bool = False) -> go.Figure:
    """The sample and a few perturbed copies (display pixels: true colour for three channels, grey for one), with
    each model's prediction under each copy (✓ = still recognised as the sample's label)."""
    e = _d(examples)
    images = e["images"]
    n = len(images)
    titles = []
    for k in e["kinds"]:
        titles.append("clean" if k == "clean" else ("random" if k == "random" else f"PGD for {k.split(':', 1)[1]}"))
    fig = make_subplots(rows=1, cols=n, subplot_titles=titles, horizontal_spacing=0.02)
    for j, img in enumerate(images, start=1):
        fig.add_trace(samples.image_trace(img), row=1, col=j)
    samples.square_axes(fig)
    # predictions under each image, one line per model in its colour
    names = list(e["predictions"])
    notes = []
    for j in range(n):
        dom = fig.layout[f"xaxis{'' if j == 0 else j + 1}"].domain
        xc = (dom[0] + dom[1]) / 2
        for i, name in enumerate(names):
            pred, conf = e["predictions"][name][j], e["confidence"][name][j]
            mark = "✓" if pred == e["label"] else "✗"
            notes.append(dict(x=xc, y=0, yshift=-6 - (22 if big else 17) * i, xref="paper", yref="paper",
                              showarrow=False, xanchor="center", yanchor="top",
                              text=f"{palette.label(name)}: {pred} {mark}",
                              font=dict(color=palette.colour(name), size=14 if big else 11),
                              hovertext=f"p(label {e['label']}) = {conf:.2f}"))
    fig.update_layout(annotations=[*fig.layout.annotations, *notes])  # at once: add_annotation re-checks them all
    palette.style(fig, height=(300 if big else 250) + 28 * len(names), big=big)
    fig.update_layout(margin=dict(b=40 + 30 * len(names), t=90), showlegend=False,
                      title=dict(text=f"label {e['label']} · τ = {e['radius']:.3g} ({_norm_label(e['norm'])})", x=0.01))
    return fig


def sample_rows(sweep, k: int) -> list[dict]:
    """Per forget sample at radius index k: the share of random copies each model recognises and whether the
    adversary found a recognised copy; samples where θ_u beats θ_r the most come first."""
    s = _d(sweep)
    rows = []
    for i, sid in enumerate(s["sample_ids"]):
        row = {"sample": int(sid)}
        for name in s["models"]:
            row[f"{palette.label(name)} · random"] = s["per_sample_random"][name][k][i]
        for name in s["models"]:
            row[f"{palette.label(name)} · PGD"] = "✓" if s["per_sample_pgd"][name][k][i] else "✗"
        row["_gap"] = s["per_sample_random"][s["target"]][k][i] - s["per_sample_random"][s["reference"]][k][i]
        rows.append(row)
    rows.sort(key=lambda r: -r["_gap"])
    for r in rows:
        r.pop("_gap")
    return rows
