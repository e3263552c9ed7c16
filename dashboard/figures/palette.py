"""One palette for every figure: original, retrained and each method keep their colour everywhere.

Okabe-Ito colours (colour-blind safe); θ_o is always black-ish, θ_r always blue.
"""
from __future__ import annotations

import plotly.io as pio

# every figure starts from this template: set once here, since assigning a template to each figure copies
# and validates the whole template (about 15 ms a figure, most of a simple figure's build time)
pio.templates.default = "plotly_white"

ORIGINAL = "#222222"
RETRAINED = "#0072B2"
_METHOD_COLOURS = ["#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#882255", "#44AA99",
                   "#999933", "#AA4499", "#117733", "#DDCC77"]
# the verdict's controls: θ_o in its own colour, the constructed pseudo-converged model grey, held-out retrains in
# pale shades of θ_r's blue
_FIXED = {"original": ORIGINAL, "retrain": RETRAINED, "retrained": RETRAINED, "control: θ_o": ORIGINAL,
          "control: head-only": "#7F7F7F", "control: retrain, other order": "#6BAED6",
          "control: retrain, other init": "#9ECAE1"}
# every registered method gets a stable colour by its place in this list (unknown names hash in)
METHOD_ORDER = ["finetune", "gradient_ascent", "neggrad_plus", "random_label", "l1_sparse", "salun", "scrub", "ssd",
                "orthogonal_replay", "rurk", "sisa"]
FONT = "Inter, Segoe UI, Helvetica, Arial, sans-serif"


def colour(name: str) -> str:
    """Colour of a model by its name or role; labelled variants ("finetune#2") share the method's hue."""
    if name in _FIXED:
        return _FIXED[name]
    base = name.split("#")[0].split(" ")[0]
    if base in METHOD_ORDER:
        return _METHOD_COLOURS[METHOD_ORDER.index(base) % len(_METHOD_COLOURS)]
    return _METHOD_COLOURS[sum(map(ord, base)) % len(_METHOD_COLOURS)]


def label(name: str) -> str:
    return {"original": "original θ_o", "retrain": "retrained θ_r"}.get(name, name)


def _margins(big: bool = False, **wider: int) -> dict:
    """Margins wide enough for our tick labels, axis titles and top legend, so plotly's automargin (kept as a
    safety net) rarely has to grow them: each time it does, the browser draws the whole figure twice, which
    doubled the drawing time of most figures. `wider`: a figure's own needs (a colour bar on the right)."""
    scale = 1.5 if big else 1.0
    base = dict(l=90, r=30, t=50, b=70) | wider
    return {k: int(v * scale) for k, v in base.items()}


def style(fig, title: str | None = None, height: int | None = None, big: bool = False, **wider: int):
    """Shared layout: readable fonts (projector-sized in presentation mode), white background, legend on top."""
    fig.update_layout(
        font=dict(family=FONT, size=20 if big else 13),
        **({"title_font_size": 24, "legend_font_size": 18} if big else {}),
        # the title at the very top, the legend between it and the plot (two legend rows fit)
        title=dict(text=title, x=0.01, y=0.99, yanchor="top") if title else None,
        margin=_margins(big, **({"t": 110} if title else {}) | wider),
        legend=dict(orientation="h", yanchor="bottom", y=1.02, xanchor="left", x=0),
        **({"height": height} if height else {}),
    )
    return fig


# classes (data points, per-class bars) use Paul Tol's muted scheme, distinct from the model colours
_CLASS_COLOURS = ["#88CCEE", "#CC6677", "#DDCC77", "#117733", "#332288", "#AA4499", "#44AA99", "#999933",
                  "#882255", "#661100"]


def class_colour(c: int) -> str:
    """Colour of a data class (scatter points, per-class bars); forgotten samples get an outline instead."""
    return _CLASS_COLOURS[int(c) % len(_CLASS_COLOURS)]
