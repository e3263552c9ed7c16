import json
import subprocess
import sys


def _cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "core", *args], capture_output=True, text=True, cwd=cwd)


def test_cli_help_documents_options():
    out = _cli("run", "--help").stdout
    for opt in ("--config", "--out", "--seed", "--cache", "--device", "--quiet"):
        assert opt in out


def test_cli_run_writes_results(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text("[recipe]\nepochs = 3\n[[methods]]\nname = 'finetune'\nepochs = 1\n")
    p = _cli("run", "--config", str(cfg), "--out", str(tmp_path / "out"), "--cache", str(tmp_path / "cache"))
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
