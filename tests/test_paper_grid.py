"""`bench/science.py --grid paper --data-root DIR`: the papers' setting in one command. Here (no GPU, no CIFAR-10)
it must say what is missing and exit 2; its scenario configs must be the papers' (CIFAR-10, ResNet-18, crop+flip)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from test_image_data import write_cifar10  # noqa: E402

from bench import science  # noqa: E402
from bench.science_lib import grid as grids  # noqa: E402 - the scenarios and grids the command reads


@pytest.mark.parametrize("setup,args,message", [
    (None, [], "--grid paper needs --data-root DIR, a folder holding cifar-10-batches-bin"),
    ("empty", ["--data-root", "{tmp}"], "no folder 'cifar-10-batches-bin' in the data directory"),
    ("partial", ["--data-root", "{tmp}"], "is missing data_batch_5.bin (expected data_batch_1.bin"),
    ("file", ["--data-root", "{tmp}/a-file"], "is not a folder"),
])
def test_without_the_data_it_says_what_is_missing_and_exits_2(tmp_path, capsys, monkeypatch, setup, args, message):
    monkeypatch.setenv("RESIDUE_DATA", str(tmp_path / "elsewhere"))
    if setup == "partial":
        write_cifar10(tmp_path / "cifar-10-batches-bin")
        (tmp_path / "cifar-10-batches-bin" / "data_batch_5.bin").unlink()
    (tmp_path / "a-file").write_text("x")
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as e:
        science.main(["--grid", "paper", "--out", str(out), *[a.format(tmp=tmp_path) for a in args]])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err
    assert not out.exists()  # nothing half-written


def test_the_paper_grid_runs_the_papers_setting(tmp_path, monkeypatch):
    grid = grids.Grid.paper()
    assert grid.name == "paper" and grid.scenarios == ["class", "sample"] and grid.n_shadows >= 16
    from core.unlearn import methods
    assert set(grid.methods) == set(methods.names()) - {"retrain"}
    monkeypatch.setenv("RESIDUE_DATA", str(tmp_path))
    try:
        for scenario, forget in (("class", "class"), ("sample", "random")):
            cfg = grids.scenario_config(scenario, 1, grid)
            assert cfg.data.name == "cifar10" and cfg.model.name == "resnet18_cifar" and cfg.seed == 1
            assert cfg.data.forget.kind == forget and cfg.recipe.augment == "crop_flip" and cfg.recipe.optimizer == "sgd"
            assert [m.name for m in cfg.methods] == ["retrain", *grid.methods]
        assert grids.TITLES["class"] == "CIFAR-10, forget class 0"
        assert "cifar10_forget_class.toml" in grids.PRESETS.values()
    finally:
        grids.use_grid("full")
    assert grids.TITLES["class"] == "digits, forget class 7"  # the small grids' report is untouched
    assert grids.scenario_config("class", 0, grids.Grid.quick()).data.name == "digits"
