"""Presentation mode as a projector shows it: every story step at 1280x720 and 1400x900, measured in the page.

For each figure of each step the browser reports what plotly drew: the figure's and the plot area's size, each
title's width, the heatmap's row height, where a legend and a colour bar's title sit. The test fails on a figure
shorter than its minimum, a heatmap row under 40 px, a title wider than its figure, an axis title cut off, a
legend over the plot area of a square ROC, or a colour-bar title over its tick labels; the screenshots land in
tests/artifacts/ (story-<width>-<step>.png) for a person to look at.
"""
from __future__ import annotations

import json

import pytest

from test_browser import ARTIFACTS, RENDERED, idle, no_exceptions, sidebar  # noqa: E402 (tests/e2e is on the path)

VIEWPORTS = [(1280, 720), (1400, 900)]
MIN_HEIGHT = 320  # px: no figure on a projector is a strip
MIN_ROW = 40  # px per heatmap row

MEASURE = """() => [...document.querySelectorAll('[data-testid="stMain"] .js-plotly-plot')].map(p => {
    const L = p._fullLayout, box = p.getBoundingClientRect();
    const svg = p.querySelector('.main-svg').getBoundingClientRect();
    const rect = el => el ? el.getBoundingClientRect() : null;
    const within = r => !r || (r.left >= svg.left - 1 && r.right <= svg.right + 1 && r.top >= svg.top - 1
                               && r.bottom <= svg.bottom + 1);
    const overlaps = (a, b) => a && b && a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;
    const heat = (p.data || []).find(t => t.type === 'heatmap');
    const cbTitle = rect(p.querySelector('.colorbar .cbtitle'));
    const cbTicks = [...p.querySelectorAll('.colorbar .cbaxis text, .colorbar text.ytick, .colorbar .ytick text')]
        .map(rect).filter(Boolean);
    const legend = rect(p.querySelector('.legend'));
    const axisTitles = [...p.querySelectorAll('.xtitle, .ytitle, .g-xtitle text, .g-ytitle text')].map(rect);
    const notes = [...p.querySelectorAll('.annotation-text')].map(rect).filter(Boolean);
    const legendTexts = [...p.querySelectorAll('.legend .legendtext')].map(rect).filter(Boolean);
    const legendBox = legend;
    const plot = rect(p.querySelector('.nsewdrag'));
    const key = (p.closest('[class*="st-key-fig"]') || {className: ''}).className.match(/st-key-fig-?([\\w-]*)/);
    return {
        key: key ? key[1] : '?', width: box.width, height: box.height,
        plotW: L.xaxis ? L.xaxis._length : L._size.w, plotH: L.yaxis ? L.yaxis._length : L._size.h,
        title: (rect(p.querySelector('.gtitle')) || {width: 0}).width,
        titleInside: within(rect(p.querySelector('.gtitle'))),
        axisTitlesInside: [...p.querySelectorAll('.xtitle, .ytitle')].every(t => within(rect(t))),
        rows: heat ? new Set(heat.y).size : 0,
        cbOverTicks: cbTicks.some(t => overlaps(cbTitle, t)),
        legendOverPlot: overlaps(legend, plot),
        legendOverAxisTitle: axisTitles.some(t => overlaps(legend, t)),
        notesOverlap: notes.some((a, i) => notes.some((b, j) => i < j && overlaps(a, b))),
        legendCut: legendTexts.some(t => legendBox && t.right > legendBox.right + 1),
        square: !!(L.yaxis && L.yaxis.scaleanchor === 'x'),
    };
})"""


@pytest.mark.parametrize("width,height", VIEWPORTS)
def test_story_in_presentation_mode_is_readable(browser, server, width, height):
    ctx = browser.new_context(viewport={"width": width, "height": height})
    page = ctx.new_page()
    page.goto(server.url)
    page.wait_for_selector(".js-plotly-plot", timeout=240_000)
    idle(page)
    sidebar(page).get_by_text("Presentation mode").click()
    idle(page)
    report = {}
    for step in range(5):
        page.locator('[data-testid="stMain"] [data-testid="stButtonGroup"] button').nth(step).click()
        idle(page, 120_000)
        page.wait_for_function(RENDERED, timeout=60_000, polling=100)
        no_exceptions(page)
        page.wait_for_timeout(300)
        page.screenshot(path=str(ARTIFACTS / f"story-{width}-{step + 1}.png"), full_page=True)
        plots = page.locator('[data-testid="stMain"] .js-plotly-plot')
        for i in range(plots.count()):  # the main area scrolls inside the page: each figure on its own
            plots.nth(i).screenshot(path=str(ARTIFACTS / f"story-{width}-{step + 1}-fig{i + 1}.png"))
        figs = page.evaluate(MEASURE)
        report[step + 1] = figs
        assert figs, f"step {step + 1}: no figure"
        for f in figs:
            where = f"step {step + 1}, {width}x{height}, figure {f['key']}"
            assert f["height"] >= MIN_HEIGHT, (where, f)
            assert f["title"] <= f["width"] + 1 and f["titleInside"], (where, "title wider than its figure", f)
            assert f["axisTitlesInside"], (where, "an axis title is cut off", f)
            assert not f["cbOverTicks"], (where, "the colour bar's title covers its tick labels", f)
            assert not f["legendOverAxisTitle"], (where, "the legend covers an axis title", f)
            assert not f["notesOverlap"], (where, "two titles or notes overlap", f)
            assert not f["legendCut"], (where, "a legend entry is cut off", f)
            if f["rows"]:
                assert f["plotH"] / f["rows"] >= MIN_ROW, (where, f"{f['plotH'] / f['rows']:.0f} px per row", f)
            if f["square"]:
                assert abs(f["plotW"] - f["plotH"]) <= 2, (where, "the ROC is not square", f)
                assert f["plotW"] >= 300, (where, "the ROC is squeezed", f)
                assert not f["legendOverPlot"], (where, "the legend covers the curves", f)
        if step == 4:  # the verdicts, under the attacker's picture
            assert page.locator(".residue-badge").count() >= 2
    (ARTIFACTS / f"story-{width}.json").write_text(json.dumps(report, indent=1))
    ctx.close()
