"""The report's figures (plotly, written as PNG through kaleido, or HTML where no renderer runs): pure
functions of the aggregated records."""
from __future__ import annotations

import warnings
from pathlib import Path

from .aggregate import Runs, avg_gap, group_targets, mean, stats
from .grid import CONTROL_NAMES, FEATURES, TITLES

def _err(vals: list[list[float]]) -> tuple[list[float], list[float]]:
    s = [stats(v) for v in vals]
    return [x[0] for x in s], [x[1] for x in s]


def figures(runs: Runs, out: Path, fmt: str, caption: str) -> list[str]:
    """The report's figures as PNG (plotly + kaleido) or HTML; returns the file names written."""
    if fmt == "none":
        return []
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    figs: dict[str, go.Figure] = {}
    scs = runs.scenarios()
    # 1. avg gap per method
    f = make_subplots(1, len(scs), subplot_titles=[TITLES[s] for s in scs])
    for i, sc in enumerate(scs):
        names = [n for n in runs.models(sc) if n not in ("original", "retrain")]
        m, s = _err([avg_gap(runs, sc, n) for n in names])
        f.add_bar(x=names, y=m, error_y={"array": s}, row=1, col=i + 1, showlegend=False, marker_color="#4c78a8")
    f.update_yaxes(title_text="avg gap to retrain (UA, RA, TA, MIA-eff)", col=1)
    figs["fig1_quality_gap"] = f
    # 2. leak AUC per feature
    lk = [s for s in scs if runs.get(s, "leak_single")]
    f = make_subplots(1, max(len(lk), 1), subplot_titles=[TITLES[s] for s in lk])
    for i, sc in enumerate(lk):
        series = {"retrain single": runs.get(sc, "leak_single", "none")}
        for t in group_targets(runs, sc):
            series[f"{t} group"] = runs.get(sc, "leak_group", t, "none")
        for j, (label, vals) in enumerate(series.items()):
            m, s = _err([[v[ft] for v in vals] for ft in [*FEATURES, "basic_mia"]])
            f.add_bar(x=[*FEATURES, "basic_mia"], y=m, error_y={"array": s}, name=label, row=1, col=i + 1,
                      showlegend=i == 0, marker_color=["#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2"][j % 5])
    f.add_hline(y=0.5, line_dash="dot")
    f.update_yaxes(title_text="attack AUC", col=1)
    figs["fig2_leak"] = f
    # 3. ReA vs best prior
    f = make_subplots(1, len(scs), subplot_titles=[TITLES[s] for s in scs])
    for i, sc in enumerate(scs):
        names = runs.models(sc, "rea")
        m, s = _err([runs.get(sc, "rea", n, "rea", "acc") for n in names])
        f.add_bar(x=names, y=m, error_y={"array": s}, name="ReA", row=1, col=i + 1, showlegend=i == 0,
                  marker_color="#e45756")
        m, s = _err([[p[b]["acc"] for p, b in zip(runs.get(sc, "rea", n, "prior"), runs.get(sc, "rea", n, "best"))]
                     for n in names])
        f.add_bar(x=names, y=m, error_y={"array": s}, name="best prior", row=1, col=i + 1, showlegend=i == 0,
                  marker_color="#4c78a8")
    f.add_hline(y=0.5, line_dash="dot")
    f.update_yaxes(title_text="attack accuracy (best threshold)", col=1)
    figs["fig3_rea"] = f
    # 4. residual share vs radius
    f = make_subplots(1, len(scs), subplot_titles=[TITLES[s] for s in scs])
    for i, sc in enumerate(scs):
        radii = runs.first(sc, "rurk")["radii"]
        for j, n in enumerate(runs.models(sc, "rurk")):
            m, s = _err([[v[k] for v in runs.get(sc, "rurk", n, "share")] for k in range(len(radii))])
            f.add_scatter(x=radii, y=m, error_y={"array": s}, mode="lines+markers", name=n, row=1, col=i + 1,
                          showlegend=i == 0, line={"width": 3 if n == "rurk" else 1.5},
                          legendgroup=n, marker_color=_palette(j))
        f.update_xaxes(title_text=f"τ ({runs.first(sc, 'rurk')['norm']})", row=1, col=i + 1)
    f.add_hline(y=0.07, line_dash="dot")
    f.update_yaxes(title_text="share of D_f with residual knowledge", col=1)
    figs["fig4_rurk"] = f
    # 5. pseudo-convergence scatter
    f = go.Figure()
    symbols = {"class": "circle", "sample": "square", "moons": "diamond"}  # beyond the band: > 1
    for sc in scs:
        names = [n for n in runs.models(sc, "pseudo") if n != "retrain"]  # the controls mark the corners
        xs = [mean(runs.get(sc, "pseudo", n, "out")) for n in names]
        ys = [mean(runs.get(sc, "pseudo", n, "res")) for n in names]
        f.add_scatter(x=xs, y=ys, mode="markers+text", text=[CONTROL_NAMES.get(n, n) for n in names],
                      textposition="top center", textfont={"size": 9},
                      name=TITLES[sc], marker={"symbol": symbols.get(sc, "circle"), "size": 10})
    for x in (-1, 1):
        f.add_vline(x=x, line_dash="dot")
    f.add_hline(y=1, line_dash="dot")
    f.update_xaxes(title_text="output distance from the retrain band / half-width (negative: away from θ_o)")
    f.update_yaxes(title_text="residual distance (towards 'holds D_f') / half-width")
    f.add_annotation(x=0, y=1, xref="x", yref="y", text="pseudo-converged ↑", showarrow=False, yshift=12)
    figs["fig5_pseudo"] = f
    for name, fig in figs.items():
        fig.update_layout(template="plotly_white", width=1400 if name != "fig5_pseudo" else 900, height=520,
                          margin={"b": 150}, font={"size": 12})
        fig.add_annotation(text=caption, xref="paper", yref="paper", x=0, y=-0.42, showarrow=False, xanchor="left",
                           font={"size": 10, "color": "#555"})
    return _write(figs, out, fmt)


def _write(figs: dict, out: Path, fmt: str) -> list[str]:
    """PNG through one shared kaleido (headless Chromium) server; a figure that cannot be rendered as PNG
    (no Chromium, a renderer error) is written as HTML instead, and said so."""
    written = []
    server = False
    if fmt in ("png", "auto"):
        try:
            import kaleido

            kaleido.start_sync_server(silence_warnings=True)
            server = True
        except Exception as e:  # noqa: BLE001 - no kaleido / Chromium: HTML figures
            print(f"science: no PNG renderer ({type(e).__name__}); figures as HTML", flush=True)
    try:
        for name, fig in figs.items():
            path = out / f"science_{name}.png"
            try:
                if not server:
                    raise RuntimeError("no renderer")
                with warnings.catch_warnings():  # plotly's notices about kaleido's API
                    warnings.simplefilter("ignore")
                    fig.write_image(str(path), scale=1)
            except Exception as e:  # noqa: BLE001 - fall back to HTML for this figure
                if server:
                    print(f"science: {name} as HTML ({type(e).__name__}: {e})", flush=True)
                path = out / f"science_{name}.html"
                fig.write_html(str(path), include_plotlyjs="cdn")
            written.append(path.name)
    finally:
        if server:
            import kaleido

            kaleido.stop_sync_server(silence_warnings=True)
    return written


def _palette(i: int) -> str:
    colors = ["#4c78a8", "#f58518", "#e45756", "#72b7b2", "#54a24b", "#eeca3b", "#b279a2", "#ff9da6", "#9d755d",
              "#bab0ac", "#1f77b4", "#d62728"]
    return colors[i % len(colors)]

