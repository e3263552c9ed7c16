"""Load test (issue 9): N concurrent browser sessions against the real dashboard server.

`python bench/load.py [--sessions 10]` (or `python bench/run.py --only load`). Starts `streamlit run
dashboard/app.py` headless on a free port with an empty temporary model cache, opens N browser contexts of
one headless Chromium (each an asyncio task, so they really overlap), and in each session:

1. opens the app: the default preset ("Forget the digit 7") runs by itself; waits for the result;
2. presses "Run everything" (the same preset: the shared run, so this measures the round trip);
3. sets its own seed (100 + i) in the sidebar without running it: its own setting;
4. switches through every page, timing each switch until the page's figures have drawn;
5. checks that it still shows its own seed, that its pages show the default run's results, and that no
   page raised an exception.

Budgets (issue 9): all sessions succeed, p95 page switch <= 3 s on 2 cores, server peak RSS <= 4 GB.
Peak RSS: the server's process tree sampled with psutil every 0.2 s, and the kernel's own high-water mark
(VmHWM) of the server process, whichever is larger.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import math
import re
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, Server  # noqa: E402  (the e2e tests' server)
from tests.e2e.test_browser import PAGES, RENDERED  # noqa: E402  (the pages and the "drawn" condition)

RUN_TIMEOUT_MS = 600_000  # N sessions share 2 cores: a cold run waits its turn
SEED0 = 100

# the script run is over and has stayed over for 0.5 s (Streamlit sets data-test-script-state)
IDLE = """() => {
    const app = document.querySelector('[data-testid="stApp"]');
    if (!app || app.getAttribute('data-test-script-state') !== 'notRunning') { window.__idle = null; return false; }
    window.__idle = window.__idle || Date.now();
    return Date.now() - window.__idle > 500;
}"""


@dataclass
class Outcome:
    """What one session saw."""

    index: int
    ok: bool = False
    error: str = ""
    first_result_s: float = 0.0
    run_again_s: float = 0.0
    switches: dict[str, float] = field(default_factory=dict)


async def _idle(page, timeout: int = RUN_TIMEOUT_MS) -> None:
    """Wait for the script run a click started (if it starts at all) to end."""
    try:
        await page.wait_for_function("() => document.querySelector('[data-testid=\"stApp\"]')"
                                     ".getAttribute('data-test-script-state') === 'running'",
                                     timeout=1500, polling=20)
    except Exception:  # noqa: BLE001 - the rerun was already over
        pass
    await page.wait_for_function(IDLE, timeout=timeout, polling=100)


async def _no_exception(page, where: str) -> None:
    n = await page.locator('[data-testid="stException"]').count()
    if n:
        raise AssertionError(f"{where}: {await page.locator('[data-testid=stException]').first.inner_text()}")


async def session(browser, url: str, index: int) -> Outcome:
    out = Outcome(index)
    ctx = await browser.new_context(viewport={"width": 1440, "height": 1400})
    page = await ctx.new_page()
    side = page.locator('[data-testid="stSidebar"]')
    try:
        t0 = time.perf_counter()
        await page.goto(url, timeout=120_000)
        await page.wait_for_selector(".js-plotly-plot", timeout=RUN_TIMEOUT_MS)  # the autorun's first figure
        run_button = side.get_by_role("button", name="Run everything")
        await run_button.wait_for(timeout=RUN_TIMEOUT_MS)  # back once the whole run, analyses too, is done
        await _idle(page)
        out.first_result_s = time.perf_counter() - t0
        await _no_exception(page, "first result")

        t0 = time.perf_counter()
        await run_button.click(timeout=60_000)
        await page.wait_for_timeout(300)
        await _idle(page)
        out.run_again_s = time.perf_counter() - t0

        own = str(SEED0 + index)
        seed = side.locator('[data-testid="stNumberInput"]').filter(has_text="Seed").locator("input")
        await seed.fill(own)
        await seed.press("Enter")
        await _idle(page)

        for label, title, *least in PAGES:  # (label, title[, least number of figures drawn])
            t0 = time.perf_counter()
            await page.locator('[data-testid="stSidebarNav"] a').filter(has_text=label).first.click()
            await page.get_by_role("heading", name=title).first.wait_for(timeout=60_000)
            await page.wait_for_function(RENDERED, timeout=120_000, polling=50)
            out.switches[label] = time.perf_counter() - t0
            await _idle(page, 120_000)
            await _no_exception(page, label)
            drawn = await page.locator(".js-plotly-plot").count()  # RENDERED: each has drawn
            if least and drawn < least[0]:
                raise AssertionError(f"{label}: {drawn} figures drawn, expected at least {least[0]}")
            if label == "Report & export":  # it prints the settings of the run the pages show
                await page.get_by_text("# Residue experiment").first.wait_for(timeout=60_000)
                text = await page.locator('[data-testid="stMain"]').inner_text()
                if not re.search(r"seed 0\b", text):  # the default run this session ran, not another's
                    raise AssertionError("the report page does not show the default run (seed 0)")

        if await seed.input_value() != own:
            raise AssertionError(f"shows seed {await seed.input_value()!r}, not its own {own}")
        out.ok = True
    except Exception as e:  # noqa: BLE001 - a failed session is counted and described, not fatal
        out.error = f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"
    finally:
        await ctx.close()
    return out


class PeakRSS:
    """Samples the resident memory of a process and its children in a background thread."""

    def __init__(self, pid: int, every: float = 0.2):
        import psutil

        self.proc, self.every, self.peak = psutil.Process(pid), every, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        import psutil

        while not self._stop.is_set():
            try:
                procs = [self.proc, *self.proc.children(recursive=True)]
                self.peak = max(self.peak, sum(p.memory_info().rss for p in procs))
            except psutil.Error:
                pass
            self._stop.wait(self.every)

    def stop(self) -> float:
        """Peak in MB."""
        self._stop.set()
        self._thread.join()
        return self.peak / 2**20


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (no interpolation: a reported p95 is a time some switch really took)."""
    s = sorted(values)
    return s[max(0, math.ceil(q * len(s)) - 1)] if s else float("nan")


async def drive(url: str, n: int) -> list[Outcome]:
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            return list(await asyncio.gather(*(session(browser, url, i) for i in range(n))))
        finally:
            await browser.close()


def measure(n: int = 10) -> dict:
    """Start the server with an empty cache, drive n sessions at once, stop it; the figures as a dict."""
    with tempfile.TemporaryDirectory(prefix="residue-load-") as tmp:
        server = Server(Path(tmp) / "cache", Path(tmp) / "server.log")
        rss = PeakRSS(server.proc.pid)
        t0 = time.perf_counter()
        try:
            outcomes = asyncio.run(drive(server.url, n))
        finally:
            wall = time.perf_counter() - t0
            sampled = rss.stop()
            hwm = server.peak_rss_mb()
            server.stop()
    switches = [s for o in outcomes for s in o.switches.values()]
    ok = [o for o in outcomes if o.ok]
    return {
        "sessions": n, "succeeded": len(ok), "wall_s": wall,
        "first_result_s": {"median": statistics.median(o.first_result_s for o in ok) if ok else None,
                           "max": max((o.first_result_s for o in ok), default=None)},
        "run_again_s_median": statistics.median(o.run_again_s for o in ok) if ok else None,
        "page_switch_s": {"n": len(switches), "p50": percentile(switches, 0.50), "p95": percentile(switches, 0.95),
                          "max": max(switches, default=float("nan"))},
        "server_peak_rss_mb": max(sampled, hwm),
        "errors": {o.index: o.error for o in outcomes if not o.ok},
    }


def report(r: dict) -> str:
    ps = r["page_switch_s"]
    lines = [
        f"concurrent sessions            {r['succeeded']} / {r['sessions']} succeeded  (wall {r['wall_s']:.0f} s)",
        f"first result (cold, shared)    median {r['first_result_s']['median'] or float('nan'):.1f} s, "
        f"max {r['first_result_s']['max'] or float('nan'):.1f} s",
        f"Run everything again (warm)    median {r['run_again_s_median'] or float('nan'):.2f} s",
        f"page switch ({ps['n']} switches)     p50 {ps['p50']:.2f} s, p95 {ps['p95']:.2f} s, max {ps['max']:.2f} s"
        f"   (budget p95 <= 3 s)",
        f"server peak RSS                {r['server_peak_rss_mb']:.0f} MB   (budget <= 4096 MB)",
    ]
    lines += [f"session {i} failed: {e}" for i, e in r["errors"].items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, default=10)
    ap.add_argument("--json", help="also write the figures to this file")
    args = ap.parse_args(argv if argv is not None else [])
    print(f"load: {args.sessions} concurrent browser sessions, default preset, empty model cache")
    r = measure(args.sessions)
    print(report(r))
    if args.json:
        Path(args.json).write_text(json.dumps(r, indent=2))


if __name__ == "__main__":
    main(sys.argv[1:])
