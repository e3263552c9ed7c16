"""Command-line budget (issue 22): `residue run --config assets/presets/forget_digit_7.toml --report` with an empty
cache against the dashboard's "Run everything" on the same preset (budget: no slower, ±10%), the same command with
a warm cache including imports (budget: at most 5 s), and the dashboard's page switches (AppTest) here and, with
`--before PATH`, in another checkout (budget: no worse than before). `python bench/cli.py [N] [--before PATH]`.

Both sides are timed the same way: a fresh process each, wall time from outside (imports included), each cold run
on its own empty temporary cache, the two interleaved, best of N. The machine is shared: the load average is
printed beside each figure. An end-to-end pipeline has no single FLOP count, so instead of a share of the matmul
peak the peak measured in the same run is printed for scale.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.dashboard import PRESET, _numba_cache, run_everything  # noqa: E402
from bench.timing import load, matmul_peak  # noqa: E402


def cli(cache: str, out: str) -> float:
    """Seconds of `python -m core run --config PRESET --report`, from outside (imports included)."""
    env = dict(os.environ, NUMBA_CACHE_DIR=_numba_cache())
    t = time.perf_counter()
    p = subprocess.run([sys.executable, "-m", "core", "run", "--config", str(PRESET), "--report", "--out", out,
                        "--cache", cache, "--quiet"], capture_output=True, text=True, cwd=ROOT, env=env)
    seconds = time.perf_counter() - t
    if p.returncode != 0 or not (Path(out) / "report.html").exists():
        raise RuntimeError(p.stderr[-3000:])
    return seconds


def dashboard(cache: str) -> float:
    """Seconds of the dashboard's "Run everything" (`bench.dashboard.run_everything`), from outside."""
    t = time.perf_counter()
    r = run_everything(cache)
    if r["error"]:
        raise RuntimeError(r["error"])
    return time.perf_counter() - t


PAGES = """
import json, sys
sys.path.insert(0, sys.argv[1])
from bench.dashboard import page_switches
print(json.dumps(page_switches(sys.argv[2])))
"""


def pages(root: Path, cache: str) -> dict[str, float]:
    """`bench.dashboard.page_switches` of the checkout at `root` (its own code, a fresh process)."""
    env = dict(os.environ, PYTHONPATH=str(root))
    p = subprocess.run([sys.executable, "-c", PAGES, str(root), cache], capture_output=True, text=True, cwd=root,
                       env=env)
    if p.returncode != 0:
        raise RuntimeError(p.stderr[-3000:])
    return json.loads(p.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("n", nargs="?", type=int, default=2, help="cold runs of each side (interleaved; default 2)")
    ap.add_argument("--before", default=None, help="another checkout whose page switches to time beside these")
    args = ap.parse_args()
    print(f"== command line: residue run --config {PRESET.name} --report, against the dashboard's Run everything ==")
    print(f"matmul peak of this run: {matmul_peak() / 1e9:.1f} GFLOP/s ({load()})")
    times: dict[str, list[float]] = {"residue run --report": [], "dashboard Run everything": []}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.n):
            for name in (list(times) if i % 2 == 0 else list(reversed(times))):
                cache = tempfile.mkdtemp(dir=tmp)  # empty: models, shadows, analyses all computed
                s = cli(cache, str(Path(cache) / "out")) if name.startswith("residue") else dashboard(cache)
                times[name].append(s)
                print(f"  cold {i + 1}: {name:28s} {s:7.1f} s   ({load()})")
        a, b = (min(v) for v in times.values())
        ratio = a / b
        print(f"best of {args.n}: command line {a:.1f} s, dashboard {b:.1f} s: ratio {ratio:.2f} "
              f"(budget 1.10: {'met' if ratio <= 1.10 else 'MISSED'})")
        warm = []
        for i in range(3):
            warm.append(cli(cache, str(Path(cache) / "out")))  # the last cold cache: models and analyses stored
            print(f"  warm {i + 1}: residue run --report {warm[-1]:7.2f} s   ({load()})")
        print(f"warm cache, imports included, best of 3: {min(warm):.2f} s "
              f"(budget 5 s: {'met' if min(warm) <= 5 else 'MISSED'})")
        roots = {"after (this checkout)": ROOT, **({"before": Path(args.before)} if args.before else {})}
        found = {}
        for label, root in roots.items():  # each on its own warm model cache, its analyses computed by its code
            found[label] = pages(root, cache)
            print(f"  page switches measured: {label} ({load()})")
        print("page switch after one app run (AppTest, seconds):")
        print(f"    {'page':40s}" + "".join(f"{label:>24s}" for label in found))
        for page in next(iter(found.values())):
            print(f"    {page:40s}" + "".join(f"{v.get(page, float('nan')):24.2f}" for v in found.values()))


if __name__ == "__main__":
    main()
