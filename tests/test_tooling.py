"""`make test` is what CI runs: the browser is installed when the machine can, and a run that skipped a suite
ends with one line naming it and the command that enables it."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_a_run_without_the_browser_ends_with_the_skipped_suites_and_how_to_enable_them():
    env = dict(os.environ, RESIDUE_CHROMIUM="/nonexistent/chromium", PYTHONPATH=str(ROOT))
    env.pop("RESIDUE_LOAD_TEST", None)
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/e2e/test_load.py"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout[-2000:]
    last = out.stdout.strip().splitlines()[-1]
    assert last.startswith("skipped suites: tests/e2e/test_load.py (/nonexistent/chromium is missing; enable with: "
                           "sudo make test"), last
    assert "enable with: RESIDUE_LOAD_TEST=1 make test" in last


def test_ensure_browser_never_fails_the_run_and_says_what_it_could_not_do():
    """A chromium path other than Debian's is never apt-installed (the branch a non-root machine takes)."""
    script = str(ROOT / "tools" / "ensure_browser.sh")
    out = subprocess.run([script], env=dict(os.environ, RESIDUE_CHROMIUM="/nonexistent/chromium"),
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0
    assert "browser tests will be skipped" in out.stderr
    present = subprocess.run([script], env=dict(os.environ, RESIDUE_CHROMIUM=sys.executable), capture_output=True,
                             text=True, timeout=30)
    assert present.returncode == 0 and present.stdout == present.stderr == ""
