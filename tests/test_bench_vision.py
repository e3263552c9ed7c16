"""bench/vision.py where there is no GPU: the CUDA section names the one command that prints every GPU figure, and
bad arguments or a data root without CIFAR-10's files get one line (exit 2). The figures themselves are measured
by running the script, never by a timed test."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench import vision  # noqa: E402


def test_without_a_gpu_the_cuda_section_gives_the_command(capsys, monkeypatch, tmp_path):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert vision.main(["--only", "cuda", "--data-root", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "no GPU here" in out and "python bench/vision.py --data-root DIR --epochs 30 --only cuda" in out
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # a GPU but no data: the same command
    assert vision.main(["--only", "cuda"]) == 0
    assert "give --data-root DIR" in capsys.readouterr().out


def test_bad_arguments_and_missing_files_get_one_line(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("RESIDUE_DATA", str(tmp_path))  # the script points it at --data-root: restored after
    with pytest.raises(SystemExit) as e:
        vision.main(["--only", "gpu"])
    assert e.value.code == 2 and "unknown section(s) gpu" in capsys.readouterr().err
    assert vision.main(["--only", "cpu", "--data-root", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("bench/vision.py: ") and "no folder 'cifar-10-batches-bin'" in err and "\n" not in err


def test_the_example_config_is_cifar10_with_the_airbench_recipe():
    from core.config import load_config
    from core.training import recipes

    cfg = load_config(vision.AIRBENCH_EXAMPLE)
    assert (cfg.data.name, cfg.model.name, cfg.recipe) == ("cifar10", "airbench", recipes.get("airbench"))
    assert [m.name for m in cfg.methods] == [m.name for m in load_config(
        vision.ROOT / "assets" / "presets" / "forget_digit_7.toml").methods]  # the default preset's methods
