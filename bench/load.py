"""Load test (issue 9): N concurrent sessions against the real dashboard server.

`python bench/load.py [--sessions 10] [--client ws|browser]` (or `python bench/run.py --only load`). Starts
`streamlit run dashboard/app.py` headless on a free port with an empty temporary model cache, then drives N
sessions at once (each an asyncio task, so they really overlap). In each session:

1. open the app: the default preset ("Forget the digit 7") runs by itself; wait for the result;
2. press "Run everything" (the same preset: the shared run, so this measures the round trip);
3. set its own seed (100 + i) in the sidebar without running it: its own setting;
4. switch through every page, timing each switch;
5. check that it still has its own setting, that its pages show the default run's results (seed 0, every
   figure there), and that no page raised an exception.

Two kinds of client:
- `ws` (default): each session speaks Streamlit's own websocket protocol, as the browser's JavaScript does
  (BackMsg rerun requests with widget states out, ForwardMsg deltas in). A page switch is timed from the
  request to the script's "finished" message, after every element of the page has arrived: the server's
  share of a page switch, which is what N sessions contend for.
- `browser`: one headless Chromium with N contexts, timed until every figure has drawn. On one 2-core
  machine the N renderers compete with the server for the same cores, so this measures Chromium as much
  as the server (one session alone switches pages in under a second in the browser).

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


def _shows_default_run(text: str) -> None:
    """The report page prints the settings of the run the pages show: the default run (seed 0) that every
    session ran, never another session's own seed."""
    if not re.search(r"seed 0\b", text):
        raise AssertionError("the report page does not show the default run (seed 0)")


def _described(e: Exception) -> str:
    """A failed session's one line (it is counted and described, not fatal)."""
    return f"{type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}"


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
                _shows_default_run(await page.locator('[data-testid="stMain"]').inner_text())

        if await seed.input_value() != own:
            raise AssertionError(f"shows seed {await seed.input_value()!r}, not its own {own}")
        out.ok = True
    except Exception as e:  # noqa: BLE001 - a failed session is counted and described, not fatal
        out.error = _described(e)
    finally:
        await ctx.close()
    return out


# ---------------------------------------------------------------------------------------------
# websocket sessions: Streamlit's protocol without a browser
# ---------------------------------------------------------------------------------------------
@dataclass
class Element:
    """What a client needs of one element of a script run: its kind, text and widget id."""

    kind: str  # "heading", "markdown", "plotly_chart", "button", "exception", ...
    text: str = ""
    id: str = ""
    proto: object = None


class WsSession:
    """One dashboard session over Streamlit's websocket, driven the way the browser drives it."""

    def __init__(self, url: str):
        self.url = url.replace("http://", "ws://") + "/_stcore/stream"
        self.pages: dict[str, str] = {}  # page name -> page_script_hash
        self.page = ""  # the current page's hash
        self.widgets: dict[str, object] = {}  # widget id -> WidgetState this session set (sent with every rerun)
        self.elements: list[Element] = []  # of the last finished script run
        self._conn = None
        self._queue: asyncio.Queue = asyncio.Queue()
        self._reader = None

    async def open(self) -> None:
        from websockets.asyncio.client import connect

        self._conn = await connect(self.url, subprotocols=["streamlit"], max_size=None, open_timeout=60)
        self._reader = asyncio.create_task(self._read())

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()
        if self._reader is not None:
            self._reader.cancel()

    async def _read(self) -> None:
        """Group ForwardMsgs into script runs: a run starts with new_session and ends with script_finished."""
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        elements: list[Element] = []
        async for data in self._conn:
            msg = ForwardMsg()
            msg.ParseFromString(data)
            kind = msg.WhichOneof("type")
            if kind == "new_session":
                elements = []
                self._names(msg.new_session.app_pages)
                self.page = msg.new_session.page_script_hash or self.page
            elif kind == "navigation":
                self._names(msg.navigation.app_pages)
                self.page = msg.navigation.page_script_hash or self.page
            elif kind == "delta" and msg.delta.WhichOneof("type") == "new_element":
                elements.append(_element(msg.delta.new_element))
            elif kind == "script_finished":
                status = ForwardMsg.ScriptFinishedStatus.Name(msg.script_finished)
                await self._queue.put((status, elements, time.perf_counter()))

    def _names(self, app_pages) -> None:
        for p in app_pages:
            self.pages[p.page_name] = p.page_script_hash

    async def rerun(self, page: str | None = None, trigger: str | None = None) -> None:
        """Ask for a script run (what a click does): on `page`, with a button `trigger`ed."""
        from streamlit.proto.BackMsg_pb2 import BackMsg
        from streamlit.proto.WidgetStates_pb2 import WidgetState

        back = BackMsg()
        state = back.rerun_script
        state.page_script_hash = self.pages.get(page, self.page) if page else self.page
        state.widget_states.widgets.extend(self.widgets.values())
        if trigger:
            state.widget_states.widgets.append(WidgetState(id=trigger, trigger_value=True))
        await self._conn.send(back.SerializeToString())

    async def finished(self, timeout: float, until=lambda els: True) -> float:
        """Wait for a successful script run whose elements satisfy `until`; the time it finished."""
        deadline = time.perf_counter() + timeout
        while True:
            status, elements, t = await asyncio.wait_for(self._queue.get(), max(0.1, deadline - time.perf_counter()))
            if status == "FINISHED_SUCCESSFULLY" and until(elements):
                self.elements = elements
                return t

    def find(self, kind: str, text: str) -> Element | None:
        return next((e for e in self.elements if e.kind == kind and text in e.text), None)

    def set_number(self, label: str, value: int) -> None:
        from streamlit.proto.WidgetStates_pb2 import WidgetState

        el = self.find("number_input", label)
        if el is None:
            raise AssertionError(f"no number input {label!r} on the page")
        self.widgets[el.id] = WidgetState(id=el.id, int_value=value)


def _element(el) -> Element:
    kind = el.WhichOneof("type")
    body = getattr(el, kind)
    text = next((getattr(body, f) for f in ("body", "label", "message", "code_text") if hasattr(body, f)), "")
    return Element(kind, str(text), getattr(body, "id", ""), body)


def _run_done(els: list[Element]) -> bool:
    """The whole run is over: "Run everything" is back (no Stop) and figures are there."""
    return (any(e.kind == "button" and e.text == "Run everything" for e in els)
            and any(e.kind == "plotly_chart" for e in els))


async def ws_session(url: str, index: int) -> Outcome:
    out = Outcome(index)
    s = WsSession(url)
    try:
        t0 = time.perf_counter()
        await s.open()
        await s.rerun()
        out.first_result_s = await s.finished(RUN_TIMEOUT_MS / 1000, _run_done) - t0

        t0 = time.perf_counter()
        await s.rerun(trigger=s.find("button", "Run everything").id)
        out.run_again_s = await s.finished(RUN_TIMEOUT_MS / 1000, _run_done) - t0

        own = SEED0 + index
        s.set_number("Seed", own)
        await s.rerun()
        await s.finished(120)

        for label, title, *least in PAGES:
            name = next((n for n in s.pages if n == label or n.startswith(label)), None)
            if name is None:
                raise AssertionError(f"no page {label!r} in {sorted(s.pages)}")
            t0 = time.perf_counter()
            await s.rerun(page=name)
            out.switches[label] = await s.finished(120, lambda els: any(
                e.kind == "heading" and e.text == title for e in els)) - t0
            exc = next((e for e in s.elements if e.kind == "exception"), None)
            if exc is not None:
                raise AssertionError(f"{label}: {exc.text}")
            figures = sum(e.kind == "plotly_chart" for e in s.elements)
            if least and figures < least[0]:
                raise AssertionError(f"{label}: {figures} figures, expected at least {least[0]}")
            text = "\n".join(e.text for e in s.elements)
            if "settings differ from this run" not in text:  # its own seed is still set, not another's run
                raise AssertionError(f"{label}: the sidebar no longer holds this session's own seed")
            if label == "Report & export":
                _shows_default_run(text)
        seed = s.find("number_input", "Seed")  # where the server says which value it holds, it is this session's
        if seed is None or (seed.proto.set_value and int(seed.proto.value) != own):
            raise AssertionError(f"the seed input no longer holds {own}")
        out.ok = True
    except Exception as e:  # noqa: BLE001 - a failed session is counted and described, not fatal
        out.error = _described(e)
    finally:
        await s.close()
    return out


async def drive_ws(url: str, n: int) -> list[Outcome]:
    return list(await asyncio.gather(*(ws_session(url, i) for i in range(n))))



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


async def drive_browser(url: str, n: int) -> list[Outcome]:
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            return list(await asyncio.gather(*(session(browser, url, i) for i in range(n))))
        finally:
            await browser.close()


def measure(n: int = 10, client: str = "ws") -> dict:
    """Start the server with an empty cache, drive n sessions at once, stop it; the figures as a dict."""
    with tempfile.TemporaryDirectory(prefix="residue-load-") as tmp:
        server = Server(Path(tmp) / "cache", Path(tmp) / "server.log")
        rss = PeakRSS(server.proc.pid)
        t0 = time.perf_counter()
        try:
            outcomes = asyncio.run({"ws": drive_ws, "browser": drive_browser}[client](server.url, n))
        finally:
            wall = time.perf_counter() - t0
            sampled = rss.stop()
            hwm = server.peak_rss_mb()
            server.stop()
    switches = [s for o in outcomes for s in o.switches.values()]
    ok = [o for o in outcomes if o.ok]
    return {
        "sessions": n, "client": client, "succeeded": len(ok), "wall_s": wall,
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
        f"concurrent {r['client']} sessions{' ' * (11 - len(r['client']))}{r['succeeded']} / {r['sessions']} succeeded  "
        f"(wall {r['wall_s']:.0f} s)",
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
    ap.add_argument("--client", choices=["ws", "browser"], default="ws",
                    help="Streamlit's websocket protocol (the server's share) or headless Chromium (with rendering)")
    ap.add_argument("--json", help="also write the figures to this file")
    args = ap.parse_args(argv if argv is not None else [])
    print(f"load: {args.sessions} concurrent {args.client} sessions, default preset, empty model cache")
    r = measure(args.sessions, args.client)
    print(report(r))
    if args.json:
        Path(args.json).write_text(json.dumps(r, indent=2))


if __name__ == "__main__":
    main(sys.argv[1:])
