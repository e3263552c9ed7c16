"""The science report's script keeps working: `bench/science.py --quick` on a tiny grid writes a report whose
five tables hold real numbers (the full sweep's results are committed under reports/)."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SECTIONS = ["## 1. Unlearning quality", "## 2. Unlearning leak", "## 3. Reminiscence attack",
            "## 4. Residual knowledge", "## 5. Pseudo-convergence", "## 6. Forgetting quality"]


def _section(text: str, title: str) -> str:
    start = text.index(title)
    nxt = [text.find("\n## ", start + 1)]
    return text[start:nxt[0] if nxt[0] > 0 else len(text)]


@pytest.mark.slow
def test_quick_report(tmp_path: Path) -> None:
    out = tmp_path / "reports"
    cmd = [sys.executable, str(ROOT / "bench" / "science.py"), "--quick", "--scenarios", "class,sample",
           "--out", str(out), "--cache", str(tmp_path / "cache"), "--figures", "none"]
    run = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    report = (out / "science.md").read_text(encoding="utf-8")
    assert (out / "science.json").exists()
    assert "Command: `python bench/science.py --quick" in report
    for title in SECTIONS:
        body = _section(report, title)
        rows = [line for line in body.splitlines() if line.startswith("| ") and not line.startswith("| model")]
        numbers = re.findall(r"\d+\.\d+", "\n".join(rows))
        assert len(numbers) >= 10, f"{title}: too few numbers in its tables"
        assert "*Produced by* `python bench/science.py --quick" in body
        assert "nan" not in "\n".join(rows).lower(), f"{title}: NaN in a table"
        # every claim line says agree / disagree / not testable
        assert re.search(r"\*\*(Agrees in direction|Does not agree|Not testable here)\.\*\*", body), title
    quality = _section(report, SECTIONS[0])
    for method in ("retrain", "finetune", "orthogonal_replay", "rurk"):
        assert f"| {method} |" in quality
    assert "digits, forget class 7" in report and "digits, forget random 10%" in report
    competition = _section(report, SECTIONS[5])  # every method between the anchors, the RURK and ReA defences too
    for row in ("ceiling (a second pool of retrains)", "retrain", "orthogonal_replay", "rurk", "floor (θ_o's seeds)"):
        assert competition.count(f"| {row} |") == 2, row  # one table per scenario
    assert "N = 4 models per pool, protocol A" in competition and "Spearman's ρ" in competition


def test_run_jobs_in_process() -> None:
    """The default backend; the process-pool, Dask and Ray paths are exercised by `--workers` / `--backend` runs
    (each worker imports torch, too slow for the unit suite)."""
    import math

    from core.errors import ResidueError
    from core.sweep import run_jobs

    specs = [1.0, 4.0, 9.0, 16.0]
    seen: list[int] = []
    assert run_jobs(math.sqrt, specs, on_done=lambda i, r: seen.append(i)) == [1.0, 2.0, 3.0, 4.0]
    assert seen == [0, 1, 2, 3]
    with pytest.raises(ResidueError, match="Unknown backend"):
        run_jobs(math.sqrt, specs, backend="spark")


def test_run_jobs_on_a_local_dask_cluster(monkeypatch) -> None:
    """The `distributed` extra's backend (installed by `make test`): the same results, in spec order, each job
    reported once. The cluster runs in this process (threads, no worker processes to start: ~1 s, not ~20 s) and
    is reached by address, as a remote one would be."""
    pytest.importorskip("distributed", reason="the optional extra is not installed; enable with: "
                        "pip install -e '.[distributed]' (make test installs it)")
    import math

    import torch
    from dask.distributed import LocalCluster

    from core.sweep import run_jobs

    seen: list[int] = []
    threads = torch.get_num_threads()  # an in-process worker sets one torch thread, as each worker does
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as cluster:
        monkeypatch.setenv("RESIDUE_DASK_ADDRESS", cluster.scheduler_address)
        try:
            out = run_jobs(math.sqrt, [1.0, 4.0, 9.0, 16.0], backend="dask", on_done=lambda i, r: seen.append(i))
        finally:
            torch.set_num_threads(threads)
    assert out == [1.0, 2.0, 3.0, 4.0] and sorted(seen) == [0, 1, 2, 3]


def test_job_records_round_trip_the_committed_report() -> None:
    """Every job of the committed reports/science.json loads as a typed record and writes back the same JSON text
    (key order included), so a report made before the split still renders."""
    import json

    from bench.science_lib.record import JobRecord

    data = json.loads((ROOT / "reports" / "science.json").read_text(encoding="utf-8"))
    for raw in data["results"]:
        rec = JobRecord.from_dict(raw)
        assert isinstance(rec.seed, int) and rec.scenario in ("class", "sample", "moons")
        assert (rec.leak_single is None) == (rec.scenario == "class")  # the leak runs on sample-wise scenarios
        assert json.dumps(rec.to_dict()) == json.dumps(raw)
        assert JobRecord.from_dict(rec.to_dict()) == rec


def test_job_record_from_an_older_or_newer_version() -> None:
    """A record that predates a section loads with it empty (the report says so); a key this version does not know
    survives a round trip; a record that is not one is one clear error."""
    from bench.science_lib.aggregate import Runs
    from bench.science_lib.record import JobRecord
    from core.errors import ResidueError

    old = {"scenario": "class", "seed": 3, "config": "seed = 3\n", "quality": {"retrain": {"UA": 1.0}},
           "seconds": {"total": 1.0}, "from_the_future": [1, 2]}
    rec = JobRecord.from_dict(old)
    assert rec.competition is None and rec.extra == {"from_the_future": [1, 2]}
    assert rec.to_dict() == old
    runs = Runs([rec])
    assert runs.get("class", "quality", "retrain", "UA") == [1.0] and runs.get("class", "competition", "n") == []
    assert runs.get("class", "from_the_future", 1) == [2] and runs.models("class", "rea") == []
    with pytest.raises(ResidueError, match="lacks 'quality'"):
        JobRecord.from_dict({k: v for k, v in old.items() if k != "quality"})
    with pytest.raises(ResidueError, match="JSON object"):
        JobRecord.from_dict([1, 2])


def test_render_only_refuses_a_broken_science_json(tmp_path: Path) -> None:
    """--render-only on a missing, non-JSON or cut-short science.json: exit 2 with one line, no traceback."""
    cmd = [sys.executable, str(ROOT / "bench" / "science.py"), "--render-only", "--out", str(tmp_path)]
    for content in (None, "{not json", '{"meta": {}, "results": []}', '{"meta": {"command": "x"}}'):
        if content is not None:
            (tmp_path / "science.json").write_text(content, encoding="utf-8")
        run = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert run.returncode == 2, run.stderr
        assert run.stderr.startswith("error: ") and len(run.stderr.strip().splitlines()) == 1, run.stderr
        assert "Traceback" not in run.stderr
