"""The real dashboard server and headless Chromium, for the browser tests (marker `e2e`).

Skipped with a reason when /usr/bin/chromium or Playwright is missing. The server gets its own
temporary model cache, so a run starts cold exactly as on a fresh machine.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("RESIDUE_CHROMIUM", "/usr/bin/chromium")  # tools/ensure_browser.sh reads the same
ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update"]


def pytest_collection_modifyitems(items):
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.fspath)).parent == here:
            item.add_marker(pytest.mark.e2e)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, cache: Path, log: Path):
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        from core.cache import default_root

        # a cold model cache; UMAP's compiled code stays where an installed server keeps it (compiled once)
        env = dict(os.environ, RESIDUE_CACHE=str(cache), RESIDUE_AUTORUN="1",
                   NUMBA_CACHE_DIR=os.environ.get("NUMBA_CACHE_DIR", str(default_root() / "numba")))
        env.pop("RESIDUE_PRESETS_DIR", None)
        self.log = log
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "dashboard/app.py", "--server.headless", "true",
             "--server.port", str(self.port), "--server.address", "127.0.0.1",
             "--browser.gatherUsageStats", "false"],
            cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited early:\n{log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.3)
        raise RuntimeError(f"server did not start:\n{log.read_text()[-2000:]}")

    def peak_rss_mb(self) -> float:
        """Peak resident memory of the server process (VmHWM), in MB."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing; enable with: sudo make test (or apt-get install chromium chromium-driver)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed; enable with: "
                                   "pip install -e '.[test]'")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="session")
def server(browser, tmp_path_factory):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    s = Server(tmp_path_factory.mktemp("e2e-cache"), ARTIFACTS / "server.log")
    yield s
    s.stop()
