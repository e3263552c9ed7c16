"""Single-figure export that carries the settings that made it.

PNG: rendered by kaleido (headless Chromium), with the config TOML, seed and config hash written into
iTXt metadata chunks (read them with e.g. `exiftool` or PIL's `Image.open(p).text`).
HTML: a standalone page (plotly.js inline, works offline) with the caption, seed and the config TOML.
"""
from __future__ import annotations

import html
import struct
import threading
import warnings
import zlib

import plotly.graph_objects as go

_kaleido_lock = threading.Lock()
_kaleido_started = False


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_with_text(png: bytes, items: dict[str, str]) -> bytes:
    """Insert UTF-8 iTXt chunks right after IHDR (the first chunk)."""
    if png[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG")
    ihdr_len = struct.unpack(">I", png[8:12])[0]
    cut = 8 + 12 + ihdr_len
    extra = b"".join(_chunk(b"iTXt", k.encode("latin-1") + b"\x00\x00\x00\x00\x00" + v.encode("utf-8"))
                     for k, v in items.items())
    return png[:cut] + extra + png[cut:]


def png_text(png: bytes) -> dict[str, str]:
    """Read back the iTXt chunks (for tests and for anyone checking a figure's provenance)."""
    out, pos = {}, 8
    while pos < len(png):
        n = struct.unpack(">I", png[pos:pos + 4])[0]
        kind, data = png[pos + 4:pos + 8], png[pos + 8:pos + 8 + n]
        if kind == b"iTXt":
            key, rest = data.split(b"\x00", 1)
            _lang, rest = rest[2:].split(b"\x00", 1)  # after compression flag and method
            _translated, text = rest.split(b"\x00", 1)
            out[key.decode("latin-1")] = text.decode("utf-8")
        pos += 12 + n
    return out


def _settings_items(settings_toml: str, seed: int, title: str) -> dict[str, str]:
    return {"Title": title, "Software": "Residue", "residue:seed": str(seed), "residue:config": settings_toml}


def to_png(fig: go.Figure, settings_toml: str, seed: int, title: str, width: int = 1200, height: int | None = None,
           scale: float = 2.0) -> bytes:
    """PNG bytes of a figure with the settings in its metadata. Starts one shared Chromium on first use."""
    global _kaleido_started
    import kaleido

    with _kaleido_lock:
        if not _kaleido_started:
            kaleido.start_sync_server(silence_warnings=True)
            _kaleido_started = True
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            raw = fig.to_image(format="png", width=width, height=height or int(fig.layout.height or 520),
                               scale=scale)
    return png_with_text(raw, _settings_items(settings_toml, seed, title))


def to_html(fig: go.Figure, settings_toml: str, seed: int, title: str, caption: str = "") -> str:
    """A standalone HTML page: the figure (plotly.js inline), its caption, and the settings that made it."""
    body = fig.to_html(full_html=False, include_plotlyjs=True, config={"displaylogo": False, "responsive": True})
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)} - Residue</title>
<meta name="generator" content="Residue"><meta name="residue-seed" content="{seed}">
<style>body{{font-family:Inter,Segoe UI,Helvetica,Arial,sans-serif;max-width:1200px;margin:2em auto;color:#222}}
pre{{background:#f6f6f4;padding:1em;overflow:auto}} .cap{{color:#444;font-size:1.05em}}</style></head>
<body><h1>{html.escape(title)}</h1>
<p class="cap">{html.escape(caption)}</p>
{body}
<details><summary>Settings that reproduce this figure (seed {seed})</summary>
<pre id="residue-config">{html.escape(settings_toml)}</pre>
<p>Run them again: save as <code>config.toml</code>, then <code>python -m core run --config config.toml</code>,
or load the file in the dashboard's sidebar.</p></details>
</body></html>
"""
