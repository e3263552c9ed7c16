"""Sample images as a person sees them: pure functions pixels -> plotly traces and figures.

Input: display pixels in [0, 1] (`core.data.display_pixels`), shaped (C, H, W) or (H, W). Three channels are
drawn in true colour (a `go.Image` of 0-255 RGB values); one channel in grey, ink dark on white as the digits are
written. Any other channel count shows its first channel: an image with no agreed colour reading.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import plotly.graph_objects as go


def picture(image: Any) -> np.ndarray:
    """(H, W, 3) uint8 for a colour image, (H, W) floats in [0, 1] for everything else."""
    x = np.asarray(image, dtype=np.float32)
    if x.ndim == 3 and x.shape[0] == 3:
        return np.rint(np.clip(x, 0.0, 1.0).transpose(1, 2, 0) * 255).astype(np.uint8)
    while x.ndim > 2:
        x = x[0]
    return np.atleast_2d(x)  # a flat vector (tabular data) as one row


def picture_bytes(image: Any) -> np.ndarray:
    """uint8 pixels for a plain picture (st.image): colour as RGB, one channel as ink dark on white, as drawn by
    `image_trace`."""
    pic = picture(image)
    return pic if pic.ndim == 3 else np.rint((1.0 - np.clip(pic, 0.0, 1.0)) * 255).astype(np.uint8)


def image_trace(image: Any) -> go.Image | go.Heatmap:
    """One image as a trace: true colour for three channels, a grey heatmap (0 white, 1 black) otherwise."""
    pic = picture(image)
    if pic.ndim == 3:
        return go.Image(z=pic, hovertemplate="pixel (%{x}, %{y}): R %{z[0]} G %{z[1]} B %{z[2]}<extra></extra>")
    return go.Heatmap(z=pic, colorscale="gray_r", zmin=0, zmax=1, showscale=False,
                      hovertemplate="pixel (%{x}, %{y}) = %{z:.2f}<extra></extra>")


def square_axes(fig: go.Figure) -> go.Figure:
    """Image axes: rows downwards, square pixels, no ticks or grid (in place; returns the figure)."""
    fig.update_yaxes(autorange="reversed", showticklabels=False, showgrid=False, zeroline=False)
    fig.for_each_yaxis(lambda ax: ax.update(scaleanchor=ax.anchor or "x"))  # each subplot to its own x axis
    fig.update_xaxes(showticklabels=False, showgrid=False, zeroline=False)
    return fig


def thumbnail_figure(image: Any, size: int = 140) -> go.Figure:
    """A small picture of one sample (the followed sample beside its predictions), without margins."""
    fig = go.Figure(image_trace(image))
    fig.update_layout(height=size, margin=dict(l=0, r=0, t=0, b=0), paper_bgcolor="rgba(0,0,0,0)",
                      plot_bgcolor="rgba(0,0,0,0)")
    return square_axes(fig)
