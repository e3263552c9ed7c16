"""A reduced load test in the suite: three browser sessions at once on the shared e2e server (issue 9).

The full one, ten sessions on a cold server with the budgets, is `python bench/load.py`. Here each session
opens the app, runs the default preset, sets its own seed, switches through every page and checks it still
shows its own seed and the default run; all three must succeed. On the session's server the default run
is usually warm already (the walkthrough ran it). Even so, three sessions switching pages at once on two
busy cores took minutes, over the suite's ~60 s allowance, so it runs only with RESIDUE_LOAD_TEST=1.
"""
from __future__ import annotations

import asyncio
import os
import sys
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(not os.environ.get("RESIDUE_LOAD_TEST"), reason="heavy (minutes on 2 shared cores); the load "
                    "test is bench/load.py; RESIDUE_LOAD_TEST=1 runs this reduced one in the suite")
def test_three_concurrent_sessions_succeed_and_stay_apart(browser, server):
    pytest.importorskip("psutil")
    sys.path.insert(0, str(ROOT))
    from bench.load import drive, percentile

    outcomes: list = []
    # Playwright's async API in its own thread: the sync API of the `browser` fixture owns this one
    t = threading.Thread(target=lambda: outcomes.extend(asyncio.run(drive(server.url, 3))))
    t.start()
    t.join()
    errors = {o.index: o.error for o in outcomes if not o.ok}
    assert len(outcomes) == 3 and not errors, errors
    switches = [s for o in outcomes for s in o.switches.values()]
    print(f"3 sessions: page switch p50 {percentile(switches, 0.5):.2f} s, p95 {percentile(switches, 0.95):.2f} s")
    assert percentile(switches, 0.95) < 15  # a loose guard here; the budget (3 s) is measured by the bench
