"""Dashboard budgets (issue 7), measured: "Run everything" on the default preset with an empty and a warm
model cache, page-switch time after the run, and peak RSS. `python bench/run.py --only dashboard`.

"Run everything" runs as the dashboard runs it (`dashboard.state`'s job over `core.analysis.Pipeline`:
experiment, then every analysis it computes by default, then the views' warm-up), each in a fresh process so nothing is memoised in memory: cold = an empty
temporary RESIDUE_CACHE (models, shadows, yardstick retrains and UMAP projections all computed; numba's
compiled UMAP code stays in its usual cache, since the server compiles it once per install at start-up),
then the same directory with only the models (the analyses' result cache removed), then with models and
analyses cached (what a restarted server finds for a run it has seen). Page switches go through Streamlit's
AppTest after one run of the app (the server's share), then through the real server in headless Chromium
(what a person waits for): each page
visited `ROUNDS` times after the run, timed in the page from the click event to the frame where every figure
has drawn (`tests/e2e/test_browser.CLICK_TIMER`), and from outside with the harness's own latency added.
"""
from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PRESET = ROOT / "assets" / "presets" / "forget_digit_7.toml"

RUN_EVERYTHING = r"""
import json, os, resource, sys, time
sys.path.insert(0, sys.argv[1])
t0 = time.perf_counter()
from core.analysis import Pipeline
from core.cache import ModelStore
from core.config import load_config
from dashboard import state, warmup
from dashboard.analyses import methods
t1 = time.perf_counter()
config = load_config(sys.argv[2])
pipeline = Pipeline(config, store=ModelStore())
stages = {}
job = state.Job(pipeline.key, lambda j: state.build_run(pipeline, state._Runs(), j, warmup.warm))
last = [None, time.perf_counter()]
def watch(e):
    stage = e.stage.split(":")[1].strip().split(" (")[0] if e.stage.startswith("analysis:") else "experiment"
    if stage != last[0]:
        now = time.perf_counter()
        if last[0] is not None:
            stages[last[0]] = stages.get(last[0], 0.0) + now - last[1]
        last[:] = [stage, now]
job.progress = job.progress.__class__(lambda e: (job._on_event(e), watch(e)))
t2 = time.perf_counter()
job.start().thread.join()
t3 = time.perf_counter()
if last[0] is not None:
    stages[last[0]] = stages.get(last[0], 0.0) + t3 - last[1]
stages.pop("done", None)
print(json.dumps({"import": t1 - t0, "run_everything": t3 - t2, "error": job.error, "stages": stages,
                  "failed": job.run.failed if job.run else None, "methods": methods(job.run) if job.run else None,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

PAGES = sorted(p.stem for p in (ROOT / "dashboard" / "pages").glob("*.py") if not p.stem.startswith("_"))


def _numba_cache() -> str:
    from core.cache import default_root

    return os.environ.get("NUMBA_CACHE_DIR", str(default_root() / "numba"))


def run_everything(cache: str, config: Path = PRESET) -> dict:
    """"Run everything" on a config file in a fresh process with the model cache `cache`: seconds and stages."""
    env = dict(os.environ, RESIDUE_CACHE=cache, NUMBA_CACHE_DIR=_numba_cache())
    out = subprocess.run([sys.executable, "-c", RUN_EVERYTHING, str(ROOT), str(config)], capture_output=True,
                         text=True, cwd=ROOT, env=env)
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def page_switches(cache: str) -> dict[str, float]:
    """Seconds per page switch after one app run of the default preset (AppTest, this process)."""
    import resource

    os.environ.update(NUMBA_CACHE_DIR=_numba_cache(), RESIDUE_CACHE=cache, RESIDUE_AUTORUN="1")
    os.environ.pop("RESIDUE_PRESETS_DIR", None)
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "dashboard" / "app.py"), default_timeout=600)
    t = time.perf_counter()
    at.run()
    first = time.perf_counter() - t
    out = {"first visit (app run, warm cache)": first}
    for page in PAGES:
        t = time.perf_counter()
        at.switch_page(f"pages/{page}.py").run()
        out[page] = time.perf_counter() - t
        if at.exception:
            out[page] = float("nan")
    out["peak RSS of this process, MB"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


ROUNDS = 3  # browser visits per page: the first after the run, then repeats
SETTLE_S = 20  # after the run's result shows, its background warm-up of the figures has long finished


def browser_switches(cache: str, rounds: int = ROUNDS) -> dict[str, list[tuple[float, float]]] | str:
    """Per page, (in-page, harness) seconds for each visit, the first one straight after the run; or why not."""
    sys.path.insert(0, str(ROOT))
    try:
        from playwright.sync_api import sync_playwright

        from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, Server
        from tests.e2e.test_browser import CLICK_TIMER, PAGES, switch_page
    except ImportError as e:
        return f"skipped: {e}"
    if not Path(CHROMIUM).exists():
        return f"skipped: no {CHROMIUM}"
    out: dict[str, list[tuple[float, float]]] = {label: [] for label, *_ in PAGES}
    with tempfile.TemporaryDirectory() as tmp:
        server = Server(Path(cache), Path(tmp) / "server.log")
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                page = browser.new_page(viewport={"width": 1440, "height": 900})
                page.add_init_script(CLICK_TIMER)
                page.goto(server.url)
                page.get_by_role("button", name="Run everything").wait_for(timeout=600_000)
                page.wait_for_selector(".js-plotly-plot", timeout=600_000)
                time.sleep(SETTLE_S)
                for _ in range(rounds):
                    for label, title, _least in PAGES:
                        out[label].append(switch_page(page, label, title))
                        time.sleep(0.7)
                browser.close()
        finally:
            server.stop()
    return out


def report_switches(found: dict[str, list[tuple[float, float]]] | str) -> None:
    if isinstance(found, str):
        print(f"    {found}")
        return
    print(f"    {'page':28s} {'first visit':>12s} {'repeat median':>14s} {'repeat max':>11s}   harness: first, max")
    for label, v in found.items():
        inside = [a for a, _ in v]
        print(f"    {label[:28]:28s} {inside[0]:10.2f} s {statistics.median(inside[1:]):12.2f} s "
              f"{max(inside[1:]):9.2f} s   {v[0][1]:.2f}, {max(b for _, b in v):.2f} s")
    worst = max(a for v in found.values() for a, _ in v)
    print(f"    slowest switch {worst:.2f} s in the page (budget 1 s: {'met' if worst <= 1 else 'MISSED'}); "
          f"{sum(a > 1 for v in found.values() for a, _ in v)} of {sum(map(len, found.values()))} visits over 1 s")


def main() -> None:
    print("== dashboard: Run everything on the default preset (forget the digit 7) through the service layer ==")
    print(f"cpus {os.cpu_count()}, preset {PRESET.name}")
    with tempfile.TemporaryDirectory() as cache:
        for label in ("cold (empty cache)", "models cached, new process", "models + analyses cached, new process"):
            if label.startswith("models cached"):
                shutil.rmtree(Path(cache) / "results", ignore_errors=True)
            r = run_everything(cache)
            print(f"{label:40s} {r['run_everything']:7.1f} s  (imports {r['import']:.1f} s, "
                  f"peak RSS {r['peak_rss_mb']:.0f} MB){'  ERROR ' + r['error'] if r['error'] else ''}")
            for stage, s in sorted(r["stages"].items(), key=lambda kv: -kv[1]):
                print(f"    {stage:40s} {s:6.2f} s")
            if r["failed"]:
                print(f"    failed: {r['failed']}")
        print("page switch after the run (AppTest, includes the sidebar and the page script):")
        for page, s in page_switches(cache).items():
            print(f"    {page:40s} {s:6.2f}" + ("" if "MB" in page else " s"))
        print(f"page switch in the browser (real server, headless Chromium, {ROUNDS} visits per page; in the page "
              "from the click to every figure drawn):")
        report_switches(browser_switches(cache))


if __name__ == "__main__":
    main()
