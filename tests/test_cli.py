import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from core.analysis import ANALYSES, load, standard  # noqa: F401  (standard registers the analyses)
from core.cli import main

TINY = "seed = 3\n[recipe]\nepochs = 3\n[[methods]]\nname = 'finetune'\nepochs = 1\n"


def _cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "core", *args], capture_output=True, text=True, cwd=cwd)


def test_cli_help_documents_options():
    out = _cli("run", "--help").stdout
    for opt in ("--config", "--out", "--seed", "--cache", "--device", "--quiet"):
        assert opt in out


def test_cli_run_writes_results(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text("[recipe]\nepochs = 3\n[[methods]]\nname = 'finetune'\nepochs = 1\n")
    p = _cli("run", "--config", str(cfg), "--out", str(tmp_path / "out"), "--cache", str(tmp_path / "cache"),
             "--no-analyses")
    assert p.returncode == 0, p.stderr
    data = json.loads((tmp_path / "out" / "results.json").read_text())
    assert [m["name"] for m in data["models"]] == ["original", "retrain", "finetune"]
    assert data["config"]["recipe"]["epochs"] == 3 and data["config"]["methods"][0]["epochs"] == 1
    assert "finetune" in p.stdout


def test_cli_bad_config_is_one_line_nonzero(tmp_path):
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[[methods]]\nname = 'finetune'\nlr = 99\n")
    p = _cli("run", "--config", str(cfg), "--out", str(tmp_path))
    assert p.returncode == 2
    assert "Traceback" not in p.stderr and p.stderr.strip().count("\n") == 0
    assert "lr must be in" in p.stderr
    p = _cli("run", "--config", str(tmp_path / "missing.toml"))
    assert p.returncode == 2 and "not found" in p.stderr


def test_cli_list():
    p = _cli("list")
    assert p.returncode == 0 and "digits" in p.stdout and "gradient_ascent" in p.stdout


def _one_line_exit_2(capsys, argv: list[str], *words: str) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err and all(w in err for w in words), err
    return err


@pytest.fixture(scope="module")
def everything(tmp_path_factory):
    """`residue run --report` on a tiny config with one analysis failing part-way (the embedding), the forgetting
    quality left out (--skip: its pools are the slowest analysis): (exit status, stderr, output folder, stdout)."""
    import contextlib
    import io

    tmp = tmp_path_factory.mktemp("cli")
    (tmp / "c.toml").write_text(TINY)
    real = ANALYSES["embedding"].compute

    def broken(*a, **k):
        raise RuntimeError("UMAP fell over")

    ANALYSES["embedding"].compute = broken
    err, printed = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(printed):
            code = main(["run", "--config", str(tmp / "c.toml"), "--out", str(tmp / "out"), "--cache",
                         str(tmp / "cache"), "--quiet", "--report", "--skip", "quality"])
    finally:
        ANALYSES["embedding"].compute = real
    return code, err.getvalue(), tmp / "out", printed.getvalue()


def test_run_writes_every_analysis_the_verdicts_and_the_report(everything):
    code, err, out, printed = everything
    data = json.loads((out / "results.json").read_text())
    runnable = {n for n, a in ANALYSES.items() if a.in_run_everything and a.available()}
    assert set(data["sections"]) == runnable - {"quality", "embedding"}  # every analysis but the two below
    assert data["analyses"]["failed"] == {"embedding": "Embedding failed: RuntimeError: UMAP fell over"}
    assert data["analyses"]["skipped"] == ["quality"] and data["analyses"]["complete"] is False
    verdicts = data["sections"]["verdict"]["verdicts"]
    assert set(verdicts) == {"retrain", "finetune"}
    for name, v in verdicts.items():  # the terminal says them too, beside the table
        assert any(line.split()[:1] == [name] and v["badge"] in line for line in printed.splitlines()), printed
    assert "this run's controls, judged by the same rule:" in printed
    html = (out / "report.html").read_text()
    assert html.startswith("<!doctype html>") and "Plotly.newPlot" in html and "residue-config" in html
    assert "Embedding failed: RuntimeError: UMAP fell over" in html  # the report says what failed...
    assert "Loss along" in html and "ROC: can an attacker tell" in html  # ...and shows what exists
    assert code == 2 and err.count("\n") == 1 and "1 analyses failed (Embedding)" in err, err


def test_report_redraws_from_the_saved_folder_without_computing(everything, capsys, monkeypatch):
    _, _, out, _ = everything

    def must_not_compute(*a, **k):
        raise AssertionError("computed again")

    for a in ANALYSES.values():
        monkeypatch.setattr(a, "compute", must_not_compute)
    assert main(["report", str(out), "--out", str(out / "again.html")]) == 2  # it still says what failed
    first, again = (out / "report.html").read_text(), (out / "again.html").read_text()
    assert again.count("Plotly.newPlot") == first.count("Plotly.newPlot") > 10
    notes = re.findall(r"Not in this report: [^<]*", again)
    assert notes == re.findall(r"Not in this report: [^<]*", first)
    assert len(notes) == 2 and "Forgetting quality was left out" in notes[0] and "Embedding failed" in notes[1]
    run = load(out)
    assert run.saved and run.failed and run.skipped == {"quality"}


def test_bad_output_folders_are_one_line(tmp_path, capsys):
    cfg = tmp_path / "c.toml"
    cfg.write_text(TINY)
    (tmp_path / "file").write_text("x")
    for out, words in ((tmp_path / "missing" / "out", ("is not an existing folder",)),
                       (tmp_path / "file", ("is a file",)), (Path("/proc/residue-out"), ("not writable",))):
        _one_line_exit_2(capsys, ["run", "--config", str(cfg), "--out", str(out), "--quiet"], *words)
    assert not (tmp_path / "missing").exists()
    _one_line_exit_2(capsys, ["run", "--config", str(cfg), "--skip", "qualty", "--out", str(tmp_path)],
                     "unknown analysis qualty")


def test_report_refuses_old_and_cut_short_folders(everything, tmp_path, capsys):
    import shutil

    _, _, out, _ = everything
    _one_line_exit_2(capsys, ["report", str(tmp_path / "nowhere")], "not found")
    _one_line_exit_2(capsys, ["report", str(tmp_path)], "holds no results.json")
    folder = tmp_path / "copy"
    shutil.copytree(out, folder)
    text = (folder / "results.json").read_text()
    (folder / "results.json").write_text(text[: len(text) // 2])  # the run stopped while writing
    _one_line_exit_2(capsys, ["report", str(folder)], "cut short")
    old = json.loads(text)
    del old["analyses"]  # what an older version wrote
    (folder / "results.json").write_text(json.dumps(old))
    _one_line_exit_2(capsys, ["report", str(folder)], "another version", "run it again")
    (folder / "results.json").write_text(text)
    blob = (folder / "analyses.pkl").read_bytes()
    (folder / "analyses.pkl").write_bytes(blob[: len(blob) // 2])
    _one_line_exit_2(capsys, ["report", str(folder)], "cut short")
    (folder / "analyses.pkl").unlink()
    _one_line_exit_2(capsys, ["report", str(folder)], "cut short")


def test_example_data_writes_a_loadable_layout_and_refuses_in_one_line(tmp_path, capsys, monkeypatch):
    """`example-data NAME DIR`: the files a loader reads, listed, and config lines that load them; an unknown name,
    a dataset that reads no files, a folder that cannot be written and one holding files: one line, exit 2."""
    import tomllib

    from core.data import load_dataset

    monkeypatch.setenv("RESIDUE_DATA", str(tmp_path))
    assert main(["example-data", "mnist", str(tmp_path / "mine")]) == 0
    out = capsys.readouterr().out
    assert "train-images-idx3-ubyte" in out and (tmp_path / "mine" / "t10k-labels-idx1-ubyte").is_file()
    data = tomllib.loads(out[out.index("[data]"):])["data"]
    d = load_dataset(data["name"], **data["options"])
    assert d.X.shape[1:] == (1, 28, 28) and d.n_classes == 10
    (tmp_path / "file").write_text("mine")
    _one_line_exit_2(capsys, ["example-data", "no_such", str(tmp_path / "a")], "Unknown dataset 'no_such'")
    _one_line_exit_2(capsys, ["example-data", "digits", str(tmp_path / "b")], "reads no files")
    _one_line_exit_2(capsys, ["example-data", "csv", str(tmp_path / "file" / "c")], "Cannot write", "file")
    _one_line_exit_2(capsys, ["example-data", "csv", str(tmp_path / "mine")], "not empty")
    assert (tmp_path / "file").read_text() == "mine" and not (tmp_path / "mine" / "example.csv").exists()
