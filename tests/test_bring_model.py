"""Bring your model: a torchvision ResNet-18 state dict (plain, wrapped, prefixed, without batch-norm counters) and the
Machine Unlearning Comparator's CIFAR ResNet-18 load as θ_o, shape-checked, from the command line and the dashboard
through the same code; a mismatch names the keys and shapes that differ."""
from __future__ import annotations

import io
import json

import pytest
import torch
from test_image_data import write_cifar10

from core import ResidueError
from core.cli import main
from core.config import from_dict
from core.experiment import CheckpointExperiment
from core.models import build_model, load_checkpoint


def saved(obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


@pytest.fixture(scope="module")
def imagenet_resnet():
    return build_model("resnet18", (3, 32, 32), 10, seed=3).eval()


def test_a_torchvision_resnet18_state_dict_loads_plain_wrapped_or_prefixed(imagenet_resnet):
    sd = imagenet_resnet.state_dict()
    template = build_model("resnet18", (3, 32, 32), 10, seed=0)
    x = torch.randn(2, 3, 32, 32)
    old_style = {k: v for k, v in sd.items() if not k.endswith("num_batches_tracked")}  # torchvision's 2017 weights
    for obj in (sd, {f"module.{k}": v for k, v in sd.items()}, {f"model.{k}": v for k, v in sd.items()},
                {"epoch": 3, "state_dict": {f"module.{k}": v for k, v in sd.items()}}, {"model": sd}, old_style):
        state = load_checkpoint(saved(obj), template)
        m = build_model("resnet18", (3, 32, 32), 10, seed=0)
        m.load_state_dict(state)
        assert torch.equal(m.eval()(x), imagenet_resnet(x))


def test_the_comparators_cifar_resnet18_loads_into_the_cifar_stem(imagenet_resnet):
    # the Comparator builds torchvision's resnet18 and replaces conv1 (3x3, stride 1, no bias), maxpool (Identity)
    # and fc (10 classes): the keys stay torchvision's, only conv1's shape changes
    sd = dict(imagenet_resnet.state_dict())
    sd["conv1.weight"] = torch.randn(64, 3, 3, 3)
    state = load_checkpoint(saved(sd), build_model("resnet18_cifar", (3, 32, 32), 10))
    assert state["conv1.weight"].shape == (64, 3, 3, 3)
    with pytest.raises(ResidueError, match="'conv1.weight' has shape \\(64, 3, 3, 3\\), the model expects "
                                           "\\(64, 3, 7, 7\\); a 3x3 first convolution is resnet18_cifar"):
        load_checkpoint(saved(sd), build_model("resnet18", (3, 32, 32), 10))


def test_a_mismatch_names_the_keys_and_shapes_that_differ(imagenet_resnet):
    sd = imagenet_resnet.state_dict()
    with pytest.raises(ResidueError, match="does not match the architecture 'vgg11_bn': keys 62 missing "
                                           "\\(features.0.weight, .*; 122 unexpected \\(conv1.weight"):
        load_checkpoint(saved(sd), build_model("vgg11_bn", (3, 32, 32), 10, width=0.125))
    with pytest.raises(ResidueError, match="'conv1.weight' has shape \\(64, 3, 7, 7\\), the model expects "
                                           "\\(4, 3, 7, 7\\) \\(100 more tensor\\(s\\) differ: bn1.weight, bn1.bias"):
        load_checkpoint(saved(sd), build_model("resnet18", (3, 32, 32), 10, width=1 / 16))
    with pytest.raises(ResidueError, match="'fc.weight' has shape \\(10, 512\\), the model expects \\(100, 512\\)"):
        load_checkpoint(saved(sd), build_model("resnet18", (3, 32, 32), 100))


@pytest.fixture()
def cifar_config(tmp_path, monkeypatch):
    monkeypatch.setenv("RESIDUE_DATA", str(tmp_path / "data"))
    write_cifar10(tmp_path / "data" / "cifar-10-batches-bin")
    text = """seed = 0
[data]
name = "cifar10"
test_fraction = 0.2
shadow_fraction = 0.1
[data.forget]
kind = "class"
classes = [3]
[model]
name = "resnet18_cifar"
width = 0.0625
[recipe]
epochs = 1
batch_size = 16
[[methods]]
name = "finetune"
epochs = 1
"""
    path = tmp_path / "cifar.toml"
    path.write_text(text)
    return path


def test_the_command_line_takes_theta_o_from_a_checkpoint(cifar_config, tmp_path, capsys):
    cfg = from_dict(__import__("tomllib").loads(cifar_config.read_text()))
    mine = build_model("resnet18_cifar", (3, 32, 32), 10, seed=42, width=0.0625).eval()
    ckpt = tmp_path / "mine.pt"
    ckpt.write_bytes(saved({f"module.{k}": v for k, v in mine.state_dict().items()}))
    exp = CheckpointExperiment.from_file(cfg, ckpt, device="cpu")
    assert exp.original_init_known is False  # θ_r cannot share an unknown initialisation: θ_o-coordinate measures off
    assert main(["run", "--config", str(cifar_config), "--checkpoint", str(ckpt), "--out", str(tmp_path / "out"),
                 "--quiet", "--cache", str(tmp_path / "cache"), "--no-analyses"]) == 0
    res = json.loads((tmp_path / "out" / "results.json").read_text())
    original = next(m for m in res["models"] if m["name"] == "original")
    X, y = exp.prepare().tensors("test")
    assert original["test_acc"] == pytest.approx(float((mine(X).argmax(1) == y).float().mean()))
    assert original["seconds"] == 0.0 and original["cached"] is True  # not trained: read from the file
    # a checkpoint of the other stem, or no file: one line, exit 2
    other = tmp_path / "other.pt"
    other.write_bytes(saved(build_model("resnet18", (3, 32, 32), 10, width=0.0625).state_dict()))
    for path, message in ((other, "checkpoint 'other.pt': Checkpoint tensor 'conv1.weight' has shape (4, 3, 7, 7)"),
                          (tmp_path / "none.pt", "checkpoint: file '")):
        capsys.readouterr()
        assert main(["run", "--config", str(cifar_config), "--checkpoint", str(path), "--quiet",
                     "--out", str(tmp_path / "out2")]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err
    assert not (tmp_path / "out2").exists()


def test_the_dashboard_uses_the_same_checkpoint_code():
    from core.analysis import Pipeline
    from core.cache import bytes_fingerprint
    from core.config import from_dict
    from dashboard import form, state

    m = build_model("mlp", (1, 8, 8), 10, hidden=[8])
    raw = saved({f"model.{k}": v for k, v in m.state_dict().items()})
    ckpt = state.load_checkpoint(raw, m)
    assert set(ckpt) == set(m.state_dict())
    assert form.bytes_fingerprint is bytes_fingerprint
    cfg = from_dict({"model": {"name": "mlp", "hidden": [8]}})  # the checkpoint's architecture
    dashboard = Pipeline(cfg, checkpoint=(ckpt, form.bytes_fingerprint(raw)))
    cli = Pipeline(cfg, exp=CheckpointExperiment.from_bytes(cfg, raw))
    assert cli.key == dashboard.key  # the upload and --checkpoint share one run (and its cache)
    exp = dashboard.experiment()
    assert type(exp) is CheckpointExperiment and exp.original_init_known is False
