"""Results -> one self-contained HTML report (works offline, no server).

plotly.js is embedded once in the page head; each figure is stored as its JSON and drawn with
`Plotly.newPlot`, so the file opens anywhere and every figure stays interactive. The settings that
reproduce the run (config TOML with its seed) are part of the page and of its metadata.

    from core.report import ReportFigure, render_report
    html = render_report(results, [ReportFigure("Overview", "Accuracy", "What you see...", fig)], toml)

The engine knows nothing of the dashboard: the caller builds the figures (the dashboard passes the same
panels its pages show) and hands them over as plotly figures or their dicts.
"""
from __future__ import annotations

import datetime as _dt
import html
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .results import Results

VERDICT_COLOURS = {"clean": "#009E73", "pseudo-converged": "#D55E00", "under-unlearned": "#882255",
                   "over-unlearned": "#AA4499", "no verdict": "#777777"}


@dataclass
class ReportFigure:
    section: str
    title: str
    caption: str
    figure: Any  # a plotly Figure, or its dict (`fig.to_dict()`)


def _fig_json(fig: Any) -> str:
    if hasattr(fig, "to_json"):
        return fig.to_json()
    return json.dumps(fig)


def _fmt(v: Any, pct: bool = False) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "–"
    if isinstance(v, float):
        return f"{v:.1%}" if pct else f"{v:.4g}"
    return html.escape(str(v))


def _metrics_table(results: Results) -> str:
    head = ("<tr><th>model</th><th>role</th><th>forget acc</th><th>retain acc</th><th>test acc</th>"
            "<th>seconds</th><th>× retrain</th><th>KL to θ<sub>r</sub></th><th>status</th></tr>")
    rows = []
    for m in results.models:
        rows.append(f"<tr><td><b>{html.escape(m.name)}</b></td><td>{m.role}</td><td>{_fmt(m.forget_acc, True)}</td>"
                    f"<td>{_fmt(m.retain_acc, True)}</td><td>{_fmt(m.test_acc, True)}</td><td>{_fmt(m.seconds)}</td>"
                    f"<td>{_fmt(m.ratio_to_retrain)}</td><td>{_fmt(m.kl_to_retrain)}</td>"
                    f"<td>{html.escape(m.status)}</td></tr>")
    return f"<table class='metrics'>{head}{''.join(rows)}</table>"


def _badges(rows: list[dict]) -> str:
    items = []
    for v in rows:
        label = str(v.get("verdict", "?"))
        colour = VERDICT_COLOURS.get(label.split(",")[0], "#555")
        why = html.escape(str(v.get("reason", "")))
        extra = f" <span class='muted'>(expected: {html.escape(v['expected'])} — " \
                f"{'passed' if v.get('passed') else 'FAILED'})</span>" if "expected" in v else ""
        items.append(f"<li><span class='badge' style='background:{colour}'>{html.escape(label)}</span> "
                     f"<b>{html.escape(str(v.get('method', '')))}</b>{extra} <span class='muted'>{why}</span></li>")
    return f"<ul class='verdict'>{''.join(items)}</ul>"


def _verdict_block(verdict: list[dict] | None, warnings: list[str]) -> str:
    warn = "".join(f"<p class='warn'><b>Warning.</b> {html.escape(w)}</p>" for w in warnings)
    if not verdict:
        return warn + "<p class='muted'>No verdict in this report (the verdict module did not run).</p>"
    models = [v for v in verdict if "expected" not in v]
    controls = [v for v in verdict if "expected" in v]
    out = warn + _badges(models)
    if controls:
        passed = sum(bool(v.get("passed")) for v in controls)
        out += (f"<h3>This run's controls: {passed} of {len(controls)} passed</h3><p class='muted'>Models whose "
                "verdict is known by construction, judged with the same rule: θ_o must be under-unlearned, θ_o with "
                "only its last layer retrained on D_r pseudo-converged, retrains held out of the yardstick clean."
                "</p>" + _badges(controls))
    return out


_CSS = """
body{font-family:Inter,Segoe UI,Helvetica,Arial,sans-serif;color:#222;max-width:1180px;margin:0 auto;padding:1.5em}
h1{font-size:2.1em;margin-bottom:0.1em} h2{border-bottom:2px solid #0072B2;padding-bottom:0.2em;margin-top:2em}
.muted{color:#666} .warn{background:#fff4e5;border-left:4px solid #E69F00;padding:0.5em 0.8em} .cap{background:#f6f6f2;border-left:4px solid #0072B2;padding:0.5em 0.8em;color:#333}
table.metrics{border-collapse:collapse;width:100%;font-size:0.95em} table.metrics td,table.metrics th{
border-bottom:1px solid #ddd;padding:0.35em 0.5em;text-align:right} table.metrics td:first-child,
table.metrics th:first-child, table.metrics td:nth-child(2){text-align:left}
.badge{display:inline-block;color:white;border-radius:1em;padding:0.1em 0.7em;font-weight:600}
ul.verdict{list-style:none;padding-left:0} ul.verdict li{margin:0.4em 0}
pre{background:#f6f6f4;padding:1em;overflow:auto;font-size:0.9em} .fig{min-height:380px}
nav a{margin-right:1em}
"""


def render_report(results: Results, figures: list[ReportFigure], settings_toml: str,
                  verdict: list[dict] | None = None, title: str = "Residue report: is the data really gone?",
                  notes: list[str] | None = None) -> str:
    """The whole report as one HTML string (plotly.js inline once; figures interactive).

    `verdict`: one row per model {"method", "verdict", "reason"}; rows with "expected" (and "passed") are this
    run's controls, listed apart."""
    from plotly.offline import get_plotlyjs

    seed = results.config.get("seed", "?")
    stamp = _dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    split = results.split
    sections: dict[str, list[tuple[int, ReportFigure]]] = {}
    for i, f in enumerate(figures):
        sections.setdefault(f.section or "Figures", []).append((i, f))
    body, scripts = [], []
    for section, items in sections.items():
        anchor = "s-" + "".join(ch if ch.isalnum() else "-" for ch in section.lower())
        body.append(f"<h2 id='{anchor}'>{html.escape(section)}</h2>")
        for i, f in items:
            body.append(f"<h3>{html.escape(f.title)}</h3><div id='fig{i}' class='fig'></div>"
                        f"<p class='cap'><b>What you are looking at.</b> {html.escape(f.caption)}</p>")
            scripts.append(f"(function(){{var f={_fig_json(f.figure)};"
                           f"Plotly.newPlot('fig{i}',f.data,f.layout,{{displaylogo:false,responsive:true}});}})();")
    toc = " ".join(f"<a href='#s-{''.join(ch if ch.isalnum() else '-' for ch in s.lower())}'>{html.escape(s)}</a>"
                   for s in sections)
    note_html = "".join(f"<p class='muted'>Note: {html.escape(n)}</p>" for n in (notes or []) + results.notes)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>{html.escape(title)}</title>
<meta name="generator" content="Residue"><meta name="residue-seed" content="{html.escape(str(seed))}">
<meta name="residue-config-hash" content="{html.escape(results.config_hash)}">
<style>{_CSS}</style>
<script type="text/javascript">{get_plotlyjs()}</script>
</head><body>
<h1>{html.escape(title)}</h1>
<p class="muted">Generated {stamp} · seed {html.escape(str(seed))} · config {html.escape(results.config_hash[:12])} ·
device {html.escape(results.device)} · train {split.get('train')} / forget {split.get('forget')} /
retain {split.get('retain')} / test {split.get('test')} samples</p>
<nav><a href="#verdict">Verdict</a> <a href="#numbers">Numbers</a> {toc} <a href="#settings">Settings</a></nav>
<h2 id="verdict">Verdict</h2>
{_verdict_block(verdict, results.warnings)}
{note_html}
<h2 id="numbers">Numbers</h2>
{_metrics_table(results)}
{''.join(body)}
<h2 id="settings">Settings that reproduce this report</h2>
<p>Save as <code>config.toml</code> and run <code>python -m core run --config config.toml</code>, or load it in the
dashboard's sidebar (seed {html.escape(str(seed))}).</p>
<pre id="residue-config">{html.escape(settings_toml)}</pre>
<script type="text/javascript">{''.join(scripts)}</script>
</body></html>
"""


def write_report(path: str | Path, *args, **kwargs) -> Path:
    p = Path(path)
    p.write_text(render_report(*args, **kwargs), encoding="utf-8")
    return p
