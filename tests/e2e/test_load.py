"""The load test in the suite (issue 9), on the shared e2e server: concurrent sessions succeed and stay apart.

The measured one, ten sessions on a cold server with the budgets, is `python bench/load.py`. Here each
session opens the app, waits for the default preset's run, presses "Run everything", sets its own seed,
switches through every page and checks each page's figures, that it still holds its own seed and that its
pages show the default run; every session must succeed.

- Ten websocket sessions (Streamlit's own protocol, no rendering): seconds on a warm server, always run.
- Three browser sessions: three Chromium renderers at once take minutes on two busy cores, so that one runs
  only with RESIDUE_LOAD_TEST=1.
"""
from __future__ import annotations

import asyncio
import os
import sys
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _drive(kind: str, url: str, n: int) -> list:
    sys.path.insert(0, str(ROOT))
    from bench import load

    outcomes: list = []
    # asyncio in its own thread: the sync Playwright API of the `browser` fixture owns this one
    t = threading.Thread(target=lambda: outcomes.extend(asyncio.run(
        {"ws": load.drive_ws, "browser": load.drive_browser}[kind](url, n))))
    t.start()
    t.join()
    errors = {o.index: o.error for o in outcomes if not o.ok}
    assert len(outcomes) == n and not errors, errors
    switches = [s for o in outcomes for s in o.switches.values()]
    assert len(switches) == n * len(load.PAGES)
    print(f"{n} {kind} sessions: page switch p50 {load.percentile(switches, 0.5):.2f} s, "
          f"p95 {load.percentile(switches, 0.95):.2f} s")
    return switches


def test_ten_concurrent_sessions_succeed_and_stay_apart(server):
    switches = _drive("ws", server.url, 10)
    assert max(switches) < 60  # a loose guard against a hang; the budget (p95 3 s) is measured by the bench


@pytest.mark.skipif(not os.environ.get("RESIDUE_LOAD_TEST"), reason="heavy (minutes on 2 shared cores); "
                    "enable with: RESIDUE_LOAD_TEST=1 make test")
def test_three_concurrent_browser_sessions_succeed_and_stay_apart(browser, server):
    _drive("browser", server.url, 3)
