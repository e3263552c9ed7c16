"""Vision models on CIFAR-format data, CPU and CUDA. `python bench/vision.py [--data-root DIR] [--only ...]`.

Every figure is timed as bench/timing.py times things (contenders interleaved, best of `--repeats`, the float32
matmul yardstick in the same rounds on the CPU) and printed beside the load average.

cpu (the issue's CPU budget): a width-1/4 CIFAR-stem ResNet-18 trains θ_o on a 2,000-image CIFAR-format subset
(the real files under --data-root when given, else a synthetic set in the same binary format, written to a
temporary folder) with the papers' recipe (assets/papers/cifar10_forget_class.toml: SGD 0.1, momentum 0.9,
weight decay 5e-4, crop + flip, batch 128) for `--epochs` epochs; budget 60 s on 2 cores. (Channels-last would
be 1.2-1.3x faster on the CPU but crashes torch 2.13 there: `core.training.device_layout` says why.)

airbench: the same subset, airbench's network (`--airbench-width`) and registered recipe, its batch scaled to
the subset (256, lr 0.375: 1.5 per 1024) for `--airbench-epochs`: seconds for θ_o, and for 4 retrains on the
retain set (forget class 0) batched by `train_many` against one at a time.

cuda (on a machine with a GPU and CIFAR-10's binary files under --data-root; elsewhere it says so): the whole of
CIFAR-10 at full width.
1. ResNet-18 (CIFAR stem), the papers' recipe for `--epochs` (the budget: 30), three ways: plain fp32 eager
   (RESIDUE_AMP=0, RESIDUE_CHANNELS_LAST=0), Residue's path (bf16 autocast, channels-last) and that path with
   torch.compile (RESIDUE_COMPILE=1): seconds, speed-up over fp32 eager (budget >= 3x), peak GPU memory, share
   of the GPU's bf16 matmul peak.
2. airbench (width 1, its recipe as registered): θ_o, and 4 retrains batched against one at a time.
3. Every approximate unlearning method against a retrain (budget: each at most 25% of θ_r's seconds), for
   the ResNet-18 papers' preset and for examples/cifar10_airbench.toml, in an empty model cache.
4. "Run everything" (θ_o, θ_r, the verdict's 4 yardstick retrains, the preset's methods, 16 LiRA shadow models,
   every attack and probe the dashboard runs) on examples/cifar10_airbench.toml, in a fresh process with an
   empty cache: seconds per stage and in all (budget: 10 minutes).
The command on a CUDA machine: `python bench/vision.py --data-root DIR --epochs 30 --only cuda`.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PAPER_PRESET = ROOT / "assets" / "papers" / "cifar10_forget_class.toml"
AIRBENCH_EXAMPLE = ROOT / "examples" / "cifar10_airbench.toml"
CPU_BUDGET_S = 60.0
RUN_BUDGET_S = 600.0
METHOD_SHARE = 0.25
SECTIONS = ("cpu", "airbench", "cuda")
CUDA_COMMAND = "python bench/vision.py --data-root DIR --epochs 30 --only cuda"


def synthetic_cifar(folder: Path, n: int = 2000) -> None:
    """n random 32x32 colour images in CIFAR-10's binary format (six batch files)."""
    import numpy as np

    from core.data.images import CIFAR10_FILES

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    per = -(-n // 6)
    for i, name in enumerate(CIFAR10_FILES):
        k = min(per, n - i * per)
        labels = (np.arange(i * per, i * per + k) % 10).astype(np.uint8)
        rec = np.concatenate([labels[:, None], rng.integers(0, 256, (k, 3072), dtype=np.uint8)], axis=1)
        (folder / name).write_bytes(rec.tobytes())


def cifar(data_root: Path | None, limit: int | None, device: str = "cpu"):
    """(X, y) of CIFAR-10's training images under data_root (the first `limit`), else of a synthetic set."""
    import torch

    from core.data import load_dataset

    with tempfile.TemporaryDirectory() as tmp:
        root = data_root or Path(tmp)
        if data_root is None:
            synthetic_cifar(root / "cifar-10-batches-bin", limit or 2000)
        os.environ["RESIDUE_DATA"] = str(root)
        d = load_dataset("cifar10", limit=limit)
    return torch.as_tensor(d.X, device=device), torch.as_tensor(d.y, device=device)


def paper_recipe(epochs: int):
    """The papers' ResNet-18 recipe (the preset's), for `epochs` epochs."""
    from dataclasses import replace

    from core.config import load_config

    return replace(load_config(PAPER_PRESET).recipe, epochs=epochs)


def with_env(env: dict[str, str], fn: Callable):
    """fn() with these environment variables set, then restored."""
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        return fn()
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def trainer(name: str, width: float, X, y, recipe, env: dict[str, str] | None = None) -> Callable[[], float]:
    """A contender: train θ_o once (model built, then the clock), returning peak CUDA memory in GB (0 on a CPU)."""
    import torch

    from core.models import build_model
    from core.training import train

    def run() -> float:
        model = build_model(name, tuple(X.shape[1:]), 10, seed=0, width=width).to(X.device)
        if X.device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        with_env(env or {}, lambda: train(model, X, y, recipe, seed=0))
        if X.device.type == "cuda":
            torch.cuda.synchronize()
            return torch.cuda.max_memory_allocated() / 2**30
        return 0.0

    return run


def retrainers(width: float, X, y, recipe, n: int = 4) -> dict[str, Callable[[], None]]:
    """n retrains on the retain set (forget class 0), batched by `train_many` and one at a time."""
    import numpy as np
    import torch

    from core.batched import init_many, train_many
    from core.models import build_model
    from core.training import train

    retain = np.flatnonzero(y.cpu().numpy() != 0)
    seeds = list(range(1, n + 1))

    def make(s: int):
        return build_model("airbench", tuple(X.shape[1:]), 10, seed=s, width=width).to(X.device)

    def sync() -> None:
        if X.device.type == "cuda":
            torch.cuda.synchronize()

    def batched() -> None:
        train_many(make(0), init_many(make, seeds), X, y, [retain] * n, recipe, seeds)
        sync()

    def alone() -> None:
        idx = torch.as_tensor(retain, device=X.device)
        for s in seeds:
            train(make(s), X[idx], y[idx], recipe, seed=s)
        sync()

    return {f"{n} retrains, train_many": batched, f"{n} retrains, one at a time": alone}


def flops_per_image(name: str, width: float) -> float:
    """Training FLOPs per image (forward x TRAIN) at 32x32."""
    from bench.timing import TRAIN, forward_flops
    from core.models import build_model

    return TRAIN * forward_flops(build_model(name, (3, 32, 32), 10, width=width), (3, 32, 32))


def warm_up(X, y) -> None:
    """One-off costs outside every clock: oneDNN's kernels for these shapes, both networks."""
    from core.training import named_recipe

    small = named_recipe("default", epochs=1, batch_size=128)
    trainer("resnet18_cifar", 0.25, X[:256], y[:256], small)()
    trainer("airbench", 0.25, X[:256], y[:256], small)()


def cpu_section(data_root: Path | None, epochs: int, repeats: int) -> None:
    import torch

    from bench.timing import load, share, with_peak

    X, y = cifar(data_root, 2000)
    print(f"-- CPU budget: width-1/4 CIFAR-stem ResNet-18, {len(y):,} CIFAR-format images "
          f"({'real' if data_root else 'synthetic'}), the papers' recipe, {epochs} epochs, "
          f"{torch.get_num_threads()} threads, {load()} --")
    warm_up(X, y)
    recipe = paper_recipe(epochs)
    t, peak = with_peak({"θ_o": trainer("resnet18_cifar", 0.25, X, y, recipe)}, repeats, warm=False)
    flops = flops_per_image("resnet18_cifar", 0.25) * len(y) * epochs
    best = t["θ_o"].best
    print(f"  θ_o {best:6.1f} s ({best / epochs:.1f} s/epoch, best of {repeats}), {len(y) * epochs / best:5.0f} "
          f"images/s, {share(flops, best, peak)}; budget {CPU_BUDGET_S:.0f} s: "
          f"{'met' if best <= CPU_BUDGET_S else 'MISSED'} ({load()})")


def airbench_section(X, y, width: float, recipe, repeats: int, label: str) -> None:
    """θ_o, then 4 retrains batched vs one at a time, for airbench at `width` with `recipe`."""
    from bench.timing import interleaved, load, paired, share, with_peak

    cuda = X.device.type == "cuda"
    print(f"-- airbench (width {width:g}) {label}: {len(y):,} images, batch {recipe.batch_size}, lr {recipe.lr:g}, "
          f"{recipe.epochs} epochs, {load()} --")
    flops = flops_per_image("airbench", width) * recipe.epochs
    theta = {"θ_o": trainer("airbench", width, X, y, recipe)}
    pair = retrainers(width, X, y, recipe)
    if cuda:
        peak = cuda_matmul_peak() * 1e12
        t = interleaved({**theta, **pair}, repeats, warm=True)
    else:
        t, peak = with_peak({**theta, **pair}, repeats, warm=False)
    n_retain = int((y != 0).sum())
    for k, v in t.items():
        images = len(y) if k == "θ_o" else 4 * n_retain
        print(f"  {k:<28} {v.best:7.1f} s  {share(flops * images, v.best, peak)}")
    batched, alone = pair
    print(f"  train_many vs one at a time: {t[alone].best / t[batched].best:.2f}x (median of paired rounds "
          f"{paired(t[alone], t[batched]):.2f}x)")


def cpu_airbench(data_root: Path | None, width: float, epochs: int, repeats: int) -> None:
    from core.training import named_recipe

    X, y = cifar(data_root, 2000)
    warm_up(X, y)
    recipe = named_recipe("airbench", epochs=epochs, batch_size=256, lr=1.5 * 256 / 1024)
    airbench_section(X, y, width, recipe, repeats, "on the CPU")


def cuda_matmul_peak(n: int = 8192, reps: int = 20) -> float:
    """TFLOP/s of an n x n bfloat16 matmul on the GPU, now."""
    import torch

    a = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    best = float("inf")
    for _ in range(3):
        torch.cuda.synchronize()
        t = time.perf_counter()
        for _ in range(reps):
            a @ b
        torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t)
    return 2 * n ** 3 * reps / best / 1e12


def cuda_missing(data_root: Path | None) -> str | None:
    """Why the CUDA section cannot run here (no GPU, no data), or None."""
    import torch

    if not torch.cuda.is_available():
        return f"no GPU here: on a CUDA machine with CIFAR-10's binary files under DIR, run `{CUDA_COMMAND}`."
    if data_root is None:
        return f"give --data-root DIR (CIFAR-10's binary files under DIR/cifar-10-batches-bin): `{CUDA_COMMAND}`."
    return None


def resnet_ways(X, y, epochs: int, repeats: int) -> None:
    """ResNet-18 for `epochs`: fp32 eager, bf16 + channels-last, + torch.compile (interleaved, best of)."""
    import torch

    from bench.timing import interleaved

    recipe = paper_recipe(epochs)
    ways = {"fp32 eager": {"RESIDUE_AMP": "0", "RESIDUE_CHANNELS_LAST": "0", "RESIDUE_COMPILE": "0"},
            "bf16 + channels-last": {"RESIDUE_AMP": "1", "RESIDUE_CHANNELS_LAST": "1", "RESIDUE_COMPILE": "0"},
            "+ torch.compile": {"RESIDUE_AMP": "1", "RESIDUE_CHANNELS_LAST": "1", "RESIDUE_COMPILE": "1"}}
    t = interleaved({k: trainer("resnet18_cifar", 1.0, X, y, recipe, env) for k, env in ways.items()}, repeats,
                    warm=False)
    peak = cuda_matmul_peak()
    flops = flops_per_image("resnet18_cifar", 1.0) * len(y) * epochs
    base = t["fp32 eager"].best
    print(f"-- CUDA: ResNet-18 (CIFAR stem), the papers' recipe, {epochs} epochs x {len(y):,} images on "
          f"{torch.cuda.get_device_name()}; bf16 matmul peak {peak:.0f} TFLOP/s --")
    for k, v in t.items():
        print(f"  {k:<22} {v.best:8.1f} s  x{base / v.best:4.2f}  peak memory {v.out:5.2f} GB  "
              f"{flops / v.best / 1e12:6.1f} TFLOP/s = {flops / v.best / 1e12 / peak:.1%} of peak")
    best = min(t["bf16 + channels-last"].best, t["+ torch.compile"].best)
    print(f"  budget: at least 3x over fp32 eager: {'met' if base / best >= 3 else 'MISSED'} (x{base / best:.2f})")


def methods_vs_retrain(config_path: Path) -> None:
    """Seconds of θ_r and of every approximate method (default hyperparameters) on one config, empty cache."""
    from core import Experiment
    from core.cache import ModelStore
    from core.config import load_config
    from core.errors import ResidueError
    from core.unlearn import methods

    cfg = load_config(config_path)
    with tempfile.TemporaryDirectory() as store:
        exp = Experiment(cfg, store=ModelStore(store))
        exp.reference_models()
        retrain = exp.trained["retrain"].seconds
        print(f"-- CUDA: every approximate method against a retrain, {config_path.name} ({cfg.model.name}): "
              f"θ_r {retrain:.1f} s --")
        for name in methods.names():
            if methods.get(name).exact:
                continue
            try:
                r = exp.unlearn(name, {})
            except ResidueError as e:  # a method that does not apply to this forget set says why
                print(f"  {name:<18} not run: {e}")
                continue
            ok = r.seconds <= METHOD_SHARE * retrain
            print(f"  {name:<18} {r.seconds:7.1f} s = {r.seconds / retrain:6.1%} of θ_r  "
                  f"{'ok' if ok else 'OVER the 25% budget'}{'' if r.status == 'ok' else f' ({r.status})'}")


def whole_analysis(config_path: Path) -> None:
    """"Run everything" on config_path in a fresh process with an empty cache, against the 10-minute budget."""
    from bench.dashboard import run_everything

    with tempfile.TemporaryDirectory() as cache:
        r = run_everything(cache, config_path)
    total = r["run_everything"]
    print(f"-- CUDA: the whole default analysis (Run everything) on {config_path.name}, empty cache --")
    for stage, s in sorted(r["stages"].items(), key=lambda kv: -kv[1]):
        print(f"  {stage:<36} {s:7.1f} s")
    print(f"  in all {total:.1f} s (+ {r['import']:.1f} s of imports); budget {RUN_BUDGET_S:.0f} s: "
          f"{'met' if total <= RUN_BUDGET_S else 'MISSED'}; failed analyses: {r['failed'] or 'none'}"
          f"{'; error: ' + str(r['error']) if r['error'] else ''}")


def cuda_section(data_root: Path | None, epochs: int, repeats: int) -> None:
    from core.training import recipes

    why = cuda_missing(data_root)
    if why:
        print(f"-- CUDA: {why}")
        return
    X, y = cifar(data_root, None, "cuda")
    resnet_ways(X, y, epochs, repeats)
    airbench_section(X, y, 1.0, recipes.get("airbench"), repeats, "on the GPU, its recipe as registered")
    for config in (PAPER_PRESET, AIRBENCH_EXAMPLE):
        methods_vs_retrain(config)
    whole_analysis(AIRBENCH_EXAMPLE)


def main(argv: list[str] | None = None) -> int:
    from core.errors import ResidueError

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-root", type=Path, default=None, help="folder holding cifar-10-batches-bin")
    p.add_argument("--epochs", type=int, default=3, help="epochs of the ResNet-18's θ_o (the GPU budget: 30)")
    p.add_argument("--airbench-width", type=float, default=0.25, help="airbench's width on the CPU")
    p.add_argument("--airbench-epochs", type=int, default=2, help="airbench's epochs on the CPU (its recipe: 10)")
    p.add_argument("--repeats", type=int, default=1, help="rounds (best of)")
    p.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated sections: {', '.join(SECTIONS)}")
    args = p.parse_args(argv)
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = sorted(set(only) - set(SECTIONS))
    if unknown:
        p.error(f"unknown section(s) {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")
    try:
        if "cpu" in only:
            cpu_section(args.data_root, args.epochs, args.repeats)
        if "airbench" in only:
            cpu_airbench(args.data_root, args.airbench_width, args.airbench_epochs, args.repeats)
        if "cuda" in only:
            cuda_section(args.data_root, args.epochs, args.repeats)
    except ResidueError as e:
        print(f"bench/vision.py: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
