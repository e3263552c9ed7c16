"""Reproducibility (issue 9): what an exported report or results file says reproduces its numbers.

The auditor's path: take the settings printed in an exported HTML report (or the resolved config in
results.json), run them in a fresh process with an empty model cache, and get every metric bit for bit.
(Same config, two processes: tests/test_engine.py::test_metrics_same_seed_same_numbers_across_processes.)
"""
from __future__ import annotations

import html
import json
import re
import subprocess
import sys
from pathlib import Path

from core.config import dumps, from_dict, loads
from core.report import render_report
from core.results import Results

ROOT = Path(__file__).resolve().parents[1]
METRICS = ("forget_acc", "retain_acc", "test_acc", "forget_loss", "kl_to_retrain", "js_to_retrain", "status")


def _run(config: Path, out: Path, cache: Path) -> dict:
    p = subprocess.run([sys.executable, "-m", "core", "run", "--config", str(config), "--out", str(out),
                        "--cache", str(cache), "--device", "cpu", "--quiet"],
                       capture_output=True, text=True, cwd=ROOT)
    assert p.returncode == 0, p.stderr
    return json.loads((out / "results.json").read_text())


def _numbers(results: dict) -> dict:
    return {m["name"]: tuple(m[k] for k in METRICS) for m in results["models"]}


def test_the_exported_report_reproduces_its_numbers(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text("seed = 3\n[data]\nname = 'digits'\n[data.forget]\nclasses = [2]\n[recipe]\nepochs = 2\n"
                   "[[methods]]\nname = 'gradient_ascent'\nepochs = 1\n")
    first = _run(cfg, tmp_path / "a", tmp_path / "cache-a")

    # the report a stakeholder receives, and the settings it prints
    results = Results.from_dict(first)
    page = render_report(results, [], dumps(from_dict(results.config)))
    toml = html.unescape(re.search(r'<pre id="residue-config">(.*?)</pre>', page, re.S).group(1))
    assert loads(toml).hash() == results.config_hash == from_dict(first["config"]).hash()
    assert f'content="{results.config_hash}"' in page
    (tmp_path / "from-report.toml").write_text(toml)
    second = _run(tmp_path / "from-report.toml", tmp_path / "b", tmp_path / "cache-b")  # fresh process and cache
    assert second["config_hash"] == first["config_hash"]
    assert _numbers(second) == _numbers(first)  # bit for bit: JSON floats round-trip exactly
    assert second["forget_indices"] == first["forget_indices"]

