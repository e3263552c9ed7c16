"""Speed budgets, measured (not timed tests). `python bench/run.py [--only foundation,methods,...]`.

Prints the foundation figures (issue 3) and then every other section found in bench/: each
`bench/<section>.py` with a `main()` prints its own figures.
"""
from __future__ import annotations

import argparse
import importlib
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SECTIONS = ["foundation", "methods", "attacks_mia", "attacks_leak", "probes", "parsing", "quality", "dashboard"]


def matmul_peak(n: int = 1024, reps: int = 30) -> float:
    """GFLOP/s of an n x n float32 matmul on this machine, now (the yardstick for throughput)."""
    import torch

    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(3):
        a @ b
    best = float("inf")
    for _ in range(3):
        t = time.perf_counter()
        for _ in range(reps):
            a @ b
        best = min(best, time.perf_counter() - t)
    return 2 * n ** 3 * reps / best / 1e9


def train_flops_per_sample(model, input_shape, batch: int = 64) -> float:
    """FLOPs of one forward + backward per sample, counted by torch's FlopCounterMode."""
    import torch
    import torch.nn.functional as F
    from torch.utils.flop_counter import FlopCounterMode

    x = torch.randn(batch, *input_shape)
    y = torch.zeros(batch, dtype=torch.long)
    with FlopCounterMode(display=False) as fc:
        F.cross_entropy(model(x), y).backward()
    model.zero_grad(set_to_none=True)
    return fc.get_total_flops() / batch


COLD = """
import json, sys, time
t0 = time.perf_counter()
from core import Experiment, ExperimentConfig
from core.cache import ModelStore
t1 = time.perf_counter()
r = Experiment(ExperimentConfig(), store=ModelStore(sys.argv[1]), device="cpu").run()
t2 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "run": t2 - t1, "models": {m.name: m.seconds for m in r.models}}))
"""


def foundation() -> None:
    import torch

    from core import Experiment, ExperimentConfig
    from core.cache import ModelStore

    print("== foundation: default classroom experiment (digits, MLP, forget 7; original + retrain + "
          "finetune + gradient_ascent) ==")
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, device cpu")
    with tempfile.TemporaryDirectory() as d:
        wall = []
        for label in ("empty cache", "models cached"):
            t = time.perf_counter()
            out = subprocess.run([sys.executable, "-c", COLD, d], capture_output=True, text=True, cwd=ROOT,
                                 check=True)
            wall.append(time.perf_counter() - t)
            info = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"  {label:<14} whole process {wall[-1]:6.2f} s  (imports {info['import']:.2f} s, "
                  f"experiment {info['run']:.2f} s)   budget {'10' if label == 'empty cache' else '2'} s")
        models = info["models"]
    with tempfile.TemporaryDirectory() as d:
        exp = Experiment(ExperimentConfig(), store=ModelStore(d), device="cpu")
        r = exp.run()
        t_retrain = r.model("retrain").seconds
        print(f"  {'model':<18}{'seconds':>9}{'x retrain':>11}{'forget':>8}{'retain':>8}{'test':>8}")
        for m in r.models:
            print(f"  {m.name:<18}{m.seconds:>9.3f}{m.seconds / t_retrain:>11.3f}{m.forget_acc:>8.3f}"
                  f"{m.retain_acc:>8.3f}{m.test_acc:>8.3f}")
        split = exp.prepare()
        per_sample = train_flops_per_sample(exp.fresh_model(), split.dataset.input_shape)
        samples = exp.config.recipe.epochs * len(split.train)
        # best of 3 trainings of θ_o's recipe (one run's time swings by a third on a shared machine)
        from core.training import train

        X, y = split.tensors(split.train)
        times = []
        for _ in range(3):
            t = time.perf_counter()
            train(exp.fresh_model(), X, y, exp.config.recipe, seed=exp.config.seed)
            times.append(time.perf_counter() - t)
        gflops = per_sample * samples / min(times) / 1e9
    peak = matmul_peak()
    print(f"  training throughput {gflops:.1f} GFLOP/s (batch {exp.config.recipe.batch_size}, best of 3 trainings "
          f"of θ_o: {min(times):.2f} s, worst {max(times):.2f} s); "
          f"1024x1024 fp32 matmul peak {peak:.1f} GFLOP/s; ratio {gflops / peak:.1%} (budget >= 20%)")
    print(f"  original test accuracy {r.model('original').test_acc:.3f} (budget >= 0.95)")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"  peak RSS of this process {rss:.0f} MB")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--only", default="", help="comma-separated sections (default: all)")
    args = ap.parse_args()
    wanted = [s for s in args.only.split(",") if s] or SECTIONS
    for section in wanted:
        if section == "foundation":
            foundation()
        elif (ROOT / "bench" / f"{section}.py").exists():
            print()
            importlib.import_module(f"bench.{section}").main()
        sys.stdout.flush()


if __name__ == "__main__":
    main()
